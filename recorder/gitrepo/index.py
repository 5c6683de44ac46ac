"""The index and the work tree: status, listing, staging, checkout and reset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ._runner import (LITERAL_PATHSPECS, PathLike, call_git, call_git_paths, call_git_z,
                      call_git_z_paths, git_dir, run)
from .refs import head_sha


class StatusEntry(NamedTuple):  # a NamedTuple: cheaper than a dataclass at start-up
    """One path from ``git status --porcelain=v2``.

    ``state`` is one of added, modified, deleted, typechange, renamed, untracked, unmerged.
    ``submodule`` is true for a subdataset entry.
    """

    path: str
    state: str
    submodule: bool = False
    staged: bool = False
    sub_dirty: bool = False  # a subdataset with uncommitted changes inside
    worktree: bool = True  # the worktree differs from the index (False: fully staged)
    head_mode: str = ""  # the octal mode in HEAD ("000000": not in HEAD; "120000": a symlink)


_XY_STATE = {"A": "added", "M": "modified", "D": "deleted", "T": "typechange", "R": "renamed",
             "C": "added"}


def iter_status(
    root: PathLike,
    paths: Sequence[str] | None = None,
    *,
    untracked: str = "normal",
    ignore_submodules: str = "none",
) -> list[StatusEntry]:
    """Parse ``git status --porcelain=v2 -z`` (one call) into entries."""
    args = ["status", "--porcelain=v2", "-z", f"--untracked-files={untracked}",
            f"--ignore-submodules={ignore_submodules}"]
    if paths is not None:
        # git status has no --pathspec-from-file: pass literal pathspecs in argv chunks
        out = call_git_z_paths(args, root, paths)
    else:
        out = call_git_z(args, root)
    entries: list[StatusEntry] = []
    i = 0
    while i < len(out):
        item = out[i]
        kind = item[:1]
        if kind == "1":
            parts = item.split(" ", 8)
            xy, sub, path = parts[1], parts[2], parts[8]
            entries.append(_entry(path, xy, sub, parts[3]))
        elif kind == "2":
            parts = item.split(" ", 9)
            xy, sub, path = parts[1], parts[2], parts[9]
            orig = out[i + 1]
            i += 1
            entries.append(_entry(path, xy, sub, parts[3]))
            entries.append(StatusEntry(orig, "deleted", staged=True, worktree=False))
        elif kind == "u":
            parts = item.split(" ", 10)
            entries.append(StatusEntry(parts[10], "unmerged", parts[2].startswith("S")))
        elif kind == "?":
            entries.append(StatusEntry(item[2:], "untracked"))
        i += 1
    return entries


def _entry(path: str, xy: str, sub: str, head_mode: str = "") -> StatusEntry:
    x, y = xy[0], xy[1]
    # the worktree state wins: a staged add that was deleted again is a deletion
    code = y if y != "." else x
    state = _XY_STATE.get(code, "modified")
    if x == "A" and y == "M":
        state = "added"
    dirty_inside = sub.startswith("S") and (sub[2] == "M" or sub[3] == "U")
    return StatusEntry(path, state, submodule=sub.startswith("S"), staged=x != ".",
                       sub_dirty=dirty_inside, worktree=y != ".", head_mode=head_mode)


def staged_paths(root: PathLike, paths: Sequence[str] | None = None, *,
                 head: str | None | bool = False) -> set[str]:
    """Paths whose index entry differs from HEAD (all of them, or among ``paths``);
    ``head``: HEAD's commit when the caller knows it (None: no commit yet)."""
    if (head_sha(root) if head is False else head) is None:
        if paths is None:
            return set(call_git_z(["ls-files", "-z"], root))
        return set(call_git_z_paths(["ls-files", "-z"], root, paths))
    # --ignore-submodules=none: a subdataset's new commit counts whatever diff.ignoreSubmodules
    # says (DataLad's test_save: 'all' must not hide it)
    args = ["diff", "--cached", "--name-only", "-z", "--no-renames", "--ignore-submodules=none",
            "HEAD"]
    if paths is None:
        return set(call_git_z(args, root))
    return set(call_git_z_paths(args, root, paths))


def unstaged_paths(root: PathLike, paths: Sequence[str]) -> list[str]:
    """Of ``paths``, those whose worktree state differs from the index (committed
    subdatasets count as staged even when dirty inside)."""
    if not paths:
        return []
    return [e.path for e in iter_status(root, paths, untracked="all", ignore_submodules="dirty")
            if e.worktree and e.state != "unmerged"]


def untracked_paths(root: PathLike, paths: Sequence[str] | None = None,
                    each_file: bool = False) -> list[str]:
    """Untracked, not ignored paths; a directory holding only untracked files as ``dir/``
    (what ``git status`` shows), or with ``each_file`` every file in it."""
    args = ["ls-files", "-z", "--others", "--exclude-standard",
            *([] if each_file else ["--directory", "--no-empty-directory"])]
    return call_git_z_paths(args, root, paths) if paths is not None else call_git_z(args, root)


def unmerged_paths(root: PathLike) -> list[str]:
    return sorted(set(call_git_z(["diff", "--name-only", "-z", "--diff-filter=U"], root)))


# --- index entries ------------------------------------------------------------------------


def ls_files(root: PathLike, paths: Sequence[str] | None = None) -> list[str]:
    args = ["ls-files", "-z"]
    if paths is None:
        return call_git_z(args, root)
    return call_git_z_paths(args, root, paths)


def ls_files_symlinks(root: PathLike, paths: Sequence[str]) -> list[str]:
    """Tracked paths under ``paths`` whose index mode is a symlink (locked annexed files)."""
    if not paths:
        return []
    out = call_git_z_paths(["ls-files", "-s", "-z"], root, paths)
    result = []
    for item in out:
        meta, _, path = item.partition("\t")
        if meta.startswith("120000 "):
            result.append(path)
    return result


def ls_files_stage(root: PathLike, paths: Sequence[str] | None = None
                   ) -> list[tuple[str, str, str]]:
    """(mode, blob, path) of every index entry (stage 0), under ``paths`` when given."""
    args = ["ls-files", "-s", "-z"]
    out = call_git_z_paths(args, root, paths) if paths is not None else call_git_z(args, root)
    result = []
    for item in out:
        meta, _, path = item.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[2] == "0":
            result.append((parts[0], parts[1], path))
    return result


# --- staging ------------------------------------------------------------------------------


def add(root: PathLike, paths: Sequence[str], *, update_only: bool = False) -> None:
    """``git add -A`` of exactly ``paths`` (literal pathspecs, fed on stdin)."""
    if not paths:
        return
    call_git_paths(["add", "-A" if not update_only else "-u"], root, paths)


def rm(root: PathLike, paths: Sequence[str], *, cached: bool = False) -> None:
    """``git rm -r`` of exactly ``paths`` (literal pathspecs); with ``cached`` the worktree
    is left alone."""
    call_git_paths(["rm", "-q", "-r", "-f", *(["--cached"] if cached else [])], root, paths)


def forget(root: PathLike, paths: Sequence[str]) -> None:
    """Take ``paths`` out of the index, the files left as they are; a path not in the index
    is no error (``git rm --cached --ignore-unmatch``)."""
    call_git_paths(["rm", "-q", "--cached", "--ignore-unmatch"], root, paths)


def unstage(root: PathLike, paths: Sequence[str]) -> None:
    """Reset the index entries of ``paths`` to HEAD's (``git reset -- PATHS``)."""
    if paths:
        call_git(["reset", "-q", "--", *paths], root, env=LITERAL_PATHSPECS)


# --- checkout and reset -----------------------------------------------------------------


def checkout(root: PathLike, rev: str, *, new_branch: str | None = None,
             detach: bool = False) -> None:
    args = ["checkout", "-q"]
    if new_branch:
        args += ["-b", new_branch]
    elif detach:
        args.append("--detach")
    call_git([*args, rev], root)


def checkout_branch(root: PathLike, branch: str) -> None:
    """Check out the existing ``branch`` (never a path of that name)."""
    call_git(["checkout", "-q", branch, "--"], root)


def checkout_tracking(root: PathLike, branch: str, remote: str) -> None:
    """Create ``branch`` from ``remote``'s branch of that name, tracking it, and check it out."""
    call_git(["checkout", "-q", "-b", branch, "--track", f"{remote}/{branch}", "--"], root)


def set_branch_and_checkout(root: PathLike, branch: str, rev: str) -> None:
    call_git(["checkout", "-q", "-B", branch, rev], root)


def checkout_paths(root: PathLike, rev: str, paths: Sequence[str]) -> None:
    """Index and work tree of exactly ``paths`` as in ``rev``."""
    call_git_paths(["checkout", "-q", rev], root, paths)


def reset_hard(root: PathLike, rev: str) -> None:
    call_git(["reset", "-q", "--hard", rev], root)


def clean_untracked(root: PathLike) -> None:
    """Remove untracked files and directories (ignored ones stay: ``git clean -f -d``)."""
    call_git(["clean", "-q", "-f", "-d"], root)


def read_tree_update(root: PathLike, old: str, new: str) -> None:
    """Move the index and the work tree from ``old`` to ``new`` (a fast-forward of the work
    tree; git refuses when a local change would be overwritten)."""
    call_git(["read-tree", "-m", "-u", old, new], root)


def sequencer_in_progress(root: PathLike) -> bool:
    gd = Path(git_dir(root))
    return (gd / "CHERRY_PICK_HEAD").exists() or (gd / "MERGE_HEAD").exists()


def abort_sequencer(root: PathLike) -> None:
    """Abort a stopped cherry-pick and a stopped merge, whichever is in progress."""
    gd = Path(git_dir(root))
    if (gd / "CHERRY_PICK_HEAD").exists():
        run(["cherry-pick", "--abort"], root, check=False)
    if (gd / "MERGE_HEAD").exists():
        run(["merge", "--abort"], root, check=False)

