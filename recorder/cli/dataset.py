"""The dataset itself: create, save, status, diff, unlock, subdatasets, remove."""

# no `from __future__ import annotations` here: typer reads every command's annotations at
# each call, and string annotations cost it an eval each (~6 ms of `rr --help`)

from enum import Enum
from typing import Annotated, Any, List, Optional

from .params import Argument, Option

from . import options as opt
from . import render
from .base import call, exit_if, usage_error

# recorder.api is imported inside each command: `rr --help` does not load the operations


def create(
    path: Optional[str] = Argument(None, help="Where to create the dataset (default: here)."),
    cfg_proc: List[str] = Option([], "-c", "--cfg-proc",
                                       help="Run this configuration procedure after creation "
                                            "(yoda, text2git, ...); repeatable."),
    force: bool = Option(False, "--force", "-f", help="Create in a non-empty directory."),
    no_annex: bool = Option(False, "--no-annex", help="A plain git dataset, no git-annex."),
    dataset: Annotated[Optional[str], opt.dataset(
        "Register the new dataset as a subdataset of this dataset (PATH is relative to the "
        "working directory and must be inside it).")] = None,
    as_json: opt.Json = False,
) -> None:
    """Create a dataset: git + git-annex, .datalad/config with a new id, one commit.

    Example: rr create -c yoda -c text2git my-analysis; rr create -d . data/raw
    """
    from .. import api  # noqa: PLC0415  start-up time

    ds = call(api.create, path, cfg_proc=cfg_proc, force=force, annex=not no_annex,
              dataset=dataset, on_event=render.event_handler(as_json))
    if as_json:
        render.json_line({"action": "create", "status": "ok", "path": str(ds.root),
                          "id": ds.id})
    else:
        render.info(f"rr: created dataset {ds.root} (id {ds.id})")


def save(
    paths: List[str] = Argument(None, help="Paths to save (default: all changes)."),
    message: opt.Message = None,
    message_file: Optional[str] = Option(
        None, "-F", "--message-file", help="Take the commit message from this file "
        "(e.g. .git/COMMIT_EDITMSG after a failed run)."),
    version_tag: Optional[str] = Option(None, "--version-tag", "-t",
                                              help="Tag the saved commit with this name."),
    dataset: Annotated[Optional[str], opt.dataset(
        "The dataset (default: the one containing the working directory).")] = None,
    recursive: Annotated[bool, opt.recursive(
        "Accepted for DataLad users: rr always saves changes inside subdatasets first "
        "(bottom-up).")] = False,
    updated: bool = Option(False, "-u", "--updated", help="Only changes of tracked "
                                 "paths; untracked files stay untracked."),
    to_git: bool = Option(False, "--to-git", help="Put the files into git, not the "
                                "annex, whatever their size."),
    amend: bool = Option(False, "--amend", help="Replace the last commit: with these "
                               "changes and the new message (else the old one), in this "
                               "dataset only; a run record in it is kept."),
    as_json: opt.Json = False,
) -> None:
    """Save changes: large files into the annex (per .gitattributes), text into git.

    A git repository inside the dataset (made by rr create PATH, git init, ...) is saved as a
    subdataset (gitlink + .gitmodules entry), changes inside it first.

    Example: rr save -m "Add evaluation script" --version-tag ready4analysis code/evaluate.py
    """
    from .. import api  # noqa: PLC0415  start-up time

    if amend and recursive:
        usage_error("--amend changes one dataset's last commit: it does not go with -r")
    result = call(api.save, paths or (), dataset=dataset, message=message,
                  message_file=message_file, version_tag=version_tag, updated=updated,
                  to_git=to_git, amend=amend)
    if as_json:
        render.json_line(result.to_dict())
        return
    if result.status == "notneeded":
        render.info(("rr: nothing to amend" if amend else "rr: nothing to save") +
                    (f"; tagged HEAD as {result.tag}" if result.tag else ""))
    elif amend:
        render.info(f"rr: amended the last commit with {len(result.paths)} path(s): now "
                    f"{(result.commit or '')[:8]}")
    else:
        tag = f", tagged {result.tag}" if result.tag else ""
        commit = result.commit or ""
        render.info(f"rr: saved {len(result.paths)} path(s) in {commit[:8]}{tag}")


def status(
    paths: List[str] = Argument(None, help="Limit to these paths (default: all)."),
    recursive: opt.Recursive = False,
    recursion_limit: opt.RecursionLimit = None,
    annex: Optional[str] = Option(None, "--annex", metavar="[basic|availability|all]",
                                        help="Also list every annexed file: its key, size, "
                                        "whether its content is here (availability/all: and "
                                        "where), and a total."),
    untracked: str = Option("normal", "--untracked", metavar="no|normal|all",
                                  help="Untracked files: none, a directory of them as one "
                                  "path, or each file."),
    stale: bool = Option(False, "--stale", help="List outputs out of date: a declared "
                               "input, declared code or the image changed since the run that "
                               "wrote them (and the rr rerun that updates them)."),
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("One JSON object per path.")] = False,
) -> None:
    """Show what changed: untracked, added, modified, deleted files and subdatasets, and
    annexed content changed through its link (damaged).

    Paths are shown relative to the dataset's root (as datalad status -d .).

    Example: rr status -r --annex data/

    Example: rr status --stale  (outputs whose inputs or code changed since their run)

    Example: rr status -r -R 1  (the dataset and its own subdatasets, no deeper)
    """
    from .. import api  # noqa: PLC0415  start-up time

    if stale:
        if recursive or annex or recursion_limit is not None:
            usage_error("--stale takes no -r, -R or --annex")
        found = call(lambda: list(api.stale(paths or (), dataset=dataset)))
        exit_if(render.render_results(found, as_json, line=lambda r: r.message))
        if not as_json and not found:
            render.out("no stale outputs")
        return

    results = call(api.status, paths or (), dataset=dataset, recursive=recursive, annex=annex,
                   untracked=untracked, recursion_limit=recursion_limit)
    failed = call(render.render_results, results, as_json, line=render.status_line)
    if not as_json:
        if results.totals.clean and not failed:
            render.out("nothing to save, working tree clean" if untracked != "no" else
                       "nothing to save (untracked files not looked at)")
        if annex:
            render.out(render.annex_totals(results.totals))
    exit_if(failed)


def diff(
    paths: List[str] = Argument(None, help="Limit to these paths (default: all)."),
    from_: Optional[str] = Option(None, "-f", "--from", help="The state to compare "
                                        "from (default HEAD)."),
    to: Optional[str] = Option(None, "-t", "--to", help="The state to compare to "
                                     "(default: the working tree, untracked files included)."),
    recursive: opt.Recursive = False,
    recursion_limit: opt.RecursionLimit = None,
    untracked: str = Option("normal", "--untracked", metavar="no|normal|all",
                                  help="Untracked files (against the working tree): none, a "
                                  "directory of them as one path, or each file."),
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json(
        "One JSON object per path (with gitshasum/prev_gitshasum and key/prev_key of annexed "
        "files).")] = False,
) -> None:
    """Show what differs between two states, per path; annexed files are compared by their
    content key (an unlocked file with its recorded content is unchanged).

    Example: rr diff --from ready4analysis --to HEAD -r

    Example: rr diff -r -R 1   (one level of subdatasets down)
    """
    from .. import api  # noqa: PLC0415  start-up time

    results = call(api.diff, paths or (), from_=from_, to=to, dataset=dataset,
                   recursive=recursive, untracked=untracked, recursion_limit=recursion_limit)
    exit_if(call(render.render_results, results, as_json, line=render.state_line))


def unlock(
    paths: List[str] = Argument(None, help="Files or directories (default: all)."),
    recursive: Annotated[bool, opt.recursive(
        "The files of installed subdatasets under the paths too.")] = False,
    recursion_limit: opt.RecursionLimit = None,
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("One JSON object per file.")] = False,
) -> None:
    """Make annexed files editable without a run; rr save puts them back into the annex.

    Files whose content is not here cannot be unlocked (rr get them first).

    Example: rr unlock data/labels.csv

    Example: rr unlock -r data/   (in data/'s subdatasets too)
    """
    from .. import api  # noqa: PLC0415  start-up time

    results = call(api.unlock, paths or (), dataset=dataset, recursive=recursive,
                   recursion_limit=recursion_limit)

    def line(r: Any) -> str:
        return f"unlock({r.status}): {r.path} ({r.type or 'file'})" + \
            (f" [{r.message}]" if r.message else "")

    exit_if(render.render_results(results, as_json, line=line))


def subdatasets(
    paths: List[str] = Argument(None, help="Report the subdatasets at or under these "
                                      "paths (default: all)."),
    recursive: opt.Recursive = False,
    recursion_limit: opt.RecursionLimit = None,
    fulfilled: Optional[str] = Option(None, "--fulfilled", metavar="true|false",
                                            help="Only installed (true) or absent (false) "
                                            "subdatasets."),
    contains: List[str] = Option([], "--contains", metavar="PATH", help="Only "
                                       "subdatasets that contain this path; repeatable."),
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json(
        "One JSON object per subdataset (DataLad's field names: state, gitshasum, "
        "gitmodule_url, ...).")] = False,
) -> None:
    """List registered subdatasets: present (installed) or absent, the recorded commit,
    the dataset id and the URL they are installed from.

    Example: rr subdatasets -r

    Example: rr subdatasets -r -R 2   (two levels: the subdatasets and theirs)
    """
    from .. import api  # noqa: PLC0415  start-up time

    wanted = None
    if fulfilled is not None:
        choice = fulfilled.strip().lower()
        if choice not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            usage_error(f"--fulfilled must be true or false, not {fulfilled!r}")
        wanted = choice in ("true", "yes", "1", "on")

    def line(r: Any) -> str:
        extra = r.extra or {}
        sha = (extra.get("gitshasum") or "-")[:10]
        return f"{r.state:<8} {r.path}  {sha}  {extra.get('id') or '-'}  " \
               f"{extra.get('gitmodule_url') or '-'}"

    exit_if(call(lambda: render.render_results(
        api.subdatasets(paths or (), dataset=dataset, recursive=recursive,
                        fulfilled=wanted, contains=contains,
                        recursion_limit=recursion_limit), as_json,
        line=line)))


class Reckless(str, Enum):
    kill = "kill"


def remove(
    paths: List[str] = Argument(..., help="Files, directories or subdatasets."),
    force: bool = Option(False, "--force", help="Remove even what exists only here: "
                               "unsaved changes, a subdataset's unpushed commits, the last "
                               "copy of content (dropped too, as rr drop --force)."),
    reckless: Optional[Reckless] = Option(None, "--reckless", help="DataLad's "
                                                "spelling: --reckless kill is --force."),
    message: Annotated[Optional[str], opt.message(
        "Commit message (default: [DATALAD] removed content).")] = None,
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("One JSON object per path.")] = False,
) -> None:
    """Remove files, directories and subdatasets from the dataset, and commit that.

    Content of removed annexed files is dropped when it is safely elsewhere (else kept in the
    local annex); a subdataset is unregistered and deleted only when nothing of it exists
    here alone (unsaved changes, unpushed commits, the last copy of content) unless --force.

    Example: rr remove data/raw old-results.csv
    """
    from .. import api  # noqa: PLC0415  start-up time

    results = call(api.remove, paths, dataset=dataset, force=force,
                   reckless=reckless.value if reckless else None, message=message)

    def line(r: Any) -> str:
        return f"removed  {r.path}" + (f" ({r.message})" if r.message else "")

    exit_if(render.render_results(results, as_json, line=line))
