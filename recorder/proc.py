"""The only module that starts processes.

``capture`` runs a tool (git, git-annex, docker ...) and returns its output; the modules
``gitrepo`` and ``annex`` are its only callers for git and git-annex.  ``run_shell``
runs a user's command in a process group of its own, with Ctrl-C and SIGTERM forwarded to
the whole group, and its output streamed live.

Tools (``capture``, ``popen_lines``, ``stream_into``) run in a session of their own, without
the terminal: a Ctrl-C typed at the terminal reaches rr alone, never a half-done ``git commit``
or ``git annex get``, and rr decides.  When the Python code waiting for a tool is interrupted
(KeyboardInterrupt, or SIGTERM/SIGHUP which ``cli.main`` turns into one), the tool's whole
process group (git-annex with its special remotes, ssh, curl ...) gets SIGTERM, then SIGKILL
after a grace period, and is reaped before the exception goes on.  Inside
``lock.deferred_signals`` (a commit being made) the tool finishes first.  A tool cannot prompt
on the terminal (as with GIT_TERMINAL_PROMPT=0): ssh needs keys or an agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import threading
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, NamedTuple

from .errors import CommandError

_BASE_ENV: dict[str, str] | None = None

CompletedProcess = subprocess.CompletedProcess  # for annotations in modules that use capture
Popen = subprocess.Popen[bytes]  # for annotations in modules that use start_batch
TOOL_GRACE = 2.0  # seconds an interrupted tool gets between SIGTERM and SIGKILL


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for tools whose output rr parses: C locale, no prompts."""
    global _BASE_ENV
    env = getattr(_OVERLAY, "env", None)
    if env is None:
        if _BASE_ENV is None:
            base = dict(os.environ)
            base["PATH"] = tool_path()
            base["LC_ALL"] = "C.UTF-8"  # C.UTF-8: git-annex mangles non-ASCII names under C
            base["GIT_TERMINAL_PROMPT"] = "0"
            _BASE_ENV = base
        env = _BASE_ENV
    if not extra:
        return env
    return {**env, **extra}


# this thread's tool environment inside tool_env_overlay (threads of one process may run
# array jobs side by side: one's block never ends another's)
_OVERLAY = threading.local()


@contextlib.contextmanager
def tool_env_overlay(extra: Mapping[str, str]) -> Iterator[None]:
    """Extra environment for every tool started in the block by this thread (an array job
    runs git-annex with annex.alwayscommit=false this way)."""
    before = getattr(_OVERLAY, "env", None)
    _OVERLAY.env = tool_env(extra)
    try:
        yield
    finally:
        _OVERLAY.env = before


def tool_path() -> str:
    """PATH with the directory of rr's own interpreter first when git-annex lives there.

    The PyPI ``git-annex`` package puts its binary next to the interpreter, which is not
    on PATH when rr is called from an unactivated virtual environment.
    """
    path = os.environ.get("PATH", os.defpath)
    bindir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bindir, "git-annex")) and bindir not in path.split(os.pathsep):
        path = bindir + os.pathsep + path
    return path


def kept_version(tool: str, cache: str | os.PathLike[str], ask: Callable[[], str | None], *,
                 keep: bool = True) -> str | None:
    """A tool's version without a process per call: kept in the file ``cache`` keyed by the
    binary's path, size and mtime (an upgrade changes them); ``ask()`` gives it when the
    kept one does not fit (None: unknown, nothing kept).  None without the tool on PATH.
    ``keep=False``: a kept version is read, none written."""
    binary = shutil.which(tool, path=tool_path())
    if binary is None:
        return None
    try:
        st = os.stat(binary)
    except OSError:
        return None
    stamp = [os.path.realpath(binary), st.st_size, st.st_mtime_ns]
    path = os.fspath(cache)
    try:
        with open(path, encoding="utf-8") as f:
            kept = json.load(f)
        if kept.get("binary") == stamp and isinstance(kept.get("version"), str):
            return str(kept["version"])
    except (OSError, ValueError, AttributeError):
        pass
    version = ask()
    if version is None or not keep:
        return version
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"binary": stamp, "version": version}, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only .git: asked again next time
    return version


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that ``finally`` blocks run and tools stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def interrupt_on_termination() -> None:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` (unless they are ignored, as under
    nohup).  Python's default for them is to die at once, leaving started tools running."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _raise_terminated)


def _start_tool(argv: Sequence[str], cwd: str | os.PathLike[str] | None, *, stdin: int | None,
                stdout: int | None, stderr: Any,
                env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a tool in a session (and process group) of its own; see the module docstring."""
    full_env = tool_env(env)
    try:
        return subprocess.Popen(list(argv), cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr,
                                env=full_env, start_new_session=True,
                                executable=_resolved(argv[0], full_env.get("PATH")))
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from exc


_RESOLVED: dict[tuple[str, str], str | None] = {}


def _resolved(name: str, path: str | None) -> str | None:
    """The binary a bare tool name starts through ``path`` (what the child's own PATH search
    finds), found once per process: not an exec attempt per PATH entry before git's
    directory for every git started.  None (the child searches itself) for a name with a
    directory, a PATH with relative entries, or a name not found."""
    if "/" in name or path is None:
        return None
    key = (name, path)
    if key not in _RESOLVED:
        found = shutil.which(name, path=path)
        dirs = path.split(os.pathsep)
        _RESOLVED[key] = found if found and all(os.path.isabs(d) for d in dirs if d) \
            and "" not in dirs else None
    return _RESOLVED[key]


_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_Held = tuple[dict[int, Any], list[int]] | None


def _hold_signals() -> _Held:
    """Hold SIGINT/SIGTERM/SIGHUP back while a tool is being started: a signal between the
    fork and the ``try`` that stops the tool would leave it running unseen in its own
    session.  The caller lets them through with :func:`_let_signals` once it is inside that
    ``try``, where a held signal is then raised.  (Handlers, not the signal mask: a child
    inherits the mask.)  Off the main thread Python runs no handler: nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        return None
    got: list[int] = []

    def remember(signum: int, _frame: object) -> None:
        got.append(signum)

    previous: dict[int, Any] = {}
    for sig in _HELD:
        handler = signal.getsignal(sig)
        if handler is not None and handler != signal.SIG_IGN:
            previous[sig] = signal.signal(sig, remember)
    return previous, got


def _let_signals(held: _Held) -> None:
    if held is None:
        return
    previous, got = held
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    for sig in dict.fromkeys(got):
        os.kill(os.getpid(), sig)  # handled now, inside the caller's try


def _spawn(argv: Sequence[str], cwd: str | os.PathLike[str] | None, *, stdin: int | None,
           stdout: int | None, stderr: Any, env: Mapping[str, str] | None = None
           ) -> tuple[subprocess.Popen[bytes], _Held]:
    """:func:`_start_tool` with signals held; the caller lets them through (inside the
    ``try`` that stops the tool) with ``_let_signals(held)``."""
    held = _hold_signals()
    try:
        return _start_tool(argv, cwd, stdin=stdin, stdout=stdout, stderr=stderr,
                           env=env), held
    except BaseException:
        _let_signals(held)
        raise


def stop_tool(child: subprocess.Popen[bytes], grace: float = TOOL_GRACE) -> None:
    """Terminate a tool's whole process group (SIGTERM, SIGKILL after ``grace``) and reap it.

    Further SIGINT/SIGTERM/SIGHUP are held back meanwhile, so a second Ctrl-C cannot leave
    the tool running; they are delivered when this returns.
    """
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        if child.poll() is None or _group_alive(child.pid):
            _terminate_group(child.pid, grace)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent to the group
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def capture(
    argv: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    stderr_to_terminal: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to completion and capture stdout (and stderr unless it goes to the terminal)."""
    child, held = _spawn(argv, cwd, stdin=subprocess.PIPE if input is not None else
                         subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=None if stderr_to_terminal else subprocess.PIPE, env=env)
    try:
        _let_signals(held)
        out, err = child.communicate(input)
    except BaseException:
        stop_tool(child)
        raise
    proc = subprocess.CompletedProcess(list(argv), child.returncode, out, err)
    if check and proc.returncode != 0:
        err_text = (proc.stderr or b"").decode("utf-8", "replace")
        if not err_text.strip():
            err_text = (proc.stdout or b"").decode("utf-8", "replace")
        raise CommandError(argv, proc.returncode, err_text)
    return proc


@contextlib.contextmanager
def popen_lines(
    argv: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin_pipe: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` with stdout piped for line-wise reading (with ``stdin_pipe`` stdin too,
    for the caller to write); the caller reads and waits.

    Leaving the block before the tool has been waited for (an exception, an interrupt, a
    generator closed early) stops the tool and its process group.
    """
    child, held = _spawn(argv, cwd, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        _let_signals(held)
        yield child
    finally:
        if child.returncode is None:
            stop_tool(child)


def start_batch(argv: Sequence[str], cwd: str | os.PathLike[str] | None = None, *,
                stderr: Any = None, env: Mapping[str, str] | None = None) -> Popen:
    """Start a long-lived tool that answers requests written to its stdin on its stdout (a
    ``--batch`` process), in its own session like every tool.  ``stderr``: where its
    diagnostics go (a file; None: rr's stderr).  The caller ends it: stdin closed and
    ``wait()``, or :func:`stop_tool` (on an interrupt, or when it stops answering)."""
    child, held = _spawn(argv, cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=stderr, env=env)
    try:
        _let_signals(held)
    except BaseException:
        stop_tool(child)
        raise
    return child


def _error_file() -> tuple[int, IO[bytes]]:
    """A temporary file for a tool's stderr, already unlinked: the descriptor the tool
    writes to, and a file object reading it from its start (an offset of its own)."""
    import tempfile  # noqa: PLC0415  stdlib, but not for every command's start-up

    fd, path = tempfile.mkstemp(prefix="rr-stderr-")
    try:
        reader = open(path, "rb")  # closed with the tool (popen_batch)
    except BaseException:
        os.close(fd)
        raise
    finally:
        os.unlink(path)
    return fd, reader


@contextlib.contextmanager
def popen_batch(
    argv: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a long-lived tool that reads requests on stdin and answers on stdout (``git
    update-ref --stdin``, ``git cat-file --batch``, ``git annex ... --batch``); the caller
    writes, flushes and reads.  Leaving the block closes its stdin (the tool ends at EOF) and
    waits for it; an exception or interrupt stops the tool and its process group.

    The tool's stderr goes to an unlinked temporary file, never a pipe (a tool writing more
    than a pipe holds while nobody reads it would block and stop answering): ``child.stderr``
    reads it from its start (the error text, once the tool ended)."""
    fd, errors = _error_file()
    try:
        child = start_batch(argv, cwd, stderr=fd, env=env)
    except BaseException:
        errors.close()
        raise
    finally:
        os.close(fd)
    child.stderr = errors
    try:
        yield child
        assert child.stdin is not None
        with contextlib.suppress(OSError):
            child.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):  # then stopped below
            child.wait(timeout=TOOL_GRACE * 5)
    finally:
        if child.returncode is None:
            stop_tool(child)
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def stream_into(argv: Sequence[str], write: "Callable[[IO[bytes]], None]",
                cwd: str | os.PathLike[str] | None = None) -> tuple[int, str]:
    """Start ``argv``, let ``write`` stream into its stdin, return (exit code, output)."""
    child, held = _spawn(argv, cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    assert child.stdin is not None and child.stdout is not None
    try:
        _let_signals(held)
        try:
            write(child.stdin)
        except BrokenPipeError:
            pass
        finally:
            try:
                child.stdin.close()
            except BrokenPipeError:
                pass
        out = child.stdout.read().decode("utf-8", "replace")
        return child.wait(), out
    except BaseException:
        stop_tool(child)
        raise


class ShellOutcome(NamedTuple):  # a NamedTuple: cheaper than a dataclass at start-up
    returncode: int
    interrupted_by: int | None  # the signal rr received and forwarded, if any
    # os.wait4's resource usage of the command and its waited-for descendants (the whole
    # tree but what was left running in the background); None where it was not measured
    usage: Any = None


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_shell(
    command: str,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    log: IO[bytes] | None = None,
) -> ShellOutcome:
    """Run ``command`` with ``/bin/sh -c`` (or ``argv`` as given) in its own process group.

    Signals rr receives (SIGINT, SIGTERM, SIGHUP) are forwarded to the whole group.  When
    rr owns the terminal, the group becomes the terminal's foreground group so that Ctrl-C
    and interactive input reach the command directly.  With ``log``, the command's stdout
    and stderr go through pipes: each chunk is written on to rr's own fd 1 or 2 as it comes
    and to ``log`` in the order read (see :func:`_tee`).
    """
    full_env = dict(os.environ)
    full_env["PATH"] = tool_path()
    if env:
        full_env.update(env)
    args = list(argv) if argv is not None else ["/bin/sh", "-c", command]
    received: list[int] = []
    child: subprocess.Popen[bytes] | None = None
    pipe = subprocess.PIPE if log is not None else None
    tee: _Tee | None = None

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        if child is not None:
            try:
                os.killpg(child.pid, signum)
            except ProcessLookupError:
                pass

    # off the main thread (an array job on a Dask worker) signals cannot be caught: the
    # command stays in the worker's process group, so that stopping the worker's group
    # stops it too
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in _FORWARDED} if main else {}
    for sig in previous:
        signal.signal(sig, forward)
    tty_fd = _foreground_tty() if main else None
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        if sys.version_info >= (3, 11):
            child = subprocess.Popen(args, cwd=cwd, env=full_env, stdout=pipe, stderr=pipe,
                                     process_group=0 if main else None)
        else:  # pragma: no cover - Python 3.10
            child = subprocess.Popen(args, cwd=cwd, env=full_env, stdout=pipe, stderr=pipe,
                                     preexec_fn=os.setpgrp)
        if log is not None:
            tee = _Tee(child, log)
        if tty_fd is not None:
            _set_foreground(tty_fd, child.pid)
        if received:  # a signal arrived between fork and the handler seeing the child
            os.killpg(child.pid, received[0])
        while True:
            try:
                # wait4, not wait: the rusage of the command and its waited-for descendants
                _pid, status, usage = os.wait4(child.pid, 0)
                returncode = child.returncode = os.waitstatus_to_exitcode(status)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
    finally:
        if tee is not None:
            tee.finish()
        if tty_fd is not None:
            _set_foreground(tty_fd, os.getpgrp())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    interrupted = received[0] if received else None
    if interrupted is None and returncode in (-signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP):
        # Ctrl-C typed at the terminal went straight to the command's foreground group.
        interrupted = -returncode
    if interrupted is not None and main:
        # background jobs of a non-interactive shell ignore SIGINT: stop what is left
        _terminate_group(child.pid)
    return ShellOutcome(returncode=returncode, interrupted_by=interrupted, usage=usage)


class _Tee:
    """The command's stdout and stderr pipes copied, chunk by chunk as they come, to rr's
    own fd 1 and 2 and to one log file (a thread with a selector: the log keeps the order
    in which the chunks were read).  After the command has ended, what is still in the
    pipes is copied; a background process that keeps a pipe open is not waited for beyond
    a quiet moment (``QUIET`` seconds without output), nor beyond ``LINGER`` seconds."""

    QUIET = 0.2
    LINGER = 2.0

    def __init__(self, child: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        assert child.stdout is not None and child.stderr is not None
        self.log = log
        self.ends = {child.stdout.fileno(): 1, child.stderr.fileno(): 2}
        self.pipes = (child.stdout, child.stderr)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._copy, name="rr-tee", daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        with selectors.DefaultSelector() as sel:
            for fd in self.ends:
                sel.register(fd, selectors.EVENT_READ)
            deadline = None
            while sel.get_map():
                ready = sel.select(timeout=self.QUIET)
                if self.done.is_set():
                    deadline = deadline or time.monotonic() + self.LINGER
                    if not ready or time.monotonic() > deadline:
                        break
                for key, _ in ready:
                    fd = key.fd
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        sel.unregister(fd)
                        continue
                    with contextlib.suppress(OSError):
                        _write_all(self.ends[fd], chunk)
                    self.log.write(chunk)
                    self.log.flush()  # the log can be followed while the command runs
        self.log.flush()

    def finish(self) -> None:
        self.done.set()
        self.thread.join()
        for stream in self.pipes:
            with contextlib.suppress(OSError):
                stream.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _terminate_group(pgid: int, grace: float = 2.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return not os.path.isdir("/proc")


def _foreground_tty() -> int | None:
    """The terminal fd if rr is in the terminal's foreground process group, else None."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    try:
        if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except OSError:
        return None
    return None


def _set_foreground(fd: int, pgid: int) -> None:
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)
