"""Replaying run records: plan a revision range, then run, pick, skip or merge each commit.

The plan is DataLad's (spec §3): leading non-run commits are the base, run commits are
re-executed on top of the current head (or of ``--onto``/``--branch``), other commits are
skipped when already reachable and cherry-picked otherwise, merges are recreated.  A replay
that stops (a command fails differently than recorded, a cherry-pick conflicts) writes its
position to ``.git/rr-rerun.json`` so that ``rr rerun --continue`` resumes it.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import gitrepo
from . import record as records
from .dataset import Dataset
from .errors import CommandFailedError, RecordError, RecorderError, UsageError
from .placeholders import PathList, QuotedPath, expand, substitutions
from .run import RunSpec, ensure_clean, execute, glob_specs

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


class RerunStoppedError(RecorderError):
    def __init__(self, message: str, hint: str, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


# --- planning ---------------------------------------------------------------------------


def _split_range(revision: str | None, since: str | None) -> tuple[str, str | None]:
    rev = revision or "HEAD"
    if ".." in rev and "..." not in rev:
        left, right = rev.split("..", 1)
        if since is not None:
            raise UsageError("give either a range A..B or --since, not both")
        return right or "HEAD", left or "HEAD"
    return rev, since


def build_plan(ds: Dataset, revision: str | None = None, since: str | None = None) -> Plan:
    if ds.head() is None:
        raise RecorderError("cannot rerun: nothing recorded yet (the dataset has no commits)")
    rev, since = _split_range(revision, since)
    rev_sha = gitrepo.resolve_commit(ds.root, rev)
    if rev_sha is None:
        raise UsageError(f"unknown revision: {rev}")
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
            raise UsageError(f"unknown revision: {since}")
        revs, desc = [f"{since_sha}..{rev_sha}"], f"{since}..{rev}"
    entries = gitrepo.iter_log(ds.root, revs)
    record_dir = ds.record_directory()
    dsid = ds.id
    steps: list[Step] = []
    for e in entries:
        try:
            loaded = records.load_record(e.message, ds.root, record_dir)
        except RecordError as exc:
            raise RecordError(f"commit {e.sha[:10]} has a malformed run record: {exc.message}",
                              hint=exc.hint) from None
        step = Step("skip-or-pick", e.sha, list(e.parents), e.author, e.date,
                    raw_message=e.message)
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
            elif "pwd" not in rec:
                raise RecordError(f"commit {e.sha[:10]} has a malformed run record: no 'pwd'")
            else:
                step.action = "run"
        if step.action != "run" and len(e.parents) > 1:
            step.action = "merge"
        steps.append(step)
    if not any(s.action == "run" for s in steps):
        if any(s.record is not None for s in steps):
            raise RecorderError(f"no run commit in {desc} can be re-executed in this dataset")
        raise RecorderError(f"no run commits found in {desc}",
                            hint="give a range (A..B) or --since to replay more history")
    if since is None or since.strip() == "":
        while steps and steps[0].action != "run":
            steps.pop(0)
    return Plan(rev_sha, desc, steps, since)


def _resolve_onto(ds: Dataset, plan: Plan, onto: str | None) -> str | None:
    if onto is None:
        return None
    if onto.strip() == "":
        first = next(s for s in plan.steps if s.action == "run")
        if not first.parents:
            raise RecorderError("--onto= needs a parent of the first run commit, but it is a root")
        return first.parents[0]
    sha = gitrepo.resolve_commit(ds.root, onto)
    if sha is None:
        raise UsageError(f"revision given for --onto does not exist: {onto}")
    return sha


# --- report -----------------------------------------------------------------------------


def report(ds: Dataset, revision: str | None = None, *, since: str | None = None,
           onto: str | None = None, branch: str | None = None) -> Iterator[dict[str, Any]]:
    """One dict per step of the plan, nothing executed."""
    plan = build_plan(ds, revision, since)
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
    plan = build_plan(ds, revision, since)
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
            continue
        rec = step.record
        pwd = Path(os.path.normpath(ds.root / rec.get("pwd", ".")))
        ins = glob_specs(rec.get("inputs", []), pwd, ds)
        outs = glob_specs(rec.get("outputs", []), pwd, ds)
        values: dict[str, Any] = dict(subs)
        values.update(pwd=QuotedPath(str(pwd)), dspath=QuotedPath(str(ds.root)),
                      tmpdir=_ShellVar('"$rr_tmpdir"'),
                      inputs=PathList(ins.hits + ins.unmatched),
                      outputs=PathList(outs.hits + outs.unmatched))
        command = expand(rec["cmd"], values)
        lines.append("")
        message = step.run_message or ""
        if message and message != records.shorty(command):
            lines += [f"# {line}".rstrip() for line in message.splitlines()]
        else:
            lines.append("")
        lines.append(f"# (record: {gitrepo.describe(ds.root, step.commit)})")
        lines.append(f"cd {shlex.quote(str(pwd))} || exit 1")
        uses_tmp = "$rr_tmpdir" in command
        if uses_tmp:
            lines.append('rr_tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/rr-run-XXXXXXXX") || exit 1')
        lines.append(command)
        if uses_tmp:
            lines.append('rm -rf "$rr_tmpdir"')
    return "\n".join(lines) + "\n"


# --- execution --------------------------------------------------------------------------


@dataclass
class _Replay:
    ds: Dataset
    steps: list[Step]
    mapping: dict[str, str]
    start: str
    head: str
    branch_name: str | None
    message: str | None
    explicit: bool
    assume_ready: str | None
    total: int
    done: int = 0
    pick_base: str | None = None
    notify: Callable[[int, int, Step], None] | None = None

    def save_state(self, failed: Step) -> None:
        remaining = self.steps[self.steps.index(failed):]
        data = {"steps": [asdict(s) for s in remaining], "mapping": self.mapping,
                "start": self.start, "head": self.head, "branch_name": self.branch_name,
                "message": self.message, "explicit": self.explicit,
                "assume_ready": self.assume_ready, "total": self.total, "done": self.done,
                "pick_base": self.pick_base}
        data.pop("notify", None)
        (self.ds.git_dir / STATE_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, ds: Dataset) -> "_Replay":
        path = ds.git_dir / STATE_FILE
        if not path.exists():
            raise RecorderError("no stopped replay to continue in this dataset")
        data = json.loads(path.read_text(encoding="utf-8"))
        steps = [Step(**s) for s in data.pop("steps")]
        return cls(ds=ds, steps=steps, **data)


def _clear_state(ds: Dataset) -> None:
    (ds.git_dir / STATE_FILE).unlink(missing_ok=True)


def has_stopped_replay(ds: Dataset) -> bool:
    return (ds.git_dir / STATE_FILE).exists()


def rerun(ds: Dataset, revision: str | None = None, *, since: str | None = None,
          onto: str | None = None, branch: str | None = None, message: str | None = None,
          explicit: bool = False, assume_ready: str | None = None,
          continue_: bool = False,
          notify: Callable[[int, int, Step], None] | None = None) -> Iterator[StepResult]:
    """Replay the plan step by step, yielding one result per step.

    ``notify(index, total, step)`` is called before each step starts (for progress).
    """
    if continue_:
        if revision or since is not None or onto is not None or branch:
            raise UsageError("--continue takes no revision, --since, --onto or --branch")
        yield from _continue(ds, notify)
        return
    if has_stopped_replay(ds):
        raise RecorderError("a stopped replay is waiting in this dataset",
                            hint="finish it with 'rr rerun --continue' or drop it with "
                                 "'rr rerun --abort'")
    plan = build_plan(ds, revision, since)
    needs_clean = not explicit and any(
        s.action == "run" and not (s.record or {}).get("rr", {}).get("explicit")
        for s in plan.steps)
    if needs_clean:
        ensure_clean(ds)
    if branch and gitrepo.branch_exists(ds.root, branch):
        raise RecorderError(f"branch '{branch}' already exists")
    if branch and not gitrepo.check_ref_format_tag(ds.root, branch):
        raise UsageError(f"not a valid branch name: {branch!r}")
    start_sha = _resolve_onto(ds, plan, onto)
    branch_name = branch or gitrepo.current_branch(ds.root)
    total = len(plan.steps) + (1 if (branch or start_sha) else 0)
    index = 0
    if branch or start_sha:
        target = start_sha or ds.head()
        assert target is not None
        gitrepo.checkout(ds.root, target, new_branch=branch, detach=branch is None)
        index = 1
        yield StepResult(1, total, "checkout", "ok", target, target,
                         f"start at {target[:10]}" + (f" on new branch {branch}" if branch else ""))
    head = ds.head()
    assert head is not None
    replay = _Replay(ds, plan.steps, {}, head, head, branch_name, message, explicit,
                     assume_ready, total, index, notify=notify)
    yield from _drive(replay)


def _continue(ds: Dataset, notify: Callable[[int, int, Step], None] | None
              ) -> Iterator[StepResult]:
    replay = _Replay.load(ds)
    replay.notify = notify
    if not replay.explicit and any(s.action == "run" for s in replay.steps):
        ensure_clean(ds)
    if gitrepo.sequencer_in_progress(ds.root):
        raise RecorderError("a cherry-pick or merge is still in progress",
                            hint="finish it (git cherry-pick --continue / git commit) or abort "
                                 "it, then run 'rr rerun --continue' again")
    current = ds.head()
    assert current is not None
    first = replay.steps[0]
    if first.action in ("skip-or-pick", "merge") and replay.pick_base and \
            current != replay.pick_base:
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
    while replay.steps:
        step = replay.steps[0]
        started = time.monotonic()
        index = replay.done + 1
        if replay.notify is not None:
            replay.notify(index, replay.total, step)
        if step.action == "run":
            result = _replay_run(replay, step, index)
        elif step.action == "merge":
            result = _replay_merge(replay, step, index)
        else:
            result = _replay_other(replay, step, index)
        result.duration = time.monotonic() - started
        replay.steps.pop(0)
        replay.done += 1
        yield result
    _clear_state(ds)
    if replay.branch_name and gitrepo.current_branch(ds.root) != replay.branch_name:
        gitrepo.set_branch_and_checkout(ds.root, replay.branch_name, replay.head)


def _checkout_base(replay: _Replay, parent: str | None) -> None:
    ds = replay.ds
    if parent is None:
        return
    if parent in replay.mapping:
        target = replay.mapping[parent]
    elif parent != replay.head and gitrepo.is_ancestor(ds.root, replay.start, parent):
        target = parent  # replay in place on the original parent
    else:
        target = replay.head
        replay.mapping[parent] = replay.head
    if target != ds.head():
        gitrepo.checkout(ds.root, target, detach=True)
    replay.head = target


def _replay_run(replay: _Replay, step: Step, index: int) -> StepResult:
    ds = replay.ds
    rec = step.record or {}
    _checkout_base(replay, step.parents[0] if step.parents else None)
    rr_info = dict(rec.get("rr") or {})
    was_explicit = bool(rr_info.pop("explicit", False))
    outputs = list(rec.get("outputs") or [])
    pwd = Path(os.path.normpath(ds.root / rec.get("pwd", ".")))
    # files the original commit added or modified are outputs too: unlock them first
    extra_unlock = [p for st, p in gitrepo.changed_files(
        ds.root, step.parents[0] if step.parents else None, step.commit) if st in ("A", "M")]
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

        registry.prepare_rerun(ds, spec, rr_info)
    try:
        result = execute(ds, spec)
    except CommandFailedError as exc:
        replay.save_state(step)
        raise RerunStoppedError(
            f"replay stopped at {step.commit[:10]} ({index}/{replay.total}) "
            f"'{step.subject}': {exc.message}",
            hint="the failed step's changes are left for inspection; fix the cause (discard "
                 "or save those changes), then resume with 'rr rerun --continue', or give up "
                 "with 'rr rerun --abort'",
            exit_code=exc.exit_code) from None
    except RecorderError as exc:
        replay.save_state(step)
        exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
            f"the replay stopped at {step.commit[:10]} ({index}/{replay.total}): resume with " \
            "'rr rerun --continue' or give up with 'rr rerun --abort'"
        raise
    except BaseException:
        replay.save_state(step)
        raise
    new_head = ds.head()
    assert new_head is not None
    replay.mapping[step.commit] = new_head
    replay.head = new_head
    if result.status == "notneeded":
        return StepResult(index, replay.total, "run", "unchanged", step.commit, None,
                          step.subject, note="; ".join(
                              ["outputs identical to the recorded ones", *result.notes]))
    notes = [n for n in [step.note, *result.notes] if n]
    return StepResult(index, replay.total, "run", "ok", step.commit, new_head, step.subject,
                      note="; ".join(notes) or None)


def _replay_other(replay: _Replay, step: Step, index: int) -> StepResult:
    ds = replay.ds
    _checkout_base(replay, step.parents[0] if step.parents else None)
    if not step.parents or gitrepo.is_ancestor(ds.root, step.commit, replay.head):
        replay.mapping[step.commit] = replay.head if step.parents else step.commit
        return StepResult(index, replay.total, "skip", "skipped", step.commit, None,
                          step.subject, note=step.note)
    replay.pick_base = replay.head
    proc = gitrepo.cherry_pick(ds.root, step.commit)
    if proc.returncode != 0:
        replay.save_state(step)
        detail = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip().splitlines()
        raise RerunStoppedError(
            f"replay stopped at {step.commit[:10]} ({index}/{replay.total}): cherry-pick "
            f"failed: {detail[0] if detail else 'conflict'}",
            hint="resolve it and 'git cherry-pick --continue' (or 'git cherry-pick --abort'), "
                 "then 'rr rerun --continue'")
    replay.pick_base = None
    new_head = ds.head()
    assert new_head is not None
    replay.mapping[step.commit] = new_head
    replay.head = new_head
    return StepResult(index, replay.total, "pick", "ok", step.commit, new_head, step.subject,
                      note=step.note)


def _replay_merge(replay: _Replay, step: Step, index: int) -> StepResult:
    ds = replay.ds
    mapped = [replay.mapping.get(p, p) for p in step.parents]
    if mapped == step.parents:
        if not gitrepo.is_ancestor(ds.root, step.commit, replay.head):
            gitrepo.checkout(ds.root, step.commit, detach=True)
            replay.head = step.commit
        replay.mapping[step.commit] = replay.head
        return StepResult(index, replay.total, "merge", "skipped", step.commit, None,
                          step.subject, note="fast-forward to the original merge")
    if ds.head() != mapped[0]:
        gitrepo.checkout(ds.root, mapped[0], detach=True)
    replay.pick_base = mapped[0]
    proc = gitrepo.merge(ds.root, mapped[1:], step.raw_message.rstrip("\n"))
    if proc.returncode != 0:
        replay.save_state(step)
        raise RerunStoppedError(
            f"replay stopped at {step.commit[:10]} ({index}/{replay.total}): merge failed",
            hint="resolve the conflict and commit, then 'rr rerun --continue'")
    replay.pick_base = None
    new_head = ds.head()
    assert new_head is not None
    replay.mapping[step.commit] = new_head
    replay.head = new_head
    return StepResult(index, replay.total, "merge", "ok", step.commit, new_head, step.subject)


def abort(ds: Dataset) -> str | None:
    """Forget a stopped replay and go back to its branch; returns the branch name."""
    if not has_stopped_replay(ds):
        raise RecorderError("no stopped replay to abort in this dataset")
    replay = _Replay.load(ds)
    _clear_state(ds)
    if replay.branch_name and gitrepo.current_branch(ds.root) != replay.branch_name \
            and not gitrepo.sequencer_in_progress(ds.root):
        gitrepo.set_branch_and_checkout(ds.root, replay.branch_name, replay.head)
    return replay.branch_name
