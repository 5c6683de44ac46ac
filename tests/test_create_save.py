"""rr create and rr save against real git and git-annex."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.conftest import annex, commit_count, git, last_message, needs_datalad, rr


def test_create_makes_datalad_layout(tmp_path):
    target = tmp_path / "new"
    rr("create", str(target))
    assert (target / ".git").is_dir()
    dsid = git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=target).strip()
    uuid.UUID(dsid)  # a real UUID
    assert (target / ".gitattributes").read_text() == (
        "* annex.backend=MD5E\n**/.git* annex.largefiles=nothing\n")
    assert (target / ".datalad" / ".gitattributes").read_text() == (
        "config annex.largefiles=nothing\n")
    assert git("config", "annex.uuid", cwd=target).strip()
    assert git("log", "--format=%s", cwd=target).splitlines() == ["[DATALAD] new dataset"]
    assert git("status", "--porcelain", cwd=target) == ""
    tracked = set(git("ls-files", cwd=target).split())
    assert tracked == {".datalad/.gitattributes", ".datalad/config", ".gitattributes"}


def test_create_ids_differ(tmp_path):
    rr("create", str(tmp_path / "a"))
    rr("create", str(tmp_path / "b"))
    ids = {git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=tmp_path / n).strip()
           for n in "ab"}
    assert len(ids) == 2


def test_create_refuses_non_empty_without_force(tmp_path):
    target = tmp_path / "full"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    proc = rr("create", str(target), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("rr: error: directory is not empty")
    assert "Traceback" not in proc.stderr
    assert not (target / ".git").exists()
    rr("create", "--force", str(target))
    assert (target / "keep.txt").read_text() == "mine\n"
    assert git("status", "--porcelain", cwd=target) == "?? keep.txt\n"


def test_create_refuses_existing_dataset(ds):
    proc = rr("create", str(ds), check=False)
    assert proc.returncode == 1
    assert "already a dataset" in proc.stderr


@needs_datalad
def test_datalad_recognises_created_dataset(tmp_path):
    target = tmp_path / "dlcompat"
    rr("create", str(target))
    status = subprocess.run(["datalad", "-f", "json", "status"], cwd=target,
                            capture_output=True, text=True, check=True)
    states = {json.loads(line)["state"] for line in status.stdout.splitlines()}
    assert states <= {"clean"}
    subprocess.run(["datalad", "run", "-m", "via datalad", "echo hi > hi.txt"], cwd=target,
                   check=True, capture_output=True)
    assert "[DATALAD RUNCMD] via datalad" in last_message(target)
    assert (target / "hi.txt").read_text() == "hi\n"


def test_save_nothing_to_save_makes_no_commit(ds):
    before = commit_count(ds)
    proc = rr("save", "-m", "nothing", cwd=ds)
    assert "nothing to save" in proc.stderr
    assert commit_count(ds) == before


def test_save_annexes_large_and_keeps_configured_text_in_git(ds):
    with open(ds / ".gitattributes", "a") as fh:
        fh.write("*.md annex.largefiles=nothing\n")
    (ds / "notes.md").write_text("# notes\n")
    (ds / "blob.bin").write_bytes(os.urandom(4096))
    rr("save", "-m", "two files", cwd=ds)
    assert (ds / "blob.bin").is_symlink()
    assert ".git/annex/objects" in os.readlink(ds / "blob.bin")
    assert not (ds / "notes.md").is_symlink()
    assert git("show", "HEAD:notes.md", cwd=ds) == "# notes\n"
    assert last_message(ds).strip() == "two files"
    assert git("status", "--porcelain", cwd=ds) == ""


def test_save_only_given_paths(ds):
    (ds / "one.txt").write_text("1\n")
    (ds / "two.txt").write_text("2\n")
    rr("save", "-m", "only one", "one.txt", cwd=ds)
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["one.txt"]
    assert git("status", "--porcelain", cwd=ds) == "?? two.txt\n"


def test_save_records_deletions_and_modifications(ds):
    (ds / "f.txt").write_text("v1\n")
    (ds / "g.txt").write_text("g\n")
    rr("save", "-m", "v1", cwd=ds)
    (ds / "g.txt").unlink()
    annex("unlock", "f.txt", cwd=ds)
    (ds / "f.txt").write_text("v2\n")
    rr("save", "-m", "v2", cwd=ds)
    changed = git("show", "--name-status", "--format=", "HEAD", cwd=ds).split("\n")
    assert "D\tg.txt" in changed
    assert any(line.endswith("f.txt") for line in changed)
    assert (ds / "f.txt").read_text() == "v2\n"
    assert git("status", "--porcelain", cwd=ds) == ""


def test_save_version_tag(ds):
    (ds / "x.txt").write_text("x\n")
    rr("save", "-m", "tagged", "--version-tag", "v1.0", cwd=ds)
    assert git("rev-parse", "v1.0^{commit}", cwd=ds) == git("rev-parse", "HEAD", cwd=ds)
    (ds / "y.txt").write_text("y\n")
    proc = rr("save", "--version-tag", "v1.0", cwd=ds, check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert git("status", "--porcelain", cwd=ds) == "?? y.txt\n"  # nothing lost or committed


def test_save_missing_path_is_an_error(ds):
    proc = rr("save", "nope.txt", cwd=ds, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("rr: error: path does not exist")


def test_save_path_outside_dataset(ds, tmp_path):
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x")
    proc = rr("save", str(outside), cwd=ds, check=False)
    assert proc.returncode == 1
    assert "outside the dataset" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_not_in_a_dataset(tmp_path):
    for args in (["save"], ["run", "true"]):
        proc = rr(*args, cwd=tmp_path, check=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith("rr: error: not inside a dataset")
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sub", ["sub dir", "ünï"])
def test_save_unusual_names(ds, sub):
    (ds / sub).mkdir()
    (ds / sub / "file name.txt").write_text("content\n")
    rr("save", "-m", "odd names", cwd=ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    assert (ds / sub / "file name.txt").read_text() == "content\n"


def test_save_after_git_mv_of_an_annexed_file(ds_with_data):
    """DataLad's test_save: after `git mv` of an annexed file, save commits the move and the
    link points at the content again (rr: "pathspec 'data/a.txt' did not match any files";
    a move to another depth left a broken link)."""
    (ds_with_data / "deeper" / "still").mkdir(parents=True)
    git("mv", "data/a.txt", "deeper/still/a.txt", cwd=ds_with_data)
    rr("save", "-m", "moved", cwd=ds_with_data)
    assert git("status", "--porcelain", cwd=ds_with_data) == ""
    moved = ds_with_data / "deeper" / "still" / "a.txt"
    assert moved.is_symlink() and moved.read_text() == "alpha\n"
    assert git("show", "HEAD:deeper/still/a.txt", cwd=ds_with_data).startswith("../../.git/")
    git("mv", "data/b.txt", "b.txt", cwd=ds_with_data)  # same depth-change, upwards
    rr("save", "-m", "up", cwd=ds_with_data)
    assert (ds_with_data / "b.txt").read_text() == "beta\n"
    annex("fsck", "-q", cwd=ds_with_data)


def test_save_sees_a_subdatasets_new_commit_whatever_diff_ignoresubmodules_says(ds):
    """DataLad's test_save: diff.ignoreSubmodules=all must not hide a subdataset's new commit
    (rr staged it, then said "nothing to save" and left it staged)."""
    rr("create", "-d", ".", "sub", cwd=ds)
    git("config", "diff.ignoreSubmodules", "all", cwd=ds)
    (ds / "sub" / "f.txt").write_text("x\n")
    rr("save", "-m", "inside", cwd=ds / "sub")
    before = git("rev-parse", "HEAD", cwd=ds)
    rr("save", "-m", "the subdataset moved", cwd=ds)
    assert git("rev-parse", "HEAD", cwd=ds) != before
    assert git("rev-parse", "HEAD:sub", cwd=ds) == git("rev-parse", "HEAD", cwd=ds / "sub")
    assert git("status", "--porcelain", "--ignore-submodules=none", cwd=ds) == ""


def test_save_updated_and_to_git_and_status_untracked_modes(ds):
    """DataLad's save -u (only tracked paths) and --to-git (into git whatever the size), and
    status --untracked no|normal|all (test_save.py, test_status.py)."""
    (ds / "big.bin").write_bytes(b"x" * 5000)
    rr("save", "-m", "big", cwd=ds)
    rr("unlock", "big.bin", cwd=ds)
    (ds / "big.bin").write_bytes(b"y" * 5000)
    (ds / "new.txt").write_text("untracked\n")
    rr("save", "-u", "-m", "tracked only", cwd=ds)
    assert git("status", "--porcelain", cwd=ds).strip() == "?? new.txt"
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["big.bin"]
    (ds / "dir").mkdir()
    (ds / "dir" / "a").write_text("a\n")
    (ds / "dir" / "b").write_text("b\n")
    states = {m: [json.loads(x)["path"] for x in rr("status", "--untracked", m, "--json",
                                                      cwd=ds).stdout.splitlines()]
              for m in ("no", "normal", "all")}
    assert states == {"no": [], "normal": ["dir", "new.txt"],
                      "all": ["dir/a", "dir/b", "new.txt"]}
    diffs = {m: [json.loads(x)["path"] for x in rr("diff", "--untracked", m, "--json",
                                                     cwd=ds).stdout.splitlines()]
             for m in ("no", "normal", "all")}
    assert diffs == states
    assert rr("status", "--untracked", "no", cwd=ds).stdout.strip() == \
        "nothing to save (untracked files not looked at)"
    bad = rr("status", "--untracked", "some", cwd=ds, check=False)
    assert bad.returncode == 2 and "--untracked must be no, normal or all" in bad.stderr
    rr("save", "--to-git", "-m", "in git", "dir", cwd=ds)
    assert git("ls-files", "-s", "dir/a", cwd=ds).startswith("100644 ")  # a blob, no link
    assert git("cat-file", "-p", "HEAD:dir/a", cwd=ds) == "a\n"


def test_save_amend_as_datalad_and_keeps_a_run_record(ds):
    """DataLad's test_save.py::test_save_amend: --amend replaces the last commit (new
    message, or the old one with more changes), in this dataset only; nothing to amend is
    notneeded; -r does not go with it.  rr keeps a run commit's record (and its duration
    note) when the message is replaced."""
    rr("run", "-m", "first", "-o", "out.txt", "echo 1 > out.txt", cwd=ds)
    old = git("rev-parse", "HEAD", cwd=ds).strip()
    parent = git("rev-parse", "HEAD^", cwd=ds).strip()
    rr("save", "--amend", "-m", "better words", cwd=ds)
    new = git("rev-parse", "HEAD", cwd=ds).strip()
    assert new != old and git("rev-parse", "HEAD^", cwd=ds).strip() == parent
    msg = last_message(ds)
    assert msg.startswith("[DATALAD RUNCMD] better words\n\n=== Do not change lines below")
    assert '"cmd": "echo 1 > out.txt"' in msg
    assert git("notes", "--ref=rr", "show", "HEAD", cwd=ds).startswith('{"duration"')
    (ds / "more.txt").write_text("more\n")
    rr("save", "--amend", cwd=ds)
    assert last_message(ds) == msg  # the message stays
    assert "more.txt" in git("show", "--name-only", "--format=", "HEAD", cwd=ds).split()
    assert git("rev-parse", "HEAD^", cwd=ds).strip() == parent
    same = git("rev-parse", "HEAD", cwd=ds).strip()
    proc = rr("save", "--amend", cwd=ds)
    assert "nothing to amend" in proc.stderr and git("rev-parse", "HEAD", cwd=ds).strip() == same
    bad = rr("save", "--amend", "-r", cwd=ds, check=False)
    assert bad.returncode == 2 and "does not go with -r" in bad.stderr


def test_save_amend_leaves_subdatasets_alone(ds):
    rr("create", "-d", str(ds), str(ds / "sub"))
    (ds / "sub" / "f").write_text("in sub\n")
    sub_head = git("rev-parse", "HEAD", cwd=ds / "sub").strip()
    (ds / "top").write_text("top\n")
    rr("save", "--amend", cwd=ds)
    assert git("rev-parse", "HEAD", cwd=ds / "sub").strip() == sub_head
    assert "?? f" in git("status", "--porcelain", cwd=ds / "sub")
    assert "top" in git("show", "--name-only", "--format=", "HEAD", cwd=ds).split()
