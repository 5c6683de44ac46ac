"""Run-merges: recording a command that made commits of its own, as DataLad >= 1.6 does.

When the command moved HEAD (or the HEAD of any installed subdataset), the run is recorded as
a two-parent merge commit carrying the normal run message: parent 1 is HEAD before the
command, parent 2 the command's last commit, or an extra commit "Remaining changes after
command execution" holding what the command left uncommitted.  Every dataset of the
hierarchy that gained commits (or whose subdataset got such a merge) gets its merge,
bottom-up; a subdataset that only has uncommitted changes gets a plain run commit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import config as cfgkeys
from . import gitrepo
from .dataset import Dataset
from .errors import RecorderError
from .gitrepo import StatusEntry
from .lock import deferred_signals
from .save import commit_entries

REMAINING = "Remaining changes after command execution"
DIRTY_COMMITTED = cfgkeys.RUN_DIRTY_COMMITTED


def sub_heads(ds: Dataset) -> dict[str, str]:
    """{top-relative path: HEAD} of the installed subdatasets at any depth (a subdataset is
    installed when its directory holds a repository, as for the rest of rr)."""
    heads: dict[str, str] = {}

    def walk(root: Path, prefix: str) -> None:
        if not (root / ".gitmodules").exists():
            return
        for path in gitrepo.submodule_paths(root):
            full = root / path
            if not (full / ".git").exists():
                continue
            head = gitrepo.head_sha(full)
            if head:
                heads[prefix + path] = head
                walk(full, f"{prefix}{path}/")

    walk(ds.root, "")
    return heads


@dataclass
class Moved:
    """What the command committed on its own."""

    top: bool  # the dataset's own HEAD moved
    subs: list[str] = field(default_factory=list)  # subdatasets whose HEAD moved

    def __bool__(self) -> bool:
        return self.top or bool(self.subs)


def reflog_action() -> str:
    """A GIT_REFLOG_ACTION unique to one run: git writes it into the reflog entry of every
    commit the command makes."""
    return f"rr-run-{os.getpid()}-{time.time_ns()}"


def _made_by_command(ds: Dataset, head_before: str, marker: str) -> bool:
    """Whether one of the reflog entries of HEAD after ``head_before`` carries ``marker``
    (commits of other rr processes, e.g. saves beside an ``--explicit`` run, do not).
    Without a readable reflog, every new commit counts as the command's (as in DataLad)."""
    if not marker:
        return True
    try:
        with open(ds.git_dir / "logs" / "HEAD", "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - (1 << 20)))  # the last MiB is plenty for one run
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return True
    for line in reversed(lines):
        head, _, message = line.partition("\t")
        if message.startswith(marker + ":"):
            return True
        if head.split(" ", 2)[1:2] == [head_before]:
            return False  # reached the entry that made HEAD what it was before the command
    return False


def detect(ds: Dataset, head_before: str | None, subs_before: dict[str, str],
           marker: str = "") -> Moved:
    top = head_before is not None and ds.head() != head_before and \
        _made_by_command(ds, head_before, marker)
    subs: list[str] = []
    if subs_before:
        now = sub_heads(ds)
        subs = sorted(p for p, sha in subs_before.items() if now.get(p, sha) != sha)
    return Moved(top, subs)


def ensure_not_rewritten(ds: Dataset, moved: Moved, subs_before: dict[str, str]) -> None:
    """Before anything is committed: every subdataset whose HEAD the command moved must have
    moved forward (a commit or merge on top of the one before); an amended or rewound one
    gets no commit of rr's, and the hint says how to put it back.  (The top dataset is
    checked by run.py before it comes here.)"""
    for path in moved.subs:
        before = subs_before.get(path)
        sub = Dataset(ds.root / path)
        head = sub.head()
        if before is None or head == before:
            continue
        if head is None or not gitrepo.is_ancestor(sub.root, before, head):
            raise RecorderError(
                f"the command rewrote the history of subdataset {path}: the commit before it "
                f"({before[:10]}) is not an ancestor of HEAD ({(head or 'no commit')[:10]}) "
                "any more; rr does not record a run on a rewritten branch",
                hint=f"to record the run on the commit it started from, put that branch back "
                     f"first (the files stay as they are): git -C {sub.root} reset --soft "
                     f"{before[:12]}")


def check_dirty_committed(ds: Dataset, head_before: str, declared: Sequence[str]) -> None:
    """An ``--explicit`` run with declared outputs whose command committed other files is an
    error unless ``datalad.run.dirty-committed`` says otherwise (DataLad's semantics: only
    the value ``error``, the default, refuses)."""
    if ds.config.typed(DIRTY_COMMITTED) != "error":
        return
    head = ds.head()
    assert head is not None
    committed = set(gitrepo.diff_names(ds.root, head_before, head))
    undeclared = sorted(committed - {d.rstrip("/") for d in declared})
    if undeclared:
        shown = ", ".join(undeclared[:6]) + (f" (and {len(undeclared) - 6} more)"
                                             if len(undeclared) > 6 else "")
        raise RecorderError(
            f"the command made commits that include files not declared as --output: {shown}",
            hint=f"declare them with --output, or set config {DIRTY_COMMITTED}=ignore "
                 f"(git config {DIRTY_COMMITTED} ignore) to record such runs")


def _merge(ds: Dataset, pre: str, message: str, received: list[int] | None) -> str:
    """The run-merge on top of the current HEAD (tree = HEAD's tree); moves the branch HEAD
    is on (or a detached HEAD), only if it is still where it was."""
    head = ds.head()
    assert head is not None
    if not gitrepo.is_ancestor(ds.root, pre, head):
        raise RecorderError(
            f"cannot record the run as a merge in {ds.root}: the commit before the command "
            f"({pre[:10]}) is not an ancestor of HEAD ({head[:10]}); the command reset or "
            "rewrote history")
    branch = gitrepo.current_branch(ds.root)
    with deferred_signals(received):
        sha = gitrepo.commit_tree(ds.root, head, [pre, head], message)
        gitrepo.update_ref(ds.root, f"refs/heads/{branch}" if branch else "HEAD", sha, head,
                           "rr run: run-merge")
    return sha


def _owner(path: str, subs: Sequence[str]) -> str:
    """The (sub)dataset, as a top-relative path ('' for the top), that contains ``path``."""
    best = ""
    for s in subs:
        if s != path and path.startswith(s + "/") and len(s) > len(best):
            best = s
    return best


def _commit_dirty_subdatasets(ds: Dataset, entries: list[StatusEntry], skip: set[str],
                              message: str) -> bool:
    """Subdatasets with only uncommitted changes get a plain commit with the run message
    (as DataLad saves them), before their superdataset commits "Remaining changes"."""
    done = False
    for e in entries:
        if e.submodule and e.sub_dirty and e.path not in skip:
            sub = Dataset(ds.root / e.path)
            sub_entries = [x for x in sub.status(untracked="all") if x.state != "unmerged"]
            if sub_entries:
                commit_entries(sub, sub_entries, message, only=False)
                done = True
    return done


def _save_one(ds: Dataset, entries: list[StatusEntry], pre: str | None, merge: bool,
              message: str, *, only: bool, skip: set[str],
              received: list[int] | None) -> tuple[str | None, list[str]]:
    """Commit leftovers (with "Remaining changes..." when a merge follows) and make the merge.
    Returns (new HEAD or None when nothing was committed, saved paths)."""
    if merge and _commit_dirty_subdatasets(ds, entries, skip, message):
        entries = ds.status([e.path for e in entries], untracked="all")
        entries = [e for e in entries if e.state != "unmerged"]
    sha = None
    if entries:
        sha = commit_entries(ds, entries, REMAINING if merge else message, only=only,
                             received=None if merge else received)
    if merge:
        assert pre is not None
        sha = _merge(ds, pre, message, received)
    return sha, [e.path for e in entries]


def save_subdatasets(ds: Dataset, moved: Moved, subs_before: dict[str, str], message: str,
                     declared: Sequence[str] | None) -> list[str]:
    """Bottom-up: every subdataset that gained commits, and each superdataset on the way up,
    gets its leftovers committed and a run-merge.  ``declared``: with ``--explicit``, the
    top-relative paths that may be saved.  Returns the top-level entries' paths to stage
    (the direct subdatasets that changed)."""
    if not moved.subs:
        return []
    installed = sorted(subs_before)
    todo = set(moved.subs)
    for s in moved.subs:  # every superdataset up to the top takes part
        up = _owner(s, installed)
        while up:
            todo.add(up)
            up = _owner(up, installed)
    merged: set[str] = set()
    for path in sorted(todo, key=lambda p: (-p.count("/"), p)):
        sub = Dataset(ds.root / path)
        children = [c for c in todo if _owner(c, installed) == path]
        if declared is None:
            entries = sub.status(untracked="all")
        else:
            mine = [os.path.relpath(d, path) for d in declared if d.startswith(path + "/")]
            mine += [os.path.relpath(c, path) for c in children]
            entries = sub.status(mine, untracked="all") if mine else []
        entries = [e for e in entries if e.state != "unmerged"]
        pre = subs_before.get(path)
        merge = pre is not None and (sub.head() != pre or any(c in merged for c in children))
        _save_one(sub, entries, pre, merge, message, only=declared is not None,
                  skip={os.path.relpath(c, path) for c in children}, received=None)
        if merge:
            merged.add(path)
    return sorted(p for p in todo if _owner(p, installed) == "")


def save_top(ds: Dataset, entries: list[StatusEntry], head_before: str, moved: Moved,
             direct_subs: Sequence[str], message: str, *, only: bool,
             received: list[int] | None) -> tuple[str | None, list[str]]:
    """The top-level dataset: leftovers, then the run-merge when it gained commits or one of
    its subdatasets got a merge (else a plain run commit, or nothing)."""
    merge = moved.top or bool(direct_subs)
    return _save_one(ds, entries, head_before, merge, message, only=only,
                     skip=set(direct_subs), received=received)


def committed_paths(ds: Dataset, head_before: str, sha: str) -> list[str]:
    return gitrepo.diff_names(ds.root, head_before, sha)


__all__ = ["REMAINING", "Moved", "detect", "sub_heads", "check_dirty_committed",
           "save_subdatasets", "save_top", "committed_paths"]
