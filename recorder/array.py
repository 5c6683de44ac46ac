"""Array jobs: one command over many parameter rows, each row its own run record.

``rr run --param NAME=V1,V2 --array TABLE ...`` expands into jobs (one per row); each job is
the ordinary run operation (``run.execute``) in an ephemeral linked worktree of the dataset at
the base commit (shared object store and annex), committed there with its record.  The driver
(this process) keeps each job's commit under a private ref ``refs/rr/jobs/<id>/<index>``, then
writes the linear history in row order with one ``git fast-import`` (no checkout), moves the
branch it started on, fast-forwards the main work tree and commits the git-annex journal.  Jobs
run git-annex with ``annex.alwayscommit=false``: the driver is the only writer of refs and of
the git-annex branch.  The state of an array lives in ``.git/rr-arrays/<id>.json`` so that
``rr run --continue`` executes only what did not succeed.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import fnmatch
import glob
import itertools
import json
import os
import shlex
import shutil
import string
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import engine, gitrepo, proc
from .dataset import Dataset
from .errors import Interrupted, PlaceholderError, RecorderError, UsageError
from .lock import dataset_lock, deferred_signals
from .placeholders import BUILTIN, field_names
from .results import ERROR, NOTNEEDED, OK, Result

STATE_DIR = "rr-arrays"
JOB_REFS = "refs/rr/jobs"
# placeholders rr fills in itself: run's, and those of container call formats
RESERVED = frozenset((*BUILTIN, "extra_inputs", "python", "img", "cmd", "img_dspath",
                      "img_dirpath"))
# a job's git-annex keeps its location-log updates in the journal (the driver commits them);
# no job starts git's automatic gc (two at once, in the middle of an array)
JOB_ENV = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "annex.alwayscommit",
           "GIT_CONFIG_VALUE_0": "false", "GIT_CONFIG_KEY_1": "gc.auto",
           "GIT_CONFIG_VALUE_1": "0"}


class Job(NamedTuple):
    index: int
    params: dict[str, str]
    cmd: str
    inputs: list[str]
    outputs: list[str]
    message: str | None


# --- expansion ------------------------------------------------------------------------------


def parse_params(params: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``NAME=V1,V2`` options as (name, values)."""
    out: list[tuple[str, list[str]]] = []
    for p in params:
        name, sep, values = p.partition("=")
        if not sep or not values:
            raise UsageError(f"--param {p!r} is not NAME=VALUE[,VALUE...]",
                             hint="e.g. --param subject=01,02,03")
        out.append((name.strip(), values.split(",")))
    return out


def read_table(path: str) -> tuple[list[str], list[list[str]]]:
    """A CSV/TSV table (by extension, else sniffed): header = names, values kept as strings."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read the --array table {path}: {exc.strerror or exc}") from None
    ext = os.path.splitext(path)[1].lower()
    if ext in (".tsv", ".tab"):
        delimiter = "\t"
    elif ext == ".csv":
        delimiter = ","
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",\t;").delimiter
        except csv.Error:
            delimiter = ","
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter)
            if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise UsageError(f"the --array table {path} has no rows",
                         hint="its first line names the parameters, each further line is a job")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    for n, row in enumerate(body, start=2):
        if len(row) > len(header):
            raise UsageError(f"line {n} of {path} has {len(row)} values for {len(header)} "
                             "columns")
        missing = [h for h, v in itertools.zip_longest(header, row, fillvalue="") if not v]
        if missing:
            raise UsageError(f"line {n} of {path} has no value for {missing[0]!r}")
    return header, body


def expand_rows(params: Sequence[str] = (), table: str | None = None,
                custom: Sequence[str] = ()) -> list[dict[str, str]]:
    """The rows of an array: the table's rows (in order) times the Cartesian product of the
    ``--param`` values (in the given order, the last one varying fastest)."""
    names: list[str] = []
    base_rows: list[dict[str, str]] = [{}]
    if table is not None:
        header, body = read_table(table)
        names += header
        base_rows = [dict(zip(header, row)) for row in body]
    parsed = parse_params(params)
    names += [n for n, _ in parsed]
    check_names(names, custom)
    product = list(itertools.product(*[vals for _, vals in parsed]))
    rows = [{**row, **dict(zip([n for n, _ in parsed], combo))}
            for row in base_rows for combo in product]
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(rows):
        key = tuple(row.values())
        if key in seen:
            raise UsageError(f"jobs {seen[key]} and {i} have the same parameters "
                             f"({show_params(row)})", hint="every row must differ")
        seen[key] = i
    return rows


def check_names(names: Sequence[str], custom: Sequence[str] = ()) -> None:
    seen: set[str] = set()
    for name in names:
        if not name.isidentifier():
            raise UsageError(f"parameter name {name!r} is not an identifier",
                             hint="use letters, digits and _ (not starting with a digit)")
        if name in RESERVED or name in custom:
            raise UsageError(f"parameter {name!r} has the name of a placeholder rr fills in "
                             f"({{{name}}})", hint="rename the parameter")
        if name in seen:
            raise UsageError(f"parameter {name!r} is given twice")
        seen.add(name)


def show_params(params: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


_FORMATTER = string.Formatter()


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def substitute(template: str, values: dict[str, str], *, quote: bool, what: str) -> str:
    """``template`` with the parameters filled in and every other placeholder kept (for run
    to fill in); values are shell-quoted in the command (``quote``)."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise PlaceholderError(f"{what} has a malformed placeholder: {exc}",
                               hint="write literal braces as {{ and }}") from None
    out: list[str] = []
    for literal, name, spec, conv in parsed:
        out.append(_escape(literal))
        if name is None:
            continue
        base = name.split(".", 1)[0].split("[", 1)[0]
        if base in values:
            try:
                value = _FORMATTER.get_field(name, (), values)[0]
                text = _FORMATTER.format_field(_FORMATTER.convert_field(value, conv), spec or "")
            except (ValueError, IndexError, AttributeError, KeyError, TypeError) as exc:
                raise PlaceholderError(f"{what} has a malformed placeholder {{{name}}}: "
                                       f"{exc}") from None
            out.append(_escape(shlex.quote(text) if quote else text))
        else:
            out.append("{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "")
                       + "}")
    return "".join(out)


def make_jobs(rows: Sequence[dict[str, str]], cmd: str, inputs: Sequence[str],
              outputs: Sequence[str], message: str | None) -> list[Job]:
    names = set(rows[0]) if rows else set()
    if len(rows) > 1:
        for o in outputs:
            if not names & set(field_names(o)):
                raise UsageError(f"output {o!r} has no parameter in it: every job would write it",
                                 hint="name each job's own outputs with a parameter, e.g. "
                                      f"-o 'out/{{{sorted(names)[0]}}}.txt'")
    jobs = []
    for i, row in enumerate(rows):
        jobs.append(Job(i, row, substitute(cmd, row, quote=True, what="command"),
                        [substitute(s, row, quote=False, what="input specification")
                         for s in inputs],
                        [substitute(s, row, quote=False, what="output specification")
                         for s in outputs],
                        None if message is None else
                        substitute(message, row, quote=False, what="message")
                        .replace("{{", "{").replace("}}", "}")))
    return jobs


def check_overlaps(jobs: Sequence[Job], relpwd: str) -> None:
    """No two jobs may declare the same output, one inside the other, or globs matching each
    other's: their changes are put together without a merge."""
    literal: dict[str, int] = {}
    ancestors: dict[str, int] = {}
    globs: list[tuple[str, int]] = []

    def clash(a: int, b: int, path: str) -> UsageError:
        first, second = jobs[min(a, b)], jobs[max(a, b)]
        return UsageError(f"the outputs of job {first.index} ({show_params(first.params)}) and "
                          f"job {second.index} ({show_params(second.params)}) overlap: {path}",
                          hint="give every job its own outputs (a parameter in each -o)")

    for job in jobs:
        for out in job.outputs:
            p = os.path.normpath(os.path.join(relpwd, out.replace("{{", "{").replace("}}", "}")))
            if glob.has_magic(p):
                globs.append((p, job.index))
                continue
            for other in (literal.get(p), ancestors.get(p)):
                if other is not None and other != job.index:
                    raise clash(other, job.index, p)
            parts = p.split("/")
            for k in range(1, len(parts)):
                anc = "/".join(parts[:k])
                if literal.get(anc, job.index) != job.index:
                    raise clash(literal[anc], job.index, p)
                ancestors.setdefault(anc, job.index)
            literal[p] = job.index
    if not globs:
        return
    everything = list(literal.items()) + [(g, i) for g, i in globs]
    for g, i in globs:
        for path, j in everything:
            if i == j:
                continue
            parts = path.split("/")
            prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
            if any(fnmatch.fnmatchcase(x, g) for x in prefixes) or \
                    fnmatch.fnmatchcase(g, path) or g.startswith(path + "/") or \
                    (glob.has_magic(path) and _globs_may_meet(g, path)):
                raise clash(i, j, f"{g} and {path}")


def _globs_may_meet(a: str, b: str) -> bool:
    """Whether two globs may match a common path (conservative: their fixed beginnings and
    endings agree)."""
    def fixed(g: str) -> tuple[str, str]:
        first = min(g.find(c) for c in "*?[" if c in g)
        last = max(g.rfind(c) for c in "*?]" if c in g)
        return g[:first], g[last + 1:]

    (pa, sa), (pb, sb) = fixed(a), fixed(b)
    return (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa))


# --- state ----------------------------------------------------------------------------------


def state_dir(ds: Dataset) -> Path:
    return ds.git_dir / STATE_DIR


def state_path(ds: Dataset, array_id: str) -> Path:
    return state_dir(ds) / f"{array_id}.json"


def save_state(ds: Dataset, state: dict[str, Any]) -> None:
    path = state_path(ds, state["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    tmp.replace(path)


def load_state(ds: Dataset, array_id: str | None) -> dict[str, Any]:
    ids = unfinished(ds)
    if array_id is None:
        if not ids:
            raise RecorderError("there is no unfinished array job in this dataset")
        if len(ids) > 1:
            raise RecorderError(f"there are {len(ids)} unfinished arrays: {', '.join(ids)}",
                                hint="name one: rr run --continue ID")
        array_id = ids[0]
    if array_id not in ids:
        raise RecorderError(f"no unfinished array {array_id!r} in this dataset",
                            hint=f"unfinished: {', '.join(ids)}" if ids else None)
    try:
        return json.loads(state_path(ds, array_id).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecorderError(f"the state of array {array_id} cannot be read: {exc}") from None


def unfinished(ds: Dataset) -> list[str]:
    d = state_dir(ds)
    if not d.is_dir():
        return []
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".json"))


# --- one job --------------------------------------------------------------------------------


class JobTask(NamedTuple):
    root: str  # the dataset's main worktree
    wtdir: str  # where this array's worktrees live
    base: str  # the commit every job starts from
    index: int
    cmd: str
    inputs: list[str]
    outputs: list[str]
    message: str | None
    pwd: str  # relative to the root
    options: dict[str, Any]  # expand, explicit, assume_ready, sidecar, container, gpus
    array: dict[str, Any]  # the record's rr.array
    spec: Any = None  # a replayed record's RunSpec (rr rerun --jobs): run as it is, not built


class JobOutcome(NamedTuple):
    index: int
    status: str  # ok | notneeded | failed
    commit: str | None
    message: str
    hint: str
    worktree: str
    duration: float
    exit_code: int = 1  # of a failed job: the command's exit code, as rr run exits
    error: str = ""  # of a failed job: the kind of error (CommandFailedError, ...)
    notes: tuple[str, ...] = ()


# array worktree dir -> this process's reusable worktree (its config read once)
_SLOTS: dict[str, Dataset] = {}


def run_job(task: JobTask) -> JobOutcome:
    """One row: the ordinary run operation in a linked worktree at the base commit.  A
    worktree that saw a successful job is reset and reused by the next job of this process; a
    failed job's worktree is kept with its outputs and message."""
    from . import run

    ds = _SLOTS.pop(task.wtdir, None)
    if ds is not None:
        try:
            gitrepo.worktree_reset(ds.root, task.base)
        except RecorderError:
            ds = None
    if ds is None:
        Path(task.wtdir).mkdir(parents=True, exist_ok=True)
        wt = os.path.join(task.wtdir, f"{os.getpid()}-{task.index}")
        gitrepo.worktree_add(task.root, wt, task.base)
        ds = Dataset(wt)
    wt = str(ds.root)
    opts = task.options
    started = time.monotonic()
    try:
        with proc.tool_env_overlay(JOB_ENV):
            cwd = Path(os.path.normpath(os.path.join(wt, task.pwd)))
            if task.spec is not None:  # a replayed record: its spec, moved into the worktree
                spec = copy.deepcopy(task.spec)
                spec.pwd = cwd
            else:
                spec = run.prepare_spec(ds, task.cmd, message=task.message, inputs=task.inputs,
                                        outputs=task.outputs, expand=opts.get("expand"),
                                        explicit=opts.get("explicit", False),
                                        assume_ready=opts.get("assume_ready"),
                                        sidecar=opts.get("sidecar"), cwd=cwd)
                spec.rr_info = {"array": task.array}
            spec.job = True
            spec.env = dict(spec.env, **JOB_ENV)
            if task.spec is None and (opts.get("container") is not None or opts.get("gpus")):
                from .containers import registry

                registry.wrap_spec(ds, spec, opts.get("container") or None,
                                   gpus=opts.get("gpus", False))
            result = run.execute(ds, spec)
    except Interrupted as exc:
        if threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt from None
        # a Dask worker thread: the driver is cancelling (it stopped this command); a
        # KeyboardInterrupt here would kill the worker process with a traceback on stderr
        return JobOutcome(task.index, "failed", None, exc.message, "", wt,
                          time.monotonic() - started)
    except RecorderError as exc:
        return JobOutcome(task.index, "failed", None, exc.message, exc.hint or "", wt,
                          time.monotonic() - started, exit_code=exc.exit_code,
                          error=type(exc).__name__)
    _SLOTS[task.wtdir] = ds
    return JobOutcome(task.index, result.status, result.commit, "", "", wt, result.duration,
                      notes=tuple(result.notes))


# --- the driver -----------------------------------------------------------------------------


def plan(ds: Dataset, cmd: str | Sequence[str], *, message: str | None, inputs: Sequence[str],
         outputs: Sequence[str], params: Sequence[str], table: str | None, cwd: Path | None,
         options: dict[str, Any]) -> tuple[list[Job], str]:
    """The jobs, every one checked as far as it can be before anything runs."""
    from . import run

    command = run.normalize_command(cmd)
    if not command.strip():
        raise UsageError("no command given", hint="rr run --param NAME=V1,V2 COMMAND...")
    custom = [k.split(".")[-1] for k in ds.config.with_prefix("datalad.run.substitutions.")]
    rows = expand_rows(params, table, custom)
    jobs = make_jobs(rows, command, inputs, outputs, message)
    pwd = run.resolve_pwd(ds, cwd)
    relpwd = Path(os.path.relpath(pwd, ds.root)).as_posix()
    check_overlaps(jobs, relpwd)
    for job in jobs:  # placeholders, inputs that exist, outputs inside the dataset
        spec = run.prepare_spec(ds, job.cmd, message=job.message, inputs=job.inputs,
                                outputs=job.outputs, expand=options.get("expand"),
                                explicit=options.get("explicit", False),
                                assume_ready=options.get("assume_ready"), cwd=pwd)
        if job.index == 0 and (options.get("container") is not None or options.get("gpus")):
            from .containers import registry

            registry.wrap_spec(ds, spec, options.get("container") or None,
                               gpus=options.get("gpus", False))
        try:
            run.plan(ds, spec)
        except RecorderError as exc:
            exc.message = f"job {job.index} ({show_params(job.params)}): {exc.message}"
            raise
    return jobs, relpwd


def dry_run(ds: Dataset, jobs: Sequence[Job], relpwd: str) -> Iterator[Result]:
    for job in jobs:
        yield Result("run", relpwd, "ok", "dry-run", message=job.cmd,
                     extra={"index": job.index, "params": job.params, "command": job.cmd,
                            "inputs": job.inputs, "outputs": job.outputs})


def start(ds: Dataset, jobs: Sequence[Job], relpwd: str, *, cmd_message: str | None,
          options: dict[str, Any], command: str = "") -> dict[str, Any]:
    """Check the dataset and write the array's state; nothing has run yet."""
    from . import preflight, run

    preflight.check_run(ds)
    run.ensure_clean(ds)  # jobs see the committed tree only
    base = ds.head()
    if base is None:
        raise RecorderError("the dataset has no commit yet", hint="save something first")
    branch = gitrepo.current_branch(ds.root)
    array_id = time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()
    state = {"version": 1, "id": array_id, "base": base,
             "ref": f"refs/heads/{branch}" if branch else "HEAD", "pwd": relpwd,
             "options": options, "message": cmd_message, "command": command,
             "jobs": [{"index": j.index, "params": j.params, "cmd": j.cmd, "inputs": j.inputs,
                       "outputs": j.outputs, "message": j.message, "status": "pending"}
                      for j in jobs]}
    save_state(ds, state)
    return state


def resume(ds: Dataset, array_id: str | None) -> dict[str, Any]:
    """The state of an unfinished array, its base moved to where its branch is now."""
    from . import preflight, run

    state = load_state(ds, array_id)
    preflight.check_run(ds)
    run.ensure_clean(ds)
    ref = state["ref"]
    now = gitrepo.resolve_commit(ds.root, ref)
    branch = gitrepo.current_branch(ds.root)
    if (f"refs/heads/{branch}" if branch else "HEAD") != ref or now is None:
        raise RecorderError(f"array {state['id']} was started on {_ref_name(ref)}; HEAD is "
                            f"on {branch or 'a detached HEAD'} now",
                            hint=f"check out {_ref_name(ref)} first")
    state["base"] = now
    return state


def _ref_name(ref: str) -> str:
    return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref


def execute(ds: Dataset, state: dict[str, Any], *, target: engine.Target = engine.SERIAL,
            on_event: Callable[[Any], None] | None = None,
            announce: Callable[[str], None] | None = None) -> Iterator[Result]:
    """Run the array's jobs that have not succeeded, then write the history of all."""
    array_id = state["id"]
    wtdir = str(state_dir(ds) / array_id)
    done = gitrepo.refs_under(ds.root, f"{JOB_REFS}/{array_id}/")
    todo = []
    for j in state["jobs"]:
        if f"{JOB_REFS}/{array_id}/{j['index']}" in done:
            j["status"] = "ok"
            continue
        if j["status"] in ("committed", "notneeded"):
            continue
        if j.get("worktree"):  # the worktree a failed attempt kept
            gitrepo.worktree_remove(ds.root, j.pop("worktree"))
        j["status"] = "pending"
        todo.append(j)
    tasks = [JobTask(str(ds.root), wtdir, state["base"], j["index"], j["cmd"], j["inputs"],
                     j["outputs"], j["message"], state["pwd"], state["options"],
                     {"id": array_id, "index": j["index"], "params": j["params"]})
             for j in todo]
    by_index = {j["index"]: j for j in state["jobs"]}
    if announce is not None and tasks:  # what runs is shown before it runs
        announce(f"{len(tasks)} job(s) of array {array_id}: "
                 f"{state.get('command') or tasks[0].cmd}")

    def event(e: Any) -> None:
        if on_event is not None:
            on_event(dataclasses.replace(e, index=tasks[e.index].index))

    interrupted = False
    try:
        for pos, outcome in engine.execute_all(run_job, tasks, target=target,
                                               on_event=event):
            task = tasks[pos]
            j = by_index[task.index]
            yield _record_outcome(ds, array_id, j, outcome)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        save_state(ds, state)
    if interrupted:
        _remove_worktrees(ds, state)
        n = sum(1 for j in state["jobs"] if j["status"] == "ok")
        error = Interrupted(f"interrupted: the jobs were cancelled; {n} finished job(s) are "
                            f"kept under {JOB_REFS}/{array_id}/, nothing was written to the "
                            "branch")
        error.hint = f"run the rest and write the history with: rr run --continue {array_id}"
        raise error
    yield from finish(ds, state)


def _record_outcome(ds: Dataset, array_id: str, j: dict[str, Any], outcome: Any) -> Result:
    params = show_params(j["params"])
    extra: dict[str, Any] = {"id": array_id, "index": j["index"], "params": j["params"]}
    if isinstance(outcome, BaseException):
        j["status"] = "failed"
        j["error"] = (outcome.message if isinstance(outcome, RecorderError)
                      else f"{type(outcome).__name__}: {outcome}").splitlines()[0]
        return Result("run", f"job {j['index']}", ERROR, message=f"{params}: {j['error']}",
                      extra=extra)
    extra["duration"] = round(outcome.duration, 3)
    if outcome.status == "ok":
        gitrepo.update_refs(ds.root, [f"update {JOB_REFS}/{array_id}/{j['index']} "
                                      f"{outcome.commit}"])
        j["status"] = "ok"
        j["duration"] = outcome.duration
        return Result("run", f"job {j['index']}", OK, "done", message=params,
                      extra={**extra, "job_commit": outcome.commit})
    if outcome.status == "notneeded":
        j["status"] = "notneeded"
        return Result("run", f"job {j['index']}", NOTNEEDED, "unchanged",
                      message=f"{params}: the command changed nothing", extra=extra)
    j["status"] = "failed"
    j["error"] = outcome.message
    j["worktree"] = outcome.worktree
    where = f"its outputs and message are kept in {outcome.worktree}"
    return Result("run", f"job {j['index']}", ERROR,
                  message=f"{params}: {outcome.message}; {where}",
                  extra={**extra, "worktree": outcome.worktree, "hint": outcome.hint})


def finish(ds: Dataset, state: dict[str, Any]) -> Iterator[Result]:
    """Write the history of the finished jobs (row order), move the branch, update the main
    work tree, commit the git-annex journal, clean up."""
    array_id = state["id"]
    refs = gitrepo.refs_under(ds.root, f"{JOB_REFS}/{array_id}/")
    ordered = [(j, refs[f"{JOB_REFS}/{array_id}/{j['index']}"]) for j in state["jobs"]
               if f"{JOB_REFS}/{array_id}/{j['index']}" in refs]
    try:
        tip = write_history(ds, state, ordered, what=f"rr run --array ({array_id})")
    finally:
        save_state(ds, state)
        _remove_worktrees(ds, state)
    failed = [j for j in state["jobs"] if j["status"] not in ("committed", "notneeded")]
    if not failed:
        state_path(ds, array_id).unlink(missing_ok=True)
        _rmdir(state_dir(ds) / array_id)
    n = sum(1 for j in state["jobs"] if j["status"] == "committed" and j.get("new"))
    message = f"{n} job(s) committed" + (f" on {_ref_name(state['ref'])} ({tip[:8]})"
                                         if tip else "")
    if failed:
        message += (f"; {len(failed)} failed: rr run --continue {array_id} runs them again")
    yield Result("run-array", state["pwd"], ERROR if failed else OK, "done",
                 message=message, extra={"id": array_id, "commit": tip,
                                         "committed": n, "failed": len(failed)})


def write_history(ds: Dataset, state: dict[str, Any], ordered: list[tuple[dict[str, Any], str]],
                  *, what: str, stop_at_clash: bool = False) -> str | None:
    """Under the dataset lock: the jobs' commits (row order) onto ``state['ref']`` (which must
    still be at ``state['base']``), the work tree moved along, the jobs' git-annex journal
    committed.  Returns the new tip (None: nothing written).  ``stop_at_clash`` (a replay):
    a job whose changes meet an earlier one's ends the history before it."""
    with dataset_lock(ds.git_dir, what=what):
        try:
            return _write_history(ds, state, ordered, stop_at_clash) if ordered else None
        finally:
            if ds.is_annex:
                from . import annex

                annex.merge(ds.root)  # commits the jobs' journal to the git-annex branch


def _write_history(ds: Dataset, state: dict[str, Any],
                   ordered: list[tuple[dict[str, Any], str]],
                   stop_at_clash: bool = False) -> str | None:
    array_id = state["id"]
    ref = state["ref"]
    base = state["base"]
    now = gitrepo.resolve_commit(ds.root, ref)
    branch = gitrepo.current_branch(ds.root)
    if now != base or (f"refs/heads/{branch}" if branch else "HEAD") != ref:
        raise RecorderError(f"{_ref_name(ref)} moved while the jobs ran; the jobs' history was "
                            "not written", hint=f"the finished jobs are kept under {JOB_REFS}/"
                            f"{array_id}/; to add them on top of {_ref_name(ref)} as it is now "
                            f"(and run the others): rr run --continue {array_id}")
    shas = [sha for _, sha in ordered]
    diffs = gitrepo.diff_tree_commits(ds.root, shas)
    objects = gitrepo.cat_file_batch(ds.root, shas)
    touched: dict[str, int] = {}
    stream: list[bytes] = []
    marks: list[tuple[dict[str, Any], int]] = []
    first = True
    for j, sha in ordered:
        changes = diffs.get(sha, [])
        clash = next((p for _, _, p in changes if p in touched), None)
        if clash is not None:  # outputs declared apart, changes not: never merged silently
            j["status"] = "failed"
            j["error"] = f"it changed {clash}, which job {touched[clash]} changed too"
            if stop_at_clash:  # a replay: nothing after it (its order is the history's)
                ordered = ordered[:ordered.index((j, sha)) + 1]
                break
            continue
        for _, _, p in changes:
            touched[p] = j["index"]
        kind, raw = objects[sha] or ("", b"")
        head, _, msg = raw.partition(b"\n\n")
        lines = head.split(b"\n")
        author = next(x for x in lines if x.startswith(b"author "))
        committer = next(x for x in lines if x.startswith(b"committer "))
        mark = len(marks) + 1
        out = [f"commit {JOB_REFS}/{array_id}/tip\nmark :{mark}\n".encode(), author, b"\n",
               committer, b"\n", f"data {len(msg)}\n".encode(), msg, b"\n"]
        if first:
            out.append(f"from {base}\n".encode())
            first = False
        for mode, blob, path in changes:
            quoted = _fi_path(path)
            if mode == "000000":
                out.append(b"D " + quoted + b"\n")
            else:
                out.append(f"M {mode} {blob} ".encode() + quoted + b"\n")
        stream.append(b"".join(out) + b"\n")
        marks.append((j, mark))
    if not marks:
        return None
    notes_ref = f"refs/notes/{gitrepo.NOTES_REF}"
    notes_tip = gitrepo.resolve_commit(ds.root, notes_ref)
    note_lines = [f"commit {JOB_REFS}/{array_id}/notes\nmark :{len(marks) + 1}\n"
                  f"committer rr <rr@localhost> {int(time.time())} +0000\ndata 0\n".encode()]
    if notes_tip:
        note_lines.append(f"from {notes_tip}\n".encode())
    for j, mark in marks:
        text = json.dumps({"duration": round(j.get("duration", 0.0), 3)}).encode()
        note_lines.append(f"N inline :{mark}\ndata {len(text)}\n".encode() + text + b"\n")
    stream.append(b"".join(note_lines) + b"\ndone\n")
    marks_file = state_dir(ds) / f"{array_id}.marks"
    gitrepo.fast_import(ds.root, b"".join(stream), marks_file)
    by_mark = dict(line.split(" ", 1) for line in
                   marks_file.read_text().splitlines() if line)
    marks_file.unlink(missing_ok=True)
    tip = by_mark[f":{len(marks)}"].strip()
    new_notes = by_mark[f":{len(marks) + 1}"].strip()
    updates = [f"update {ref} {tip} {base}",
               f"update {notes_ref} {new_notes} {notes_tip or '0' * len(tip)}",
               f"delete {JOB_REFS}/{array_id}/tip", f"delete {JOB_REFS}/{array_id}/notes"]
    updates += [f"delete {JOB_REFS}/{array_id}/{j['index']}" for j, _ in ordered]
    # the work tree and the branch move together: signals wait until both have
    with deferred_signals():
        try:
            gitrepo.read_tree_update(ds.root, base, tip)  # refuses to overwrite local changes
        except RecorderError as exc:
            raise RecorderError(
                f"the work tree changed while the jobs ran and would be overwritten ("
                f"{exc.message}); the jobs' history was not written",
                hint=f"the finished jobs are kept under {JOB_REFS}/{array_id}/; save or undo "
                     f"those changes, then: rr run --continue {array_id}") from None
        try:
            gitrepo.update_refs(ds.root, updates)
        except RecorderError:
            gitrepo.read_tree_update(ds.root, tip, base)
            raise
    for j, mark in marks:
        j["status"] = "committed"
        j["new"] = True
        j["commit"] = by_mark[f":{mark}"].strip()
    for j, _ in ordered:  # clashing jobs: their commits stay reachable for inspection
        if j["status"] == "failed":
            gitrepo.update_refs(ds.root, [f"update {JOB_REFS}/{array_id}/failed-{j['index']} "
                                          f"{_}"])
    state["base"] = tip
    return tip


def _fi_path(path: str) -> bytes:
    """A path as git fast-import reads it (C-style quoted when it needs to be)."""
    raw = path.encode("utf-8", "surrogateescape")
    if not (raw.startswith(b'"') or b"\n" in raw or b"\\" in raw):
        return raw
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n") + b'"'


def _remove_worktrees(ds: Dataset, state: dict[str, Any]) -> None:
    """Remove the array's worktrees but those that failed jobs keep."""
    wtdir = state_dir(ds) / state["id"]
    kept = {j.get("worktree") for j in state["jobs"] if j["status"] == "failed"}
    if wtdir.is_dir():
        for wt in wtdir.iterdir():
            if str(wt) not in kept:
                gitrepo.worktree_remove(ds.root, wt)
                if wt.exists():  # never registered (interrupted while being added)
                    shutil.rmtree(wt, ignore_errors=True)
    gitrepo.worktree_prune(ds.root)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


__all__ = ["Job", "expand_rows", "make_jobs", "check_overlaps", "plan", "dry_run", "start",
           "resume", "execute", "run_job"]
