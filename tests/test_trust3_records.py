"""Issue 20 item 2: every command that ran keeps its record (in-flight claims that prove
nothing, bytes that are not UTF-8, commands that rewrite HEAD)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess

import time

import pytest

from .conftest import RR, git, last_message, one_error_line, rr


def _start(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return int(fh.read().rsplit(b")", 1)[1].split()[19])


@pytest.fixture
def live_process():
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def _claim(ds, name: int, **extra) -> None:
    (ds / ".git" / "rr-runs").mkdir(exist_ok=True)
    (ds / ".git" / "rr-runs" / str(name)).write_text(
        json.dumps({"outputs": ["."], "command": "forged", **extra}))


@pytest.mark.parametrize("proof", ["none", "reused-pid"])
def test_a_claim_that_proves_nothing_does_not_swallow_a_run(ds, live_process, proof):
    extra = {} if proof == "none" else {
        # everything an entry says, but not held by a running rr: a pid reused after a
        # SIGKILL looks like this
        "pid": live_process.pid, "start": _start(live_process.pid), "token": "ab" * 16}
    _claim(ds, live_process.pid, **extra)
    proc = rr("run", "echo z > z.txt", cwd=ds)
    assert "changed nothing" not in proc.stderr
    assert '"cmd": "echo z > z.txt"' in last_message(ds)
    assert "z.txt" in git("ls-files", cwd=ds)


def _kill_recorded(pidfile) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_a_claim_left_by_a_killed_run_claims_nothing(ds, tmp_path):
    pidfile = tmp_path / "pid"
    slow = subprocess.Popen([RR, "run", "--explicit", "-o", ".",
                             f"echo $$ > {pidfile}; exec sleep 600"], cwd=ds,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    entry = ds / ".git" / "rr-runs" / str(slow.pid)
    for _ in range(200):
        if entry.exists():
            break
        time.sleep(0.05)
    assert entry.exists()
    os.kill(slow.pid, signal.SIGKILL)  # rr dies, its command (sleep) lives on
    slow.wait()
    try:
        rr("run", "echo y > y.txt", cwd=ds)
        assert '"cmd": "echo y > y.txt"' in last_message(ds)
    finally:
        _kill_recorded(pidfile)


def test_changes_all_claimed_by_a_live_run_are_not_nothing_changed(ds, tmp_path):
    pidfile = tmp_path / "pid"
    slow = subprocess.Popen([RR, "run", "--explicit", "-o", "claimed",
                             f"echo $$ > {pidfile}; exec sleep 600"], cwd=ds,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        entry = ds / ".git" / "rr-runs" / str(slow.pid)
        for _ in range(200):
            if entry.exists():
                break
            time.sleep(0.05)
        assert entry.exists()
        proc = rr("run", "mkdir -p claimed && echo c > claimed/c.txt", cwd=ds, check=False)
        assert proc.returncode != 0
        assert "claimed" in one_error_line(proc.stderr)
        assert "changed nothing" not in proc.stderr
        kept = (ds / ".git" / "COMMIT_EDITMSG").read_text()
        assert "mkdir -p claimed" in kept
    finally:
        _kill_recorded(pidfile)
        slow.wait()


