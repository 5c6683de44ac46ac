"""update: bring a collaborator's work in (``datalad update``'s options and defaults).

Fetch from one sibling or all of them: branches become remote-tracking branches
(``origin/randomforest``), and the fetched git-annex branches are merged into the local one
(``git annex merge``), so that content the collaborator pushed is known here and ``rr get``
fetches it; so are rr's notes (durations in ``refs/notes/rr``, verification verdicts in
``refs/notes/rr-verify``: fetched beside ours and merged, see ``sharing.merge_sibling_notes``).
``--how`` says what happens to the current
branch, the only branch that ever moves: ``fetch`` (nothing, the default), ``merge``,
``ff-only`` or ``reset`` (to its counterpart on the sibling). With ``-r`` the same goes on in
installed subdatasets; with ``--follow parentds`` (rr's default) each is brought to the commit
its superdataset records, so that after a merge the dataset is consistent again.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

from . import annex, gitrepo
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .lock import dataset_lock, deferred_signals
from .results import ERROR, IMPOSSIBLE, NOTNEEDED, OK, Result
from .sharing import merge_sibling_notes
from .save import save as save_paths
from .recursion import check_recursion, deeper, may_descend
from .subdatasets import installed

HOWS = ("fetch", "merge", "ff-only", "reset")
FOLLOWS = ("sibling", "parentds")


def update(ds: Dataset, *, sibling: str | None = None, how: str = "fetch",
           how_subds: str | None = None, follow: str = "parentds",
           recursive: bool = False, recursion_limit: int | None = None) -> Iterator[Result]:
    """Check the request (raising before anything is fetched), then return the iterator of
    results: one per fetch and one per dataset brought up to date (``recursion_limit``:
    with ``recursive``, that many levels of subdatasets down)."""
    depth = check_recursion(recursive, recursion_limit)
    recursive = recursive and may_descend(depth)
    if how not in HOWS:
        raise UsageError(f"--how must be one of {', '.join(HOWS)}, not {how!r}")
    if how_subds is not None and how_subds not in HOWS:
        raise UsageError(f"--how-subds must be one of {', '.join(HOWS)}, not {how_subds!r}")
    if follow not in FOLLOWS:
        raise UsageError(f"--follow must be one of {', '.join(FOLLOWS)}, not {follow!r}")
    remotes = gitrepo.remotes(ds.root)
    if sibling is not None and sibling not in remotes:
        raise RecorderError(f"unknown sibling: {sibling}",
                            hint=f"siblings here: {', '.join(remotes) or 'none'} "
                                 "(add one with 'rr siblings add NAME URL')")
    if not remotes:  # as DataLad: nothing to do here, not an error
        nothing = Result("update", ".", NOTNEEDED, "no sibling", "dataset",
                         "no sibling to update from", {"how": how})
        if not recursive:
            return iter([nothing])
        return itertools.chain([nothing], _update_subdatasets(ds, ".", sibling, how_subds or how,
                                                              follow, depth))
    if how != "fetch":
        _check_can_move(ds, how, recursive)
        _target(ds, sibling, remotes)  # a detached HEAD or no sibling to follow: now
    return _iter_update(ds, ".", sibling, how, how_subds or how, follow, recursive, depth)


def _iter_update(ds: Dataset, rel: str, sibling: str | None, how: str, how_subds: str,
                 follow: str, recursive: bool, depth: int | None = None) -> Iterator[Result]:
    with dataset_lock(ds.git_dir, what="rr update"):
        yield from _fetch_all(ds, rel, sibling)
        if how != "fetch":
            _check_can_move(ds, how, recursive)  # again, under the lock
            yield _bring_up_to_date(ds, rel, sibling, how)
    if recursive:
        yield from _update_subdatasets(ds, rel, sibling, how_subds, follow, depth)


# --- fetching -------------------------------------------------------------------------------


def _fetch_all(ds: Dataset, rel: str, sibling: str | None) -> Iterator[Result]:
    names = [sibling] if sibling is not None else list(gitrepo.remotes(ds.root))
    fetched = False
    for name in names:
        outcome = gitrepo.fetch(ds.root, name)
        if not outcome.ok:
            why = outcome.why
            if sibling is not None and rel == ".":
                raise RecorderError(f"cannot fetch from {name}: {why}")
            yield Result("update", rel, ERROR, "fetch", "dataset",
                         f"cannot fetch from {name}: {why}", {"sibling": name})
            continue
        fetched = True
        extra = {"sibling": name}
        try:  # the collaborators' notes (durations, verdicts) too, merged with ours: none lost
            if merge_sibling_notes(ds, name):
                extra["notes"] = "merged"
        except RecorderError as exc:
            yield Result("update", rel, ERROR, "fetch", "dataset",
                         f"cannot merge the run notes of {name}: {exc.message}", extra)
        yield Result("update", rel, OK, "fetched", "dataset", f"fetched from {name}", extra)
    if fetched and ds.is_annex:
        # the siblings' git-annex branches (where their content is) into the local one:
        # only location tracking changes, never a file in the worktree
        with deferred_signals():
            annex.merge(ds.root)


# --- the current branch ---------------------------------------------------------------------


def _check_can_move(ds: Dataset, how: str, recursive: bool = False) -> None:
    """The clean-tree rule: nothing unsaved (untracked files included) where the branch is
    to move.  With ``recursive``, a subdataset that only has new commits of its own (clean
    inside) does not count: the recursion brings it up to date by the same rule, each
    subdataset on its own, so one that cannot move keeps none of the others from moving."""
    if gitrepo.sequencer_in_progress(ds.root):
        raise RecorderError("a merge or cherry-pick is in progress",
                            hint="finish it (resolve, then rr save) or git merge --abort first")
    # untracked files count (as in DataLad's check): --how reset would overwrite one that the
    # incoming commit tracks, and merge refuses only where git itself sees a clash
    dirty = [e.path for e in gitrepo.iter_status(ds.root, untracked="normal",
                                                 ignore_submodules="dirty")
             if not (recursive and e.submodule and not e.sub_dirty and not e.staged
                     and e.state == "modified")]
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" (and {len(dirty) - 3} more)" if len(dirty) > 3
                                        else "")
        raise RecorderError(f"--how {how} needs a clean dataset; unsaved changes in {shown}",
                            hint="save the changes first (rr save), or undo them")


def _check_no_clobber(root: Path, ours: str | None, theirs: str, how: str, what: str) -> None:
    """Refuse when the incoming commit adds a file where the work tree has one git does not
    track (an ignored file: untracked ones were refused already): git's reset, and even its
    merge, overwrite ignored files without a word."""
    base = ours or gitrepo.empty_tree(root)
    clashes = []
    for change in gitrepo.iter_diff_raw(root, base, theirs):
        if change.letter[:1] != "A":
            continue
        parts = change.path.split("/")
        for n in range(1, len(parts) + 1):  # the file itself, or a file where its folder goes
            here = root.joinpath(*parts[:n])
            if here.is_symlink() or (here.exists() and not here.is_dir()):
                clashes.append("/".join(parts[:n]))
                break
    if clashes:
        shown = ", ".join(clashes[:3]) + (f" (and {len(clashes) - 3} more)"
                                          if len(clashes) > 3 else "")
        raise RecorderError(f"--how {how} would overwrite {shown}: not tracked here (ignored), "
                            f"tracked by {what}",
                            hint="move the file(s) away first; nothing was changed")


def _target(ds: Dataset, sibling: str | None, remotes: dict[str, str]
            ) -> tuple[str, str, str]:
    """(current branch, sibling, remote-tracking ref) the current branch is brought to: the
    branch it tracks when that is on the sibling, else the sibling's branch of the same name
    (as DataLad's --follow sibling)."""
    branch = gitrepo.current_branch(ds.root)
    if branch is None:
        raise RecorderError("HEAD is detached: there is no current branch to update",
                            hint="check out a branch first (git checkout BRANCH)")
    up_remote, up_branch = gitrepo.upstream(ds.root, branch)
    name = sibling
    if name is None:
        if up_remote in remotes:
            name = up_remote
        elif len(remotes) == 1:
            name = next(iter(remotes))
        else:
            raise UsageError(f"branch {branch} tracks no sibling; say which one to update "
                             f"from with --sibling ({', '.join(remotes)})")
    theirs = up_branch if up_remote == name and up_branch else branch
    return branch, name, f"refs/remotes/{name}/{theirs}"


def _bring_up_to_date(ds: Dataset, rel: str, sibling: str | None, how: str) -> Result:
    branch, name, ref = _target(ds, sibling, gitrepo.remotes(ds.root))
    short = ref[len("refs/remotes/"):]
    theirs = gitrepo.resolve_commit(ds.root, ref)
    if theirs is None:  # nothing to bring this branch to: impossible, as DataLad says
        return Result("update", rel, IMPOSSIBLE, "no branch", "dataset",
                      f"{name} has no branch {short.split('/', 1)[1]}: {branch} left as it is",
                      {"sibling": name, "how": how})
    ours = ds.head()
    extra = {"sibling": name, "how": how, "branch": branch, "from": ours, "to": theirs}
    if ours == theirs or (how != "reset" and ours and gitrepo.is_ancestor(ds.root, theirs,
                                                                          ours)):
        return Result("update", rel, NOTNEEDED, "up to date", "dataset",
                      f"{branch} already contains {short}", extra)
    _check_no_clobber(ds.root, ours, theirs, how, short)
    if how == "reset":
        with deferred_signals():  # Ctrl-C waits: a worktree is never half reset
            gitrepo.reset_hard(ds.root, theirs)
        return Result("update", rel, OK, "reset", "dataset",
                      f"{branch} reset to {short} ({theirs[:8]})", extra)
    fast_forward = ours is None or gitrepo.is_ancestor(ds.root, ours, theirs)
    if how == "ff-only" and not fast_forward:
        raise RecorderError(
            f"{branch} ({ours[:8] if ours else '-'}) and {short} "
            f"({theirs[:8]}) have diverged: --how ff-only cannot bring them together",
            hint="merge them with: rr update --how merge" +
                 (f" --sibling {sibling}" if sibling else ""))
    with deferred_signals():  # Ctrl-C waits: git ends merged or in its conflict state
        outcome = gitrepo.merge_into_head(ds.root, theirs if fast_forward else short,
                                          ff_only=fast_forward)
    if not outcome.ok:
        conflicts = outcome.conflicts
        if conflicts:
            shown = ", ".join(conflicts[:3]) + (f" (and {len(conflicts) - 3} more)"
                                                if len(conflicts) > 3 else "")
            raise RecorderError(
                f"merging {short} into {branch} stopped at conflicts in {shown}; "
                "the dataset is in git's merge state",
                hint="resolve them and rr save, or go back with: git merge --abort")
        raise RecorderError(f"merging {short} into {branch} failed: {outcome.why}",
                            hint="nothing was changed; see git status")
    extra["to"] = ds.head()
    state = "fast-forward" if fast_forward else "merged"
    return Result("update", rel, OK, state, "dataset",
                  f"{branch} {'fast-forwarded to' if fast_forward else 'merged with'} {short}",
                  extra)


# --- subdatasets ----------------------------------------------------------------------------


def _update_subdatasets(ds: Dataset, rel: str, sibling: str | None, how: str, follow: str,
                        depth: int | None = None) -> Iterator[Result]:
    """Each installed subdataset (``depth`` levels down; None: all), one by one (a failure
    in one is its result, the others go on); with ``--follow sibling`` the new states of
    those that moved are then saved in ``ds``, as DataLad saves them."""
    if not may_descend(depth):
        return
    direct = {(s if rel == "." else f"{rel}/{s}"): s for s in ds.subdatasets()}
    moved: list[str] = []
    for result in _each_subdataset(ds, rel, sibling, how, follow, deeper(depth)):
        yield result
        if result.action == "update" and result.status == OK and result.path in direct and \
                result.state in ("fast-forward", "merged", "reset"):
            moved.append(direct[result.path])
    if moved and follow == "sibling" and how != "fetch":
        try:
            saved = save_paths(ds, moved, message="[DATALAD] Save updated subdatasets",
                               base=ds.root)
        except RecorderError as exc:
            yield Result("save", rel, ERROR, "", "dataset",
                         f"cannot save the updated subdatasets: {exc.message}")
        else:
            yield Result("save", rel, saved.status, "", "dataset",
                         f"saved the new state of {', '.join(moved)}",
                         {"commit": saved.commit})


def _each_subdataset(ds: Dataset, rel: str, sibling: str | None, how: str, follow: str,
                     depth: int | None = None) -> Iterator[Result]:
    for sub_rel in sorted(ds.subdatasets()):
        if not installed(ds, sub_rel):
            continue
        sub = Dataset(ds.root / sub_rel)
        path = sub_rel if rel == "." else f"{rel}/{sub_rel}"
        remotes = gitrepo.remotes(sub.root)
        name = sibling if sibling in remotes else None
        if (sibling is not None and name is None) or not remotes:
            yield Result("update", path, NOTNEEDED, "no sibling", "dataset",
                         f"no sibling {sibling} here" if sibling else "no sibling here")
            if how != "fetch" and follow == "parentds":
                yield _to_recorded(ds, sub, path, sub_rel, how)
            yield from _update_subdatasets(sub, path, sibling, how, follow, depth)
            continue
        try:
            with dataset_lock(sub.git_dir, what="rr update"):
                yield from _fetch_all(sub, path, name)
                if how == "fetch":
                    pass
                elif follow == "parentds":
                    yield _to_recorded(ds, sub, path, sub_rel, how)
                else:
                    _check_can_move(sub, how, True)
                    yield _bring_up_to_date(sub, path, name, how)
        except RecorderError as exc:
            yield Result("update", path, IMPOSSIBLE, "", "dataset", exc.message)
        yield from _update_subdatasets(sub, path, sibling, how, follow, depth)


def _to_recorded(ds: Dataset, sub: Dataset, path: str, sub_rel: str, how: str) -> Result:
    """Bring a subdataset to the commit its superdataset records: a fast-forward, merge or
    reset of its current branch as ``how`` says, or a checkout when it is detached (as rr
    installs subdatasets); no other branch moves."""
    recorded = gitrepo.gitlink(ds.root, sub_rel)
    here = sub.head()
    extra = {"how": how, "from": here, "to": recorded, "follow": "parentds"}
    if recorded is None or recorded == here:
        return Result("update", path, NOTNEEDED, "up to date", "dataset",
                      "at the recorded commit", extra)
    if gitrepo.resolve_commit(sub.root, recorded) is None:
        return Result("update", path, IMPOSSIBLE, "", "dataset",
                      f"the recorded commit {recorded[:8]} is not available from its siblings",
                      extra)
    try:
        _check_can_move(sub, how)
    except RecorderError as exc:
        return Result("update", path, IMPOSSIBLE, "", "dataset", exc.message, extra)
    try:
        _check_no_clobber(sub.root, here, recorded, how, f"the recorded commit {recorded[:8]}")
    except RecorderError as exc:
        return Result("update", path, IMPOSSIBLE, "", "dataset", exc.message, extra)
    branch = gitrepo.current_branch(sub.root)
    if branch is None:
        with deferred_signals():
            gitrepo.checkout(sub.root, recorded, detach=True)
        return Result("update", path, OK, "checked out", "dataset",
                      f"checked out the recorded commit {recorded[:8]}", extra)
    if how == "reset":
        with deferred_signals():
            gitrepo.reset_hard(sub.root, recorded)
        return Result("update", path, OK, "reset", "dataset",
                      f"{branch} reset to the recorded commit {recorded[:8]}", extra)
    if here and gitrepo.is_ancestor(sub.root, recorded, here):
        return Result("update", path, NOTNEEDED, "up to date", "dataset",
                      f"{branch} already contains the recorded commit {recorded[:8]}", extra)
    fast_forward = here is None or gitrepo.is_ancestor(sub.root, here, recorded)
    if how == "ff-only" and not fast_forward:
        return Result("update", path, IMPOSSIBLE, "", "dataset",
                      f"{branch} ({here[:8] if here else '-'}) and the recorded commit "
                      f"{recorded[:8]} have diverged: --how ff-only cannot bring them "
                      "together (rr update --how merge)", extra)
    with deferred_signals():
        outcome = gitrepo.merge_into_head(sub.root, recorded, ff_only=fast_forward)
    if not outcome.ok:
        conflicts = outcome.conflicts
        return Result("update", path, ERROR, "conflict" if conflicts else "", "dataset",
                      f"merging the recorded commit {recorded[:8]} into {branch} stopped at "
                      f"conflicts in {', '.join(conflicts[:3])}; resolve and rr save, or "
                      "git merge --abort" if conflicts else
                      f"merging the recorded commit {recorded[:8]} into {branch} failed",
                      extra)
    extra["to"] = sub.head()
    return Result("update", path, OK, "fast-forward" if fast_forward else "merged", "dataset",
                  f"{branch} {'fast-forwarded' if fast_forward else 'merged'} to the recorded "
                  f"commit {recorded[:8]}", extra)


__all__ = ["update", "HOWS", "FOLLOWS"]
