"""Refs: the repository itself, HEAD, branches, tags, and ref transactions."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from .. import proc
from ..errors import CommandError
from ._runner import (PathLike, batch_process, call_git, call_git_lines, call_git_optional,
                      call_git_success, git_dir)


def init(path: PathLike, *, bare: bool = False) -> None:
    call_git(["init", "-q", *(["--bare"] if bare else [])], path)


def init_shared(path: PathLike, mode: str) -> None:
    """``git init --shared=MODE`` of an existing repository: core.sharedRepository set and
    the permissions of what is there adjusted (DataLad's clone --reckless shared-MODE)."""
    call_git(["init", "-q", f"--shared={mode}"], path)


def head_sha(root: PathLike) -> str | None:
    """The commit HEAD points to (None before the first commit).  Read from HEAD and a loose
    branch ref when they are plain files (git writes both atomically), else asked of git."""
    fast = _head_from_files(Path(git_dir(root)))
    if fast is not None:
        return fast
    out = call_git_optional(["rev-parse", "-q", "--verify", "HEAD^{commit}"], root)
    return out.strip() if out else None


def _is_object_id(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _head_from_files(gd: Path) -> str | None:
    try:
        head = (gd / "HEAD").read_text(encoding="ascii", errors="replace").strip()
        if _is_object_id(head):
            return head  # detached
        if not head.startswith("ref: refs/heads/") or ".." in head:
            return None
        ref = head[len("ref: "):]
        common = gd
        if (gd / "commondir").is_file():  # a linked worktree: branches live in the main one
            common = (gd / (gd / "commondir").read_text().strip()).resolve()
        sha = (common / ref).read_text(encoding="ascii", errors="replace").strip()
        return sha if _is_object_id(sha) else None
    except OSError:
        return None  # packed, unborn, or not plain files: git knows


def current_branch(root: PathLike) -> str | None:
    """The branch HEAD is on (None when detached), read from HEAD itself when it is a plain
    file (no process), else from git."""
    try:
        text = (Path(git_dir(root)) / "HEAD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if text.startswith("ref: refs/heads/"):
        return text[len("ref: refs/heads/"):].strip()
    if text and not text.startswith("ref:"):
        return None  # detached: HEAD holds a commit id
    out = call_git_optional(["symbolic-ref", "-q", "--short", "HEAD"], root)
    return out.strip() if out else None


def resolve_commit(root: PathLike, rev: str) -> str | None:
    out = call_git_optional(["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], root)
    return out.strip() if out else None


def object_id(root: PathLike, spec: str) -> str | None:
    """The object ``spec`` names (``REV:PATH``, a ref...), or None when there is none."""
    out = call_git_optional(["rev-parse", "-q", "--verify", spec], root)
    return out.strip() if out else None


def tag(root: PathLike, name: str, rev: str = "HEAD") -> None:
    call_git(["tag", name, rev], root)


def check_ref_format_tag(root: PathLike, name: str) -> bool:
    return call_git_success(["check-ref-format", f"refs/tags/{name}"], root)


def branch_exists(root: PathLike, name: str) -> bool:
    return call_git_success(["show-ref", "--verify", "--quiet", f"refs/heads/{name}"], root)


def ref_names(root: PathLike, prefix: str, *, by_date: bool = False) -> list[str]:
    """Short names of the refs under ``prefix`` (``refs/tags``, ``refs/heads``...), in
    refname order or, with ``by_date``, oldest first."""
    sort = ["--sort=creatordate"] if by_date else []
    return call_git_lines(["for-each-ref", *sort, "--format=%(refname:short)", prefix], root)


def newest_remote_branch(root: PathLike, remote: str) -> str | None:
    """The branch of ``remote`` (remote-tracking, git-annex's own and HEAD left out) whose
    tip was committed last, or None: what DataLad checks out when a clone's HEAD is unborn."""
    names = call_git_lines(["for-each-ref", "--sort=-committerdate", "--format=%(refname)",
                            f"refs/remotes/{remote}/"], root)
    prefix = f"refs/remotes/{remote}/"
    for name in names:
        branch = name[len(prefix):]
        if branch not in ("HEAD", "git-annex") and not branch.startswith("synced/"):
            return branch
    return None


def has_refs(root: PathLike, patterns: Sequence[str]) -> bool:
    """Whether any ref matches one of ``patterns``."""
    out = call_git_optional(["for-each-ref", "--format=%(refname)", *patterns], root)
    return bool((out or "").strip())


def refs_by_commit(root: PathLike, patterns: Sequence[str]) -> dict[str, list[str]]:
    """commit sha -> short ref names (tags peeled to their commits)."""
    out = call_git_lines(["for-each-ref", "--format=%(objectname) %(*objectname) "
                          "%(refname:short)", *patterns], root)
    refs: dict[str, list[str]] = {}
    for line in out:
        obj, peeled, name = line.split(" ", 2)
        refs.setdefault(peeled or obj, []).append(name)
    return refs


def refs_under(root: PathLike, prefix: str) -> dict[str, str]:
    """ref name -> sha for the refs under ``prefix``."""
    out = call_git_lines(["for-each-ref", "--format=%(refname) %(objectname)", prefix], root)
    return dict(tuple(line.split(" ", 1)) for line in out if line)  # type: ignore[misc]


def update_ref(root: PathLike, ref: str, new: str, old: str, message: str = "") -> None:
    """Move ``ref`` to ``new`` only if it is still at ``old`` (atomic compare-and-swap)."""
    args = ["update-ref"]
    if message:
        args += ["-m", message]
    call_git([*args, ref, new, old], root)


def update_refs(root: PathLike, lines: Sequence[str]) -> None:
    """Several ref updates in one ``git update-ref --stdin`` transaction."""
    if lines:
        call_git(["update-ref", "--stdin"], root, input="".join(f"{x}\n" for x in lines).encode())


class RefTransactions:
    """One long-lived ``git update-ref --stdin`` for many small ref transactions (a job ref
    per finished job): each :meth:`update` is one transaction, on disk when it returns, without
    a process per transaction.  Use as a context manager; a failed transaction ends the
    process (the next update starts another) and raises CommandError."""

    def __init__(self, root: PathLike) -> None:
        self.root = root
        self._stack = contextlib.ExitStack()
        self._child: proc.subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RefTransactions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._child = None
        self._stack.close()

    def update(self, lines: Sequence[str]) -> None:
        """``lines`` (``update REF NEW [OLD]``, ``delete REF``, ...) in one transaction."""
        if not lines:
            return
        child = self._child
        if child is None or child.poll() is not None:
            self.close()
            child = self._child = self._stack.enter_context(
                batch_process(["update-ref", "--stdin"], self.root))
        assert child.stdin is not None and child.stdout is not None
        request = "start\n" + "".join(f"{x}\n" for x in lines) + "prepare\ncommit\n"
        answers = []
        try:
            child.stdin.write(request.encode("utf-8", "surrogateescape"))
            child.stdin.flush()
            for _ in range(3):  # start: ok, prepare: ok, commit: ok
                line = child.stdout.readline()
                answers.append(line)
                if not line.endswith(b": ok\n"):
                    break
        except OSError:
            pass
        if answers[2:] == [b"commit: ok\n"]:
            return
        try:
            child.stdin.close()
        except OSError:
            pass
        child.wait()
        err = child.stderr.read() if child.stderr is not None else b""
        code = child.returncode
        self.close()
        raise CommandError(["git", "update-ref", "--stdin"], code or 1,
                           err.decode("utf-8", "replace"))
