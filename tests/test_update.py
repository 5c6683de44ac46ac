"""rr update: fetch from siblings (content becomes gettable), bring the current branch up to
date as --how says, into subdatasets with -r; its errors; rr get/push -J."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, rr


@pytest.fixture
def pair(ds_with_data, tmp_path):
    """(origin, clone): a dataset and an rr clone of it (sibling 'origin')."""
    clone = tmp_path / "clone"
    rr("clone", str(ds_with_data), str(clone))
    return ds_with_data, clone


def _head(path: Path, rev: str = "HEAD") -> str:
    return git("rev-parse", rev, cwd=path).strip()


def _change(path: Path, name: str, text: str, message: str) -> str:
    target = path / name
    if target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    rr("save", "-m", message, cwd=path)
    return _head(path)


def test_fetch_only_makes_content_known_and_moves_no_branch(pair):
    origin, clone = pair
    new = _change(origin, "data/c.txt", "gamma\n", "add c")
    git("checkout", "-q", "-b", "side", cwd=origin)
    side = _change(origin, "side.txt", "side\n", "side work")
    before = _head(clone)
    out = rr("update", cwd=clone).stdout
    assert out.splitlines() == ["fetched      .: fetched from origin"]
    assert _head(clone) == before  # --how fetch: no branch moves
    assert _head(clone, "origin/master") == new and _head(clone, "origin/side") == side
    # the sibling's git-annex branch is merged: the new file's content is known to be there
    git("checkout", "-q", "origin/master", "--", "data/c.txt", cwd=clone)
    whereis = json.loads(git("annex", "whereis", "--json", "data/c.txt", cwd=clone))
    assert any(w["description"].startswith("[origin]") or "origin" in w["description"]
               for w in whereis["whereis"])
    rr("get", "-J", "2", "data/c.txt", cwd=clone)
    assert (clone / "data" / "c.txt").read_text() == "gamma\n"


@pytest.mark.slow
def test_ff_only_and_reset_move_only_the_current_branch(pair):
    origin, clone = pair
    git("branch", "keep", cwd=clone)
    keep = _head(clone, "keep")
    new = _change(origin, "data/c.txt", "gamma\n", "add c")
    proc = rr("update", "--how", "ff-only", "--json", cwd=clone)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert results[-1]["state"] == "fast-forward" and results[-1]["to"] == new
    assert _head(clone) == new and _head(clone, "keep") == keep
    assert rr("update", "--how", "merge", cwd=clone).stdout.splitlines()[-1].startswith(
        "up to date")
    # reset: the current branch is set to the sibling's, local commits dropped
    _change(clone, "mine.txt", "mine\n", "local work")
    rr("update", "--how", "reset", "-s", "origin", cwd=clone)
    assert _head(clone) == new and not (clone / "mine.txt").exists()
    assert _head(clone, "keep") == keep


def test_merge_conflict_leaves_git_merge_state(pair):
    origin, clone = pair
    _change(origin, "notes.txt", "theirs\n", "their notes")
    mine = _change(clone, "notes.txt", "mine\n", "my notes")
    proc = rr("update", "--how", "merge", cwd=clone, check=False)
    assert proc.returncode == 1
    assert "rr: error: merging origin/master into master stopped at conflicts in notes.txt" \
        in proc.stderr
    assert "git merge --abort" in proc.stderr and "Traceback" not in proc.stderr
    assert (clone / ".git" / "MERGE_HEAD").exists()
    assert "UU notes.txt" in git("status", "--porcelain", cwd=clone) or \
        "AA notes.txt" in git("status", "--porcelain", cwd=clone)
    # a second update refuses while the merge is unresolved
    again = rr("update", "--how", "merge", cwd=clone, check=False)
    assert again.returncode == 1 and "merge or cherry-pick is in progress" in again.stderr
    git("merge", "--abort", cwd=clone)
    assert _head(clone) == mine and git("status", "--porcelain", cwd=clone) == ""


def test_merge_and_reset_refuse_a_dirty_dataset(pair):
    origin, clone = pair
    new = _change(origin, "data/c.txt", "gamma\n", "add c")
    (clone / "code" / "count.sh").unlink()
    for how in ("merge", "reset", "ff-only"):
        proc = rr("update", "--how", how, cwd=clone, check=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith(f"rr: error: --how {how} needs a clean dataset; "
                                      "unsaved changes in code/count.sh")
    assert _head(clone) != new
    assert _head(clone, "origin/master") != new  # refused before fetching


@pytest.mark.parametrize("how", ["merge", "ff-only", "reset"])
def test_untracked_file_the_sibling_tracks_is_never_overwritten(pair, how):
    """An untracked file counts as unsaved for every --how that changes the work tree (as in
    DataLad's check): reset used to overwrite it with the sibling's content and exit 0."""
    origin, clone = pair
    _change(origin, "new.txt", "theirs\n", "their new file")
    (clone / "new.txt").write_text("untracked, mine\n")
    before = _head(clone)
    proc = rr("update", "--how", how, cwd=clone, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"rr: error: --how {how} needs a clean dataset; "
                                  "unsaved changes in new.txt"), proc.stderr
    assert _head(clone) == before and (clone / "new.txt").read_text() == "untracked, mine\n"


@pytest.mark.parametrize("how", ["merge", "ff-only", "reset"])
def test_ignored_file_the_sibling_tracks_is_never_overwritten(pair, how):
    """git overwrites an ignored file without a word (reset, and a merge too); rr refuses
    before anything changes."""
    origin, clone = pair
    _change(origin, "notes.txt", "theirs\n", "their notes")
    (clone / "notes.txt").write_text("ignored, mine\n")
    (clone / ".git" / "info" / "exclude").write_text("notes.txt\n")
    before = _head(clone)
    proc = rr("update", "--how", how, cwd=clone, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"rr: error: --how {how} would overwrite notes.txt: not "
                                  "tracked here (ignored), tracked by origin/master"), proc.stderr
    assert _head(clone) == before and (clone / "notes.txt").read_text() == "ignored, mine\n"
    (clone / "notes.txt").unlink()  # moved away: the update goes through
    rr("update", "--how", how, cwd=clone)
    assert _head(clone) == _head(origin)
    assert (clone / "notes.txt").is_symlink() or (clone / "notes.txt").exists()


def test_errors_are_one_line(pair, tmp_path):
    origin, clone = pair
    proc = rr("update", "-s", "nosuch", cwd=clone, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "rr: error: unknown sibling: nosuch",
        "rr: hint: siblings here: origin (add one with 'rr siblings add NAME URL')"]
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = rr("update", cwd=plain, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("rr: error: not inside a dataset")
    for how in ("fetch", "merge"):  # no sibling: nothing to do, as DataLad (was an error)
        proc = rr("update", "--how", how, cwd=origin)
        assert proc.stdout == "no sibling   .: no sibling to update from\n" or \
            "no sibling to update from" in proc.stdout + proc.stderr
    proc = rr("update", "--how", "sideways", cwd=clone, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    git("checkout", "-q", "--detach", cwd=clone)
    proc = rr("update", "--how", "merge", cwd=clone, check=False)
    assert proc.returncode == 1 and "HEAD is detached" in proc.stderr
    git("checkout", "-q", "master", cwd=clone)
    # rr get -J 0: tests/test_cli.py::test_jobs_zero_is_one_usage_error
    git("remote", "set-url", "origin", str(tmp_path / "gone"), cwd=clone)
    proc = rr("update", "-s", "origin", cwd=clone, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("rr: error: cannot fetch from origin")


@pytest.mark.slow
def test_recursive_merge_checks_out_recorded_subdataset_commits(ds, tmp_path):
    rr("create", "-d", ".", "sub", cwd=ds)
    _change(ds / "sub", "a.txt", "one\n", "sub one")
    rr("save", "-m", "sub state one", cwd=ds)
    clone = tmp_path / "clone"
    rr("clone", str(ds), str(clone))
    rr("get", "-r", "sub", cwd=clone)
    assert (clone / "sub" / "a.txt").read_text() == "one\n"
    recorded = _change(ds / "sub", "a.txt", "two\n", "sub two")
    rr("save", "-m", "sub state two", cwd=ds)
    out = rr("update", "-r", "--how", "merge", cwd=clone).stdout.splitlines()
    assert "fetched      sub: fetched from origin" in out
    assert any(line.startswith("fast-forward sub: master fast-forwarded to the recorded")
               for line in out)
    assert _head(clone / "sub") == recorded
    rr("get", "-J", "2", "sub/a.txt", cwd=clone)  # content comes on request, as always
    assert (clone / "sub" / "a.txt").read_text() == "two\n"
    assert git("status", "--porcelain", cwd=clone) == ""


def test_push_with_jobs(ds_with_data, tmp_path):
    rr("siblings", "add", "store", str(tmp_path / "store.git"), cwd=ds_with_data)
    out = rr("push", "--to", "store", "-J", "2", cwd=ds_with_data).stderr
    assert "3 file(s) of content" in out
    assert "3 copies" in git("annex", "whereis", "data/a.txt", cwd=ds_with_data) or \
        "store" in git("annex", "whereis", "data/a.txt", cwd=ds_with_data)


def test_push_from_a_detached_head_is_an_error_and_pushes_nothing(ds_with_data, tmp_path):
    """Success only for what happened: from a detached HEAD rr said "pushed HEAD", exit 0, and
    no branch reached the sibling (DataLad: impossible)."""
    store = tmp_path / "store.git"
    rr("siblings", "add", "store", str(store), cwd=ds_with_data)
    git("checkout", "-q", "--detach", cwd=ds_with_data)
    before = git("for-each-ref", cwd=store)
    proc = rr("push", "--to", "store", cwd=ds_with_data, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == ("rr: error: HEAD is detached: there is no branch "
                                           "to push; nothing was pushed")
    assert "Traceback" not in proc.stderr
    assert "refs/heads/master" not in before
    assert git("for-each-ref", cwd=store) == before  # no branch moved
    assert "store" not in git("annex", "whereis", "data/a.txt", cwd=ds_with_data)  # no content


def test_merge_of_a_branch_the_sibling_lacks_is_impossible(pair):
    """DataLad's test_update: --how merge with no counterpart on the sibling is impossible
    (exit 1); rr said "no branch", exit 0.  --how fetch alone is fine."""
    _origin, clone = pair
    git("checkout", "-q", "-b", "feature", cwd=clone)
    before = _head(clone)
    proc = rr("update", "--how", "merge", cwd=clone, check=False)
    assert proc.returncode == 1
    assert "rr: impossible: .: origin has no branch feature: feature left as it is" \
        in proc.stderr
    assert _head(clone) == before
    assert rr("update", cwd=clone).returncode == 0


def _commit_in_git(path: Path, name: str, text: str) -> None:
    (path / name).write_text(text)
    git("-c", "annex.largefiles=nothing", "add", name, cwd=path)
    git("commit", "-qm", f"{name}: {text}", cwd=path)


@pytest.mark.slow
def test_a_conflict_in_one_subdataset_keeps_none_of_the_others_from_merging(tmp_path):
    """DataLad's test_update.py::test_merge_conflict_in_subdataset_only: the subdataset
    with a conflict is left in git's merge state for the user, the other one is merged, and
    the superdataset saves the new state of the one that moved; a subdataset with commits
    of its own is not "unsaved changes" that block a recursive update."""
    src = tmp_path / "src"
    rr("create", str(src))
    rr("create", "-d", str(src), str(src / "conflict"))
    rr("create", "-d", str(src), str(src / "clean"))
    clone = tmp_path / "clone"
    rr("clone", str(src), str(clone))
    rr("get", "-r", ".", cwd=clone)
    for sub in ("conflict", "clean"):  # on a branch, as a DataLad clone -r leaves them
        branch = git("branch", "--show-current", cwd=src / sub).strip()
        git("checkout", "-q", "-B", branch, cwd=clone / sub)
        git("branch", "-q", f"--set-upstream-to=origin/{branch}", cwd=clone / sub)
    _commit_in_git(src / "conflict", "foo", "src content")
    _commit_in_git(clone / "conflict", "foo", "clone content")
    _commit_in_git(src / "clean", "foo", "src content")

    proc = rr("update", "--how", "merge", "-r", "--follow", "sibling", cwd=clone, check=False)
    assert proc.returncode == 1
    assert "conflict: merging origin/" in proc.stderr and "conflicts in foo" in proc.stderr
    assert (clone / "clean" / "foo").read_text() == "src content"
    assert git("ls-files", "--unmerged", "--", "foo", cwd=clone / "conflict").strip()
    assert git("log", "-1", "--format=%s", cwd=clone).strip() == \
        "[DATALAD] Save updated subdatasets"
    assert git("ls-tree", "HEAD", "clean", cwd=clone).split()[2] == \
        git("rev-parse", "HEAD", cwd=clone / "clean").strip()
