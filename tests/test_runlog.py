"""Per-run logs: rr run --log streams the command's output and keeps it as an annexed file
named in the record (rr.log); rr log --show-output prints it, also in a clone."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from recorder import record as records

from .conftest import git, last_message, needs_datalad, one_error_line, rr


def record_of(ds: Path, rev: str = "HEAD") -> dict:
    parsed = records.parse_message(last_message(ds, rev))
    assert parsed is not None and parsed.record is not None
    return parsed.record


# each line waits until the one before is in the log (under .git/rr/logs/ while it runs)
WAIT = "until grep -qx {} .git/rr/logs/*.log; do sleep 0.05; done"
ORDERED = (f"echo one; {WAIT.format('one')}; echo two >&2; {WAIT.format('two')}; echo three; "
           "echo made > out.txt")


def test_log_streams_and_is_recorded(ds):
    proc = rr("run", "--log", "-m", "logged", ORDERED, cwd=ds)
    # still streamed: stdout to stdout, stderr to stderr
    assert proc.stdout.splitlines() == ["one", "three"]
    assert "two" in proc.stderr.splitlines()
    path = record_of(ds)["rr"]["log"]
    assert path.startswith(".rr/logs/") and path.endswith(".log")
    # committed in the run's commit, annexed, in the order the output came
    assert set(git("show", "--name-only", "--format=", "HEAD", cwd=ds).split()) == \
        {path, ".rr/logs/.gitattributes", "out.txt"}
    assert os.path.islink(ds / path) and ".git/annex/objects/" in os.readlink(ds / path)
    assert (ds / path).read_text() == "one\ntwo\nthree\n"
    shown = rr("log", "--show-output", cwd=ds)
    assert shown.stdout == "one\ntwo\nthree\n"
    assert rr("log", "--show-output", "HEAD", cwd=ds).stdout == shown.stdout


def test_without_log_nothing_is_kept(ds):
    rr("run", "-m", "plain", "echo hi; echo made > out.txt", cwd=ds)
    assert "log" not in record_of(ds)["rr"]
    assert not (ds / ".rr").exists()
    proc = rr("log", "--show-output", cwd=ds, check=False)
    assert proc.returncode == 1
    assert one_error_line(proc.stderr).startswith("rr: error: the run record of ")


def test_config_makes_log_the_default(ds):
    git("config", "rr.run.log", "true", cwd=ds)
    rr("run", "-m", "a", "echo a; echo a > a.txt", cwd=ds)
    assert "log" in record_of(ds)["rr"]
    rr("run", "--no-log", "-m", "b", "echo b; echo b > b.txt", cwd=ds)
    assert "log" not in record_of(ds)["rr"]


def test_explicit_run_saves_its_log(ds):
    (ds / "stray.txt").write_text("not saved\n")
    rr("run", "--explicit", "--log", "-o", "out.txt", "-m", "e",
       "echo hello; echo x > out.txt", cwd=ds)
    names = set(git("show", "--name-only", "--format=", "HEAD", cwd=ds).split())
    assert names == {"out.txt", record_of(ds)["rr"]["log"], ".rr/logs/.gitattributes"}
    assert rr("log", "--show-output", cwd=ds).stdout == "hello\n"


def test_failed_command_keeps_its_log_beside_the_outputs(ds):
    head = git("rev-parse", "HEAD", cwd=ds)
    proc = rr("run", "--log", "-m", "fails", "echo partial; echo x > out.txt; exit 3",
              cwd=ds, check=False)
    assert proc.returncode == 3
    assert git("rev-parse", "HEAD", cwd=ds) == head
    kept = (ds / ".git" / "COMMIT_EDITMSG").read_text()
    path = records.parse_message(kept).record["rr"]["log"]
    assert (ds / path).read_text() == "partial\n"  # left for inspection with the outputs
    assert "rr save -F .git/COMMIT_EDITMSG" in proc.stderr
    rr("save", "-F", ".git/COMMIT_EDITMSG", cwd=ds)
    assert record_of(ds)["rr"]["log"] == path
    assert rr("log", "--show-output", cwd=ds).stdout == "partial\n"


@pytest.mark.slow
def test_show_output_in_a_clone(ds, tmp_path):
    rr("run", "--log", "-m", "logged", "echo from-the-author; echo x > out.txt", cwd=ds)
    clone = tmp_path / "clone"
    rr("clone", str(ds), str(clone), cwd=tmp_path)
    path = record_of(clone)["rr"]["log"]
    assert not (clone / path).exists()  # content not here yet: fetched on demand
    assert rr("log", "--show-output", cwd=clone).stdout == "from-the-author\n"
    other = tmp_path / "other"
    rr("clone", str(ds), str(other), cwd=tmp_path)
    rr("get", ".", cwd=other)
    assert (other / path).read_text() == "from-the-author\n"
    assert rr("log", "--show-output", cwd=other).stdout == "from-the-author\n"


@pytest.mark.slow
def test_rerun_and_verify_of_a_logged_run(ds):
    rr("run", "--log", "-m", "logged", "echo again; echo x > out.txt", cwd=ds)
    first = record_of(ds)["rr"]["log"]
    verified = rr("rerun", "--verify", "--no-notes", cwd=ds)  # the log is each run's own
    assert "1 identical" in verified.stdout
    rr("rerun", cwd=ds)
    second = record_of(ds)["rr"]["log"]
    assert second != first and (ds / second).read_text() == "again\n"


@pytest.mark.slow
@needs_datalad
def test_datalad_reruns_a_logged_record(ds):
    rr("run", "--log", "-m", "logged", "echo hi; echo 1 > out.txt", cwd=ds)
    subprocess.run(["datalad", "rerun"], cwd=ds, check=True, capture_output=True)
    assert "[DATALAD RUNCMD] logged" in last_message(ds)


def test_show_output_of_a_sidecar_record(ds):
    rr("run", "--sidecar", "--log", "-m", "side", "echo beside; echo s > s.txt", cwd=ds)
    assert records.parse_message(last_message(ds)).record is None  # the record is a sidecar
    assert rr("log", "--show-output", cwd=ds).stdout == "beside\n"
    proc = rr("log", "--show-output", "no-such-rev", cwd=ds, check=False)
    assert proc.returncode == 1
    assert one_error_line(proc.stderr) == "rr: error: not a commit: no-such-rev"


def _running_in_session(name: str, sid: int) -> bool:
    """Whether a process called ``name`` runs in the session ``sid`` (Linux /proc)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name and os.getsid(int(comm.parent.name)) == sid:
                return True
        except (OSError, ValueError):
            continue
    return False


def test_interrupted_logged_run_leaves_the_work_tree_clean(ds):
    import signal

    from .conftest import RR

    child = subprocess.Popen([RR, "run", "--log", "-m", "long", "echo started; sleep 30"],
                             cwd=ds, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    assert child.stdout is not None
    assert child.stdout.readline() == b"started\n"  # streamed while the command runs
    # interrupted once `sleep` runs: a signal in the moment the shell forks it is caught by
    # the shell's handler in the child before exec and lost (dash), whoever sends it
    deadline = time.monotonic() + 10
    while not _running_in_session("sleep", child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGINT)
    assert child.wait(timeout=30) == 130
    assert git("status", "--porcelain", "--untracked-files=all", cwd=ds) == ""
    kept = list((ds / ".git" / "rr" / "logs").iterdir())
    assert [p.read_text() for p in kept] == ["started\n"]


@pytest.mark.slow
@pytest.mark.docker
def test_container_run_logs_and_records_the_client_tree(ds, busybox_image):
    rr("containers-add", "bb", "--url", f"dhub://{busybox_image}", cwd=ds)
    proc = rr("containers-run", "-n", "bb", "--log", "--env-record", "SEED", "-m", "in",
              "echo inside; echo x > out.txt", cwd=ds, env={"SEED": "4"})
    assert "inside" in proc.stdout.splitlines()
    info = record_of(ds)["rr"]
    assert info["container"]["name"] == "bb" and info["env"]["vars"] == {"SEED": "4"}
    assert {"wall_seconds", "cpu_seconds", "max_rss_bytes"} <= set(info["resources"])
    assert rr("log", "--show-output", cwd=ds).stdout == "inside\n"
