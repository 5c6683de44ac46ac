"""DataLad's daily options: get -s/--source, -R/--recursion-limit (get, drop, push, update,
status, diff, subdatasets, unlock), unlock -r."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import annex, git, one_error_line, rr, rr_in


def _binary(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes((i * 7 + seed) % 251 for i in range(2000)))


def _present(path: Path) -> bool:
    return path.exists()  # an annexed file's link resolves only when its content is here


@pytest.fixture
def nest(tmp_path):
    """top/ with sub/ with sub/subsub/, each with one annexed file (f0, f1, f2)."""
    top = tmp_path / "top"
    rr("create", str(top))
    rr("create", "-d", str(top), str(top / "sub"))
    rr("create", "-d", str(top / "sub"), str(top / "sub" / "subsub"))
    for n, where in enumerate((top, top / "sub", top / "sub" / "subsub")):
        _binary(where / f"f{n}.bin", n)
    rr("save", "-m", "content", cwd=top)
    assert git("status", "--porcelain", cwd=top) == ""
    return top


@pytest.fixture
def fresh(nest, tmp_path):
    """A clone of ``nest``: nothing installed, no content."""
    rr("clone", str(nest), str(tmp_path / "fresh"))
    return tmp_path / "fresh"


@pytest.mark.slow
def test_get_recursion_limit(fresh):
    rr("get", "-n", "-r", "-R", "1", ".", cwd=fresh)
    assert (fresh / "sub" / ".git").exists()
    assert not (fresh / "sub" / "subsub" / ".git").exists()
    # DataLad's test_recurse_existing: content in the datasets there, none installed
    rr("get", "-r", "-R", "existing", ".", cwd=fresh)
    assert _present(fresh / "f0.bin") and _present(fresh / "sub" / "f1.bin")
    assert not (fresh / "sub" / "subsub" / ".git").exists()
    res = rr_in("get", "-r", "-R", "sometimes", ".", cwd=fresh)
    assert res.exit_code == 2
    assert "a number of levels or 'existing'" in one_error_line(res.stderr)
    rr("get", "-r", "-R", "1", ".", cwd=fresh)
    assert _present(fresh / "f0.bin") and _present(fresh / "sub" / "f1.bin")
    assert not (fresh / "sub" / "subsub" / ".git").exists()
    rr("get", "-r", "-R", "2", ".", cwd=fresh)
    assert _present(fresh / "sub" / "subsub" / "f2.bin")
    # without -R: all the way down (unchanged)
    rr("drop", "-r", ".", cwd=fresh)
    rr("get", "-r", ".", cwd=fresh)
    assert _present(fresh / "sub" / "subsub" / "f2.bin")
    # -R 1 and drop: here and in the dataset's own subdatasets, no deeper
    rr("drop", "-r", "-R", "1", ".", cwd=fresh)
    assert not _present(fresh / "f0.bin") and not _present(fresh / "sub" / "f1.bin")
    assert _present(fresh / "sub" / "subsub" / "f2.bin")


@pytest.mark.slow
def test_subdatasets_and_status_recursion_limit(nest):
    def listed(*args: str) -> list[str]:
        out = rr("subdatasets", "--json", *args, cwd=nest).stdout
        return [json.loads(line)["path"] for line in out.splitlines()]

    assert listed() == ["sub"]
    assert listed("-r", "-R", "1") == ["sub"]
    assert listed("-r", "-R", "2") == ["sub", "sub/subsub"]
    assert listed("-r") == ["sub", "sub/subsub"]
    (nest / "sub" / "subsub" / "new.txt").write_text("new\n")
    (nest / "sub" / "new.txt").write_text("new\n")

    def changed(*args: str) -> set[str]:
        out = rr("status", "--json", *args, cwd=nest).stdout
        return {json.loads(line)["path"] for line in out.splitlines()}

    assert changed("-r") >= {"sub/new.txt", "sub/subsub/new.txt"}
    limited = changed("-r", "-R", "1")
    assert "sub/new.txt" in limited and "sub/subsub/new.txt" not in limited
    assert "sub/subsub" in limited  # the subsubdataset itself is modified, seen from sub
    assert "sub/new.txt" not in changed()

    def differs(*args: str) -> set[str]:
        out = rr("diff", "--json", *args, cwd=nest).stdout
        return {json.loads(line)["path"] for line in out.splitlines()}

    assert "sub/subsub/new.txt" in differs("-r")
    assert "sub/new.txt" in differs("-r", "-R", "1")
    assert "sub/subsub/new.txt" not in differs("-r", "-R", "1")


@pytest.mark.slow
def test_unlock_recursive_and_limited(nest):
    res = rr("unlock", "--json", cwd=nest).stdout
    assert [json.loads(x)["path"] for x in res.splitlines()] == ["f0.bin"]
    rr("save", "-m", "lock again", cwd=nest)
    res = rr("unlock", "--json", "-r", "-R", "1", cwd=nest).stdout
    assert [json.loads(x)["path"] for x in res.splitlines()] == ["f0.bin", "sub/f1.bin"]
    assert not (nest / "sub" / "f1.bin").is_symlink()
    assert (nest / "sub" / "subsub" / "f2.bin").is_symlink()
    res = rr("unlock", "--json", "-r", cwd=nest).stdout
    paths = [json.loads(x)["path"] for x in res.splitlines()]
    assert "sub/subsub/f2.bin" in paths
    assert not (nest / "sub" / "subsub" / "f2.bin").is_symlink()
    assert (nest / "sub" / "subsub" / "f2.bin").read_bytes()[:2] == bytes([2, 9])
    # a directory inside a subdataset, named from the top
    rr("save", "-m", "lock again", cwd=nest)
    res = rr("unlock", "--json", "-r", "sub", cwd=nest).stdout
    assert {json.loads(x)["path"] for x in res.splitlines()} == {"sub/f1.bin",
                                                                 "sub/subsub/f2.bin"}


@pytest.mark.slow
def test_push_and_update_recursion_limit(nest, tmp_path):
    for n, where in enumerate((nest, nest / "sub", nest / "sub" / "subsub")):
        rr("siblings", "add", "store", str(tmp_path / f"store{n}.git"), cwd=where)
    res = rr("push", "--to", "store", "-r", "-R", "1", "--json", cwd=nest)
    subs = {s["path"]: s["status"] for s in json.loads(res.stdout)["subdatasets"]}
    assert subs == {"sub": "ok"}
    assert "master" in git("branch", "--list", cwd=tmp_path / "store1.git")
    assert "master" not in git("branch", "--list", cwd=tmp_path / "store2.git")
    rr("push", "--to", "store", "-r", cwd=nest)
    assert "master" in git("branch", "--list", cwd=tmp_path / "store2.git")
    out = rr("update", "-s", "store", "-r", "-R", "1", "--json", cwd=nest).stdout
    paths = {json.loads(x)["path"] for x in out.splitlines()}
    assert "sub" in paths and "sub/subsub" not in paths
    out = rr("update", "-s", "store", "-r", "--json", cwd=nest).stdout
    assert "sub/subsub" in {json.loads(x)["path"] for x in out.splitlines()}


@pytest.mark.slow
def test_get_from_a_named_source(nest, tmp_path):
    """get -s NAME: content only from that sibling (git-annex get --from), as DataLad's."""
    backup = tmp_path / "backup"
    rr("clone", str(nest), str(backup))
    rr("get", "f0.bin", cwd=backup)
    work = tmp_path / "work"
    rr("clone", str(nest), str(work))
    rr("siblings", "add", "backup", str(backup), cwd=work)
    git("annex", "sync", "--only-annex", "--no-push", "--no-content", "backup", cwd=work)
    rr("get", "-s", "backup", "f0.bin", cwd=work)
    assert _present(work / "f0.bin")
    log = annex("log", "--raw-date", "f0.bin", cwd=work)
    assert log  # located here now
    rr("drop", "f0.bin", cwd=work)
    # only the origin has f1's content: a get from the backup finds none and fails
    rr("get", "-n", "sub", cwd=work)
    res = rr_in("get", "-s", "origin", "sub/f1.bin", cwd=work)
    assert res.exit_code == 0, res.output
    assert _present(work / "sub" / "f1.bin")
    res = rr_in("get", "-s", "backup", "f0.bin", "--json", cwd=work)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert lines[-1] == {"action": "get", "status": "ok", "paths": ["f0.bin"]}
    rr("drop", "f0.bin", cwd=work)
    git("annex", "drop", "--force", "f0.bin", cwd=backup)
    res = rr_in("get", "-s", "backup", "f0.bin", cwd=work)
    assert res.exit_code == 1 and not _present(work / "f0.bin")
    # git annex get --from passes over it without a word: rr does not claim it got it
    assert one_error_line(res.stderr) == "rr: error: backup did not provide the content " \
                                         "of f0.bin"
    # a sibling this dataset (or a subdataset reached) does not have: one line
    res = rr_in("get", "-s", "nowhere", "f0.bin", cwd=work)
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == "rr: error: this dataset has no sibling nowhere; " \
                                         "nothing was got from it there"
    res = rr_in("get", "-s", "backup", "sub/f1.bin", cwd=work)  # content here: nothing to do
    assert res.exit_code == 0
    rr("drop", "sub/f1.bin", cwd=work)
    res = rr_in("get", "-s", "backup", "sub/f1.bin", cwd=work)
    assert res.exit_code == 1
    assert "the subdataset sub has no sibling backup" in one_error_line(res.stderr)


@pytest.mark.parametrize("command", [
    ["get", "."], ["drop", "."], ["status"], ["diff"], ["subdatasets"], ["unlock"],
    ["push", "--to", "x"], ["update"]])
def test_recursion_limit_needs_recursive_and_a_level(ds, command):
    res = rr_in(*command, "-R", "1", cwd=ds)
    assert res.exit_code == 2, res.output
    assert one_error_line(res.stderr) == \
        "rr: error: -R/--recursion-limit limits -r/--recursive: add -r"
    res = rr_in(*command, "-r", "-R", "-1", cwd=ds)
    assert res.exit_code == 2, res.output
    assert "-R/--recursion-limit must be 0 or more, not -1" in one_error_line(res.stderr)
    res = rr_in(*command, "-r", "-R", "many", cwd=ds)
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_empty_source_is_a_usage_error(ds):
    res = rr_in("get", "-s", "", ".", cwd=ds)
    assert res.exit_code == 2
    assert "-s/--source names a sibling" in one_error_line(res.stderr)
