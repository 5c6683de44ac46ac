"""rr lineage: where a file came from, what consumed it, the script that makes it again."""

from __future__ import annotations

import json
import subprocess

import pytest

from recorder import record as records
from tests.conftest import git, needs_datalad, one_error_line, rr, rr_in

COUNT = 'cat "$@" | wc -w\n'


def _commit_cached(ds, original: str, out: str, content: bytes, cmd: str, inputs) -> str:
    """A run-cache hit as the run cache records it: the output restored, a record whose
    ``rr.cached_from`` names the commit whose run made it."""
    (ds / out).write_bytes(content)
    git("annex", "add", out, cwd=ds)
    rec = records.new_record(cmd=cmd, dsid=None, exit_code=0, inputs=list(inputs),
                             extra_inputs=[], outputs=[out], pwd=".",
                             rr={"cached_from": original})
    git("commit", "-q", "-m", records.format_message("double (cached)", rec), cwd=ds)
    return git("rev-parse", "HEAD", cwd=ds).strip()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """raw (a subdataset) -> count -> double (then cached again) -> report, plus code."""
    base = tmp_path_factory.mktemp("lineage")
    raw = base / "raw"
    rr("create", str(raw))
    (raw / "a.dat").write_text("1 2 3\n")
    (raw / "b.dat").write_text("4 5\n")
    rr("save", "-m", "raw data", cwd=raw)
    ds = base / "ds"
    rr("create", str(ds))
    rr("clone", "-d", ".", "../raw", "data/raw", cwd=ds)
    (ds / "code").mkdir()
    (ds / "code" / "count.sh").write_text(COUNT)
    rr("save", "-m", "code", cwd=ds)
    rr("run", "-m", "count", "-i", "data/raw/*.dat", "-i", "code/count.sh", "-o", "counts.txt",
       "sh code/count.sh data/raw/*.dat > counts.txt", cwd=ds)
    double_cmd = "echo $(( $(cat {inputs}) * 2 )) > {outputs}"
    rr("run", "-m", "double", "-i", "counts.txt", "-o", "double.txt", double_cmd, cwd=ds)
    double = git("rev-parse", "HEAD", cwd=ds).strip()
    content = (ds / "double.txt").read_bytes()
    git("rm", "-q", "double.txt", cwd=ds)
    git("commit", "-q", "-m", "drop double", cwd=ds)
    cached = _commit_cached(ds, double, "double.txt", content, double_cmd, ["counts.txt"])
    (ds / "notes.txt").write_text("unrelated\n")
    rr("save", "-m", "unrelated", cwd=ds)
    rr("run", "-m", "report", "-i", "double.txt", "-i", "code/count.sh", "-o", "report.txt",
       "cat double.txt code/count.sh > report.txt", cwd=ds)
    rr("run", "-m", "final", "-i", "report.txt", "-o", "final.txt",
       "wc -c < report.txt > final.txt", cwd=ds)
    return {"ds": ds, "double": double, "cached": cached}


def _lineage(ds, *args):
    return json.loads(rr("lineage", "--json", *args, cwd=ds).stdout)


@pytest.mark.slow
def test_chain_back_to_data_no_run_made(chain):
    ds = chain["ds"]
    lin = _lineage(ds, "report.txt")
    assert [s["message"] for s in lin["steps"]] == [
        "count", "double (cached)", "report"]
    head = git("rev-parse", "HEAD~1", cwd=ds).strip()
    assert lin["steps"][-1]["commit"] == head
    assert lin["state"]["key"].startswith("MD5E-s") and lin["state"]["kind"] == "annex"
    count, cached, report = lin["steps"]
    # the subdataset input: the subdataset's commit, saved by a commit without a record
    sub = [i for i in count["inputs"] if i["path"] == "data/raw"]
    assert sub and sub[0]["kind"] == "subdataset"
    assert sub[0]["key"] == git("rev-parse", "HEAD", cwd=ds / "data" / "raw").strip()
    # the cached step says which run made its output, and the key of its input
    assert cached["cached_from"] == chain["double"] and cached["commit"] == chain["cached"]
    assert cached["inputs"][0]["path"] == "counts.txt"
    assert cached["inputs"][0]["commit"] == count["commit"]
    assert cached["inputs"][0]["key"] == count["outputs"][0]["key"]
    assert {i["path"] for i in report["inputs"]} == {"double.txt", "code/count.sh"}
    assert sorted(s["path"] for s in lin["sources"]) == ["code/count.sh", "data/raw"]
    assert all(not s["by_run"] for s in lin["sources"])
    # the text form names the same
    text = rr("lineage", "report.txt", cwd=ds).stdout
    assert "cached from " + chain["double"][:8] in text and "subdataset at" in text


@pytest.mark.slow
def test_forward_lists_the_consumers(chain):
    ds = chain["ds"]
    lin = _lineage(ds, "counts.txt", "--forward")
    assert [s["message"] for s in lin["forward"]] == ["double", "double (cached)", "report",
                                                   "final"]
    lin = _lineage(ds, "final.txt", "--forward")
    assert lin["forward"] == []
    assert "consumed by no run" in rr("lineage", "--forward", "final.txt", cwd=ds).stdout


@pytest.mark.slow
def test_script_replayed_in_a_fresh_clone_gives_the_same_file(chain, tmp_path):
    ds = chain["ds"]
    script = rr("lineage", "--script", "final.txt", cwd=ds).stdout
    assert script.startswith("#!/bin/sh")
    clone = tmp_path / "clone"
    rr("clone", str(ds), str(clone))
    assert not (clone / "final.txt").exists()  # no content in a fresh clone
    done = subprocess.run(["sh", "-c", script], cwd=clone, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (clone / "final.txt").read_bytes() == (ds / "final.txt").read_bytes()
    assert (clone / "report.txt").read_bytes() == (ds / "report.txt").read_bytes()


@pytest.mark.slow
def test_a_file_no_run_made_and_bad_paths(chain):
    ds = chain["ds"]
    lin = _lineage(ds, "code/count.sh")
    assert lin["steps"] == [] and [s["path"] for s in lin["sources"]] == ["code/count.sh"]
    assert "made by no run" in rr("lineage", "code/count.sh", cwd=ds).stdout
    for path, error in (("nothere.txt", "nothere.txt is not in HEAD's tree"),
                        ("code", "code is a directory: give one of its files"),
                        ("/", "outside")):
        res = rr_in("lineage", path, cwd=ds)
        assert res.exit_code != 0
        assert error in one_error_line(res.stderr)


def test_malformed_record_is_a_note_not_a_traceback(ds):
    (ds / "out.txt").write_text("y\n")
    git("add", "out.txt", cwd=ds)
    git("commit", "-q", "-m", f"{records.TAG}broken\n\n{records.BELOW}\n{{nope\n{records.ABOVE}\n",
        cwd=ds)
    res = rr_in("lineage", "out.txt", cwd=ds)
    assert res.exit_code == 0, res.stderr
    assert "malformed run record" in res.stdout


@pytest.mark.slow
def test_a_path_in_a_subdataset_is_a_hint(chain):
    res = rr_in("lineage", "data/raw/a.dat", cwd=chain["ds"])
    assert "data/raw/a.dat is in the subdataset data/raw" in one_error_line(res.stderr)


@needs_datalad
@pytest.mark.slow
def test_datalads_own_records(ds):
    for args in (["-m", "make", "-o", "a.txt", "echo hi > a.txt"],
                 ["-m", "copy", "-i", "a.txt", "-o", "b.txt", "cat a.txt a.txt > b.txt"]):
        subprocess.run(["datalad", "run", *args], cwd=ds, check=True, capture_output=True)
    lin = _lineage(ds, "b.txt")
    assert [s["message"] for s in lin["steps"]] == ["make", "copy"]
    assert lin["steps"][1]["inputs"][0]["key"] == lin["steps"][0]["outputs"][0]["key"]
    assert lin["steps"][0]["image"] is None and lin["steps"][0]["duration"] is None


@pytest.mark.slow
def test_a_rerun_step_names_its_original(ds):
    rr("run", "-m", "stamp", "-o", "t.txt", "date +%s%N > t.txt", cwd=ds)
    original = git("rev-parse", "HEAD", cwd=ds).strip()
    rr("rerun", cwd=ds)  # a new time stamp: a new commit whose record chains to the original
    rerun = git("rev-parse", "HEAD", cwd=ds).strip()
    assert rerun != original
    rr("run", "-m", "copy", "-i", "t.txt", "-o", "u.txt", "cat t.txt > u.txt", cwd=ds)
    lin = _lineage(ds, "u.txt")
    assert [s["commit"] for s in lin["steps"]][0] == rerun
    assert lin["steps"][0]["chain"] == [original]
    assert f"(rerun of {original[:8]})" in rr("lineage", "u.txt", cwd=ds).stdout


def test_input_specs_as_glob_reads_them(ds):
    """Globs as DataLad expands them (glob.glob): * stays within a name and skips dot
    files, ** crosses directories; paths outside the dataset are not followed."""
    for name in ("a.txt", "b.txt", "sub/c.txt", "sub/deep/d.txt"):
        (ds / name).parent.mkdir(parents=True, exist_ok=True)
        (ds / name).write_text(name)
    git("add", ".", cwd=ds)
    git("commit", "-q", "-m", "data", cwd=ds)
    rec = records.new_record(cmd="cat {inputs} > out.txt", dsid=None, exit_code=0,
                             inputs=["*", "sub/**/*.txt", "/etc/passwd", "../x"],
                             extra_inputs=[], outputs=["out.txt"], pwd=".")
    (ds / "out.txt").write_text("x\n")
    git("add", "out.txt", cwd=ds)
    git("commit", "-q", "-m", records.format_message("cat", rec), cwd=ds)
    res = rr_in("lineage", "--json", "out.txt", cwd=ds)
    assert res.exit_code == 0, res.stderr
    step = json.loads(res.stdout)["steps"][0]
    assert [i["path"] for i in step["inputs"]] == [
        "a.txt", "b.txt", "sub/c.txt", "sub/deep/d.txt"]
    rec["inputs"] = ["s*", "sub/*/d.txt"]  # a directory matched: its files
    (ds / "out.txt").write_text("y\n")
    git("add", "out.txt", cwd=ds)
    git("commit", "-q", "-m", records.format_message("again", rec), cwd=ds)
    step = json.loads(rr_in("lineage", "--json", "out.txt", cwd=ds).stdout)["steps"][0]
    assert [i["path"] for i in step["inputs"]] == ["sub/c.txt", "sub/deep/d.txt"]
