"""rr diff-runs A B: what differs between two run commits."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from recorder.errors import EXIT_NOT_REPRODUCED
from recorder.record import format_message

from .conftest import git, needs_datalad, one_error_line, rr, rr_in
from .test_verify import in_git

# 1 before the nanoseconds: a JSON number has no leading zero (else t.json would not parse)
TIMED = "echo \"{{\\\"t\\\": 1$(date +%N), \\\"n\\\": 1}}\" > t.json; date +%N > log.txt"


def diff(ds: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return rr("diff-runs", *args, cwd=ds, check=False)


def as_json(ds: Path, a: str, b: str) -> dict:
    proc = diff(ds, a, b, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def record_of(ds: Path, rev: str = "HEAD") -> dict:
    return json.loads(git("log", "-1", "--format=%B", rev, cwd=ds).split(
        "=== Do not change lines below ===\n")[1].split("\n^^^")[0])


@pytest.mark.slow
def test_two_array_jobs(ds):
    in_git(ds, "r1.json", "r2.json")
    rr("run", "--param", "n=1,2", "-o", "r{n}.json",
       "printf '{{\"n\": {n}, \"acc\": 0.{n}, \"same\": 7}}' > r{n}.json", cwd=ds)
    rr("rerun", "--verify", "HEAD", cwd=ds)  # B's verdict noted
    got = as_json(ds, "HEAD~1", "HEAD")
    assert got["a"]["verified"] is None and got["b"]["verified"] == "verified identical"
    assert got["a"]["params"] == {"n": "1"} and got["b"]["params"] == {"n": "2"}
    whats = [f["what"] for f in got["fields"]]
    assert whats == ["command", "parameter n"]
    assert got["fields"][1] == {"what": "parameter n", "a": "1", "b": "2"}
    (out,) = got["outputs"]  # the jobs' declared outputs, paired
    assert out["path_a"] == "r1.json" and out["path"] == "r2.json"
    assert out["status"] == "differs"
    assert out["values"] == [{"key": "acc", "old": 0.1, "new": 0.2, "change": "changed"},
                             {"key": "n", "old": 1, "new": 2, "change": "changed"}]
    text = diff(ds, "HEAD~1", "HEAD").stdout.splitlines()
    assert "parameter n: 1 -> 2" in text
    assert "      acc: 0.1 → 0.2" in text
    assert text[-1] == "rr: outputs differ (1 file(s))"
    # every changed number within --rtol: the same, and --fail-on-change passes
    proc = diff(ds, "HEAD~1", "HEAD", "--rtol", "2", "--fail-on-change")
    assert proc.returncode == 0, proc.stdout
    assert "      acc: 0.1 → 0.2 (within rtol)" in proc.stdout.splitlines()
    assert proc.stdout.splitlines()[-1] == "rr: outputs identical within rtol (1 file(s))"


@pytest.mark.slow
def test_two_reruns_of_one_record_and_fail_on_change(ds):
    in_git(ds, "t.json", "log.txt")
    rr("run", "-o", "t.json", "-o", "log.txt", TIMED, cwd=ds)
    rr("rerun", cwd=ds)
    rr("rerun", cwd=ds)
    got = as_json(ds, "HEAD~1", "HEAD")
    assert got["fields"] == [] and got["environment"] == []
    assert got["a"]["command"] == got["b"]["command"] == record_of(ds)["cmd"]
    assert isinstance(got["a"]["duration"], float)  # from rr's duration note
    by_path = {f["path"]: f for f in got["outputs"]}
    assert sorted(by_path) == ["log.txt", "t.json"]
    assert [c["key"] for c in by_path["t.json"]["values"]] == ["t"]
    assert by_path["log.txt"]["diff"].startswith("@@")
    proc = diff(ds, "HEAD~1", "HEAD")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert "command and parameters: the same" in lines
    assert lines[-1] == "rr: outputs differ (2 file(s))"
    assert diff(ds, "HEAD~1", "HEAD", "--fail-on-change").returncode == EXIT_NOT_REPRODUCED
    # a run compared with itself: identical, and --fail-on-change passes
    proc = diff(ds, "HEAD", "HEAD", "--fail-on-change")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "rr: outputs identical"
    md = diff(ds, "HEAD~1", "HEAD", "--md").stdout
    assert md.startswith("### rr diff-runs: outputs differ")
    assert "| `t.json` | differs |" in md and "```diff" in md
    assert diff(ds, "HEAD", "HEAD", "--md", "--json").returncode == 2


@pytest.mark.slow
def test_inputs_environment_and_image(ds):
    in_git(ds, "in.txt", "out.txt")
    (ds / "in.txt").write_text("one\n")
    rr("save", "-m", "input", cwd=ds)
    rr("run", "-i", "in.txt", "-o", "out.txt", "cat in.txt > out.txt", cwd=ds)
    rec = record_of(ds)
    rec["rr"] = {**rec.get("rr", {}), "container": {"name": "x", "digest": "sha256:aa"},
                 "env": {"python": "3.11.2", "vars": {"OMP_NUM_THREADS": "8"}}}
    git("commit", "-q", "--amend", "-m", format_message("first", rec), cwd=ds)
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    (ds / "in.txt").unlink()  # an annexed file: replaced, not written through its link
    (ds / "in.txt").write_text("three\n")
    rr("save", "-m", "input changed", cwd=ds)
    rr("run", "-i", "in.txt", "-o", "out.txt", "cat in.txt > out.txt", cwd=ds)
    rec = record_of(ds)
    rec["rr"] = {**rec.get("rr", {}), "container": {"name": "x", "digest": "sha256:bb"},
                 "env": {"python": "3.12.1", "vars": {"OMP_NUM_THREADS": "1", "SEED": "3"}}}
    git("commit", "-q", "--amend", "-m", format_message("second", rec), cwd=ds)
    got = as_json(ds, first, "HEAD")
    (inp,) = got["inputs"]
    assert inp["path"] == "in.txt" and inp["status"] == "differs"
    assert got["environment"] == [
        {"what": "image digest", "old": "sha256:aa", "new": "sha256:bb"},
        {"what": "Python", "old": "3.11.2", "new": "3.12.1"},
        {"what": "OMP_NUM_THREADS", "old": "8", "new": "1", "variable": True},
        {"what": "SEED", "old": None, "new": "3", "variable": True}]
    text = diff(ds, first, "HEAD").stdout.splitlines()
    assert "  OMP_NUM_THREADS 8 → 1" in text and "  SEED (unset) → 3" in text
    assert "inputs: 0 the same, 1 not:" in text


@pytest.mark.slow
@needs_datalad
def test_datalad_records(ds):
    for n in (1, 2):
        subprocess.run(["datalad", "run", "-m", f"dl {n}", "-o", "d.txt",
                        f"echo {n} > d.txt"], cwd=ds, check=True, capture_output=True)
    got = as_json(ds, "HEAD~1", "HEAD")
    assert got["a"]["subject"] == "dl 1" and got["b"]["subject"] == "dl 2"
    assert got["fields"][0]["what"] == "command"
    assert got["a"]["duration"] is None and got["a"]["env"] == {}
    (out,) = got["outputs"]
    assert out["path"] == "d.txt" and out["status"] == "differs"
    assert out["diff"].splitlines()[1:] == ["-1", "+2"]


@pytest.mark.slow
def test_non_run_and_malformed_commits(ds):
    rr("run", "-o", "x.txt", "echo x > x.txt", cwd=ds)
    (ds / "plain.txt").write_text("p\n")
    rr("save", "-m", "plain commit", cwd=ds)
    proc = diff(ds, "HEAD~1", "HEAD")
    assert proc.returncode == 2
    sha = git("rev-parse", "HEAD", cwd=ds).strip()
    assert one_error_line(proc.stderr) == (
        f"rr: error: HEAD ({sha[:10]} plain commit) is not a run commit: its message has no "
        "run record")
    git("commit", "-q", "--allow-empty", "-m", "[DATALAD RUNCMD] bad\n\n=== Do not change "
        "lines below ===\n{not json\n^^^ Do not change lines above ^^^\n", cwd=ds)
    bad = git("rev-parse", "HEAD", cwd=ds).strip()
    proc = diff(ds, "HEAD~2", "HEAD")
    assert proc.returncode == 1
    assert one_error_line(proc.stderr) == (
        f"rr: error: commit {bad[:10]} has a malformed run record: run record is not valid "
        "JSON")
    proc = diff(ds, "HEAD", "no-such-rev")
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == "rr: error: unknown revision: no-such-rev"


def test_usage_errors_in_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no dataset needed: the options are checked first
    res = rr_in("diff-runs", "A", "B", "--md", "--json")
    assert res.exit_code == 2 and "--md and --json: give one" in res.output
    for flag in (["--keep", "k"], ["--keep="], ["--rtol", "0"], ["--report-md", "r.md"]):
        res = rr_in("rerun", *flag)
        name = flag[0].split("=")[0]
        assert res.exit_code == 2 and f"{name} goes with --verify" in res.output, res.output
