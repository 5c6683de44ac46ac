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

import importlib
import inspect
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

from typing import Any  # noqa: E402  after the handlers: importing takes a while

import typer  # noqa: E402

from .. import __version__  # noqa: E402
from . import render  # noqa: E402
from .base import (COMMAND_AFTER_OPTIONS, STATE, AnnexModeOption,  # noqa: E402
                   CommandAfterOptions, call)
from .render import Progress as _Progress  # noqa: F401, E402  tests draw it
from .render import render_results  # noqa: E402

__all__ = ["app", "call", "main", "render_results"]

_SETTINGS: dict[str, Any] = dict(
    name="rr",
    help="rr records how results were made: every run's command, inputs and outputs go into "
         "a DataLad-compatible run record in the commit, and can be replayed with rr rerun.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_app = typer.Typer(**_SETTINGS)


def _version(value: bool) -> None:
    if value:
        render.out(f"rr {__version__}")
        raise typer.Exit()


@_app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    STATE["debug"] = debug
    if debug:  # the engine (Dask) shows distributed's log lines then
        os.environ["RR_DEBUG"] = "1"


_AFTER_OPTIONS = {"cls": CommandAfterOptions, "context_settings": COMMAND_AFTER_OPTIONS}
_ANNEX_MODE = {"cls": AnnexModeOption}

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
_REGISTERED: set[str] = set()


def _attr(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def _register(only: str | None = None) -> typer.Typer:
    """Register the command ``only`` (when it names one), else every command; typer inspects
    the signature of every registered command on each call (about 20 ms for all of rr's), and
    importing their modules costs too, though one command runs."""
    known = {c[0] for c in _COMMANDS} | {g[0] for g in _GROUPS}
    wanted = {only} if only in known else known
    if wanted - _REGISTERED:
        if _REGISTERED:  # a partial registration before: start again in the listed order
            _app.registered_commands = []
            _app.registered_groups = []
            _REGISTERED.clear()
        for name, module, fn, settings in _COMMANDS:
            if name in wanted:
                _app.command(name, **settings)(_attr(module, fn))
        for name, module, sub in _GROUPS:
            if name in wanted:
                _app.add_typer(_attr(module, sub), name=name)
        _REGISTERED.update(wanted)
    return _app


def _summaries() -> typer.Typer:
    """The application as ``rr --help`` shows it: each command's name and help text, none
    of its options (typer reads every option of every command to build them: ~a fifth of
    ``rr --help``)."""
    app = typer.Typer(**_SETTINGS)
    app.registered_callback = _app.registered_callback
    for name, module, fn, _settings in _COMMANDS:
        app.command(name, help=inspect.getdoc(_attr(module, fn)))(_summary_only)
    for name, module, sub in _GROUPS:
        info = typer.models.TyperInfo(_attr(module, sub))
        app.add_typer(typer.Typer(), name=name, help=typer.main.solve_typer_info_help(info))
    return app


def _summary_only() -> None:  # pragma: no cover - never called: rr --help exits first
    raise AssertionError("rr --help only")


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole application
        return _register()
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
        (_summaries() if sys.argv[1:] == ["--help"] else _register(only))()
    except KeyboardInterrupt:
        render.err("rr: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
