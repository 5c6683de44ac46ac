"""rr unlock: annexed files made editable as DataLad does; rr save takes them back into the
annex (locked again, as datalad save); the object store is never written through."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .conftest import annex, git, last_message, needs_datalad, rr


def test_unlock_edit_save_goes_back_into_the_annex(ds_with_data):
    link = ds_with_data / "data" / "a.txt"
    old_key = os.path.basename(os.readlink(link))
    out = rr("unlock", "data/a.txt", cwd=ds_with_data)
    assert out.stdout == "unlock(ok): data/a.txt (file)\n"
    assert not link.is_symlink() and os.access(link, os.W_OK)
    link.write_text("ALPHA, edited\n")
    # the unlocked file is a copy: the object of the recorded content is intact
    annex("fsck", "--quiet", cwd=ds_with_data)
    rr("save", "-m", "edit a", cwd=ds_with_data)
    assert last_message(ds_with_data).strip() == "edit a"
    assert git("status", "--porcelain", cwd=ds_with_data) == ""
    # locked again and annexed (a symlink in the commit, not the text in git)
    assert link.is_symlink()
    mode, _sha, _stage = git("ls-files", "-s", "data/a.txt", cwd=ds_with_data).split("\t")[0] \
        .split()
    assert mode == "120000"
    new_key = os.path.basename(os.readlink(link))
    assert new_key != old_key and new_key.startswith("MD5E-s14--")
    assert link.read_text() == "ALPHA, edited\n"
    assert git("show", "HEAD~1:data/a.txt", cwd=ds_with_data).endswith(old_key)
    annex("fsck", "--quiet", "--all", cwd=ds_with_data)  # both versions intact


def test_unlock_unchanged_then_save_changes_nothing(ds_with_data):
    before = git("rev-parse", "HEAD", cwd=ds_with_data)
    rr("unlock", "data", cwd=ds_with_data)  # a directory: each annexed file under it
    assert not (ds_with_data / "data" / "b.txt").is_symlink()
    out = rr("unlock", "data/a.txt", cwd=ds_with_data)
    assert out.stdout == "unlock(notneeded): data/a.txt (file) [already unlocked]\n"
    rr("save", cwd=ds_with_data)
    assert git("rev-parse", "HEAD", cwd=ds_with_data) == before
    assert (ds_with_data / "data" / "a.txt").is_symlink()
    assert git("status", "--porcelain", cwd=ds_with_data) == ""


def test_unlock_absent_content_is_impossible(ds_with_data):
    annex("drop", "--force", "data/b.txt", cwd=ds_with_data)
    out = rr("unlock", "data/b.txt", "data/a.txt", cwd=ds_with_data, check=False)
    assert out.returncode == 1
    assert out.stderr == ("rr: impossible: data/b.txt: no content present; cannot unlock "
                          "(rr get it first)\n")
    assert out.stdout == "unlock(ok): data/a.txt (file)\n"
    assert (ds_with_data / "data" / "b.txt").is_symlink()
    recs = [json.loads(line) for line in
            rr("unlock", "--json", "data/b.txt", cwd=ds_with_data, check=False).stdout
            .splitlines()]
    assert recs == [{"action": "unlock", "path": "data/b.txt", "status": "impossible",
                     "type": "file", "message": "no content present; cannot unlock "
                                                "(rr get it first)"}]
    # a directory passes over files whose content is absent (as datalad unlock)
    out = rr("unlock", "data", cwd=ds_with_data)
    assert out.returncode == 0 and out.stderr == ""


def test_unlock_errors(ds_with_data, tmp_path):
    out = rr("unlock", ".datalad/config", cwd=ds_with_data)
    assert out.stdout == "unlock(notneeded): .datalad/config (file) [non-annex file; cannot " \
                         "unlock]\n"
    out = rr("unlock", "nope", cwd=ds_with_data, check=False)
    assert (out.returncode, out.stderr) == (1, "rr: impossible: nope: path does not exist\n")
    # an untracked file is not the dataset's: impossible, as datalad unlock says (was notneeded)
    (ds_with_data / "new.txt").write_text("mine\n")
    out = rr("unlock", "new.txt", cwd=ds_with_data, check=False)
    assert (out.returncode, out.stderr) == (
        1, "rr: impossible: new.txt: untracked; cannot unlock (rr save it first)\n")
    (ds_with_data / "new.txt").unlink()
    out = rr("unlock", str(tmp_path), cwd=ds_with_data, check=False)
    assert out.returncode == 1 and out.stderr.startswith("rr: error: path is outside the "
                                                          "dataset")
    assert len(out.stderr.splitlines()) == 1
    (tmp_path / "plain").mkdir()
    out = rr("unlock", "x", cwd=tmp_path / "plain", check=False)
    assert out.returncode == 1 and out.stderr.startswith("rr: error: not inside a dataset")
    assert git("status", "--porcelain", cwd=ds_with_data) == ""


def test_unlock_inside_a_subdataset(ds_with_data):
    rr("create", "-d", ".", "sub", cwd=ds_with_data)
    (ds_with_data / "sub" / "s.dat").write_text("s\n")
    rr("save", "-m", "s", cwd=ds_with_data)
    out = rr("unlock", "sub/s.dat", cwd=ds_with_data)
    assert out.stdout == "unlock(ok): sub/s.dat (file)\n"
    assert not (ds_with_data / "sub" / "s.dat").is_symlink()
    (ds_with_data / "sub" / "s.dat").write_text("s2\n")
    rr("save", "-m", "s2", cwd=ds_with_data)
    assert (ds_with_data / "sub" / "s.dat").is_symlink()
    assert git("status", "--porcelain", cwd=ds_with_data) == ""


@needs_datalad
def test_datalad_sees_rr_unlock_as_its_own(ds_with_data):
    rr("unlock", "data/a.txt", cwd=ds_with_data)
    # the same index state as datalad unlock: DataLad reports the file modified, type file
    out = subprocess.run(["datalad", "-f", "json", "status", "data/a.txt"], cwd=ds_with_data,
                         capture_output=True, text=True, check=True).stdout
    rec = json.loads(out.splitlines()[0])
    assert (rec["state"], rec["type"]) == ("modified", "file")
    subprocess.run(["datalad", "save", "-m", "by datalad"], cwd=ds_with_data,
                   capture_output=True, check=True)
    assert (ds_with_data / "data" / "a.txt").is_symlink()
    assert git("status", "--porcelain", cwd=ds_with_data) == ""


@pytest.mark.parametrize("staged", [False, True])
def test_drop_of_modified_content_is_refused_and_drops_nothing(ds_with_data, tmp_path, staged):
    """As datalad drop: "cannot drop modified content, save first" (impossible).  rr used to
    report success, dropping the saved version's content and nothing of the change."""
    store = tmp_path / "store.git"
    rr("siblings", "add", "store", str(store), cwd=ds_with_data)
    rr("push", "--to", "store", cwd=ds_with_data)  # another copy: drop would be allowed
    rr("unlock", "data/a.txt", cwd=ds_with_data)
    (ds_with_data / "data" / "a.txt").write_text("alpha, changed\n")
    if staged:
        git("add", "data/a.txt", cwd=ds_with_data)
    before = annex("find", "--in", "here", cwd=ds_with_data)
    for args in (["data/a.txt"], ["data"], ["--force", "data/a.txt"]):
        proc = rr("drop", *args, cwd=ds_with_data, check=False)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.splitlines()[0] == (
            "rr: error: cannot drop modified content, save first: data/a.txt; nothing was "
            "dropped")
    assert annex("find", "--in", "here", cwd=ds_with_data) == before
    assert (ds_with_data / "data" / "a.txt").read_text() == "alpha, changed\n"
    rr("unlock", "data/b.txt", cwd=ds_with_data)  # unlocked, unchanged: still drops
    assert "dropped 1 file(s)" in rr("drop", "data/b.txt", cwd=ds_with_data).stderr
