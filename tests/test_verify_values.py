"""rr rerun --verify's reports: metrics compared by value (--rtol), environment differences,
--keep, --report-md, and the exit code when nothing could be verified."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import pytest

from recorder import proc, valuediff
from recorder.errors import EXIT_NOT_REPRODUCED, EXIT_NOT_VERIFIED
from recorder.record import format_message

from .conftest import git, rr
from .test_verify import in_git, snapshot, verdict_notes, verdicts, verify

METRICS = "printf '{{\"acc\": %s, \"n\": 3, \"deep\": {{\"loss\": 0.25}}}}' \"$ACC\" > m.json; " \
          "printf 'epoch,acc\\n1,0.5\\n2,%s\\n' \"$ACC\" > m.csv"


def head(ds: Path) -> str:
    return git("rev-parse", "HEAD", cwd=ds).strip()


def crafted_record(ds: Path, cmd: str, outputs: list[str], info: dict, pwd: str = ".") -> str:
    """A run commit made by hand (git commit) whose record carries ``info`` as its "rr"
    object: the command is run here first, so that its outputs are what it makes."""
    rr("run", "-o", *outputs[:1], cmd, cwd=ds)  # the outputs, as the command makes them
    record = json.loads(git("log", "-1", "--format=%B", cwd=ds).split(
        "=== Do not change lines below ===\n")[1].split("\n^^^")[0])
    record["rr"] = {**record.get("rr", {}), **info}
    record["pwd"] = pwd
    git("commit", "-q", "--amend", "-m", format_message(cmd, record), cwd=ds)
    return head(ds)


@pytest.mark.slow
def test_metrics_changed_values(ds):
    in_git(ds, "m.json", "m.csv")
    rr("run", "-o", "m.json", "-o", "m.csv", METRICS, cwd=ds, env={"ACC": "0.9"})
    proc = verify(ds, env={"ACC": "0.95"})
    assert proc.returncode == EXIT_NOT_REPRODUCED, proc.stderr
    out = proc.stdout.splitlines()
    assert "      acc: 0.9 → 0.95" in out
    assert "      acc[epoch=2]: 0.9 → 0.95" in out
    (one,) = verdicts(ds, env={"ACC": "0.95"})
    by_path = {f["path"]: f for f in one["files"]}
    assert by_path["m.json"]["values"] == [
        {"key": "acc", "old": 0.9, "new": 0.95, "change": "changed"}]
    assert by_path["m.csv"]["values"] == [
        {"key": "acc[epoch=2]", "old": 0.9, "new": 0.95, "change": "changed"}]
    assert "diff" not in by_path["m.json"]  # the values say it


@pytest.mark.slow
def test_large_metrics_file_by_value(ds):
    # 8,000 rows (about 80 kB: over the 64 kB of a text diff), one cell made from $ACC
    cmd = ("seq 1 8000 | awk -v a=\"$ACC\" 'BEGIN {{print \"i,v\"}} "
           "{{print $1 \",\" ($1 == 4000 ? a : $1)}}' > big.csv")
    rr("run", "-o", "big.csv", cmd, cwd=ds, env={"ACC": "0.5"})
    assert (ds / "big.csv").stat().st_size > 64 * 1024
    (one,) = verdicts(ds, "--no-notes", env={"ACC": "0.75"})
    (f,) = one["files"]
    assert f["values"] == [{"key": "v[i=4000]", "old": 0.5, "new": 0.75, "change": "changed"}]


@pytest.mark.slow
def test_rtol_accepts_close_numbers_and_says_so(ds):
    in_git(ds, "m.json", "m.csv")
    rr("run", "-o", "m.json", "-o", "m.csv", METRICS, cwd=ds, env={"ACC": "0.9"})
    # without a tolerance a change in the 7th digit differs
    assert verify(ds, "--no-notes", env={"ACC": "0.9000001"}).returncode == \
        EXIT_NOT_REPRODUCED
    proc = verify(ds, "--rtol", "1e-4", env={"ACC": "0.9000001"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.endswith(": identical within rtol 0.0001 (2 file(s))")
    assert "      acc: 0.9 → 0.9000001 (within rtol)" in proc.stdout
    (line,) = verdict_notes(ds)[head(ds)]
    assert line["verdict"] == "identical" and line["rtol"] == 1e-4
    assert sorted((f["path"], f["status"]) for f in line["files"]) == [
        ("m.csv", "within-rtol"), ("m.json", "within-rtol")]
    # a change beyond the tolerance still differs
    (one,) = verdicts(ds, "--rtol", "1e-4", "--no-notes", env={"ACC": "0.91"})
    assert one["verdict"] == "differs"
    assert verify(ds, "--rtol", "-1").returncode == 2
    assert rr("rerun", "--rtol", "0.1", cwd=ds, check=False).stderr.strip().endswith(
        "--rtol goes with --verify")


@pytest.mark.slow
def test_keep_and_markdown_report(ds, tmp_path):
    in_git(ds, "m.json", "m.csv")
    rr("run", "-o", "m.json", "-o", "m.csv", METRICS, cwd=ds, env={"ACC": "0.9"})
    rr("run", "-o", "same.txt", "echo same > same.txt", cwd=ds)
    run1 = git("rev-parse", "HEAD~1", cwd=ds).strip()
    before = snapshot(ds)
    kept, report = tmp_path / "kept", tmp_path / "report.md"
    proc = verify(ds, "--since=HEAD~2", "--keep", str(kept), "--report-md", str(report),
                  env={"ACC": "0.95"})
    assert proc.returncode == EXIT_NOT_REPRODUCED, proc.stderr
    assert f"rr: the files that differ are kept in {kept}" in proc.stderr
    where = kept / run1[:12]
    assert sorted(p.name for p in where.iterdir()) == [
        "m.csv.new", "m.csv.recorded", "m.json.new", "m.json.recorded"]
    assert json.loads((where / "m.json.recorded").read_text())["acc"] == 0.9
    assert json.loads((where / "m.json.new").read_text())["acc"] == 0.95
    text = report.read_text()
    assert "**verified 2 record(s): 1 identical, 1 differ, 0 failed**" in text
    assert f"## `{run1[:10]}`" in text and "- Verdict: **differs**" in text
    assert "| `m.json` | differs |" in text and "| `acc` | 0.9 | 0.95 |  |" in text
    assert f"Python {platform.python_version()}" in text
    assert "- Verdict: **identical**" in text
    assert snapshot(ds) == before
    # --keep= : a named place under .git, printed
    proc = verify(ds, "--since=HEAD~2", "--keep=", "--no-notes", env={"ACC": "0.95"})
    line = [x for x in proc.stderr.splitlines() if "kept in" in x][0]
    place = Path(line.split("kept in ", 1)[1])
    assert place.parent == ds / ".git" / "rr-verify"
    assert (place / run1[:12] / "m.json.new").is_file()


@pytest.mark.slow
def test_annexed_output_is_kept(ds, tmp_path):
    rr("run", "-o", "out.txt", "date +%N > out.txt", cwd=ds)
    mine = (ds / "out.txt").read_text()
    proc = verify(ds, "--keep", str(tmp_path / "k"), "--no-notes")
    assert proc.returncode == EXIT_NOT_REPRODUCED
    where = tmp_path / "k" / head(ds)[:12]
    assert (where / "out.txt.recorded").read_text() == mine
    assert (where / "out.txt.new").read_text() != mine


@pytest.mark.slow
def test_environment_differences(ds):
    in_git(ds, "x.txt")
    commit = crafted_record(ds, "echo x > x.txt", ["x.txt"], {
        "env": {"python": "2.7.18", "rr": __import__("recorder").__version__,
                "vars": {"OMP_NUM_THREADS": "8", "RR_TEST_UNSET": "yes"}}})
    proc = verify(ds, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr  # outputs identical
    out = proc.stdout.splitlines()
    assert out[0].endswith(": identical")
    assert f"  environment Python 2.7.18 → {platform.python_version()}" in out
    assert "  environment OMP_NUM_THREADS 8 → 1" in out
    assert "  environment RR_TEST_UNSET yes → (unset)" in out
    assert not any("environment rr " in x for x in out)  # the same rr version: not listed
    (line,) = verdict_notes(ds)[commit]
    assert {"what": "OMP_NUM_THREADS", "old": "8", "new": "1", "variable": True} in \
        line["environment"]
    report = ds.parent / "env.md"
    verify(ds, "--no-notes", "--report-md", str(report), env={"OMP_NUM_THREADS": "1"})
    assert "- Environment differences: Python 2.7.18 → " in report.read_text()
    assert "OMP_NUM_THREADS 8 → 1; RR_TEST_UNSET yes → (unset)" in report.read_text()
    (one,) = verdicts(ds, "--no-notes", env={"OMP_NUM_THREADS": "8", "RR_TEST_UNSET": "yes"})
    assert [c["what"] for c in one["environment"]] == ["Python"]


@pytest.mark.slow
def test_image_digest_difference(ds, busybox_image):
    rr("containers-add", "bb", "--url", f"dhub://{busybox_image}", cwd=ds)
    rr("containers-run", "-n", "bb", "-o", "n.txt", "echo n > n.txt", cwd=ds)
    record = json.loads(git("log", "-1", "--format=%B", cwd=ds).split(
        "=== Do not change lines below ===\n")[1].split("\n^^^")[0])
    real = record["rr"]["container"]["digest"]
    record["rr"]["container"]["digest"] = "sha256:" + "0" * 64
    git("commit", "-q", "--amend", "-m", format_message("bb run", record), cwd=ds)
    (one,) = verdicts(ds)
    assert one["verdict"] == "identical"
    assert one["environment"] == [{"what": "image digest", "old": "sha256:" + "0" * 64,
                                   "new": real}]
    assert f"image digest sha256:{'0' * 64} → {real}" in one["message"]


def test_nothing_verified_is_exit_4(ds):
    (ds / "outside").mkdir()
    crafted_record(ds, "echo y > y.txt", ["y.txt"], {}, pwd="..")
    proc = verify(ds)
    assert proc.returncode == EXIT_NOT_VERIFIED, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        "rr: nothing was verified (1 record(s) skipped)"
    assert proc.stdout.splitlines()[-1] == \
        "rr: verified 0 record(s): 0 identical, 0 differ, 0 failed, 1 skipped"


def test_valuediff_formats():
    assert valuediff.diff_texts("a.json", '{"a": {"b": [1, 2]}, "c": "x"}',
                                '{"a": {"b": [1, 3]}, "d": 1}') == [
        valuediff.ValueChange("a.b.1", 2, 3, "changed"),
        valuediff.ValueChange("c", "x", None, "removed"),
        valuediff.ValueChange("d", None, 1, "added")]
    assert valuediff.diff_texts("m.yaml", "a:\n  b: 1.0\n", "a:\n  b: 1.00001\n",
                                rtol=1e-3) == [
        valuediff.ValueChange("a.b", 1.0, 1.00001, "within rtol")]
    # no unique first column: cells by row number
    assert valuediff.diff_texts("t.tsv", "k\tv\nx\t1\nx\t2\n", "k\tv\nx\t1\nx\t5\n") == [
        valuediff.ValueChange("v[row 2]", 2, 5, "changed")]
    assert valuediff.diff_texts("bad.json", "{", "{}") is None
    assert valuediff.diff_texts("x.yaml", "a: [", "a: 1") is None
    assert valuediff.describe({"key": "k", "old": 1, "new": None, "change": "removed"}) == \
        "k: 1 → (removed)"


@pytest.mark.slow
def test_annex_version_kept_by_rr_run_is_read(ds):
    """git-annex's version as rr run keeps it (.git/rr/annex-version, keyed by the binary):
    no `git annex version` process per verify."""
    rr("run", "-o", "k.txt", "echo k > k.txt", cwd=ds)
    binary = shutil.which("git-annex", path=proc.tool_path())
    st = os.stat(binary)
    (ds / ".git" / "rr").mkdir(exist_ok=True)
    (ds / ".git" / "rr" / "annex-version").write_text(json.dumps(
        {"binary": [os.path.realpath(binary), st.st_size, st.st_mtime_ns],
         "version": "99.0-kept"}))
    assert verify(ds).returncode == 0
    (line,) = verdict_notes(ds)[head(ds)]
    assert line["git_annex"] == "99.0-kept"
    # another binary (an upgrade): asked again
    (ds / ".git" / "rr" / "annex-version").write_text(json.dumps(
        {"binary": [os.path.realpath(binary), st.st_size + 1, st.st_mtime_ns],
         "version": "99.0-kept"}))
    assert verify(ds).returncode == 0
    assert verdict_notes(ds)[head(ds)][-1]["git_annex"] != "99.0-kept"
