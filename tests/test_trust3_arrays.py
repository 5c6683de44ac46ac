"""Arrays as faithful as a loop of rr runs (issue 20, item 3): a job's own commits kept,
outputs in subdatasets refused before anything runs, the state file and the branch moving
together under SIGKILL/SIGINT, a second driver refused by the lock, a history-writer failure
naming rr run --continue."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import RR, git, one_error_line, rr


def log(ds: Path, *args: str) -> list[str]:
    return git("log", "--format=%s", *args, cwd=ds).splitlines()


def runs(ds: Path) -> list[str]:
    """What the array's commands appended to ran.log (next to the dataset)."""
    path = ds.parent / "ran.log"
    return path.read_text().split() if path.exists() else []


def clean(ds: Path) -> None:
    assert git("worktree", "list", "--porcelain", cwd=ds).count("worktree ") == 1
    assert git("for-each-ref", "refs/rr", cwd=ds) == ""
    assert not list((ds / ".git").glob("rr-arrays/*.json"))
    assert git("status", "--porcelain", cwd=ds) == ""


def test_a_job_whose_command_commits_keeps_its_commits(ds):
    """As a loop of rr run: each job a run-merge of the command's own commits, the files in
    the branch and the work tree."""
    cmd = ("echo {i} > o{i} && git add o{i} && git commit -qm own{i} && "
           "echo p{i} > p{i} && git add p{i} && git commit -qm second{i} && echo r > r{i}")
    rr("run", "--param", "i=1,2", "-o", "o{i}", cmd, cwd=ds)
    for i in ("1", "2"):
        assert (ds / f"o{i}").read_text() == f"{i}\n"
        assert (ds / f"p{i}").read_text() == f"p{i}\n"
        assert (ds / f"r{i}").read_text() == "r\n"
    first_parent = log(ds, "--first-parent", "-2")
    assert all(s.startswith("[DATALAD RUNCMD]") for s in first_parent)
    assert log(ds, "HEAD^2", "-3") == ["Remaining changes after command execution",
                                       "second2", "own2"]
    assert log(ds, "HEAD~1^2", "-3") == ["Remaining changes after command execution",
                                         "second1", "own1"]
    # job 2's own commits sit on job 1's run: its tree has job 1's files
    names = git("ls-tree", "--name-only", "HEAD^2~2", cwd=ds).split()
    assert {"o1", "p1", "r1", "o2"} <= set(names) and "p2" not in names
    assert git("rev-parse", "HEAD^2~2^", cwd=ds) == git("rev-parse", "HEAD~1", cwd=ds)
    clean(ds)


def test_a_job_with_a_plain_commit_of_its_own_and_nothing_left(ds):
    rr("run", "--param", "i=1,2", "-o", "o{i}",
       "echo {i} > o{i} && git add o{i} && git commit -qm own{i}", cwd=ds)
    assert log(ds, "HEAD^2", "-1") == ["own2"]
    assert sorted(git("ls-tree", "--name-only", "HEAD", cwd=ds).split())[-2:] == ["o1", "o2"]
    clean(ds)


@pytest.fixture
def with_sub(ds):
    rr("create", "-d", str(ds), str(ds / "sub"), cwd=ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    return ds


@pytest.mark.parametrize("param, output", [
    ("i=1,2", "sub/o{i}"), ("i=1,2", "s*/o{i}"), ("i=1,2", "./sub/x/{i}"),
    ("i=1,2", "x/../sub/{i}"), ("d=sub,x", "{d}"), ("d=b,c", "*{d}"),
])
def test_outputs_in_a_subdataset_are_refused_before_anything_runs(with_sub, param, output):
    ds = with_sub
    head = git("rev-parse", "HEAD", cwd=ds)
    sub_head = git("rev-parse", "HEAD", cwd=ds / "sub")
    proc = rr("run", "--param", param, "-o", output,
              f"echo x >> {ds.parent}/ran.log; touch {{outputs}}", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "subdataset sub" in one_error_line(proc.stderr)
    assert runs(ds) == []
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert git("rev-parse", "HEAD", cwd=ds / "sub") == sub_head
    clean(ds)


def test_outputs_beside_a_subdataset_still_run(with_sub):
    ds = with_sub
    rr("run", "--param", "i=1,2", "-o", "out/{i}", "mkdir -p out && echo {i} > out/{i}",
       cwd=ds)
    assert (ds / "out" / "2").read_text() == "2\n"
    clean(ds)


# --- the state file and the branch move together ----------------------------------------------

HOOK = """#!/bin/sh
# kill the rr driver when the jobs' history moves the branch ({when})
input=$(cat)
case "$input" in *refs/heads/*) ;; *) exit 0 ;; esac
case "$input" in *refs/rr/jobs/*) ;; *) exit 0 ;; esac
test "$1" = {when} || exit 0
test -e {pidfile} || exit 0
{action}
exit 0
"""


def hook(ds: Path, when: str, action: str) -> None:
    path = ds / ".git" / "hooks" / "reference-transaction"
    path.write_text(HOOK.format(when=when, pidfile=ds.parent / "pid", action=action))
    path.chmod(0o755)


def start_array(ds: Path, values: str = "1,2,3") -> subprocess.Popen:
    child = subprocess.Popen([RR, "run", "--param", f"i={values}", "-o", "o{i}",
                              f"echo {{i}} >> {ds.parent}/ran.log; echo {{i}} > o{{i}}"],
                             cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (ds.parent / "pid").write_text(str(child.pid))
    return child


@pytest.mark.slow
def test_sigkill_right_after_the_branch_moved_never_runs_the_jobs_again(ds):
    hook(ds, "committed", 'kill -KILL "$(cat {pid})"'.format(pid=ds.parent / "pid"))
    child = start_array(ds)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert sorted(runs(ds)) == ["1", "2", "3"]
    assert len([s for s in log(ds) if s.startswith("[DATALAD RUNCMD]")]) == 3
    (ds / ".git" / "hooks" / "reference-transaction").unlink()
    proc = rr("run", "--continue", cwd=ds, check=False)
    assert sorted(runs(ds)) == ["1", "2", "3"], proc.stderr  # nothing ran twice
    assert len([s for s in log(ds) if s.startswith("[DATALAD RUNCMD]")]) == 3
    assert proc.returncode == 0, proc.stderr
    clean(ds)


@pytest.mark.slow
def test_sigint_while_the_branch_moves_says_the_history_was_written(ds):
    hook(ds, "prepared", 'kill -INT "$(cat {pid})"'.format(pid=ds.parent / "pid"))
    child = start_array(ds)
    _out, err = child.communicate(timeout=120)
    assert child.returncode != 0
    line = one_error_line(err)
    assert "after the jobs' history was written: 3 job(s) committed on master" in line, err
    (ds / ".git" / "hooks" / "reference-transaction").unlink()
    assert len([s for s in log(ds) if s.startswith("[DATALAD RUNCMD]")]) == 3
    proc = rr("run", "--continue", cwd=ds, check=False)
    assert "no unfinished array" in proc.stderr
    assert sorted(runs(ds)) == ["1", "2", "3"]
    clean(ds)


@pytest.mark.slow
def test_a_history_writer_failure_names_rr_run_continue(ds):
    path = ds / ".git" / "hooks" / "reference-transaction"
    path.write_text(HOOK.format(when="prepared", pidfile=ds.parent / "pid", action="exit 1"))
    path.chmod(0o755)
    head = git("rev-parse", "HEAD", cwd=ds)
    child = start_array(ds)
    _out, err = child.communicate(timeout=120)
    assert child.returncode != 0
    one_error_line(err)
    (array_id,) = [p.stem for p in (ds / ".git" / "rr-arrays").glob("*.json")]
    assert f"rr run --continue {array_id}" in err
    assert git("rev-parse", "HEAD", cwd=ds) == head
    path.unlink()
    rr("run", "--continue", array_id, cwd=ds)
    assert sorted(runs(ds)) == ["1", "2", "3"]  # the finished jobs were not run again
    assert [(ds / f"o{i}").read_text() for i in "123"] == ["1\n", "2\n", "3\n"]
    clean(ds)


@pytest.mark.slow
def test_a_second_continue_while_the_driver_runs_is_refused_by_the_lock(ds):
    go, gate = ds.parent / "go", ds.parent / "gate"
    cmd = (f"echo {{i}} >> {ds.parent}/ran.log && if test {{i}} = 2; then test -e {go} && "
           f"while ! test -e {gate}; do sleep 0.05; done; fi && echo {{i}} > o{{i}}")
    proc = rr("run", "--param", "i=1,2", "-o", "o{i}", cmd, cwd=ds, check=False)
    assert proc.returncode != 0 and sorted(runs(ds)) == ["1", "2"]
    (ds.parent / "ran.log").unlink()
    go.write_text("")
    child = subprocess.Popen([RR, "run", "--continue"], cwd=ds, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not runs(ds):  # job 2 runs again, waiting at the gate
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    wts = ds / ".git" / "rr-arrays"
    worktrees = sorted(wts.glob("*/*"))
    second = rr("run", "--continue", cwd=ds, check=False)
    assert second.returncode != 0
    assert "is being run by pid" in one_error_line(second.stderr)
    assert sorted(wts.glob("*/*")) == worktrees  # the running job's worktree is left alone
    assert runs(ds) == ["2"]
    gate.write_text("")
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert runs(ds) == ["2"]
    assert (ds / "o2").read_text() == "2\n"
    clean(ds)
