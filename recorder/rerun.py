"""Replaying run records: plan a revision range, then run, pick, skip or merge each commit.

The plan is DataLad's (spec §3): leading non-run commits are the base, run commits are
re-executed on top of the current head (or of ``--onto``/``--branch``), other commits are
skipped when already reachable and cherry-picked otherwise, merges are recreated.  A replay
that stops (a command fails differently than recorded, a cherry-pick conflicts) writes its
position to ``.git/rr-rerun.json`` so that ``rr rerun --continue`` resumes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import engine, gitrepo, jobs
from . import record as records
from .dataset import Dataset
from .jobs import JobOutcome, JobStatus, JobTask
from .errors import (EXIT_INTERRUPTED, CommandFailedError, Interrupted, RecorderError,
                     RecordError, RerunStoppedError, UsageError)
from .lock import dataset_lock
from .placeholders import PathList, QuotedPath, expand, substitutions
from .run import RunSpec, ensure_clean, execute, glob_specs
from .subdatasets import installed_paths

STATE_FILE = "rr-rerun.json"


@dataclass
class Step:
    action: str  # checkout | run | skip-or-pick | merge
    commit: str
    parents: list[str] = field(default_factory=list)
    author: str = ""
    date: str = ""
    run_message: str | None = None
    record: dict[str, Any] | None = None
    raw_message: str = ""
    note: str | None = None
    branch: str | None = None  # for checkout

    @property
    def subject(self) -> str:
        text = self.run_message if self.run_message is not None else self.raw_message
        return text.strip().splitlines()[0] if text.strip() else ""


@dataclass
class Plan:
    revision: str  # full sha
    range_desc: str
    steps: list[Step]
    since: str | None


@dataclass
class StepResult:
    index: int
    total: int
    action: str  # checkout | run | pick | skip | merge
    status: str  # ok | unchanged | skipped
    commit: str  # the original commit
    new_commit: str | None
    subject: str
    duration: float = 0.0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- planning ---------------------------------------------------------------------------


def _split_range(revision: str | None, since: str | None) -> tuple[str, str | None]:
    rev = revision or "HEAD"
    if ".." in rev and "..." not in rev:
        left, right = rev.split("..", 1)
        if since is not None:
            raise UsageError("give either a range A..B or --since, not both")
        return right or "HEAD", left or "HEAD"
    return rev, since


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def build_plan(ds: Dataset, revision: str | None = None, since: str | None = None, *,
               lenient: bool = False) -> Plan:
    """The steps of a replay; every record of the range is read and validated here, before
    anything runs.  A malformed record is an error, or with ``lenient`` (report, script) a
    step that is not re-executed and carries a note."""
    if ds.head() is None:
        raise RecorderError("cannot rerun: nothing recorded yet (the dataset has no commits)")
    rev, since = _split_range(revision, since)
    rev_sha = gitrepo.resolve_commit(ds.root, rev)
    if rev_sha is None:
        raise UsageError(f"unknown revision: {_short(rev)}")
    head_entry = gitrepo.iter_log(ds.root, [rev_sha], extra=["-1", "--no-walk"])[0]
    if not head_entry.parents:
        revs, desc = [rev_sha], rev
    elif since is None:
        revs, desc = [f"{rev_sha}^..{rev_sha}"], f"{rev}^..{rev}"
    elif since.strip() == "":
        revs, desc = [rev_sha], f"all history up to {rev}"
    else:
        since_sha = gitrepo.resolve_commit(ds.root, since)
        if since_sha is None:
            raise UsageError(f"unknown revision: {_short(since)}")
        revs, desc = [f"{since_sha}..{rev_sha}"], f"{since}..{rev}"
    entries = gitrepo.iter_log(ds.root, revs)
    record_dir = ds.record_directory()
    dsid = ds.id
    steps: list[Step] = []
    for e in entries:
        step = Step("skip-or-pick", e.sha, list(e.parents), e.author, e.date,
                    raw_message=e.message)
        try:
            loaded = records.load_record(e.message, ds.root, record_dir, commit=e.sha)
            if loaded is not None and "pwd" not in loaded[1]:
                raise RecordError(f"commit {e.sha[:10]} has a malformed run record: "
                                  "no 'pwd' field")
        except RecordError as exc:
            if not lenient:
                raise
            loaded = None
            step.note = exc.message
        if loaded is not None:
            message, rec = loaded
            step.run_message = message
            step.record = rec
            if not e.parents:
                step.note = "has a run record but is a root commit; not re-executed"
            elif len(e.parents) > 2:
                step.note = "has a run record but is an octopus merge; not re-executed"
            elif rec.get("dsid") and dsid and rec["dsid"] != dsid:
                step.note = "was run in a different dataset; skipped or cherry-picked"
            else:
                step.action = "run"
        if step.action != "run" and len(e.parents) > 1:
            step.action = "merge"
        steps.append(step)
    if not any(s.action == "run" for s in steps):
        if any(s.record is not None for s in steps):
            raise RecorderError(f"no run commit in {desc} can be re-executed in this dataset")
        if lenient and any(s.note for s in steps):
            return Plan(rev_sha, desc, [s for s in steps if s.note], since)
        raise RecorderError(f"no run commits found in {desc}",
                            hint="give a range (A..B) or --since to replay more history")
    if since is None or since.strip() == "":
        while steps and steps[0].action != "run" and not (
                lenient and steps[0].note and steps[0].record is None):
            steps.pop(0)
    return Plan(rev_sha, desc, steps, since)


def _resolve_onto(ds: Dataset, plan: Plan, onto: str | None) -> str | None:
    if onto is None:
        return None
    if onto.strip() == "":
        first = next((s for s in plan.steps if s.action == "run"), None)
        if first is None:
            raise RecorderError("--onto= needs a run commit in the range, and there is none")
        if not first.parents:
            raise RecorderError("--onto= needs a parent of the first run commit, but it is a root")
        return first.parents[0]
    sha = gitrepo.resolve_commit(ds.root, onto)
    if sha is None:
        raise UsageError(f"revision given for --onto does not exist: {_short(onto)}")
    return sha


# --- report -----------------------------------------------------------------------------


def report(ds: Dataset, revision: str | None = None, *, since: str | None = None,
           onto: str | None = None, branch: str | None = None) -> Iterator[dict[str, Any]]:
    """One dict per step of the plan, nothing executed."""
    plan = build_plan(ds, revision, since, lenient=True)
    start = _resolve_onto(ds, plan, onto)
    head = ds.head()
    base = start or head
    if start is not None or branch is not None:
        yield {"action": "checkout", "commit": base, "branch": branch}
    reachable: set[str] | None = None
    if base and not gitrepo.is_ancestor(ds.root, plan.revision, base):
        reachable = set(gitrepo.rev_list(ds.root, [base]))
    for step in plan.steps:
        out: dict[str, Any] = {
            "action": step.action, "commit": step.commit, "parents": step.parents,
            "author": step.author, "date": step.date, "subject": step.subject,
        }
        if step.action == "skip-or-pick":
            out["action"] = "skip" if reachable is None or step.commit in reachable else "pick"
        if step.record is not None:
            out["record"] = step.record
            out["run_message"] = step.run_message
        if step.note:
            out["note"] = step.note
        yield out


# --- script -----------------------------------------------------------------------------


class _ShellVar(str):
    """A value inserted as a shell variable reference (not quoted)."""


def script(ds: Dataset, revision: str | None = None, *, since: str | None = None,
           script_name: str = "-") -> str:
    """A POSIX shell script that reproduces the run commits of the range."""
    plan = build_plan(ds, revision, since, lenient=True)
    args = f"--script={script_name}" + (f" --since={since}" if since is not None else "")
    where = f"dataset {ds.id} at {ds.root}" if ds.id else f"dataset at {ds.root}"
    lines = [
        "#!/bin/sh",
        "#",
        "# This file was generated by running (the equivalent of)",
        "#",
        f"#   rr rerun {args} {plan.revision}",
        "#",
        f"# in {where}",
    ]
    subs = substitutions(ds.config.values)
    for step in plan.steps:
        if step.action != "run" or step.record is None:
            if step.note and step.record is None and step.run_message is None \
                    and step.raw_message.startswith(records.TAG):
                lines += ["", f"# (record: {step.commit}) not included: {step.note}"]
            continue
        rec = step.record
        pwd = Path(os.path.normpath(ds.root / rec.get("pwd", ".")))
        try:
            ins = glob_specs(rec.get("inputs") or [], pwd, ds)
            outs = glob_specs(rec.get("outputs") or [], pwd, ds)
        except RecorderError as exc:
            lines += ["", f"# (record: {step.commit}) not included: {exc.message}"]
            continue
        values: dict[str, Any] = dict(subs)
        values.update(pwd=QuotedPath(str(pwd)), dspath=QuotedPath(str(ds.root)),
                      tmpdir=_ShellVar('"$rr_tmpdir"'),
                      inputs=PathList(ins.hits + ins.unmatched),
                      outputs=PathList(outs.hits + outs.unmatched))
        try:
            command = expand(rec["cmd"], values)
        except RecorderError as exc:
            lines += ["", f"# (record: {step.commit}) not included: {exc.message}"]
            continue
        lines.append("")
        message = step.run_message or ""
        if message and message != records.shorty(command):
            lines += [f"# {line}".rstrip() for line in message.splitlines()]
        else:
            lines.append("")
        lines.append(f"# (record: {step.commit})")
        if not ds.contains(pwd):
            lines.append(f"# note: the recorded directory is outside the dataset: {pwd}")
        lines.append(f"cd {shlex.quote(str(pwd))} || exit 1")
        uses_tmp = "$rr_tmpdir" in command
        if uses_tmp:
            lines.append('rr_tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/rr-run-XXXXXXXX") || exit 1')
        lines.append(command)
        if uses_tmp:
            lines.append('rm -rf "$rr_tmpdir"')
    return "\n".join(lines) + "\n"


# --- execution --------------------------------------------------------------------------

_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@dataclass
class _Replay:
    ds: Dataset
    steps: list[Step]
    mapping: dict[str, str]  # original commit -> its replacement (DataLad's new_bases)
    start: str  # DataLad's "onto": where the replay started
    head: str
    branch_name: str | None  # the branch that ends at the replay's tip (None: detached)
    message: str | None
    explicit: bool
    assume_ready: str | None
    total: int
    done: int = 0
    pick_base: str | None = None
    origin_branch: str | None = None  # where the user was: the branch checked out ...
    origin_sha: str = ""  # ... and its commit
    new_branch: bool = False  # branch_name was created by --branch
    touched: list[str] = field(default_factory=list)  # paths the stopped step changed
    interrupted: bool = False
    notify: Callable[[int, int, Step], None] | None = None
    announce: Callable[[str], None] | None = None
    warn: Callable[[str], None] | None = None
    saved: bool = False
    target: engine.Target = engine.SERIAL  # --jobs / --scheduler: where an array's jobs run

    def save_state(self, failed: Step, *, touched: Sequence[str] = (),
                   interrupted: bool = False) -> None:
        remaining = self.steps[self.steps.index(failed):] if failed in self.steps else []
        self.touched = sorted(set(self.touched) | set(touched))
        self.interrupted = interrupted
        data = {"steps": [asdict(s) for s in remaining], "mapping": self.mapping,
                "start": self.start, "head": self.head, "branch_name": self.branch_name,
                "message": self.message, "explicit": self.explicit,
                "assume_ready": self.assume_ready, "total": self.total, "done": self.done,
                "pick_base": self.pick_base, "origin_branch": self.origin_branch,
                "origin_sha": self.origin_sha, "new_branch": self.new_branch,
                "touched": self.touched, "interrupted": self.interrupted}
        path = self.ds.git_dir / STATE_FILE
        tmp = path.with_name(STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)
        self.saved = True

    @classmethod
    def load(cls, ds: Dataset) -> _Replay:
        path = ds.git_dir / STATE_FILE
        if not path.exists():
            raise RecorderError("no stopped replay to continue in this dataset")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(ds=ds, **_check_state(data))
        except (ValueError, TypeError, KeyError, RecursionError, RecordError) as exc:
            detail = exc.message if isinstance(exc, RecordError) else str(exc) or type(exc).__name__
            raise RecorderError(f"the stopped replay's state file .git/{STATE_FILE} is damaged: "
                                f"{detail}",
                                hint="drop it with 'rr rerun --abort' (the dataset stays as it "
                                     "is)") from None


def _check_state(data: Any) -> dict[str, Any]:
    """The state file's content as keyword arguments of _Replay; ValueError if malformed."""
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(what)

    def sha(value: Any, name: str, optional: bool = False) -> None:
        if optional and value is None:
            return
        need(isinstance(value, str) and bool(_SHA_RE.fullmatch(value)),
             f"'{name}' is not a commit id")

    def opt_str(value: Any, name: str) -> None:
        need(value is None or isinstance(value, str), f"'{name}' is not a string")

    need(isinstance(data, dict), "not a JSON object")
    for key in ("steps", "mapping", "start", "head", "branch_name", "message", "explicit",
                "assume_ready", "total", "done", "pick_base"):
        need(key in data, f"'{key}' is missing")
    need(isinstance(data["steps"], list), "'steps' is not a list")
    steps = []
    for raw in data["steps"]:
        need(isinstance(raw, dict), "a step is not an object")
        need(set(raw) <= {f.name for f in fields(Step)}, "a step has unknown keys")
        need(raw.get("action") in ("run", "skip-or-pick", "merge"), "a step has a bad action")
        sha(raw.get("commit"), "commit")
        need(isinstance(raw.get("parents", []), list), "a step's parents are not a list")
        for p in raw.get("parents", []):
            sha(p, "parents")
        for key in ("author", "date", "raw_message"):
            need(isinstance(raw.get(key, ""), str), f"a step's '{key}' is not a string")
        for key in ("run_message", "note", "branch"):
            opt_str(raw.get(key), key)
        rec = raw.get("record")
        if rec is not None:
            need(isinstance(rec, dict), "a step's record is not an object")
            records.validate(rec)
            need("pwd" in rec, "a step's record has no 'pwd'")
        elif raw["action"] == "run":
            raise ValueError("a run step has no record")
        steps.append(Step(**raw))
    need(isinstance(data["mapping"], dict), "'mapping' is not an object")
    for k, v in data["mapping"].items():
        sha(k, "mapping")
        sha(v, "mapping")
    sha(data["start"], "start")
    sha(data["head"], "head")
    sha(data["pick_base"], "pick_base", optional=True)
    for key in ("branch_name", "message", "origin_branch"):
        opt_str(data.get(key), key)
    need(data.get("assume_ready") in (None, "inputs", "outputs", "both"), "'assume_ready' is bad")
    need(isinstance(data["explicit"], bool), "'explicit' is not true or false")
    for key in ("total", "done"):
        need(isinstance(data[key], int) and not isinstance(data[key], bool) and data[key] >= 0,
             f"'{key}' is not a count")
    origin = data.get("origin_sha") or data["start"]
    sha(origin, "origin_sha")
    touched = data.get("touched", [])
    need(isinstance(touched, list) and all(isinstance(t, str) and _safe_rel(t) for t in touched),
         "'touched' is not a list of dataset paths")
    for key in ("new_branch", "interrupted"):
        need(isinstance(data.get(key, False), bool), f"'{key}' is not true or false")
    return {"steps": steps, "mapping": dict(data["mapping"]), "start": data["start"],
            "head": data["head"], "branch_name": data["branch_name"],
            "message": data["message"], "explicit": data["explicit"],
            "assume_ready": data["assume_ready"], "total": data["total"], "done": data["done"],
            "pick_base": data["pick_base"], "origin_branch": data.get("origin_branch"),
            "origin_sha": origin, "new_branch": data.get("new_branch", False),
            "touched": list(touched), "interrupted": data.get("interrupted", False)}


def _safe_rel(path: str) -> bool:
    norm = os.path.normpath(path)
    return bool(path) and not os.path.isabs(norm) and norm != ".." and \
        not norm.startswith("../") and "\0" not in path


def _clear_state(ds: Dataset) -> None:
    (ds.git_dir / STATE_FILE).unlink(missing_ok=True)


def has_stopped_replay(ds: Dataset) -> bool:
    return (ds.git_dir / STATE_FILE).exists()


# --- moving HEAD (under the dataset lock, so that no run can start in between) -----------


def _checkout(ds: Dataset, rev: str, *, new_branch: str | None = None) -> None:
    with dataset_lock(ds.git_dir):
        gitrepo.checkout(ds.root, rev, new_branch=new_branch, detach=new_branch is None)


def _checkout_branch(ds: Dataset, branch: str, at: str | None = None) -> None:
    """Check ``branch`` out; with ``at``, point it there first (only ever a branch rr may
    move: the one replayed in place, or the new --branch)."""
    with dataset_lock(ds.git_dir):
        if at is None:
            gitrepo.call_git(["checkout", "-q", branch, "--"], ds.root)
        else:
            gitrepo.set_branch_and_checkout(ds.root, branch, at)


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop a replay like Ctrl-C does (so its state is saved)."""
    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:  # not in the main thread
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --- the replay -------------------------------------------------------------------------


def rerun(ds: Dataset, revision: str | None = None, *, since: str | None = None,
          onto: str | None = None, branch: str | None = None, message: str | None = None,
          explicit: bool = False, assume_ready: str | None = None,
          continue_: bool = False,
          notify: Callable[[int, int, Step], None] | None = None,
          announce: Callable[[str], None] | None = None,
          warn: Callable[[str], None] | None = None,
          target: engine.Target = engine.SERIAL) -> Iterator[StepResult]:
    """Replay the plan step by step, yielding one result per step.

    ``notify(index, total, step)`` is called before each step starts (for progress),
    ``announce(command)`` with each expanded command just before it executes, ``warn(text)``
    with a warning about a step (e.g. a recorded directory outside the dataset).  ``target``
    (``engine.check(jobs, scheduler)``) parallel: the consecutive jobs of one array run in
    parallel on Dask (see ``_batch``), with the same result as one after the other.
    """
    if continue_:
        if revision or since is not None or onto is not None or branch:
            raise UsageError("--continue takes no revision, --since, --onto or --branch")
        yield from _continue(ds, notify, announce, warn, target)
        return
    if has_stopped_replay(ds):
        raise RecorderError("a stopped replay is waiting in this dataset",
                            hint="finish it with 'rr rerun --continue' or drop it with "
                                 "'rr rerun --abort'")
    if gitrepo.sequencer_in_progress(ds.root):
        raise RecorderError("a cherry-pick or merge is in progress in this dataset",
                            hint="finish or abort it first")
    _ensure_no_run_going(ds)
    plan = build_plan(ds, revision, since)
    for step in plan.steps:
        if step.action == "run":
            _check_pwd(ds, step)
    needs_clean = not explicit and any(
        s.action == "run" and not (s.record or {}).get("rr", {}).get("explicit")
        for s in plan.steps)
    if needs_clean:
        ensure_clean(ds)
    if branch and (len(branch.encode("utf-8", "surrogateescape")) > 200 or
                   not gitrepo.check_ref_format_tag(ds.root, branch)):
        raise UsageError(f"not a valid branch name: {_short(branch)!r}")
    if branch and gitrepo.branch_exists(ds.root, branch):
        raise RecorderError(f"branch '{branch}' already exists")
    start_sha = _resolve_onto(ds, plan, onto)
    origin_branch = gitrepo.current_branch(ds.root)
    origin_sha = ds.head()
    assert origin_sha is not None
    # only the branch replayed in place, or the new --branch, is ever moved
    branch_name = branch or (origin_branch if start_sha is None else None)
    total = len(plan.steps) + (1 if (branch or start_sha) else 0)
    replay = _Replay(ds, plan.steps, {}, origin_sha, origin_sha, branch_name, message,
                     explicit, assume_ready, total, 0, origin_branch=origin_branch,
                     origin_sha=origin_sha, new_branch=bool(branch), notify=notify,
                     announce=announce, warn=warn, target=target)
    if branch or start_sha:
        at = start_sha or origin_sha
        _checkout(ds, at, new_branch=branch)
        replay.start = replay.head = at
        replay.done = 1
        yield StepResult(1, total, "checkout", "ok", at, at,
                         f"start at {at[:10]}" + (f" on new branch {branch}" if branch else ""))
    yield from _drive(replay)


def _check_pwd(ds: Dataset, step: Step) -> None:
    """A recorded directory outside the dataset must exist (it is never created)."""
    pwd = Path(os.path.normpath(ds.root / (step.record or {}).get("pwd", ".")))
    if not ds.contains(pwd) and not pwd.is_dir():
        raise RecorderError(f"commit {step.commit[:10]} runs its command in {pwd}, outside the "
                            "dataset, and that directory does not exist",
                            hint="create it, or replay a range without this commit")


def _ensure_no_run_going(ds: Dataset) -> None:
    """A replay moves HEAD: an ``rr run --explicit`` still going would then find its branch
    gone from under it (it would keep its record, but not commit it); wait for it instead."""
    from .lock import inflight_runs

    going = inflight_runs(ds.git_dir)
    if going:
        raise RecorderError(f"an rr run is still going in this dataset (pid {going[0].pid}: "
                            f"{going[0].command[:60]})",
                            hint="let it finish, then rerun; a replay moves HEAD under it")


def _continue(ds: Dataset, notify: Callable[[int, int, Step], None] | None,
              announce: Callable[[str], None] | None,
              warn: Callable[[str], None] | None,
              target: engine.Target = engine.SERIAL) -> Iterator[StepResult]:
    replay = _Replay.load(ds)
    replay.notify, replay.announce, replay.warn = notify, announce, warn
    replay.target = target
    _ensure_no_run_going(ds)
    if gitrepo.sequencer_in_progress(ds.root):
        raise RecorderError("a cherry-pick or merge is still in progress",
                            hint="finish it (git cherry-pick --continue / git commit) or abort "
                                 "it, then run 'rr rerun --continue' again")
    if replay.interrupted and replay.touched:
        # an interrupted step starts again from scratch: its partial changes go
        _restore(ds, replay.touched)
    replay.touched, replay.interrupted = [], False
    if not replay.explicit and any(s.action == "run" for s in replay.steps):
        ensure_clean(ds)
    current = ds.head()
    assert current is not None
    first = replay.steps[0] if replay.steps else None
    if first is not None and first.action in ("skip-or-pick", "merge") and replay.pick_base \
            and current != replay.pick_base:
        # the user finished the conflicted cherry-pick or merge: that step is done
        replay.mapping[first.commit] = current
        replay.head = current
        replay.steps.pop(0)
        replay.done += 1
    elif current != replay.head and gitrepo.is_ancestor(ds.root, replay.head, current):
        # the user committed a fix on top of where the replay stopped: build on it
        for k, v in list(replay.mapping.items()):
            if v == replay.head:
                replay.mapping[k] = current
        replay.head = current
    replay.pick_base = None
    yield from _drive(replay)


def _drive(replay: _Replay) -> Iterator[StepResult]:
    ds = replay.ds
    with _signals_interrupt():
        while replay.steps:
            step = replay.steps[0]
            started = time.monotonic()
            index = replay.done + 1
            replay.saved = False
            batch = _batch(replay)
            if batch:
                yield from _drive_batch(replay, batch)
                continue
            try:
                if replay.notify is not None:
                    replay.notify(index, replay.total, step)
                if step.action == "run":
                    result = _replay_run(replay, step, index)
                elif step.action == "merge":
                    result = _replay_merge(replay, step, index)
                else:
                    result = _replay_other(replay, step, index)
            except KeyboardInterrupt:
                if not replay.saved:  # interrupted outside the command: nothing it changed
                    replay.save_state(step, interrupted=True)
                raise _interrupted_at(step, index, replay.total) from None
            except RecorderError as exc:
                if not replay.saved:
                    replay.save_state(step)
                    exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
                        f"the replay stopped at {step.commit[:10]} ({index}/{replay.total}): " \
                        "resume with 'rr rerun --continue' or give up with 'rr rerun --abort'"
                raise
            except BaseException:
                if not replay.saved:
                    replay.save_state(step)
                raise
            result.duration = time.monotonic() - started
            replay.steps.pop(0)
            replay.done += 1
            yield result
        _clear_state(ds)
        _finish(replay)


def _finish(replay: _Replay) -> None:
    """The branch that ends at the tip: the new --branch, or the branch replayed in place
    (only when the tip still contains that branch's commits); otherwise HEAD stays detached."""
    ds = replay.ds
    name = replay.branch_name
    if not name or gitrepo.current_branch(ds.root) == name:
        return
    tip = gitrepo.resolve_commit(ds.root, f"refs/heads/{name}")
    if tip is not None and not replay.new_branch and \
            not gitrepo.is_ancestor(ds.root, tip, replay.head) and \
            _rewritten_run_merges(replay, tip):
        # DataLad >= 1.6 (spec §3 rule 22): a run-merge is replayed from its first parent and
        # the branch ends on the new merge; the replaced one stays reachable from the reflog
        if replay.warn is not None:
            replay.warn(f"{name} now ends at the replayed run-merge {replay.head[:10]} instead "
                        f"of {tip[:10]} (as DataLad does); to keep the original: "
                        f"git branch <name> {tip[:10]}")
    elif tip is not None and not replay.new_branch and \
            not gitrepo.is_ancestor(ds.root, tip, replay.head):
        if replay.warn is not None:
            replay.warn(f"the replay's result {replay.head[:10]} does not contain {name}'s "
                        f"commit {tip[:10]}: {name} is left where it was and HEAD is "
                        "detached at the result")
        return
    _checkout_branch(ds, name, replay.head)


def _rewritten_run_merges(replay: _Replay, tip: str) -> bool:
    """Whether every commit that ``tip``'s branch would lose by moving to the replay's result
    is a two-parent commit (a run-merge) this replay re-executed into a new one."""
    lines = gitrepo.call_git_lines(["rev-list", "--first-parent", "--parents", tip,
                                    f"^{replay.head}", "--"], replay.ds.root)
    return bool(lines) and all(
        len(line.split()) == 3 and line.split()[0] in replay.mapping for line in lines)


def _base_for(replay: _Replay, step: Step) -> tuple[str | None, bool]:
    """Put HEAD on the base a run or non-run commit is replayed on (DataLad's rules, spec
    §3 rule 15-16).  Returns (head to go back to if the commit is skipped, skip now)."""
    ds = replay.ds
    parent = step.parents[0]
    new_base = replay.mapping.get(parent)
    if step.action == "run" and len(step.parents) > 1:
        # a run-merge: recreate the state before the command, on the (mapped) first parent
        target = new_base or parent
        if target != replay.head:
            _checkout(ds, target)
            replay.head = target
        return None, False
    if new_base:
        if new_base != replay.head:
            _checkout(ds, new_base)
            previous, replay.head = replay.head, new_base
            return previous, False
        return None, False
    if parent != replay.head and gitrepo.is_ancestor(ds.root, replay.start, parent):
        if step.action == "run":
            _checkout(ds, parent)  # replay in place on the original parent
            replay.head = parent
            return None, False
        return None, True
    if parent != replay.head:
        replay.mapping[parent] = replay.head
    return None, False


def _interrupted_at(step: Step, position: int, total: int) -> RerunStoppedError:
    """The error of a replay interrupted at ``step`` (one at a time or in a parallel batch)."""
    return RerunStoppedError(
        f"replay interrupted at {step.commit[:10]} ({position}/{total})",
        hint="resume with 'rr rerun --continue' (the step starts again), or give "
             "up with 'rr rerun --abort'", exit_code=EXIT_INTERRUPTED)


def _replay_run(replay: _Replay, step: Step, index: int) -> StepResult:
    ds = replay.ds
    _base_for(replay, step)
    spec = _replay_spec(replay, step)
    before = set(_dirty_recursive(ds))
    return _replay_step_run(replay, step, index, spec, before)


def _replay_spec(replay: _Replay, step: Step) -> RunSpec:
    """The run of a record as it is replayed (on the base _base_for chose); warns about its
    directory."""
    ds = replay.ds
    rec = step.record or {}
    rr_info = dict(rec.get("rr") or {})
    was_explicit = bool(rr_info.pop("explicit", False))
    rr_info.pop("duration", None)
    outputs = list(rec.get("outputs") or [])
    pwd = Path(os.path.normpath(ds.root / rec.get("pwd", ".")))
    if not ds.contains(pwd):
        _warn(replay, f"commit {step.commit[:10]} runs its command outside the dataset, "
                      f"in {pwd}")
    elif not pwd.is_dir():
        _warn(replay, f"commit {step.commit[:10]} runs its command in {pwd}, which does not "
                      "exist in this tree; it is created")
    parent = step.parents[0] if step.parents else None
    extra_unlock = _changed_files_recursive(ds, parent, step.commit)
    extra_unlock += [p for p in _declared_in_subdatasets(ds, pwd, outputs)
                     if p not in extra_unlock]
    spec = RunSpec(
        cmd=rec["cmd"], pwd=pwd, inputs=list(rec.get("inputs") or []), outputs=outputs,
        extra_inputs=list(rec.get("extra_inputs") or []),
        message=replay.message if replay.message is not None else step.run_message,
        explicit=replay.explicit or was_explicit, assume_ready=replay.assume_ready,
        chain=list(rec.get("chain") or []) + [step.commit],
        expected_exit=int(rec.get("exit", 0) or 0), extra_unlock=extra_unlock,
        rr_info=rr_info,
    )
    if rr_info.get("container"):
        from .containers import registry

        spec = registry.prepare_rerun(ds, spec, rr_info)
    return spec


def _replay_step_run(replay: _Replay, step: Step, index: int, spec: RunSpec,
                     before: set[str]) -> StepResult:
    ds = replay.ds
    try:
        result = execute(ds, spec, announce=replay.announce)
    except CommandFailedError as exc:
        replay.save_state(step, touched=_touched_since(ds, before))
        raise RerunStoppedError(
            f"replay stopped at {step.commit[:10]} ({index}/{replay.total}) "
            f"'{step.subject}': {exc.message}",
            hint="the failed step's changes are left for inspection; fix the cause (discard "
                 "or save those changes), then resume with 'rr rerun --continue', or give up "
                 "with 'rr rerun --abort'",
            exit_code=exc.exit_code) from None
    except Interrupted:
        replay.save_state(step, touched=_touched_since(ds, before), interrupted=True)
        raise RerunStoppedError(
            f"replay interrupted at {step.commit[:10]} ({index}/{replay.total}) "
            f"'{step.subject}'",
            hint="resume with 'rr rerun --continue' (the step starts again), or give up with "
                 "'rr rerun --abort'", exit_code=EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        replay.save_state(step, touched=_touched_since(ds, before), interrupted=True)
        raise
    except RecorderError as exc:
        replay.save_state(step, touched=_touched_since(ds, before))
        exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
            f"the replay stopped at {step.commit[:10]} ({index}/{replay.total}): resume with " \
            "'rr rerun --continue' or give up with 'rr rerun --abort'"
        raise
    new_head = ds.head()
    assert new_head is not None
    if new_head not in (replay.head, step.commit):
        replay.mapping[step.commit] = new_head
    replay.head = new_head
    if result.status == "notneeded":
        return StepResult(index, replay.total, "run", "unchanged", step.commit, None,
                          step.subject, note="; ".join(
                              ["outputs identical to the recorded ones", *result.notes]))
    notes = [n for n in [step.note, *result.notes] if n]
    return StepResult(index, replay.total, "run", "ok", step.commit, new_head, step.subject,
                      note="; ".join(notes) or None)


def _warn(replay: _Replay, text: str) -> None:
    if replay.warn is not None:
        replay.warn(text)


def _replay_other(replay: _Replay, step: Step, index: int) -> StepResult:
    ds = replay.ds
    if not step.parents:
        return StepResult(index, replay.total, "skip", "skipped", step.commit, None,
                          step.subject, note=step.note)
    back_to, skip = _base_for(replay, step)
    if skip or gitrepo.is_ancestor(ds.root, step.commit, replay.head):
        if back_to is not None:
            _checkout(ds, back_to)
            replay.head = back_to
        return StepResult(index, replay.total, "skip", "skipped", step.commit, None,
                          step.subject, note=step.note)
    replay.pick_base = replay.head
    with dataset_lock(ds.git_dir):
        proc = gitrepo.cherry_pick(ds.root, step.commit)
    if proc.returncode != 0:
        replay.save_state(step)
        detail = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip().splitlines()
        raise RerunStoppedError(
            f"replay stopped at {step.commit[:10]} ({index}/{replay.total}): cherry-pick "
            f"failed: {detail[0] if detail else 'conflict'}",
            hint="resolve it and 'git cherry-pick --continue' (or 'git cherry-pick --abort'), "
                 "then 'rr rerun --continue'; or give up with 'rr rerun --abort'")
    replay.pick_base = None
    new_head = ds.head()
    assert new_head is not None
    if new_head != replay.head:
        replay.mapping[step.commit] = new_head
    replay.head = new_head
    return StepResult(index, replay.total, "pick", "ok", step.commit, new_head, step.subject,
                      note=step.note)


def _replay_merge(replay: _Replay, step: Step, index: int) -> StepResult:
    """A non-run merge, as DataLad replays it (spec §3 rule 17)."""
    ds = replay.ds
    mapped = [replay.mapping.get(p, p) for p in step.parents]
    if mapped == step.parents:
        if not gitrepo.is_ancestor(ds.root, step.commit, replay.head):
            _checkout(ds, step.commit)
            replay.head = step.commit
        return StepResult(index, replay.total, "merge", "skipped", step.commit, None,
                          step.subject, note="fast-forward to the original merge")
    if step.commit == replay.head:
        return StepResult(index, replay.total, "merge", "skipped", step.commit, None,
                          step.subject)
    if gitrepo.is_ancestor(ds.root, step.commit, replay.start):
        mapped = [p for p in mapped if not gitrepo.is_ancestor(ds.root, p, replay.start)]
    if not mapped:
        return StepResult(index, replay.total, "merge", "skipped", step.commit, None,
                          step.subject)
    if mapped[0] != replay.head:
        _checkout(ds, mapped[0])  # keep the direction of the original merge
        replay.head = mapped[0]
    if len(mapped) > 1:
        replay.pick_base = replay.head
        with dataset_lock(ds.git_dir):
            proc = gitrepo.merge(ds.root, mapped[1:], step.raw_message.rstrip("\n"))
        if proc.returncode != 0:
            replay.save_state(step)
            raise RerunStoppedError(
                f"replay stopped at {step.commit[:10]} ({index}/{replay.total}): merge failed",
                hint="resolve the conflict and commit, then 'rr rerun --continue'; or give up "
                     "with 'rr rerun --abort'")
        replay.pick_base = None
    new_head = ds.head()
    assert new_head is not None
    replay.mapping[step.commit] = new_head
    replay.head = new_head
    return StepResult(index, replay.total, "merge", "ok" if len(mapped) > 1 else "skipped",
                      step.commit, new_head if len(mapped) > 1 else None, step.subject)


# --- parallel jobs (--jobs) -------------------------------------------------------------


def _array_of(step: Step) -> str | None:
    """The id of the array a run step's record belongs to (rr.array.id), or None."""
    if step.action != "run":
        return None
    info = (step.record or {}).get("rr")
    arr = info.get("array") if isinstance(info, dict) else None
    aid = arr.get("id") if isinstance(arr, dict) else None
    return aid if isinstance(aid, str) and aid else None


def _batch(replay: _Replay) -> list[Step]:
    """The steps at the front of the plan that run as one parallel batch (at least two):
    consecutive records of one array, each made on the one before (as the array wrote them),
    their commands inside a dataset without subdatasets.  The serial replay runs each of them
    on the result of the one before, the first on the base chosen as for any step; the jobs
    of an array are independent (disjoint outputs, one base), so running them all on that
    base and writing their commits in order gives the same records and trees.  One exception
    is left to the serial replay: when the replay started at or before a job's original
    commit (--onto at the array's base), a job with an unchanged result makes the serial
    replay go on from the original commit."""
    if not replay.target.parallel:
        return []
    ds = replay.ds
    first = replay.steps[0]
    aid = _array_of(first)
    if aid is None or len(first.parents) != 1 or (ds.root / ".gitmodules").exists():
        return []

    def inside(step: Step) -> bool:
        return ds.contains(Path(os.path.normpath(ds.root / (step.record or {}).get("pwd", "."))))

    if not inside(first):
        return []
    batch = [first]
    for step in replay.steps[1:]:
        if _array_of(step) != aid or step.parents != [batch[-1].commit] or not inside(step) \
                or gitrepo.is_ancestor(ds.root, replay.start, batch[-1].commit):
            break
        batch.append(step)
    return batch if len(batch) > 1 else []


def _drive_batch(replay: _Replay, batch: list[Step]) -> Iterator[StepResult]:
    """Run a batch, then yield its steps' results in order; a failed job stops the replay
    after the results of the steps before it, as a failed command stops the serial one."""
    try:
        results, error = _run_batch(replay, batch)
    except KeyboardInterrupt:
        if not replay.steps:  # interrupted at the very end: the replay is done
            raise
        step = replay.steps[0]
        if not replay.saved:  # no job's result is kept: the batch starts again
            replay.save_state(step, interrupted=True)
        raise _interrupted_at(step, replay.done + 1, replay.total) from None
    except RecorderError as exc:
        step = replay.steps[0] if replay.steps else batch[-1]
        if not replay.saved and replay.steps:
            replay.save_state(step)
            exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
                f"the replay stopped at {step.commit[:10]} ({replay.done + 1}/" \
                f"{replay.total}): resume with 'rr rerun --continue' or give up with " \
                "'rr rerun --abort'"
        raise
    except BaseException:
        if not replay.saved and replay.steps:
            replay.save_state(replay.steps[0])
        raise
    yield from results
    if error is not None:
        if getattr(error, "later_jobs", ""):
            _warn(replay, error.later_jobs)  # type: ignore[attr-defined]
        raise error


def _shown_command(ds: Dataset, spec: RunSpec) -> str:
    """The command as the serial replay would announce it (the temporary directory, made
    by each job, shown as {tmpdir})."""
    from .run import command_values
    from .run import plan as run_plan

    try:
        p = run_plan(ds, spec, for_dry_run=True)
        command = expand(spec.cmd, command_values(ds, spec, p.in_hits, p.out_hits, "{tmpdir}"))
    except RecorderError:
        return spec.cmd
    if "datalad_container.adapters.docker" in command:
        from .containers.registry import translate_recorded

        command = translate_recorded(command)
    return command


def _run_batch(replay: _Replay, batch: list[Step]
               ) -> tuple[list[StepResult], BaseException | None]:
    """The jobs of the batch as array jobs (array.run_job in linked worktrees, on the engine),
    their commits written in order by the array's history writer; the replay's head, mapping
    and steps as the serial replay leaves them.  Returns the results and the error to stop
    with (None: all done)."""
    ds = replay.ds
    total = replay.total
    first_index = replay.done + 1
    if replay.notify is not None:
        replay.notify(first_index, total, batch[0])
    _base_for(replay, batch[0])
    base = replay.head
    specs: list[RunSpec] = []
    for k, step in enumerate(batch):
        if k and replay.notify is not None:
            replay.notify(first_index + k, total, step)
        specs.append(_replay_spec(replay, step))
    if replay.announce is not None:  # what runs is shown before it runs
        for spec in specs:
            replay.announce(_shown_command(ds, spec))
    batch_id = jobs.new_id("rerun-")
    wtdir = str(jobs.job_dir(ds, batch_id))
    branch = gitrepo.current_branch(ds.root)
    state: jobs.JobsState = {
        "id": batch_id, "base": base, "ref": f"refs/heads/{branch}" if branch else "HEAD",
        "jobs": [{"index": k, "status": JobStatus.PENDING} for k in range(len(batch))]}
    tasks = [JobTask(str(ds.root), wtdir, base, k,
                     Path(os.path.relpath(spec.pwd, ds.root)).as_posix(), cmd=spec.cmd,
                     array=((step.record or {}).get("rr") or {}).get("array") or {}, spec=spec)
             for k, (step, spec) in enumerate(zip(batch, specs))]
    try:
        return _finish_batch(replay, batch, state, tasks, first_index)
    finally:
        jobs.remove(ds, state)


def _finish_batch(replay: _Replay, batch: list[Step], state: jobs.JobsState,
                  tasks: list[JobTask], first_index: int
                  ) -> tuple[list[StepResult], BaseException | None]:
    ds = replay.ds
    total = replay.total
    base = state["base"]
    outcomes: dict[int, JobOutcome | BaseException] = {}
    for pos, outcome in jobs.run_all(tasks, replay.target):
        outcomes[pos] = outcome
        if isinstance(outcome, JobOutcome) and outcome.status == JobStatus.OK:
            assert outcome.commit is not None
            jobs.keep(ds, state["id"], pos, outcome.commit)
    done: dict[int, JobOutcome] = {}
    for k in range(len(batch)):
        outcome = outcomes.get(k)
        if not isinstance(outcome, JobOutcome) or outcome.status == JobStatus.FAILED:
            break
        done[k] = outcome
    stop = None if len(done) == len(batch) else len(done)
    ordered: list[tuple[jobs.JobState, str]] = []
    for k, outcome in done.items():
        j = state["jobs"][k]
        j["duration"] = outcome.duration
        if outcome.status == JobStatus.OK:
            assert outcome.commit is not None
            j["status"] = JobStatus.OK
            ordered.append((j, outcome.commit))
        else:
            j["status"] = JobStatus.NOTNEEDED
    interrupted = False
    try:
        jobs.write_history(ds, state, ordered, what=f"rr rerun --jobs ({state['id']})",
                           stop_at_clash=True)
    except KeyboardInterrupt:  # the history is written entirely or not at all
        interrupted = True
    except RecorderError as exc:  # the branch or the work tree changed meanwhile
        exc.hint = None  # the array's hint (rr run --continue) is not for a replay
        raise
    clash = next((j for j, _ in ordered if j["status"] == JobStatus.FAILED), None)
    written = [j["index"] for j, _ in ordered]  # up to a clash, which ends the history
    if clash is not None:
        written = written[:written.index(clash["index"])]
    tip = gitrepo.resolve_commit(ds.root, state["ref"])
    new = gitrepo.rev_list(ds.root, ["--first-parent", "--reverse", f"{base}..{tip}"]) \
        if tip and tip != base else []
    if not new and interrupted:
        raise KeyboardInterrupt
    if len(new) != len(written):
        raise RecorderError(f"the jobs' history on {jobs.ref_name(state['ref'])} is not "
                            f"what was written ({len(new)} commits for {len(written)} jobs)")
    commit_of = dict(zip(written, new))
    if clash is not None:
        stop = clash["index"]
    # the serial replay's bookkeeping, step after step
    head = base
    results: list[StepResult] = []
    for k in range(len(batch) if stop is None else stop):
        step, outcome = batch[k], done[k]
        if k:
            parent = batch[k - 1].commit
            if parent not in replay.mapping and parent != head:
                replay.mapping[parent] = head  # as _base_for does for the next step
        if k in commit_of:
            head = commit_of[k]
            replay.mapping[step.commit] = head
            notes = [n for n in [step.note, *outcome.notes] if n]
            result = StepResult(first_index + k, total, "run", "ok", step.commit, head,
                                step.subject, duration=outcome.duration,
                                note="; ".join(notes) or None)
        else:
            result = StepResult(first_index + k, total, "run", "unchanged", step.commit, None,
                                step.subject, duration=outcome.duration, note="; ".join(
                                    ["outputs identical to the recorded ones",
                                     *outcome.notes]))
        results.append(result)
        replay.head = head
        replay.steps.pop(0)
        replay.done += 1
    if interrupted and replay.steps:
        replay.save_state(replay.steps[0], interrupted=True)
        return results, RerunStoppedError(
            f"replay interrupted at {replay.steps[0].commit[:10]} ({replay.done + 1}/{total})",
            hint="resume with 'rr rerun --continue' (the step starts again), or give up with "
                 "'rr rerun --abort'", exit_code=EXIT_INTERRUPTED)
    if stop is None:
        return results, None
    return results, _batch_failure(replay, batch, stop, outcomes.get(stop), clash)


def _batch_failure(replay: _Replay, batch: list[Step], stop: int,
                   outcome: JobOutcome | BaseException | None,
                   clash: jobs.JobState | None) -> BaseException:
    """The state the serial replay stops in at the failed job: the jobs before it committed,
    its changes and kept message in the work tree, the replay's state saved at it."""
    ds = replay.ds
    step = batch[stop]
    index = replay.done + 1
    where = f"{step.commit[:10]} ({index}/{replay.total})"
    later = len(batch) - stop - 1  # every job of the batch ran
    touched: list[str] = []
    if isinstance(outcome, JobOutcome) and outcome.worktree and clash is None:
        touched = _take_over(ds, Path(outcome.worktree), step)
    replay.save_state(step, touched=touched)
    error = _batch_error(ds, step, where, outcome, clash)
    if later:  # shown after the results of the steps done
        note = (f"{later} later job(s) of the array ran in parallel with the failed one; "
                "their results are not kept (a replay that stops does not run them): "
                "'rr rerun --continue' runs them again")
        error.later_jobs = note  # type: ignore[attr-defined]
    return error


def _batch_error(ds: Dataset, step: Step, where: str,
                 outcome: JobOutcome | BaseException | None,
                 clash: jobs.JobState | None) -> RecorderError:
    resume = "resume with 'rr rerun --continue', or give up with 'rr rerun --abort'"
    if clash is not None:
        return RerunStoppedError(
            f"replay stopped at {where} '{step.subject}': {clash['error']}",
            hint=f"the jobs of this array are not independent: replay them one after the "
                 f"other with --jobs 1; {resume}")
    if not isinstance(outcome, JobOutcome):
        text = outcome.message if isinstance(outcome, RecorderError) else \
            f"{type(outcome).__name__}: {outcome}"
        return RerunStoppedError(f"replay stopped at {where} '{step.subject}': "
                                 f"{(text or 'the job failed').splitlines()[0]}", hint=resume)
    if outcome.error == "CommandFailedError":
        return RerunStoppedError(
            f"replay stopped at {where} '{step.subject}': {outcome.message}",
            hint="the failed step's changes are left for inspection; fix the cause (discard "
                 "or save those changes), then resume with 'rr rerun --continue', or give up "
                 "with 'rr rerun --abort'", exit_code=outcome.exit_code)
    hint = outcome.hint.replace(outcome.worktree, str(ds.root)) if outcome.hint else ""
    error = RecorderError(outcome.message, hint=((hint + "; ") if hint else "") +
                          f"the replay stopped at {where}: {resume}")
    error.exit_code = outcome.exit_code
    return error


def _take_over(ds: Dataset, wt: Path, step: Step) -> list[str]:
    """Put what a failed job changed in its worktree into the dataset's work tree, and its
    kept run message into .git/COMMIT_EDITMSG, where the serial replay leaves them."""
    import shutil

    paths: list[str] = []
    try:
        entries = gitrepo.iter_status(wt, untracked="all")
    except RecorderError:
        return paths
    for e in entries:
        if e.submodule or not _safe_rel(e.path):
            continue
        src, dst = wt / e.path, ds.root / e.path
        if dst.is_symlink() or dst.is_file():
            dst.unlink()
        if os.path.lexists(src) and not os.path.lexists(dst):
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
        paths.append(e.path)
    try:
        kept = (Path(gitrepo.git_dir(wt)) / "COMMIT_EDITMSG").read_text(encoding="utf-8")
    except (OSError, RecorderError):
        kept = ""
    if kept.startswith(records.TAG) and step.commit in kept:  # this job's, not an earlier one's
        gitrepo.write_commit_editmsg(ds.root, kept)
    return paths


# --- what a step touches ----------------------------------------------------------------


def _changed_files_recursive(ds: Dataset, parent: str | None, commit: str) -> list[str]:
    """Files (dataset-relative) the commit added or modified, also inside installed
    subdatasets (diffing each subdataset between its recorded commits), as DataLad's
    rerun does (spec §3 rule 24)."""
    return _changed_in(ds.root, parent, commit, "")


def _changed_in(root: Path, parent: str | None, commit: str, prefix: str) -> list[str]:
    base = parent or gitrepo.call_git(["hash-object", "-t", "tree", "/dev/null"], root).strip()
    try:
        out = gitrepo.call_git_z(["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id",
                                  base, commit], root)
    except RecorderError:
        return []  # the subdataset lacks these commits: nothing to learn here
    paths: list[str] = []
    i = 0
    while i + 1 < len(out):
        meta, path = out[i], out[i + 1]
        i += 2
        parts = meta.lstrip(":").split()
        if len(parts) < 5:
            continue
        old_mode, new_mode, old_sha, new_sha, status = parts[:5]
        if status[:1] not in ("A", "M", "T"):
            continue
        if new_mode == "160000":
            sub = root / path
            if not _safe_rel(path) or not (sub / ".git").exists():
                continue
            old = old_sha if old_mode == "160000" and set(old_sha) != {"0"} else None
            paths += _changed_in(sub, old, new_sha, f"{prefix}{path}/")
            continue
        paths.append(prefix + path)
    return paths


def _declared_in_subdatasets(ds: Dataset, pwd: Path, outputs: Sequence[str]) -> list[str]:
    """Declared outputs that are, or lie in, installed subdatasets: the annexed files there
    (run's own unlocking does not look inside subdatasets)."""
    subs = installed_paths(ds.root)
    if not subs or not ds.contains(pwd):
        return []
    try:
        hits = glob_specs([o for o in outputs if o != "."], pwd, ds).hits
    except RecorderError:
        return []
    found: list[str] = []
    for hit in hits:
        rel = ds.relpath(pwd / hit)
        for sub in sorted(subs, key=len, reverse=True):
            if rel == sub or rel.startswith(sub + "/"):
                inner = "." if rel == sub else rel[len(sub) + 1:]
                if (ds.root / rel).is_dir() and not (ds.root / rel).is_symlink():
                    listed = gitrepo.ls_files_symlinks(ds.root / sub, [inner])
                    found += [f"{sub}/{p}" for p in listed]
                else:
                    found.append(rel)
                break
    return found


def _dirty_recursive(ds: Dataset) -> list[str]:
    """Changed and untracked files, dataset-relative, also inside installed subdatasets."""
    return _dirty_in(ds.root, "")


def _dirty_in(root: Path, prefix: str) -> list[str]:
    out: list[str] = []
    for e in gitrepo.iter_status(root, untracked="all"):
        if e.submodule:
            if _safe_rel(e.path) and (root / e.path / ".git").exists():
                out += _dirty_in(root / e.path, f"{prefix}{e.path}/")
            continue
        out.append(prefix + e.path)
    return out


def _touched_since(ds: Dataset, before: set[str] | None) -> list[str]:
    try:
        now = _dirty_recursive(ds)
    except RecorderError:
        return []
    return sorted(set(now) - (before or set()))


def _restore(ds: Dataset, paths: Sequence[str]) -> None:
    """Put the given files back to their state in HEAD (of the repository holding each):
    tracked files are checked out again (an unlocked annexed file is a symlink again),
    files HEAD does not have are removed."""
    subs = sorted(installed_paths(ds.root), key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    for p in paths:
        if not _safe_rel(p):
            continue
        owner = next((s for s in subs if p.startswith(s + "/")), "")
        groups.setdefault(owner, []).append(p[len(owner) + 1:] if owner else p)
    with dataset_lock(ds.git_dir):
        for owner, rels in groups.items():
            root = ds.root / owner if owner else ds.root
            _restore_in(root, rels)


def _restore_in(root: Path, rels: list[str]) -> None:
    listing = gitrepo.call_git(["cat-file", "--batch-check=%(objecttype)"], root,
                               input="".join(f"HEAD:{p}\n" for p in rels).encode(
                                   "utf-8", "surrogateescape"))
    kinds = listing.splitlines()
    tracked = [p for p, k in zip(rels, kinds) if k.strip() in ("blob", "commit")]
    new = [p for p, k in zip(rels, kinds) if k.strip() not in ("blob", "commit", "tree")]
    env = {"GIT_LITERAL_PATHSPECS": "1"}
    if tracked:
        gitrepo.call_git(["checkout", "-q", "HEAD", "--pathspec-from-file=-",
                          "--pathspec-file-nul"], root, input=gitrepo.nul_paths(tracked),
                         env=env)
    if new:
        gitrepo.call_git(["rm", "-q", "--cached", "--ignore-unmatch", "--pathspec-from-file=-",
                          "--pathspec-file-nul"], root, input=gitrepo.nul_paths(new), env=env)
        for p in new:
            full = root / p
            if full.is_symlink() or full.is_file():
                full.unlink()


# --- abort ------------------------------------------------------------------------------


def abort(ds: Dataset) -> str:
    """Forget a stopped replay and go back to where the user was; returns what was done.

    The files the stopped step changed are restored first.  Steps already done stay on the
    branch that was replayed in place, or on the new --branch; no other branch moves.
    """
    if not has_stopped_replay(ds):
        raise RecorderError("no stopped replay to abort in this dataset")
    try:
        replay = _Replay.load(ds)
    except RecorderError:
        _clear_state(ds)
        return "its state file was damaged and is removed; HEAD and the files are left as they are"
    with dataset_lock(ds.git_dir):
        gd = ds.git_dir
        if (gd / "CHERRY_PICK_HEAD").exists():
            gitrepo.call_git_success(["cherry-pick", "--abort"], ds.root)
        if (gd / "MERGE_HEAD").exists():
            gitrepo.call_git_success(["merge", "--abort"], ds.root)
    if replay.touched:
        _restore(ds, replay.touched)
    _clear_state(ds)
    kept = ""
    name = replay.branch_name
    if name and replay.head != replay.origin_sha:
        tip = gitrepo.resolve_commit(ds.root, f"refs/heads/{name}")
        if tip is not None and tip != replay.head and gitrepo.is_ancestor(ds.root, tip,
                                                                          replay.head):
            with dataset_lock(ds.git_dir):
                gitrepo.call_git(["update-ref", f"refs/heads/{name}", replay.head, tip],
                                 ds.root)
            kept = f"; the steps done are on {name}"
        elif tip == replay.head:
            kept = f"; the steps done are on {name}"
    if replay.origin_branch and gitrepo.branch_exists(ds.root, replay.origin_branch):
        if gitrepo.current_branch(ds.root) != replay.origin_branch:
            _checkout_branch(ds, replay.origin_branch)
        return f"back on branch {replay.origin_branch}{kept}"
    if ds.head() != replay.origin_sha:
        _checkout(ds, replay.origin_sha)
    return f"back at {replay.origin_sha[:10]} (detached HEAD){kept}"
