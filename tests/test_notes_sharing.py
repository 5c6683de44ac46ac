"""Run notes (each run's duration, in refs/notes/rr) travel between collaborators without
loss: rr push never forces them over the store's, it merges the store's notes first; rr clone
and rr update bring them in (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, rr

NOTES = "refs/notes/rr"


def _run(ds: Path, name: str) -> str:
    rr("run", "-m", name, "-o", f"{name}.txt", f"echo {name} > {name}.txt", cwd=ds)
    return git("rev-parse", "HEAD", cwd=ds).strip()


def _noted(repo: Path) -> set[str]:
    """The commits that have a note in rr's notes ref of ``repo`` (a bare store or a clone)."""
    out = git("notes", "--ref=rr", "list", cwd=repo)
    return {line.split()[1] for line in out.splitlines()}


def _durations(ds: Path, rev: str) -> dict[str, float | None]:
    rows = map(json.loads, rr("log", "--json", rev, cwd=ds).stdout.splitlines())
    return {r["message"]: r["duration"] for r in rows}


@pytest.mark.slow
def test_two_collaborators_keep_each_others_run_notes(tmp_path):
    store = tmp_path / "store.git"
    ds_a, ds_b = tmp_path / "a", tmp_path / "b"
    rr("create", str(ds_a), cwd=tmp_path)
    a1 = _run(ds_a, "a1")
    rr("siblings", "add", "origin", str(store), cwd=ds_a)
    rr("push", "--to", "origin", cwd=ds_a)

    rr("clone", str(store), str(ds_b), cwd=tmp_path)
    assert isinstance(_durations(ds_b, "HEAD")["a1"], float)  # the clone brought the notes

    # both go on: A on master, B on a branch of its own; each notes its own run
    a2 = _run(ds_a, "a2")
    rr("push", "--to", "origin", cwd=ds_a)
    git("checkout", "-q", "-b", "mine", cwd=ds_b)
    b1 = _run(ds_b, "b1")
    assert a2 not in _noted(ds_b)
    out = rr("push", "--to", "origin", cwd=ds_b).stdout
    assert "rr: error" not in out
    # B's push merged the store's notes (A's a2) with its own instead of overwriting them
    assert {a1, a2, b1} <= _noted(store)
    assert {a1, a2, b1} <= _noted(ds_b)
    # the side refs stay home
    assert not git("for-each-ref", "refs/notes/rr-remotes", cwd=store).strip()

    # A brings B's work in: B's duration is shown next to A's own
    assert b1 not in _noted(ds_a)
    rr("update", "-s", "origin", cwd=ds_a)
    assert {a1, a2, b1} <= _noted(ds_a)
    assert all(isinstance(d, float) for d in _durations(ds_a, "origin/mine").values())
    assert set(_durations(ds_a, "origin/mine")) == {"a1", "b1"}
    assert isinstance(_durations(ds_a, "HEAD")["a2"], float)
    # A's next push is a fast-forward of the notes: nothing to merge, nothing lost
    a3 = _run(ds_a, "a3")
    rr("push", "--to", "origin", cwd=ds_a)
    assert {a1, a2, a3, b1} <= _noted(store)


@pytest.mark.slow
def test_same_commit_noted_on_both_sides_keeps_both_lines(tmp_path):
    """Two notes on one commit (a rerun of it noted twice, or a note added by hand on one
    side): the union keeps both, and rr log still reads the duration."""
    store = tmp_path / "store.git"
    ds_a, ds_b = tmp_path / "a", tmp_path / "b"
    rr("create", str(ds_a), cwd=tmp_path)
    a1 = _run(ds_a, "a1")
    rr("siblings", "add", "origin", str(store), cwd=ds_a)
    rr("push", "--to", "origin", cwd=ds_a)
    rr("clone", str(store), str(ds_b), cwd=tmp_path)
    git("notes", "--ref=rr", "append", "-m", "reviewed by A", a1, cwd=ds_a)
    git("notes", "--ref=rr", "append", "-m", "reviewed by B", a1, cwd=ds_b)
    rr("push", "--to", "origin", cwd=ds_a)
    rr("push", "--to", "origin", cwd=ds_b)
    note = git("notes", "--ref=rr", "show", a1, cwd=store)
    assert "reviewed by A" in note and "reviewed by B" in note and '"duration"' in note
    rr("update", cwd=ds_a)
    assert "reviewed by B" in git("notes", "--ref=rr", "show", a1, cwd=ds_a)
    assert isinstance(_durations(ds_a, "HEAD")["a1"], float)


def test_update_from_a_sibling_without_notes(tmp_path, ds):
    """A store that never got rr's notes (filled by git or DataLad): update goes on."""
    store = tmp_path / "plain.git"
    git("init", "-q", "--bare", str(store), cwd=tmp_path)
    rr("siblings", "add", "plain", str(store), cwd=ds)
    git("push", "-q", "plain", "HEAD:refs/heads/master", cwd=ds)
    out = rr("update", "--json", cwd=ds).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in rows] == ["ok"]
    assert not git("for-each-ref", "refs/notes/", cwd=ds).strip()
