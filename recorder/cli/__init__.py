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

Commands are registered here, in the order ``rr --help`` lists them.  The command modules
import ``recorder.api`` inside each command, so that ``rr --help`` and a plain ``rr run`` do
not load every operation.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from .. import __version__
from . import containers, dataset, history, render, run, sharing
from .base import COMMAND_AFTER_OPTIONS, STATE, CommandAfterOptions, call
from .render import Progress as _Progress  # noqa: F401  tests draw it
from .render import render_results

__all__ = ["app", "call", "main", "render_results"]

app = typer.Typer(
    name="rr",
    help="rr records how results were made: every run's command, inputs and outputs go into "
         "a DataLad-compatible run record in the commit, and can be replayed with rr rerun.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        render.out(f"rr {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    STATE["debug"] = debug
    if debug:  # the engine (Dask) shows distributed's log lines then
        os.environ["RR_DEBUG"] = "1"


_AFTER_OPTIONS = {"cls": CommandAfterOptions, "context_settings": COMMAND_AFTER_OPTIONS}

for _name, _fn, _settings in (
        ("create", dataset.create, {}),
        ("save", dataset.save, {}),
        ("run", run.run, _AFTER_OPTIONS),
        ("containers-run", run.containers_run, _AFTER_OPTIONS),
        ("rerun", run.rerun, {}),
        ("run-procedure", run.run_procedure, _AFTER_OPTIONS),
        ("containers-add", containers.containers_add, {}),
        ("containers-list", containers.containers_list, {}),
        ("containers-remove", containers.containers_remove, {}),
        ("containers-exec", containers.containers_exec, _AFTER_OPTIONS),
        ("clone", sharing.clone, {}),
        ("get", sharing.get, {}),
        ("drop", sharing.drop, {}),
        ("push", sharing.push, {}),
        ("graph", history.graph, {}),
        ("download-url", sharing.download_url, {}),
        ("log", history.log_, {}),
        ("status", dataset.status, {}),
        ("update", sharing.update, {}),
        ("diff", dataset.diff, {}),
        ("unlock", dataset.unlock, {}),
        ("subdatasets", dataset.subdatasets, {}),
        ("remove", dataset.remove, {})):
    app.command(_name, **_settings)(_fn)  # type: ignore[arg-type]
app.add_typer(sharing.siblings_app, name="siblings")
app.add_typer(history.metrics_app, name="metrics")


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


def _only_the_invoked_command(first: list[str]) -> None:
    """Build only the command that was asked for: typer inspects the signature of every
    registered command on each call (about 20 ms for rr's), though one runs.  ``rr --help``,
    options before the command and unknown names keep the whole application."""
    if not first or first[0].startswith("-"):
        return
    name = first[0]
    commands = [c for c in app.registered_commands
                if (c.name or (c.callback.__name__ if c.callback else "").replace("_", "-")
                    ) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) == 1:
        app.registered_commands = commands
        app.registered_groups = groups


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
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)
    _only_the_invoked_command(sys.argv[1:2])
    try:
        app()
    except KeyboardInterrupt:
        render.err("rr: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
