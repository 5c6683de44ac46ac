"""Array jobs: per-job overhead flat and small (issue #22 row 7, item 5).  Counts, not times:
the git processes a job costs beyond the run itself, a reused worktree that is exactly the
base commit whatever the last job left in it, and the worker's long-lived helpers closed."""

from __future__ import annotations

import collections
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from recorder import api, jobs

from .conftest import git, one_commit_repo, rr


def _git_counts(ds: Path, tmp_path: Path, n: int, *args: str) -> collections.Counter:
    """git processes by subcommand that an array of ``n`` no-op jobs started (GIT_TRACE:
    the driver's, the jobs', git-annex's)."""
    trace = tmp_path / f"git-trace-{n}"
    trace.unlink(missing_ok=True)
    values = ",".join(str(i) for i in range(n))
    rr("run", *args, "--param", f"i={values}", "-o", "out/{i}",
       "mkdir -p out; echo {i} > out/{i}", cwd=ds, env={"GIT_TRACE": str(trace)})
    assert git("status", "--porcelain", cwd=ds) == ""
    assert sorted(os.listdir(ds / "out")) == [str(i) for i in range(n)]
    counts: collections.Counter = collections.Counter()
    for line in trace.read_text().splitlines():
        if "trace: built-in: git " in line:
            counts[line.split("trace: built-in: git ", 1)[1].split(" ", 1)[0]] += 1
    return counts


def _per_job(tmp_path: Path, *args: str) -> dict[str, float]:
    """git processes per job by subcommand: the growth from 2 to 5 jobs, per job."""
    found = {}
    for n in (2, 5):
        ds = tmp_path / f"ds{n}"
        api.create(ds)
        found[n] = _git_counts(ds, tmp_path, n, *args)
    return {sub: (found[5][sub] - found[2][sub]) / 3 for sub in found[5] | found[2]}


@pytest.mark.slow
def test_a_job_costs_one_status_and_one_ref_update(tmp_path):
    """Beyond its run: the worktree is reset (and not checked again with a status: it is the
    base exactly), the job's ref goes through the driver's one ``update-ref --stdin``."""
    per_job = _per_job(tmp_path)
    # the run's own status of what changed; main's code took one more to check the reset
    # worktree was clean
    assert per_job["status"] <= 1, per_job
    # the job's own commit moves its worktree's HEAD; main's code spawned one more per job
    # for the job ref in the driver
    assert per_job["update-ref"] <= 1, per_job
    assert per_job["reset"] <= 1 and per_job["clean"] <= 1, per_job
    assert per_job.get("worktree", 0) == 0, per_job  # one worktree for all jobs of a worker
    # git's automatic maintenance once per worker's slot (gc off in jobs), not once per job
    assert per_job.get("maintenance", 0) == 0, per_job


@pytest.mark.slow
def test_on_dask_a_job_costs_one_status_and_one_ref_update(tmp_path):
    per_job = _per_job(tmp_path, "-J", "2")
    assert per_job["status"] <= 1, per_job
    assert per_job["update-ref"] <= 1, per_job
    assert per_job.get("maintenance", 0) == 0, per_job


# what job 0 leaves in its worktree, run as the array's command: an untracked file, an
# ignored file, an empty directory, a changed tracked file, a deleted tracked file
LITTER = ("echo junk > untracked.tmp; echo junk > ignored.junk; mkdir -p empty/dir; "
          "echo changed > tracked.txt; rm gone.txt")
LOOK = "basename \"$PWD\"; ls -A | grep -v '^.git$' | LC_ALL=C sort; cat tracked.txt"


def _litter_dataset(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    api.create(ds)
    (ds / ".gitignore").write_text("*.junk\n")
    (ds / "tracked.txt").write_text("base\n")
    (ds / "gone.txt").write_text("here\n")
    rr("save", "-m", "base", cwd=ds)
    return ds


@pytest.mark.slow
@pytest.mark.parametrize("explicit", [True, False])
def test_a_reused_worktree_is_the_base_commit_whatever_the_last_job_left(tmp_path, explicit):
    """Job 0 litters its worktree (its changes saved or, with --explicit, left there); job 1
    runs in the same worktree (serial: one slot) and sees the base tree exactly."""
    ds = _litter_dataset(tmp_path)
    base_listing = sorted(p for p in os.listdir(ds) if p != ".git")
    cmd = (f"if test {{i}} = 0; then {LITTER}; fi; mkdir -p out; "
           f"({LOOK}) > out/{{i}}.txt")
    rr("run", *(["--explicit"] if explicit else []), "--param", "i=0,1",
       "-o", "out/{i}.txt", cmd, cwd=ds)
    seen0 = (ds / "out" / "0.txt").read_text().splitlines()
    seen1 = (ds / "out" / "1.txt").read_text().splitlines()
    assert seen0[0] == seen1[0], (seen0, seen1)  # the same worktree, reused
    assert seen1[1:] == sorted(base_listing + ["out"]) + ["base"], seen1
    # job 0's litter is in its record only where it was saved: never in job 1's
    changed1 = git("show", "--name-status", "--format=", "HEAD", cwd=ds).split()
    assert changed1 == ["A", "out/1.txt"], changed1


class _Helpers:
    """Instrumented helpers of a slot: a file per entered and per closed helper (the jobs
    may run in Dask's worker processes: files are what the test can see)."""

    def __init__(self, where: Path) -> None:
        self.where = where

    def __call__(self, slot: jobs._Slot) -> None:
        tag = f"{os.getpid()}-{Path(slot.ds.root).name}"
        (self.where / f"open-{tag}").touch()
        slot.helpers.callback((self.where / f"closed-{tag}").touch)


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [None, 2])
def test_the_worker_helpers_are_entered_once_per_worktree_and_closed(tmp_path, monkeypatch,
                                                                       parallel):
    ds = tmp_path / "ds"
    api.create(ds)
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(jobs, "_enter_helpers", _Helpers(marks))
    fail = "if test {i} = 3; then exit 1; fi; echo {i} > o{i}"
    results = list(api.run_array(fail, dataset=ds, params=["i=0,1,2,3,4,5"],
                                 outputs=["o{i}"], jobs=parallel))
    assert [r.status for r in results].count("error") == 2  # job 3 and the array's result
    opened = sorted(p.name[5:] for p in marks.glob("open-*"))
    closed = sorted(p.name[7:] for p in marks.glob("closed-*"))
    assert opened and opened == closed, (opened, closed)
    # once per worktree: the failed job's worktree is kept (its helpers closed with it), a
    # worker that goes on makes another
    assert len(opened) <= (parallel or 1) + 1, opened
    assert not jobs._SLOTS


def test_ref_transactions_are_on_disk_when_update_returns_and_go_on_after_a_refusal(tmp_path):
    from recorder import gitrepo
    from recorder.errors import CommandError

    repo, head = one_commit_repo(tmp_path)
    with gitrepo.RefTransactions(repo) as refs:
        for i in range(3):
            refs.update([f"update refs/rr/jobs/x/{i} {head}"])
            # another process sees it at once: no batching behind the caller's back
            assert git("rev-parse", f"refs/rr/jobs/x/{i}", cwd=repo).strip() == head
        with pytest.raises(CommandError, match="update-ref"):
            refs.update([f"update refs/rr/jobs/x/0 {head} {'1' * 40}"])  # not at that value
        refs.update([f"delete refs/rr/jobs/x/{i}" for i in range(3)])
    assert git("for-each-ref", "refs/rr/", cwd=repo) == ""


def mark_and_return(arg):
    """A task: its marker file says it started (the driver may be busy meanwhile)."""
    where, index = arg
    Path(where, f"started-{index}").touch()
    return index


@pytest.mark.slow
def test_a_freed_worker_gets_its_next_task_while_the_driver_handles_a_result(tmp_path):
    """The driver holds on to the first result (as the array driver keeps a job ref and
    shows the result): the worker it freed has already been handed the next task, which
    starts meanwhile.  main's code handed it out only when the driver asked for the next
    result: a worker idled for the whole of the driver's work on each result."""
    from recorder.engine import execute_all

    items = [(str(tmp_path), i) for i in range(4)]
    gen = execute_all(mark_and_return, items, jobs=2)
    try:
        first, _ = next(gen)
        # two workers, two tasks in flight: one more started while the driver waits here
        deadline = 30.0
        step = 0.05
        while len(list(tmp_path.glob("started-*"))) < 3 and deadline > 0:
            time.sleep(step)
            deadline -= step
        started = sorted(p.name for p in tmp_path.glob("started-*"))
        assert len(started) >= 3, started
        rest = dict(gen)
    finally:
        gen.close()
    assert sorted([first, *rest]) == [0, 1, 2, 3]


def _annex_starts(ds: Path, tmp_path: Path, n: int, *args: str) -> collections.Counter:
    """git-annex processes by subcommand that an array of ``n`` no-op jobs started (a logging
    wrapper first on PATH: the driver's, the workers', the git-annex git starts as a filter)."""
    bindir = tmp_path / "wrap-bin"
    log = tmp_path / f"annex-starts-{n}.log"
    bindir.mkdir(exist_ok=True)
    real = shutil.which("git-annex")
    assert real
    script = bindir / "git-annex"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "$RR_TEST_ANNEX_LOG"\n'
                      f'exec "{real}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    values = ",".join(str(i) for i in range(n))
    rr("run", *args, "--param", f"i={values}", "-o", "out/{i}",
       "mkdir -p out; echo {i} > out/{i}", cwd=ds,
       env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "RR_TEST_ANNEX_LOG": str(log)})
    assert sorted(os.listdir(ds / "out")) == [str(i) for i in range(n)]
    git("annex", "fsck", "--fast", "--quiet", cwd=ds)
    return collections.Counter(log.read_text().split())


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [None, 2])
def test_a_worker_stages_every_job_through_one_git_annex(tmp_path, parallel):
    """The jobs of a worker stage their outputs through its slot's one ``git annex add
    --batch``: the git-annex processes of an array do not grow with its jobs (main's code
    started a git-annex add per job).  git's own filter-process starts (git-annex as the
    clean filter of files racily clean in a fresh worktree) depend on the clock, not on
    the jobs: left out."""
    args = ["-J", str(parallel)] if parallel else []
    workers = parallel or 1
    found = {}
    for n in (2, 10):
        ds = tmp_path / f"ds{n}"
        api.create(ds)
        found[n] = _annex_starts(ds, tmp_path, n, *args)
        found[n].pop("filter-process", None)
    assert found[10]["add"] <= workers + 1, found  # a worker restarted: one more
    assert sum(found[10].values()) <= sum(found[2].values()) + 1, found
