"""An array's consecutive records replayed in parallel (``rr rerun -J``) on the job runtime
(``recorder.jobs``), with the same records and trees as the serial replay."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .. import gitrepo, jobs
from .. import record as records
from ..containers import registry
from ..dataset import Dataset
from ..errors import RecorderError, RerunStoppedError
from ..jobs import JobOutcome, JobStatus, JobTask
from ..placeholders import expand
from ..results import OK, UNCHANGED, Result, announce
from ..run import RunSpec, command_values
from ..run import plan as run_plan
from .state import (CONTINUE, Replay, Step, Stop, add_stop_hint, hint, interrupted_at,
                    safe_rel, step_result)
from .steps import base_for, replay_spec


def _array_of(step: Step) -> str | None:
    """The id of the array a run step's record belongs to (rr.array.id), or None."""
    if step.action != "run":
        return None
    info = (step.record or {}).get("rr")
    arr = info.get("array") if isinstance(info, dict) else None
    aid = arr.get("id") if isinstance(arr, dict) else None
    return aid if isinstance(aid, str) and aid else None


def front_batch(replay: Replay) -> list[Step]:
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


def drive_batch(replay: Replay, batch: list[Step]) -> Iterator[Result]:
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
        raise interrupted_at(step, replay.done + 1, replay.total) from None
    except RecorderError as exc:
        step = replay.steps[0] if replay.steps else batch[-1]
        if not replay.saved and replay.steps:
            replay.save_state(step)
            add_stop_hint(exc, step, replay.done + 1, replay.total)
        raise
    except BaseException:
        if not replay.saved and replay.steps:
            replay.save_state(replay.steps[0])
        raise
    yield from results
    if error is not None:
        if getattr(error, "later_jobs", ""):
            replay.warn(error.later_jobs)  # type: ignore[attr-defined]
        raise error


def shown_command(ds: Dataset, spec: RunSpec) -> str:
    """The command as the serial replay would announce it (the temporary directory, made
    by each job, shown as {tmpdir})."""
    try:
        p = run_plan(ds, spec, for_dry_run=True)
        command = expand(spec.cmd, command_values(ds, spec, p.in_hits, p.out_hits, "{tmpdir}"))
    except RecorderError:
        return spec.cmd
    if "datalad_container.adapters.docker" in command:
        command = registry.translate_recorded(command)
    return command


def _run_batch(replay: Replay, batch: list[Step]
               ) -> tuple[list[Result], BaseException | None]:
    """The jobs of the batch as array jobs (jobs.run_job in linked worktrees, on the engine),
    their commits written in order by the array's history writer; the replay's head, mapping
    and steps as the serial replay leaves them.  Returns the results and the error to stop
    with (None: all done)."""
    ds = replay.ds
    first_index = replay.done + 1
    replay.starting(first_index, batch[0])
    base_for(replay, batch[0])
    base = replay.head
    specs: list[RunSpec] = []
    for k, step in enumerate(batch):
        if k:
            replay.starting(first_index + k, step)
        specs.append(replay_spec(replay, step))
    if replay.on_event is not None:  # what runs is shown before it runs
        for spec in specs:
            replay.emit(announce(shown_command(ds, spec)))
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


def _finish_batch(replay: Replay, batch: list[Step], state: jobs.JobsState,
                  tasks: list[JobTask], first_index: int
                  ) -> tuple[list[Result], BaseException | None]:
    ds = replay.ds
    total = replay.total
    base = state["base"]
    outcomes: dict[int, JobOutcome | BaseException] = {}
    # one long-lived update-ref for the job refs, as an array's (each on disk when kept)
    with gitrepo.RefTransactions(ds.root) as refs:
        for pos, outcome in jobs.run_all(tasks, replay.target):
            outcomes[pos] = outcome
            if isinstance(outcome, JobOutcome) and outcome.status == JobStatus.OK:
                assert outcome.commit is not None
                jobs.keep(ds, state["id"], pos, outcome.commit, refs)
    done: dict[int, JobOutcome] = {}
    for k in range(len(batch)):
        got = outcomes.get(k)
        if not isinstance(got, JobOutcome) or got.status == JobStatus.FAILED:
            break
        done[k] = got
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
    results = _step_results(replay, batch[:len(batch) if stop is None else stop], done,
                            commit_of, base, first_index)
    if interrupted and replay.steps:
        replay.save_state(replay.steps[0], interrupted=True)
        return results, interrupted_at(replay.steps[0], replay.done + 1, total)
    if stop is None:
        return results, None
    return results, _batch_failure(replay, batch, stop, outcomes.get(stop), clash)


def _step_results(replay: Replay, steps: list[Step], done: dict[int, JobOutcome],
                  commit_of: dict[int, str], base: str, first_index: int) -> list[Result]:
    """The serial replay's bookkeeping for the steps whose jobs' history was written, step
    after step (the replay's head, mapping and steps as the serial replay leaves them)."""
    head = base
    results: list[Result] = []
    for k, step in enumerate(steps):
        outcome = done[k]
        if k:
            parent = steps[k - 1].commit
            if parent not in replay.mapping and parent != head:
                replay.mapping[parent] = head  # as base_for does for the next step
        if k in commit_of:
            head = commit_of[k]
            replay.mapping[step.commit] = head
            notes = [n for n in [step.note, *outcome.notes] if n]
            result = step_result(first_index + k, replay.total, "run", OK, step.commit, head,
                                step.subject, duration=outcome.duration,
                                note="; ".join(notes) or None)
        else:
            result = step_result(first_index + k, replay.total, "run", UNCHANGED, step.commit,
                                None, step.subject, duration=outcome.duration, note="; ".join(
                                    ["outputs identical to the recorded ones",
                                     *outcome.notes]))
        results.append(result)
        replay.head = head
        replay.steps.pop(0)
        replay.done += 1
    return results


def _batch_failure(replay: Replay, batch: list[Step], stop: int,
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
                f"{CONTINUE} runs them again")
        error.later_jobs = note  # type: ignore[attr-defined]
    return error


def _batch_error(ds: Dataset, step: Step, where: str,
                 outcome: JobOutcome | BaseException | None,
                 clash: jobs.JobState | None) -> RecorderError:
    if clash is not None:
        return RerunStoppedError(
            f"replay stopped at {where} '{step.subject}': {clash['error']}",
            hint=hint(Stop.NOT_INDEPENDENT))
    if not isinstance(outcome, JobOutcome):
        text = outcome.message if isinstance(outcome, RecorderError) else \
            f"{type(outcome).__name__}: {outcome}"
        return RerunStoppedError(f"replay stopped at {where} '{step.subject}': "
                                 f"{(text or 'the job failed').splitlines()[0]}",
                                 hint=hint(Stop.RESUME))
    if outcome.error == "CommandFailedError":
        return RerunStoppedError(
            f"replay stopped at {where} '{step.subject}': {outcome.message}",
            hint=hint(Stop.COMMAND_FAILED), exit_code=outcome.exit_code)
    job_hint = outcome.hint.replace(outcome.worktree, str(ds.root)) if outcome.hint else ""
    error = RecorderError(outcome.message, hint=((job_hint + "; ") if job_hint else "") +
                          hint(Stop.JOB_FAILED, where))
    error.exit_code = outcome.exit_code
    return error


def _take_over(ds: Dataset, wt: Path, step: Step) -> list[str]:
    """Put what a failed job changed in its worktree into the dataset's work tree, and its
    kept run message into .git/COMMIT_EDITMSG, where the serial replay leaves them."""
    paths: list[str] = []
    try:
        entries = gitrepo.iter_status(wt, untracked="all")
    except RecorderError:
        return paths
    for e in entries:
        if e.submodule or not safe_rel(e.path):
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
