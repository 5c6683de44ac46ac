"""typer's objects made from rr's declarations (recorder/cli/params.py): a command function's
signature with typer's Option/Argument in place of the declarations, command groups as
typer applications, and the command classes of commands that take a command line after
their options and of ``--annex[=MODE]``.  Imported only when typer builds the application
(``rr --help``, ``rr CMD --help``, a command line the fast path leaves to typer, tests)."""

import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

import typer
import typer.core

try:  # typer 0.28 carries its own copy of click
    from typer._click.exceptions import NoSuchOption
except ImportError:  # pragma: no cover - typer with click as a dependency
    from click.exceptions import NoSuchOption  # type: ignore[no-redef,assignment]

from .base import AFTER_OPTIONS, ANNEX_MODE, annex_mode_args, dry_run_args, no_such_option
from .params import Decl, Group


def _typer_object(decl: Decl) -> Any:
    make = typer.Option if decl.kind == "option" else typer.Argument
    return make(*decl.args, **decl.kwargs)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with the signature typer reads: its declarations (defaults and ``Annotated``
    metadata) turned into typer's objects.  The function itself is unchanged."""
    if "__signature__" in fn.__dict__:
        return fn
    sig = inspect.signature(fn)
    params = []
    for p in sig.parameters.values():
        annotation, default = p.annotation, p.default
        if get_origin(annotation) is Annotated:
            base, *meta = get_args(annotation)
            if any(isinstance(m, Decl) for m in meta):
                meta = [_typer_object(m) if isinstance(m, Decl) else m for m in meta]
                annotation = Annotated[(base, *meta)]  # type: ignore[valid-type]
        if isinstance(default, Decl):
            default = _typer_object(default)
        params.append(p.replace(annotation=annotation, default=default))
    fn.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return fn


def group(declared: Group) -> typer.Typer:
    """The typer application of a command group, its commands registered."""
    app = typer.Typer(**declared.settings)
    for name, fn, settings in declared.commands:
        app.command(name, **command_settings(settings))(command(fn))
    return app


class AnnexModeOption(typer.core.TyperCommand):
    """``--annex`` with an optional value (base.annex_mode_args)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, annex_mode_args(args))


class CommandAfterOptions(typer.core.TyperCommand):
    """A command that takes a command line after its options (run, containers-run,
    run-procedure, containers-exec): everything from the first non-option word on, or after
    ``--``, is the command's; an unknown option before it is a usage error, not a command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, self._dry_run_value(args))
        except NoSuchOption as exc:
            no_such_option(ctx.info_name, exc.option_name)

    def _dry_run_value(self, args: list[str]) -> list[str]:
        if not any(getattr(p, "name", None) == "dry_run" for p in self.params):
            return args
        takes_value = {o for p in self.params if getattr(p, "param_type_name", "") == "option"
                       and not getattr(p, "is_flag", False) and not getattr(p, "count", False)
                       for o in p.opts}
        return dry_run_args(args, takes_value)


_CLASSES: dict[str, dict[str, Any]] = {
    AFTER_OPTIONS: {"cls": CommandAfterOptions,
                    "context_settings": {"allow_interspersed_args": False}},
    ANNEX_MODE: {"cls": AnnexModeOption},
}


def command_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """typer's settings of a command from rr's (``{"class": AFTER_OPTIONS}`` names one of the
    command classes above)."""
    out = {k: v for k, v in settings.items() if k != "class"}
    if "class" in settings:
        out.update(_CLASSES[settings["class"]])
    return out
