"""The command line's declarations, without typer: ``Option``, ``Argument`` and ``Group``
record what they are given; typer's own objects are made from them when typer builds the
application (recorder/cli/typed.py), and the fast path (recorder/cli/fast.py) parses the
common commands from the same declarations without importing typer at all.

They take exactly typer's arguments: ``Option(default, "-n", "--name", help=...)`` as a
default, ``Annotated[str, Option("-n", "--name")]`` in an annotation, and ``Group(help=...)``
with ``@group.command("name")`` for command groups (``rr metrics show``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Decl:
    """An option or argument as declared: typer.Option / typer.Argument's arguments."""

    __slots__ = ("kind", "args", "kwargs")

    def __init__(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.kind = kind
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"{self.kind.capitalize()}{self.args!r}"


def Option(*args: Any, **kwargs: Any) -> Any:  # noqa: N802  typer's name
    return Decl("option", args, kwargs)


def Argument(*args: Any, **kwargs: Any) -> Any:  # noqa: N802  typer's name
    return Decl("argument", args, kwargs)


class Group:
    """A group of commands (``typer.Typer(**settings)`` with its commands registered)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.commands: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []

    def command(self, name: str, **settings: Any) -> Callable[[Callable[..., Any]],
                                                              Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.commands.append((name, fn, settings))
            return fn
        return register

    def find(self, name: str) -> Callable[..., Any] | None:
        return next((fn for n, fn, _ in self.commands if n == name), None)
