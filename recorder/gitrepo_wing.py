"""Git operations the run/replay wing needs that gitrepo does not offer yet (temporary: to be
folded into the gitrepo package).  Every function is named by what it returns; none returns a
raw process result.  They are built on gitrepo's own helpers: git starts only there."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from .gitrepo import call_git, call_git_lines, call_git_success, call_git_z, nul_paths

PathLike = str | Path

_LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


def iter_first_parent_lost(root: PathLike, tip: str, kept: str) -> Iterator[tuple[str, ...]]:
    """The commits on ``tip``'s first-parent line that ``kept`` does not contain, each as
    (commit, parent, ...), newest first."""
    for line in call_git_lines(["rev-list", "--first-parent", "--parents", tip, f"^{kept}",
                                "--"], root):
        yield tuple(line.split())


def iter_first_parent_since(root: PathLike, base: str, tip: str) -> Iterator[str]:
    """The commits on ``tip``'s first-parent line after ``base``, oldest first."""
    yield from call_git_lines(["rev-list", "--first-parent", "--reverse", f"{base}..{tip}",
                               "--"], root)


def call_abort_cherry_pick(root: PathLike) -> bool:
    """``git cherry-pick --abort``; whether it succeeded."""
    return call_git_success(["cherry-pick", "--abort"], root)


def call_abort_merge(root: PathLike) -> bool:
    """``git merge --abort``; whether it succeeded."""
    return call_git_success(["merge", "--abort"], root)


def call_move_branch(root: PathLike, branch: str, new: str, old: str) -> None:
    """Point ``refs/heads/BRANCH`` at ``new`` if it is still at ``old``."""
    call_git(["update-ref", f"refs/heads/{branch}", new, old], root)


def call_checkout_branch(root: PathLike, branch: str) -> None:
    """Check out an existing branch."""
    call_git(["checkout", "-q", branch, "--"], root)


def empty_tree(root: PathLike) -> str:
    """The id of the empty tree (in this repository's hash)."""
    return call_git(["hash-object", "-t", "tree", "/dev/null"], root).strip()


def iter_raw_diff(root: PathLike, old: str, new: str
                  ) -> Iterator[tuple[str, str, str, str, str, str]]:
    """``git diff-tree -r --raw`` between two commits or trees, without renames: (old mode,
    new mode, old id, new id, status, path) per changed file."""
    out = call_git_z(["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old, new],
                     root)
    for i in range(0, len(out) - 1, 2):
        parts = out[i].lstrip(":").split()
        if len(parts) >= 5:
            yield parts[0], parts[1], parts[2], parts[3], parts[4], out[i + 1]


def object_types_at_head(root: PathLike, paths: Sequence[str]) -> list[str]:
    """The type of ``HEAD:PATH`` for each path ("blob", "tree", "commit"; "missing" when
    HEAD has no such path)."""
    listing = call_git(["cat-file", "--batch-check=%(objecttype)"], root,
                       input="".join(f"HEAD:{p}\n" for p in paths).encode(
                           "utf-8", "surrogateescape"))
    kinds = [line.strip() for line in listing.splitlines()]
    return [k if k in ("blob", "tree", "commit") else "missing" for k in kinds]


def call_restore_from_head(root: PathLike, paths: Sequence[str]) -> None:
    """The paths in the work tree and the index as HEAD has them (literal paths)."""
    call_git(["checkout", "-q", "HEAD", "--pathspec-from-file=-", "--pathspec-file-nul"],
             root, input=nul_paths(paths), env=_LITERAL)


def call_unstage(root: PathLike, paths: Sequence[str]) -> None:
    """The paths out of the index (kept in the work tree; literal paths)."""
    call_git(["rm", "-q", "--cached", "--ignore-unmatch", "--pathspec-from-file=-",
              "--pathspec-file-nul"], root, input=nul_paths(paths), env=_LITERAL)


def call_reset_hard_and_clean(root: PathLike, commit: str) -> None:
    """The work tree and the index exactly as ``commit`` (untracked files removed)."""
    call_git(["reset", "-q", "--hard", commit], root)
    call_git(["clean", "-q", "-f", "-d"], root)
