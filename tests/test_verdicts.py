"""Verdicts that travel: rr rerun --verify notes each verified record's verdict in
refs/notes/rr-verify (one JSON line per verification), the only ref it moves; rr push, rr clone
and rr update carry those notes as they carry the duration notes (merged, never forced, none
lost); rr log shows the summary (issue 19, item 2)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from recorder.history import verification_summary

from .conftest import git, needs_datalad, rr
from .test_verify import NONDET, snapshot, verdict_notes

VERIFY_REF = "refs/notes/rr-verify"


def _run(ds: Path, name: str) -> str:
    rr("run", "-m", name, "-o", f"{name}.txt", f"echo {name} > {name}.txt", cwd=ds)
    return git("rev-parse", "HEAD", cwd=ds).strip()


def _other_home(tmp_path: Path) -> dict[str, str]:
    """A collaborator: a HOME of their own, with their own git identity."""
    home = tmp_path / "home-b"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = collaborator B\n\temail = b@example.invalid\n"
        "[init]\n\tdefaultBranch = master\n[annex]\n\tsecurehashesonly = false\n",
        encoding="utf-8")
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def _lines(repo: Path, commit: str) -> list[dict]:
    """The verdicts noted on ``commit`` in ``repo`` (a bare store or a clone)."""
    out = subprocess.run(["git", "notes", "--ref=rr-verify", "show", commit], cwd=repo,
                         capture_output=True, text=True)
    return [json.loads(x) for x in out.stdout.splitlines()] if out.returncode == 0 else []


def _log(ds: Path, rev: str = "HEAD") -> dict[str, dict]:
    rows = map(json.loads, rr("log", "--json", rev, cwd=ds).stdout.splitlines())
    return {r["message"]: r for r in rows}


def test_verify_notes_one_line_per_verified_record(ds):
    a = _run(ds, "a")
    rr("run", "-m", "nondet", "-o", "out.txt", NONDET, cwd=ds)
    nondet = git("rev-parse", "HEAD", cwd=ds).strip()
    (ds / "plain.txt").write_text("not a run\n")
    rr("save", "-m", "not a run commit", cwd=ds)
    durations = git("rev-parse", "refs/notes/rr", cwd=ds)
    before = snapshot(ds)
    assert rr("rerun", "--verify", "--since=HEAD~3", cwd=ds, check=False).returncode == 3
    assert snapshot(ds) == before  # every other ref, HEAD, index, worktree, files as they were
    assert git("rev-parse", "refs/notes/rr", cwd=ds) == durations
    notes = verdict_notes(ds)
    assert set(notes) == {a, nondet}  # one note per verified record, none on the save
    (la,) = notes[a]
    (ln,) = notes[nondet]
    assert la["verdict"] == "identical" and la["files"] == []
    assert ln["verdict"] == "differs"
    assert ln["files"] == [{"path": "out.txt", "status": "differs"}]
    for line in (la, ln):
        assert {"date", "host", "rr", "git_annex", "python"} <= set(line)
        assert line["date"].endswith("+00:00") and "image" not in line  # no container
    raw = git("notes", "--ref=rr-verify", "show", a, cwd=ds).strip()
    assert raw == json.dumps(la, sort_keys=True, separators=(",", ":"))  # compact, sorted
    # one notes commit for the whole verify
    assert git("rev-list", "--count", VERIFY_REF, cwd=ds).strip() == "1"

    # a second verify adds a line to each, in one more notes commit
    rr("rerun", "--verify", "--since=HEAD~3", cwd=ds, check=False)
    notes = verdict_notes(ds)
    assert [len(notes[a]), len(notes[nondet])] == [2, 2]
    assert git("rev-list", "--count", VERIFY_REF, cwd=ds).strip() == "2"

    # rr log: the summary per run commit, the list in --json
    rows = _log(ds)
    assert [v["verdict"] for v in rows["a"]["verifications"]] == ["identical", "identical"]
    assert rows["nondet"]["verifications"][-1]["files"][0]["path"] == "out.txt"
    text = rr("log", cwd=ds).stdout
    assert "    verification: verified identical ×2 (1 host)" in text
    assert "    verification: differs (1 file) ×2 (1 host)" in text
    assert isinstance(rows["a"]["duration"], float)  # the durations are still read

    # --no-notes: none written
    tip = git("rev-parse", VERIFY_REF, cwd=ds)
    rr("rerun", "--verify", "--no-notes", "--since=HEAD~3", cwd=ds, check=False)
    assert git("rev-parse", VERIFY_REF, cwd=ds) == tip


def test_no_notes_writes_none_and_skipped_records_get_none(ds):
    _run(ds, "a")
    before = git("for-each-ref", cwd=ds)
    assert rr("rerun", "--verify", "--no-notes", cwd=ds).returncode == 0
    assert git("for-each-ref", cwd=ds) == before
    assert rr("rerun", "--no-notes", cwd=ds, check=False).returncode == 2
    rr("create", "-d", ".", "sub", cwd=ds)
    rr("run", "-o", "sub/x.txt", "echo x > sub/x.txt", cwd=ds)
    # skipped: it changed a subdataset; nothing verified is exit 4
    assert rr("rerun", "--verify", cwd=ds, check=False).returncode == 4
    assert verdict_notes(ds) == {}
    assert "verification" not in rr("log", cwd=ds).stdout


def test_summary_words():
    one = {"date": "2026-01-01T00:00:00+00:00", "host": "h1", "verdict": "identical",
           "files": []}
    two = {**one, "date": "2026-01-02T00:00:00+00:00", "host": "h2"}
    assert verification_summary([]) is None
    assert verification_summary([one]) == "verified identical"
    assert verification_summary([one, two]) == "verified identical ×2 (2 hosts)"
    differs = {**two, "verdict": "differs", "files": [
        {"path": "x", "status": "differs"}, {"path": "y", "status": "ignored"}]}
    assert verification_summary([one, differs]) == "differs (1 file) ×2 (2 hosts)"
    assert verification_summary([{**one, "verdict": "failed"}]) == "failed to verify"


@pytest.mark.slow
def test_verdicts_travel_between_collaborators_without_loss(tmp_path):
    store = tmp_path / "store.git"
    ds_a, ds_b = tmp_path / "a", tmp_path / "b"
    env_b = _other_home(tmp_path)
    rr("create", str(ds_a), cwd=tmp_path)
    a1 = _run(ds_a, "a1")
    rr("rerun", "--verify", cwd=ds_a)
    rr("siblings", "add", "origin", str(store), cwd=ds_a)
    rr("push", "--to", "origin", cwd=ds_a)
    assert len(_lines(store, a1)) == 1  # the push carried them

    rr("clone", str(store), str(ds_b), cwd=tmp_path, env=env_b)
    assert len(_lines(ds_b, a1)) == 1  # the clone brought them
    assert "verified identical" in rr("log", cwd=ds_b, env=env_b).stdout

    # both verify the same record, each pushes: no force, both lines kept
    rr("rerun", "--verify", a1, cwd=ds_a)
    rr("rerun", "--verify", a1, cwd=ds_b, env=env_b)
    rr("push", "--to", "origin", cwd=ds_a)
    out = rr("push", "--to", "origin", cwd=ds_b, env=env_b)
    assert "error" not in out.stdout + out.stderr
    assert len(_lines(store, a1)) == 3
    assert len(_lines(ds_b, a1)) == 3
    # the duration notes still travel beside them
    assert git("notes", "--ref=rr", "show", a1, cwd=store).strip().startswith('{"duration"')
    # the side refs stay home
    assert not git("for-each-ref", "refs/notes/rr-verify-remotes", cwd=store).strip()

    # A brings B's verdict in with rr update (fetched beside, merged)
    assert len(_lines(ds_a, a1)) == 2
    rr("update", "-s", "origin", cwd=ds_a)
    assert len(_lines(ds_a, a1)) == 3
    assert "verified identical ×3 (1 host)" in rr("log", cwd=ds_a).stdout
    # and B verifies a new record of A's after updating: A's update brings that too
    a2 = _run(ds_a, "a2")
    rr("push", "--to", "origin", cwd=ds_a)
    rr("update", "-s", "origin", "--how", "merge", cwd=ds_b, env=env_b)
    rr("rerun", "--verify", a2, cwd=ds_b, env=env_b)
    rr("push", "--to", "origin", cwd=ds_b, env=env_b)
    rr("update", "-s", "origin", cwd=ds_a)
    assert len(_lines(ds_a, a2)) == 1 and len(_lines(ds_a, a1)) == 3


@needs_datalad
@pytest.mark.slow
def test_datalad_ignores_the_verdict_notes(tmp_path):
    """DataLad clones, pushes and reruns a dataset with verdict notes as any other."""
    ds = tmp_path / "ds"
    rr("create", str(ds), cwd=tmp_path)
    _run(ds, "a1")
    rr("rerun", "--verify", cwd=ds)
    store = tmp_path / "store.git"
    rr("siblings", "add", "origin", str(store), cwd=ds)
    rr("push", "--to", "origin", cwd=ds)
    env = {**os.environ}

    def datalad(*args: str, cwd: Path) -> None:
        subprocess.run(["datalad", *args], cwd=cwd, check=True, capture_output=True, env=env)

    datalad("clone", str(store), str(tmp_path / "dl"), cwd=tmp_path)
    dl = tmp_path / "dl"
    datalad("rerun", cwd=dl)
    assert (dl / "a1.txt").read_text() == "a1\n"
    datalad("push", "--to", "origin", cwd=dl)
    # DataLad did not touch them: the store's verdict notes are rr's
    assert git("rev-parse", VERIFY_REF, cwd=store) == git("rev-parse", VERIFY_REF, cwd=ds)
    # and rr in DataLad's clone brings them in with an update
    rr("update", "-s", "origin", cwd=dl)
    assert "verified identical" in rr("log", cwd=dl).stdout
