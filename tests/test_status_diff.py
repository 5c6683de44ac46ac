"""rr status and rr diff: states per path as DataLad reports them, annexed files compared by
key, presence and sizes, damaged content, subdatasets, errors.  Real git, git-annex, DataLad."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import annex, git, needs_datalad, rr


def records(*args: str, cwd: Path) -> list[dict]:
    out = rr(*args, "--json", cwd=cwd, check=False)
    assert "Traceback" not in out.stderr, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def states(*args: str, cwd: Path) -> dict[str, str]:
    return {r["path"]: r["state"] for r in records(*args, cwd=cwd)}


def make_dirty(ds: Path) -> None:
    """One path in each state: untracked file and directory, added, modified, deleted."""
    (ds / "new.txt").write_text("new\n")
    (ds / "newdir").mkdir()
    (ds / "newdir" / "f").write_text("f\n")
    (ds / "staged.txt").write_text("staged\n")
    git("add", "staged.txt", cwd=ds)
    (ds / "code" / "count.sh").unlink()  # annexed: replace the link, never write through it
    (ds / "code" / "count.sh").write_text("#!/bin/sh\nwc -w \"$@\"\n")
    (ds / "data" / "b.txt").unlink()


# --- status ------------------------------------------------------------------------------------


def test_status_reports_each_state_and_type(ds_with_data):
    make_dirty(ds_with_data)
    recs = {r["path"]: r for r in records("status", cwd=ds_with_data)}
    assert {p: (r["state"], r["type"]) for p, r in recs.items()} == {
        "new.txt": ("untracked", "file"),
        "newdir": ("untracked", "directory"),
        "staged.txt": ("added", "file"),
        "code/count.sh": ("modified", "file"),
        "data/b.txt": ("deleted", "symlink"),
    }
    text = rr("status", cwd=ds_with_data).stdout
    assert "  deleted: data/b.txt (symlink)" in text.splitlines()
    assert "nothing to save" not in text


def test_clean_dataset_says_so_once_and_exits_zero(ds_with_data):
    out = rr("status", cwd=ds_with_data)
    assert out.stdout == "nothing to save, working tree clean\n"
    assert rr("status", "--json", cwd=ds_with_data).stdout == ""


def test_status_of_paths_relative_to_the_working_directory(ds_with_data):
    make_dirty(ds_with_data)
    # paths given from a subdirectory; records are relative to the dataset root
    assert states("status", "b.txt", cwd=ds_with_data / "data") == {"data/b.txt": "deleted"}
    assert states("status", "-d", str(ds_with_data), str(ds_with_data / "newdir"),
                  cwd=ds_with_data.parent) == {"newdir": "untracked"}


def test_subdataset_modified_and_recursive(ds_with_data):
    rr("create", "-d", ".", "sub", cwd=ds_with_data)
    assert rr("status", cwd=ds_with_data).stdout.startswith("nothing to save")
    (ds_with_data / "sub" / "inside.txt").write_text("inside\n")
    # an untracked file inside makes the subdataset modified, as DataLad shows it
    assert states("status", cwd=ds_with_data) == {"sub": "modified"}
    assert records("status", cwd=ds_with_data)[0]["type"] == "dataset"
    assert states("status", "-r", cwd=ds_with_data) == {"sub": "modified",
                                                        "sub/inside.txt": "untracked"}
    # a path inside an installed subdataset is looked up there
    assert states("status", "sub/inside.txt", cwd=ds_with_data) == {
        "sub/inside.txt": "untracked"}
    out = rr("status", "sub/nope", cwd=ds_with_data, check=False)
    assert (out.returncode, out.stderr) == (1, "rr: impossible: sub/nope: path does not exist\n")
    # new commits in the subdataset: modified in the superdataset, clean inside
    rr("save", "-m", "inside", cwd=ds_with_data / "sub")
    assert states("status", "-r", cwd=ds_with_data) == {"sub": "modified"}


def test_annex_presence_sizes_and_total(ds_with_data, tmp_path):
    (ds_with_data / "data" / "big.bin").write_bytes(b"x" * 1500)
    rr("save", "-m", "big", cwd=ds_with_data)
    clone = tmp_path / "clone"
    rr("clone", str(ds_with_data), str(clone), cwd=tmp_path)
    rr("get", "data/a.txt", cwd=clone)
    recs = {r["path"]: r for r in records("status", "--annex", cwd=clone)}
    assert {p: (r["state"], r["has_content"], r["bytesize"]) for p, r in recs.items()} == {
        "data/a.txt": ("clean", True, 6),
        "data/b.txt": ("clean", False, 5),
        "data/big.bin": ("clean", False, 1500),
        "code/count.sh": ("clean", False, 21),
    }
    assert recs["data/a.txt"]["key"].startswith("MD5E-s6--")
    lines = rr("status", "--annex", cwd=clone).stdout.splitlines()
    assert "    clean: data/big.bin (file) [absent, 1.5 kB]" in lines  # DataLad: file
    assert "    clean: data/a.txt (file) [present, 6 B]" in lines
    assert lines[-2:] == ["nothing to save, working tree clean",
                          "1 of 4 annexed files present, 6 B of 1.53 kB"]
    # an unlocked file: presence comes from the object store, not the link
    rr("get", "data/b.txt", cwd=clone)
    rr("unlock", "data/b.txt", cwd=clone)
    rec = {r["path"]: r for r in records("status", "--annex", cwd=clone)}["data/b.txt"]
    assert (rec["state"], rec["type"], rec["has_content"]) == ("modified", "file", True)
    assert rr("status", "--annex", cwd=clone).stdout.splitlines()[-1].startswith("2 of 4 ")


def test_content_changed_through_its_link_is_shown_damaged(ds_with_data):
    link = ds_with_data / "data" / "a.txt"
    obj = link.resolve()
    os.chmod(obj, 0o644)
    obj.write_text("ALPHA\n")  # same size, other content: only a checksum tells
    later = time.time() + 5
    os.utime(obj, (later, later))
    recs = records("status", cwd=ds_with_data)
    assert [(r["path"], r["state"]) for r in recs] == [("data/a.txt", "damaged")]
    assert "git annex fsck" in recs[0]["message"]
    out = rr("status", cwd=ds_with_data)
    assert out.stdout.startswith("  damaged: data/a.txt (symlink) [")
    assert "nothing to save" not in out.stdout
    # git sees nothing: the link is unchanged
    assert git("status", "--porcelain", cwd=ds_with_data) == ""


def test_status_errors(ds_with_data, tmp_path):
    out = rr("status", str(tmp_path), cwd=ds_with_data, check=False)
    assert out.returncode == 1
    assert out.stderr.startswith("rr: error: path is outside the dataset")
    assert len(out.stderr.splitlines()) == 1
    out = rr("status", "nope.txt", "code", cwd=ds_with_data, check=False)
    assert (out.returncode, out.stderr) == (1, "rr: impossible: nope.txt: path does not "
                                               "exist\n")
    (tmp_path / "plain").mkdir()
    out = rr("status", cwd=tmp_path / "plain", check=False)
    assert out.returncode == 1 and out.stderr.startswith("rr: error: not inside a dataset")
    # a tracked file deleted from disk is known, not unknown
    (ds_with_data / "code" / "count.sh").unlink()
    assert states("status", "code/count.sh", cwd=ds_with_data) == {"code/count.sh": "deleted"}


# --- diff --------------------------------------------------------------------------------------


def test_diff_compares_annexed_files_by_key(ds_with_data):
    rr("unlock", "data/a.txt", cwd=ds_with_data)
    assert not (ds_with_data / "data" / "a.txt").is_symlink()
    assert git("status", "--porcelain", cwd=ds_with_data) != ""  # git sees a typechange
    assert rr("diff", cwd=ds_with_data).stdout == ""  # the same key: no change
    # touched only: still the same content
    os.utime(ds_with_data / "data" / "a.txt", (time.time() + 3, time.time() + 3))
    assert rr("diff", cwd=ds_with_data).stdout == ""
    (ds_with_data / "data" / "a.txt").write_text("ALPHA\n")
    [rec] = records("diff", cwd=ds_with_data)
    assert (rec["path"], rec["state"], rec["type"]) == ("data/a.txt", "modified", "file")
    assert rec["prev_key"].startswith("MD5E-s6--") and rec["key"] is None
    # diff never takes the changed content into the annex to compare it
    objects = list((ds_with_data / ".git" / "annex" / "objects").rglob("*.txt"))
    rr("diff", cwd=ds_with_data)
    assert list((ds_with_data / ".git" / "annex" / "objects").rglob("*.txt")) == objects


def test_diff_between_revisions(ds_with_data):
    first = git("rev-parse", "HEAD", cwd=ds_with_data).strip()
    rr("unlock", "data/a.txt", cwd=ds_with_data)
    (ds_with_data / "data" / "a.txt").write_text("ALPHA!\n")
    (ds_with_data / "data" / "b.txt").unlink()
    (ds_with_data / "notes.txt").write_text("n\n")
    rr("save", "-m", "change", cwd=ds_with_data)
    recs = {r["path"]: r for r in records("diff", "--from", first, "--to", "HEAD",
                                          cwd=ds_with_data)}
    assert {p: r["state"] for p, r in recs.items()} == {
        "data/a.txt": "modified", "data/b.txt": "deleted", "notes.txt": "added"}
    a = recs["data/a.txt"]
    assert a["prev_key"].startswith("MD5E-s6--") and a["key"].startswith("MD5E-s7--")
    assert a["type"] == "symlink"
    assert recs["data/b.txt"]["key"] is None and recs["data/b.txt"]["prev_key"]
    # limited to a path; the working tree is clean against HEAD
    assert states("diff", "-f", first, "-t", "HEAD", "notes.txt", cwd=ds_with_data) == {
        "notes.txt": "added"}
    assert rr("diff", cwd=ds_with_data).stdout == ""
    # a commit that only unlocks a file (a pointer file instead of a symlink) changes nothing
    annex("unlock", "notes.txt", cwd=ds_with_data)  # in git, not annexed: nothing to unlock
    annex("unlock", "data/a.txt", cwd=ds_with_data)
    git("commit", "-q", "-m", "unlocked", cwd=ds_with_data)
    assert git("diff", "--stat", "HEAD~1", "HEAD", cwd=ds_with_data) != ""
    assert rr("diff", "-f", "HEAD~1", "-t", "HEAD", cwd=ds_with_data).stdout == ""


def test_diff_recursive_into_subdatasets(ds_with_data):
    rr("create", "-d", ".", "sub", cwd=ds_with_data)
    base = git("rev-parse", "HEAD", cwd=ds_with_data).strip()
    (ds_with_data / "sub" / "x.dat").write_text("x\n")
    rr("save", "-m", "x in sub", cwd=ds_with_data)
    assert states("diff", "-f", base, "-t", "HEAD", cwd=ds_with_data) == {"sub": "modified"}
    assert states("diff", "-f", base, "-t", "HEAD", "-r", cwd=ds_with_data) == {
        "sub": "modified", "sub/x.dat": "added"}
    # the working tree: an untracked file inside, shown with -r
    (ds_with_data / "sub" / "y.dat").write_text("y\n")
    assert states("diff", "-r", cwd=ds_with_data) == {"sub": "modified",
                                                      "sub/y.dat": "untracked"}
    assert states("diff", "sub/y.dat", cwd=ds_with_data) == {"sub/y.dat": "untracked"}


def test_diff_errors(ds_with_data, tmp_path):
    for args in (["--from", "nosuch"], ["--to", "nosuch"], ["-f", "--upload-pack=x"]):
        out = rr("diff", *args, cwd=ds_with_data, check=False)
        assert out.returncode == 1, args
        assert out.stderr.splitlines()[0].startswith("rr: error: "), out.stderr
        assert "Traceback" not in out.stderr
    out = rr("diff", "--from", "nosuch", cwd=ds_with_data, check=False)
    assert out.stderr.startswith("rr: error: unknown revision: nosuch\n")
    out = rr("diff", str(tmp_path), cwd=ds_with_data, check=False)
    assert out.returncode == 1 and out.stderr.startswith("rr: error: path is outside")
    out = rr("diff", "nope", cwd=ds_with_data, check=False)
    assert (out.returncode, out.stderr) == (1, "rr: impossible: nope: path does not exist\n")
    out = rr("diff", cwd=tmp_path, check=False)
    assert out.returncode == 1 and out.stderr.startswith("rr: error: not inside a dataset")


# --- DataLad agrees ----------------------------------------------------------------------------


def datalad_states(*args: str, cwd: Path) -> dict[str, str]:
    out = subprocess.run(["datalad", "-f", "json", *args], cwd=cwd, capture_output=True,
                         text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        rec = json.loads(line)
        if rec.get("state") != "clean":
            result[os.path.relpath(rec["path"], cwd)] = rec["state"]
    return result


@pytest.mark.slow
@needs_datalad
def test_datalad_status_and_diff_agree(ds_with_data):
    rr("create", "-d", ".", "sub", cwd=ds_with_data)
    base = git("rev-parse", "HEAD", cwd=ds_with_data).strip()
    (ds_with_data / "sub" / "s.dat").write_text("s\n")
    (ds_with_data / "data" / "c.txt").write_text("gamma\n")
    rr("save", "-m", "more", cwd=ds_with_data)
    make_dirty(ds_with_data)
    (ds_with_data / "sub" / "t.dat").write_text("t\n")
    for args in (["status"], ["status", "-r"], ["diff"], ["diff", "-r"],
                 ["diff", "-f", base, "-t", "HEAD"], ["diff", "-f", base, "-t", "HEAD", "-r"]):
        expected = datalad_states(*args, cwd=ds_with_data)
        assert states(*args, cwd=ds_with_data) == expected, args
    assert len(states("status", "-r", cwd=ds_with_data)) == 7


def test_paths_through_symlinks(ds_with_data, tmp_path):
    """DataLad's test_status: an absolute path that reaches the dataset through a symlink
    outside it is the path there (rr said "outside the dataset"); a path through a symlinked
    directory inside the dataset is an error (rr exited 0 and showed nothing)."""
    link = tmp_path / "link"
    link.symlink_to(ds_with_data)
    (ds_with_data / "new.txt").write_text("new\n")
    for cmd in (["status"], ["status", "--json"]):
        via_link = rr(*cmd, str(link / "new.txt"), cwd=ds_with_data).stdout
        assert via_link == rr(*cmd, "new.txt", cwd=ds_with_data).stdout
        assert "new.txt" in via_link
    assert rr("diff", str(link / "data" / "a.txt"), cwd=ds_with_data).returncode == 0
    rr("save", "-d", str(link), "-m", "through the link", str(link / "new.txt"),
       cwd=ds_with_data)
    assert git("status", "--porcelain", cwd=ds_with_data) == ""
    (ds_with_data / "alias").symlink_to("data")
    for cmd in ("status", "diff"):
        proc = rr(cmd, "alias/a.txt", cwd=ds_with_data, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.splitlines() == ["rr: error: path is beyond a symbolic link: "
                                            "alias/a.txt (its directory is data)"]


def test_diff_from_the_empty_tree_shows_everything_added(ds_with_data):
    """DataLad's test_diff: git's empty tree as --from (rr: "unknown revision")."""
    empty = git("hash-object", "-t", "tree", "/dev/null", cwd=ds_with_data).strip()
    records = [json.loads(line) for line in
               rr("diff", "--from", empty, "--to", "HEAD", "--json", cwd=ds_with_data)
               .stdout.splitlines()]
    tracked = set(git("ls-files", cwd=ds_with_data).split())
    assert {r["path"] for r in records} == tracked
    assert {r["state"] for r in records} == {"added"}


def test_status_annex_modes_and_clean_paths_named_as_datalad(tmp_path):
    """DataLad's test_status.py: --annex takes basic/availability/all (bare: basic);
    annexed files are type 'file' with key, backend, keyname, bytesize, humansize (and
    objloc with availability/all); a path asked for by name that did not change is
    reported clean, with its own type (a symlink in git stays a symlink)."""
    ds = tmp_path / "ds"
    rr("create", str(ds))
    (ds / "a.bin").write_text("x\n")
    (ds / "l").symlink_to("a.bin")
    rr("save", cwd=ds)
    basic = [json.loads(x) for x in rr("status", "--annex", "--json", "a.bin", cwd=ds)
             .stdout.splitlines()]
    assert len(basic) == 1 and basic[0]["type"] == "file" and basic[0]["backend"] == "MD5E"
    assert basic[0]["keyname"] == basic[0]["key"].split("--", 1)[1]
    assert basic[0]["bytesize"] == 2 and basic[0]["humansize"] == "2 B"
    assert "objloc" not in basic[0]
    full = json.loads(rr("status", "--annex", "all", "--json", "a.bin", cwd=ds).stdout)
    assert Path(full["objloc"]).read_text() == "x\n"
    assert full["objloc"].startswith(str(ds / ".git" / "annex" / "objects"))
    plain = [json.loads(x) for x in rr("status", "--json", "a.bin", "l", cwd=ds)
             .stdout.splitlines()]
    assert [(r["path"], r["state"], r["type"]) for r in plain] == \
        [("a.bin", "clean", "symlink"), ("l", "clean", "symlink")]
    proc = rr("status", "--annex=everything", cwd=ds, check=False)
    assert proc.returncode == 2 and "--annex must be basic, availability or all" in proc.stderr
