"""The git runner: the only code in rr that builds a git argv and starts git (through
:mod:`recorder.proc`).  Private to :mod:`recorder.gitrepo`; the rest of rr calls the named
functions of the package, never these."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from .. import proc
from ..errors import CommandError

PathLike = str | os.PathLike[str]

LITERAL_PATHSPECS = {"GIT_LITERAL_PATHSPECS": "1"}


def run(
    args: Sequence[str],
    cwd: PathLike,
    *,
    input: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> proc.CompletedProcess[bytes]:
    """``git ARGS`` to completion; with ``check`` a non-zero exit raises CommandError."""
    return proc.capture(["git", *args], cwd=cwd, input=input, check=check, env=env)


def call_git(args: Sequence[str], cwd: PathLike, *, input: bytes | None = None,
             env: dict[str, str] | None = None) -> str:
    """stdout of ``git ARGS`` as text."""
    return run(args, cwd, input=input, env=env).stdout.decode("utf-8", "surrogateescape")


def call_git_lines(args: Sequence[str], cwd: PathLike) -> list[str]:
    return call_git(args, cwd).splitlines()


def split_z(out: str) -> list[str]:
    items = out.split("\0")
    if items and items[-1] == "":
        items.pop()
    return items


def call_git_z(args: Sequence[str], cwd: PathLike, *, input: bytes | None = None,
               env: dict[str, str] | None = None) -> list[str]:
    """NUL-separated stdout of ``git ARGS`` as a list (empty items dropped at the end)."""
    return split_z(call_git(args, cwd, input=input, env=env))


def call_git_success(args: Sequence[str], cwd: PathLike) -> bool:
    return run(args, cwd, check=False).returncode == 0


def call_git_optional(args: Sequence[str], cwd: PathLike) -> str | None:
    """stdout of ``git ARGS``, or None when git exits non-zero."""
    done = run(args, cwd, check=False)
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "surrogateescape")


def batch_process(args: Sequence[str], cwd: PathLike, *, env: dict[str, str] | None = None
                  ) -> contextlib.AbstractContextManager[proc.subprocess.Popen[bytes]]:
    """A long-lived ``git ARGS`` reading requests on stdin (see ``proc.popen_batch``)."""
    return proc.popen_batch(["git", *args], cwd, env=env)


def nul_paths(paths: Iterable[str]) -> bytes:
    return b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)


def call_git_paths(args: Sequence[str], root: PathLike, paths: Sequence[str]) -> str:
    """stdout of ``git ARGS`` over exactly ``paths`` (literal pathspecs fed on stdin)."""
    return call_git([*args, "--pathspec-from-file=-", "--pathspec-file-nul"], root,
                    input=nul_paths(paths), env=LITERAL_PATHSPECS)


def argv_chunks(paths: Sequence[str], limit: int = 100_000) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for p in paths:
        if chunks[-1] and size + len(p) > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(p)
        size += len(p) + 1
    return chunks if chunks[0] else []


def call_git_z_paths(args: Sequence[str], root: PathLike, paths: Sequence[str]) -> list[str]:
    """NUL-separated output of a git command over literal pathspecs given in argv chunks
    (for commands without --pathspec-from-file)."""
    out: list[str] = []
    for chunk in argv_chunks(paths):
        text = run([*args, "--", *chunk], root, env=LITERAL_PATHSPECS).stdout
        out += split_z(text.decode("utf-8", "surrogateescape"))
    return out


_GIT_DIRS: dict[str, str] = {}


def git_dir(root: PathLike) -> str:
    """The repository's git directory (absolute), cached per root."""
    key = os.fspath(root)
    cached = _GIT_DIRS.get(key)
    if cached:
        return cached
    dotgit = Path(root) / ".git"
    if dotgit.is_dir():
        result = str(dotgit)
    else:
        result = call_git(["rev-parse", "--absolute-git-dir"], root).strip()
    _GIT_DIRS[key] = result
    return result


def stream_git(args: Sequence[str], cwd: PathLike, size: int = 1 << 16,
               input: bytes | None = None) -> Iterator[bytes]:
    """stdout of ``git ARGS`` in pieces as git writes them (read while git still works, never
    held whole; ``input`` written to its stdin meanwhile); a non-zero exit raises
    CommandError after the last piece, as :func:`run`.  Closing the generator early stops
    git."""
    argv = ["git", *args]
    with proc.popen_lines(argv, cwd=cwd, stdin_pipe=input is not None) as child:
        assert child.stdout is not None and child.stderr is not None
        if input is not None:
            threading.Thread(target=_feed, args=(child.stdin, input), daemon=True).start()
            del input  # the feeder's alone
        # stderr read meanwhile: git blocked on a full stderr pipe would never end stdout
        errors: list[bytes] = []
        drain = threading.Thread(target=_drain, args=(child.stderr.fileno(), errors),
                                 daemon=True)
        drain.start()
        fd = child.stdout.fileno()
        while True:
            piece = os.read(fd, size)
            if not piece:
                break
            yield piece
        drain.join()
        if child.wait() != 0:
            err = b"".join(errors)
            raise CommandError(argv, child.returncode, err.decode("utf-8", "replace"))


# The threads beside a stream read and write the pipes' descriptors themselves, never
# through the file objects: those have locks that stopping the tool (proc.stop_tool closes
# them) would wait for, forever when the interpreter is ending.


def _feed(stdin: IO[bytes], data: bytes) -> None:
    fd = stdin.fileno()
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
        stdin.close()
    except (ValueError, OSError):  # git ended (or was stopped) first
        pass


def _drain(fd: int, into: list[bytes]) -> None:
    try:
        while piece := os.read(fd, 1 << 16):
            into.append(piece)
    except OSError:  # stopped: closed meanwhile
        pass
