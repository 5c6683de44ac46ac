"""The job runtime: many runs, each in its own linked worktree, their history written after.

A job is the ordinary run operation (``run.execute``) in an ephemeral linked worktree of the
dataset at a base commit (shared object store and annex), committed there with its record.
The driver (this process) keeps each job's commit under a private ref
``refs/rr/jobs/<id>/<index>`` and writes the linear history in the jobs' order with one
``git fast-import`` (no checkout): it moves the branch it started on, fast-forwards the main
work tree and commits the git-annex journal.  Jobs run git-annex with
``annex.alwayscommit=false``: the driver is the only writer of refs and of the git-annex
branch.  A job's state is one :class:`JobStatus` whether it runs serially or in parallel, for
``rr run --param/--array`` or ``rr rerun -J``.

- :class:`JobTask` / :class:`JobOutcome`: one job in, its outcome out (frozen, picklable);
- :func:`run_all`: the tasks on the engine (``engine.Target``), outcomes as they finish;
- worktree slots: a worker reuses the worktree of its last successful job (reset to the
  base exactly, with the long-lived helpers entered once per worktree in
  :func:`_enter_helpers`, closed by :func:`close_slots` when the jobs end);
- job refs: :func:`job_ref`, :func:`keep` (through the driver's one
  ``gitrepo.RefTransactions``), :func:`kept`;
- the state file ``.git/rr-arrays/<id>.json`` (:func:`save_state`, :func:`load_state`:
  versioned, validated when read);
- the history writer: :func:`write_history`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from . import annex, engine, gitrepo, proc
from . import config as cfgkeys
from . import run as runop
from .containers import registry
from .dataset import Dataset
from .engine import JobStatus, Target
from .errors import Interrupted, RecorderError
from .lock import dataset_lock, deferred_signals
from .results import Event, EventKind, OnEvent
from .run import RunSpec

STATE_DIR = "rr-arrays"
STATE_VERSION = 1  # of the state file; a newer one is refused with a hint
JOB_REFS = "refs/rr/jobs"
# a job's git-annex keeps its location-log updates in the journal (the driver commits them);
# no job starts git's automatic gc (two at once, in the middle of an array)
_JOB_CONFIG = ((cfgkeys.ANNEX_ALWAYSCOMMIT, "false"), ("gc.auto", "0"))


def job_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The jobs' git settings as environment for a process whose environment is ``environ``:
    git's GIT_CONFIG_COUNT pairs, rr's after those ``environ`` already holds (a user's own
    GIT_CONFIG_KEY_0=... stays in force in the jobs, and in the commands they run)."""
    try:
        held = int(environ.get("GIT_CONFIG_COUNT", "") or 0)
    except ValueError:
        held = 0  # git refuses such a count itself; the jobs' settings still hold
    held = max(held, 0)
    env = {"GIT_CONFIG_COUNT": str(held + len(_JOB_CONFIG))}
    for n, (key, value) in enumerate(_JOB_CONFIG, start=held):
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
    return env


JOB_ENV = job_env({})  # the jobs' settings in an environment without GIT_CONFIG_COUNT


class JobState(TypedDict, total=False):
    """One job as the state file holds it."""

    index: int
    status: str  # a JobStatus
    params: dict[str, str]  # an array's row
    cmd: str
    inputs: list[str]
    outputs: list[str]
    message: str | None
    error: str  # of a failed job: one line
    worktree: str  # of a failed job: kept with its outputs and message
    duration: float
    commit: str  # of a committed job: its commit in the branch's history
    new: bool  # committed by this rr process


class JobsState(TypedDict, total=False):
    """A set of jobs (an array, a replayed batch) as the state file holds it."""

    version: int
    id: str
    base: str  # the commit the jobs start from; the branch's tip after the history is written
    ref: str  # the branch (refs/heads/NAME) or HEAD the history goes onto
    pwd: str  # relative to the dataset root
    options: dict[str, Any]  # rr run's: expand, explicit, assume_ready, sidecar, container, gpus
    message: str | None
    command: str
    jobs: list[JobState]

__all__ = ["JOB_ENV", "JOB_REFS", "job_env", "JobOutcome", "JobState", "JobStatus", "JobTask",
           "JobsState", "Target", "check_id", "close_slots", "job_dir", "job_ref", "keep", "kept",
           "load_state", "lock", "lock_path", "new_id", "ref_name", "remove",
           "remove_worktrees", "run_all", "run_job", "save_state", "state_dir", "state_path",
           "unfinished", "unlock", "write_history"]


# --- one job --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobTask:
    """One job: either a command to prepare in the worktree (``cmd`` ... ``options``, an
    array's row) or a prepared run (``spec``, a replayed record) moved into the worktree."""

    root: str  # the dataset's main worktree
    wtdir: str  # where the worktrees of this set of jobs live
    base: str  # the commit every job starts from
    index: int
    pwd: str  # relative to the root
    cmd: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    message: str | None = None
    # expand, explicit, assume_ready, sidecar, container, gpus (rr run's options)
    options: Mapping[str, Any] = field(default_factory=dict)
    array: Mapping[str, Any] = field(default_factory=dict)  # the record's rr.array
    spec: RunSpec | None = None  # a replayed record's run: run as it is, not built


@dataclass(frozen=True)
class JobOutcome:
    index: int
    status: JobStatus  # OK | NOTNEEDED | FAILED
    commit: str | None
    message: str
    hint: str
    worktree: str
    duration: float
    exit_code: int = 1  # of a failed job: the command's exit code, as rr run exits
    error: str = ""  # of a failed job: the kind of error (CommandFailedError, ...)
    notes: tuple[str, ...] = ()
    command_exit: int | None = None  # of a job that ran to the end: the command's exit code
    cache: tuple[str, ...] = ()  # what the run-cache said: restored from, or why it missed


class _Slot:
    """A worker's reusable worktree (its dataset, config read once) and the long-lived helpers
    bound to it, kept from job to job of one set of jobs."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.helpers = contextlib.ExitStack()
        self.reset = False  # made exactly the base commit by worktree_reset (no leftovers)

    def close(self) -> None:
        """Stop the helpers (a failed job keeps its worktree: nothing may run in it), with
        the jobs' environment in force (what they run is a job's)."""
        with proc.tool_env_overlay(job_env(os.environ)):
            self.helpers.close()


# the worktree dir of a set of jobs -> this process's reusable worktrees (one per worker
# thread that ran a job: a Dask worker may have several); a job takes one out while it runs
# and puts it back when it succeeded; taken and put back under the lock
_SLOTS: dict[str, list[_Slot]] = {}
_SLOTS_LOCK = threading.Lock()


def _enter_helpers(slot: _Slot) -> None:
    """The one place where a worker enters the long-lived helpers of a worktree slot (batch
    processes such as a ``git annex add --batch`` session for the slot's root), once per slot
    with ``slot.helpers.enter_context(...)``, with the jobs' environment in force (``JOB_ENV``:
    a git-annex started here never commits to the git-annex branch, the driver does); they
    serve every job of this worker on that worktree and are closed when the slot is dropped
    (a failed job) or the jobs end (:func:`close_slots`, run on every worker by
    :func:`run_all`).

    The add session's process outlives the resets between jobs: it keeps no state of the
    index or the work tree that a reset could make stale (each file is looked at and staged
    afresh when it is added; tests/test_arrays_session.py)."""
    # git's automatic maintenance after a job's commit (gc is off in jobs: JOB_ENV) once
    # when the slot ends, not a `git maintenance run --auto` per job
    slot.helpers.enter_context(gitrepo.deferred_maintenance(slot.ds.root))
    if slot.ds.is_annex:
        slot.helpers.enter_context(annex.add_session(slot.ds.root))


def _take_slot(wtdir: str) -> _Slot | None:
    with _SLOTS_LOCK:
        pool = _SLOTS.get(wtdir)
        return pool.pop() if pool else None


def _put_slot(wtdir: str, slot: _Slot) -> None:
    with _SLOTS_LOCK:
        _SLOTS.setdefault(wtdir, []).append(slot)


def _slot(task: JobTask) -> _Slot:
    """A worktree at the task's base: the one this process's last successful job left (reset:
    the base tree exactly, whatever that job left), else a new one."""
    slot = _take_slot(task.wtdir)
    if slot is not None:
        try:
            gitrepo.worktree_reset(slot.ds.root, task.base)
            slot.reset = True
            return slot
        except RecorderError:
            slot.close()
    Path(task.wtdir).mkdir(parents=True, exist_ok=True)
    wt = os.path.join(task.wtdir, f"{os.getpid()}-{task.index}")
    gitrepo.worktree_add(task.root, wt, task.base)
    slot = _Slot(Dataset(wt))
    try:
        _enter_helpers(slot)
    except BaseException:
        slot.close()
        raise
    return slot


def close_slots(wtdir: str | None = None) -> None:
    """Close and forget this process's worktree slots (of the jobs in ``wtdir``, or all):
    their helpers stop; the worktrees stay for the driver to remove."""
    with _SLOTS_LOCK:
        slots = [slot for key in [k for k in _SLOTS if wtdir is None or k == wtdir]
                 for slot in _SLOTS.pop(key, [])]
    for slot in slots:
        with contextlib.suppress(Exception):
            slot.close()


def _job_spec(ds: Dataset, task: JobTask) -> RunSpec:
    """The run of a job in its worktree ``ds``."""
    cwd = Path(os.path.normpath(os.path.join(ds.root, task.pwd)))
    if task.spec is not None:  # a replayed record: its spec, moved into the worktree
        spec = dataclasses.replace(task.spec, pwd=cwd)
    else:
        opts = task.options
        spec = runop.prepare_spec(ds, task.cmd, message=task.message, inputs=task.inputs,
                                  outputs=task.outputs, expand=opts.get("expand"),
                                  explicit=opts.get("explicit", False),
                                  assume_ready=opts.get("assume_ready"),
                                  sidecar=opts.get("sidecar"), cwd=cwd,
                                  env_record=opts.get("env_record") or (),
                                  log=opts.get("log"))
        spec = dataclasses.replace(spec, rr_info={"array": dict(task.array)},
                                   cache=opts.get("cache", True))  # rows are cache units
        if opts.get("container") is not None or opts.get("gpus"):
            call = registry.wrap_spec(ds, spec, opts.get("container") or None,
                                      gpus=opts.get("gpus", False))
            spec = runop.with_container(spec, call)
    # why the cache missed is collected always (cheap): the driver shows it with -v
    return dataclasses.replace(spec, job=True,
                               env=dict(spec.env, **job_env({**os.environ, **spec.env})),
                               cache_verbose=True)


def run_job(task: JobTask) -> JobOutcome:
    """One job: the ordinary run operation in a linked worktree at the base commit.  A
    worktree that saw a successful job is reset and reused by the next job of this process; a
    failed job's worktree is kept with its outputs and message."""
    tools_env = job_env(os.environ)  # for the slot's helpers too: no git-annex commits
    with proc.tool_env_overlay(tools_env):
        slot = _slot(task)
    ds = slot.ds
    wt = str(ds.root)
    # a worktree just reset is the base commit exactly: execute need not check it with a
    # status (but a subdataset's content survives a reset: then it is checked)
    clean = slot.reset and not (ds.root / ".gitmodules").exists()
    started = time.monotonic()
    said: list[str] = []  # the run-cache's notes (jobs have no on_event: the driver shows them)

    def collect(event: Event) -> None:
        if event.kind is EventKind.NOTE and ("cache" in event.fields or
                                             "cached_from" in event.fields):
            said.append(event.text)

    reusable = False
    try:
        with proc.tool_env_overlay(tools_env):
            result = runop.execute(ds, _job_spec(ds, task), on_event=collect, clean=clean)
        _put_slot(task.wtdir, slot)
        reusable = True
    except Interrupted as exc:
        if threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt from None
        # a Dask worker thread: the driver is cancelling (it stopped this command); a
        # KeyboardInterrupt here would kill the worker process with a traceback on stderr
        return JobOutcome(task.index, JobStatus.FAILED, None, exc.message, "", wt,
                          time.monotonic() - started)
    except RecorderError as exc:
        return JobOutcome(task.index, JobStatus.FAILED, None, exc.message, exc.hint or "", wt,
                          time.monotonic() - started, exit_code=exc.exit_code,
                          error=type(exc).__name__, cache=tuple(said))
    finally:
        if not reusable:  # the worktree is kept with the failed job's outputs: nothing runs there
            slot.close()
    return JobOutcome(task.index, JobStatus(result.status), result.commit, "", "", wt,
                      result.duration, notes=tuple(result.notes),
                      command_exit=result.extra.get("exit") if result.extra else None,
                      cache=tuple(said))


def run_all(tasks: Sequence[JobTask], target: Target = engine.SERIAL,
            on_event: OnEvent | None = None
            ) -> Iterator[tuple[int, JobOutcome | BaseException]]:
    """The tasks on the engine: ``(position, outcome)`` as each finishes; an exception is the
    outcome of a task that could not run (its worker died, ...)."""
    wtdirs = list(dict.fromkeys(t.wtdir for t in tasks))
    return engine.execute_all(run_job, tasks, target=target, on_event=on_event,
                              teardown=functools.partial(_close_slots_of, wtdirs))


def _close_slots_of(wtdirs: list[str]) -> None:
    for wtdir in wtdirs:
        close_slots(wtdir)


# --- where jobs live: state file, worktrees, refs --------------------------------------------


def new_id(prefix: str = "") -> str:
    return prefix + time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


def state_dir(ds: Dataset) -> Path:
    return ds.git_dir / STATE_DIR


# what new_id makes (with a prefix such as "rerun-"): one file name, never a path
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_id(jobs_id: str) -> str:
    """``jobs_id`` if it is an id rr could have made (a name, never a path), else a one-line
    error."""
    if not isinstance(jobs_id, str) or not _ID.fullmatch(jobs_id):
        raise RecorderError(f"{jobs_id!r} is not an array id",
                            hint="ids look like 20261203-184101-ab12: rr run --continue lists "
                                 "the unfinished ones")
    return jobs_id


def state_path(ds: Dataset, jobs_id: str) -> Path:
    return state_dir(ds) / f"{check_id(jobs_id)}.json"


def job_dir(ds: Dataset, jobs_id: str) -> Path:
    """Where the worktrees of a set of jobs live (always inside ``state_dir``)."""
    return state_dir(ds) / check_id(jobs_id)


def job_ref(jobs_id: str, index: int | str) -> str:
    return f"{JOB_REFS}/{jobs_id}/{index}"


def kept(ds: Dataset, jobs_id: str) -> dict[str, str]:
    """The job refs of a set of jobs: ref -> commit."""
    return gitrepo.refs_under(ds.root, f"{JOB_REFS}/{jobs_id}/")


def keep(ds: Dataset, jobs_id: str, index: int | str, commit: str,
         refs: gitrepo.RefTransactions | None = None) -> None:
    """A job's commit under its job ref (until the history is written), on disk when this
    returns (a SIGKILL after it: ``--continue`` does not run the job again).  ``refs``: the
    driver's long-lived ``update-ref --stdin`` (no process per job)."""
    line = f"update {job_ref(jobs_id, index)} {commit}"
    if refs is not None:
        refs.update([line])
    else:
        gitrepo.update_refs(ds.root, [line])


def ref_name(ref: str) -> str:
    return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref


def save_state(ds: Dataset, state: JobsState) -> None:
    path = state_path(ds, state["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": STATE_VERSION, **state}, indent=1),
                   encoding="utf-8")
    tmp.replace(path)


# lock files of the sets of jobs this process drives -> their descriptors
_LOCKS: dict[str, int] = {}


def lock_path(ds: Dataset, jobs_id: str) -> Path:
    return state_dir(ds) / f"{check_id(jobs_id)}.lock"


def lock(ds: Dataset, jobs_id: str) -> None:
    """Hold the lock of a set of jobs until :func:`unlock` (or the end of this process): a
    second rr driving the same jobs (``rr run --continue`` while the first still runs) is
    refused before it touches their state, worktrees or refs."""
    path = lock_path(ds, jobs_id)
    key = str(path)
    if key in _LOCKS:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RecorderError(f"cannot lock array {jobs_id} ({path}): {exc.strerror or exc}",
                            hint="rr needs to write to the dataset's .git directory") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        try:
            who = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another rr"
        except OSError:
            who = "another rr"
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            raise RecorderError(f"cannot lock array {jobs_id} ({path}): "
                                f"{exc.strerror or exc}") from None
        raise RecorderError(f"array {jobs_id} is being run by {who}: its jobs are not run "
                            "twice",
                            hint=f"wait for it to finish (or stop it), then: rr run --continue "
                                 f"{jobs_id}") from None
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    _LOCKS[key] = fd


def unlock(ds: Dataset, jobs_id: str) -> None:
    """Let go of the lock of a set of jobs (its file removed once its state file is gone)."""
    path = lock_path(ds, jobs_id)
    fd = _LOCKS.pop(str(path), None)
    if fd is None:
        return
    try:
        if not state_path(ds, jobs_id).exists():
            path.unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass
    finally:
        os.close(fd)


def unfinished(ds: Dataset) -> list[str]:
    d = state_dir(ds)
    if not d.is_dir():
        return []
    return sorted(p.name[:-5] for p in d.iterdir()
                  if p.name.endswith(".json") and _ID.fullmatch(p.name[:-5]))


def load_state(ds: Dataset, jobs_id: str) -> JobsState:
    """The state file of a set of jobs, checked: a damaged file or one of a newer rr is a
    one-line error naming the file and what to do."""
    path = state_path(ds, jobs_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecorderError(f"the state file {path} cannot be read: "
                            f"{getattr(exc, 'strerror', None) or exc}",
                            hint=_REMOVE_HINT.format(path=path)) from None
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > STATE_VERSION:
        raise RecorderError(f"the state file {path} was written by a newer rr (version "
                            f"{version}; this rr reads version {STATE_VERSION})",
                            hint="continue with the rr that started these jobs")
    problem = _state_problem(data, jobs_id, str(job_dir(ds, jobs_id)))
    if problem:
        raise RecorderError(f"the state file {path} is damaged: {problem}",
                            hint=_REMOVE_HINT.format(path=path))
    state: JobsState = data
    return state


_REMOVE_HINT = ("remove it (the jobs it names are then forgotten; their commits stay under "
                f"{JOB_REFS}/): rm {{path}}")
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "expand": (str, type(None)), "explicit": (bool,), "assume_ready": (str, type(None)),
    "sidecar": (bool, type(None)), "container": (str, type(None)), "gpus": (bool,)}


def _is_strs(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _state_problem(data: Any, jobs_id: str, wtdir: str) -> str:
    """What is wrong with a state file's content ("" when nothing): every field rr reads has
    its type, paths stay inside the dataset."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("version") != STATE_VERSION:
        return "'version' is not a version number"
    if data.get("id") != jobs_id or not _ID.fullmatch(jobs_id):
        return "'id' is not the file's name"
    if not isinstance(data.get("base"), str) or not _SHA.fullmatch(data["base"]):
        return "'base' is not a commit id"
    for key in ("ref", "pwd"):
        if not isinstance(data.get(key), str) or not data[key]:
            return f"'{key}' is missing"
    if data["ref"] != "HEAD" and not data["ref"].startswith("refs/heads/"):
        return "'ref' is not a branch"
    pwd = data["pwd"]
    if os.path.isabs(pwd) or os.path.normpath(pwd).split(os.sep)[0] == ".." or "\0" in pwd:
        return "'pwd' is not a directory inside the dataset"
    options = data.get("options")
    if not isinstance(options, dict):
        return "'options' is not an object"
    for key, types in _OPTION_TYPES.items():
        if not isinstance(options.get(key), types) and key in options:
            return f"option {key!r} has the wrong type"
    if not isinstance(data.get("message"), (str, type(None))) or \
            not isinstance(data.get("command", ""), str):
        return "'message' or 'command' is not text"
    if not isinstance(data.get("jobs"), list):
        return "'jobs' is not a list"
    statuses = set(JobStatus)
    seen: set[int] = set()
    for j in data["jobs"]:
        if not isinstance(j, dict) or not isinstance(j.get("index"), int) or \
                isinstance(j["index"], bool) or j["index"] < 0 or j["index"] in seen:
            return "a job has no index of its own"
        seen.add(j["index"])
        if j.get("status") not in statuses:
            return f"job {j['index']} has an unknown status"
        params = j.get("params")
        if not isinstance(params, dict) or \
                not all(isinstance(v, str) for v in params.values()) or \
                not isinstance(j.get("cmd"), str) or not _is_strs(j.get("inputs")) or \
                not _is_strs(j.get("outputs")):
            return f"job {j['index']} has no params, cmd, inputs or outputs"
        if "message" not in j or not isinstance(j["message"], (str, type(None))):
            return f"job {j['index']}'s message is not text (or null)"
        worktree = j.get("worktree", "")
        if not isinstance(worktree, str) or (worktree and (
                os.path.dirname(os.path.normpath(worktree)) != os.path.normpath(wtdir) or
                os.path.basename(worktree) in ("", ".", ".."))):
            return f"job {j['index']}'s worktree is not a path of these jobs"
        for key, types in (("error", (str,)), ("commit", (str,)), ("new", (bool,)),
                           ("duration", (int, float))):
            if key in j and (not isinstance(j[key], types) or isinstance(j[key], bool) and
                             key != "new"):
                return f"job {j['index']}'s {key!r} has the wrong type"
    return ""


def remove_worktrees(ds: Dataset, state: JobsState) -> None:
    """Remove the worktrees of a set of jobs but those that failed jobs keep."""
    wtdir = job_dir(ds, state["id"])
    keep_wt = {j.get("worktree") for j in state["jobs"] if j["status"] == JobStatus.FAILED}
    if wtdir.is_dir():
        for wt in wtdir.iterdir():
            if str(wt) not in keep_wt:
                gitrepo.worktree_remove(ds.root, wt)
                if wt.exists():  # never registered (interrupted while being added)
                    shutil.rmtree(wt, ignore_errors=True)
    gitrepo.worktree_prune(ds.root)


def remove(ds: Dataset, state: JobsState) -> None:
    """No worktree, job ref, state or marks file of a set of jobs is left behind."""
    for j in state["jobs"]:
        j["status"] = JobStatus.DONE
    remove_worktrees(ds, state)
    refs = kept(ds, state["id"])
    gitrepo.update_refs(ds.root, [f"delete {ref}" for ref in refs])
    with contextlib.suppress(OSError):
        job_dir(ds, state["id"]).rmdir()
    with contextlib.suppress(OSError):
        state_dir(ds).rmdir()


# --- the history writer ----------------------------------------------------------------------


def write_history(ds: Dataset, state: JobsState, ordered: list[tuple[JobState, str]],
                  *, what: str, stop_at_clash: bool = False, hint: str = "") -> str | None:
    """Under the dataset lock: the jobs' commits (in order) onto ``state['ref']`` (which must
    still be at ``state['base']``), the work tree moved along, the jobs' git-annex journal
    committed.  Returns the new tip (None: nothing written).  ``stop_at_clash`` (a replay):
    a job whose changes meet an earlier one's ends the history before it.  ``hint``: how to
    go on when the branch or the work tree changed meanwhile (the error's hint)."""
    with dataset_lock(ds.git_dir, what=what):
        try:
            return _write_history(ds, state, ordered, stop_at_clash, hint) if ordered else None
        finally:
            if ds.is_annex:
                annex.merge(ds.root)  # commits the jobs' journal to the git-annex branch


def _write_history(ds: Dataset, state: JobsState, ordered: list[tuple[JobState, str]],
                   stop_at_clash: bool, hint: str) -> str | None:
    jobs_id, ref, base = state["id"], state["ref"], state["base"]
    now = gitrepo.resolve_commit(ds.root, ref)
    branch = gitrepo.current_branch(ds.root)
    if now != base or (f"refs/heads/{branch}" if branch else "HEAD") != ref:
        raise RecorderError(f"{ref_name(ref)} moved while the jobs ran; the jobs' history was "
                            "not written",
                            hint=f"the finished jobs are kept under {JOB_REFS}/{jobs_id}/; "
                                 f"to add them on top of {ref_name(ref)} as it is now (and "
                                 f"run the others): {hint}" if hint else None)
    stream, marks, ordered = _history_stream(ds, state, ordered, stop_at_clash)
    if not marks:
        return None
    notes_ref = f"refs/notes/{gitrepo.NOTES_REF}"
    notes_tip = gitrepo.resolve_commit(ds.root, notes_ref)
    notes_mark = marks[-1][1] + 1
    stream.append(_notes_stream(jobs_id, marks, notes_tip, notes_mark))
    marks_file = state_dir(ds) / f"{jobs_id}.marks"
    gitrepo.fast_import(ds.root, b"".join(stream), marks_file)
    by_mark = dict(line.split(" ", 1) for line in
                   marks_file.read_text().splitlines() if line)
    marks_file.unlink(missing_ok=True)
    tip = by_mark[f":{marks[-1][1]}"].strip()
    new_notes = by_mark[f":{notes_mark}"].strip()
    updates = [f"update {ref} {tip} {base}",
               f"update {notes_ref} {new_notes} {notes_tip or '0' * len(tip)}",
               f"delete {JOB_REFS}/{jobs_id}/tip", f"delete {JOB_REFS}/{jobs_id}/notes"]
    updates += [f"delete {job_ref(jobs_id, j['index'])}" for j, _ in ordered]
    # the work tree, the state file and the branch move together: signals wait until all
    # have; the state file says the jobs are committed before the branch moves (their job
    # refs go with the same ref transaction), so a --continue after a SIGKILL in between
    # never runs them again
    with deferred_signals():
        try:
            gitrepo.read_tree_update(ds.root, base, tip)  # refuses to overwrite local changes
        except RecorderError as exc:
            raise RecorderError(
                f"the work tree changed while the jobs ran and would be overwritten ("
                f"{exc.message}); the jobs' history was not written",
                hint=f"the finished jobs are kept under {JOB_REFS}/{jobs_id}/; save or undo "
                     f"those changes, then: {hint}" if hint else None) from None
        before = [(j, j["status"], j.get("new"), j.get("commit")) for j, _ in marks]
        for j, mark in marks:
            j["status"] = JobStatus.COMMITTED
            j["new"] = True
            j["commit"] = by_mark[f":{mark}"].strip()
        state["base"] = tip
        persisted = state_path(ds, jobs_id).exists()  # an array's; a replay keeps none
        try:
            if persisted:
                save_state(ds, state)
            gitrepo.update_refs(ds.root, updates)
        except (RecorderError, OSError):
            for j, status, new, commit in before:
                j["status"] = status
                j.pop("new", None)
                j.pop("commit", None)
                if new is not None:
                    j["new"] = new
                if commit is not None:
                    j["commit"] = commit
            state["base"] = base
            if persisted:
                with contextlib.suppress(RecorderError, OSError):
                    save_state(ds, state)
            gitrepo.read_tree_update(ds.root, tip, base)
            raise
    for j, sha in ordered:  # clashing jobs: their commits stay reachable for inspection
        if j["status"] == JobStatus.FAILED:
            keep(ds, jobs_id, f"failed-{j['index']}", sha)
    return tip


def _job_commits(ds: Dataset, base: str, tips: list[str],
                 objects: dict[str, tuple[str, bytes] | None]
                 ) -> tuple[dict[str, list[str]], dict[str, tuple[str, ...]]]:
    """Each job tip's own commits (oldest first, ``base`` excluded) and every such commit's
    parents.  A job whose command committed has more than its run commit (a run-merge whose
    second parent is the command's commits): those are kept, read with one ``git rev-list``
    for all such jobs; the usual job (one commit on ``base``) needs no git call."""
    parents: dict[str, tuple[str, ...]] = {}
    complex_tips = []
    for sha in tips:
        ps = _parents(objects.get(sha))
        parents[sha] = ps
        if ps != (base,):
            complex_tips.append(sha)
    own: dict[str, list[str]] = {sha: [sha] for sha in tips}
    if not complex_tips:
        return own, parents
    order: list[str] = []
    for line in gitrepo.rev_list(ds.root, ["--topo-order", "--reverse", "--parents",
                                           *dict.fromkeys(complex_tips), f"^{base}"]):
        sha, *rest = line.split()
        parents[sha] = tuple(rest)
        order.append(sha)
    position = {sha: n for n, sha in enumerate(order)}
    for tip in dict.fromkeys(complex_tips):
        seen, todo = set(), [tip]
        while todo:
            c = todo.pop()
            if c in seen or c not in position:
                continue
            seen.add(c)
            todo.extend(parents.get(c, ()))
        own[tip] = sorted(seen, key=position.__getitem__)
    return own, parents


def _parents(obj: tuple[str, bytes] | None) -> tuple[str, ...]:
    head = (obj or ("", b""))[1].split(b"\n\n", 1)[0]
    return tuple(line[7:].decode() for line in head.split(b"\n") if line.startswith(b"parent "))


def _history_stream(ds: Dataset, state: JobsState, ordered: list[tuple[JobState, str]],
                    stop_at_clash: bool
                    ) -> tuple[list[bytes], list[tuple[JobState, int]],
                               list[tuple[JobState, str]]]:
    """fast-import's commands for the jobs' commits (each job's own commits too, their
    merges kept), the marks of the jobs' tips, and the jobs written or refused (a replay's
    list ends at its first clash)."""
    base = state["base"]
    shas = [sha for _, sha in ordered]
    objects = gitrepo.cat_file_batch(ds.root, shas)
    own, parents = _job_commits(ds, base, shas, objects)
    extra = list(dict.fromkeys(c for sha in shas for c in own[sha] if c not in objects))
    if extra:
        objects.update(gitrepo.cat_file_batch(ds.root, extra))
    diffs = gitrepo.diff_tree_commits(ds.root, list(dict.fromkeys(
        c for sha in shas for c in own[sha])))
    touched: dict[str, int] = {}
    stream: list[bytes] = []
    marks: list[tuple[JobState, int]] = []
    next_mark = 0
    current = base  # the tip so far: a commit id, or ":mark"
    for j, sha in ordered:
        changes = [c for commit in own[sha] for c in diffs.get(commit, [])]
        clash = next((p for _, _, p in changes if p in touched), None)
        if clash is not None:  # outputs declared apart, changes not: never merged silently
            j["status"] = JobStatus.FAILED
            j["error"] = f"it changed {clash}, which job {touched[clash]} changed too"
            if stop_at_clash:  # a replay: nothing after it (its order is the history's)
                ordered = ordered[:ordered.index((j, sha)) + 1]
                break
            continue
        for _, _, p in changes:
            touched[p] = j["index"]
        # the commit a job started from (a first parent that is not one of its own: the
        # base, or an older base of a job kept from before --continue) becomes the tip so far
        mapped: dict[str, str] = {}
        for commit in own[sha]:
            next_mark += 1
            mapped[commit] = f":{next_mark}"
            ps = [mapped.get(p, current if k == 0 else p)
                  for k, p in enumerate(parents.get(commit, ()))]
            stream.append(_commit_command(state["id"], next_mark, objects.get(commit), ps,
                                          diffs.get(commit, [])))
        current = f":{next_mark}"
        marks.append((j, next_mark))
    return stream, marks, ordered


def _commit_command(jobs_id: str, mark: int, obj: tuple[str, bytes] | None,
                    parents: list[str], changes: list[tuple[str, str, str]]) -> bytes:
    """One commit for fast-import: author, committer and message as they were, its parents
    (``:mark`` or commit ids), its changes against its first parent."""
    _kind, raw = obj or ("", b"")
    head, _, msg = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    author = next(x for x in lines if x.startswith(b"author "))
    committer = next(x for x in lines if x.startswith(b"committer "))
    out = [f"commit {JOB_REFS}/{jobs_id}/tip\nmark :{mark}\n".encode(), author, b"\n",
           committer, b"\n", f"data {len(msg)}\n".encode(), msg, b"\n"]
    if parents:
        out.append(f"from {parents[0]}\n".encode())
    out += [f"merge {p}\n".encode() for p in parents[1:]]
    for mode, blob, path in changes:
        quoted = _fi_path(path)
        if mode == "000000":
            out.append(b"D " + quoted + b"\n")
        else:
            out.append(f"M {mode} {blob} ".encode() + quoted + b"\n")
    return b"".join(out) + b"\n"


def _notes_stream(jobs_id: str, marks: list[tuple[JobState, int]], notes_tip: str | None,
                  notes_mark: int) -> bytes:
    """fast-import's commands for the notes (durations) of the jobs' commits."""
    lines = [f"commit {JOB_REFS}/{jobs_id}/notes\nmark :{notes_mark}\n"
             f"committer rr <rr@localhost> {int(time.time())} +0000\ndata 0\n".encode()]
    if notes_tip:
        lines.append(f"from {notes_tip}\n".encode())
    for j, mark in marks:
        text = json.dumps({"duration": round(j.get("duration", 0.0), 3)}).encode()
        lines.append(f"N inline :{mark}\ndata {len(text)}\n".encode() + text + b"\n")
    return b"".join(lines) + b"\ndone\n"


def _fi_path(path: str) -> bytes:
    """A path as git fast-import reads it (C-style quoted when it needs to be)."""
    raw = path.encode("utf-8", "surrogateescape")
    if not (raw.startswith(b'"') or b"\n" in raw or b"\\" in raw):
        return raw
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n") + b'"'
