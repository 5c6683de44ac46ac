"""rr rerun --jobs N: the jobs of an array replayed in parallel, the result as with --jobs 1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import RR, git, has_datalad, one_error_line, rr

# a job's output depends on V (the environment): a replay with another V makes new commits.
# With SYNC set, a job waits (up to 20 s, then fails) until two jobs have started: it only
# passes when jobs truly run at the same time.  With FAIL=s the job of s fails after writing.
JOB = ("mkdir -p out && cat a.txt > out/{s}.txt && echo {s} $V >> out/{s}.txt && "
       "if [ -n \"$SYNC\" ]; then touch \"$SYNC/{s}\"; n=0; "
       "while [ $(ls \"$SYNC\" | wc -l) -lt 2 ]; do n=$((n+1)); "
       "[ $n -gt 200 ] && exit 9; sleep 0.1; done; fi; "
       "[ \"$FAIL\" != {s} ] || exit 3; sleep 0$SLEEP")


@pytest.fixture(scope="module")
def _array_template(tmp_path_factory, _template) -> Path:
    ds = tmp_path_factory.mktemp("rerunjobs") / "ds"
    shutil.copytree(_template, ds, symlinks=True)
    # records compared byte for byte between parallel and serial replays: without the
    # machine's facts and the resources, which differ from run to run by nature
    git("config", "rr.run.record-environment", "false", cwd=ds)
    env = {"V": "1"}
    rr("run", "-o", "a.txt", "echo a $V > a.txt", cwd=ds, env=env)
    rr("run", "--param", "s=1,2,3,4", "-i", "a.txt", "-o", "out/{s}.txt", JOB, cwd=ds, env=env)
    rr("run", "-i", "out", "-o", "sum.txt", "cat out/* > sum.txt; echo $V >> sum.txt", cwd=ds,
       env=env)
    assert git("rev-list", "--count", "HEAD", cwd=ds).strip() == "7"
    return ds


@pytest.fixture
def with_array(_array_template, tmp_path) -> Path:
    """An ordinary run, an array of 4 jobs, an ordinary run (recorded with V=1)."""
    ds = tmp_path / "ds"
    shutil.copytree(_array_template, ds, symlinks=True)
    return ds


def messages(ds: Path, rng: str) -> str:
    return git("log", "--format=%B", rng, cwd=ds)


def no_leftovers(ds: Path) -> None:
    assert git("worktree", "list", "--porcelain", cwd=ds).count("worktree ") == 1
    assert git("for-each-ref", "refs/rr", cwd=ds) == ""
    assert not (ds / ".git" / "rr-arrays").exists() or \
        not list((ds / ".git" / "rr-arrays").iterdir())
    assert not (ds / ".git" / "rr-rerun.json").exists()


def comparable(results: list[dict]) -> list[tuple]:
    return [(r["index"], r["total"], r["action"], r["status"], r["commit"], r["subject"],
             r["new_commit"] is None, r["note"]) for r in results]


@pytest.mark.slow
def test_jobs_2_gives_what_jobs_1_gives(with_array, tmp_path):
    ds = with_array
    sync = tmp_path / "sync"
    sync.mkdir()
    par = rr("rerun", "--jobs", "2", "--json", "--branch", "par", "--since=HEAD~6", "HEAD",
             cwd=ds, env={"V": "2", "SYNC": str(sync)})  # fails unless two jobs run at once
    assert sorted(p.name for p in sync.iterdir()) == ["1", "2", "3", "4"]
    assert git("branch", "--show-current", cwd=ds).strip() == "par"
    no_leftovers(ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    git("checkout", "-q", "master", cwd=ds)
    # executed, as the parallel replay was (else its jobs are restored from par's commits)
    ser = rr("rerun", "--no-cache", "--json", "--branch", "ser", "--since=HEAD~6", "HEAD",
             cwd=ds, env={"V": "2"})
    # the same records in the same order, the same trees, the same per-step results
    assert messages(ds, "master..par") == messages(ds, "master..ser")
    assert git("rev-parse", "par^{tree}", cwd=ds) == git("rev-parse", "ser^{tree}", cwd=ds)
    for k in range(6):
        assert git("rev-parse", f"par~{k}^{{tree}}", cwd=ds) == \
            git("rev-parse", f"ser~{k}^{{tree}}", cwd=ds)
    assert git("rev-list", "--count", "master..par", cwd=ds).strip() == "6"
    assert git("rev-list", "--merges", "master..par", cwd=ds) == ""
    rp = [json.loads(x) for x in par.stdout.splitlines()]
    rs = [json.loads(x) for x in ser.stdout.splitlines()]
    assert rp[0]["subject"].endswith(" on new branch par")
    assert comparable(rp[1:]) == comparable(rs[1:])
    assert [r["status"] for r in rp] == ["ok"] * 7
    # every command announced before it ran: the array's four before any of them
    announced = [x for x in par.stderr.splitlines() if x.startswith("rr: running: ")]
    assert announced == [x for x in ser.stderr.splitlines() if x.startswith("rr: running: ")]
    assert len(announced) == 6
    # each new commit has its note (the duration), as the serial replay writes it
    notes = git("notes", "--ref=rr", "list", cwd=ds)
    for k in range(6):
        assert git("rev-parse", f"par~{k}", cwd=ds).strip() in notes
    assert "2\n" in (ds / "sum.txt").read_text()
    assert (ds / "out" / "3.txt").read_text() == "a 2\n3 2\n"
    if has_datalad():  # a commit made by rr rerun --jobs is replayable by DataLad
        git("checkout", "-q", "par", cwd=ds)
        subprocess.run(["datalad", "rerun", "par~2"], cwd=ds, check=True, capture_output=True,
                       env={**os.environ, "V": "3"})
        assert (ds / "out" / "3.txt").read_text() == "a 2\n3 3\n"
        assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.slow
def test_failing_job_stops_the_replay_as_the_serial_one_does(with_array, tmp_path):
    ds = with_array
    other = tmp_path / "serial"
    shutil.copytree(ds, other, symlinks=True)
    env = {"V": "2", "FAIL": "3"}
    par = rr("rerun", "--jobs", "2", "--since=HEAD~6", "HEAD", cwd=ds, env=env, check=False)
    ser = rr("rerun", "--since=HEAD~6", "HEAD", cwd=other, env=env, check=False)
    assert par.returncode == ser.returncode == 3
    assert one_error_line(par.stderr) == one_error_line(ser.stderr)
    assert "replay stopped at" in one_error_line(par.stderr)
    assert "rr: warning: 1 later job(s) of the array ran" in par.stderr
    # what was done is committed in order; the failed job's outputs and message are kept
    assert messages(ds, "HEAD~4..HEAD") == messages(other, "HEAD~4..HEAD")
    assert git("rev-parse", "HEAD^{tree}", cwd=ds) == git("rev-parse", "HEAD^{tree}", cwd=other)
    assert git("status", "--porcelain", cwd=ds) == git("status", "--porcelain", cwd=other)
    assert "out/3.txt" in git("status", "--porcelain", cwd=ds)
    assert (ds / "out" / "3.txt").read_text() == (other / "out" / "3.txt").read_text()
    assert (ds / ".git" / "COMMIT_EDITMSG").read_text() == \
        (other / ".git" / "COMMIT_EDITMSG").read_text()
    state_p = json.loads((ds / ".git" / "rr-rerun.json").read_text())
    state_s = json.loads((other / ".git" / "rr-rerun.json").read_text())
    for key in ("done", "total", "touched", "branch_name", "interrupted"):
        assert state_p[key] == state_s[key], key
    assert [s["commit"] for s in state_p["steps"]] == [s["commit"] for s in state_s["steps"]]
    assert git("worktree", "list", "--porcelain", cwd=ds).count("worktree ") == 1
    assert git("for-each-ref", "refs/rr", cwd=ds) == ""
    # the replay goes on from there: the rest, the array's last job too, in order
    rr("rerun", "--abort", cwd=ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    no_leftovers(ds)


@pytest.mark.slow
def test_ctrl_c_during_a_batch_leaves_a_consistent_dataset(with_array, tmp_path):
    ds = with_array
    sync = tmp_path / "sync"
    sync.mkdir()
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    child = subprocess.Popen([RR, "rerun", "--jobs", "2", "--since=HEAD~6", "HEAD"], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "V": "2", "SYNC": str(sync), "SLEEP": "30"})
    deadline = time.monotonic() + 60
    while len(list(sync.iterdir())) < 2:  # two jobs are running (and sleeping)
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "rr: error: replay interrupted at" in err and "rr rerun --continue" in err
    # the step before the batch is done; nothing of the batch is half-written
    assert git("rev-parse", "HEAD~1", cwd=ds).strip() == head
    assert git("status", "--porcelain", cwd=ds) == ""
    assert git("worktree", "list", "--porcelain", cwd=ds).count("worktree ") == 1
    assert git("for-each-ref", "refs/rr", cwd=ds) == ""
    state = json.loads((ds / ".git" / "rr-rerun.json").read_text())
    assert state["interrupted"] and state["done"] == 1 and len(state["steps"]) == 5
    rr("rerun", "--continue", cwd=ds, env={"V": "2"})
    assert git("rev-list", "--count", f"{head}..HEAD", cwd=ds).strip() == "6"
    assert (ds / "out" / "4.txt").read_text() == "a 2\n4 2\n"
    no_leftovers(ds)


def test_other_records_in_order_and_no_dask_without_jobs(ds):
    """Records of no array (rr's or DataLad's) are replayed one after the other as before;
    without --jobs (or when nothing runs in parallel) Dask is never imported."""
    git("config", "rr.run.record-environment", "false", cwd=ds)  # records compared bytewise
    rr("run", "-o", "x.txt", "echo $V > x.txt", cwd=ds, env={"V": "1"})
    rr("run", "-o", "y.txt", "cat x.txt > y.txt", cwd=ds)
    if has_datalad():
        subprocess.run(["datalad", "run", "-o", "z.txt", "cat y.txt x.txt > z.txt"], cwd=ds,
                       check=True, capture_output=True, env={**os.environ})
    n = 3 if has_datalad() else 2
    code = ("import sys, os\nfrom recorder import api\n"
            "res = list(api.rerun(sys.argv[1], dataset='.', since=sys.argv[2], "
            "jobs=int(sys.argv[3]) if sys.argv[3] else None))\n"
            "print(sum(r.status == 'ok' for r in res))\n"
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n")
    other = ds.parent / "other"
    shutil.copytree(ds, other, symlinks=True)
    env = {**os.environ, "V": "2"}
    for where, jobs in ((ds, "2"), (other, "")):
        out = subprocess.run([sys.executable, "-c", code, "HEAD", f"HEAD~{n}", jobs], cwd=where,
                             capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == str(n)
    assert messages(ds, f"HEAD~{n}..HEAD") == messages(other, f"HEAD~{n}..HEAD")
    assert git("rev-parse", "HEAD^{tree}", cwd=ds) == git("rev-parse", "HEAD^{tree}", cwd=other)


def test_bad_jobs_and_scheduler(ds, tmp_path):
    rr("run", "-o", "x.txt", "echo 1 > x.txt", cwd=ds)
    head = git("rev-parse", "HEAD", cwd=ds)
    proc = rr("rerun", "--jobs", "0", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "--jobs must be a whole number of at least 1, not 0" in one_error_line(proc.stderr)
    proc = rr("rerun", "--jobs", "2", "--scheduler", "nonsense", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "unknown scheduler 'nonsense'" in one_error_line(proc.stderr)
    assert "rr: hint:" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=ds) == head
    proc = rr("rerun", "--jobs", "2", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    one_error_line(proc.stderr)
    assert "Example: rr rerun --jobs" in rr("rerun", "--help").stdout
    # the plan is the same with --jobs
    assert rr("rerun", "--report", "--jobs", "2", cwd=ds).stdout == \
        rr("rerun", "--report", cwd=ds).stdout
