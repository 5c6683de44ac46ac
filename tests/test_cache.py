"""The run-cache (recorder/cache.py): a run whose key history already has is restored, not
executed; a marker file outside the dataset counts the executions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recorder import cache
from recorder.dataset import Dataset

from .conftest import git, last_message, rr


def record(ds: Path, rev: str = "HEAD") -> dict:
    body = last_message(ds, rev).split("=== Do not change lines below ===\n", 1)[1]
    return json.loads(body.split("\n^^^ Do not change lines above ^^^", 1)[0])


def runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def run(ds: Path, cmd: str, *args: str, check: bool = True):
    return rr("run", "-i", "in.txt", "-o", "out.txt", *args, cmd, cwd=ds, check=check)


@pytest.mark.slow
def test_cached_rerun_restores_without_executing(counted):
    ds, marker, cmd = counted
    run(ds, cmd)
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    blob = git("rev-parse", "HEAD:out.txt", cwd=ds).strip()
    content = (ds / "out.txt").read_bytes()
    assert runs(marker) == 1
    # replayed onto its parent on a new branch: restored, not executed
    proc = rr("rerun", "--onto=", "--branch", "again", cwd=ds)
    assert f"rr: note: restored from cache: {first[:7]}" in proc.stderr
    assert runs(marker) == 1
    assert git("rev-parse", "HEAD", cwd=ds).strip() != first
    assert git("rev-parse", "HEAD:out.txt", cwd=ds).strip() == blob  # the same annex key
    assert (ds / "out.txt").read_bytes() == content  # byte-identical
    rec = record(ds)
    assert rec["rr"]["cached_from"] == first and rec["chain"] == [first]
    assert git("status", "--porcelain", cwd=ds) == ""
    # rr run of the same command: restored again (nothing changes, no commit)
    proc = run(ds, cmd)
    assert "restored from cache" in proc.stderr and "changed nothing" in proc.stderr
    assert runs(marker) == 1
    # --no-cache executes
    run(ds, cmd, "--no-cache")
    assert runs(marker) == 2
    assert "cached_from" not in record(ds).get("rr", {})
    # so does a replay with --no-cache, and a dataset with the cache switched off
    rr("rerun", "--no-cache", cwd=ds)
    assert runs(marker) == 3
    git("config", "rr.run.cache", "false", cwd=ds)
    rr("rerun", cwd=ds)
    assert runs(marker) == 4


@pytest.mark.slow
def test_changed_input_invalidates_and_minus_v_says_why(counted):
    ds, marker, cmd = counted
    run(ds, cmd)
    (ds / "in.txt").unlink()
    (ds / "in.txt").write_text("two\n")
    rr("save", "-m", "new input", cwd=ds)
    proc = run(ds, cmd, "-v")
    assert runs(marker) == 2
    assert "rr: note: cache miss: since " in proc.stderr
    assert "input in.txt changed: MD5E-s4--" in proc.stderr
    # another command for the same outputs: the command text is named
    proc = run(ds, cmd.replace("head -c 3000", "head -c 3001"), "-v")
    assert runs(marker) == 3
    assert "(the same outputs): the command text changed: 'cat in.txt" in proc.stderr
    marker.write_text("x\nx\n")
    # without -v, a miss says nothing
    (ds / "in.txt").unlink()
    (ds / "in.txt").write_text("three\n")
    rr("save", "-m", "newer input", cwd=ds)
    assert "cache miss" not in run(ds, cmd).stderr
    assert runs(marker) == 3
    # back to the first input: the first run's outputs come back
    (ds / "in.txt").unlink()
    (ds / "in.txt").write_text("one\n")
    rr("save", "-m", "first input again", cwd=ds)
    assert "restored from cache" in run(ds, cmd).stderr
    assert runs(marker) == 3
    assert (ds / "out.txt").read_bytes().startswith(b"one\n")


@pytest.mark.slow
def test_declared_variable_invalidates(counted):
    ds, marker, cmd = counted
    git("config", "rr.run.env-record", "RR_TEST_SEED", cwd=ds)
    rr("run", "-i", "in.txt", "-o", "out.txt", cmd, cwd=ds, env={"RR_TEST_SEED": "1"})
    assert record(ds)["rr"]["env"]["vars"] == {"RR_TEST_SEED": "1"}
    rr("run", "-i", "in.txt", "-o", "out.txt", cmd, cwd=ds, env={"RR_TEST_SEED": "1"})
    assert runs(marker) == 1
    proc = rr("run", "-v", "-i", "in.txt", "-o", "out.txt", cmd, cwd=ds,
              env={"RR_TEST_SEED": "2"})
    assert runs(marker) == 2
    assert "variable RR_TEST_SEED changed: '1' -> '2'" in proc.stderr


@pytest.mark.slow
def test_changed_image_digest_invalidates(counted):
    ds, marker, cmd = counted
    run(ds, cmd)
    rec = record(ds)
    d = Dataset(ds)
    assert cache.lookup(d, rec).hit is not None  # the same record: a hit
    other = dict(rec, rr={"container": {"name": "x", "image": "img", "digest": "sha256:b"}})
    recorded = dict(rec, rr={"container": {"name": "x", "image": "img", "digest": "sha256:a"}})
    found = cache.lookup(d, other)
    assert found.hit is None
    parts_a, _, _ = cache.current_parts(d, recorded)
    parts_b, _, _ = cache.current_parts(d, other)
    assert parts_a and parts_b
    assert cache.differences(parts_a, parts_b) == [
        "the image digest changed: sha256:a -> sha256:b"]


@pytest.mark.slow
def test_fresh_clone_hits_the_same_cache(counted, tmp_path):
    ds, marker, cmd = counted
    run(ds, cmd)
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    clone = tmp_path / "clone"
    rr("clone", str(ds), str(clone))
    # without the output's content here: a miss that says so
    proc = rr("run", "-v", "-i", "in.txt", "-o", "out.txt", cmd, cwd=clone)
    assert runs(marker) == 2
    assert f"{first[:7]} has the same key, but the content of its output out.txt is not " \
        "here" in proc.stderr
    clone2 = tmp_path / "clone2"
    rr("clone", str(ds), str(clone2))
    rr("get", "out.txt", cwd=clone2)
    proc = rr("rerun", first[:10], cwd=clone2)
    assert f"restored from cache: {first[:7]}" in proc.stderr
    assert runs(marker) == 2
    assert (clone2 / "out.txt").read_bytes() == (ds / "out.txt").read_bytes()
    # a restored run needs no input: in.txt's content was not fetched
    assert (clone2 / "in.txt").is_symlink() and not (clone2 / "in.txt").exists()


@pytest.mark.slow
def test_index_is_derived_from_history(counted):
    ds, marker, cmd = counted
    run(ds, cmd)
    index = ds / ".git" / "rr-cache" / "index.json"
    assert index.exists()
    shutil.rmtree(index.parent)
    assert "restored from cache" in run(ds, cmd).stderr
    assert runs(marker) == 1
    index.write_text("{not json")  # damaged: rebuilt
    assert "restored from cache" in run(ds, cmd).stderr
    assert runs(marker) == 1
    data = json.loads(index.read_text())
    data["entries"][0]["outputs"] = "broken"
    index.write_text(json.dumps(data))
    assert "restored from cache" in run(ds, cmd).stderr
    assert runs(marker) == 1


@pytest.mark.slow
def test_a_run_without_declared_inputs_always_executes(ds, tmp_path):
    marker = tmp_path / "marker"
    cmd = f"date +%N > stamp.txt; echo x >> {marker}"
    rr("run", "-o", "stamp.txt", cmd, cwd=ds)
    proc = rr("run", "-v", "-o", "stamp.txt", cmd, cwd=ds)
    assert runs(marker) == 2
    assert "not cacheable: it declares no inputs" in proc.stderr
    # declared code makes it cacheable (the dataset says which code every run reads)
    (ds / "code").mkdir()
    (ds / "code" / "x.sh").write_text("echo 1\n")
    git("config", "rr.run.cache-code", "code", cwd=ds)
    rr("save", "-m", "code", cwd=ds)
    rr("run", "-o", "stamp.txt", cmd, cwd=ds)
    assert runs(marker) == 3
    rr("run", "-o", "stamp.txt", cmd, cwd=ds)
    assert runs(marker) == 3
    (ds / "code" / "x.sh").unlink()  # annexed: a new file, not a write through the link
    (ds / "code" / "x.sh").write_text("echo 2\n")
    rr("save", "-m", "code changed", cwd=ds)
    proc = rr("run", "-v", "-o", "stamp.txt", cmd, cwd=ds)
    assert runs(marker) == 4
    assert "code code changed" in proc.stderr


@pytest.mark.slow
def test_a_file_the_command_names_is_implicit_code(ds, tmp_path):
    marker = tmp_path / "marker"
    (ds / "in.txt").write_text("data\n")
    (ds / "code").mkdir()
    (ds / "code" / "run.sh").write_text("cat in.txt\n")
    rr("save", "-m", "in", cwd=ds)
    cmd = f"sh code/run.sh > out.txt; echo x >> {marker}"
    rr("run", "-i", "in.txt", "-o", "out.txt", cmd, cwd=ds)
    rr("run", "-i", "in.txt", "-o", "out.txt", cmd, cwd=ds)
    assert runs(marker) == 1
    (ds / "code" / "run.sh").unlink()
    (ds / "code" / "run.sh").write_text("cat in.txt in.txt\n")
    rr("save", "-m", "code", cwd=ds)
    proc = rr("run", "-v", "-i", "in.txt", "-o", "out.txt", cmd, cwd=ds)
    assert runs(marker) == 2
    assert "the command names code/run.sh, which changed" in proc.stderr
    assert (ds / "out.txt").read_text() == "data\ndata\n"


@pytest.mark.slow
def test_rerun_explain(counted):
    ds, marker, cmd = counted
    run(ds, cmd)
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    out = rr("rerun", "--explain", cwd=ds).stdout
    assert out == (f"{first[:7]} {'cat in.txt > out.txt; head -c 3000 /dev/...'!r}: "
                   f"would be restored from cache: {first[:7]}\n")
    (ds / "in.txt").unlink()
    (ds / "in.txt").write_text("two\n")
    rr("save", "-m", "new input", cwd=ds)
    lines = [json.loads(x) for x in rr("rerun", "--explain", "--json", first[:10],
                                        cwd=ds).stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["cached_from"] is None
    assert lines[0]["changes"][0].startswith("input in.txt changed: MD5E-s4--")
    assert runs(marker) == 1  # nothing executed
    proc = rr("rerun", "--explain", "--abort", cwd=ds, check=False)
    assert proc.returncode == 2 and "--explain changes nothing" in proc.stderr


@pytest.mark.slow
def test_appending_rows_runs_only_the_new_jobs(ds, tmp_path):
    marker = tmp_path / "marker"
    (ds / "raw").mkdir()
    for s in ("01", "02", "03"):
        (ds / "raw" / f"{s}.txt").write_text(f"subject {s}\n")
    table = tmp_path / "rows.csv"
    table.write_text("s\n01\n02\n")
    rr("save", "-m", "raw", cwd=ds)
    cmd = f"mkdir -p out; cat {{inputs}} > {{outputs}}; echo {{s}} >> {marker}"
    args = ("run", "--array", str(table), "-i", "raw/{s}.txt", "-o", "out/{s}.txt", cmd)
    rr(*args, cwd=ds)
    assert marker.read_text().split() == ["01", "02"]
    table.write_text("s\n01\n02\n03\n")
    rr(*args, cwd=ds)
    assert marker.read_text().split() == ["01", "02", "03"]  # exactly the new row ran
    assert (ds / "out" / "03.txt").read_text() == "subject 03\n"
    assert git("status", "--porcelain", cwd=ds) == ""
    rr("run", "--no-cache", *args[1:], cwd=ds)
    assert marker.read_text().split() == ["01", "02", "03", "01", "02", "03"]


@pytest.mark.slow
def test_a_declared_output_the_entry_left_unchanged_is_restored_too(ds, tmp_path):
    marker = tmp_path / "marker"
    (ds / "in.txt").write_text("in\n")
    (ds / "b.txt").write_text("const\n")
    rr("save", "-m", "input, and b.txt as the command writes it", cwd=ds)
    cmd = f"cat in.txt > a.txt; echo const > b.txt; echo x >> {marker}"
    rr("run", "-i", "in.txt", "-o", "a.txt", "-o", "b.txt", cmd, cwd=ds)
    assert git("diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD", cwd=ds).split() == \
        ["a.txt"]
    (ds / "b.txt").unlink()
    (ds / "b.txt").write_text("by hand\n")
    rr("save", "-m", "b.txt by hand", cwd=ds)
    proc = rr("run", "-i", "in.txt", "-o", "a.txt", "-o", "b.txt", cmd, cwd=ds)
    assert "restored from cache" in proc.stderr and runs(marker) == 1
    assert (ds / "b.txt").read_text() == "const\n"
    assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.slow
def test_container_run_cached_and_a_new_image_invalidates(ds, busybox_image, tmp_path):
    import subprocess

    rr("containers-add", "bb", "--url", f"dhub://{busybox_image}", cwd=ds)
    (ds / "in.txt").write_text("in\n")
    (ds / "code").mkdir()
    (ds / "code" / "count.sh").write_text("cat in.txt; ls /etc | wc -l\n")
    rr("save", "-m", "input", cwd=ds)
    args = ("containers-run", "-n", "bb", "-i", "in.txt", "-o", "n.txt")
    cmd = "sh code/count.sh > n.txt"
    proc = rr(*args, cmd, cwd=ds)
    assert "restored from cache" not in proc.stderr
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    assert record(ds)["rr"]["container"]["digest"]
    proc = rr(*args, "-v", cmd, cwd=ds)
    assert f"restored from cache: {first[:7]}" in proc.stderr
    assert "rr: running:" not in proc.stderr
    # the script the command names, inside the container call, is implicit code
    (ds / "code" / "count.sh").unlink()
    (ds / "code" / "count.sh").write_text("cat in.txt in.txt; ls /etc | wc -l\n")
    rr("save", "-m", "code", cwd=ds)
    proc = rr(*args, "-v", cmd, cwd=ds)
    assert "rr: running:" in proc.stderr
    assert "the command names code/count.sh, which changed" in proc.stderr
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN touch /etc/extra\n")
    subprocess.run(["docker", "build", "-q", "--network", "none", "-t", "rrtest/busybox:c2",
                    str(ctx)], check=True, capture_output=True)
    rr("containers-add", "bb", "--update", "--url", "dhub://rrtest/busybox:c2", cwd=ds)
    proc = rr(*args, "-v", cmd, cwd=ds)
    assert "rr: running:" in proc.stderr and "restored from cache" not in proc.stderr
    assert "the image digest changed: sha256:" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=ds).strip() != first


@pytest.mark.slow
def test_a_glob_input_is_keyed_by_what_it_matches(ds, tmp_path):
    marker = tmp_path / "marker"
    (ds / "data").mkdir()
    (ds / "data" / "a.csv").write_text("1\n")
    (ds / "data" / "notes.md").write_text("x\n")
    rr("save", "-m", "data", cwd=ds)
    args = ("run", "-i", "data/*.csv", "-o", "n.txt", f"cat data/*.csv > n.txt; echo x >> {marker}")
    rr(*args, cwd=ds)
    # a file the glob does not match changes: still restored
    (ds / "data" / "more.md").write_text("y\n")
    rr("save", "-m", "unmatched", cwd=ds)
    assert "restored from cache" in rr(*args, cwd=ds).stderr and runs(marker) == 1
    # a file it matches is added: executed, and -v says which input
    (ds / "data" / "b.csv").write_text("2\n")
    rr("save", "-m", "matched", cwd=ds)
    proc = rr("run", "-v", *args[1:], cwd=ds)
    assert runs(marker) == 2 and "input data/*.csv changed: glob " in proc.stderr


@pytest.mark.slow
def test_an_input_in_a_subdataset_is_keyed_by_the_subdatasets_commit(ds, tmp_path):
    marker = tmp_path / "marker"
    rr("create", "-d", ".", "sub", cwd=ds)
    (ds / "sub" / "data.txt").write_text("d1\n")
    rr("save", "-r", "-m", "data", cwd=ds)
    args = ("run", "-v", "-i", "sub/data.txt", "-o", "n.txt",
            f"cat sub/data.txt > n.txt; echo x >> {marker}")
    rr(*args, cwd=ds)
    assert "restored from cache" in rr(*args, cwd=ds).stderr and runs(marker) == 1
    (ds / "sub" / "data.txt").unlink()
    (ds / "sub" / "data.txt").write_text("d2\n")
    rr("save", "-r", "-m", "new data", cwd=ds)
    proc = rr(*args, cwd=ds)
    assert runs(marker) == 2
    assert "input sub/data.txt changed: subdataset sub at " in proc.stderr
    assert (ds / "n.txt").read_text() == "d2\n"
    # a glob in the subdataset: keyed by its commit too
    globbed = ("run", "-i", "sub/*.txt", "-o", "m.txt", f"cat sub/*.txt > m.txt; echo x >> {marker}")
    rr(*globbed, cwd=ds)
    assert "restored from cache" in rr(*globbed, cwd=ds).stderr and runs(marker) == 3


@pytest.mark.slow
def test_explicit_runs_in_a_dirty_dataset(counted):
    ds, marker, cmd = counted
    run(ds, cmd, "--explicit")
    (ds / "junk.txt").write_text("unsaved\n")
    proc = run(ds, cmd, "--explicit")
    assert "restored from cache" in proc.stderr and runs(marker) == 1
    (ds / "in.txt").unlink()
    (ds / "in.txt").write_text("unsaved input\n")
    proc = run(ds, cmd, "--explicit", "-v")
    assert runs(marker) == 2
    assert "not cacheable now: in.txt has unsaved changes" in proc.stderr


def test_a_restore_that_fails_puts_the_outputs_back(ds):
    from recorder.errors import RecorderError

    (ds / "out.txt").write_text("as committed\n")
    rr("save", "-m", "out", cwd=ds)
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    blob = git("rev-parse", "HEAD:.datalad/config", cwd=ds).strip()
    entry = {"commit": head, "outputs": [["out.txt", "100644", blob, None],
                                         ["new.txt", "100644", "0" * 40, None]]}
    with pytest.raises(RecorderError, match="the run-cache cannot read new.txt"):
        cache.restore(Dataset(ds), entry)
    assert (ds / "out.txt").is_symlink() and (ds / "out.txt").read_text() == "as committed\n"
    assert not (ds / "new.txt").exists()
    assert git("status", "--porcelain", cwd=ds) == ""
