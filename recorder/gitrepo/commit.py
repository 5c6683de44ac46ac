"""Committing: the index committed through ``git commit`` or, when nothing would differ, the
plumbing (write-tree, commit-tree, update-ref); the checks around it."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from .. import proc
from ..errors import CommandError, RecorderError
from ._runner import PathLike, call_git, call_git_optional, call_git_paths, git_dir
from .refs import head_sha


def commit(root: PathLike, message: str, *, only: Sequence[str] | None = None,
           allow_empty: bool = False, hooks_path: str | None | bool = False,
           head: str | None = None, plain: bool = False,
           maintenance: str = "ask") -> str:
    """Commit the index (or, with ``only``, just those paths) and return the new sha.

    The message gets git's 'whitespace' cleanup exactly as for ``git commit -F`` (which is
    how DataLad commits).  ``plain`` (the caller checked git's config: no signing, no
    clean-up mode, no message encoding) with ``head`` known, the whole index committed and no
    hook that git commit would run: written with write-tree, commit-tree and update-ref —
    the same commit and reflog entry without git commit's refresh of the whole index (a
    stat of every tracked file, ~35 ms per 10,000 files; rr's staging check already looked).
    ``maintenance``, after a plumbing commit, as git commit's automatic maintenance: "ask"
    (``git maintenance run --auto``), "off" (maintenance.auto is false: nothing, as git
    commit), "judge" (no gc.* or maintenance.* setting: asked only when it may be due).
    """
    if plain and head and only is None and _no_commit_hooks(root, hooks_path):
        return _commit_plumbing(root, message, head, maintenance)
    extra = ["--allow-empty"] if allow_empty else []
    if only is not None:
        return _git_commit(root, message, [*extra, "--only"], hooks_path, only)
    return _git_commit(root, message, extra, hooks_path)


def commit_amend(root: PathLike, message: str, *,
                 hooks_path: str | None | bool = False) -> str:
    """Replace HEAD's commit by one with the index and ``message`` (``git commit --amend``:
    same parents and author); the new sha.  rr's duration note moves with it (git's
    notes.rewriteRef); a verification verdict does not (it was about the old commit)."""
    return _git_commit(root, message, ["--amend", "--allow-empty"], hooks_path,
                       config=["-c", "notes.rewriteRef=refs/notes/rr"])


def _git_commit(root: PathLike, message: str, extra: list[str],
                hooks_path: str | None | bool, paths: Sequence[str] | None = None,
                config: Sequence[str] = ()) -> str:
    """``git commit`` with ``message`` from a file (git's whitespace clean-up, as ``-F``);
    the new HEAD."""
    msg_path = Path(git_dir(root)) / "RR_COMMIT_MSG"
    msg_path.write_text(message, encoding="utf-8")
    args = [*config, "commit", "-q", "--no-edit", "-F", str(msg_path), *extra]
    if _only_annex_precommit_hook(root, hooks_path):
        # git-annex's own pre-commit hook fixes up files staged behind its back; rr stages
        # through git-annex, so the hook (a git-annex process walking the tree) is skipped
        args.append("--no-verify")
    try:
        if paths is not None:
            call_git_paths(args, root, paths)
        else:
            call_git(args, root)
    finally:
        msg_path.unlink(missing_ok=True)
    sha = head_sha(root)
    assert sha is not None
    return sha


def _commit_plumbing(root: PathLike, message: str, head: str,
                     maintenance: str = "ask") -> str:
    text = stripspace(message)
    if not text:
        raise CommandError(["git", "commit"], 1, "Aborting commit due to empty commit message.")
    # the caller has checked that the index differs from head (save.commit_entries)
    tree = call_git(["write-tree"], root).strip()
    sha = call_git(["commit-tree", tree, "-p", head], root,
                   input=text.encode("utf-8")).strip()
    subject = text.split("\n", 1)[0]
    # as git commit: both HEAD's and the branch's reflog, and only if HEAD is still `head`
    call_git(["update-ref", "-m", f"commit: {subject}", "HEAD", sha, head], root)
    if maintenance == "ask" or (maintenance == "judge" and maintenance_may_be_due(root)):
        if os.fspath(root) in _deferred:  # deferred_maintenance: once, at the end
            _deferred[os.fspath(root)] += 1
        else:
            _maintenance(root)
    return sha


def _maintenance(root: PathLike) -> None:
    call_git(["maintenance", "run", "--auto", "--quiet"], root)  # what git commit does after


_deferred: dict[str, int] = {}  # root -> commits whose auto maintenance waits


@contextlib.contextmanager
def deferred_maintenance(root: PathLike) -> Iterator[None]:
    """git's auto maintenance after each plumbing commit in ``root`` left to the end of the
    block: one ``git maintenance run --auto`` then, if a commit was made (a replay's many
    records)."""
    key = os.fspath(root)
    if key in _deferred:
        yield
        return
    _deferred[key] = 0
    try:
        yield
    finally:
        if _deferred.pop(key):
            with contextlib.suppress(CommandError):  # not to hide what ended the block
                _maintenance(root)


# git's defaults: gc.auto 6700 loose objects, estimated from objects/17 (more than
# ceil(6700 / 256) = 27 there), and gc.autoPackLimit 50 packs; asked of git well before
_LOOSE_IN_17 = 20
_PACKS = 40


# the git releases whose automatic maintenance runs only the gc task by default (a later one
# makes the "geometric" strategy the default, with conditions of its own)
_GC_DEFAULT_BEFORE = (2, 52)


def maintenance_may_be_due(root: PathLike) -> bool:
    """Whether ``git maintenance run --auto`` may have work with git's default settings (in
    the git releases where its only default task is gc, due past git's thresholds of loose
    objects or packs): checked on the object store's files with a margin, so that a run's
    commit starts no process just to learn that nothing is due, and git's own housekeeping
    still happens when it is.  Any other git release: True (git decides)."""
    common = Path(git_dir(root))
    if (common / "commondir").exists():  # a linked worktree: the shared object store
        common = common / (common / "commondir").read_text().strip()
    version = _git_version(common)
    if version is None or version >= _GC_DEFAULT_BEFORE:
        return True
    objects = common / "objects"
    try:
        with os.scandir(objects / "17") as entries:
            loose = sum(1 for e in entries if len(e.name) >= 38)
    except FileNotFoundError:
        loose = 0
    except OSError:
        return True
    try:
        with os.scandir(objects / "pack") as entries:
            packs = sum(1 for e in entries if e.name.endswith(".pack"))
    except FileNotFoundError:
        packs = 0
    except OSError:
        return True
    return loose >= _LOOSE_IN_17 or packs >= _PACKS or (objects / "info" / "alternates").exists()


def _git_version(common: Path) -> tuple[int, int] | None:
    """git's (major, minor) without a process per call: kept in ``.git/rr/git-version``
    keyed by the git binary (as rr keeps git-annex's version)."""
    def ask() -> str | None:
        out = call_git_optional(["version"], common)
        return None if out is None else out.strip().removeprefix("git version ")

    version = proc.kept_version("git", common / "rr" / "git-version", ask)
    return None if version is None else _major_minor(version)


def _major_minor(version: str) -> tuple[int, int] | None:
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found.group(1)), int(found.group(2))) if found else None


def stripspace(message: str) -> str:
    """git's 'whitespace' message clean-up (``git stripspace`` without -s): trailing
    whitespace of each line removed, runs of empty lines made one, leading and trailing
    empty lines removed, a final newline."""
    out: list[str] = []
    empty = 0
    for line in message.split("\n"):
        line = line.rstrip(" \t\r")  # git's isspace: no \v, \f or Unicode spaces
        if not line:
            empty += 1
            continue
        if empty and out:
            out.append("")
        empty = 0
        out.append(line)
    return "\n".join(out) + "\n" if out else ""


def _no_commit_hooks(root: PathLike, hooks_path: str | None | bool) -> bool:
    """No hook would run in git commit --no-verify (git-annex's stock pre-commit aside)."""
    if not _only_annex_precommit_hook(root, hooks_path):
        return False
    hooks = Path(git_dir(root)) / "hooks"
    return not any((hooks / name).exists() for name in ("prepare-commit-msg", "post-commit"))


_ANNEX_PRECOMMIT = "#!/bin/sh\n# automatically configured by git-annex\ngit annex pre-commit .\n"


def _only_annex_precommit_hook(root: PathLike, hooks_path: str | None | bool = False) -> bool:
    """True when the only hooks --no-verify would skip are git-annex's stock pre-commit.
    ``hooks_path``: core.hooksPath when the caller knows it (None: unset), False: ask git."""
    gd = Path(git_dir(root))
    if (gd / "commondir").exists():  # a linked worktree (an array job): hooks are shared
        gd = gd / (gd / "commondir").read_text().strip()
    hooks = gd / "hooks"
    try:
        if (hooks / "pre-commit").read_text() != _ANNEX_PRECOMMIT:
            return False
    except OSError:
        return False
    if (hooks / "commit-msg").exists():
        return False
    if hooks_path is False:
        return call_git_optional(["config", "core.hooksPath"], root) is None
    return hooks_path is None


def ensure_no_index_lock(root: PathLike) -> None:
    """Raise when ``.git/index.lock`` exists: a git process is running, or one was killed
    (SIGKILL, power loss) and left it; every later commit would fail after the command ran."""
    lock = Path(git_dir(root)) / "index.lock"
    if lock.exists():
        shown = os.path.relpath(lock, root) if str(lock).startswith(str(root)) else str(lock)
        raise RecorderError(f"{shown} exists: a git process is running in this dataset, or "
                            "one was killed and left its lock",
                            hint=f"remove {lock} if no git process is running")


def write_commit_editmsg(root: PathLike, message: str) -> Path:
    path = Path(git_dir(root)) / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    return path
