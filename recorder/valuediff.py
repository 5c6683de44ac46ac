"""Value-level comparison of metrics files: which keys or cells changed, old and new values.

Used by ``rr rerun --verify`` (a differing output) and ``rr diff-runs`` (an output of two run
commits).  Formats by file name: ``.json``, ``.yaml``/``.yml`` (nested keys flattened as
``a.b.c``, list items as ``a.0``), ``.csv``/``.tsv`` (a cell as ``COLUMN[FIRST=VALUE]`` when
the first column's values are unique in both tables, e.g. ``accuracy[epoch=3]``, else
``COLUMN[row N]``, N from 1).  Numbers compared with a relative tolerance ``rtol`` count as
"within rtol" (``math.isclose(a, b, rel_tol=rtol)``): a file whose every change is within
rtol is identical within the tolerance.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

CHANGED, ADDED, REMOVED, WITHIN_RTOL = "changed", "added", "removed", "within rtol"
SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".tsv")
MAX_CHANGES = 50  # listed per file; the count says how many more


@dataclass(frozen=True)
class ValueChange:
    """One key or cell whose value differs; ``old``/``new`` None when absent there."""

    key: str
    old: Any
    new: Any
    change: str  # CHANGED | ADDED | REMOVED | WITHIN_RTOL

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new, "change": self.change}


def is_metrics(path: str) -> bool:
    """Whether a file's name says it is a format this module compares."""
    return PurePosixPath(path).suffix.lower() in SUFFIXES


def parse(path: str, text: str) -> dict[str, Any] | None:
    """The values of a metrics file, flattened (key -> scalar); None when it is not one of
    the formats or does not parse."""
    suffix = PurePosixPath(path).suffix.lower()
    try:
        if suffix == ".json":
            return flatten(json.loads(text))
        if suffix in (".yaml", ".yml"):
            import yaml  # type: ignore[import-untyped]  # noqa: PLC0415  heavy

            return flatten(yaml.safe_load(text))
        if suffix in (".csv", ".tsv"):
            return _table(text, "\t" if suffix == ".tsv" else ",")
    except (ValueError, ImportError, csv.Error):
        return None
    except Exception as exc:  # yaml.YAMLError: yaml is imported only here
        if type(exc).__module__.startswith("yaml"):
            return None
        raise
    return None


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as ``a.b.c`` / ``a.0`` keys; a scalar document as ``value``."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1] if prefix else "value"] = obj
    return out


def _table(text: str, delimiter: str) -> dict[str, Any]:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    firsts = [r[0] if r else "" for r in body]
    keyed = len(header) > 1 and len(set(firsts)) == len(firsts)
    out: dict[str, Any] = {}
    for n, row in enumerate(body, 1):
        where = f"{header[0]}={row[0]}" if keyed and row else f"row {n}"
        for col, cell in enumerate(row):
            if keyed and col == 0:
                continue
            name = header[col] if col < len(header) else f"column {col + 1}"
            out[f"{name}[{where}]"] = number(cell)
    return out


def number(value: Any) -> Any:
    """A CSV cell as int or float when it reads as one, else the text."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def compare(old: dict[str, Any], new: dict[str, Any], rtol: float = 0.0) -> list[ValueChange]:
    """The keys whose values differ, in key order (numbers within ``rtol``: WITHIN_RTOL)."""
    changes: list[ValueChange] = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            changes.append(ValueChange(key, old[key], None, REMOVED))
        elif key not in old:
            changes.append(ValueChange(key, None, new[key], ADDED))
        elif old[key] != new[key] or type(old[key]) is not type(new[key]) and \
                not (_is_number(old[key]) and _is_number(new[key])):
            a, b = old[key], new[key]
            close = rtol > 0 and _is_number(a) and _is_number(b) and \
                math.isclose(a, b, rel_tol=rtol)
            changes.append(ValueChange(key, a, b, WITHIN_RTOL if close else CHANGED))
    return changes


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def diff_texts(path: str, old: str, new: str, rtol: float = 0.0) -> list[ValueChange] | None:
    """The value changes between two versions of a metrics file; None when either does not
    parse as the format its name says (the caller shows a text diff instead)."""
    a, b = parse(path, old), parse(path, new)
    if a is None or b is None:
        return None
    return compare(a, b, rtol)


def only_within_rtol(changes: Sequence[ValueChange]) -> bool:
    """Every change is a number within the tolerance (and there is at least one)."""
    return bool(changes) and all(c.change == WITHIN_RTOL for c in changes)


def summary(changes: Sequence[ValueChange], limit: int = MAX_CHANGES) -> list[dict[str, Any]]:
    """The changes as JSON-ready dicts, at most ``limit`` (then one ``{"more": N}``)."""
    out = [c.to_dict() for c in changes[:limit]]
    if len(changes) > limit:
        out.append({"more": len(changes) - limit})
    return out


def describe(change: dict[str, Any]) -> str:
    """One change as a person reads it: ``accuracy: 0.91 → 0.93``."""
    if "more" in change:
        return f"... ({change['more']} more)"
    kind = change.get("change")
    if kind == REMOVED:
        return f"{change['key']}: {_show(change['old'])} → (removed)"
    if kind == ADDED:
        return f"{change['key']}: (added) → {_show(change['new'])}"
    tail = " (within rtol)" if kind == WITHIN_RTOL else ""
    return f"{change['key']}: {_show(change['old'])} → {_show(change['new'])}{tail}"


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


# --- the environment of a record -----------------------------------------------------------

# the facts a record keeps under rr.env (written by rr run), compared by name
ENV_KEYS = ("rr", "git_annex", "python", "os", "arch", "gpu")
ENV_NAMES = {"image": "image digest", "rr": "rr", "git_annex": "git-annex",
             "python": "Python", "os": "OS", "arch": "architecture", "gpu": "GPU"}


def recorded_env(record: dict[str, Any] | None) -> dict[str, Any]:
    """The environment facts of a run record: ``image`` (rr.container.digest), the versions
    and platform under rr.env (ENV_KEYS), ``vars`` (rr.env.vars: the declared variables and
    their values); absent facts are left out.  Tolerant of any shape."""
    info = (record or {}).get("rr")
    info = info if isinstance(info, dict) else {}
    facts: dict[str, Any] = {}
    container = info.get("container")
    if isinstance(container, dict) and isinstance(container.get("digest"), str):
        facts["image"] = container["digest"]
    env = info.get("env")
    if isinstance(env, dict):
        for key in ENV_KEYS:
            if isinstance(env.get(key), (str, int, float)):
                facts[key] = str(env[key])
            elif env.get(key) is not None:  # the GPUs: a list of model and driver
                facts[key] = json.dumps(env[key], sort_keys=True)
        if isinstance(env.get("vars"), dict):
            facts["vars"] = {str(k): None if v is None else str(v)
                             for k, v in env["vars"].items()}
    return facts


def env_changes(old: dict[str, Any], new: dict[str, Any], *,
                both: bool = False) -> list[dict[str, Any]]:
    """The environment facts that differ: ``{"what", "old", "new"}`` each, "what" a fact's
    name or a variable's.  Compared: the facts ``old`` has (a record's, against the
    environment now) where ``new`` knows them; with ``both`` (two records) every fact either
    has."""
    out: list[dict[str, Any]] = []
    for key in ("image", *ENV_KEYS):
        a, b = old.get(key), new.get(key)
        if a == b or (not both and (a is None or b is None)):
            continue
        out.append({"what": ENV_NAMES[key], "old": a, "new": b})
    a_vars, b_vars = old.get("vars") or {}, new.get("vars") or {}
    names = sorted(set(a_vars) | set(b_vars)) if both else sorted(a_vars)
    for name in names:
        a, b = a_vars.get(name), b_vars.get(name)
        if a != b:
            out.append({"what": name, "old": a, "new": b, "variable": True})
    return out


def describe_env(change: dict[str, Any]) -> str:
    """``OMP_NUM_THREADS 8 → 1``, ``image digest sha256:aa… → sha256:bb…``."""
    def show(value: Any) -> str:
        return "(unset)" if value is None and change.get("variable") else \
            "(not recorded)" if value is None else str(value)
    return f"{change['what']} {show(change['old'])} → {show(change['new'])}"
