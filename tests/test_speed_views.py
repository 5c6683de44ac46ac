"""History views start few processes: counts, not times (issue #22 items 3 and 4)."""

import json
import os
import subprocess
import sys

from .conftest import git, rr


def _records(ds, n: int) -> None:
    for i in range(n):
        record = {"cmd": f"echo {i}", "exit": 0, "inputs": [], "outputs": [], "pwd": ".",
                  "chain": [], "extra_inputs": []}
        git("commit", "-q", "--allow-empty", "-m",
            f"[DATALAD RUNCMD] step {i}\n\n=== Do not change lines below ===\n"
            f"{json.dumps(record)}\n^^^ Do not change lines above ^^^", cwd=ds)


def _git_processes(ds, tmp_path, *args: str) -> tuple[int, str]:
    """How many git processes ``rr ARGS`` started (GIT_TRACE), and its stdout."""
    trace = tmp_path / "git-trace"
    trace.unlink(missing_ok=True)
    done = rr(*args, cwd=ds, env={"GIT_TRACE": str(trace)})
    lines = trace.read_text().splitlines() if trace.exists() else []
    return sum(1 for line in lines if "trace: built-in: git " in line), done.stdout


def test_log_reads_the_history_in_one_git_log(ds, tmp_path):
    _records(ds, 5)
    count, out = _git_processes(ds, tmp_path, "log")
    assert out.count("    $ echo ") == 5
    # the config (two `git config --list`: committed and git's own) and one `git log`; HEAD
    # is read from its files, not asked of `git rev-parse`
    assert count <= 3, count


def test_rerun_report_of_all_history_reads_it_in_one_git_log(ds, tmp_path):
    _records(ds, 5)
    count, out = _git_processes(ds, tmp_path, "rerun", "--report", "--since=")
    steps = [json.loads(line) for line in out.splitlines()]
    assert [s["action"] for s in steps] == ["run"] * 5
    # rev-parse of the revision, the config (two processes), one `git log` of the whole
    # history (no `git log -1` for the tip's parents, no merge-base of HEAD with itself)
    assert count <= 4, count


def test_rr_help_lists_what_the_whole_application_lists():
    """rr --help is built from the commands' names and help texts only: the same text as the
    whole application's help (a command gaining its own short help or hidden flag would
    show here)."""
    env = dict(os.environ, COLUMNS="100")
    whole = subprocess.run([sys.executable, "-c", "from recorder.cli import app; "
                            "app(['--help'], prog_name='rr')"], capture_output=True, text=True,
                           env=env)
    assert whole.returncode == 0, whole.stderr
    shown = rr("--help", env={"COLUMNS": "100"})
    assert shown.stdout == whole.stdout
    assert "  metrics " in shown.stdout and "  log " in shown.stdout
