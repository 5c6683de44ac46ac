"""The job runtime (recorder/jobs.py): the state file of an array is versioned and checked
when read (a damaged file or one of a newer rr is one line naming the file and what to do),
and one written by the rr before jobs.py is read as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recorder import jobs
from recorder.dataset import Dataset
from recorder.engine import JobStatus
from recorder.errors import RecorderError

from .conftest import git, rr

FAIL_ONE = "if test {s} = 2 && ! test -e fixed; then exit 3; fi; echo {s} > o{s}.txt"


def unfinished_array(ds: Path) -> tuple[str, Path]:
    """An array whose job 1 failed: its state file is kept."""
    proc = rr("run", "--param", "s=1,2,3", "-o", "o{s}.txt", FAIL_ONE, cwd=ds, check=False)
    assert proc.returncode != 0
    (array_id,) = jobs.unfinished(Dataset(ds))
    return array_id, ds / ".git" / "rr-arrays" / f"{array_id}.json"


def test_state_file_is_versioned_and_statuses_are_job_statuses(ds):
    array_id, path = unfinished_array(ds)
    state = json.loads(path.read_text())
    assert state["version"] == jobs.STATE_VERSION and state["id"] == array_id
    assert [j["status"] for j in state["jobs"]] == ["committed", "failed", "committed"]
    assert {j["status"] for j in state["jobs"]} <= set(JobStatus)
    loaded = jobs.load_state(Dataset(ds), array_id)
    assert loaded["jobs"][1]["status"] == JobStatus.FAILED


@pytest.mark.parametrize("damage, says", [
    (lambda s: "{not json", "cannot be read"),
    (lambda s: json.dumps([1, 2]), "is damaged: not a JSON object"),
    (lambda s: json.dumps({**s, "base": "HEAD"}), "is damaged: 'base' is not a commit id"),
    (lambda s: json.dumps({**s, "jobs": [{**s["jobs"][0], "status": "weird"}]}),
     "is damaged: job 0 has an unknown status"),
    (lambda s: json.dumps({**s, "version": 2}), "was written by a newer rr (version 2"),
])
def test_a_damaged_or_newer_state_file_is_one_line(ds, damage, says):
    array_id, path = unfinished_array(ds)
    head = git("rev-parse", "HEAD", cwd=ds)
    path.write_text(damage(json.loads(path.read_text())))
    proc = rr("run", "--continue", array_id, cwd=ds, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"rr: error: the state file {path} "), proc.stderr
    assert says in lines[0]
    assert lines[1].startswith("rr: hint: ") and len(lines) == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert git("rev-parse", "HEAD", cwd=ds) == head
    with pytest.raises(RecorderError, match="the state file"):
        jobs.load_state(Dataset(ds), array_id)


def test_a_state_file_of_the_rr_before_is_continued(ds):
    """The state file as rr wrote it before jobs.py (same keys, version 1, statuses as
    strings): --continue runs what failed and writes the history."""
    array_id, path = unfinished_array(ds)
    state = json.loads(path.read_text())
    path.write_text(json.dumps(state, indent=1))  # the old writer: no key added, none missing
    (ds / "fixed").write_text("")
    git("add", "fixed", cwd=ds)
    git("commit", "-q", "-m", "fixed", cwd=ds)
    rr("run", "--continue", array_id, cwd=ds)
    assert (ds / "o2.txt").read_text() == "2\n"
    assert not path.exists()
