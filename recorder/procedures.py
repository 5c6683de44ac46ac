"""Procedures: discovery (user, system, dataset, shipped) and execution, DataLad-compatible.

A procedure is an executable, a Python script or a shell script named ``NAME[.py|.sh]``.  It
is called with the dataset path as first argument.  ``datalad.procedures.NAME.call-format``
(placeholders ``{script}``, ``{ds}``, ``{args}``) and ``.help`` are honoured.
"""

from __future__ import annotations

import ast
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import config as cfgkeys
from . import gitrepo, proc
from .dataset import Config, Dataset
from .errors import CommandFailedError, Interrupted, PlaceholderError, RecorderError
from .placeholders import expand, substitutions
from .results import OK, OnEvent, Result, announce, emit
from .run import execute, prepare_spec
from .save import save

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "procedures"
_SUFFIXES = (".py", ".sh", "")


@dataclass(frozen=True)
class Procedure:
    name: str
    path: Path
    source: str  # user | system | extra | dataset | subdataset | shipped
    call_format: str | None = None
    help: str | None = None
    overridden_by: str | None = None  # the source whose procedure of this name wins

    @property
    def state(self) -> str:
        if self.overridden_by:
            return "overridden"
        return "executable" if self.path.exists() else "absent"  # a broken symlink

    def to_dict(self) -> dict:
        kind = {".py": "python_script", ".sh": "bash_script"}.get(self.path.suffix,
                                                                "executable")
        return {"name": self.name, "path": str(self.path), "source": self.source,
                "call_format": self.call_format, "help": self.help, "state": self.state,
                "overridden_by": self.overridden_by,
                # DataLad's field names (run-procedure --discover results)
                "procedure_name": self.name, "procedure_type": kind,
                "procedure_callfmt": template_for(self), "procedure_help": self.help}


def _shipped_dir() -> Path:
    try:
        # a generated module, present in an installed wheel only
        from . import procedures_shipped  # type: ignore[attr-defined]  # noqa: PLC0415

        return Path(procedures_shipped.__file__).parent
    except ImportError:
        return SHIPPED_DIR


DATASET_PROCEDURES_KEY = cfgkeys.DATASET_PROCEDURES
DEFAULT_DATASET_PROCEDURES = ".datalad/procedures"


@dataclass(frozen=True)
class _Location:
    source: str          # user | system | extra | dataset | subdataset | shipped
    directory: Path
    owner: Dataset | None = None  # the (sub)dataset the directory belongs to


def locations(ds: Dataset | None) -> list[tuple[str, Path]]:
    """Where procedures are looked for, highest precedence first, as DataLad: user, system,
    extra (``datalad.locations.extra-procedures``, each value), the dataset, its installed
    subdatasets (depth first, each before its own subdatasets), shipped.  A dataset never
    overrides the user's or the system's procedures, and the user, system and extra
    locations come from git's own config scopes and the environment only (a cloned
    dataset's committed .datalad/config cannot point them elsewhere)."""
    return [(loc.source, loc.directory) for loc in _locations(ds)]


def _locations(ds: Dataset | None) -> list[_Location]:
    result: list[_Location] = []
    cfg = ds.config if ds is not None else None
    if cfg is None:
        cfg = Config.layered({}, {})
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = cfg.get_local(cfgkeys.USER_PROCEDURES)
    result.append(_Location("user", Path(user or os.path.join(xdg, "datalad", "procedures"))))
    system = cfg.get_local(cfgkeys.SYSTEM_PROCEDURES)
    result.append(_Location("system", Path(system or "/etc/xdg/datalad/procedures")))
    for extra in cfg.get_all_local(cfgkeys.EXTRA_PROCEDURES):
        if extra:
            result.append(_Location("extra", Path(os.path.expanduser(extra))))
    if ds is not None:
        result.extend(_dataset_locations(ds, ds, "dataset", set()))
    result.append(_Location("shipped", _shipped_dir()))
    return result


def _dataset_locations(top: Dataset, ds: Dataset, source: str, seen: set[Path]
                       ) -> list[_Location]:
    """The procedure directories of ``ds`` and, recursively, of its installed subdatasets;
    every one checked to stay inside ``ds`` (and so inside ``top``)."""
    real = ds.real_root
    if real in seen:
        return []
    seen.add(real)
    result = [_Location(source, ds.root / ds.config_path(DATASET_PROCEDURES_KEY, rel, rel), ds)
              for rel in (ds.config.get_all(DATASET_PROCEDURES_KEY)
                          or [DEFAULT_DATASET_PROCEDURES])]
    if not (ds.root / ".gitmodules").is_file():
        return result
    for path in ds.subdatasets():  # checked entries: plain relative paths inside ds
        sub_root = ds.root / path
        if not (sub_root / ".git").exists() or not top.resolves_inside(sub_root):
            continue  # not installed (or not where it claims to be)
        result.extend(_dataset_locations(top, Dataset(sub_root), "subdataset", seen))
    return result


def discover(ds: Dataset | None, *, overridden: bool = False) -> list[Procedure]:
    """All procedures, each name once (the first location that has it wins); with
    ``overridden`` also the ones a higher location shadows, marked as such."""
    found: dict[str, Procedure] = {}
    shadowed: list[Procedure] = []
    reported: set[Path] = set()
    for loc in _locations(ds):
        directory = loc.directory
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(("_", ".")) or entry in reported:
                continue
            if not entry.is_file() and not (entry.is_symlink() and not entry.exists()):
                continue
            stem, suffix = os.path.splitext(entry.name)
            if suffix not in _SUFFIXES:
                stem, suffix = entry.name, ""
            if loc.owner is not None and not (loc.owner.resolves_inside(entry) and (
                    ds is None or ds.resolves_inside(entry))):
                continue  # a dataset's "procedure" that is a symlink to a file elsewhere
            p = _with_config(ds, loc, Procedure(stem, entry, loc.source))
            if suffix == "" and not p.call_format and not os.access(entry, os.X_OK) \
                    and entry.exists():
                continue  # DataLad: not executable and no call format: not a procedure
            reported.add(entry)
            if stem in found:
                if overridden:
                    shadowed.append(Procedure(stem, entry, loc.source, p.call_format, p.help,
                                              overridden_by=found[stem].source))
                continue
            found[stem] = p
    return list(found.values()) + shadowed


def _with_config(ds: Dataset | None, loc: _Location, p: Procedure) -> Procedure:
    # a (sub)dataset configures its own procedures in its .datalad/config; how a user's,
    # the system's or a shipped procedure is called is decided by this machine's config
    # (git's own scopes and the environment) only
    if loc.owner is not None:
        get = loc.owner.config.get
    elif ds is not None:
        get = ds.config.get_local
    else:
        get = Config.layered({}, {}).get_local
    fmt = get(cfgkeys.named(cfgkeys.PROCEDURE_CALL_FORMAT, p.name))
    text = get(cfgkeys.named(cfgkeys.PROCEDURE_HELP, p.name))
    if text is None and p.path.suffix == ".py":
        text = _docstring(p.path)
    return Procedure(p.name, p.path, p.source, fmt, text)


def _docstring(path: Path) -> str | None:
    try:
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


def template_for(p: Procedure) -> str:
    """The call format: configured, or DataLad's default for the kind of file."""
    if p.call_format:
        return p.call_format
    if p.path.suffix == ".py":
        return f"{_guard(shlex.quote(sys.executable))} {{script}} {{ds}} {{args}}"
    if p.path.suffix == ".sh":
        return "bash {script} {ds} {args}"
    return "{script} {ds} {args}"


def _guard(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def command_for(p: Procedure, ds: Dataset, args: Sequence[str]) -> str:
    """The shell command a procedure runs as, built as DataLad builds it: the call format
    with ``{script}``, ``{ds}``, ``{args}`` filled in (``{{``/``}}`` are literal braces),
    then, as ``datalad run`` would, the run placeholders (``{pwd}``, ``{dspath}``,
    ``datalad.run.substitutions.*``) in what is left."""
    quoted_args = " ".join(shlex.quote(a) for a in args)
    what = f"the call format of procedure {p.name}"
    try:
        first = template_for(p).format(script=_guard(shlex.quote(str(p.path))),
                                       ds=_guard(shlex.quote(str(ds.root))),
                                       args=_guard(quoted_args))
    except KeyError as exc:
        raise RecorderError(f"{what} has an unknown placeholder: {{{exc.args[0]}}}",
                            hint="known: {script}, {ds}, {args}; write literal braces as "
                                 "{{ and }}") from None
    except (IndexError, ValueError, AttributeError) as exc:
        raise RecorderError(f"{what} is malformed: {exc}",
                            hint="write literal braces as {{ and }}") from None
    values = substitutions(ds.config.values)
    values.update(pwd=shlex.quote(str(ds.root)), dspath=shlex.quote(str(ds.root)))
    try:
        return expand(first, values, what=what).strip()
    except PlaceholderError as exc:
        raise RecorderError(exc.message, hint=exc.hint) from None


def help_text(ds: Dataset | None, name: str) -> tuple[Procedure, str]:
    """``rr run-procedure --help-proc NAME``: the procedure and its help
    (``datalad.procedures.NAME.help``, else a Python procedure's docstring)."""
    p = find(ds, name)
    if not p.help:
        raise RecorderError(f"no help available for procedure {name}",
                            hint=f"set it with git config datalad.procedures.{name}.help TEXT")
    return p, p.help


PROCEDURE_KEYS = ("action", "name")  # rr's JSON of a procedure run: its name second


def _result(name: str, commits: list[str]) -> Result:
    """A procedure's result: fields ``name`` and ``commits`` (those it made)."""
    return Result("run-procedure", None, OK, extra={"name": name, "commits": commits},
                  key_order=PROCEDURE_KEYS)


INNER_ENV = "RR_PROCEDURE_INNER"


def run_procedure(ds: Dataset, name: str, args: Sequence[str] = (),
                  record: bool = True,
                  on_event: OnEvent | None = None) -> Result:
    """Run a procedure in the dataset root.

    With ``record`` (``rr run-procedure``) the procedure runs as an rr run whose command is
    ``rr run-procedure NAME ARGS``, so its changes are committed with a run record and can be
    replayed.  Without (``rr create -c``) shipped procedures commit themselves with DataLad's
    messages.  On failure a dataset that was clean before is put back as it was.
    A procedure that rr does not ship (the user's, the system's, a dataset's) is code from
    elsewhere: its command line goes to ``on_event`` (an ANNOUNCE) before it runs.
    """
    p = find(ds, name)
    if p.state == "absent":
        raise RecorderError(f"procedure {name} is a broken symlink: {p.path}")
    command_for(p, ds, args)  # a bad call format is an error before anything runs
    if p.source != "shipped" and (os.environ.get(INNER_ENV) or not record):
        emit(on_event, announce(command_for(p, ds, args)))
    if os.environ.get(INNER_ENV):  # we are the command of the recorded run: just execute
        outcome = proc.run_shell(command_for(p, ds, args), ds.root,
                                 env={"RR_DATASET": str(ds.root), "RR_PROCEDURE_NO_SAVE": "1"})
        if outcome.returncode != 0:
            raise RecorderError(f"procedure {name} failed with exit code {outcome.returncode}")
        return _result(name, [])
    before = ds.head()
    was_clean = not ds.dirty_paths()
    if record:
        spec = prepare_spec(ds, ["rr", "run-procedure", name, *args],
                            message=f"Apply procedure {name}", cwd=ds.root, log=False)
        spec = replace(spec, env={INNER_ENV: "1"})
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
            save(ds, None, message=f"[DATALAD] Apply procedure {name}")
    ds.reload_config()
    after = ds.head()
    commits = gitrepo.rev_list(ds.root, [f"{before}..{after}"]) if before and after != before \
        else []
    return _result(name, commits)


def _restore(ds: Dataset, before: str | None, was_clean: bool, name: str, code: int) -> None:
    restored = False
    if was_clean and before is not None:
        gitrepo.reset_hard(ds.root, before)
        gitrepo.clean_untracked(ds.root)
        restored = True
    state = "the dataset was restored to its state before" if restored else \
        "the dataset was dirty before, so its changes were left as they are"
    raise RecorderError(f"procedure {name} failed with exit code {code}; {state}")
