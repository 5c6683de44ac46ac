"""Array jobs: one command over many parameter rows, each row its own run record.

``rr run --param NAME=V1,V2 --array TABLE ...`` expands into jobs (one per row): the rows
(``expand_rows``), their commands, inputs, outputs and messages (``make_jobs``), the checks
that their outputs do not overlap (``check_overlaps``) and the plan (``plan``), every job
checked before anything runs.  The jobs run on the job runtime (``recorder.jobs``: linked
worktrees, job refs, the history written in row order); the state of an array lives in
``.git/rr-arrays/<id>.json`` so that ``rr run --continue`` executes only what did not succeed.
"""

from __future__ import annotations

import bisect
import csv
import fnmatch
import glob
import io
import itertools
import os
import shlex
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as cfgkeys
from . import engine, gitrepo, jobs, preflight
from . import run as runop
from .containers import registry
from .dataset import Dataset
from .errors import Interrupted, PlaceholderError, RecorderError, UsageError
from .jobs import JobOutcome, JobStatus, JobTask
from .placeholders import BUILTIN, field_names
from .results import (ERROR, NOTNEEDED, OK, Event, EventKind, OnEvent, Result, announce, emit,
                      job_event)

# placeholders rr fills in itself: run's, and those of container call formats
RESERVED = frozenset((*BUILTIN, "extra_inputs", "python", "img", "cmd", "img_dspath",
                      "img_dirpath"))


@dataclass(frozen=True)
class Job:
    """One row of an array: its parameters filled into the command, inputs, outputs and
    message."""

    index: int
    params: dict[str, str]
    cmd: str
    inputs: list[str]
    outputs: list[str]
    message: str | None


# --- expansion ------------------------------------------------------------------------------


def parse_params(params: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``NAME=V1,V2`` options as (name, values); an empty value is refused as a table row
    with a missing value is."""
    out: list[tuple[str, list[str]]] = []
    for p in params:
        name, sep, values = p.partition("=")
        if not sep or not values:
            raise UsageError(f"--param {p!r} is not NAME=VALUE[,VALUE...]",
                             hint="e.g. --param subject=01,02,03")
        split = values.split(",")
        if not all(split):
            raise UsageError(f"--param {p!r} has an empty value",
                             hint="drop the extra comma: every value must be non-empty")
        out.append((name.strip(), split))
    return out


def read_table(path: str) -> tuple[list[str], list[list[str]]]:
    """A CSV/TSV table (by extension, else sniffed), read with the csv module as such files
    are written (quoted line breaks stay in the value, a UTF-8 BOM is not part of the first
    header): header = names, values kept as strings."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read the --array table {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise UsageError(f"the --array table {path} is not UTF-8 text (line {line}, byte "
                         f"{exc.start})", hint="save the table as UTF-8") from None
    if "\0" in text:  # no command, path or message can carry it
        line = text[:text.index("\0")].count("\n") + 1
        raise UsageError(f"line {line} of the --array table {path} holds a NUL byte",
                         hint="is it a text table? save it as UTF-8 CSV or TSV")
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    starts: list[int] = []  # the line each row starts on
    line = 1
    try:
        for r in reader:
            if any(c.strip() for c in r):
                rows.append(r)
                starts.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        hint = (f"a value may hold at most {csv.field_size_limit()} characters"
                if "limit" in str(exc) else "quote values holding the delimiter, quotes or "
                                            "line breaks, as a spreadsheet writes them")
        raise UsageError(f"line {reader.line_num} of the --array table {path} cannot be read: "
                         f"{exc}", hint=hint) from None
    if len(rows) < 2:
        raise UsageError(f"the --array table {path} has no rows",
                         hint="its first line names the parameters, each further line is a job")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    for n, row in zip(starts[1:], body):
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
    planned = []
    for i, row in enumerate(rows):
        planned.append(Job(i, row, substitute(cmd, row, quote=True, what="command"),
                        [substitute(s, row, quote=False, what="input specification")
                         for s in inputs],
                        [substitute(s, row, quote=False, what="output specification")
                         for s in outputs],
                        None if message is None else
                        substitute(message, row, quote=False, what="message")
                        .replace("{{", "{").replace("}}", "}")))
    return planned


def check_overlaps(planned: Sequence[Job], relpwd: str) -> None:
    """No two jobs may declare the same output, one inside the other, or globs matching each
    other's: their changes are put together without a merge.  Near-linear: a glob is compared
    only with the paths and globs that share its fixed beginning or its fixed ending (whichever
    are fewer), found by bisection in sorted lists."""
    literal: dict[str, int] = {}
    # every directory above a literal output -> up to two jobs below it (two: one differs
    # from any given job)
    ancestors: dict[str, list[int]] = {}
    globs: list[tuple[str, int]] = []

    def clash(a: int, b: int, path: str) -> UsageError:
        first, second = planned[min(a, b)], planned[max(a, b)]
        return UsageError(f"the outputs of job {first.index} ({show_params(first.params)}) and "
                          f"job {second.index} ({show_params(second.params)}) overlap: {path}",
                          hint="give every job its own outputs (a parameter in each -o)")

    for job in planned:
        for out in job.outputs:
            p = os.path.normpath(os.path.join(relpwd, out.replace("{{", "{").replace("}}", "}")))
            if glob.has_magic(p):
                globs.append((p, job.index))
                continue
            other = literal.get(p)
            if other is not None and other != job.index:
                raise clash(other, job.index, p)
            below = [j for j in ancestors.get(p, ()) if j != job.index]
            if below:
                raise clash(below[0], job.index, p)
            parts = p.split("/")
            for k in range(1, len(parts)):
                anc = "/".join(parts[:k])
                if literal.get(anc, job.index) != job.index:
                    raise clash(literal[anc], job.index, p)
                owners = ancestors.setdefault(anc, [])
                if len(owners) < 2 and job.index not in owners:
                    owners.append(job.index)
            literal[p] = job.index
    if globs:
        _check_glob_overlaps(globs, literal, ancestors, clash)


def _fixed(g: str) -> tuple[str, str]:
    """A glob's fixed beginning and ending (before its first and after its last magic)."""
    first = min(g.find(c) for c in "*?[" if c in g)
    last = max(g.rfind(c) for c in "*?]" if c in g)
    return g[:first], g[last + 1:]


class _Keys:
    """Distinct strings, found by a text: those that start with it (a range of a sorted list)
    and, ``both_ways``, those that are a beginning of it (a set)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = sorted(set(keys))
        self.set = set(self.keys)

    def compatible(self, text: str, *, both_ways: bool = True) -> tuple[range, list[str]]:
        """The positions in ``keys`` of the keys starting with ``text`` and the keys that are
        a shorter beginning of it."""
        lo = bisect.bisect_left(self.keys, text)
        hi = bisect.bisect_left(self.keys, text + "\U0010ffff")
        short = [text[:k] for k in range(len(text)) if text[:k] in self.set] if both_ways \
            else []
        return range(lo, hi), short

    def found(self, text: str, *, both_ways: bool = True) -> Iterator[str]:
        positions, short = self.compatible(text, both_ways=both_ways)
        yield from (self.keys[n] for n in positions)
        yield from short


class _Buckets:
    """Items grouped by one key (a glob's fixed beginning, or its reversed ending), each group
    indexed by the other key."""

    def __init__(self, items: Sequence[tuple[str, str, Any]]) -> None:
        self.groups: dict[str, dict[str, list[Any]]] = {}
        for first, second, payload in items:
            self.groups.setdefault(first, {}).setdefault(second, []).append(payload)
        self.index = _Keys(self.groups)
        self.inner: dict[str, _Keys] = {}

    def count(self, first: str) -> int:
        positions, short = self.index.compatible(first)
        return len(positions) + len(short)

    def matches(self, first: str, second: str) -> Iterator[Any]:
        """The payloads whose first key and second key are each compatible with these."""
        for key in self.index.found(first):
            inner = self.inner.get(key)
            if inner is None:
                inner = self.inner[key] = _Keys(self.groups[key])
            for other in inner.found(second):
                yield from self.groups[key][other]


def _check_glob_overlaps(globs: list[tuple[str, int]], literal: dict[str, int],
                         ancestors: dict[str, list[int]], clash: Any) -> None:
    """Globs against the literal outputs (and the directories above them) and each other."""
    owners: dict[str, tuple[int, ...]] = {a: tuple(js) for a, js in ancestors.items()}
    owners.update((p, (j,)) for p, j in literal.items())
    forward = _Keys(owners)
    backward = _Keys(p[::-1] for p in owners)
    fixed = [(*_fixed(g), g, i) for g, i in globs]
    by_start = _Buckets([(pg, sg[::-1], (g, i)) for pg, sg, g, i in fixed])
    by_end = _Buckets([(sg[::-1], pg, (g, i)) for pg, sg, g, i in fixed])
    for pg, sg, g, i in fixed:
        # a literal output (or a directory above one) the glob matches: it starts with the
        # glob's fixed beginning and ends with its fixed ending (look among the fewer)
        starts, _ = forward.compatible(pg, both_ways=False)
        ends, _ = backward.compatible(sg[::-1], both_ways=False)
        paths = (forward.keys[n] for n in starts) if len(starts) <= len(ends) else \
            (backward.keys[n][::-1] for n in ends)
        for path in paths:
            other = next((j for j in owners[path] if j != i), None)
            if other is not None and fnmatch.fnmatchcase(path, g):
                raise clash(i, other, f"{g} and {path}")
        # a literal output above the glob's fixed part
        parts = pg.split("/")
        for k in range(1, len(parts)):
            j = literal.get("/".join(parts[:k]))
            if j is not None and j != i:
                raise clash(i, j, f"{g} and {'/'.join(parts[:k])}")
        # another job's glob that may match a path this one matches: fixed beginnings and
        # fixed endings agree (one is a beginning / an ending of the other)
        candidates = by_start.matches(pg, sg[::-1]) if by_start.count(pg) <= \
            by_end.count(sg[::-1]) else by_end.matches(sg[::-1], pg)
        for h, j in candidates:
            if j != i:
                raise clash(i, j, f"{g} and {h}")


# --- the driver -----------------------------------------------------------------------------


def plan(ds: Dataset, cmd: str | Sequence[str], *, message: str | None, inputs: Sequence[str],
         outputs: Sequence[str], params: Sequence[str], table: str | None, cwd: Path | None,
         options: dict[str, Any]) -> tuple[list[Job], str]:
    """The jobs, every one checked as far as it can be before anything runs."""
    command = runop.normalize_command(cmd)
    if not command.strip():
        raise UsageError("no command given", hint="rr run --param NAME=V1,V2 COMMAND...")
    custom = [k.split(".")[-1]
              for k in ds.config.with_prefix(cfgkeys.RUN_SUBSTITUTIONS.replace("<NAME>", ""))]
    rows = expand_rows(params, table, custom)
    planned = make_jobs(rows, command, inputs, outputs, message)
    pwd = runop.resolve_pwd(ds, cwd)
    relpwd = Path(os.path.relpath(pwd, ds.root)).as_posix()
    check_overlaps(planned, relpwd)
    check_subdatasets(ds, planned, relpwd)
    for job in planned:  # placeholders, inputs that exist, outputs inside the dataset
        spec = runop.prepare_spec(ds, job.cmd, message=job.message, inputs=job.inputs,
                                  outputs=job.outputs, expand=options.get("expand"),
                                  explicit=options.get("explicit", False),
                                  assume_ready=options.get("assume_ready"), cwd=pwd,
                                  env_record=options.get("env_record") or (),
                                  log=options.get("log"))
        if job.index == 0 and (options.get("container") is not None or options.get("gpus")):
            call = registry.wrap_spec(ds, spec, options.get("container") or None,
                                      gpus=options.get("gpus", False))
            spec = runop.with_container(spec, call)
        try:
            runop.plan(ds, spec)
        except RecorderError as exc:
            exc.message = f"job {job.index} ({show_params(job.params)}): {exc.message}"
            raise
    return planned, relpwd


def check_subdatasets(ds: Dataset, planned: Sequence[Job], relpwd: str) -> None:
    """No job may declare an output in a subdataset, the subdataset itself or a directory
    holding one: a job's worktree cannot record a subdataset's commit at both levels, so
    such an array is refused before anything runs (a loop of ``rr run`` records them)."""
    if not (ds.root / ".gitmodules").exists():
        return
    subs = [Path(p).parts for p in ds.subdatasets()]
    if not subs:
        return
    for job in planned:
        for out in job.outputs:
            p = os.path.normpath(os.path.join(relpwd, out.replace("{{", "{").replace("}}", "}")))
            parts = Path(p).parts if p != "." else ()
            for sub in subs:
                n = min(len(parts), len(sub))
                if all(fnmatch.fnmatchcase(s, o) for s, o in zip(sub[:n], parts[:n])):
                    where = "/".join(sub)
                    raise UsageError(
                        f"job {job.index} ({show_params(job.params)}): output {out!r} is in or "
                        f"holds the subdataset {where}: array jobs do not record into "
                        "subdatasets",
                        hint=f"run the array inside the subdataset (cd {shlex.quote(where)} "
                             "&& rr run --param ...), or a loop of rr run")


def dry_run(ds: Dataset, planned: Sequence[Job], relpwd: str) -> Iterator[Result]:
    for job in planned:
        yield Result("run", relpwd, "ok", "dry-run", message=job.cmd,
                     extra={"index": job.index, "params": job.params, "command": job.cmd,
                            "inputs": job.inputs, "outputs": job.outputs})


def start(ds: Dataset, planned: Sequence[Job], relpwd: str, *, cmd_message: str | None,
          options: dict[str, Any], command: str = "") -> jobs.JobsState:
    """Check the dataset and write the array's state; nothing has run yet."""
    preflight.check_run(ds)
    runop.ensure_clean(ds)  # jobs see the committed tree only
    base = ds.head()
    if base is None:
        raise RecorderError("the dataset has no commit yet", hint="save something first")
    branch = gitrepo.current_branch(ds.root)
    array_id = jobs.new_id()
    jobs.lock(ds, array_id)  # held until execute() ends
    state: jobs.JobsState = {
        "version": jobs.STATE_VERSION, "id": array_id, "base": base,
        "ref": f"refs/heads/{branch}" if branch else "HEAD", "pwd": relpwd,
        "options": options, "message": cmd_message, "command": command,
        "jobs": [{"index": j.index, "params": j.params, "cmd": j.cmd, "inputs": j.inputs,
                  "outputs": j.outputs, "message": j.message, "status": JobStatus.PENDING}
                 for j in planned]}
    jobs.save_state(ds, state)
    return state


def resume(ds: Dataset, array_id: str | None) -> jobs.JobsState:
    """The state of an unfinished array, its base moved to where its branch is now."""
    ids = jobs.unfinished(ds)
    if array_id is None:
        if not ids:
            raise RecorderError("there is no unfinished array job in this dataset")
        if len(ids) > 1:
            raise RecorderError(f"there are {len(ids)} unfinished arrays: {', '.join(ids)}",
                                hint="name one: rr run --continue ID")
        array_id = ids[0]
    jobs.check_id(array_id)
    if array_id not in ids:
        raise RecorderError(f"no unfinished array {array_id!r} in this dataset",
                            hint=f"unfinished: {', '.join(ids)}" if ids else None)
    jobs.lock(ds, array_id)  # a driver still running these jobs: refused here
    state = jobs.load_state(ds, array_id)
    preflight.check_run(ds)
    runop.ensure_clean(ds)
    ref = state["ref"]
    now = gitrepo.resolve_commit(ds.root, ref)
    branch = gitrepo.current_branch(ds.root)
    if (f"refs/heads/{branch}" if branch else "HEAD") != ref or now is None:
        raise RecorderError(f"array {state['id']} was started on {jobs.ref_name(ref)}; HEAD is "
                            f"on {branch or 'a detached HEAD'} now",
                            hint=f"check out {jobs.ref_name(ref)} first")
    state["base"] = now
    return state


def execute(ds: Dataset, state: jobs.JobsState, *, target: engine.Target = engine.SERIAL,
            on_event: OnEvent | None = None) -> Iterator[Result]:
    """Run the array's jobs that have not succeeded, then write the history of all.
    ``on_event``: first an ANNOUNCE of the jobs about to run (fields ``array``, ``jobs``),
    then the engine's JOB events (``index``: the job's index in the array).  The array's
    lock (taken by ``start`` or ``resume``) is held until the end."""
    try:
        jobs.lock(ds, state["id"])
        yield from _execute(ds, state, target, on_event)
    finally:
        jobs.unlock(ds, state["id"])


def _execute(ds: Dataset, state: jobs.JobsState, target: engine.Target,
             on_event: OnEvent | None) -> Iterator[Result]:
    array_id = state["id"]
    wtdir = str(jobs.job_dir(ds, array_id))
    done = jobs.kept(ds, array_id)
    todo = []
    for j in state["jobs"]:
        if jobs.job_ref(array_id, j["index"]) in done:
            j["status"] = JobStatus.OK
            continue
        if j["status"] in (JobStatus.COMMITTED, JobStatus.NOTNEEDED):
            continue
        if j.get("worktree"):  # the worktree a failed attempt kept
            gitrepo.worktree_remove(ds.root, j.pop("worktree"))
        j["status"] = JobStatus.PENDING
        todo.append(j)
    tasks = [JobTask(str(ds.root), wtdir, state["base"], j["index"], state["pwd"], j["cmd"],
                     tuple(j["inputs"]), tuple(j["outputs"]), j["message"], state["options"],
                     {"id": array_id, "index": j["index"], "params": j["params"]})
             for j in todo]
    by_index = {j["index"]: j for j in state["jobs"]}
    if tasks:  # what runs is shown before it runs
        emit(on_event, announce(f"{len(tasks)} job(s) of array {array_id}: "
                                f"{state.get('command') or tasks[0].cmd}",
                                array=array_id, jobs=len(tasks)))

    def event(e: Event) -> None:
        if on_event is not None:
            on_event(job_event(tasks[e.index].index, e.state, e.text))

    interrupted = False
    try:
        # one long-lived update-ref for the job refs (each on disk before its result is shown)
        with gitrepo.RefTransactions(ds.root) as refs:
            for pos, outcome in jobs.run_all(tasks, target, on_event=event):
                j = by_index[tasks[pos].index]
                _cache_notes(on_event, j, outcome)
                yield _record_outcome(ds, array_id, j, outcome, refs)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        jobs.save_state(ds, state)
    if interrupted:
        jobs.remove_worktrees(ds, state)
        n = sum(1 for j in state["jobs"] if j["status"] == JobStatus.OK)
        error = Interrupted(f"interrupted: the jobs were cancelled; {n} finished job(s) are "
                            f"kept under {jobs.JOB_REFS}/{array_id}/, nothing was written to "
                            "the branch")
        error.hint = f"run the rest and write the history with: rr run --continue {array_id}"
        raise error
    yield from finish(ds, state)


def _cache_notes(on_event: OnEvent | None, j: jobs.JobState,
                 outcome: JobOutcome | BaseException) -> None:
    """What the run-cache said in a job (restored from, or why it missed), as NOTE events
    marked ``verbose`` (shown with -v): jobs have no ``on_event`` of their own."""
    if on_event is None or not isinstance(outcome, JobOutcome):
        return
    for text in outcome.cache:
        emit(on_event, Event(EventKind.NOTE, f"job {j['index']} ({show_params(j['params'])}): "
                             f"{text}", {"verbose": True, "cache": "job", "index": j["index"]}))


def _record_outcome(ds: Dataset, array_id: str, j: jobs.JobState,
                    outcome: JobOutcome | BaseException,
                    refs: gitrepo.RefTransactions | None = None) -> Result:
    params = show_params(j["params"])
    extra: dict[str, Any] = {"id": array_id, "index": j["index"], "params": j["params"]}
    if isinstance(outcome, BaseException):
        j["status"] = JobStatus.FAILED
        j["error"] = (outcome.message if isinstance(outcome, RecorderError)
                      else f"{type(outcome).__name__}: {outcome}").splitlines()[0]
        return Result("run", f"job {j['index']}", ERROR, message=f"{params}: {j['error']}",
                      extra=extra)
    extra["duration"] = round(outcome.duration, 3)
    if outcome.cache:
        extra["cache"] = list(outcome.cache)
    if outcome.status == JobStatus.OK:
        assert outcome.commit is not None
        jobs.keep(ds, array_id, j["index"], outcome.commit, refs)
        j["status"] = JobStatus.OK
        j["duration"] = outcome.duration
        return Result("run", f"job {j['index']}", OK, "done", message=params,
                      extra={**extra, "job_commit": outcome.commit})
    if outcome.status == JobStatus.NOTNEEDED:
        j["status"] = JobStatus.NOTNEEDED
        return Result("run", f"job {j['index']}", NOTNEEDED, "unchanged",
                      message=f"{params}: the command changed nothing", extra=extra)
    j["status"] = JobStatus.FAILED
    j["error"] = outcome.message
    j["worktree"] = outcome.worktree
    where = f"its outputs and message are kept in {outcome.worktree}"
    return Result("run", f"job {j['index']}", ERROR,
                  message=f"{params}: {outcome.message}; {where}",
                  extra={**extra, "worktree": outcome.worktree, "hint": outcome.hint})


def finish(ds: Dataset, state: jobs.JobsState) -> Iterator[Result]:
    """Write the history of the finished jobs (row order), move the branch, update the main
    work tree, commit the git-annex journal, clean up."""
    array_id = state["id"]
    refs = jobs.kept(ds, array_id)
    ordered = [(j, refs[jobs.job_ref(array_id, j["index"])]) for j in state["jobs"]
               if jobs.job_ref(array_id, j["index"]) in refs]
    base = state["base"]
    again = f"rr run --continue {array_id}"
    interrupted = False
    tip: str | None = None
    try:
        tip = jobs.write_history(ds, state, ordered, what=f"rr run --array ({array_id})",
                                 hint=again)
    except KeyboardInterrupt:
        interrupted = True
    except (RecorderError, OSError) as exc:
        # no record lost: the finished jobs stay under their refs, --continue writes them
        error = exc if isinstance(exc, RecorderError) else RecorderError(
            f"the jobs' history could not be written: {exc.strerror or exc}")
        if again not in (error.hint or ""):
            kept = f"the finished jobs are kept under {jobs.JOB_REFS}/{array_id}/"
            error.hint = (f"{error.hint}; " if error.hint else "") + \
                f"{kept}; once the cause is fixed, write their history with: {again}"
        raise error from None
    finally:
        jobs.save_state(ds, state)
        jobs.remove_worktrees(ds, state)
    written = state["base"] != base
    failed = [j for j in state["jobs"]
              if j["status"] not in (JobStatus.COMMITTED, JobStatus.NOTNEEDED)]
    if not failed and (written or not ordered):
        jobs.state_path(ds, array_id).unlink(missing_ok=True)
        _rmdir(jobs.job_dir(ds, array_id))
    n = sum(1 for j in state["jobs"] if j["status"] == JobStatus.COMMITTED and j.get("new"))
    where = f" on {jobs.ref_name(state['ref'])} ({state['base'][:8]})"
    if interrupted:  # the signal waited for the branch, the work tree and the state file
        if written:
            error = Interrupted(f"interrupted after the jobs' history was written: {n} job(s) "
                                f"committed{where}")
            error.hint = f"{len(failed)} job(s) did not succeed: {again}" if failed else None
        else:
            error = Interrupted(f"interrupted before the jobs' history was written; the "
                                f"finished jobs are kept under {jobs.JOB_REFS}/{array_id}/")
            error.hint = f"write their history (and run the rest) with: {again}"
        raise error
    message = f"{n} job(s) committed" + (where if tip else "")
    if failed:
        message += (f"; {len(failed)} failed: {again} runs them again")
    yield Result("run-array", state["pwd"], ERROR if failed else OK, "done",
                 message=message, extra={"id": array_id, "commit": tip,
                                         "committed": n, "failed": len(failed)})


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


__all__ = ["Job", "expand_rows", "make_jobs", "check_overlaps", "plan", "dry_run", "start",
           "resume", "execute"]
