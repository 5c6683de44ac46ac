"""Command formatting: ``{inputs} {outputs} {pwd} {dspath} {tmpdir} {inputs[0]}`` and friends.

Python ``str.format`` syntax as DataLad uses it: ``{{``/``}}`` are literal braces, list
placeholders are joined by spaces, indexing works.  Paths are shell-quoted (DataLad quotes
inputs and outputs; rr also quotes ``{pwd}``, ``{dspath}`` and ``{tmpdir}`` so paths with
spaces work).  Custom substitutions from ``datalad.run.substitutions.NAME`` are inserted as
written, since they are shell fragments.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping, Sequence
from typing import Any

from . import config as cfgkeys
from .errors import PlaceholderError

BUILTIN = ("pwd", "dspath", "tmpdir", "inputs", "outputs")


class QuotedPath(str):
    """A path to be shell-quoted when it lands in a command."""


class PathList(list):
    """A list of paths, rendered as quoted paths joined by spaces."""


class Fragment(list):
    """A multi-valued custom substitution, rendered as its values joined by spaces."""


class _Formatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, PathList):
            return " ".join(shlex.quote(format(str(v), format_spec)) for v in value)
        if isinstance(value, Fragment):
            return " ".join(format(str(v), format_spec) for v in value)
        if isinstance(value, QuotedPath):
            return shlex.quote(format(str(value), format_spec))
        return format(value, format_spec)

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]):
        obj, first = super().get_field(field_name, args, kwargs)
        if isinstance(obj, str) and not isinstance(obj, QuotedPath):
            base = kwargs.get(first) if isinstance(first, str) else None
            if isinstance(base, PathList):
                obj = QuotedPath(obj)
        return obj, first


_FORMATTER = _Formatter()


def field_names(template: str) -> list[str]:
    """Base names of all placeholders in ``template`` (raises PlaceholderError on bad syntax)."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise PlaceholderError(f"command has a malformed placeholder: {exc}",
                               hint="write literal braces as {{ and }}") from exc
    names = []
    for _literal, name, _spec, _conv in parsed:
        if name is None:
            continue
        base = name.split(".", 1)[0].split("[", 1)[0]
        names.append(base)
    return names


def expand(template: str, values: Mapping[str, Any], *, what: str = "command") -> str:
    try:
        return _FORMATTER.vformat(template, (), values)
    except KeyError as exc:
        name = exc.args[0] if exc.args else "?"
        known = ", ".join(sorted(values))
        raise PlaceholderError(
            f"{what} has an unrecognized placeholder: {{{name}}}",
            hint=f"known placeholders: {known}; write literal braces as {{{{ and }}}}") from None
    except IndexError as exc:
        raise PlaceholderError(f"{what} has a placeholder index out of range: {exc}") from None
    except (ValueError, AttributeError, TypeError) as exc:
        raise PlaceholderError(f"{what} has a malformed placeholder: {exc}",
                               hint="write literal braces as {{ and }}") from None


def substitutions(config_values: Mapping[str, list[str]]) -> dict[str, Any]:
    """Custom placeholders from ``datalad.run.substitutions.NAME`` config values."""
    prefix = cfgkeys.RUN_SUBSTITUTIONS.replace("<NAME>", "")
    result: dict[str, Any] = {}
    for key, vals in config_values.items():
        if key.startswith(prefix) and vals:
            name = key[len(prefix):]
            result[name] = vals[0] if len(vals) == 1 else Fragment(vals)
    return result


def expand_specs(specs: Sequence[str], values: Mapping[str, Any], what: str) -> list[str]:
    """Expand placeholders inside --input/--output specs (DataLad: custom substitutions and the
    raw spec lists; a spec list of exactly ``{name}`` naming a list is replaced by it)."""
    if len(specs) == 1:
        only = specs[0]
        if only.startswith("{") and only.endswith("}") and only[1:-1] in values:
            value = values[only[1:-1]]
            if isinstance(value, list):
                return [str(v) for v in value]
    return [expand(s, values, what=f"{what} specification") for s in specs]
