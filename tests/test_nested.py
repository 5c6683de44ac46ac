"""Nested datasets: rr create -d SUPER PATH, rr save of embedded repositories, against DataLad."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, last_message, needs_datalad, rr


def _gitmodules(root: Path) -> dict[str, dict[str, str]]:
    """.gitmodules as {section name: {key: value}}, ids blanked out."""
    out: dict[str, dict[str, str]] = {}
    for line in git("config", "-f", ".gitmodules", "--list", cwd=root).splitlines():
        key, _, value = line.partition("=")
        name, _, field = key[len("submodule."):].rpartition(".")
        out.setdefault(name, {})[field] = "ID" if field == "datalad-id" else value
    return out


def _changed(root: Path, rev: str = "HEAD") -> list[str]:
    return sorted(git("show", "--name-only", "--format=", rev, cwd=root).split())


def _datalad(*args: str, cwd: Path) -> None:
    subprocess.run(["datalad", *args], cwd=cwd, check=True, capture_output=True, text=True)


def test_create_with_dataset_registers_and_commits(ds):
    (ds / "unrelated.txt").write_text("left alone\n")
    rr("create", "-d", ".", "sub", cwd=ds)
    sub_id = git("config", "-f", "sub/.datalad/config", "datalad.dataset.id", cwd=ds).strip()
    assert git("config", "-f", ".gitmodules", "submodule.sub.datalad-id", cwd=ds).strip() == sub_id
    assert _gitmodules(ds) == {"sub": {"path": "sub", "url": "./sub", "datalad-id": "ID"}}
    assert last_message(ds).strip() == "[DATALAD] Created subdataset"
    assert _changed(ds) == [".gitmodules", "sub"]
    # the gitlink is the new dataset's HEAD; only the unrelated file is left unsaved
    assert git("ls-files", "-s", "sub", cwd=ds).split()[1] == git("rev-parse", "HEAD",
                                                                   cwd=ds / "sub").strip()
    assert git("status", "--porcelain", cwd=ds).split() == ["??", "unrelated.txt"]
    assert git("config", "submodule.sub.active", cwd=ds).strip() == "true"


def test_create_with_dataset_from_elsewhere_and_procedures(ds):
    # PATH is relative to the working directory, as DataLad takes it with -d
    rr("create", "-d", "ds", "-c", "text2git", "ds/data/raw", cwd=ds.parent)
    assert _gitmodules(ds) == {"data/raw": {"path": "data/raw", "url": "./data/raw",
                                            "datalad-id": "ID"}}
    # the procedure's commit is what the superdataset records: nothing left to save
    assert git("status", "--porcelain", cwd=ds) == ""
    assert git("ls-files", "-s", "data/raw", cwd=ds).split()[1] == git(
        "rev-parse", "HEAD", cwd=ds / "data" / "raw").strip()


def test_create_with_dataset_refuses_paths_not_directly_inside(ds):
    before = git("rev-parse", "HEAD", cwd=ds).strip()
    r = rr("create", "-d", ".", "../outside", cwd=ds, check=False)
    assert r.returncode != 0 and "rr: error:" in r.stderr and "Traceback" not in r.stderr
    assert not (ds.parent / "outside").exists()
    rr("create", "-d", ".", "sub", cwd=ds)
    r = rr("create", "-d", ".", "sub/deeper", cwd=ds, check=False)
    assert r.returncode != 0 and "another dataset" in r.stderr
    assert not (ds / "sub" / "deeper").exists()
    assert git("rev-list", "--count", f"{before}..HEAD", cwd=ds).strip() == "1"


def test_save_registers_dataset_created_inside(ds):
    rr("create", "sub", cwd=ds)
    r = rr("save", "-m", "add sub", cwd=ds)
    assert "nothing to save" not in r.stderr
    assert _gitmodules(ds) == {"sub": {"path": "sub", "url": "./sub", "datalad-id": "ID"}}
    assert _changed(ds) == [".gitmodules", "sub"]
    assert last_message(ds).strip() == "add sub"
    assert git("status", "--porcelain", cwd=ds) == ""
    assert "nothing to save" in rr("save", cwd=ds).stderr
    # and by its path
    rr("create", "other", cwd=ds)
    rr("save", "other", cwd=ds)
    assert _changed(ds) == [".gitmodules", "other"]


def test_save_embedded_git_repo_bottom_up(ds):
    emb = ds / "emb"
    emb.mkdir()
    git("init", "-q", cwd=emb)
    (emb / "f.txt").write_text("inside\n")
    rr("save", "-r", "-m", "with emb", cwd=ds)
    # saved inside first (same message), then registered here; a plain repo has no id
    assert last_message(emb).strip() == "with emb"
    assert git("status", "--porcelain", cwd=emb) == ""
    assert _gitmodules(ds) == {"emb": {"path": "emb", "url": "./emb"}}
    assert git("status", "--porcelain", cwd=ds) == ""
    # a change inside is saved bottom-up again
    (emb / "g.txt").write_text("more\n")
    rr("save", "-r", "-m", "more", cwd=ds)
    assert last_message(emb).strip() == "more" and last_message(ds).strip() == "more"
    assert git("status", "--porcelain", cwd=ds) == ""


def test_save_refuses_repo_without_commit(ds):
    (ds / "empty").mkdir()
    git("init", "-q", cwd=ds / "empty")
    r = rr("save", cwd=ds, check=False)
    assert r.returncode != 0 and "without any commit" in r.stderr
    assert "Traceback" not in r.stderr


def test_run_that_makes_a_repository_registers_it(ds):
    rr("run", "git init -q emb && echo x > emb/f && git -C emb add f && "
              "git -C emb commit -qm inner", cwd=ds)
    assert "[DATALAD RUNCMD]" in last_message(ds)
    assert _changed(ds) == [".gitmodules", "emb"]
    assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.slow
@needs_datalad
def test_same_as_datalad(tmp_path):
    """What rr writes for a nested dataset equals what DataLad writes, both ways."""
    for tool in ("rr", "datalad"):
        top = tmp_path / tool
        rr("create", str(top))
        if tool == "rr":
            rr("create", "-d", ".", "a", cwd=top)
            rr("create", "b", cwd=top)
            rr("save", cwd=top)
        else:
            _datalad("create", "-d", ".", "a", cwd=top)
            _datalad("create", "b", cwd=top)
            _datalad("save", cwd=top)
    r, d = tmp_path / "rr", tmp_path / "datalad"
    assert _gitmodules(r) == _gitmodules(d)
    assert [last_message(r, f"HEAD~{i}") for i in (1, 0)] == \
        [last_message(d, f"HEAD~{i}") for i in (1, 0)]
    assert _changed(r, "HEAD~1") == _changed(d, "HEAD~1")
    assert _changed(r) == _changed(d)
    # DataLad sees rr's subdatasets with their ids
    out = subprocess.run(["datalad", "-f", "json", "subdatasets"], cwd=r, check=True,
                         capture_output=True, text=True).stdout
    found = {Path(x["path"]).name: x.get("gitmodule_datalad-id") for x in map(json.loads,
                                                                              out.splitlines())}
    assert found == {
        "a": git("config", "-f", "a/.datalad/config", "datalad.dataset.id", cwd=r).strip(),
        "b": git("config", "-f", "b/.datalad/config", "datalad.dataset.id", cwd=r).strip()}


def test_save_of_nested_new_datasets_registers_each_in_its_parent(ds):
    """DataLad's test_save: `save s1 s1/s2 s1/s2/s3` of datasets created inside each other
    registers s1 here, s2 in s1, s3 in s2 (rr said "nothing to save")."""
    for sub in ("s1", "s1/s2", "s1/s2/s3"):
        rr("create", sub, cwd=ds)
    rr("save", "-m", "nested", "s1", "s1/s2", "s1/s2/s3", cwd=ds)
    for parent, child in ((ds, "s1"), (ds / "s1", "s2"), (ds / "s1" / "s2", "s3")):
        assert git("config", "-f", ".gitmodules", f"submodule.{child}.path",
                   cwd=parent).strip() == child
        assert git("rev-parse", f"HEAD:{child}", cwd=parent).strip() == \
            git("rev-parse", "HEAD", cwd=parent / child).strip()
        assert git("status", "--porcelain", cwd=parent) == ""


def test_a_clone_saved_inside_is_registered_with_its_origin(ds, tmp_path):
    """DataLad's test_save: a clone found inside is registered with its origin URL, so that a
    fresh clone of the superdataset can install it and get its content (rr recorded ./other,
    and get failed: "not available")."""
    src = tmp_path / "src"
    rr("create", str(src), cwd=tmp_path)
    (src / "d.dat").write_text("data\n")
    rr("save", "-m", "d", cwd=src)
    git("clone", "-q", str(src), "other", cwd=ds)
    rr("save", "-m", "add other", "other", cwd=ds)
    assert git("config", "-f", ".gitmodules", "submodule.other.url", cwd=ds).strip() == str(src)
    fresh = tmp_path / "fresh"
    rr("clone", str(ds), str(fresh), cwd=tmp_path)
    rr("get", "other/d.dat", cwd=fresh)
    assert (fresh / "other" / "d.dat").read_text() == "data\n"
