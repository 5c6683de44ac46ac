"""The run operation: resolve specs, prepare inputs and outputs, execute, save with a record."""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import config as cfgkeys
from . import (annex, cache, environment, gitrepo, preflight, proc, protect, runlog,
               runmerge, subdatasets)
from . import record as records
from .dataset import Dataset
from .errors import (CommandFailedError, DirtyDatasetError, InputNotFoundError, Interrupted,
                     RecorderError, RunNotSavedError, UnsafePathError, UsageError)
from .lock import announce_inflight, dataset_lock, inflight_runs
from .results import NOTNEEDED, OK, OnEvent, Result, Status, announce, emit
from .placeholders import (Fragment, PathList, QuotedPath, expand, expand_specs, field_names,
                           substitutions)
from .save import save_in_subdatasets, commit_entries

if TYPE_CHECKING:
    from .containers.registry import ContainerCall

EXPAND_CHOICES = ("inputs", "outputs", "both")


def run_result(status: Status, commit: str | None, record: dict[str, Any], command: str,
               exit_code: int, pwd: str, inputs: Sequence[str] = (),
               outputs: Sequence[str] = (), duration: float = 0.0, saved: Sequence[str] = (),
               notes: Sequence[str] = ()) -> Result:
    """A run's result (status ok, notneeded or dry-run), its fields: ``commit``, ``record``,
    ``command`` (the expanded command that ran, or would run), ``exit`` (``exit_code``),
    ``pwd``, ``inputs`` and ``outputs`` (expanded, relative to pwd), ``duration`` (seconds,
    to the millisecond), ``saved`` (the paths committed), ``notes``."""
    return Result("run", None, status, extra={
        "commit": commit, "record": record, "command": command, "exit": exit_code,
        "pwd": pwd, "inputs": list(inputs), "outputs": list(outputs),
        "duration": round(duration, 3), "saved": list(saved), "notes": list(notes)})


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to execute and record one command in a dataset; a value: derive
    another with ``dataclasses.replace`` (or :func:`with_container`)."""

    cmd: str  # normalised, unexpanded
    pwd: Path  # absolute execution directory
    inputs: list[str]  # specs (placeholders inside specs already expanded)
    outputs: list[str]
    extra_inputs: list[str] = field(default_factory=list)
    message: str | None = None
    expand: str | None = None
    explicit: bool = False
    assume_ready: str | None = None
    sidecar: bool | None = None
    chain: list[str] = field(default_factory=list)
    expected_exit: int = 0
    extra_unlock: list[str] = field(default_factory=list)  # dataset-relative (rerun)
    rr_info: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    digest_pending: bool = False
    recorded_digest: str | None = None
    job: bool = False  # an array job: writes no shared ref (the notes); the driver does
    env_record: tuple[str, ...] = ()  # declared variables whose values the record keeps
    log: bool = False  # keep the command's output in .rr/logs (rr.log; see runlog.py)
    cache: bool = True  # may restore an earlier run's outputs (recorder/cache.py); --no-cache
    cache_verbose: bool = False  # say why the cache missed (an event; -v)
    # a record of rr rerun's serial replay: the replay checked the tree is clean (held under
    # its dataset lock) and writes the duration notes itself, one notes commit at its end
    in_replay: bool = False


def with_container(spec: RunSpec, call: ContainerCall) -> RunSpec:
    """The run as the container call (``containers.registry.wrap_spec``) says."""
    return replace(spec, cmd=call.cmd, extra_inputs=list(call.extra_inputs), env=dict(call.env),
                   rr_info=dict(call.rr_info), digest_pending=call.digest_pending)


def normalize_command(cmd: str | Sequence[str]) -> str:
    """DataLad's normalisation: one token verbatim, several shell-quoted and joined."""
    if isinstance(cmd, str):
        return cmd
    words = list(cmd)
    if words and words[0] == "--":
        words = words[1:]
    if len(words) == 1:
        return words[0]
    return shlex.join(words)


def resolve_pwd(ds: Dataset, cwd: Path | None = None) -> Path:
    """Where the command runs and relative paths start.

    ``cwd`` given (the command line always gives the working directory, as DataLad takes a
    dataset named by a path, gh-3435): there, even outside the dataset (the record's pwd then
    starts with '..'; inputs and outputs must still be inside the dataset).  Not given: the
    working directory when it is inside the dataset, else the dataset root.
    """
    if cwd is not None:
        return Path(os.path.normpath(Path(cwd).absolute()))
    here = Path(os.getcwd()).absolute()
    return here if ds.contains(here) else ds.root


# --- globbing ---------------------------------------------------------------------------


class Globbed(NamedTuple):  # a NamedTuple: cheaper than a dataclass at start-up
    hits: list[str]  # relative to pwd, in DataLad's order ("." first when given)
    unmatched: list[str]


def glob_specs(specs: Sequence[str], pwd: Path, ds: Dataset) -> Globbed:
    hits: list[str] = []
    dot: list[str] = []
    unmatched: list[str] = []
    for spec in specs:
        if spec == ".":
            dot.append(".")
            continue
        pattern = spec
        if os.path.isabs(pattern):
            pattern = os.path.relpath(pattern, pwd)
        # a literal name wins, even with [ or *
        if os.path.lexists(os.path.normpath(pwd / pattern)):
            found = [pattern]
        elif glob.has_magic(pattern):
            found = sorted(glob.glob(pattern, root_dir=pwd, recursive=True))
        else:
            found = []
        if not found:
            unmatched.append(spec)
            continue
        for hit in found:
            ds.relpath(pwd / hit)  # raises OutsideDatasetError
        hits.extend(found)
    return Globbed(dot[:1] + hits, unmatched)


def _to_root(ds: Dataset, pwd: Path, paths: Sequence[str]) -> list[str]:
    return [ds.relpath(pwd / p) for p in paths]


# --- preparation ------------------------------------------------------------------------


def fetch_inputs(ds: Dataset, root_paths: Sequence[str]) -> None:
    """Fetch the annexed content of inputs (in one git-annex call per dataset), installing
    subdatasets they live in."""
    if not root_paths:
        return
    subdatasets.fetch(ds, root_paths)


def unlock_outputs(ds: Dataset, root_paths: Sequence[str]) -> list[str]:
    """Make existing annexed outputs writable; remove files whose content is absent.

    An annexed output is replaced by a writable copy of its content (what ``git annex unlock``
    does, without a git-annex process: saving re-annexes it).  Directories are handled file
    by file for the files whose content is here; absent files under a directory are left
    alone.  Returns the removed paths.
    """
    if not root_paths or not ds.is_annex:
        return []
    to_unlock: list[str] = []
    removed: list[str] = []
    dirs: list[str] = []
    for rel in root_paths:
        full = ds.root / rel
        if annex.is_locked_annexed(full):
            if full.exists():
                to_unlock.append(rel)
            else:
                full.unlink()
                removed.append(rel)
        elif full.is_dir() and not full.is_symlink():
            dirs.append(rel)
    if dirs:
        for rel in gitrepo.ls_files_symlinks(ds.root, dirs):
            full = ds.root / rel
            if annex.is_locked_annexed(full) and full.exists():
                to_unlock.append(rel)
    for rel in to_unlock:
        if not ds.resolves_inside(rel):  # dressed as annexed content, but leads out
            raise UnsafePathError(f"output {rel} is a symlink that looks like annexed content "
                                  f"but leads outside the dataset (to "
                                  f"{os.path.realpath(ds.root / rel)})",
                                  hint=f"remove the link or declare another output: "
                                       f"git rm {shlex.quote(rel)}")
    for rel in to_unlock:
        annex.copy_out(ds.root / rel)
    return removed


def ensure_clean(ds: Dataset) -> None:
    """No unsaved changes, but for the declared outputs of ``--explicit`` runs going on."""
    dirty = [e.path for e in _unclaimed(ds, ds.status())]
    if dirty:
        error = DirtyDatasetError(dirty)
        kept = _kept_run_message(ds)
        if kept:
            error.hint = (f"a run that did not finish saving left its record ({kept!r}) in "
                          f".git/COMMIT_EDITMSG: save with {save_command(ds, None)}; "
                          f"or {error.hint}")
        raise error


# --- the operation ----------------------------------------------------------------------


def prepare_spec(
    ds: Dataset,
    cmd: str | Sequence[str],
    *,
    message: str | None = None,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    extra_inputs: Sequence[str] = (),
    expand: str | None = None,
    explicit: bool = False,
    assume_ready: str | None = None,
    sidecar: bool | None = None,
    cwd: Path | None = None,
    env_record: Sequence[str] = (),
    log: bool | None = None,
) -> RunSpec:
    command = normalize_command(cmd)
    if not command.strip():
        raise UsageError("no command given", hint="rr run [OPTIONS] COMMAND...")
    size = len(command.encode("utf-8", "surrogateescape"))
    if size > records.MAX_COMMAND_BYTES:  # one argument of `sh -c` cannot be longer
        raise UsageError(f"the command is too long ({size} bytes; a shell command can have "
                         f"at most {records.MAX_COMMAND_BYTES})",
                         hint="put it into a script in the dataset and run that")
    pwd = resolve_pwd(ds, cwd)
    refuse_non_utf8(command=command, message=message, inputs=inputs, outputs=outputs,
                    extra_inputs=extra_inputs, pwd=os.path.relpath(pwd, ds.root))
    if expand not in (None, *EXPAND_CHOICES):
        raise UsageError(f"--expand must be one of {', '.join(EXPAND_CHOICES)}")
    if assume_ready not in (None, *EXPAND_CHOICES):
        raise UsageError(f"--assume-ready must be one of {', '.join(EXPAND_CHOICES)}")
    values = substitutions(ds.config.values)
    raw = dict(values)
    raw["inputs"] = list(inputs)
    raw["outputs"] = list(outputs)
    in_specs = expand_specs(list(inputs), raw, "input")
    out_specs = expand_specs(list(outputs), raw, "output")
    return RunSpec(cmd=command, pwd=pwd, inputs=in_specs, outputs=out_specs,
                   extra_inputs=list(extra_inputs), message=message, expand=expand,
                   explicit=explicit, assume_ready=assume_ready, sidecar=sidecar,
                   env_record=environment.declared_names(ds, env_record),
                   log=ds.config.typed(cfgkeys.RUN_LOG) if log is None else log)


def refuse_non_utf8(**texts: str | Sequence[str] | None) -> None:
    """Before anything runs: a command, message, path or value holding bytes that are not
    UTF-8 cannot go into a run record (JSON in a UTF-8 commit message): one line naming
    them, instead of a command that runs and then is not recorded."""
    for what, value in texts.items():
        for text in [value] if isinstance(value, str) else list(value or ()):
            bad = records.not_utf8(text)
            if bad is not None:
                name = {"command": "the command", "message": "the message", "pwd":
                        "the working directory", "inputs": "an input", "outputs": "an output",
                        "extra_inputs": "an extra input"}.get(what, what)
                hint = {"command": "write such bytes with printf escapes, e.g. "
                                   "\"$(printf '\\377')\"",
                        "message": "give a message in UTF-8",
                        "pwd": "run from a directory whose path is UTF-8 (the dataset's "
                               "root, with -d)"}.get(what, "name it by a glob, e.g. 'data/*'")
                raise UsageError(f"{name} holds bytes that are not UTF-8 ({bad}); a run "
                                 "record is UTF-8 text and cannot keep them", hint=hint)


def command_values(ds: Dataset, spec: RunSpec, in_hits: Sequence[str],
                   out_hits: Sequence[str], tmpdir: str) -> dict[str, Any]:
    values: dict[str, Any] = substitutions(ds.config.values)
    values.update(
        pwd=QuotedPath(str(spec.pwd)),
        dspath=QuotedPath(str(ds.root)),
        tmpdir=QuotedPath(tmpdir),
        inputs=PathList(in_hits),
        outputs=PathList(out_hits),
        extra_inputs=Fragment(spec.extra_inputs),
    )
    return values


@dataclass
class Plan:
    spec: RunSpec
    in_hits: list[str]
    extra_hits: list[str]
    out_hits: list[str]


def plan(ds: Dataset, spec: RunSpec, *, for_dry_run: bool = False) -> Plan:
    """Everything that can be checked without touching the dataset (but for installing
    subdatasets that the specs reach into, which changes no recorded state)."""
    ds.record_directory()  # a hostile datalad.run.record-directory fails before the command
    if not for_dry_run and (ds.root / ".gitmodules").exists():
        subdatasets.install_for_specs(ds, spec.pwd,
                                      [*spec.inputs, *spec.outputs, *spec.extra_inputs])
    inp = glob_specs(spec.inputs, spec.pwd, ds)
    extra = glob_specs(spec.extra_inputs, spec.pwd, ds)
    problems = inp.unmatched + extra.unmatched
    if problems and not for_dry_run:
        raise InputNotFoundError(problems)
    out = glob_specs(spec.outputs, spec.pwd, ds)
    out_hits = out.hits + out.unmatched  # outputs that do not exist yet stay as written
    for p in out.unmatched:
        ds.relpath(spec.pwd / p)  # an output outside the dataset is an error
        problem = records.path_problem(p)  # a name no file system takes: before anything runs
        if problem is not None:
            raise UsageError(f"output {p[:60]!r}{'...' if len(p) > 60 else ''} {problem}")
    # validate the command's placeholders with a stand-in tmpdir before anything is touched
    expand(spec.cmd, command_values(ds, spec, inp.hits + inp.unmatched, out_hits,
                                    "/tmp/rr-run-check"))
    return Plan(spec, inp.hits + (inp.unmatched if for_dry_run else []), extra.hits, out_hits)


def dry_run(ds: Dataset, spec: RunSpec) -> Result:
    if not spec.explicit:
        ensure_clean(ds)
    p = plan(ds, spec, for_dry_run=True)
    command = expand(spec.cmd, command_values(ds, spec, p.in_hits, p.out_hits,
                                              "{tmpdir}"))
    rec = build_record(ds, spec, 0, p.in_hits, p.out_hits)
    result = run_result(Status.DRY_RUN, None, rec, command, 0, _record_pwd(ds, spec.pwd),
                        p.in_hits, p.out_hits)
    return result._replace(extra={**(result.extra or {}), "cache": _dry_run_cache(ds, spec, p)})


def _dry_run_cache(ds: Dataset, spec: RunSpec, p: Plan) -> dict[str, Any]:
    """What the run-cache would do for the run: ``cached_from`` (the commit it would be
    restored from, or None) and ``reasons`` (why not: off, not cacheable, what changed)."""
    if not spec.cache:
        return {"cached_from": None, "reasons": ["--no-cache"]}
    if not cache.enabled(ds):
        return {"cached_from": None, "reasons": ["the run-cache is off (rr.run.cache)"]}
    if spec.digest_pending:  # the image digest is part of the key (its content may be absent)
        # containers only when a container runs (start-up of rr run)
        from .containers.registry import refresh_digest  # noqa: PLC0415

        try:
            spec = refresh_digest(ds, spec)
        except RecorderError as exc:
            return {"cached_from": None, "reasons": [exc.message]}
    _, found = _ask_cache(ds, spec, p)
    if found is None:
        return {"cached_from": None, "reasons": []}
    return {"cached_from": found.hit["commit"] if found.hit else None,
            "reasons": list(found.reasons)}


def build_record(ds: Dataset, spec: RunSpec, exit_code: int, in_hits: Sequence[str],
                 out_hits_after: Sequence[str],
                 measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run record; ``measured``: rr's fields of a command that ran
    (``environment.measure``: rr.env's facts, rr.resources; rr.log)."""
    inputs = list(in_hits) if spec.expand in ("inputs", "both") else list(spec.inputs)
    outputs = list(out_hits_after) if spec.expand in ("outputs", "both") else list(spec.outputs)
    # a glob's hits whose names are not UTF-8 cannot be recorded: the globs stand for them
    inputs = inputs if all(records.not_utf8(p) is None for p in inputs) else list(spec.inputs)
    outputs = outputs if all(records.not_utf8(p) is None for p in outputs) else \
        list(spec.outputs)
    rr = dict(spec.rr_info)
    if spec.explicit:
        rr["explicit"] = True
    rr.update(measured or {})
    if spec.env_record:
        rr["env"] = {**rr.get("env", {}),
                     "vars": environment.declared_values(spec.env_record, spec.env)}
    return records.new_record(cmd=spec.cmd, dsid=ds.id, exit_code=exit_code, inputs=inputs,
                              extra_inputs=spec.extra_inputs, outputs=outputs,
                              pwd=_record_pwd(ds, spec.pwd), chain=spec.chain, rr=rr or None)


def _record_pwd(ds: Dataset, pwd: Path) -> str:
    """pwd relative to the dataset root; may start with '..' in records made by DataLad."""
    rel = Path(os.path.relpath(pwd, ds.root)).as_posix()
    return rel


def execute(ds: Dataset, spec: RunSpec, *, on_event: OnEvent | None = None,
            clean: bool = False) -> Result:
    """Prepare, execute and save one command, in four phases: preflight and preparation,
    the command, collecting what changed, commit (or keep the message).

    A run without ``--explicit`` holds the dataset lock throughout, as it claims everything
    that changed while its command ran; an ``--explicit`` run holds it to prepare and to
    commit, and makes its declared outputs known to other rr processes meanwhile.
    ``on_event`` gets an ANNOUNCE of the expanded command, before it starts.  ``clean``: the
    caller made the work tree exactly the commit (an array job's reused worktree, reset by
    ``jobs``): no status is taken to check it.
    """
    preflight.check_run(ds)
    if spec.explicit:
        with dataset_lock(ds.git_dir, what=f"rr run {spec.cmd[:80]}"):
            prepared = _prepare(ds, spec)
        spec = prepared.spec
        with announce_inflight(ds.git_dir, prepared.declared, spec.cmd):
            spec, ran = _from_cache(ds, spec, prepared, on_event)
            ran = ran or _run_command(ds, spec, prepared, on_event)
            with dataset_lock(ds.git_dir, what=f"rr run {spec.cmd[:80]}"):
                return _save_run(ds, spec, prepared, ran)
    with dataset_lock(ds.git_dir, what=f"rr run {spec.cmd[:80]}"):
        if not (spec.in_replay or clean):
            ensure_clean(ds)
        prepared = _prepare(ds, spec)
        spec, ran = _from_cache(ds, prepared.spec, prepared, on_event)
        ran = ran or _run_command(ds, spec, prepared, on_event)
        return _save_run(ds, spec, prepared, ran)


class _Prepared(NamedTuple):  # NamedTuples: cheaper to define than dataclasses at start-up
    plan: Plan
    inputs: list[str]  # dataset-relative inputs (their content is checked after the command)
    declared: list[str]  # dataset-relative declared outputs (or their patterns)
    existed_before: set[str]
    branch: str | None  # the branch HEAD was on (None: detached)
    head: str | None
    subs: dict[str, str]  # installed subdatasets' HEADs
    spec: RunSpec  # the run as prepared (its container image's digest known)
    found: cache.Lookup | None = None  # the run-cache's answer (None: not asked)


class _Ran(NamedTuple):
    command: str
    exit_code: int
    duration: float
    watch: protect.ObjectWatch
    reflog_action: str = ""  # marks the reflog entries of commits the command made
    usage: Any = None  # os.wait4's rusage of the command's tree (environment.measure)
    logged: list[str] = []  # the log and what goes with it (runlog.end), dataset-relative


def _prepare(ds: Dataset, spec: RunSpec) -> _Prepared:
    """Under the dataset lock: check, ask the run-cache, fetch inputs, unlock outputs (a
    run the cache restores needs neither)."""
    # under the lock: an rr process committing holds git's index.lock legitimately
    gitrepo.ensure_no_index_lock(ds.root)
    if not spec.pwd.exists() and ds.contains(spec.pwd):
        spec.pwd.mkdir(parents=True)  # a recorded pwd that this checkout does not have yet
    p = plan(ds, spec)
    in_root = _to_root(ds, spec.pwd, p.in_hits)
    extra_root = _to_root(ds, spec.pwd, p.extra_hits)
    out_root = _to_root(ds, spec.pwd, p.out_hits)
    existed_before = {r for r in out_root if os.path.lexists(ds.root / r)}
    fetch_inputs(ds, extra_root)  # extra inputs (container images) are always fetched
    if spec.digest_pending:
        # containers only when a container runs (start-up of rr run)
        from .containers.registry import refresh_digest  # noqa: PLC0415

        spec = refresh_digest(ds, spec)
    spec, found = _ask_cache(ds, spec, p)  # the image digest is part of the key
    hit = found is not None and found.hit is not None
    if spec.assume_ready not in ("inputs", "both") and not hit:
        fetch_inputs(ds, in_root)
    if spec.assume_ready not in ("outputs", "both") and not hit:
        unlock_outputs(ds, out_root + [x for x in spec.extra_unlock if x not in out_root])
    declared = sorted(set(out_root) | {_root_pattern(ds, spec.pwd, o) for o in spec.outputs})
    return _Prepared(p, in_root, declared, existed_before, gitrepo.current_branch(ds.root),
                     ds.head(), runmerge.sub_heads(ds), spec, found)


def _root_pattern(ds: Dataset, pwd: Path, spec: str) -> str:
    try:
        return ds.relpath(pwd / spec)
    except RecorderError:
        return spec


def _ask_cache(ds: Dataset, spec: RunSpec, p: Plan) -> tuple[RunSpec, cache.Lookup | None]:
    """The run-cache's answer for the run about to execute (None: not to be asked)."""
    if "cached_from" in spec.rr_info:  # a replayed record's: this run says its own
        spec = replace(spec, rr_info={k: v for k, v in spec.rr_info.items()
                                      if k != "cached_from"})
    if not spec.cache or not cache.enabled(ds):
        return spec, None
    try:
        return spec, cache.lookup(ds, build_record(ds, spec, 0, p.in_hits, p.out_hits),
                                  run_env=spec.env, check_dirty=spec.explicit)
    except RecorderError as exc:  # the cache is an optimisation: the command runs
        return spec, cache.Lookup(None, [f"the run-cache could not be read: {exc.message}"])


def _from_cache(ds: Dataset, spec: RunSpec, prepared: _Prepared,
                on_event: OnEvent | None) -> tuple[RunSpec, _Ran | None]:
    """The run-cache (recorder/cache.py): when an earlier run in history has this run's key
    and its outputs are here, they are restored instead of executing; the run is then saved
    as any run, its record naming the commit (``"rr": {"cached_from": COMMIT}``)."""
    found = prepared.found
    p = prepared.plan
    if found is None:
        return spec, None
    if found.hit is None:
        if spec.cache_verbose:
            cache.emit_miss(on_event, found.reasons)
        return spec, None
    commit = found.hit["commit"]
    cache.restore(ds, found.hit)
    emit(on_event, cache.restored_event(commit))
    command = expand(spec.cmd, command_values(ds, spec, p.in_hits, p.out_hits,
                                              "/tmp/rr-run-cached"))
    return (replace(spec, rr_info={**spec.rr_info, "cached_from": commit}),
            _Ran(command, 0, 0.0, protect.ObjectWatch(ds, False)))


def _run_command(ds: Dataset, spec: RunSpec, prepared: _Prepared,
                 on_event: OnEvent | None) -> _Ran:
    p = prepared.plan
    uses_tmpdir = "tmpdir" in field_names(spec.cmd)
    tmpdir = ""
    if uses_tmpdir:
        import tempfile  # noqa: PLC0415  (random, weakref: ~1 ms) only for {tmpdir}

        tmpdir = tempfile.mkdtemp(prefix="rr-run-")
    env = dict(spec.env)
    # commits the command makes are told from those of other rr processes by their reflog
    reflog_action = env.setdefault("GIT_REFLOG_ACTION", runmerge.reflog_action())
    log = runlog.begin(ds) if spec.log else None
    logged: list[str] = []
    outcome = None
    try:
        command = expand(spec.cmd, command_values(ds, spec, p.in_hits, p.out_hits, tmpdir))
        if "datalad_container.adapters.docker" in command:
            # containers only when a container ran (start-up of rr run)
            from .containers.registry import translate_recorded  # noqa: PLC0415

            command = translate_recorded(command)
        emit(on_event, announce(command))  # what executes is shown before it executes
        watch = protect.ObjectWatch(ds, prepared.head is not None, prepared.inputs)
        started = time.monotonic()
        outcome = proc.run_shell(command, spec.pwd, env=env or None,
                                 argv=protect.wrap_argv(ds, ["/bin/sh", "-c", command]),
                                 log=log.file if log else None)
        duration = time.monotonic() - started
        watch.check_async()
    finally:
        if log is not None:  # saved when the command ran (also when it failed)
            logged = runlog.finish(ds, log, outcome is not None, outcome is not None and
                                   outcome.interrupted_by is not None)
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if outcome.interrupted_by is not None:
        raise Interrupted(f"interrupted (signal {outcome.interrupted_by}); the command was "
                          "stopped and nothing was saved")
    return _Ran(command, outcome.returncode, duration, watch, reflog_action, outcome.usage,
                logged)


def _save_run(ds: Dataset, spec: RunSpec, prepared: _Prepared, ran: _Ran) -> Result:
    """Collect what the command changed and commit it with its record.

    From here on the command has run: every failure keeps the outputs and the full message
    (in ``.git/COMMIT_EDITMSG``) and names the command that saves them.
    """
    p = prepared.plan
    full_message = ""
    paths: list[str] = []
    try:
        out_after = glob_specs(spec.outputs, spec.pwd, ds)
        out_hits_after = out_after.hits + out_after.unmatched
        measured = environment.measure(ds, ran.duration, ran.usage)
        if ran.logged:
            measured["log"] = ran.logged[0]
        rec = build_record(ds, spec, ran.exit_code, p.in_hits, out_hits_after, measured)
        subject = spec.message if spec.message is not None else records.shorty(ran.command)
        relpwd = _record_pwd(ds, spec.pwd)
        full_message = records.format_message(subject, rec)
        if spec.explicit:
            declared = _to_root(ds, spec.pwd, out_after.hits)
            gone = [r for r in prepared.existed_before if not os.path.lexists(ds.root / r)]
            candidates = sorted(set(declared) | set(gone) | set(ran.logged))
            entries = ds.status(candidates, untracked="all") if candidates else []
        else:
            candidates = []
            changed = ds.status(untracked="all")
            entries = _unclaimed(ds, changed)
            if changed and not entries:
                # a claim never turns changes into "nothing changed": keep the run for a save
                paths = [e.path for e in changed]
                raise RecorderError(f"every change ({len(changed)} path(s)) is claimed by an "
                                    "rr run --explicit still going")
        entries = [e for e in entries if e.state != "unmerged"]
        paths = [e.path for e in entries]
        sidecar = spec.sidecar if spec.sidecar is not None else \
            ds.config.typed(cfgkeys.RUN_RECORD_SIDECAR)
        rid = None
        if entries and sidecar:
            record_dir = ds.record_directory()
            rid, side_path = records.write_sidecar(ds.root, record_dir, rec)
            rel_side = ds.relpath(side_path)
            entries += [e for e in ds.status([rel_side], untracked="all")
                        if e.path not in {x.path for x in entries}]
            paths = [e.path for e in entries]
        full_message = records.format_message(subject, None if rid else rec, rid)
        # commits the command made itself: the run becomes a run-merge (DataLad >= 1.6); an
        # --explicit run that declares no outputs saves nothing, as in DataLad
        own_commits = runmerge.detect(ds, prepared.head, prepared.subs, ran.reflog_action)
        if spec.explicit and not spec.outputs:
            own_commits = runmerge.Moved(False)
        _check_ran(ds, spec, ran, bool(entries), bool(own_commits), full_message, paths)
        _ensure_same_branch(ds, prepared)
        received: list[int] = []
        if own_commits:
            # kept first, as below: a failure anywhere in the merge leaves the message
            gitrepo.write_commit_editmsg(ds.root, full_message)
            sha, saved = _save_run_merge(ds, spec, prepared, own_commits, full_message,
                                         candidates, paths, received)
        else:
            if spec.explicit and (ds.root / ".gitmodules").exists():
                # declared outputs inside subdatasets: commit them there (same record) first
                moved = save_in_subdatasets(ds, candidates, full_message)
                if moved != candidates:
                    entries = [e for e in ds.status(moved, untracked="all")
                               if e.state != "unmerged"]
            if not entries:
                return run_result(NOTNEEDED, None, rec, ran.command, ran.exit_code, relpwd,
                                  p.in_hits, out_hits_after, ran.duration, [], spec.notes)
            # kept before staging, so that even a SIGKILL during the save leaves the message
            gitrepo.write_commit_editmsg(ds.root, full_message)
            # HEAD as prepared, unless another rr committed meanwhile (explicit runs)
            head = prepared.head if not spec.explicit else False
            sha = commit_entries(ds, entries, full_message, only=spec.explicit,
                                 received=received, head=head)
            saved = [e.path for e in entries]
    except CommandFailedError:
        raise
    except BaseException as exc:
        raise _not_saved(ds, full_message, paths if spec.explicit else None, exc) from None
    if sha is None:
        return run_result(NOTNEEDED, None, rec, ran.command, ran.exit_code, relpwd,
                          p.in_hits, out_hits_after, ran.duration, [], spec.notes)
    # a replayed record's note is the replay's, unless interrupted after its commit (no result)
    if not spec.job and (received or not spec.in_replay):
        gitrepo.add_note(ds.root, sha, json.dumps({"duration": round(ran.duration, 3)}))
    if received:
        raise Interrupted(f"interrupted, but the run was saved first: commit {sha[:10]}")
    return run_result(OK, sha, rec, ran.command, ran.exit_code, relpwd, p.in_hits,
                      out_hits_after, ran.duration, saved, spec.notes)


def _check_ran(ds: Dataset, spec: RunSpec, ran: _Ran, changed: bool, own_commits: bool,
               full_message: str, paths: list[str]) -> None:
    """The command's outcome may be saved: no annexed content written through a link, the
    exit code the one expected (else the message is kept when there is something to save)."""
    # content the command wrote into through a link
    damaged = ran.watch.damaged(nothing_else_changed=not changed and not own_commits)
    if damaged:
        error = protect.content_damaged(ds, damaged)
        if not changed:
            raise CommandFailedError(1, error.message, error.hint)
        raise error
    if ran.exit_code not in (0, spec.expected_exit):
        hint = None
        if changed or own_commits:
            gitrepo.write_commit_editmsg(ds.root, full_message)
            hint = ("outputs are left in place for inspection; to save them with the run "
                    "record: " + save_command(ds, paths if spec.explicit else None))
        expected = "" if spec.expected_exit == 0 else f" (recorded: {spec.expected_exit})"
        raise CommandFailedError(
            ran.exit_code if ran.exit_code > 0 else 128 + (-ran.exit_code),
            f"command exited with code {ran.exit_code}{expected}; nothing was saved",
            hint=hint)


def _save_run_merge(ds: Dataset, spec: RunSpec, prepared: _Prepared,
                    own_commits: runmerge.Moved, message: str, candidates: list[str],
                    paths: list[str], received: list[int]) -> tuple[str | None, list[str]]:
    """Record a command that made commits of its own as DataLad >= 1.6 does: a run-merge in
    every dataset that gained commits, bottom-up (see recorder/runmerge.py)."""
    assert prepared.head is not None or not own_commits.top
    runmerge.ensure_not_rewritten(ds, own_commits, prepared.subs)
    # --explicit: the declared outputs (and the sidecar) only; DataLad saves everything when
    # none of the declared outputs is there to save
    if spec.explicit and own_commits.top and prepared.head is not None:
        runmerge.check_dirty_committed(ds, prepared.head, sorted(set(candidates) | set(paths)))
    explicit = spec.explicit and bool(candidates)
    allowed = sorted(set(candidates) | set(paths)) if explicit else None
    direct = runmerge.save_subdatasets(ds, own_commits, prepared.subs, message, allowed)
    if allowed is not None:
        rels = sorted(set(allowed) | set(direct))
        if (ds.root / ".gitmodules").exists():
            rels = save_in_subdatasets(ds, rels, message)
        entries = ds.status(rels, untracked="all") if rels else []
    else:
        entries = _unclaimed(ds, ds.status(untracked="all"))
    entries = [e for e in entries if e.state != "unmerged"]
    if prepared.head is None:  # the command made the first commit: nothing to merge into
        sha = commit_entries(ds, entries, message, only=explicit, received=received) \
            if entries else None
        return sha, [e.path for e in entries]
    sha, _ = runmerge.save_top(ds, entries, prepared.head, own_commits, direct, message,
                               only=explicit, received=received)
    saved = runmerge.committed_paths(ds, prepared.head, sha) if sha else []
    return sha, saved


def _unclaimed(ds: Dataset, entries: list[gitrepo.StatusEntry]) -> list[gitrepo.StatusEntry]:
    """Leave out what an ``--explicit`` run that is still going declared as its outputs."""
    runs = inflight_runs(ds.git_dir)
    if not runs:
        return entries
    return [e for e in entries if not any(r.claims(e.path) for r in runs)]


def _ensure_same_branch(ds: Dataset, prepared: _Prepared) -> None:
    """The command may commit on the branch it started on (a run-merge records that), but
    not switch to another branch: no run is recorded across branches."""
    now = gitrepo.current_branch(ds.root)
    head = ds.head()
    if now == prepared.branch and prepared.head and head != prepared.head and (
            not head or not gitrepo.is_ancestor(ds.root, prepared.head, head)):
        _refuse_rewritten(ds, prepared.head, head)
    if now == prepared.branch and (now is not None or head == prepared.head or (
            prepared.head and head and gitrepo.is_ancestor(ds.root, prepared.head, head))):
        return
    before = (prepared.head or "")[:10]
    was = prepared.branch or f"detached HEAD at {before}"
    is_ = now or f"detached HEAD at {(head or '')[:10]}"
    back = prepared.branch or prepared.head
    hint = None
    if back:
        hint = (f"to record the run on {was} (at {before} before the command) instead, go back "
                f"first with 'git -C {shlex.quote(str(ds.root))} checkout {shlex.quote(back)}'"
                " (carrying the outputs along)")
    raise RecorderError(f"HEAD moved from {was} to {is_} while the command ran; rr does not "
                        "record a run across branches", hint=hint)


def _refuse_rewritten(ds: Dataset, before: str, head: str | None) -> None:
    """The command amended or rewound HEAD (``git commit --amend``, ``git reset``): the run
    cannot be a commit or a merge on top of the commit it started from; rr adds nothing to
    the rewritten branch and says how to record the run where it started."""
    raise RecorderError(
        f"the command rewrote history: the commit before it ({before[:10]}) is not an "
        f"ancestor of HEAD ({(head or 'no commit')[:10]}) any more; rr does not record a run "
        "on a rewritten branch",
        hint=f"to record the run on the commit it started from, put the branch back first "
             f"(the files stay as they are): git -C {shlex.quote(str(ds.root))} reset --soft "
             f"{before[:12]}")


def _kept_run_message(ds: Dataset) -> str | None:
    """The subject of a run message kept in .git/COMMIT_EDITMSG after HEAD was committed (a
    run killed or failed while saving), or None."""
    path = ds.git_dir / "COMMIT_EDITMSG"
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().rstrip("\n")
        kept_at = path.stat().st_mtime
        head_at = (ds.git_dir / "HEAD").stat().st_mtime  # touched by each commit's reflog
        logs = ds.git_dir / "logs" / "HEAD"
        if logs.exists():
            head_at = max(head_at, logs.stat().st_mtime)
    except OSError:
        return None
    if not first.startswith(records.TAG) or kept_at < head_at:
        return None
    return first[len(records.TAG):][:60]


def save_command(ds: Dataset, paths: Sequence[str] | None) -> str:
    """The exact command that saves a kept run message (and, for explicit runs, its paths)."""
    cmd = f"cd {shlex.quote(str(ds.root))} && rr save -F .git/COMMIT_EDITMSG"
    if paths:
        cmd += " -- " + " ".join(shlex.quote(p) for p in paths)
    return cmd


def _not_saved(ds: Dataset, message: str, paths: Sequence[str] | None,
               exc: BaseException) -> RecorderError:
    """The error for a run whose command ran but whose results could not be committed."""
    kept = False
    if message:
        try:
            gitrepo.write_commit_editmsg(ds.root, message)
            kept = True
        except OSError:
            sys.stderr.write("rr: the run message could not be written to .git/COMMIT_EDITMSG;"
                             " here it is:\n" + message)
    where = "its message is in .git/COMMIT_EDITMSG" if kept else "its message is printed above"
    hint = (f"the outputs are left in place and {where}; once the cause is fixed, save them "
            f"with: {save_command(ds, paths)}")
    if isinstance(exc, RecorderError) and exc.hint and not isinstance(exc, Interrupted):
        hint = f"{exc.hint}; {hint}"
    if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, RecorderError) and isinstance(exc, Interrupted)):
        interrupted = Interrupted("interrupted while saving; nothing was committed")
        interrupted.hint = hint
        return interrupted
    if isinstance(exc, RecorderError):
        cause = exc.message
    elif isinstance(exc, OSError):
        cause = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    elif isinstance(exc, SystemExit):
        cause = "rr was asked to stop"
    else:
        cause = f"{type(exc).__name__}: {exc}"
    return RunNotSavedError(f"the command ran, but its results were not saved: {cause}", hint)


__all__ = ["run_result", "RunSpec", "execute", "dry_run", "prepare_spec", "normalize_command",
           "glob_specs"]
