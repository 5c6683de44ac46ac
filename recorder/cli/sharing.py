"""Sharing datasets and content: clone, get, drop, siblings, push, update, download-url."""

# no `from __future__ import annotations` here: typer reads every command's annotations at
# each call, and string annotations cost it an eval each (~6 ms of `rr --help`)

from enum import Enum
from typing import Annotated, Any, List, Optional

from .params import Argument, Group, Option

from . import options as opt
from . import render
from .base import call, exit_if, usage_error

# recorder.api is imported inside each command: `rr --help` does not load the operations


def clone(
    source: str = Argument(..., help="A path, git URL or SSH URL (host:path)."),
    path: Optional[str] = Argument(None, help="Where to put the clone."),
    dataset: Annotated[Optional[str], opt.dataset(
        "Register the clone as a subdataset of this dataset.")] = None,
    reckless: Optional[str] = Option(
        None, "--reckless", metavar="auto|ephemeral|shared-MODE", help="DataLad's: auto: "
        "content hardlinked from a local origin, this clone untrusted; ephemeral: the clone "
        "uses the local origin's annex (a symlink), is private and dead (never counted as a "
        "copy, never drops); shared-MODE: git init --shared=MODE, untrusted.  Kept in "
        "datalad.clone.reckless: subdatasets installed later follow it."),
    as_json: opt.Json = False,
) -> None:
    """Clone a dataset (content stays where it is until you get it).

    Example: rr clone -d . ../imagenette data/raw

    Example: rr clone --reckless ephemeral /scratch/imagenette work  (no copy of content)
    """
    from .. import api  # noqa: PLC0415  start-up time

    result = call(api.clone, source, path, dataset=dataset, reckless=reckless)
    if as_json:
        render.json_line(result.to_dict())
    else:
        where = f", registered in {result.registered_in}" if result.registered_in else ""
        mode = (result.extra or {}).get("reckless")
        where += f" (reckless {mode})" if mode else ""
        if result.status == "notneeded":
            render.info(f"rr: {result.path} is already a clone of {source}; nothing to do")
        else:
            render.info(f"rr: cloned {source} to {result.path}{where}")


def get(
    paths: opt.Paths = None,
    recursive: Annotated[bool, opt.recursive("Into subdatasets too.")] = False,
    recursion_limit: Optional[str] = Option(
        None, "-R", "--recursion-limit", metavar="LEVELS|existing", help="With -r: only this "
        "many levels of subdatasets down (1: the dataset's own subdatasets); existing: only "
        "those installed already, none installed on the way."),
    no_data: bool = Option(False, "-n", "--no-data", help="Only install the "
                                 "subdatasets on the way (-r: all of them), no content."),
    source: Optional[str] = Option(None, "-s", "--source", metavar="SIBLING",
                                         help="Get content only from this sibling (a git "
                                         "sibling or a special remote), in every dataset."),
    reckless: Optional[str] = Option(
        None, "--reckless", metavar="auto|ephemeral|shared-MODE", help="Set the subdatasets "
        "installed on the way up so, as rr clone --reckless (default: as this dataset was "
        "cloned)."),
    jobs: opt.TransferJobs = None,
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("One JSON object per file fetched (git-annex's "
                                         "record: file, key, success), then the result.")
                       ] = False,
) -> None:
    """Fetch annexed content, installing subdatasets on the way.

    Example: rr get -r -J 4 data/raw/train

    Example: rr get -n -r .   (install every subdataset, fetch no content)

    Example: rr get -s backup -r -R 1 data/   (from the sibling backup; one level down)
    """
    from .. import api  # noqa: PLC0415  start-up time

    limit: Any = recursion_limit
    if recursion_limit is not None and recursion_limit.lstrip("-").isdigit():
        limit = int(recursion_limit)
    if as_json:
        def each_file(event: Any) -> None:
            if event.kind.value == "file":
                render.json_line({"action": "get", **(event.fields or {})})

        rels = call(api.get, paths or (), dataset=dataset, recursive=recursive,
                    on_event=each_file, jobs=jobs, no_data=no_data, source=source,
                    recursion_limit=limit, reckless=reckless)
        render.json_line({"action": "get", "status": "ok", "paths": rels})
        return
    with render.transfer_bar() as on_event:
        call(api.get, paths or (), dataset=dataset, recursive=recursive, on_event=on_event,
             jobs=jobs, no_data=no_data, source=source, recursion_limit=limit,
             reckless=reckless)
    render.info("rr: subdatasets installed" if no_data else "rr: content is here")


def drop(
    paths: opt.Paths = None,
    recursive: Annotated[bool, opt.recursive("Into subdatasets too.")] = False,
    recursion_limit: opt.RecursionLimit = None,
    force: bool = Option(False, "--force", help="Drop even the last known copy."),
    what: str = Option("filecontent", "--what", metavar="filecontent|allkeys|datasets|"
                             "all", help="The files' content; every version of every key; "
                             "uninstall the subdatasets named; both."),
    reckless: Optional[str] = Option(None, "--reckless", metavar="modification|"
                                           "availability|undead|kill", help="DataLad's: "
                                           "drop changed content too; no copy check (as "
                                           "--force); kill: nothing checked."),
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("The result as JSON (dropped: how many; records: "
                                         "git-annex's, one per file).")] = False,
) -> None:
    """Drop annexed content that is safely stored elsewhere.

    Never in an ephemeral clone (rr clone --reckless ephemeral): its annex is the origin's.

    Example: rr drop data/raw/train

    Example: rr drop -r -R 1 .   (here and in the dataset's own subdatasets, no deeper)
    """
    from .. import api  # noqa: PLC0415  start-up time

    result = call(api.drop, paths or (), dataset=dataset, recursive=recursive, force=force,
                  what=what, reckless=reckless, recursion_limit=recursion_limit)
    if as_json:
        render.json_line(result.to_dict())
        return
    gone = f"; uninstalled {', '.join(result.uninstalled)}" if result.uninstalled else ""
    render.info(f"rr: dropped {result.dropped} file(s){gone}")


siblings_app = Group(help="Places to push to and get from.\n\nExample: rr siblings add "
                                "origin /srv/store/analysis.git", no_args_is_help=True)


@siblings_app.command("add")
def siblings_add(
    name: str = Argument(..., help="Name of the sibling."),
    url: str = Argument(..., help="A path (a bare repository is made there), git URL or "
                              "SSH URL."),
    data_dir: Optional[str] = Option(None, "--data-dir", help="Put annexed content in "
                                           "this directory (a git-annex directory special "
                                           "remote) instead of the git sibling."),
    dataset: opt.Dataset = None,
) -> None:
    """Add a sibling.

    Example: rr siblings add origin /srv/store/analysis.git
    """
    from .. import api  # noqa: PLC0415  start-up time

    sib = call(api.siblings_add, name, url, data_dir=data_dir, dataset=dataset)
    render.info(f"rr: sibling {sib.name} -> {sib.url}")


@siblings_app.command("remove")
def siblings_remove(
    name: Optional[str] = Argument(None, help="Name of the sibling."),
    name_opt: Optional[str] = Option(None, "-s", "--name", help="DataLad's spelling "
                                           "of NAME."),
    dataset: opt.Dataset = None,
) -> None:
    """Forget a sibling here (nothing in the sibling itself changes).

    Example: rr siblings remove old-server
    """
    from .. import api  # noqa: PLC0415  start-up time

    which = name or name_opt
    if which is None or (name and name_opt and name != name_opt):
        usage_error("say which sibling to remove: rr siblings remove NAME")
    call(api.siblings_remove, which, dataset=dataset)
    render.info(f"rr: removed sibling {which}")


@siblings_app.command("list")
def siblings_list(
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("One JSON object per sibling.")] = False,
) -> None:
    """List siblings.

    Example: rr siblings list
    """
    from .. import api  # noqa: PLC0415  start-up time

    for sib in call(api.siblings_list, dataset=dataset):
        if as_json:
            render.json_line(sib.to_dict())
        else:
            deps = f" (pushed after {', '.join(sib.publish_depends)})" \
                if sib.publish_depends else ""
            render.out(f"{sib.name} [{sib.kind}] {sib.url}{deps}")


class DataMode(str, Enum):
    auto = "auto"
    anything = "anything"
    nothing = "nothing"


def push(
    to: Optional[str] = Option(None, "--to", help="The sibling (default: the only one)."),
    data: DataMode = Option(DataMode.auto, "--data", help="Which annexed content to "
                                  "send: auto (this version), anything (all versions), nothing."),
    recursive: Annotated[bool, opt.recursive(
        "Installed subdatasets first, each to its own sibling of that name.")] = False,
    recursion_limit: opt.RecursionLimit = None,
    jobs: opt.TransferJobs = None,
    dataset: opt.Dataset = None,
    as_json: opt.Json = False,
) -> None:
    """Push history, tags and annexed content to a sibling.

    Example: rr push --to origin -J 4

    Example: rr push --to origin -r -R 1   (the dataset's own subdatasets first, no deeper)
    """
    from .. import api  # noqa: PLC0415  start-up time

    result = call(api.push, to=to, data=data.value, dataset=dataset, jobs=jobs,
                  recursive=recursive, recursion_limit=recursion_limit)
    if as_json:
        render.json_line(result.to_dict())
    else:
        for sub in result.extra.get("subdatasets", []) if result.extra else []:
            render.info(f"rr: {sub['path']}: {sub['message']}")
        before = f" (after {', '.join(result.depends)})" if result.depends else ""
        render.info(f"rr: pushed {result.branch} and {result.copied} file(s) of "
                    f"content to {result.to}{before}")


class How(str, Enum):
    fetch = "fetch"
    merge = "merge"
    ff_only = "ff-only"
    reset = "reset"


class Follow(str, Enum):
    sibling = "sibling"
    parentds = "parentds"


def update(
    sibling: Optional[str] = Option(None, "-s", "--sibling", help="The sibling to update "
                                          "from (default: fetch from all; bring changes in "
                                          "from the one the current branch tracks)."),
    how: How = Option(How.fetch, "--how", help="fetch: only fetch (branches appear as "
                            "SIBLING/BRANCH, content becomes gettable); merge, ff-only or "
                            "reset: also bring the current branch up to date with its "
                            "counterpart on the sibling."),
    how_subds: Optional[How] = Option(None, "--how-subds", help="--how for subdatasets "
                                            "(default: the same)."),
    follow: Follow = Option(Follow.parentds, "--follow", help="With -r: bring each "
                                  "subdataset to the commit its superdataset records "
                                  "(parentds, rr's default) or to its own sibling's branch "
                                  "(sibling, DataLad's default)."),
    recursive: opt.Recursive = False,
    recursion_limit: opt.RecursionLimit = None,
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("One JSON object per result.")] = False,
) -> None:
    """Bring a collaborator's work in: fetch branches and where their content is from
    siblings, and with --how update the current branch (no other branch moves).

    Example: rr update -s origin; rr metrics show -a; rr update -s origin --how merge
    """
    from .. import api  # noqa: PLC0415  start-up time

    def line(r: Any) -> str:
        return f"{r.state or r.status:<12} {r.path}: {r.message}"

    results = call(api.update, sibling=sibling, how=how.value,
                   how_subds=how_subds.value if how_subds else None, follow=follow.value,
                   recursive=recursive, recursion_limit=recursion_limit, dataset=dataset)
    exit_if(call(render.render_results, results, as_json, line=line))


def download_url(
    urls: List[str] = Argument(..., help="http(s), ftp or file URLs."),
    path: Optional[str] = Option(None, "--path", "-O", help="Where to put it (a file "
                                       "name, or a directory for several URLs)."),
    message: opt.Message = None,
    archive: bool = Option(False, "--archive", help="Extract the archive; it stays as "
                                 "the source the extracted files can be got back from."),
    dataset: opt.Dataset = None,
    as_json: opt.Json = False,
) -> None:
    """Download files into the dataset; their URLs are recorded so drop + get fetches again.

    Example: rr download-url --archive --path data/raw https://example.org/imagenette.tgz
    """
    from .. import api  # noqa: PLC0415  start-up time

    result = call(api.download_url, urls, path=path, message=message, archive=archive,
                  dataset=dataset)
    if as_json:
        render.json_line(result.to_dict())
    else:
        extra = f", extracted {len(result.extracted)} file(s)" if result.extracted else ""
        render.info(f"rr: downloaded {len(result.files)} file(s){extra}")
