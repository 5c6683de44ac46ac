"""The fast path: ``rr CMD ARGS`` parsed and run without importing typer (about a third of a
short command's time).

From a command's declarations (recorder/cli/params.py: the same ``Option``/``Argument`` typer
builds its click command from) the parameters are read as typer reads them: names, flags,
``--x/--no-x`` pairs, repeatable options (``List[...]``), the argument list, the types str,
int, float, bool and enums (a choice of their values); the arguments are parsed by click's
rules and the values converted as typer converts them (``[]`` or ``None`` for an empty list
as the default says, enum members), then the command function is called as typer calls it and
its end handled as typer's main handles it (exit codes, Ctrl-C, a broken pipe).

Whatever is not certainly understood here is left to typer, which then parses the same
arguments from scratch and gives its own messages: ``--help``, an unknown option, a missing
or extra argument, a value of the wrong type, clustered short options (``-rv``, ``-J2``),
options before the command (``rr --debug run``), shell completion, declarations with
anything beyond help texts.  Nothing has happened before that decision (no output, no
state).  tests/test_cli_fast.py compares the two paths for every command: the parameters
typer builds against those read here, and the values both hand the function for many
command lines.
"""

from __future__ import annotations

import atexit
import errno
import importlib
import os
import sys
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, List, Union, get_args, get_origin

from .base import AFTER_OPTIONS, ANNEX_MODE, annex_mode_args, dry_run_args
from .params import Decl, Group

# what a declaration may say besides its names and default for the fast path to take it
_HARMLESS = frozenset({"help", "metavar", "show_default", "hidden", "rich_help_panel"})
_SCALARS: tuple[type, ...] = (str, int, float)


class Unsure(Exception):
    """The fast path does not take this command line: typer does."""


class Param:
    """One parameter as click sees it (the subset rr's commands use)."""

    __slots__ = ("name", "kind", "opts", "secondary", "flag", "multiple", "nargs", "type",
                 "choices", "enum", "required", "default")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind                 # "option" | "argument"
        self.opts: list[str] = []        # -i, --input
        self.secondary: list[str] = []   # --no-sidecar
        self.flag = False
        self.multiple = False            # a repeatable option
        self.nargs = 1                   # an argument: 1, or -1 (the rest)
        self.type: type = str            # str, int, float, bool; an enum's values are str
        self.choices: tuple[str, ...] | None = None
        self.enum: type[Enum] | None = None
        self.required = False            # no default (``...``): typer asks for it
        self.default: Any = None         # the function's default (what typer passes)

    def __repr__(self) -> str:  # pragma: no cover - debugging
        return f"Param({self.name!r}, {self.kind}, {self.opts + self.secondary})"


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """(the type, the Annotated metadata)."""
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        return base, meta
    return annotation, []


def _optional(tp: Any) -> Any:
    if get_origin(tp) is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        raise Unsure("a union")
    return tp


def params_of(fn: Callable[..., Any]) -> list[Param]:
    """The parameters of a command function as typer makes them (raises Unsure when a
    declaration uses anything this module does not reproduce)."""
    code = fn.__code__  # type: ignore[attr-defined]
    if code.co_kwonlyargcount or code.co_flags & 0x0C:  # keyword-only, *args, **kwargs
        raise Unsure("a signature typer would read otherwise")
    names = code.co_varnames[:code.co_argcount]
    defaults = fn.__defaults__ or ()  # type: ignore[attr-defined]
    if len(defaults) != len(names):
        raise Unsure("a parameter without a default")
    annotations = fn.__annotations__
    out = []
    for name, default in zip(names, defaults):
        tp, meta = _unwrap(annotations.get(name, Any))
        decls = [m for m in meta if isinstance(m, Decl)]
        if isinstance(default, Decl):
            if decls:
                raise Unsure("declared twice")
            decl = default
            default = decl.args[0] if decl.args else ...
            names_ = list(decl.args[1:])
        elif len(decls) == 1:
            decl = decls[0]
            names_ = list(decl.args)
        else:
            raise Unsure("a parameter typer declares itself")
        if set(decl.kwargs) - _HARMLESS:
            raise Unsure(f"{name}: {sorted(set(decl.kwargs) - _HARMLESS)}")
        out.append(_param(name, decl.kind, names_, _optional(tp), default))
    return out


def _param(name: str, kind: str, names: list[str], tp: Any, default: Any) -> Param:
    p = Param(name, kind)
    p.default = default
    listed = get_origin(tp) in (list, List)
    if listed:
        (tp,) = get_args(tp)
        tp = _optional(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        p.enum = tp
        p.choices = tuple(str(m.value) for m in tp)
        p.type = str
    elif tp is bool and not listed:
        p.type = bool
    elif tp in _SCALARS:
        p.type = tp
    else:
        raise Unsure(f"{name}: type {tp!r}")
    if default is not ... and default is not None and not (
            (listed and default == []) or (not listed and (
                isinstance(default, p.enum) if p.enum is not None
                else type(default) is p.type))):
        raise Unsure(f"{name}: default {default!r}")
    p.required = default is ...
    if kind == "argument":
        if names or p.type is bool:
            raise Unsure(f"{name}: argument form")
        p.nargs = -1 if listed else 1
        return p
    if not names:
        names = [f"--{name.replace('_', '-')}"]
        if p.type is bool:
            names = [f"{names[0]}/--no-{name.replace('_', '-')}"]
    for spec in names:
        if "/" in spec:
            if p.type is not bool:
                raise Unsure(f"{name}: a pair of names on a value")
            first, second = (s.strip() for s in spec.split("/", 1))
            p.opts.append(first)
            p.secondary.append(second)
        else:
            p.opts.append(spec)
    if any(not o.startswith("-") or o == "-" or (len(o) > 2 and not o.startswith("--"))
           for o in p.opts + p.secondary):
        raise Unsure(f"{name}: option names")
    p.flag = p.type is bool
    p.multiple = listed
    return p


# --- parsing: click's rules -------------------------------------------------------------


def parse(params: list[Param], args: list[str], interspersed: bool) -> dict[str, Any]:
    """The values click would give (before typer converts them): str/int/float/bool, tuples
    for repeatable options and the argument list; absent ones not in the result."""
    by_name: dict[str, tuple[Param, bool]] = {}
    for p in params:
        for o in p.opts:
            by_name[o] = (p, True)
        for o in p.secondary:
            by_name[o] = (p, False)
    values: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            positional += args[i:]
            break
        if a[:1] != "-" or len(a) == 1:
            if interspersed:
                positional.append(a)
                continue
            positional += args[i - 1:]
            break
        name, eq, explicit = a.partition("=")
        if not a.startswith("--") and len(a) > 2:
            raise Unsure("clustered short options or an attached value")
        if name not in by_name:
            raise Unsure(f"unknown option {name}")
        p, primary = by_name[name]
        if p.flag:
            if eq:
                raise Unsure("a value given to a flag")
            values[p.name] = primary
            continue
        if eq:
            raw = explicit
        elif i < len(args):
            raw = args[i]
            i += 1
        else:
            raise Unsure("an option without its value")
        value = _convert(p, raw)
        if p.multiple:
            values[p.name] = (*values.get(p.name, ()), value)
        else:
            values[p.name] = value
    _arguments([p for p in params if p.kind == "argument"], positional, values)
    if any(p.required and p.name not in values for p in params):
        raise Unsure("a missing option or argument")
    return values


def _arguments(params: list[Param], positional: list[str], values: dict[str, Any]) -> None:
    """click's _unpack_args for arguments of nargs 1 with at most one nargs -1."""
    rest = [i for i, p in enumerate(params) if p.nargs == -1]
    if len(rest) > 1:
        raise Unsure("two argument lists")
    left = params[:rest[0]] if rest else params
    right = params[rest[0] + 1:] if rest else []
    words = list(positional)
    for p in left:
        if words:
            values[p.name] = _convert(p, words.pop(0))
    for p in reversed(right):
        if words:
            values[p.name] = _convert(p, words.pop())
    if rest:
        if words or not params[rest[0]].required:
            values[params[rest[0]].name] = tuple(_convert(params[rest[0]], w) for w in words)
    elif words:
        raise Unsure("an extra argument")


def _convert(p: Param, raw: str) -> Any:
    if p.choices is not None:
        if raw not in p.choices:
            raise Unsure("not one of the choices")
        return raw
    if p.type is str:
        return raw
    try:
        return p.type(raw)
    except ValueError:
        raise Unsure("a value of another type") from None


def kwargs_of(params: list[Param], values: dict[str, Any]) -> dict[str, Any]:
    """What typer hands the function: click's values converted (lists; None for an empty
    list whose default is None; enum members), the defaults where nothing was given."""
    out = {}
    for p in params:
        listed = p.multiple or p.nargs == -1
        if p.name in values:
            v = values[p.name]
        elif listed:
            v = ()
        else:
            v = p.default
        if listed:
            v = None if (p.default is None or p.default is ...) and not v else \
                [_member(p, x) for x in v]
        else:
            v = _member(p, v)
        out[p.name] = v
    return out


def _member(p: Param, v: Any) -> Any:
    if p.enum is not None and v is not None:
        return p.enum(v)
    return v


# --- the commands --------------------------------------------------------------------------


def find(argv: list[str], commands: tuple[tuple[str, str, str, dict[str, Any]], ...],
         groups: tuple[tuple[str, str, str], ...]
         ) -> tuple[Callable[..., Any], dict[str, Any], list[str], str]:
    """(the command function, rr's settings of it, its arguments, its name) for ``argv``."""
    if not argv:
        raise Unsure("no command")
    for name, module, fn, settings in commands:
        if argv[0] == name:
            return (getattr(importlib.import_module(f"recorder.cli.{module}"), fn), settings,
                    argv[1:], name)
    for name, module, attr in groups:
        if argv[0] == name and len(argv) > 1:
            group: Group = getattr(importlib.import_module(f"recorder.cli.{module}"), attr)
            for sub, fn_, settings in group.commands:
                if sub == argv[1]:
                    return fn_, settings, argv[2:], sub
    raise Unsure("not a command")


def prepare(argv: list[str], commands: tuple[tuple[str, str, str, dict[str, Any]], ...],
            groups: tuple[tuple[str, str, str], ...]
            ) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The command function and the keyword arguments typer would call it with."""
    fn, settings, args, name = find(argv, commands, groups)
    if set(settings) - {"class"}:
        raise Unsure("command settings")
    params = params_of(fn)
    kind = settings.get("class")
    if kind == ANNEX_MODE:
        args = annex_mode_args(args)  # may end in a usage error, as with typer
    elif kind == AFTER_OPTIONS and any(p.name == "dry_run" for p in params):
        takes_value = {o for p in params if p.kind == "option" and not p.flag for o in p.opts}
        args = dry_run_args(args, takes_value)
    elif kind not in (None, AFTER_OPTIONS):
        raise Unsure("a command class")
    values = parse(params, args, interspersed=kind != AFTER_OPTIONS)
    return fn, kwargs_of(params, values)


class _Pacified:
    """click's PacifyFlushWrapper: a stream whose flush ignores a closed pipe."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        try:
            self.wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.wrapped, attr)


def run(argv: list[str], commands: tuple[tuple[str, str, str, dict[str, Any]], ...],
        groups: tuple[tuple[str, str, str], ...]) -> None:
    """Run ``rr ARGV`` here and exit as typer's main would, or return (typer's turn)."""
    if "_RR_COMPLETE" in os.environ:
        return
    if argv == ["--version"]:  # typer's eager --version: the line, exit 0
        from .. import __version__  # noqa: PLC0415  rr --version only
        from . import render  # noqa: PLC0415  loaded already

        render.out(f"rr {__version__}")
        _end(0)
    try:
        fn, kwargs = prepare(argv, commands, groups)
    except Unsure:
        return
    try:
        fn(**kwargs)
    except SystemExit as exc:
        _end(exc.code)
    except EOFError:
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Pacified(sys.stdout)
        sys.stderr = _Pacified(sys.stderr)
        sys.exit(1)
    _end(0)


def _end(code: Any) -> None:
    """End the process as ``sys.exit(code)`` would, without Python's teardown of every
    module (7 ms of a 50 ms ``rr log``): the output flushed, the ``atexit`` functions run
    (temporary directories, Dask's clean-ups), then ``os._exit``.  While another thread runs
    (Python's exit waits for it), for an exit code that is not a number, when the output
    cannot be flushed (a closed pipe), and in any program but the ``rr`` console script
    itself (a program that calls ``main()`` gets its ``SystemExit``: ``python -m cProfile -m
    recorder.cli``, tests), the normal exit does it all."""
    script = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    if not (code is None or isinstance(code, int)) or (
            "threading" in sys.modules and sys.modules["threading"].active_count() > 1) or \
            os.path.basename(script) != "rr":
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code or 0)

