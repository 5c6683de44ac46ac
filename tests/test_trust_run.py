"""rr run never loses a record, never swaps records between concurrent runs, and never lets a
command overwrite annexed content in place.  Real git, git-annex, file systems and processes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import RR, annex, commit_count, git, last_message, rr

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux file systems and signals")

IS_ROOT = os.geteuid() == 0
WAIT_FOR_GO = "while [ ! -e .git/go ]; do sleep 0.05; done"  # the test says when


def record_of(message: str) -> dict:
    body = message.split("=== Do not change lines below ===\n", 1)[1]
    return json.loads(body.split("\n^^^ Do not change lines above ^^^", 1)[0])


def editmsg(ds: Path) -> str:
    return (ds / ".git" / "COMMIT_EDITMSG").read_text()


def assert_one_error_line(stderr: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("rr: error:")]
    assert len(errors) == 1, stderr


def saving_command(stderr: str) -> str:
    hint = next(line for line in stderr.splitlines() if line.startswith("rr: hint:"))
    return hint.split("save them with: ", 1)[1]


def run_hint_command(stderr: str) -> None:
    command = saving_command(stderr)
    subprocess.run(["/bin/sh", "-c", command], check=True, capture_output=True,
                   env={**os.environ, "PATH": f"{Path(RR).parent}:{os.environ['PATH']}"})


def start_rr(args: list[str], ds: Path, until: Path) -> subprocess.Popen:
    """Start ``rr ARGS`` in the background and return once ``until`` exists."""
    child = subprocess.Popen([RR, *args], cwd=ds, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not until.exists():
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()
        time.sleep(0.05)
    return child


# --- a record is never lost ----------------------------------------------------------------


def test_stale_index_lock_is_refused_before_the_command_runs(ds):
    (ds / ".git" / "index.lock").write_text("")
    proc = rr("run", "-m", "never", "echo ran > marker.txt", cwd=ds, check=False)
    assert proc.returncode != 0
    assert_one_error_line(proc.stderr)
    assert "index.lock exists" in proc.stderr and "remove " in proc.stderr
    assert not (ds / "marker.txt").exists()  # the command did not run


@pytest.mark.parametrize("explicit", [False, True])
def test_index_lock_left_by_the_command_keeps_the_record(ds, explicit):
    """git-annex exits 0 without staging when the index is locked: rr checks what was staged."""
    before = commit_count(ds)
    args = ["--explicit", "-o", "out.txt"] if explicit else []
    proc = rr("run", "-m", "locked out", *args,
              "echo result > out.txt && touch .git/index.lock", cwd=ds, check=False)
    assert proc.returncode not in (0, None)
    assert_one_error_line(proc.stderr)
    assert "not saved" in proc.stderr and "did not stage" in proc.stderr
    assert commit_count(ds) == before
    assert (ds / "out.txt").read_text() == "result\n"  # the output is kept
    kept = editmsg(ds)
    assert kept.startswith("[DATALAD RUNCMD] locked out")
    assert record_of(kept)["cmd"] == "echo result > out.txt && touch .git/index.lock"
    # the hint names the exact command that saves it; it works once the cause is gone
    (ds / ".git" / "index.lock").unlink()
    run_hint_command(proc.stderr)
    assert commit_count(ds) == before + 1
    assert record_of(last_message(ds))["cmd"].startswith("echo result > out.txt")
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["out.txt"]


def test_rejecting_pre_commit_hook_keeps_the_record(ds):
    hook = ds / ".git" / "hooks" / "pre-commit"
    original = hook.read_text() if hook.exists() else None
    hook.write_text("#!/bin/sh\necho 'policy: no commits today' >&2\nexit 1\n")
    hook.chmod(0o755)
    proc = rr("run", "-m", "hooked", "echo data > out.txt", cwd=ds, check=False)
    assert proc.returncode != 0
    assert_one_error_line(proc.stderr)
    assert "policy: no commits today" in proc.stderr
    assert (ds / "out.txt").read_text() == "data\n"
    assert record_of(editmsg(ds))["cmd"] == "echo data > out.txt"
    if original is None:
        hook.unlink()
    else:
        hook.write_text(original)
    run_hint_command(proc.stderr)
    assert last_message(ds).startswith("[DATALAD RUNCMD] hooked")


def test_failing_git_annex_keeps_the_record(ds, tmp_path):
    """git-annex failing during the save (here: its object store made unwritable by
    replacing it with a file) is reported with the message kept."""
    objects = ds / ".git" / "annex" / "objects"
    if objects.exists():
        subprocess.run(["chmod", "-R", "u+w", str(objects)], check=True)
        subprocess.run(["rm", "-rf", str(objects)], check=True)
    objects.parent.mkdir(parents=True, exist_ok=True)
    objects.write_text("not a directory\n")
    proc = rr("run", "-m", "annex down", "head -c 3000 /dev/zero > big.bin", cwd=ds,
              check=False)
    assert proc.returncode != 0
    assert_one_error_line(proc.stderr)
    assert "not saved" in proc.stderr
    assert os.path.getsize(ds / "big.bin") == 3000
    assert editmsg(ds).startswith("[DATALAD RUNCMD] annex down")


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")
def test_full_disk_during_the_save_keeps_outputs_and_message(tmp_path, _template):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        ds = mnt / "ds"
        subprocess.run(["cp", "-a", str(_template), str(ds)], check=True)
        free = os.statvfs(ds).f_bavail * os.statvfs(ds).f_frsize
        # leave a few KiB: the output fits, git's objects and the annex journal do not
        size = free - 24 * 1024
        proc = rr("run", "-m", "fill", f"head -c {size} /dev/urandom > big.bin; "
                  "echo small > small.txt", cwd=ds, check=False)
        assert proc.returncode != 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "not saved" in proc.stderr
        assert os.path.getsize(ds / "big.bin") == size  # no 0-byte file left behind
        assert (ds / "small.txt").read_text() == "small\n"
        message = proc.stderr if "here it is" in proc.stderr else editmsg(ds)
        assert "[DATALAD RUNCMD] fill" in message
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_interrupt_during_the_commit_tells_that_it_committed(ds):
    hook = ds / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\ntouch .git/hook-started\nsleep 2\n")
    hook.chmod(0o755)
    child = start_rr(["run", "-m", "slow save", "echo x > out.txt"], ds,
                     ds / ".git" / "hook-started")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    assert "Traceback" not in err
    sha = git("rev-parse", "HEAD", cwd=ds).strip()
    assert last_message(ds).startswith("[DATALAD RUNCMD] slow save")
    assert f"saved first: commit {sha[:10]}" in err


# --- concurrency ------------------------------------------------------------------------------


def test_two_runs_without_explicit_do_not_swap_records(ds):
    first = start_rr(["run", "-m", "A", "echo a > a.txt; " + WAIT_FOR_GO], ds, ds / "a.txt")
    second = subprocess.Popen([RR, "run", "-m", "B", "echo b > b.txt"], cwd=ds,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)  # B is waiting for the lock now (or about to)
    assert second.poll() is None
    (ds / ".git" / "go").touch()
    out, err = first.communicate(timeout=60)
    _, second_err = second.communicate(timeout=60)
    assert second.returncode == 0, second_err
    assert first.returncode == 0, err
    assert "waiting for the dataset lock" in second_err
    log = git("log", "--format=%s", "-2", cwd=ds).splitlines()
    assert log == ["[DATALAD RUNCMD] B", "[DATALAD RUNCMD] A"]
    assert git("show", "--name-only", "--format=", "HEAD~1", cwd=ds).split() == ["a.txt"]
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["b.txt"]


def test_save_leaves_the_outputs_of_an_explicit_run_going(ds):
    run = start_rr(["run", "--explicit", "-m", "slow", "-o", "out.txt",
                    "echo partial > out.txt; " + WAIT_FOR_GO + "; echo done >> out.txt"],
                   ds, ds / "out.txt")
    (ds / "notes.txt").write_text("mine\n")
    saved = rr("save", "-m", "my notes", cwd=ds)
    assert "left out 1 path" in saved.stderr
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["notes.txt"]
    refused = rr("save", "-m", "grab", "out.txt", cwd=ds, check=False)
    assert refused.returncode != 0 and "declared output of a run still going" in refused.stderr
    (ds / ".git" / "go").touch()
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert last_message(ds).startswith("[DATALAD RUNCMD] slow")
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["out.txt"]
    assert (ds / "out.txt").read_text() == "partial\ndone\n"


def test_run_does_not_record_onto_a_branch_switched_to_meanwhile(ds):
    run = start_rr(["run", "--explicit", "-m", "on master", "-o", "out.txt",
                    "touch started; " + WAIT_FOR_GO + "; echo r > out.txt"], ds, ds / "started")
    git("checkout", "-q", "-b", "elsewhere", cwd=ds)
    (ds / ".git" / "go").touch()
    _, err = run.communicate(timeout=60)
    assert run.returncode != 0
    assert "HEAD moved from master to elsewhere" in err
    assert git("rev-parse", "elsewhere", cwd=ds) == git("rev-parse", "master", cwd=ds)
    assert editmsg(ds).startswith("[DATALAD RUNCMD] on master")


def test_rr_inside_a_run_does_not_wait_for_its_parent(ds):
    proc = subprocess.run([RR, "run", "-m", "outer", "echo x > inner.txt && "
                           f"{shlex.quote(RR)} save -m inner inner.txt"], cwd=ds,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # the command committed: a run-merge whose second parent is the inner save (DataLad >= 1.6)
    assert git("log", "-1", "--format=%s", "HEAD^2", cwd=ds).strip() == "inner"


# --- annexed content is never overwritten in place -----------------------------------------------


def fsck_ok(ds: Path) -> bool:
    return subprocess.run(["git", "annex", "fsck", "--quiet"], cwd=ds,
                          capture_output=True).returncode == 0


def test_command_cannot_write_through_an_annex_link(ds_with_data):
    ds = ds_with_data
    before = commit_count(ds)
    proc = rr("run", "-m", "oops", "echo overwritten > data/a.txt", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert (ds / "data" / "a.txt").read_text() == "alpha\n"
    assert fsck_ok(ds)
    assert commit_count(ds) == before


def test_write_that_gets_through_is_detected_and_not_recorded(ds_with_data):
    """A command that makes the object store writable first and then changes nothing but
    annexed content in place: detected, not recorded, the damaged object moved aside."""
    ds = ds_with_data
    before = commit_count(ds)
    proc = rr("run", "-m", "sneaky",
              "chmod -R u+w .git/annex/objects; echo overwritten > data/a.txt", cwd=ds,
              check=False)
    assert proc.returncode != 0
    assert_one_error_line(proc.stderr)
    assert "overwrote annexed content in place: data/a.txt" in proc.stderr
    assert commit_count(ds) == before
    # the damaged object was moved aside: git-annex no longer claims the old content is here
    assert (ds / ".git" / "annex" / "bad").is_dir()
    assert not (ds / "data" / "a.txt").exists()
    assert (ds / "data" / "b.txt").read_text() == "beta\n"


def test_save_names_content_changed_through_its_link(ds_with_data):
    ds = ds_with_data
    time.sleep(1.1)  # after the commit's second
    subprocess.run(["chmod", "-R", "u+w", ".git/annex/objects"], cwd=ds, check=True)
    (ds / "data" / "a.txt").write_text("omega\n")  # same size: only the checksum tells
    proc = rr("save", "-m", "anything?", cwd=ds, check=False)
    assert proc.returncode != 0
    assert_one_error_line(proc.stderr)
    assert "changed in place through its link" in proc.stderr and "data/a.txt" in proc.stderr
    assert "nothing to save" not in proc.stderr


def test_declared_inputs_are_checked_after_the_command(ds_with_data):
    """A command that updates an input in place (after making it writable) is caught even
    when it also writes outputs (the whole object store is only walked otherwise)."""
    ds = ds_with_data
    proc = rr("run", "-i", "data/b.txt", "-o", "out.txt",
              "chmod u+w $(readlink -f data/b.txt); echo BETA > data/b.txt; cp data/b.txt out.txt",
              cwd=ds, check=False)
    assert proc.returncode != 0
    assert "overwrote annexed content in place: data/b.txt" in proc.stderr


@pytest.mark.docker
def test_container_cannot_write_through_an_annex_link(ds_with_data, busybox_image):
    ds = ds_with_data
    rr("containers-add", "bb", "--url", f"dhub://{busybox_image}", cwd=ds)
    before = commit_count(ds)
    proc = rr("containers-run", "-n", "bb", "echo overwritten > data/a.txt", cwd=ds, check=False)
    assert proc.returncode != 0
    assert (ds / "data" / "a.txt").read_text() == "alpha\n"
    assert fsck_ok(ds)
    assert commit_count(ds) == before


def test_save_waits_for_a_run_without_explicit(ds):
    """A run without --explicit claims everything that changes while it runs: a save started
    meanwhile waits for it, and each commit holds what belongs to it."""
    run = start_rr(["run", "-m", "R", "echo r > r.txt; " + WAIT_FOR_GO], ds, ds / "r.txt")
    save = subprocess.Popen([RR, "save", "-m", "S", "r.txt"], cwd=ds,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    assert save.poll() is None  # waiting for the run's lock
    (ds / ".git" / "go").touch()
    _, run_err = run.communicate(timeout=60)
    _, save_err = save.communicate(timeout=60)
    assert run.returncode == 0, run_err
    assert "waiting for the dataset lock held by pid" in save_err and "rr run" in save_err
    assert git("log", "-1", "--format=%s", cwd=ds).strip() == "[DATALAD RUNCMD] R"
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["r.txt"]
    assert "nothing to save" in save_err or save.returncode == 0


def test_a_command_too_long_for_the_shell_is_one_line(ds):
    from recorder import api
    from recorder.errors import UsageError

    with pytest.raises(UsageError, match="the command is too long"):
        api.run("echo " + "x" * 2_000_000, dataset=ds)
    assert git("status", "--porcelain", cwd=ds) == ""


def test_rerun_waits_for_no_one_and_moves_no_head_under_a_run(ds):
    """A replay moves HEAD: while an --explicit run is going it refuses, so the run's record
    lands on the branch it started on."""
    rr("run", "-m", "first", "-o", "x.txt", "echo x > x.txt", cwd=ds)
    run = start_rr(["run", "--explicit", "-m", "long", "-o", "out.txt",
                    "touch started; " + WAIT_FOR_GO + "; echo r > out.txt"], ds, ds / "started")
    refused = rr("rerun", "--onto", "HEAD~1", "HEAD", cwd=ds, check=False)
    assert refused.returncode != 0
    assert_one_error_line(refused.stderr)
    assert "an rr run is still going" in refused.stderr
    (ds / ".git" / "go").touch()
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert git("log", "-1", "--format=%s", "master", cwd=ds).strip() == "[DATALAD RUNCMD] long"


def test_a_run_killed_while_saving_is_named_by_the_next_run(ds):
    hook = ds / ".git" / "hooks" / "pre-commit"
    hook.write_text('#!/bin/sh\nkill -KILL "$(cat .git/rr-test.pid)"\nsleep 5\nexit 1\n')
    hook.chmod(0o755)
    child = subprocess.Popen([RR, "run", "-m", "killed while saving",
                              "echo $PPID > .git/rr-test.pid; echo v > out.txt"], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    hook.unlink()
    deadline = time.monotonic() + 30
    while (ds / ".git" / "index.lock").exists():  # the killed git's hook is still sleeping
        assert time.monotonic() < deadline
        time.sleep(0.1)
    again = rr("run", "-m", "next", "echo n > n.txt", cwd=ds, check=False)
    assert again.returncode != 0
    assert_one_error_line(again.stderr)
    assert "killed while saving" in again.stderr
    assert f"save with cd {ds} && rr save -F .git/COMMIT_EDITMSG;" in again.stderr
    rr("save", "-F", ".git/COMMIT_EDITMSG", cwd=ds)
    assert last_message(ds).startswith("[DATALAD RUNCMD] killed while saving")
