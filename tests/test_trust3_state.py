"""An array's state file with wrong types or paths leading out is one line; an id is a name,
never a path (issue 20, item 5's first bullet)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recorder import jobs
from recorder.dataset import Dataset
from recorder.errors import RecorderError

from .conftest import git, one_error_line, rr

ID = "20261203-184101-ab12"


def good_state(ds: Path) -> dict:
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    wt = str(jobs.job_dir(Dataset(ds), ID) / "123-1")
    return {"version": 1, "id": ID, "base": head, "ref": "refs/heads/main", "pwd": ".",
            "options": {"expand": None, "explicit": False, "assume_ready": None,
                        "sidecar": None, "container": None, "gpus": False},
            "message": None, "command": "echo {s} > o{s}",
            "jobs": [{"index": 0, "status": "committed", "params": {"s": "1"},
                      "cmd": "echo 1 > o1", "inputs": [], "outputs": ["o1"], "message": None,
                      "commit": head, "new": True, "duration": 0.5},
                     {"index": 1, "status": "failed", "params": {"s": "2"},
                      "cmd": "echo 2 > o2", "inputs": [], "outputs": ["o2"], "message": None,
                      "error": "boom", "worktree": wt}]}


def write(ds: Path, state: dict) -> Path:
    path = ds / ".git" / "rr-arrays" / f"{ID}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return path


def test_a_good_state_file_loads(ds):
    write(ds, good_state(ds))
    assert jobs.load_state(Dataset(ds), ID)["jobs"][1]["status"] == "failed"


def job(k, **kw):
    def change(s):
        s["jobs"][1].update(kw) if k == 1 else s["jobs"][0].update(kw)
    return change


def top(**kw):
    return lambda s: s.update(kw)


def option(**kw):
    return lambda s: s["options"].update(kw)


@pytest.mark.parametrize("damage, says", [
    (top(pwd="../../../outside"), "'pwd' is not a directory inside the dataset"),
    (top(pwd="/tmp"), "'pwd' is not a directory inside the dataset"),
    (top(pwd="sub/../../x"), "'pwd' is not a directory inside the dataset"),
    (top(ref="refs/tags/v1"), "'ref' is not a branch"),
    (top(message=5), "'message' or 'command' is not text"),
    (top(command=["ls"]), "'message' or 'command' is not text"),
    (top(id="../../../outside"), "'id' is not the file's name"),
    (option(explicit="yes"), "option 'explicit' has the wrong type"),
    (option(container=3), "option 'container' has the wrong type"),
    (option(gpus=None), "option 'gpus' has the wrong type"),
    (job(0, index=True), "has no index of its own"),
    (job(0, index=-1), "has no index of its own"),
    (job(1, index=0), "has no index of its own"),
    (job(0, params={"s": 1}), "has no params, cmd, inputs or outputs"),
    (job(0, params=["s"]), "has no params, cmd, inputs or outputs"),
    (job(0, inputs="a.txt"), "has no params, cmd, inputs or outputs"),
    (job(0, outputs=[None]), "has no params, cmd, inputs or outputs"),
    (job(0, cmd=None), "has no params, cmd, inputs or outputs"),
    (job(0, message=["m"]), "message is not text"),
    (job(1, worktree="/tmp/elsewhere"), "worktree is not a path of these jobs"),
    (job(1, worktree="../../../outside"), "worktree is not a path of these jobs"),
    (job(1, error=7), "'error' has the wrong type"),
    (job(0, commit=None), "'commit' has the wrong type"),
    (job(0, new="yes"), "'new' has the wrong type"),
    (job(0, duration="1s"), "'duration' has the wrong type"),
])
def test_a_state_file_with_wrong_types_or_paths_is_damaged(ds, damage, says):
    state = good_state(ds)
    damage(state)
    write(ds, state)
    with pytest.raises(RecorderError, match="is damaged: .*" + says) as info:
        jobs.load_state(Dataset(ds), ID)
    assert "\n" not in info.value.message


@pytest.mark.parametrize("key", ["version", "id", "base", "ref", "pwd", "options", "jobs"])
def test_a_state_file_missing_a_key_is_damaged(ds, key):
    state = good_state(ds)
    del state[key]
    write(ds, state)
    with pytest.raises(RecorderError, match="is damaged: |newer rr"):
        jobs.load_state(Dataset(ds), ID)


@pytest.mark.parametrize("key", ["index", "status", "params", "cmd", "inputs", "outputs",
                                 "message"])
def test_a_job_missing_a_key_is_damaged(ds, key):
    state = good_state(ds)
    del state["jobs"][0][key]
    write(ds, state)
    with pytest.raises(RecorderError, match="is damaged: "):
        jobs.load_state(Dataset(ds), ID)


def test_the_worktree_of_a_failed_job_in_another_set_is_refused(ds):
    state = good_state(ds)
    state["jobs"][1]["worktree"] = str(jobs.job_dir(Dataset(ds), "20261203-000000-0000") / "1")
    write(ds, state)
    with pytest.raises(RecorderError, match="worktree is not a path of these jobs"):
        jobs.load_state(Dataset(ds), ID)


@pytest.mark.parametrize("bad", ["../../../outside", "..", ".", "a/b", "", "-x", "a\nb"])
def test_an_id_is_a_name_never_a_path(ds, bad):
    with pytest.raises(RecorderError, match="is not an array id"):
        jobs.job_dir(Dataset(ds), bad)
    with pytest.raises(RecorderError, match="is not an array id"):
        jobs.state_path(Dataset(ds), bad)


def test_continue_with_a_path_as_id_is_one_line_and_places_nothing(ds):
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    proc = rr("run", "--continue", "../../../outside", cwd=ds, check=False)
    assert proc.returncode != 0
    one_error_line(proc.stderr)
    assert not (ds.parent / "outside").exists() and not Path("/outside").exists()
    assert git("rev-parse", "HEAD", cwd=ds).strip() == head


def test_continue_of_a_state_file_leading_out_is_one_line_and_runs_nothing(ds):
    state = good_state(ds)
    state["pwd"] = "../.."
    state["jobs"][1]["cmd"] = "touch ran-outside"
    path = write(ds, state)
    proc = rr("run", "--continue", ID, cwd=ds, check=False)
    assert proc.returncode == 1
    assert "is damaged" in one_error_line(proc.stderr)
    assert not list(ds.parent.parent.glob("ran-outside")) and \
        not (ds / "ran-outside").exists()
    assert path.exists() and git("worktree", "list", "--porcelain", cwd=ds).count(
        "worktree ") == 1
    assert not os.path.exists(ds.parent.parent / "ran-outside")
