"""The environment a run declares relevant: which variables' values its record keeps.

Only the variables the user names are recorded (``rr run --env-record NAME``, repeatable,
and the dataset-wide list ``rr.run.env-record``); no other variable's value is ever read
into a record.  Recorded under the record's ``"rr"`` object as ``"env": {"vars": {NAME:
value or null}}`` (null: the variable was not set), which DataLad ignores.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from . import config as cfgkeys
from .dataset import Dataset
from .errors import UsageError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_name(name: str, where: str = "--env-record") -> str:
    """``name`` if it can name an environment variable; else a UsageError naming ``where``."""
    if not _NAME.match(name):
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise UsageError(f"{where}: not an environment variable name: {shown!r}",
                         hint="names are letters, digits and '_', not starting with a digit")
    return name


def declared_names(ds: Dataset, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The variables a run records: the dataset's ``rr.run.env-record`` list (each value
    split on whitespace and commas), then ``extra`` (``--env-record``); sorted, unique."""
    names = {check_name(n, cfgkeys.RUN_ENV_RECORD)
             for value in ds.config.get_all(cfgkeys.RUN_ENV_RECORD)
             for n in re.split(r"[\s,]+", value) if n}
    names.update(check_name(n) for n in extra)
    return tuple(sorted(names))


def declared_values(names: Iterable[str],
                    overrides: Mapping[str, str] = {}) -> dict[str, str | None]:
    """``{name: value}`` for the declared ``names`` as the command sees them: this process's
    environment with ``overrides`` (a run's own variables) on top; None where unset."""
    return {n: overrides[n] if n in overrides else os.environ.get(n) for n in names}
