"""The ``rr`` command line: each command parses, calls one ``recorder.api`` function, renders.

    options.py     options shared by several commands, declared once
    render.py      result records, events, JSON lines, tables
    base.py        ``call`` (the one error printer: ``rr: error:``/``rr: hint:``, exit codes,
                   --debug tracebacks, Ctrl-C = 130), usage errors, commands taking a command
    dataset.py     create, save, status, diff, unlock, subdatasets, remove
    run.py         run, containers-run (and arrays), rerun, run-procedure
    containers.py  containers-add, -list, -remove, -exec
    sharing.py     clone, get, drop, push, update, download-url, siblings
    history.py     log, graph, metrics
    runs.py        runs, report
    provenance.py  lineage, export ro-crate
    diffruns.py    diff-runs

Commands are listed here, in the order ``rr --help`` lists them.  ``rr CMD`` imports only the
module of CMD (``rr --help`` all of them); the command modules import ``recorder.api`` inside
each command, so that neither loads every operation.  ``recorder.cli.app`` is the whole
application (for tests and embedding).
"""

from __future__ import annotations

import os
import signal
import sys


def _early_interrupt(_signum: int, _frame: object) -> None:
    """SIGINT/SIGTERM/SIGHUP while rr is still importing (before ``main`` sets its handlers):
    nothing has started yet; end as every interrupt does, without a traceback."""
    try:
        os.write(2, b"rr: interrupted\n")
    finally:
        os._exit(130)


if os.path.basename(sys.argv[0]) == "rr":  # the console script, not an embedding process
    for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) not in (signal.SIG_IGN, None):
            signal.signal(_sig, _early_interrupt)


# --- rr --help without typer ---------------------------------------------------------------
# The top-level help is text typer renders from the commands' names and summaries; it depends
# only on the sources of recorder/cli, typer's version and the width of the terminal.  It is
# rendered once (by typer) and kept next to the bytecode, stamped with what it was made of;
# ``rr --help`` prints it from there without importing typer (about a third of its time).


def _help_width() -> int:
    """The width click formats help to (shutil.get_terminal_size, HelpFormatter)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, 80) - 2, 50)


def _help_cache() -> tuple[str, str]:
    """(the cache file of rr --help at this width, the stamp of what the text is made of)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sources = sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size)
                     for e in os.scandir(here) if e.name.endswith(".py"))
    tag = sys.implementation.cache_tag
    stamp = repr((sys.argv[0].rsplit("/", 1)[-1], sys.version, sources))
    return os.path.join(here, "__pycache__", f"rr-help-{_help_width()}.{tag}.txt"), stamp


def _cached_help() -> None:
    """``rr --help`` printed from the cached text, when it is still what typer renders: the
    process ends here (exit code 0, as typer's), before typer is imported."""
    try:
        path, stamp = _help_cache()
        with open(path, encoding="utf-8") as fh:
            head, typer_file, typer_stat, text = fh.read().split("\n", 3)
        st = os.stat(typer_file)
        if head != stamp or typer_stat != f"{st.st_mtime_ns} {st.st_size}":
            return
        if not text.isascii() and (sys.stdout.encoding or "").lower() not in ("utf-8", "utf8"):
            return  # click's own writer knows what to do with such a terminal
    except (OSError, ValueError):
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(141)
    sys.exit(0)


if os.path.basename(sys.argv[0]) == "rr" and sys.argv[1:] == ["--help"]:
    _cached_help()

from typing import Any  # noqa: E402  after the handlers: importing takes a while

from . import render  # noqa: E402
from .base import AFTER_OPTIONS, ANNEX_MODE, STATE, call  # noqa: E402, F401
from .render import Progress as _Progress  # noqa: F401, E402  tests draw it
from .render import render_results  # noqa: E402

__all__ = ["app", "call", "main", "render_results"]

_AFTER_OPTIONS = {"class": AFTER_OPTIONS}
_ANNEX_MODE = {"class": ANNEX_MODE}

# (command, its module in recorder.cli, the function, settings), in the order of rr --help
_COMMANDS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("create", "dataset", "create", {}),
    ("save", "dataset", "save", {}),
    ("run", "run", "run", _AFTER_OPTIONS),
    ("containers-run", "run", "containers_run", _AFTER_OPTIONS),
    ("rerun", "run", "rerun", {}),
    ("run-procedure", "run", "run_procedure", _AFTER_OPTIONS),
    ("containers-add", "containers", "containers_add", {}),
    ("containers-list", "containers", "containers_list", {}),
    ("containers-remove", "containers", "containers_remove", {}),
    ("containers-exec", "containers", "containers_exec", _AFTER_OPTIONS),
    ("clone", "sharing", "clone", {}),
    ("get", "sharing", "get", {}),
    ("drop", "sharing", "drop", {}),
    ("push", "sharing", "push", {}),
    ("graph", "history", "graph", {}),
    ("lineage", "provenance", "lineage", {}),
    ("download-url", "sharing", "download_url", {}),
    ("log", "history", "log_", {}),
    ("runs", "runs", "runs", {}),
    ("report", "runs", "report", {}),
    ("status", "dataset", "status", _ANNEX_MODE),
    ("update", "sharing", "update", {}),
    ("diff", "dataset", "diff", {}),
    ("diff-runs", "diffruns", "diff_runs", {}),
    ("unlock", "dataset", "unlock", {}),
    ("subdatasets", "dataset", "subdatasets", {}),
    ("remove", "dataset", "remove", {}),
)
# command groups: (name, module, the Typer sub-application)
_GROUPS = (("siblings", "sharing", "siblings_app"), ("metrics", "history", "metrics_app"),
           ("export", "provenance", "export_app"))


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole application (typer's)
        from .application import register  # noqa: PLC0415  typer: not on the fast path

        return register()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, raised like Ctrl-C."""


_MAIN_PID = os.getpid()


def _raise_terminated(signum: int, _frame: object) -> None:
    if os.getpid() != _MAIN_PID:  # a forked Dask worker: die of the signal, as by default
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise _Terminated(signum)


def _interrupted(_signum: int, _frame: object) -> None:
    """Ctrl-C: KeyboardInterrupt, as Python's own handler; a forked Dask worker (the terminal
    sends SIGINT to the whole process group) leaves it to rr, which cancels the jobs."""
    if os.getpid() == _MAIN_PID:
        raise KeyboardInterrupt


def main() -> None:
    """Console entry point.

    SIGTERM and SIGHUP (unless ignored, as under nohup) become an exception like Ctrl-C, so
    that ``finally`` blocks run and the tools rr started are stopped; every interrupt ends
    with "rr: interrupted" and exit code 130.  A commit being made is finished first
    (``lock.deferred_signals``); the user's command gets the signal forwarded (``proc.run_shell``).
    """
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _raise_terminated)
    if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _early_interrupt):
        signal.signal(signal.SIGINT, _interrupted)
    first = sys.argv[1:2]
    # options before the command (rr --debug run ...), rr --help and unknown names: everything
    only = first[0] if first and not first[0].startswith("-") else None
    try:
        if sys.argv[1:] != ["--help"]:
            from . import fast  # noqa: PLC0415  after the handlers

            fast.run(sys.argv[1:], _COMMANDS, _GROUPS)  # returns when typer is to parse them
        from . import application  # noqa: PLC0415  typer

        if sys.argv[1:] == ["--help"]:
            application.help()
        else:
            application.register(only)()
    except KeyboardInterrupt:
        render.err("rr: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
