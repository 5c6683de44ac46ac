"""The typer application: ``rr --help``, ``rr CMD --help`` and every command line the fast
path (recorder/cli/fast.py) leaves to typer; ``recorder.cli.app`` for tests and embedding.
Commands are registered from the table in recorder/cli/__init__.py, their declarations
(recorder/cli/params.py) made typer's in recorder/cli/typed.py."""

import contextlib
import importlib
import inspect
import io
import os
import sys
from typing import Any

import typer

from .. import __version__
from . import _COMMANDS, _GROUPS, _help_cache, render, typed
from .base import STATE

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


_REGISTERED: set[str] = set()


def _attr(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"recorder.cli.{module}"), name)


def register(only: str | None = None) -> typer.Typer:
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
                _app.command(name, **typed.command_settings(settings))(
                    typed.command(_attr(module, fn)))
        for name, module, sub in _GROUPS:
            if name in wanted:
                _app.add_typer(typed.group(_attr(module, sub)), name=name)
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
        info = typer.models.TyperInfo(typed.group(_attr(module, sub)))
        app.add_typer(typer.Typer(), name=name, help=typer.main.solve_typer_info_help(info))
    return app


def help() -> None:  # noqa: A001  rr --help
    """``rr --help`` rendered by typer, and kept for the next time (see _cached_help)."""
    buf = io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(buf):
        try:
            _summaries()()
        except SystemExit as exc:
            code = exc.code
    sys.stdout.write(buf.getvalue())
    if code in (0, None) and os.path.basename(sys.argv[0]) == "rr":
        _store_help(buf.getvalue())
    sys.stdout.flush()
    sys.exit(code)


def _summary_only() -> None:  # pragma: no cover - never called: rr --help exits first
    raise AssertionError("rr --help only")


def _store_help(text: str) -> None:
    """Keep the text typer rendered for ``rr --help`` for the next time (where the bytecode
    is written; nothing when it cannot be)."""
    try:
        path, stamp = _help_cache()
        st = os.stat(typer.__file__ or "")
        if not os.path.isdir(os.path.dirname(path)):
            return
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{stamp}\n{typer.__file__}\n{st.st_mtime_ns} {st.st_size}\n{text}")
        os.replace(tmp, path)
    except OSError:
        pass


