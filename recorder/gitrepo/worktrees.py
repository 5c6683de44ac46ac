"""Linked worktrees (an array job's, a subdataset's in a job)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import CommandError

from ._runner import PathLike, call_git, git_dir, run


def worktree_add(root: PathLike, path: PathLike, commit: str) -> None:
    """A detached linked worktree at ``path`` checked out at ``commit``.  Two added at once
    (the workers of an array starting) can meet: git reads the other's half-written entry in
    .git/worktrees and gives up before making its own; it is tried again then."""
    for attempt in range(4):
        try:
            call_git(["worktree", "add", "-q", "--detach", str(path), commit], root)
            return
        except CommandError as exc:
            if attempt == 3 or "failed to read" not in exc.stderr or \
                    "worktrees" not in exc.stderr or os.path.lexists(path):
                raise
            time.sleep(0.05 * (attempt + 1))


def main_worktree(root: PathLike) -> Path | None:
    """The main worktree of the repository when ``root`` is a linked worktree (an array job's),
    else None (also for a bare main repository)."""
    gd = Path(git_dir(root))
    try:
        common = (gd / (gd / "commondir").read_text().strip()).resolve()
    except OSError:
        return None
    return common.parent if common.name == ".git" else None


def worktree_reset(root: PathLike, commit: str) -> None:
    """Back to ``commit`` with nothing else in the work tree (a reused job worktree)."""
    call_git(["reset", "-q", "--hard", commit], root)
    call_git(["clean", "-q", "-ffdx"], root)


def worktree_remove(root: PathLike, path: PathLike) -> None:
    run(["worktree", "remove", "--force", "--force", str(path)], root, check=False)


def worktree_prune(root: PathLike) -> None:
    run(["worktree", "prune"], root, check=False)
