"""The serial replay: its driver, and the run, pick and merge steps; ``--continue`` and
``--abort``.  A stopped replay writes its position to ``.git/rr-rerun.json``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from .. import annex, engine, gitrepo
from ..dataset import Dataset
from ..errors import (EXIT_INTERRUPTED, CommandFailedError, Interrupted, RecorderError,
                       RerunStoppedError, UsageError)
from ..lock import dataset_lock, deferred_signals, inflight_runs
from ..results import NOTNEEDED, OK, SKIPPED, UNCHANGED, OnEvent, Result
from ..run import RunSpec, ensure_clean, execute
from .batch import drive_batch, front_batch
from .plan import build_plan, resolve_onto, short
from .state import (STATE_FILE, Replay, Step, Stop, add_stop_hint, has_stopped_replay,
                    hint, interrupted_at, step_result)
from .steps import (base_for, checkout, checkout_branch, dirty_paths, replay_spec, restore,
                    touched_since)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
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


def rerun(ds: Dataset, revision: str | None = None, *, since: str | None = None,
          onto: str | None = None, branch: str | None = None, message: str | None = None,
          explicit: bool = False, assume_ready: str | None = None,
          continue_: bool = False, on_event: OnEvent | None = None,
          target: engine.Target = engine.SERIAL, cache: bool = True,
          verbose: bool = False) -> Iterator[Result]:
    """Replay the plan step by step, yielding one result per step.

    ``on_event`` gets a STEP event before each step starts (for progress), an ANNOUNCE of
    each expanded command just before it executes, a WARN about a step (e.g. a recorded
    directory outside the dataset).  ``target``
    (``engine.check(jobs, scheduler)``) parallel: the consecutive jobs of one array run in
    parallel on Dask (see ``front_batch``), with the same result as one after the other.
    ``cache``: a run whose key an earlier run in history has is restored from it
    (recorder/cache.py); False (``--no-cache``): every run executes.  ``verbose``: a NOTE
    says why each run that executes was not restored.
    """
    if continue_:
        if revision or since is not None or onto is not None or branch:
            raise UsageError("--continue takes no revision, --since, --onto or --branch")
        yield from _continue(ds, on_event, target, cache, verbose)
        return
    if has_stopped_replay(ds):
        raise RecorderError("a stopped replay is waiting in this dataset",
                            hint=hint(Stop.WAITING))
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
        raise UsageError(f"not a valid branch name: {short(branch)!r}")
    if branch and gitrepo.branch_exists(ds.root, branch):
        raise RecorderError(f"branch '{branch}' already exists")
    start_sha = resolve_onto(ds, plan, onto)
    origin_branch = gitrepo.current_branch(ds.root)
    origin_sha = ds.head()
    assert origin_sha is not None
    # only the branch replayed in place, or the new --branch, is ever moved
    branch_name = branch or (origin_branch if start_sha is None else None)
    total = len(plan.steps) + (1 if (branch or start_sha) else 0)
    replay = Replay(ds, plan.steps, {}, origin_sha, origin_sha, branch_name, message,
                     explicit, assume_ready, total, 0, origin_branch=origin_branch,
                     origin_sha=origin_sha, new_branch=bool(branch), on_event=on_event,
                     target=target, cache=cache, cache_verbose=verbose)
    if branch or start_sha:
        at = start_sha or origin_sha
        checkout(ds, at, new_branch=branch)
        replay.start = replay.head = at
        replay.done = 1
        try:
            yield step_result(1, total, "checkout", OK, at, at,
                              f"start at {at[:10]}" + (f" on new branch {branch}" if branch
                                                       else ""))
        except GeneratorExit:  # the caller stopped reading: the replay waits at its first step
            replay.save_state(replay.steps[0] if replay.steps else None)
            raise
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
    going = inflight_runs(ds.git_dir)
    if going:
        raise RecorderError(f"an rr run is still going in this dataset (pid {going[0].pid}: "
                            f"{going[0].command[:60]})",
                            hint="let it finish, then rerun; a replay moves HEAD under it")


def _continue(ds: Dataset, on_event: OnEvent | None,
              target: engine.Target = engine.SERIAL, cache: bool = True,
              verbose: bool = False) -> Iterator[Result]:
    replay = Replay.load(ds)
    replay.on_event = on_event
    replay.target = target
    replay.cache, replay.cache_verbose = cache, verbose
    _ensure_no_run_going(ds)
    if gitrepo.sequencer_in_progress(ds.root):
        raise RecorderError("a cherry-pick or merge is still in progress",
                            hint=hint(Stop.SEQUENCER))
    if replay.interrupted and replay.touched:
        # an interrupted step starts again from scratch: its partial changes go
        restore(ds, replay.touched)
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


def _drive(replay: Replay) -> Iterator[Result]:
    ds = replay.ds
    with signals_interrupt(), contextlib.ExitStack() as records:
        # entered once around all the records of the replay, left however it ends (last in,
        # first out): git's auto maintenance once after the last commit, the dataset lock
        # over each stretch of steps replayed one after the other, the duration notes as one
        # notes commit (also of a replay that stops)
        records.enter_context(gitrepo.deferred_maintenance(ds.root))
        serial = _Held(replay)
        records.callback(serial.release)
        records.callback(_write_notes, replay)
        # what serves every record: one long-lived `git annex add --batch` (entered last, so
        # that it ends first, before the notes and under the lock)
        records.enter_context(annex.add_session(ds.root))
        while replay.steps:
            step = replay.steps[0]
            started = time.monotonic()
            index = replay.done + 1
            replay.saved = False
            try:
                batch = front_batch(replay)
            except BaseException:
                replay.save_state(step)
                raise
            if batch:
                serial.release()  # the parallel jobs lock the dataset themselves
                replay.clean = False
                try:
                    yield from drive_batch(replay, batch)
                except GeneratorExit:  # the caller stopped reading the batch's results
                    replay.save_state(replay.steps[0] if replay.steps else None)
                    raise
                continue
            try:
                serial.hold()
                replay.starting(index, step)
                if step.action == "run":
                    result = _replay_run(replay, step, index)
                elif step.action == "merge":
                    replay.clean = False
                    result = _replay_merge(replay, step, index)
                else:
                    replay.clean = False
                    result = _replay_other(replay, step, index)
            except KeyboardInterrupt:
                if not replay.saved:  # interrupted outside the command: nothing it changed
                    replay.save_state(step, interrupted=True)
                raise interrupted_at(step, index, replay.total) from None
            except RecorderError as exc:
                if not replay.saved:
                    replay.save_state(step)
                    add_stop_hint(exc, step, index, replay.total)
                raise
            except BaseException:
                if not replay.saved:
                    replay.save_state(step)
                raise
            result = result.updated(duration=time.monotonic() - started)
            replay.steps.pop(0)
            replay.done += 1
            try:
                yield result
            except GeneratorExit:  # the caller stopped reading: a replay stopped between steps
                replay.save_state(replay.steps[0] if replay.steps else None)
                raise
        _clear_state(ds)
        _finish(replay)


class _Held:
    """The dataset lock held over consecutive steps of one replay (reentrant: each step's
    own locking nests inside it): no other rr process changes the dataset between two
    records, so that a tree checked clean once stays clean while records commit all they
    change."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.stack: contextlib.ExitStack | None = None

    def hold(self) -> None:
        if self.stack is None:
            stack = contextlib.ExitStack()
            stack.enter_context(dataset_lock(self.replay.ds.git_dir, what="rr rerun"))
            self.stack = stack

    def release(self) -> None:
        stack, self.stack = self.stack, None
        if stack is not None:
            stack.close()


def _write_notes(replay: Replay) -> None:
    """The duration notes of the records replayed so far, as one notes commit; as the note
    rr run writes, a note that cannot be written (no git identity) is left out silently."""
    durations, replay.durations = replay.durations, {}
    with contextlib.suppress(RecorderError), deferred_signals():
        gitrepo.add_notes(replay.ds.root, durations)


def _finish(replay: Replay) -> None:
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
        replay.warn(f"{name} now ends at the replayed run-merge {replay.head[:10]} instead "
                    f"of {tip[:10]} (as DataLad does); to keep the original: "
                    f"git branch <name> {tip[:10]}")
    elif tip is not None and not replay.new_branch and \
            not gitrepo.is_ancestor(ds.root, tip, replay.head):
        replay.warn(f"the replay's result {replay.head[:10]} does not contain {name}'s "
                    f"commit {tip[:10]}: {name} is left where it was and HEAD is "
                    "detached at the result")
        return
    checkout_branch(ds, name, replay.head)


def _rewritten_run_merges(replay: Replay, tip: str) -> bool:
    """Whether every commit that ``tip``'s branch would lose by moving to the replay's result
    is a two-parent commit (a run-merge) this replay re-executed into a new one."""
    lost = gitrepo.first_parent_chain(replay.ds.root, tip, replay.head)
    return bool(lost) and all(len(c) == 3 and c[0] in replay.mapping for c in lost)


def _replay_run(replay: Replay, step: Step, index: int) -> Result:
    ds = replay.ds
    head = replay.head
    base_for(replay, step)
    if replay.head != head:
        replay.clean = False  # checked again after a checkout
    spec = replace(replay_spec(replay, step), in_replay=True)
    if not spec.explicit and not replay.clean:
        ensure_clean(ds)  # under the replay's lock: it stays so until the record's command
        replay.clean = True
    # what the step may restore if it stops: what changed since it started (a clean tree
    # needs no status to know what was there before)
    before = set() if replay.clean and not inflight_runs(ds.git_dir) else set(dirty_paths(ds))
    result = _replay_step_run(replay, step, index, spec, before)
    # a record without --explicit commits all it changed; one with it may leave more
    replay.clean = replay.clean and not spec.explicit
    return result


def _replay_step_run(replay: Replay, step: Step, index: int, spec: RunSpec,
                     before: set[str]) -> Result:
    ds = replay.ds
    try:
        result = execute(ds, spec, on_event=replay.on_event)
    except CommandFailedError as exc:
        replay.save_state(step, touched=touched_since(ds, before))
        raise RerunStoppedError(
            f"replay stopped at {step.commit[:10]} ({index}/{replay.total}) "
            f"'{step.subject}': {exc.message}",
            hint=hint(Stop.COMMAND_FAILED), exit_code=exc.exit_code) from None
    except Interrupted:
        replay.save_state(step, touched=touched_since(ds, before), interrupted=True)
        raise RerunStoppedError(
            f"replay interrupted at {step.commit[:10]} ({index}/{replay.total}) "
            f"'{step.subject}'",
            hint=hint(Stop.INTERRUPTED), exit_code=EXIT_INTERRUPTED) from None
    except RecorderError as exc:
        replay.save_state(step, touched=touched_since(ds, before))
        add_stop_hint(exc, step, index, replay.total)
        raise
    except BaseException:
        # Ctrl-C, or an unexpected error: the step starts again on --continue, what it
        # changed restored first (as --abort restores it)
        replay.save_state(step, touched=touched_since(ds, before), interrupted=True)
        raise
    new_head = ds.head()
    assert new_head is not None
    if new_head not in (replay.head, step.commit):
        replay.mapping[step.commit] = new_head
    replay.head = new_head
    extra = result.extra or {}
    if result.status == OK and extra.get("commit"):
        replay.durations[extra["commit"]] = json.dumps({"duration": extra["duration"]})
    if result.status == NOTNEEDED:
        return step_result(index, replay.total, "run", UNCHANGED, step.commit, None,
                          step.subject, note="; ".join(
                              ["outputs identical to the recorded ones", *result.notes]))
    notes = [n for n in [step.note, *result.notes] if n]
    return step_result(index, replay.total, "run", OK, step.commit, new_head, step.subject,
                      note="; ".join(notes) or None)


def _replay_other(replay: Replay, step: Step, index: int) -> Result:
    ds = replay.ds
    if not step.parents:
        return step_result(index, replay.total, "skip", SKIPPED, step.commit, None,
                          step.subject, note=step.note)
    back_to, skip = base_for(replay, step)
    if skip or gitrepo.is_ancestor(ds.root, step.commit, replay.head):
        if back_to is not None:
            checkout(ds, back_to)
            replay.head = back_to
        return step_result(index, replay.total, "skip", SKIPPED, step.commit, None,
                          step.subject, note=step.note)
    replay.pick_base = replay.head
    with dataset_lock(ds.git_dir):
        picked = gitrepo.cherry_pick_commit(ds.root, step.commit)
    if not picked.ok:
        replay.save_state(step)
        raise RerunStoppedError(
            f"replay stopped at {step.commit[:10]} ({index}/{replay.total}): cherry-pick "
            f"failed: {picked.first_line or 'conflict'}",
            hint=hint(Stop.PICK_CONFLICT))
    replay.pick_base = None
    new_head = ds.head()
    assert new_head is not None
    if new_head != replay.head:
        replay.mapping[step.commit] = new_head
    replay.head = new_head
    return step_result(index, replay.total, "pick", OK, step.commit, new_head, step.subject,
                      note=step.note)


def _replay_merge(replay: Replay, step: Step, index: int) -> Result:
    """A non-run merge, as DataLad replays it (spec §3 rule 17)."""
    ds = replay.ds
    mapped = [replay.mapping.get(p, p) for p in step.parents]
    if mapped == step.parents:
        if not gitrepo.is_ancestor(ds.root, step.commit, replay.head):
            checkout(ds, step.commit)
            replay.head = step.commit
        return step_result(index, replay.total, "merge", SKIPPED, step.commit, None,
                          step.subject, note="fast-forward to the original merge")
    if step.commit == replay.head:
        return step_result(index, replay.total, "merge", SKIPPED, step.commit, None,
                          step.subject)
    if gitrepo.is_ancestor(ds.root, step.commit, replay.start):
        mapped = [p for p in mapped if not gitrepo.is_ancestor(ds.root, p, replay.start)]
    if not mapped:
        return step_result(index, replay.total, "merge", SKIPPED, step.commit, None,
                          step.subject)
    if mapped[0] != replay.head:
        checkout(ds, mapped[0])  # keep the direction of the original merge
        replay.head = mapped[0]
    if len(mapped) > 1:
        replay.pick_base = replay.head
        with dataset_lock(ds.git_dir):
            merged = gitrepo.merge_commits(ds.root, mapped[1:], step.raw_message.rstrip("\n"))
        if not merged.ok:
            replay.save_state(step)
            raise RerunStoppedError(
                f"replay stopped at {step.commit[:10]} ({index}/{replay.total}): merge failed",
                hint=hint(Stop.MERGE_CONFLICT))
        replay.pick_base = None
    new_head = ds.head()
    assert new_head is not None
    replay.mapping[step.commit] = new_head
    replay.head = new_head
    return step_result(index, replay.total, "merge", OK if len(mapped) > 1 else SKIPPED,
                      step.commit, new_head if len(mapped) > 1 else None, step.subject)


def _clear_state(ds: Dataset) -> None:
    (ds.git_dir / STATE_FILE).unlink(missing_ok=True)


def abort(ds: Dataset) -> str:
    """Forget a stopped replay and go back to where the user was; returns what was done.

    The files the stopped step changed are restored first.  Steps already done stay on the
    branch that was replayed in place, or on the new --branch; no other branch moves.
    """
    if not has_stopped_replay(ds):
        raise RecorderError("no stopped replay to abort in this dataset")
    try:
        replay = Replay.load(ds)
    except RecorderError:
        _clear_state(ds)
        return "its state file was damaged and is removed; HEAD and the files are left as they are"
    with dataset_lock(ds.git_dir):
        gitrepo.abort_sequencer(ds.root)
    if replay.touched:
        restore(ds, replay.touched)
    _clear_state(ds)
    kept = ""
    name = replay.branch_name
    if name and replay.head != replay.origin_sha:
        tip = gitrepo.resolve_commit(ds.root, f"refs/heads/{name}")
        if tip is not None and tip != replay.head and gitrepo.is_ancestor(ds.root, tip,
                                                                          replay.head):
            with dataset_lock(ds.git_dir):
                gitrepo.update_ref(ds.root, f"refs/heads/{name}", replay.head, tip)
            kept = f"; the steps done are on {name}"
        elif tip == replay.head:
            kept = f"; the steps done are on {name}"
    if replay.origin_branch and gitrepo.branch_exists(ds.root, replay.origin_branch):
        if gitrepo.current_branch(ds.root) != replay.origin_branch:
            checkout_branch(ds, replay.origin_branch)
        return f"back on branch {replay.origin_branch}{kept}"
    if ds.head() != replay.origin_sha:
        checkout(ds, replay.origin_sha)
    return f"back at {replay.origin_sha[:10]} (detached HEAD){kept}"
