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




# --- bytes that are not UTF-8 --------------------------------------------------------------

ODD = os.fsdecode(b"n\xff.txt")  # a file name that is not UTF-8 (surrogate-escaped)



@pytest.mark.parametrize("args", [
    ["echo \udcff > ran.txt"],
    ["-m", "msg \udcfe", "echo 1 > ran.txt"],
    ["-o", "out\udcfd", "echo 1 > ran.txt"],
    ["-i", "in\udcfc", "echo 1 > ran.txt"],
    ["--param", "v=a,\udcfb", "-o", "{v}.out", "echo {v} > {v}.out; echo 1 > ran.txt"],
], ids=["command", "message", "output", "input", "param"])
def test_bytes_that_are_not_utf8_are_refused_before_anything_runs(ds, args):
    before = git("rev-parse", "HEAD", cwd=ds)
    proc = rr("run", *args, cwd=ds, check=False)
    assert proc.returncode != 0
    assert "not UTF-8" in one_error_line(proc.stderr)
    assert not (ds / "ran.txt").exists() and not (ds / "a.out").exists()
    assert git("rev-parse", "HEAD", cwd=ds) == before
    assert not git("status", "--porcelain", cwd=ds).strip()


def test_a_run_in_a_directory_not_named_in_utf8_is_refused_before_it_runs(ds):
    odd = ds / os.fsdecode(b"d\xfb")
    odd.mkdir()
    (odd / "keep").write_text("k\n")
    rr("save", "-m", "odd dir", cwd=ds)
    proc = rr("run", "echo 1 > ran.txt", cwd=odd, check=False)
    assert proc.returncode != 0
    assert "not UTF-8" in one_error_line(proc.stderr)
    assert not (odd / "ran.txt").exists()


def _tracked(ds) -> set[bytes]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ds, check=True,
                         capture_output=True).stdout
    return set(out.split(b"\0")) - {b""}


def test_run_saves_a_file_whose_name_is_not_utf8(ds):
    proc = rr("run", 'printf x > "$(printf "n\\377.txt")"; echo ok > ok.txt', cwd=ds)
    assert "saved 2 path(s)" in proc.stderr
    assert {b"n\xff.txt", b"ok.txt"} <= _tracked(ds)
    assert not git("status", "--porcelain", cwd=ds).strip()
    assert "[DATALAD RUNCMD]" in last_message(ds)


def test_run_with_expanded_globs_over_names_not_utf8_records_the_globs(ds):
    rr("run", "--expand", "both", "-o", "e*",
       'mkdir -p "$(printf "e\\372")"; echo 2 > "$(printf "e\\372")/g"', cwd=ds)
    assert b"e\xfa/g" in _tracked(ds)
    assert '"e*"' in last_message(ds)


def test_save_saves_names_not_utf8_whole_and_named(ds):
    (ds / ODD).write_text("x\n")
    (ds / "plain.txt").write_text("p\n")
    rr("save", "-m", "all", cwd=ds)
    assert {b"n\xff.txt", b"plain.txt"} <= _tracked(ds)
    assert not git("status", "--porcelain", cwd=ds).strip()
    named = ds / os.fsdecode(b"m\xfe.txt")
    named.write_text("y\n")
    (ds / "other.txt").write_text("o\n")
    rr("save", "-m", "named", named.name, cwd=ds)
    assert b"m\xfe.txt" in _tracked(ds)
    # the other change is neither committed nor left staged
    assert git("status", "--porcelain", cwd=ds).strip() == "?? other.txt"


# --- a command that amends or rewinds HEAD -------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("rewrite", [
    "git add b.txt && git commit -q --amend -m amended",
    "git reset -q --soft HEAD~1",
    "git reset -q --hard HEAD~1 && echo b > b.txt",
], ids=["amend", "reset-soft", "reset-hard"])
def test_a_command_that_rewrites_head_is_refused_and_the_hint_saves_the_run(ds, rewrite):
    (ds / "a.txt").write_text("a\n")
    rr("save", "-m", "a", cwd=ds)
    started = git("rev-parse", "HEAD", cwd=ds).strip()
    proc = rr("run", f"echo b > b.txt && {rewrite}", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "rewrote history" in one_error_line(proc.stderr)
    # rr added no commit of its own to the rewritten branch
    assert "[DATALAD RUNCMD]" not in git("log", "--format=%B", cwd=ds)
    assert "Remaining changes" not in git("log", "--format=%B", cwd=ds)
    hint = [x for x in proc.stderr.splitlines() if x.startswith("rr: hint:")][0]
    assert f"reset --soft {started[:12]}" in hint and "rr save -F .git/COMMIT_EDITMSG" in hint
    git("reset", "-q", "--soft", started, cwd=ds)
    rr("save", "-F", ".git/COMMIT_EDITMSG", cwd=ds)
    assert git("rev-parse", "HEAD~1", cwd=ds).strip() == started
    assert '"cmd": "echo b > b.txt && ' in last_message(ds)
    assert "b.txt" in git("ls-files", cwd=ds)


def test_save_with_a_message_not_utf8_is_one_line_and_stages_nothing(ds):
    (ds / "w.txt").write_text("w\n")
    proc = rr("save", "-m", "m\udcf8", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "not UTF-8" in one_error_line(proc.stderr)
    assert git("status", "--porcelain", cwd=ds).strip() == "?? w.txt"


def test_a_save_that_fails_leaves_nothing_staged(ds):
    hook = ds / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho refused by the hook >&2\nexit 1\n")
    hook.chmod(0o755)
    (ds / "w.txt").write_text("w\n")
    (ds / "big.dat").write_bytes(os.urandom(4096))
    proc = rr("save", "-m", "w", cwd=ds, check=False)
    assert proc.returncode != 0
    assert sorted(git("status", "--porcelain", cwd=ds).split("\n")) == \
        ["", "?? big.dat", "?? w.txt"]


@pytest.mark.slow
def test_get_and_drop_handle_names_not_utf8(ds, tmp_path):
    (ds / ODD).write_text("odd content\n")
    rr("save", "-m", "odd", cwd=ds)
    clone = tmp_path / "clone"
    rr("clone", str(ds), str(clone), cwd=tmp_path)
    rr("get", ODD, cwd=clone)
    assert (clone / ODD).read_text() == "odd content\n"
    rr("drop", ODD, cwd=clone)
    assert not (clone / ODD).exists() and (clone / ODD).is_symlink()
    proc = rr("drop", ODD, cwd=ds, check=False)  # the last copy: refused, not skipped
    assert proc.returncode != 0
    assert (ds / ODD).read_text() == "odd content\n"


@pytest.mark.slow
@pytest.mark.parametrize("rewrite", [
    "git add b.txt && git commit -q --amend -m amended",
    "git reset -q --soft HEAD~1",
], ids=["amend", "reset-soft"])
def test_a_command_that_rewrites_a_subdatasets_head_gets_no_commit_of_rrs(ds, rewrite):
    rr("create", str(ds / "sub"), cwd=ds)
    (ds / "sub" / "a.txt").write_text("a\n")
    rr("save", "-m", "sub", cwd=ds)
    started = git("rev-parse", "HEAD", cwd=ds / "sub").strip()
    proc = rr("run", f"echo b > sub/b.txt && cd sub && {rewrite}", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "rewrote the history of subdataset sub" in one_error_line(proc.stderr)
    assert "Remaining changes" not in git("log", "--format=%B", cwd=ds / "sub")
    assert "[DATALAD RUNCMD]" not in git("log", "--format=%B", cwd=ds / "sub")
    git("reset", "-q", "--soft", started, cwd=ds / "sub")
    rr("save", "-F", ".git/COMMIT_EDITMSG", cwd=ds)
    assert '"cmd": "echo b > sub/b.txt' in last_message(ds)
    assert git("rev-parse", "HEAD~1", cwd=ds / "sub").strip() == started


def test_a_message_file_that_is_not_utf8_is_one_line(ds, tmp_path):
    msg = tmp_path / "msg.txt"
    msg.write_bytes(b"msg \xff\n")
    (ds / "k.txt").write_text("k\n")
    proc = rr("save", "-F", str(msg), cwd=ds, check=False)
    assert proc.returncode != 0
    assert "not UTF-8" in one_error_line(proc.stderr)
    assert git("status", "--porcelain", cwd=ds).strip() == "?? k.txt"
