"""annex.add_session: one ``git annex add --batch`` process for many saves (issue #22 item 2)."""

import os

import pytest

from recorder import annex, proc
from recorder.dataset import Dataset
from recorder.save import commit_entries

from .conftest import git


def _names(ds, rev: str) -> list[str]:
    return git("show", "--format=", "--name-only", rev, cwd=ds).split()


def test_saves_in_a_session_share_one_git_annex(ds, started):
    d = Dataset(ds)
    with annex.add_session(ds):
        for i in range(3):
            for j in range(3):
                (ds / f"f{i}{j}.dat").write_text(f"{i} {j}\n")
            sha = commit_entries(d, d.status(untracked="all"), f"step {i}", only=False)
            assert sha is not None
            assert _names(ds, "HEAD") == [f"f{i}{j}.dat" for j in range(3)]
            assert os.path.islink(ds / f"f{i}0.dat")  # annexed, locked
    assert len(started()) == 1, started()
    assert "--batch" in started()[0]
    # the location log reached the git-annex branch when the session ended
    journal = ds / ".git" / "annex" / "journal"
    assert not journal.exists() or not os.listdir(journal)
    assert "[here]" in git("annex", "whereis", "f00.dat", cwd=ds)
    git("annex", "fsck", "--fast", "--quiet", cwd=ds)
    assert git("status", "--porcelain", cwd=ds) == ""


def test_add_returns_with_every_file_staged(ds, started):
    (ds / "big.dat").write_text("content\n")
    (ds / ".gitignore").write_text("*.tmp\n")  # into git (**/.git* annex.largefiles=nothing)
    with annex.add_session(ds):
        records = annex.add(ds, ["big.dat", ".gitignore"])
        staged = git("diff", "--cached", "--name-only", cwd=ds).split()
        assert staged == [".gitignore", "big.dat"]
        assert [r["file"] for r in records] == ["big.dat", ".gitignore"]
        assert git("ls-files", "-s", ".gitignore", cwd=ds).startswith("100644 ")
        assert git("ls-files", "-s", "big.dat", cwd=ds).startswith("120000 ")
        # an ignored or missing path gets an empty answer: nothing to add, no hang
        (ds / "x.tmp").write_text("ignored\n")
        assert annex.add(ds, ["x.tmp"]) == []
    assert len(started()) == 1


def test_many_files_odd_names_and_to_git_take_the_one_shot_add(ds, started):
    d = Dataset(ds)
    many = [f"m{i:03d}.dat" for i in range(annex._SESSION_MAX_PATHS + 1)]
    for name in many:
        (ds / name).write_text(name)
    (ds / "line\nbreak.dat").write_text("odd\n")
    with annex.add_session(ds):
        annex.add(ds, many)
        annex.add(ds, ["line\nbreak.dat"])
        (ds / "small.txt").write_text("small\n")
        annex.add(ds, ["small.txt"], to_git=True)
        assert all("--batch" not in line for line in started()), started()
        assert len(started()) == 3  # the line break: the log shows that name on two lines
        commit_entries(d, d.status(untracked="all"), "all", only=False)
    assert git("ls-files", "-s", "small.txt", cwd=ds).startswith("100644 ")
    assert git("status", "--porcelain", cwd=ds) == ""


def test_a_batch_process_that_died_is_started_again(ds, started):
    (ds / "a.dat").write_text("a\n")
    (ds / "b.dat").write_text("b\n")
    with annex.add_session(ds):
        annex.add(ds, ["a.dat"])
        session = annex._ADD_SESSIONS[os.path.realpath(ds)]
        assert session.child is not None
        proc.stop_tool(session.child)
        annex.add(ds, ["b.dat"])
    assert git("diff", "--cached", "--name-only", cwd=ds).split() == ["a.dat", "b.dat"]
    assert len(started()) == 2


def test_nested_sessions_share_the_outer_one(ds, started):
    (ds / "a.dat").write_text("a\n")
    (ds / "b.dat").write_text("b\n")
    with annex.add_session(ds):
        annex.add(ds, ["a.dat"])
        with annex.add_session(ds):
            annex.add(ds, ["b.dat"])
        assert annex._ADD_SESSIONS  # the outer one still open
    assert not annex._ADD_SESSIONS
    assert len(started()) == 1


def test_a_one_shot_add_beside_a_running_session(ds, started):
    """A large add (one-shot git-annex) while the session's process waits: both stage."""
    d = Dataset(ds)
    (ds / "first.dat").write_text("first\n")
    many = [f"m{i:03d}.dat" for i in range(annex._SESSION_MAX_PATHS + 1)]
    for name in many:
        (ds / name).write_text(name)
    (ds / "last.dat").write_text("last\n")
    with annex.add_session(ds):
        annex.add(ds, ["first.dat"])
        annex.add(ds, many)
        annex.add(ds, ["last.dat"])
        staged = set(git("diff", "--cached", "--name-only", cwd=ds).split())
        assert staged == {"first.dat", "last.dat", *many}
        commit_entries(d, [e for e in d.status(untracked="all")], "all", only=False)
    assert [line.split(" --")[0] for line in started()][:3] == [
        "add -c annex.dotfiles=true -c annex.queuesize=1", "add -c annex.dotfiles=true",
        "add -c annex.dotfiles=true"]
    assert git("status", "--porcelain", cwd=ds) == ""
    git("annex", "fsck", "--fast", "--quiet", cwd=ds)


@pytest.mark.parametrize("change", ["gitattributes", "delete-gitattributes", "git-config"])
def test_a_session_follows_changed_largefiles_rules(ds, started, change):
    """git-annex reads annex.largefiles once per process (its config at start, a
    directory's .gitattributes at the first add there): after a save that changed the
    rules, the next save in the same session follows the new ones (a new process)."""
    d = Dataset(ds)
    rules = ds / "sub" / ".gitattributes"
    (ds / "sub").mkdir()
    if change == "delete-gitattributes":
        rules.write_text("*.txt annex.largefiles=nothing\n")
        commit_entries(d, d.status(untracked="all"), "rules", only=False)
    with annex.add_session(ds):
        (ds / "sub" / "a.txt").write_text("a\n")
        commit_entries(d, d.status(untracked="all"), "a", only=False)
        assert os.path.islink(ds / "sub" / "a.txt") == (change != "delete-gitattributes")
        if change == "gitattributes":
            rules.write_text("*.txt annex.largefiles=nothing\n")
        elif change == "delete-gitattributes":
            rules.unlink()
        else:
            git("config", "annex.largefiles", "nothing", cwd=ds)
        if change != "git-config":
            commit_entries(d, d.status(untracked="all"), "rules", only=False)
        (ds / "sub" / "b.txt").write_text("b\n")
        commit_entries(d, d.status(untracked="all"), "b", only=False)
        # as a git-annex started now decides
        assert os.path.islink(ds / "sub" / "b.txt") == (change == "delete-gitattributes")
    assert len([a for a in started() if "--batch" in a]) == 2, started()
    assert git("status", "--porcelain", cwd=ds) == ""
    git("annex", "fsck", "--fast", "--quiet", cwd=ds)


def test_a_session_in_a_linked_worktree_follows_the_repository_config(ds, started, tmp_path):
    """In a linked worktree (an array job's slot) ``.git`` is a file: the config git-annex
    reads is the repository's; a change to it there starts a new process too."""
    wt = tmp_path / "slot"
    git("worktree", "add", "--detach", str(wt), cwd=ds)
    w = Dataset(wt)
    with annex.add_session(wt):
        (wt / "a.txt").write_text("a\n")
        commit_entries(w, w.status(untracked="all"), "a", only=False)
        assert os.path.islink(wt / "a.txt")
        git("config", "annex.largefiles", "nothing", cwd=wt)
        (wt / "b.txt").write_text("b\n")
        commit_entries(w, w.status(untracked="all"), "b", only=False)
        assert not os.path.islink(wt / "b.txt")
    assert len([a for a in started() if "--batch" in a]) == 2, started()
