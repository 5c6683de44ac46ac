"""Procedures: discovery (user, system, dataset, shipped) and execution, DataLad-compatible.

A procedure is an executable, a Python script or a shell script named ``NAME[.py|.sh]``.  It
is called with the dataset path as first argument.  ``datalad.procedures.NAME.call-format``
(placeholders ``{script}``, ``{ds}``, ``{args}``) and ``.help`` are honoured.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import gitrepo, proc
from .dataset import Dataset
from .errors import RecorderError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "procedures"
_SUFFIXES = (".py", ".sh", "")


@dataclass(frozen=True)
class Procedure:
    name: str
    path: Path
    source: str  # user | system | dataset | shipped
    call_format: str | None = None
    help: str | None = None
    overridden_by: str | None = None  # the source whose procedure of this name wins

    @property
    def state(self) -> str:
        return "overridden" if self.overridden_by else "executable"

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "source": self.source,
                "call_format": self.call_format, "help": self.help, "state": self.state,
                "overridden_by": self.overridden_by}


def _shipped_dir() -> Path:
    try:
        from . import procedures_shipped  # type: ignore[attr-defined]

        return Path(procedures_shipped.__file__).parent
    except ImportError:
        return SHIPPED_DIR


DATASET_PROCEDURES_KEY = "datalad.locations.dataset-procedures"
DEFAULT_DATASET_PROCEDURES = ".datalad/procedures"


def locations(ds: Dataset | None) -> list[tuple[str, Path]]:
    """Where procedures are looked for, highest precedence first, as DataLad: user, system,
    dataset, shipped.  A dataset never overrides the user's or the system's procedures, and
    the user and system locations come from git's own config scopes only (a cloned
    dataset's committed .datalad/config cannot point them elsewhere)."""
    result: list[tuple[str, Path]] = []
    cfg = ds.config if ds is not None else None
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = cfg.get_local("datalad.locations.user-procedures") if cfg else None
    result.append(("user", Path(user or os.path.join(xdg, "datalad", "procedures"))))
    system = cfg.get_local("datalad.locations.system-procedures") if cfg else None
    result.append(("system", Path(system or "/etc/xdg/datalad/procedures")))
    if ds is not None and cfg is not None:
        for rel in (cfg.get_all(DATASET_PROCEDURES_KEY) or [DEFAULT_DATASET_PROCEDURES]):
            result.append(("dataset", ds.root / _dataset_dir(ds, rel)))
    result.append(("shipped", _shipped_dir()))
    return result


def _dataset_dir(ds: Dataset, value: str) -> str:
    """A dataset procedure directory: a relative path that stays inside the dataset."""
    if os.path.isabs(value):
        raise RecorderError(f"{DATASET_PROCEDURES_KEY} must be a path inside the dataset, "
                            f"not an absolute path: {value}")
    try:
        return ds.ensure_inside(value, ds.root, follow_final=True, what=DATASET_PROCEDURES_KEY)
    except RecorderError as exc:
        raise RecorderError(f"{DATASET_PROCEDURES_KEY} is not a path inside the dataset: "
                            f"{exc.message}") from None


def discover(ds: Dataset | None, *, overridden: bool = False) -> list[Procedure]:
    """All procedures, each name once (the first location that has it wins); with
    ``overridden`` also the ones a higher location shadows, marked as such."""
    found: dict[str, Procedure] = {}
    shadowed: list[Procedure] = []
    for source, directory in locations(ds):
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(("_", ".")) or not entry.is_file():
                continue
            stem, suffix = os.path.splitext(entry.name)
            if suffix not in _SUFFIXES:
                continue
            if suffix == "" and not os.access(entry, os.X_OK):
                continue
            if source == "dataset" and ds is not None and not ds.resolves_inside(entry):
                continue  # a dataset's "procedure" that is a symlink to a file elsewhere
            if stem in found:
                if overridden and found[stem].path != entry:
                    shadowed.append(Procedure(stem, entry, source,
                                              overridden_by=found[stem].source))
                continue
            found[stem] = _with_config(ds, Procedure(stem, entry, source))
    return list(found.values()) + shadowed


def _with_config(ds: Dataset | None, p: Procedure) -> Procedure:
    if ds is None:
        return p
    # a dataset configures its own procedures in .datalad/config; how a user's, the
    # system's or a shipped procedure is called is decided by this machine's config only
    get = ds.config.get if p.source == "dataset" else ds.config.get_local
    fmt = get(f"datalad.procedures.{p.name}.call-format")
    text = get(f"datalad.procedures.{p.name}.help")
    if text is None and p.path.suffix == ".py":
        text = _docstring(p.path)
    return Procedure(p.name, p.path, p.source, fmt, text)


def _docstring(path: Path) -> str | None:
    try:
        import ast

        return (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip() \
            or None
    except (OSError, SyntaxError, ValueError):
        return None


def find(ds: Dataset | None, name: str) -> Procedure:
    procs = discover(ds)
    for p in procs:
        if p.name == name:
            return p
    available = ", ".join(sorted(p.name for p in procs)) or "none"
    raise RecorderError(f"unknown procedure: {name}", hint=f"available: {available}")


def ensure_known(names: Sequence[str], path: str | os.PathLike[str] | None) -> None:
    """Check `create -c` names before anything is created."""
    for name in names:
        find(None, name if name.startswith("cfg_") else f"cfg_{name}")


def command_for(p: Procedure, ds: Dataset, args: Sequence[str]) -> str:
    quoted_args = " ".join(shlex.quote(a) for a in args)
    if p.call_format:
        return p.call_format.format(script=shlex.quote(str(p.path)), ds=shlex.quote(str(ds.root)),
                                    args=quoted_args)
    if p.path.suffix == ".py":
        base = f"{shlex.quote(sys.executable)} {shlex.quote(str(p.path))}"
    elif p.path.suffix == ".sh":
        base = f"bash {shlex.quote(str(p.path))}"
    else:
        base = shlex.quote(str(p.path))
    return f"{base} {shlex.quote(str(ds.root))} {quoted_args}".rstrip()


@dataclass
class ProcedureResult:
    name: str
    status: str
    commits: list[str]

    def to_dict(self) -> dict:
        return {"action": "run-procedure", "name": self.name, "status": self.status,
                "commits": self.commits}


INNER_ENV = "RR_PROCEDURE_INNER"


def run_procedure(ds: Dataset, name: str, args: Sequence[str] = (),
                  record: bool = True,
                  announce: Callable[[str], None] | None = None) -> ProcedureResult:
    """Run a procedure in the dataset root.

    With ``record`` (``rr run-procedure``) the procedure runs as an rr run whose command is
    ``rr run-procedure NAME ARGS``, so its changes are committed with a run record and can be
    replayed.  Without (``rr create -c``) shipped procedures commit themselves with DataLad's
    messages.  On failure a dataset that was clean before is put back as it was.
    A procedure that rr does not ship (the user's, the system's, a dataset's) is code from
    elsewhere: its command line goes to ``announce`` before it runs.
    """
    p = find(ds, name)
    if announce is not None and p.source != "shipped" and (
            os.environ.get(INNER_ENV) or not record):
        announce(command_for(p, ds, args))
    if os.environ.get(INNER_ENV):  # we are the command of the recorded run: just execute
        outcome = proc.run_shell(command_for(p, ds, args), ds.root,
                                 env={"RR_DATASET": str(ds.root), "RR_PROCEDURE_NO_SAVE": "1"})
        if outcome.returncode != 0:
            raise RecorderError(f"procedure {name} failed with exit code {outcome.returncode}")
        return ProcedureResult(name, "ok", [])
    before = ds.head()
    was_clean = not ds.dirty_paths()
    if record:
        from .errors import CommandFailedError, Interrupted
        from .run import execute, prepare_spec

        spec = prepare_spec(ds, ["rr", "run-procedure", name, *args],
                            message=f"Apply procedure {name}", cwd=ds.root)
        spec.env = {INNER_ENV: "1"}
        try:
            execute(ds, spec)
        except (CommandFailedError, Interrupted) as exc:
            _restore(ds, before, was_clean, name, exc.exit_code)
    else:
        outcome = proc.run_shell(command_for(p, ds, args), ds.root,
                                 env={"RR_DATASET": str(ds.root)})
        if outcome.returncode != 0 or outcome.interrupted_by is not None:
            _restore(ds, before, was_clean, name, outcome.returncode)
        ds.reload_config()
        if ds.dirty_paths() and was_clean:
            from .save import save

            save(ds, None, message=f"[DATALAD] Apply procedure {name}")
    ds.reload_config()
    after = ds.head()
    commits = gitrepo.rev_list(ds.root, [f"{before}..{after}"]) if before and after != before \
        else []
    return ProcedureResult(name, "ok", commits)


def _restore(ds: Dataset, before: str | None, was_clean: bool, name: str, code: int) -> None:
    restored = False
    if was_clean and before is not None:
        gitrepo.call_git(["reset", "-q", "--hard", before], ds.root)
        gitrepo.call_git(["clean", "-q", "-f", "-d"], ds.root)
        restored = True
    state = "the dataset was restored to its state before" if restored else \
        "the dataset was dirty before, so its changes were left as they are"
    raise RecorderError(f"procedure {name} failed with exit code {code}; {state}")
