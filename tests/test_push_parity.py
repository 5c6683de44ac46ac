"""rr push as DataLad's test_push.py expects it: a sibling's preferred content
(``git annex wanted``) limits what --data auto copies (test_push_wanted), and
``remote.NAME.datalad-publish-depends`` naming a git sibling pushes there first, history and
content (test_gh1426 / test_push_recursive's publish-depends cases)."""

from __future__ import annotations

import pytest

from tests.conftest import annex, git, rr


@pytest.fixture
def ds_with_files(tmp_path):
    ds = tmp_path / "ds"
    rr("create", str(ds))
    (ds / "a.keep").write_text("keep me\n" * 50)
    (ds / "b.skip").write_text("skip me\n" * 50)
    rr("save", "-m", "two files", cwd=ds)
    return ds


def _has_content(ds, sibling, path) -> bool:
    out = annex("whereis", "--json", path, cwd=ds)
    return f'"description":"[{sibling}]"' in out.replace(" ", "") or \
        f"[{sibling}]" in out


@pytest.mark.slow
def test_push_copies_only_what_the_sibling_wants(ds_with_files, tmp_path):
    ds = ds_with_files
    rr("siblings", "add", "store", str(tmp_path / "store.git"), cwd=ds)
    annex("wanted", "store", "include=*.keep", cwd=ds)
    proc = rr("push", "--to", "store", cwd=ds)
    assert "1 file(s)" in proc.stderr
    assert _has_content(ds, "store", "a.keep")
    assert not _has_content(ds, "store", "b.skip")
    # --data anything sends every version of everything, wanted or not
    rr("push", "--to", "store", "--data", "anything", cwd=ds)
    assert _has_content(ds, "store", "b.skip")


@pytest.mark.slow
def test_push_without_wanted_copies_everything(ds_with_files, tmp_path):
    ds = ds_with_files
    rr("siblings", "add", "store", str(tmp_path / "store.git"), cwd=ds)
    rr("push", "--to", "store", cwd=ds)
    assert _has_content(ds, "store", "a.keep") and _has_content(ds, "store", "b.skip")


@pytest.mark.slow
def test_publish_depends_on_a_git_sibling_pushes_there_first(ds_with_files, tmp_path):
    ds = ds_with_files
    rr("siblings", "add", "mirror", str(tmp_path / "mirror.git"), cwd=ds)
    rr("siblings", "add", "main", str(tmp_path / "main.git"), cwd=ds)
    git("config", "--add", "remote.main.datalad-publish-depends", "mirror", cwd=ds)
    proc = rr("push", "--to", "main", cwd=ds)
    assert "after mirror" in proc.stderr
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    branch = git("branch", "--show-current", cwd=ds).strip()
    for bare in ("mirror.git", "main.git"):
        assert git("rev-parse", f"refs/heads/{branch}", cwd=tmp_path / bare).strip() == head
    assert _has_content(ds, "mirror", "a.keep") and _has_content(ds, "main", "a.keep")
    # a clone of the mirror gets the content from it
    rr("clone", str(tmp_path / "mirror.git"), str(tmp_path / "clone"))
    rr("get", "a.keep", cwd=tmp_path / "clone")
    assert (tmp_path / "clone" / "a.keep").read_text().startswith("keep me")


def test_publish_depends_cycle_is_one_line(ds_with_files, tmp_path):
    ds = ds_with_files
    git("remote", "add", "x", str(tmp_path / "x.git"), cwd=ds)
    git("remote", "add", "y", str(tmp_path / "y.git"), cwd=ds)
    git("config", "remote.x.datalad-publish-depends", "y", cwd=ds)
    git("config", "remote.y.datalad-publish-depends", "x", cwd=ds)
    proc = rr("push", "--to", "x", cwd=ds, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("rr: error: the siblings' publish-depends form a cycle "
                                  "(x -> y -> x): nothing was pushed")
    assert "Traceback" not in proc.stderr


def test_siblings_remove(ds_with_files, tmp_path):
    """DataLad's siblings remove (test_siblings.py): the sibling is forgotten here, its
    remote-tracking branches too; an unknown name is one line; the sibling is untouched."""
    ds = ds_with_files
    rr("siblings", "add", "store", str(tmp_path / "store.git"), cwd=ds)
    rr("push", "--to", "store", cwd=ds)
    rr("siblings", "remove", "-s", "store", cwd=ds)
    assert "store" not in git("remote", cwd=ds).split()
    assert not git("for-each-ref", "refs/remotes/store", cwd=ds).strip()
    assert git("rev-parse", "HEAD", cwd=tmp_path / "store.git").strip()  # still there
    proc = rr("siblings", "remove", "store", cwd=ds, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("rr: error: unknown sibling: store")


@pytest.mark.slow
def test_push_recursive_pushes_subdatasets_first(tmp_path):
    """DataLad's push -r (test_push.py::test_push_recursive): each installed subdataset is
    pushed to its own sibling of that name, before the superdataset; one without such a
    sibling is passed over and said so."""
    sup = tmp_path / "super"
    rr("create", str(sup))
    rr("create", "-d", str(sup), str(sup / "sub"))
    rr("create", "-d", str(sup), str(sup / "other"))
    (sup / "sub" / "data.bin").write_text("content\n" * 40)
    rr("save", "-m", "data", cwd=sup)
    rr("siblings", "add", "store", str(tmp_path / "store" / "super.git"), cwd=sup)
    rr("siblings", "add", "store", str(tmp_path / "store" / "sub.git"), cwd=sup / "sub")
    proc = rr("push", "-r", "--to", "store", cwd=sup)
    assert "rr: other: no sibling store" in proc.stderr
    assert "rr: sub: pushed" in proc.stderr
    for repo, there in ((sup, "super.git"), (sup / "sub", "sub.git")):
        branch = git("branch", "--show-current", cwd=repo).strip()
        assert git("rev-parse", f"refs/heads/{branch}", cwd=tmp_path / "store" / there) \
            .strip() == git("rev-parse", "HEAD", cwd=repo).strip()
    out = annex("whereis", "data.bin", cwd=sup / "sub")
    assert "[store]" in out


@pytest.mark.slow
def test_get_and_drop_json(ds_with_files, tmp_path):
    """get --json: one object per file fetched, then the result; drop --json: the result
    with the count and git-annex's records."""
    import json

    clone = tmp_path / "clone"
    rr("clone", str(ds_with_files), str(clone))
    lines = [json.loads(x) for x in rr("get", "--json", "a.keep", cwd=clone).stdout.splitlines()]
    assert [(x.get("file"), x.get("success")) for x in lines[:-1]] == [("a.keep", True)]
    assert lines[-1] == {"action": "get", "status": "ok", "paths": ["a.keep"]}
    dropped = json.loads(rr("drop", "--json", "a.keep", cwd=clone).stdout)
    assert dropped["dropped"] == 1 and dropped["records"][0]["file"] == "a.keep"
