"""Signals in every window (issue 20, item 7): a SIGINT/SIGTERM that arrives while a tool is
being started (between the fork and the code that stops it) still stops that tool; a
consumer interrupted between two records of ``git annex get`` stops it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import pytest

from recorder import proc


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def signal_while_starting(monkeypatch):
    """Every tool started gets a signal to rr right after its fork, before the caller could
    register it; the started pids are collected."""
    started: list[int] = []
    real = proc._start_tool
    which: list[int] = [signal.SIGINT]

    def start_then_signal(*args, **kwargs):
        child = real(*args, **kwargs)
        started.append(child.pid)
        os.kill(os.getpid(), which[0])
        time.sleep(0.1)  # the signal is surely pending now
        return child

    monkeypatch.setattr(proc, "_start_tool", start_then_signal)
    previous = signal.signal(signal.SIGTERM, proc._raise_terminated)
    yield started, which
    signal.signal(signal.SIGTERM, previous)
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


CALLS = {
    "capture": lambda: proc.capture(["sleep", "30"]),
    "popen_lines": lambda: proc.popen_lines(["sleep", "30"]).__enter__(),
    "stream_into": lambda: proc.stream_into(["sleep", "30"], lambda fh: None),
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_signal_while_a_tool_starts_stops_the_tool(signal_while_starting, call, sig):
    started, which = signal_while_starting
    which[0] = sig
    with pytest.raises(KeyboardInterrupt):
        CALLS[call]()
    assert started and not alive(started[-1])


def test_no_signal_handler_is_left_behind_by_starting_tools():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert proc.capture(["true"]).returncode == 0
    with proc.popen_lines(["true"]) as child:
        child.wait()
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_tool_does_not_inherit_held_signals():
    out = proc.capture(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]).stdout.decode()
    blocked = int(out.split("SigBlk:")[1].split()[0], 16)
    assert not blocked & ((1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1)))


def test_rr_interrupted_while_starting_many_tools_leaves_none(ds):
    """rr status starts git processes; SIGINT at random moments never leaves one behind."""
    from .conftest import RR

    for delay in (0.05, 0.1, 0.15, 0.2, 0.3):
        p = subprocess.Popen([RR, "status"], cwd=ds, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    # every git started from the dataset is gone
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(ds):
                    left.append(entry)
            except OSError:
                pass
    assert left == []


@pytest.mark.slow
def test_ctrl_c_while_the_dask_cluster_starts_leaves_no_worker(ds):
    """SIGINT as soon as rr forks its first Dask process (the cluster is starting): rr ends
    with 130, no worker is left, nothing is written; --continue runs the array."""
    import psutil

    from .conftest import RR, git, rr

    head = git("rev-parse", "HEAD", cwd=ds)
    child = subprocess.Popen([RR, "run", "-J", "2", "--param", "i=1,2", "-o", "o{i}",
                              "echo {i} > o{i}"], cwd=ds, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    me = psutil.Process(child.pid)
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while not seen:
        assert time.monotonic() < deadline and child.poll() is None
        with contextlib.suppress(psutil.Error):
            seen = {p.pid for p in me.children(recursive=True)
                    if "git" not in p.name()}
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    time.sleep(0.5)
    assert [p for p in seen if alive(p)] == []
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert git("status", "--porcelain", cwd=ds) == ""
    assert git("worktree", "list", cwd=ds).count("\n") == 1
    if list((ds / ".git").glob("rr-arrays/*.json")):
        rr("run", "--continue", cwd=ds)
        assert (ds / "o2").read_text() == "2\n"



@pytest.mark.slow
def test_ctrl_c_while_rr_imports_is_no_traceback_of_rr(ds):
    """SIGINT before main() set its handlers: rr's own imports (typer, its modules) end with
    "rr: interrupted" and 130, not a traceback; Python's start-up before rr's code runs is
    beyond rr."""
    from .conftest import RR

    for delay in (0.05, 0.08, 0.1, 0.12, 0.15, 0.18, 0.2, 0.25):
        p = subprocess.Popen([RR, "status"], cwd=ds, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=30)
        if "Traceback" in err:
            assert "/recorder/" not in err and "/typer/" not in err, err
