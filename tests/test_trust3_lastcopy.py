"""Issue 20 item 1: the last copy is never lost on someone else's word (a sibling's
git-annex branch that marks its repository trusted and claims a key it does not have)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import annex, git, rr


def _liar(ds: Path, tmp_path: Path) -> tuple[Path, str]:
    """A clone that trusts itself and claims ds's key without having it; ds fetched it."""
    (ds / "p.dat").write_text("precious\n")
    rr("save", "-m", "precious", cwd=ds)
    key = annex("lookupkey", "p.dat", cwd=ds).strip()
    liar = tmp_path / "liar"
    rr("clone", str(ds), str(liar), cwd=tmp_path)
    uuid = git("config", "annex.uuid", cwd=liar).strip()
    annex("trust", "--force", "here", cwd=liar)
    annex("setpresentkey", key, uuid, "1", cwd=liar)
    annex("merge", cwd=liar)  # commits the journal: the claim is in its git-annex branch
    git("remote", "add", "liar", str(liar), cwd=ds)
    rr("update", "-s", "liar", cwd=ds)
    assert uuid in annex("whereis", "p.dat", cwd=ds)  # the claim arrived
    return liar, key


@pytest.mark.slow
def test_drop_does_not_take_a_siblings_word_for_the_last_copy(ds, tmp_path):
    _liar_path, key = _liar(ds, tmp_path)
    proc = rr("drop", "p.dat", cwd=ds, check=False)
    assert proc.returncode != 0
    assert (ds / "p.dat").read_text() == "precious\n"


@pytest.mark.slow
def test_remove_keeps_the_last_copy_a_sibling_only_claims(ds, tmp_path):
    _liar_path, key = _liar(ds, tmp_path)
    rr("remove", "p.dat", cwd=ds, check=False)
    objects = [p for p in (ds / ".git" / "annex" / "objects").rglob(key) if p.is_file()]
    assert objects and objects[0].read_text() == "precious\n"


@pytest.mark.slow
def test_trust_the_user_sets_locally_is_honoured(ds, tmp_path):
    liar, key = _liar(ds, tmp_path)
    # the user's own word: the sibling is trusted in this repository's git config
    git("config", "remote.liar.annex-trustlevel", "trusted", cwd=ds)
    proc = rr("drop", "p.dat", cwd=ds, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (ds / "p.dat").exists()


@pytest.mark.slow
def test_a_sibling_that_really_has_the_copy_still_lets_drop_work(ds, tmp_path):
    liar, key = _liar(ds, tmp_path)
    annex("get", "p.dat", cwd=liar)  # now its claim is true: checking it succeeds
    rr("drop", "p.dat", cwd=ds)
    assert not (ds / "p.dat").exists()


# --- rr remove of a subdataset: what exists here alone -------------------------------------

def _with_sub(ds: Path, tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "src"
    rr("create", str(src), cwd=tmp_path)
    (src / "f.txt").write_text("f\n")
    rr("save", "-m", "f", cwd=src)
    rr("clone", "-d", ".", str(src), "sub", cwd=ds)
    sub = ds / "sub"
    return src, sub


def _lone(sub: Path, src: Path, case: str) -> None:
    if case == "ignored":
        (sub / ".gitignore").write_text("*.log\n")
        rr("save", "-m", "ignore logs", cwd=sub)
        git("push", "-q", "origin", "HEAD:refs/heads/pushed", cwd=sub)
        (sub / "notes.log").write_text("only here\n")
    elif case == "stash":
        (sub / ".gitnote").write_text("kept in git\n")  # .git* files stay in git
        rr("save", "-m", "note", cwd=sub)
        git("push", "-q", "origin", "HEAD:refs/heads/pushed", cwd=sub)
        (sub / ".gitnote").write_text("changed, then stashed\n")
        git("stash", "-q", cwd=sub)
    elif case == "tag":
        git("checkout", "-q", "-b", "side", cwd=sub)
        git("commit", "-q", "--allow-empty", "-m", "only a tag holds me", cwd=sub)
        git("tag", "keep", cwd=sub)
        git("checkout", "-q", "-", cwd=sub)
        git("branch", "-q", "-D", "side", cwd=sub)
    elif case == "stale-refs":
        git("commit", "-q", "--allow-empty", "-m", "pushed, then the sibling went", cwd=sub)
        git("push", "-q", "origin", "HEAD:refs/heads/pushed", cwd=sub)
        src.rename(src.with_name("src-moved"))  # the remote-tracking refs stay


@pytest.mark.slow
@pytest.mark.parametrize("case", ["ignored", "stash", "tag", "stale-refs"])
def test_remove_refuses_a_subdataset_whose_things_exist_here_alone(ds, tmp_path, case):
    src, sub = _with_sub(ds, tmp_path)
    rr("save", "-m", "sub", cwd=ds)
    _lone(sub, src, case)
    proc = rr("remove", "sub", cwd=ds, check=False)
    assert proc.returncode != 0, proc.stderr
    assert "sub" in proc.stderr and "Traceback" not in proc.stderr
    assert (sub / ".git").exists()


@pytest.mark.slow
def test_remove_of_a_subdataset_whose_sibling_has_everything_still_works(ds, tmp_path):
    _src, sub = _with_sub(ds, tmp_path)
    rr("save", "-m", "sub", cwd=ds)
    rr("remove", "sub", cwd=ds)
    assert not sub.exists()
