"""Saving: stage changes (large files into the annex per .gitattributes) and commit."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import config as cfgkeys
from . import annex, gitrepo, protect
from . import record as records
from .subdatasets import installed, split_by_dataset
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .results import NOTNEEDED, OK, Result, Status
from .gitrepo import StatusEntry
from .lock import InFlight, dataset_lock, deferred_signals, inflight_runs


def _result(status: Status, commit: str | None, paths: list[str], tag: str | None,
            message: str) -> Result:
    """A save's result: fields ``commit``, ``paths``, ``tag``, ``message`` (also in JSON when
    empty, after the others, as rr's JSON always had it)."""
    return Result("save", None, status, message=message,
                  extra={"commit": commit, "paths": paths, "tag": tag, "message": message})


def stage(ds: Dataset, entries: Sequence[StatusEntry], message: str = "",
          to_git: bool = False) -> list[str]:
    """Stage the given status entries (``to_git``: files into git, never the annex);
    returns the staged paths.

    A subdataset with changes inside is saved first (same message), then its new state is
    staged in this dataset, as DataLad saves a hierarchy bottom-up.  An embedded repository
    (untracked, shown by git as ``sub/``) is saved likewise and registered as a subdataset.
    """
    for e in entries:
        if e.submodule and e.sub_dirty:
            _commit_inside(ds, e.path, message)
    embedded = embedded_repos(ds, entries)
    for rel in embedded:
        _commit_inside(ds, rel, message)  # bottom-up, as for a registered subdataset
        register_subdataset(ds, rel)
    to_add = [e.path for e in entries
              if e.state != "deleted" and not e.submodule and e.path.rstrip("/") not in embedded]
    if ds.is_annex and any(annex.is_attributes(e.path) for e in entries):
        annex.attributes_changed(ds.root)  # a batch add process read the old rules
    if ds.is_annex:  # a `git mv` to another depth leaves an annexed file's link pointing wrong
        annex.fix(ds.root, [e.path for e in entries
                            if e.state == "renamed" and (ds.root / e.path).is_symlink()])
    # a deletion already staged (the old side of a `git mv`) is not added again: its path
    # matches nothing any more, and git add would refuse the whole list
    plain = [e.path for e in entries
             if (e.state == "deleted" and (e.worktree or not e.staged)) or e.submodule]
    plain += embedded + ([".gitmodules"] if embedded else [])
    if to_add:
        if ds.is_annex:
            annex.add(ds.root, to_add, to_git=to_git)
        else:
            gitrepo.add(ds.root, to_add)
    if plain:
        gitrepo.add(ds.root, plain)
    paths = [e.path.rstrip("/") if e.path.rstrip("/") in embedded else e.path for e in entries]
    if embedded and ".gitmodules" not in paths:
        paths.append(".gitmodules")
    return paths


def _commit_inside(ds: Dataset, rel: str, message: str) -> None:
    """Commit all changes inside the (sub)dataset at ``rel``, with the same message."""
    sub = Dataset(ds.root / rel)
    sub_entries = [x for x in sub.status(untracked="all") if x.state != "unmerged"]
    if sub_entries:
        commit_entries(sub, sub_entries, message, only=False)


def embedded_repos(ds: Dataset, entries: Sequence[StatusEntry]) -> list[str]:
    """Untracked git repositories inside the dataset (git status shows them as ``sub/``):
    they are saved as subdatasets, as DataLad saves an embedded repository."""
    return [e.path.rstrip("/") for e in entries
            if e.state == "untracked" and e.path.endswith("/") and not e.submodule
            and (ds.root / e.path / ".git").exists()]


def register_subdataset(ds: Dataset, rel: str) -> None:
    """Write the ``.gitmodules`` entry for the repository at ``rel`` as DataLad does (path,
    ``url`` = its origin's URL, else ``./rel``; ``datalad-id`` when it is a dataset) and
    activate it in .git/config; staging the gitlink and .gitmodules is the caller's."""
    sub = Dataset(ds.root / rel)
    if sub.head() is None:
        raise RecorderError(f"{rel} is a git repository without any commit; it cannot be saved "
                            "as a subdataset",
                            hint=f"commit something in it first (cd {rel} && rr save)")
    gitmodules = str(ds.root / ".gitmodules")
    # a clone found inside: its origin, so that a fresh clone of this dataset can install it
    # and get its content (as DataLad registers it); a repository made here: ./PATH
    url = gitrepo.remotes(sub.root).get("origin") or f"./{rel}"
    gitrepo.config_set(ds.root, cfgkeys.submodule_key(rel, "path"), rel, file=gitmodules)
    gitrepo.config_set(ds.root, cfgkeys.submodule_key(rel, "url"), url, file=gitmodules)
    if sub.id:
        gitrepo.config_set(ds.root, cfgkeys.submodule_key(rel, "datalad-id"), sub.id,
                           file=gitmodules)
    gitrepo.register_submodule(ds.root, rel, url)


def commit_entries(ds: Dataset, entries: Sequence[StatusEntry], message: str,
                   only: bool, *, received: list[int] | None = None,
                   head: str | None | bool = False, to_git: bool = False) -> str | None:
    """Stage and commit ``entries``; with ``only``, nothing else staged goes into the commit.

    What had to be staged is checked after staging (git-annex exits 0 without staging when
    git's index is locked): a path left unstaged is an error, not "nothing changed".
    Returns None when staging shows nothing really changed (an unlocked file rewritten with
    the same content is locked again and equals HEAD).  Signals that arrive during the commit
    itself are deferred: into ``received`` when given, else re-raised after it.
    ``head``: HEAD's commit when the caller knows it (None: no commit yet; False: ask git).
    """
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the commit message holds bytes that are not UTF-8",
                         hint="give the message in UTF-8") from None
    with dataset_lock(ds.git_dir):
        before = ds.head() if isinstance(head, bool) else head
        try:
            paths = stage(ds, entries, message, to_git)
            staged = gitrepo.staged_paths(ds.root, paths if only else None, head=before)
            ensure_staged(ds, entries, staged)
            if not (staged if not only else staged & set(paths)):
                return None
            with deferred_signals(received):
                sha = gitrepo.commit(ds.root, message, only=paths if only else None,
                                     hooks_path=ds.config.get(cfgkeys.CORE_HOOKSPATH),
                                     head=before, plain=_plain_commit(ds),
                                     maintenance=_maintenance(ds))
        except BaseException:
            _unstage_after_failure(ds, entries, before)
            raise
        if sha == before:
            raise RecorderError("git commit exited 0 but made no commit")
        return sha


def _unstage_after_failure(ds: Dataset, entries: Sequence[StatusEntry],
                           before: str | None) -> None:
    """A save that failed leaves nothing staged that was not staged before it (the files
    stay as they are); HEAD is checked first: a commit that was made is not undone."""
    if ds.head() != before:
        return
    paths = [e.path.rstrip("/") for e in entries if not e.staged and not e.submodule]
    if not paths or before is None:
        return
    try:
        gitrepo.unstage(ds.root, paths)
    except (RecorderError, OSError):
        pass  # the original failure is what the user must see


def _plain_commit(ds: Dataset) -> bool:
    """git's own config asks nothing of a commit that rr's plumbing commit would skip."""
    cfg = ds.config
    return (not cfg.typed(cfgkeys.COMMIT_GPGSIGN)
            and cfg.get_local(cfgkeys.COMMIT_CLEANUP, "default") in ("default", "whitespace")
            and cfg.get_local(cfgkeys.COMMIT_ENCODING) is None)


def _maintenance(ds: Dataset) -> str:
    """What a plumbing commit does about git's automatic maintenance (gitrepo.commit): "off"
    when maintenance.auto is false (git commit starts none then), "judge" without any gc.* or
    maintenance.* setting in git's own scopes (git's defaults), else "ask" git."""
    cfg = ds.config
    if not cfgkeys.to_bool(cfg.get_local(cfgkeys.MAINTENANCE_AUTO), True):
        return "off"
    if any(k.startswith(cfgkeys.MAINTENANCE_SECTIONS) for k in cfg.git_values):
        return "ask"
    return "judge"


_MUST_APPEAR = ("untracked", "added", "deleted", "renamed")


def ensure_staged(ds: Dataset, entries: Sequence[StatusEntry], staged: set[str]) -> None:
    """Every new, deleted or renamed path must now differ from HEAD in the index; a modified
    one may equal HEAD again, but must then equal the worktree."""
    lost = [e.path for e in entries
            if e.state in _MUST_APPEAR and e.path.rstrip("/") not in staged]
    maybe = [e.path for e in entries
             if e.state not in _MUST_APPEAR and e.path.rstrip("/") not in staged]
    lost += gitrepo.unstaged_paths(ds.root, maybe)
    if lost:
        shown = ", ".join(lost[:5]) + (f" (and {len(lost) - 5} more)" if len(lost) > 5 else "")
        raise RecorderError(f"git did not stage {len(lost)} path(s): {shown}")


def ensure_tag_available(ds: Dataset, tag: str) -> None:
    if not gitrepo.check_ref_format_tag(ds.root, tag):
        raise UsageError(f"not a valid tag name: {tag!r}")
    if gitrepo.resolve_commit(ds.root, f"refs/tags/{tag}") is not None:
        raise RecorderError(f"tag {tag!r} already exists", hint="choose another --version-tag")


def _outer_repositories(ds: Dataset, rels: list[str]) -> list[str]:
    """A path inside a repository that is not registered yet (``save s1 s1/s2 s1/s2/s3`` of
    nested new datasets) stands for that repository: git sees only ``s1/`` from here, and
    saving it registers the ones inside, bottom-up, as DataLad does."""
    registered = set(ds.subdatasets()) if (ds.root / ".gitmodules").exists() else set()
    out: list[str] = []
    for rel in rels:
        parts = rel.split("/") if rel != "." else []
        for n in range(1, len(parts)):
            prefix = "/".join(parts[:n])
            if prefix in registered:
                break  # inside a registered subdataset: save_in_subdatasets' part
            if (ds.root / prefix / ".git").exists():
                rel = prefix
                break
        if rel not in out:
            out.append(rel)
    return out


def save_in_subdatasets(ds: Dataset, rels: list[str], message: str | None) -> list[str]:
    """Paths inside installed subdatasets are saved there first (same message); the
    subdataset's new state is then saved here."""
    if not (ds.root / ".gitmodules").exists():
        return rels
    out: list[str] = []
    for owner, group in split_by_dataset(ds, rels).items():
        if owner and installed(ds, owner) and any(p != owner for p in group):
            sub = Dataset(ds.root / owner)
            save(sub, [str(ds.root / p) for p in group], message=message)
            out.append(owner)
        else:
            out += group
    return out


def save(ds: Dataset, paths: Sequence[str] | None = None, message: str | None = None,
         version_tag: str | None = None, base: Path | None = None, *, updated: bool = False,
         to_git: bool = False, amend: bool = False) -> Result:
    """Commit ``paths`` (relative to ``base``, default: the working directory) or all changes;
    ``updated``: only changes of tracked paths (untracked files stay untracked, DataLad's
    ``save -u``); ``to_git``: files into git, not the annex (DataLad's ``--to-git``);
    ``amend``: the changes (and ``message``, else the old one) replace HEAD's commit, in this
    dataset only (DataLad's ``--amend``; a run record in the old message is kept)."""
    if version_tag:
        ensure_tag_available(ds, version_tag)
    rel: list[str] | None = None
    if paths:
        rel = []
        missing = []
        for p in paths:
            r = ds.relpath(p, base)
            full = ds.root / r
            if not os.path.lexists(full) and not gitrepo.ls_files(ds.root, [r]):
                missing.append(p)
            rel.append(r)
        if missing:
            raise RecorderError("path does not exist and is not tracked: " + ", ".join(missing))
        if not amend:  # an amendment stays in this dataset, as DataLad's
            rel = save_in_subdatasets(ds, _outer_repositories(ds, rel), message)
    if amend:
        return _amend(ds, rel, message, version_tag, updated, to_git)
    with dataset_lock(ds.git_dir, what="rr save"):
        gitrepo.ensure_no_index_lock(ds.root)
        entries = ds.status(rel, untracked="all")
        entries = [e for e in entries if e.state != "unmerged"
                   and not (updated and e.state == "untracked")]
        entries = _leave_inflight_outputs(ds, entries, explicit=rel is not None)
        msg = message if message is not None else "[DATALAD] Recorded changes"
        if not entries:
            damaged = protect.damaged_objects(ds, _head_time_ns(ds) + 1_000_000_000, rel,
                                              written=True)
            if damaged:
                names = [f for d in damaged for f in (d.files or (d.key,))]
                raise RecorderError(
                    "annexed content was changed in place through its link (the annex object "
                    f"no longer matches its key): {', '.join(names[:6])}",
                    hint="the old content is gone from here; to keep the new content as a new "
                         "version: git annex fsck (moves the damaged object aside), then put the "
                         "file back and rr save it; or rr get it from another copy")
            if ds.head() is None and version_tag:
                raise RecorderError("nothing to save and no commit to tag yet")
            if version_tag:
                gitrepo.tag(ds.root, version_tag)
            return _result(NOTNEEDED, ds.head(), [], version_tag, "nothing to save")
        sha = commit_entries(ds, entries, msg, only=rel is not None, to_git=to_git)
        if version_tag:
            gitrepo.tag(ds.root, version_tag)
    if sha is None:
        return _result(NOTNEEDED, ds.head(), [], version_tag, "nothing to save")
    return _result(OK, sha, [e.path for e in entries], version_tag, msg)


def _amend(ds: Dataset, rel: list[str] | None, message: str | None, version_tag: str | None,
           updated: bool, to_git: bool) -> Result:
    with dataset_lock(ds.git_dir, what="rr save --amend"):
        gitrepo.ensure_no_index_lock(ds.root)
        head = ds.head()
        if head is None:
            raise RecorderError("nothing to amend: the dataset has no commit yet",
                                hint="save without --amend")
        if gitrepo.sequencer_in_progress(ds.root):
            raise RecorderError("a merge or cherry-pick is in progress: finish it first")
        # changes inside subdatasets stay there (a subdataset's own new commit is staged)
        entries = [e for e in ds.status(rel, untracked="all")
                   if e.state != "unmerged" and not (updated and e.state == "untracked")
                   and not (e.submodule and e.sub_dirty)]
        entries = _leave_inflight_outputs(ds, entries, explicit=rel is not None)
        if not entries and message is None:
            if version_tag:
                gitrepo.tag(ds.root, version_tag)
            return _result(NOTNEEDED, head, [], version_tag, "nothing to amend")
        old = gitrepo.commit_message(ds.root, head)
        msg = _keep_record(old, message) if message is not None else old
        paths = stage(ds, entries, msg, to_git) if entries else []
        sha = gitrepo.commit_amend(ds.root, msg,
                                   hooks_path=ds.config.get(cfgkeys.CORE_HOOKSPATH))
        if version_tag:
            gitrepo.tag(ds.root, version_tag)
    return _result(OK, sha, paths, version_tag, msg.split("\n", 1)[0])


def _keep_record(old: str, message: str) -> str:
    """``message`` for a commit whose old message may hold a run record: the record (its
    block, or a sidecar record's id) is kept after the new text, so that amending a run
    commit's message never loses its record."""
    start = old.find(records.BELOW)
    if not old.startswith(records.TAG) or start < 0 or records.ABOVE not in old[start:]:
        return message
    text = message.removeprefix(records.TAG).strip()
    return f"{records.TAG}{text}\n\n{old[start:]}"


def _leave_inflight_outputs(ds: Dataset, entries: list[StatusEntry], explicit: bool
                            ) -> list[StatusEntry]:
    """Paths an ``--explicit`` run that is still going declared as outputs are its own:
    named paths are refused, a whole-dataset save leaves them out (and says so)."""
    runs = inflight_runs(ds.git_dir)
    if not runs:
        return entries
    keep: list[StatusEntry] = []
    claimed: list[tuple[StatusEntry, InFlight]] = []
    for e in entries:
        owner = next((r for r in runs if r.claims(e.path)), None)
        if owner is None:
            keep.append(e)
        else:
            claimed.append((e, owner))
    if claimed and explicit:
        e, owner = claimed[0]
        raise RecorderError(f"{e.path} is a declared output of a run still going "
                            f"(pid {owner.pid}: {owner.command[:60]})",
                            hint="wait for that rr run to finish; it saves its outputs itself")
    if claimed:
        sys.stderr.write(f"rr: left out {len(claimed)} path(s) that a run still going "
                         f"(pid {claimed[0][1].pid}) declared as its outputs\n")
    return keep


def _head_time_ns(ds: Dataset) -> int:
    """Commit time of HEAD (content changed after it is suspect), or 0 without commits."""
    seconds = gitrepo.head_commit_time(ds.root)
    return seconds * 1_000_000_000 if seconds is not None else 0
