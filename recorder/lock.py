"""Serialising changes to one dataset across rr processes, and shielding critical sections.

Two mechanisms, both under ``.git``:

- ``rr.lock``: one exclusive lock (``flock``) around every status-and-commit step of every
  command that changes the dataset.  A run without ``--explicit`` holds it from its
  clean-check until its commit, command included, because it claims everything that changed
  meanwhile; an ``--explicit`` run holds it only to prepare and to commit.  The lock is
  reentrant within one process, and a command started by rr inherits it (``RR_LOCKED``), so
  an ``rr save`` inside ``rr run`` does not wait for its own parent.
- ``rr-runs/<pid>``: the declared outputs of ``--explicit`` runs whose commands are going on,
  so that ``rr save`` and other runs leave those paths to the run that declared them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from .errors import RecorderError

LOCK_FILE = "rr.lock"
INFLIGHT_DIR = "rr-runs"
INHERITED_ENV = "RR_LOCKED"  # os.pathsep-separated git dirs whose lock a parent rr holds

_held: dict[str, int] = {}  # git dir -> depth of dataset_lock in this process


def _key(git_dir: Path) -> str:
    return os.path.realpath(git_dir)


def inherited(git_dir: Path) -> bool:
    return _key(git_dir) in os.environ.get(INHERITED_ENV, "").split(os.pathsep)


def env_for_child(git_dirs: Sequence[Path]) -> dict[str, str]:
    """Environment entries telling an rr started by the user's command that its parent
    holds the lock of these datasets."""
    keys = [k for k in os.environ.get(INHERITED_ENV, "").split(os.pathsep) if k]
    keys += [_key(g) for g in git_dirs if _key(g) not in keys]
    return {INHERITED_ENV: os.pathsep.join(keys)}


def holder(git_dir: Path) -> str:
    """What the lock file says about the process holding (or last holding) the lock."""
    try:
        return (git_dir / LOCK_FILE).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def dataset_lock(git_dir: Path, *, what: str = "",
                 waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the dataset's exclusive lock (reentrant in this process).

    When another process holds it, ``waiting`` (default: a line on stderr) is told who, once,
    and the call blocks until the lock is free.
    """
    key = _key(git_dir)
    if _held.get(key) or inherited(git_dir):
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    path = git_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RecorderError(f"cannot lock the dataset ({path}): {exc.strerror}",
                            hint="is the dataset read-only? rr needs to write to its .git "
                                 "directory") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            who = holder(git_dir) or "another process"
            (waiting or _say)(f"rr: waiting for the dataset lock held by {who}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _describe(fd, what)
        _held[key] = 1
        # processes started meanwhile (procedures, the user's command) inherit the lock
        previous = os.environ.get(INHERITED_ENV)
        os.environ.update(env_for_child([git_dir]))
        try:
            yield
        finally:
            _held.pop(key, None)
            if previous is None:
                os.environ.pop(INHERITED_ENV, None)
            else:
                os.environ[INHERITED_ENV] = previous
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _describe(fd: int, what: str) -> None:
    text = f"pid {os.getpid()}" + (f" ({what})" if what else "") + "\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8", "replace"), 0)
    except OSError:  # a full disk must not stop the lock from working
        pass


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --- in-flight explicit runs ------------------------------------------------------------


class InFlight(NamedTuple):
    pid: int
    outputs: tuple[str, ...]  # dataset-relative paths or glob patterns
    command: str

    def claims(self, path: str) -> bool:
        for out in self.outputs:
            if out in (".", "") or path == out or path.startswith(out.rstrip("/") + "/"):
                return True
            if any(c in out for c in "*?[") and fnmatch.fnmatchcase(path, out):
                return True
        return False


@contextlib.contextmanager
def announce_inflight(git_dir: Path, outputs: Sequence[str], command: str) -> Iterator[None]:
    """Make the declared outputs of a running ``--explicit`` command known to others.

    The entry ``rr-runs/<pid>`` proves itself: this process holds an ``flock`` on it for as
    long as the command runs (a lock dies with its process: an entry left by a SIGKILL, or
    written by anyone else, is not held), and it names the process's start time and a random
    token, so that a live process that merely has that pid (reuse) is not taken for the run.
    The entry is locked before it appears under its name, so no reader sees it unheld."""
    directory = git_dir / INFLIGHT_DIR
    path = directory / str(os.getpid())
    fd = -1
    try:
        directory.mkdir(exist_ok=True)
        tmp = directory / f".{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"outputs": list(outputs), "command": command[:200],
                                 "pid": os.getpid(), "start": process_start(os.getpid()),
                                 "token": os.urandom(16).hex()}).encode("utf-8"))
        os.replace(tmp, path)
    except OSError:
        if fd >= 0:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
        fd = -1
    try:
        yield
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)


def inflight_runs(git_dir: Path) -> list[InFlight]:
    """The ``--explicit`` runs of other live processes in this dataset, each proven (see
    :func:`announce_inflight`); entries that prove nothing (stale, forged, of a reused pid)
    are removed and claim nothing."""
    directory = git_dir / INFLIGHT_DIR
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    runs = []
    for name in names:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        run = _proven(directory / name, int(name))
        if run is not None:
            runs.append(run)
    return runs


def _proven(path: Path, pid: int) -> InFlight | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            held = exc.errno in (errno.EWOULDBLOCK, errno.EACCES)
        else:
            held = False
        try:
            data = json.loads(os.read(fd, 1 << 20).decode("utf-8"))
            outputs = tuple(str(o) for o in data.get("outputs", []))
            command = str(data.get("command", ""))
            start = data.get("start")
            token = data.get("token")
        except (OSError, ValueError, AttributeError, TypeError):
            data = None
        proven = (held and data is not None and data.get("pid") == pid
                  and isinstance(token, str) and len(token) >= 16
                  and start == process_start(pid) and _alive(pid))  # None == None: no /proc
        if not proven:
            if not held:  # nobody holds it: no run will ever finish it
                with contextlib.suppress(OSError):
                    path.unlink()
            return None
        return InFlight(pid, outputs, command)
    finally:
        os.close(fd)


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or
    None: with the pid, it names one process over the machine's uptime."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# --- signals ----------------------------------------------------------------------------


@contextlib.contextmanager
def deferred_signals(received: list[int] | None = None) -> Iterator[list[int]]:
    """Postpone SIGINT/SIGTERM/SIGHUP until the block is done, so a commit is never half-made.

    The signals that arrived are collected in the yielded list; when the caller passed its
    own list it decides what to do with them, otherwise they are re-raised after the block.
    """
    own = received is None
    got: list[int] = [] if received is None else received
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def remember(signum: int, _frame: object) -> None:
        got.append(signum)

    try:
        previous = {s: signal.signal(s, remember) for s in sigs}
    except ValueError:  # not in the main thread: nothing to shield
        yield got
        return
    try:
        yield got
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if own and got:
            if got[0] == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), got[0])
