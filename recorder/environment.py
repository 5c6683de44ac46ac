"""The environment a run declares relevant, and what rr measures of every run.

Only the variables the user names are recorded (``rr run --env-record NAME``, repeatable,
and the dataset-wide list ``rr.run.env-record``); no other variable's value is ever read
into a record.  Recorded under the record's ``"rr"`` object as ``"env": {"vars": {NAME:
value or null}}`` (null: the variable was not set), which DataLad ignores.

Beside the declared variables, every run that executed a command records (unless
``rr.run.record-environment`` is false) the facts of the machine under ``rr.env`` (``os``,
``arch``, ``python``, ``rr``, ``git_annex``, ``gpu`` when ``nvidia-smi`` is on PATH) and
what the command took under ``rr.resources`` (``wall_seconds``, ``cpu_seconds``: user +
system, ``max_rss_bytes``: the largest resident set of one process), measured by
``os.wait4`` over the command and its waited-for descendants.  These differ from run to
run by nature: comparisons of records (rerun, verify, the run-cache) leave them out.

Cost: no process per run but ``nvidia-smi`` where it exists; git-annex's version is kept
under ``.git/rr/`` keyed by the git-annex binary's path, size and mtime.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from . import __version__, annex, proc
from . import config as cfgkeys
from .dataset import Dataset
from .errors import RecorderError, UsageError

# what build_record adds to rr.env and rr.resources; comparisons of records leave them out
MEASURED_KEYS = ("env", "resources", "log")

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


def enabled(ds: Dataset) -> bool:
    """Whether runs record the machine's facts and the command's resources
    (``rr.run.record-environment``, default true); declared variables are recorded anyway."""
    return bool(ds.config.typed(cfgkeys.RUN_RECORD_ENVIRONMENT))


def measure(ds: Dataset, wall: float, usage: Any) -> dict[str, Any]:
    """The ``rr`` fields of a run that executed: ``{"env": facts, "resources": ...}`` (empty
    when capture is switched off).  ``usage``: ``os.wait4``'s rusage (None: not measured)."""
    if not enabled(ds):
        return {}
    out: dict[str, Any] = {"env": facts(ds)}
    out["resources"] = resources(wall, usage)
    return out


def facts(ds: Dataset) -> dict[str, Any]:
    """The machine a run ran on: OS and release, architecture, Python, rr, git-annex and the
    GPUs (model and driver) when ``nvidia-smi`` is on PATH."""
    uname = os.uname()
    info: dict[str, Any] = {"os": f"{uname.sysname} {uname.release}", "arch": uname.machine,
                            "python": sys.version.split()[0], "rr": __version__}
    version = annex_version(ds)
    if version:
        info["git_annex"] = version
    gpus = gpu()
    if gpus:
        info["gpu"] = gpus
    return info


def resources(wall: float, usage: Any) -> dict[str, Any]:
    """Wall time, CPU time (user + system) and peak memory (the largest max RSS of one
    process of the tree, in bytes) of a command."""
    out: dict[str, Any] = {"wall_seconds": round(wall, 3)}
    if usage is not None:
        out["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
        # Linux reports kilobytes, macOS bytes
        out["max_rss_bytes"] = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return out


def annex_version(ds: Dataset, keep: bool = True) -> str | None:
    """git-annex's version without a process per call: kept in ``.git/rr/annex-version``
    keyed by the binary's path, size and mtime (an upgrade changes them); None without
    git-annex or in a dataset without an annex.  ``keep=False``: read a kept version, but
    write none (rr rerun --verify changes nothing in the dataset but its notes)."""
    if not ds.is_annex:
        return None

    def ask() -> str | None:
        try:
            return annex.version(ds.root)
        except RecorderError:
            return None

    return proc.kept_version("git-annex", ds.git_dir / "rr" / "annex-version", ask, keep=keep)


def gpu() -> list[dict[str, str]]:
    """``[{"name": model, "driver": version}]`` per GPU as ``nvidia-smi`` reports them; empty
    when it is not on PATH or fails."""
    if shutil.which("nvidia-smi", path=proc.tool_path()) is None:
        return []
    try:
        out = proc.capture(["nvidia-smi", "--query-gpu=name,driver_version",
                            "--format=csv,noheader"], check=False)
    except RecorderError:
        return []
    if out.returncode != 0:
        return []
    gpus = []
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        name, _, driver = line.rpartition(",")
        if name.strip():
            gpus.append({"name": name.strip(), "driver": driver.strip()})
    return gpus


def without_measured(rr_info: Mapping[str, Any]) -> dict[str, Any]:
    """A record's ``rr`` object without what differs from run to run by nature (the
    machine's facts, the resources, the log): what a replay starts from.  The declared
    variables' names stay known through :func:`recorded_names`."""
    return {k: v for k, v in rr_info.items() if k not in MEASURED_KEYS}


def recorded_names(rr_info: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the variables a record declared (``rr.env.vars``), valid ones only."""
    env = rr_info.get("env")
    found = env.get("vars") if isinstance(env, dict) else None
    if not isinstance(found, dict):
        return ()
    return tuple(n for n in found if isinstance(n, str) and _NAME.match(n))
