"""Commands that make commits of their own: run-merges as DataLad >= 1.6 records them
(spec §1.7, §2 rule 27, §3 rule 22), compared with DataLad itself where it matters."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from recorder import record as records
from tests.conftest import git, last_message, needs_datalad, rr

INNER = "echo x > a && git add a && git commit -q -m inner; echo y > b"
REMAINING = "Remaining changes after command execution"


def sha(ds, rev="HEAD") -> str:
    return git("rev-parse", rev, cwd=ds).strip()


def parents(ds, rev="HEAD") -> list[str]:
    return git("rev-list", "--parents", "-1", rev, cwd=ds).split()[1:]


def shape(ds, rev="HEAD", n=8) -> str:
    """The commit graph with subjects, and the tree's files: what must match DataLad."""
    graph = git("log", "--graph", f"-{n}", "--format=%s", rev, cwd=ds)
    files = git("ls-tree", "-r", "--name-only", rev, cwd=ds)
    return graph + "--\n" + files


def datalad(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["datalad", *args], cwd=cwd, capture_output=True, text=True)


def _no_dsid(text: str) -> str:
    return re.sub(r'"dsid": "[^"]*"', '"dsid": X', text)


@pytest.fixture
def dl(tmp_path) -> Path:
    path = tmp_path / "dl"
    assert datalad("create", str(path), cwd=tmp_path).returncode == 0
    return path


def test_command_commit_is_recorded_as_run_merge(ds):
    before = sha(ds)
    rr("run", INNER, cwd=ds)
    p1, p2 = parents(ds)
    assert p1 == before
    assert git("log", "-1", "--format=%s", p2, cwd=ds).strip() == REMAINING
    assert parents(ds, p2) == [sha(ds, f"{p2}^")]  # leftovers on top of the command's commit
    assert git("log", "-1", "--format=%s", f"{p2}^", cwd=ds).strip() == "inner"
    assert git("show", "--format=", "--name-only", p2, cwd=ds).split() == ["b"]
    parsed = records.parse_message(last_message(ds))
    assert parsed is not None and parsed.record["cmd"] == INNER
    assert git("status", "--porcelain", cwd=ds) == ""


def test_no_leftovers_merge_the_commands_last_commit(ds):
    before = sha(ds)
    rr("run", "echo 1 > f1 && git add f1 && git commit -q -m first && "
              "echo 2 > f2 && git add f2 && git commit -q -m second", cwd=ds)
    p1, p2 = parents(ds)
    assert p1 == before
    assert git("log", "-1", "--format=%s", p2, cwd=ds).strip() == "second"
    assert git("rev-list", "--count", f"{before}..HEAD", cwd=ds).strip() == "3"
    # a plain run afterwards is a plain run commit
    rr("run", "echo z > z", cwd=ds)
    assert len(parents(ds)) == 1


@pytest.mark.slow
@needs_datalad
def test_run_merge_matches_datalad(ds, dl):
    git("config", "rr.run.record-environment", "false", cwd=ds)  # byte-compared with DataLad's
    rr("run", INNER, cwd=ds)
    assert datalad("run", INNER, cwd=dl).returncode == 0
    assert shape(ds) == shape(dl)
    assert _no_dsid(git("cat-file", "commit", "HEAD", cwd=ds).split("\n\n", 1)[1]) == \
        _no_dsid(git("cat-file", "commit", "HEAD", cwd=dl).split("\n\n", 1)[1])


def _register(sup: Path, name: str) -> None:
    git("config", "-f", ".gitmodules", f"submodule.{name}.path", name, cwd=sup)
    git("config", "-f", ".gitmodules", f"submodule.{name}.url", f"./{name}", cwd=sup)
    git("add", ".gitmodules", name, cwd=sup)
    git("commit", "-q", "-m", f"add {name}", cwd=sup)


@pytest.mark.slow
@needs_datalad
def test_subdataset_hierarchy_gets_merges_bottom_up_like_datalad(ds, tmp_path):
    cmd = ("echo t > top && git add top && git commit -q -m top-inner && cd sub/leaf && "
           "echo f > foo && git add foo && git commit -q -m leaf-inner && echo g > bar")
    shutil.copytree(ds, ds / "sub", symlinks=True)
    shutil.copytree(ds, ds / "sub" / "leaf", symlinks=True,
                    ignore=shutil.ignore_patterns("sub"))
    _register(ds / "sub", "leaf")
    _register(ds, "sub")
    shutil.copytree(ds, tmp_path / "d", symlinks=True)
    (tmp_path / "r").symlink_to(ds)
    rr("run", cmd, cwd=tmp_path / "r")
    assert datalad("run", cmd, cwd=tmp_path / "d").returncode == 0
    for rel in (".", "sub", "sub/leaf"):
        mine, theirs = tmp_path / "r" / rel, tmp_path / "d" / rel
        assert shape(mine) == shape(theirs), rel
        assert len(parents(mine)) == 2
        assert git("status", "--porcelain", cwd=mine) == ""
    # the superdatasets record the subdatasets' merges
    assert git("ls-tree", "HEAD", "sub", cwd=tmp_path / "r").split()[2] == \
        sha(tmp_path / "r" / "sub")


def test_branch_switch_is_rejected_and_the_record_kept(ds):
    git("branch", "other", cwd=ds)
    branch = git("branch", "--show-current", cwd=ds).strip()
    before = sha(ds)
    proc = rr("run", "git checkout -q other && echo z > c && git add c && git commit -q -m on "
                     "&& echo w > d", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert f"HEAD moved from {branch} to other while the command ran" in proc.stderr
    assert f"checkout {branch}" in proc.stderr and "rr save -F .git/COMMIT_EDITMSG" in \
        proc.stderr
    assert sha(ds, branch) == before  # nothing recorded on the original branch ...
    assert "[DATALAD RUNCMD]" not in git("log", "--format=%B", "other", cwd=ds)  # ... nor here
    kept = (ds / ".git" / "COMMIT_EDITMSG").read_text()
    assert kept.startswith("[DATALAD RUNCMD] git checkout -q other")
    assert (ds / "d").read_text() == "w\n"


def test_command_that_rewinds_history_keeps_the_record(ds):
    rr("run", "echo 1 > one", cwd=ds)
    proc = rr("run", "git reset -q --hard HEAD~1 && echo 2 > two && git add two && "
                     "git commit -q -m other", cwd=ds, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "not an ancestor" in proc.stderr
    assert "rr save -F .git/COMMIT_EDITMSG" in proc.stderr
    assert (ds / ".git" / "COMMIT_EDITMSG").read_text().startswith("[DATALAD RUNCMD] git reset")
    assert "[DATALAD RUNCMD] git reset" not in git("log", "--format=%B", cwd=ds)


def test_failed_command_that_committed_keeps_its_message(ds):
    proc = rr("run", "echo x > a && git add a && git commit -q -m inner && exit 3", cwd=ds,
              check=False)
    assert proc.returncode == 3
    assert "rr save -F .git/COMMIT_EDITMSG" in proc.stderr
    assert '"exit": 3' in (ds / ".git" / "COMMIT_EDITMSG").read_text()


def test_explicit_run_that_commits_undeclared_files_is_an_error(ds):
    before = sha(ds)
    proc = rr("run", "--explicit", "-o", "declared", "echo x > foo && git add foo && "
              "git commit -q -m inner", cwd=ds, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "not declared as --output: foo" in proc.stderr
    assert "datalad.run.dirty-committed=ignore" in proc.stderr
    assert (ds / ".git" / "COMMIT_EDITMSG").read_text().startswith("[DATALAD RUNCMD]")
    assert git("rev-parse", "HEAD^", cwd=ds).strip() == before  # only the command's commit


def test_dirty_committed_ignore_records_a_run_merge(ds):
    git("config", "datalad.run.dirty-committed", "ignore", cwd=ds)
    (ds / "dirt").write_text("not saved\n")
    before = sha(ds)
    rr("run", "--explicit", "-o", "foo", "echo x > foo && echo y > other && git add foo other "
              "&& git commit -q -m inner", cwd=ds)
    assert parents(ds)[0] == before and len(parents(ds)) == 2
    assert git("status", "--porcelain", cwd=ds).strip() == "?? dirt"


def test_explicit_run_without_outputs_records_nothing(ds):
    # DataLad: an --explicit run that declares no outputs saves nothing (run-procedure)
    rr("run", "--explicit", "echo x > foo && git add foo && git commit -q -m inner", cwd=ds)
    assert len(parents(ds)) == 1
    assert git("log", "-1", "--format=%s", cwd=ds).strip() == "inner"


# --- rerun ------------------------------------------------------------------------------


@pytest.mark.slow
def test_rerun_of_run_merge_starts_from_first_parent(ds):
    rr("run", INNER, cwd=ds)
    original, base = sha(ds), parents(ds)[0]
    branch = git("branch", "--show-current", cwd=ds).strip()
    proc = rr("rerun", cwd=ds)
    assert git("branch", "--show-current", cwd=ds).strip() == branch
    new = sha(ds)
    assert new != original
    assert parents(ds)[0] == base  # the branch was rewound and rewritten, as in DataLad
    assert original[:10] in proc.stderr  # ... and the user is told which commit was replaced
    parsed = records.parse_message(last_message(ds))
    assert parsed is not None and parsed.record["chain"] == [original]
    assert shape(ds) == shape(ds, original).replace(original, new)


@pytest.mark.slow
def test_rerun_range_with_run_merge_onto_new_branch(ds):
    rr("run", "echo n > normal", cwd=ds)
    rr("run", "echo i > inner2 && git add inner2 && git commit -q -m inner2", cwd=ds)
    tip = sha(ds)
    rr("rerun", "--since=", "--onto=", "--branch", "again", cwd=ds)
    assert git("branch", "--show-current", cwd=ds).strip() == "again"
    assert len(parents(ds)) == 2
    assert (ds / "normal").exists() and (ds / "inner2").exists()
    assert git("rev-parse", "HEAD^1^", cwd=ds).strip() == git("rev-list", "--max-parents=0",
                                                                 tip, cwd=ds).strip()


@pytest.mark.slow
@needs_datalad
def test_datalad_reruns_rr_run_merges_and_rr_reruns_datalads(ds, dl):
    rr("run", INNER, cwd=ds)
    assert datalad("run", INNER, cwd=dl).returncode == 0
    mine_before, theirs_before = sha(ds), sha(dl)
    # each tool replays the other's run-merge ...
    assert datalad("rerun", cwd=ds).returncode == 0
    rr("rerun", cwd=dl)
    for path, old in ((ds, mine_before), (dl, theirs_before)):
        assert sha(path) != old and len(parents(path)) == 2
        assert records.parse_message(last_message(path)).record["chain"] == [old]
    # ... into the same shape
    assert shape(ds) == shape(dl)
    assert git("branch", "--show-current", cwd=ds) == git("branch", "--show-current", cwd=dl)


def test_rerun_of_buried_run_merge_does_not_rewind_the_branch(ds):
    # DataLad would rewind the branch past later commits; rr leaves it and detaches HEAD
    rr("run", INNER, cwd=ds)
    merge = sha(ds)
    rr("run", "echo later > later", cwd=ds)
    branch = git("branch", "--show-current", cwd=ds).strip()
    tip = sha(ds)
    proc = rr("rerun", merge, cwd=ds)
    assert sha(ds, branch) == tip
    assert git("branch", "--show-current", cwd=ds).strip() == ""
    assert parents(ds)[0] == parents(ds, merge)[0] and "does not contain" in proc.stderr
