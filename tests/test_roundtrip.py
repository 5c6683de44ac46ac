"""The collaborator's round trip: two users (two HOMEs, two git identities) and a shared bare
store that holds history and annexed content.  A creates and pushes; B clones, gets, reruns
on a new branch with a change and pushes; A updates, sees B's branch, gets B's model,
compares and merges.  Once with rr on both sides, once with B using DataLad and once with A
using DataLad: mixed teams work."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, needs_datalad, rr

TRAIN = """\
import json
p = json.load(open("params.json"))
open("model.bin", "wb").write(bytes([0, 1, 2]) + ("model size %d\\n" % p["size"]).encode() * 10)
json.dump({"accuracy": 0.5 + p["size"] / 100}, open("accuracy.json", "w"))
"""
RUN = ["-m", "Train", "-i", "params.json", "-o", "model.bin", "-o", "accuracy.json",
       "python3 train.py"]


class User:
    """One collaborator: own HOME and git identity; rr, datalad and git as that user."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        home = tmp_path / f"home-{name}"
        home.mkdir()
        (home / ".gitconfig").write_text(
            f"[user]\n\tname = User {name}\n\temail = {name.lower()}@example.invalid\n"
            "[init]\n\tdefaultBranch = master\n", encoding="utf-8")
        self.name = name
        self.env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}

    def rr(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        return rr(*args, cwd=cwd, env=self.env, check=check)

    def datalad(self, *args: str, cwd: Path) -> str:
        proc = subprocess.run(["datalad", *args], cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **self.env})
        assert proc.returncode == 0, f"datalad {args}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def git(self, *args: str, cwd: Path) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **self.env})
        assert proc.returncode == 0, f"git {args}: {proc.stderr}"
        return proc.stdout


@pytest.fixture
def team(tmp_path):
    return User(tmp_path, "A"), User(tmp_path, "B"), tmp_path / "store.git"


def _write_project(path: Path) -> None:
    (path / "train.py").write_text(TRAIN)
    (path / "params.json").write_text('{"size": 10}\n')


def _bigger(path: Path) -> None:
    (path / "params.json").write_text('{"size": 20}\n')


def _run_commit(user: User, path: Path) -> str:
    return user.git("log", "-1", "--format=%H", "--grep=RUNCMD", "master", cwd=path).strip()


def _accuracy(path: Path, rev: str) -> float:
    return json.loads(git("show", f"{rev}:accuracy.json", cwd=path))["accuracy"]


def _a_creates_and_pushes_with_rr(a: User, tmp_path: Path, store: Path) -> Path:
    ds = tmp_path / "a"
    a.rr("create", "-c", "text2git", str(ds), cwd=tmp_path)
    _write_project(ds)
    a.rr("save", "-m", "Add training code and parameters", cwd=ds)
    a.rr("run", *RUN, cwd=ds)
    a.rr("siblings", "add", "origin", str(store), cwd=ds)
    a.rr("push", "--to", "origin", cwd=ds)
    return ds


def _a_sees_gets_and_compares(a: User, ds: Path) -> None:
    """After rr update: B's branch is listed by metrics -a, B's model can be got."""
    table = a.rr("metrics", "show", "-a", "--json", cwd=ds).stdout
    rows = {r["revision"]: r for r in map(json.loads, table.splitlines())}
    assert rows["master"]["accuracy"] == 0.6 and rows["origin/bigger"]["accuracy"] == 0.7
    a.git("checkout", "-q", "bigger", cwd=ds)  # a local branch tracking origin/bigger
    model = ds / "model.bin"
    assert not model.exists()  # only the link: the content is B's, in the store
    a.rr("get", "model.bin", cwd=ds)
    assert b"model size 20" in model.read_bytes()
    diff = a.git("diff", "master", "bigger", "--", "accuracy.json", "params.json", cwd=ds)
    assert '-{"accuracy": 0.6}' in diff and '+{"accuracy": 0.7}' in diff
    a.git("checkout", "-q", "master", cwd=ds)


@pytest.mark.slow
def test_round_trip_with_rr(team, tmp_path):
    a, b, store = team
    ds_a = _a_creates_and_pushes_with_rr(a, tmp_path, store)

    ds_b = tmp_path / "b"
    b.rr("clone", str(store), str(ds_b), cwd=tmp_path)
    b.rr("get", "model.bin", cwd=ds_b)
    assert b"model size 10" in (ds_b / "model.bin").read_bytes()
    _bigger(ds_b)
    b.rr("save", "-m", "Bigger model", cwd=ds_b)
    b.rr("rerun", "--branch", "bigger", "--onto", "HEAD", _run_commit(b, ds_b), cwd=ds_b)
    b.rr("push", "--to", "origin", cwd=ds_b)
    assert "User B" in git("log", "-1", "--format=%an", "bigger", cwd=ds_b)

    out = a.rr("update", "-s", "origin", cwd=ds_a).stdout
    assert "fetched from origin" in out
    assert git("rev-parse", "HEAD", cwd=ds_a) == git("rev-parse", "master", cwd=ds_a)
    _a_sees_gets_and_compares(a, ds_a)

    # meanwhile both went on: A adds notes, B takes the bigger model into master
    (ds_a / "NOTES.txt").write_text("a note\n")
    a.rr("save", "-m", "Notes", cwd=ds_a)
    b.git("checkout", "-q", "master", cwd=ds_b)
    b.git("merge", "-q", "--ff-only", "bigger", cwd=ds_b)
    b.rr("push", "--to", "origin", cwd=ds_b)
    mine = git("rev-parse", "HEAD", cwd=ds_a).strip()
    proc = a.rr("update", "--how", "ff-only", cwd=ds_a, check=False)
    assert proc.returncode == 1
    theirs = git("rev-parse", "origin/master", cwd=ds_b).strip()
    assert f"rr: error: master ({mine[:8]}) and origin/master ({theirs[:8]}) have diverged" \
        in proc.stderr
    assert "rr: hint: merge them with: rr update --how merge" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=ds_a).strip() == mine  # nothing moved

    a.rr("update", "--how", "merge", cwd=ds_a)
    parents = git("log", "-1", "--format=%P", cwd=ds_a).split()
    assert parents == [mine, theirs]
    assert (ds_a / "NOTES.txt").exists() and _accuracy(ds_a, "HEAD") == 0.7
    assert b"model size 20" in (ds_a / "model.bin").read_bytes()  # got above, same key
    assert git("status", "--porcelain", cwd=ds_a) == ""


@pytest.mark.slow
@needs_datalad
def test_round_trip_collaborator_uses_datalad(team, tmp_path):
    a, b, store = team
    ds_a = _a_creates_and_pushes_with_rr(a, tmp_path, store)

    ds_b = tmp_path / "b"
    b.datalad("clone", str(store), str(ds_b), cwd=tmp_path)
    b.datalad("get", "model.bin", cwd=ds_b)
    assert b"model size 10" in (ds_b / "model.bin").read_bytes()
    _bigger(ds_b)
    b.datalad("save", "-m", "Bigger model", "params.json", cwd=ds_b)
    b.datalad("rerun", "--branch", "bigger", "--onto", "HEAD", _run_commit(b, ds_b), cwd=ds_b)
    b.datalad("push", "--to", "origin", cwd=ds_b)

    a.rr("update", cwd=ds_a)  # all siblings: the only one
    _a_sees_gets_and_compares(a, ds_a)
    a.git("merge", "-q", "--no-edit", "origin/bigger", cwd=ds_a)
    assert _accuracy(ds_a, "HEAD") == 0.7 and a.rr("get", "model.bin", cwd=ds_a)
    assert b"model size 20" in (ds_a / "model.bin").read_bytes()


@pytest.mark.slow
@needs_datalad
def test_round_trip_author_uses_datalad(team, tmp_path):
    a, b, store = team
    ds_a = tmp_path / "a"
    a.datalad("create", "-c", "text2git", str(ds_a), cwd=tmp_path)
    _write_project(ds_a)
    a.datalad("save", "-m", "Add training code and parameters", cwd=ds_a)
    a.datalad("run", *RUN, cwd=ds_a)
    a.git("init", "-q", "--bare", str(store), cwd=tmp_path)
    subprocess.run(["git", "annex", "init", "-q"], cwd=store, check=True,
                   env={**os.environ, **a.env})
    a.datalad("siblings", "add", "-s", "origin", "--url", str(store), cwd=ds_a)
    a.datalad("push", "--to", "origin", cwd=ds_a)

    ds_b = tmp_path / "b"
    b.rr("clone", str(store), str(ds_b), cwd=tmp_path)
    b.rr("get", "model.bin", cwd=ds_b)
    _bigger(ds_b)
    b.rr("save", "-m", "Bigger model", cwd=ds_b)
    b.rr("rerun", "--branch", "bigger", "--onto", "HEAD", _run_commit(b, ds_b), cwd=ds_b)
    b.git("checkout", "-q", "master", cwd=ds_b)
    b.git("merge", "-q", "--ff-only", "bigger", cwd=ds_b)
    b.rr("push", "--to", "origin", cwd=ds_b)

    a.datalad("update", "-s", "origin", "--how", "merge", cwd=ds_a)
    assert _accuracy(ds_a, "HEAD") == 0.7
    assert "User B" in git("log", "-1", "--format=%an", cwd=ds_a)
    a.datalad("get", "model.bin", cwd=ds_a)
    assert b"model size 20" in (ds_a / "model.bin").read_bytes()
