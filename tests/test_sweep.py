"""A parameter sweep compared with rr metrics show: one row per file (--per-file), files named
by a glob matched against the revisions' trees (issue 12 part 9; the usecase's sweep runs in
tests/test_usecase_ml.py)."""

from __future__ import annotations

import json

import pytest

from recorder import api
from tests.conftest import git, rr

TRAIN = """\
import json, os, sys
it, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump({"accuracy": round(1 - 1 / it, 4), "max_iter": it}, open(out, "w"))
"""


@pytest.fixture
def swept(ds):
    (ds / "train.py").write_text(TRAIN)
    rr("save", "-m", "training code", cwd=ds)
    rr("run", "--param", "max_iter=5,10,20", "-m", "sweep max_iter={max_iter}",
       "-o", "sweep/max_iter-{max_iter}/accuracy.json", "python3 train.py {max_iter} {outputs}",
       cwd=ds)
    return ds


def _rows(ds, *args):
    out = rr("metrics", "show", "--json", *args, cwd=ds).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_per_file_rows_of_a_glob(swept):
    rows = _rows(swept, "--per-file", "sweep/*/accuracy.json")
    # one row per file, numbers in their natural order, keys unprefixed: comparable columns
    assert [(r["file"], r["max_iter"], r["accuracy"]) for r in rows] == [
        ("sweep/max_iter-5/accuracy.json", 5, 0.8),
        ("sweep/max_iter-10/accuracy.json", 10, 0.9),
        ("sweep/max_iter-20/accuracy.json", 20, 0.95)]
    assert {r["revision"] for r in rows} == {"master"} and not any(r["note"] for r in rows)
    table = rr("metrics", "show", "--per-file", "sweep/*/accuracy.json", cwd=swept).stdout
    header, *lines = table.splitlines()
    assert header.split() == ["revision", "commit", "file", "accuracy", "max_iter"]
    assert len(lines) == 3 and "sweep/max_iter-10/accuracy.json" in lines[1]


def test_per_file_with_default_files_and_revisions(swept):
    # default files: the .json outputs of the run records, one row each
    rows = _rows(swept, "--per-file")
    assert sorted(r["max_iter"] for r in rows) == [5, 10, 20]
    # the glob matches the files of every selected revision; one missing at an older
    # revision is a note on its own row
    first_job = git("rev-list", "HEAD", cwd=swept).split()[2]
    rows = _rows(swept, "--per-file", "-r", first_job, "-r", "HEAD", "sweep/*/accuracy.json")
    assert len(rows) == 6
    by_file = {r["file"]: r for r in rows if r["revision"] == first_job}
    assert by_file["sweep/max_iter-5/accuracy.json"]["accuracy"] == 0.8
    assert by_file["sweep/max_iter-20/accuracy.json"]["note"] == \
        "sweep/max_iter-20/accuracy.json: missing"
    assert _rows(swept, "--per-file", "-r", first_job, "sweep/*/accuracy.json")[0]["file"] \
        == "sweep/max_iter-5/accuracy.json"
    # the Python API: the same rows
    api_rows = api.metrics(["sweep/*/accuracy.json"], dataset=swept, per_file=True,
                           as_frame=False)
    assert [r.file for r in api_rows][0] == "sweep/max_iter-5/accuracy.json"


def test_glob_without_per_file_and_no_match(swept):
    # without --per-file the files are columns of one row per revision, as before
    (row,) = _rows(swept, "sweep/max_iter-[12]*/accuracy.json")
    assert row["sweep/max_iter-10/accuracy.json:accuracy"] == 0.9
    assert row["sweep/max_iter-20/accuracy.json:accuracy"] == 0.95
    assert not any(k.startswith("sweep/max_iter-5/") for k in row)
    # '*' stays within one directory; a glob matching nothing is noted as missing
    (row,) = _rows(swept, "*/accuracy.json")
    assert row["note"] == "*/accuracy.json: missing"
    proc = rr("metrics", "show", "--per-file", "../outside/*.json", cwd=swept, check=False)
    assert proc.returncode != 0 and proc.stderr.startswith("rr: error: ")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_array_jobs_read_inputs_in_a_subdataset(tmp_path):
    """A job's worktree gets an installed subdataset as a worktree of the main one: its
    annexed inputs are there, nothing is cloned or copied, nothing is left registered."""
    raw, sup = tmp_path / "raw", tmp_path / "sup"
    rr("create", str(raw), cwd=tmp_path)
    (raw / "d").mkdir()
    for name, text in (("a.txt", "alpha\n"), ("b.txt", "beta\n")):
        (raw / "d" / name).write_text(text)
    rr("save", "-m", "data", cwd=raw)
    rr("create", str(sup), cwd=tmp_path)
    rr("clone", "-d", ".", "../raw", "data/raw", cwd=sup)
    rr("get", "data/raw/d", cwd=sup)
    proc = rr("run", "--param", "n=1,2", "-i", "data/raw/d/*.txt", "-o", "out-{n}.txt",
              "cat {inputs} > {outputs}; echo {n} >> {outputs}", cwd=sup)
    assert "as a worktree of" in proc.stderr
    assert (sup / "out-2.txt").read_text() == "alpha\nbeta\n2\n"
    assert git("status", "--porcelain", cwd=sup) == ""
    assert len(git("rev-list", "HEAD", cwd=sup).split()) == 4  # one commit per job
    # the subdataset's worktrees went with the jobs' (pruned by the next install at the latest)
    git("worktree", "prune", cwd=sup / "data" / "raw")
    assert len(git("worktree", "list", cwd=sup / "data" / "raw").splitlines()) == 1
    # one job replays alone, in the main worktree
    first = git("rev-list", "HEAD", cwd=sup).split()[1]
    rr("rerun", first, cwd=sup)
    assert (sup / "out-1.txt").read_text() == "alpha\nbeta\n1\n"
