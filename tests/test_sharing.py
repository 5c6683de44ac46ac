"""Sharing: clone, subdatasets, get, drop, siblings, push (local paths and bare repositories)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import annex, commit_count, git, last_message, needs_datalad, rr


@pytest.fixture
def inputs_ds(tmp_path):
    """A standalone input dataset with annexed 'images'."""
    path = tmp_path / "imagenette"
    rr("create", str(path))
    for cls in ("cat", "dog"):
        (path / "train" / cls).mkdir(parents=True)
        for i in range(2):
            (path / "train" / cls / f"{i}.png").write_bytes(f"{cls}{i}".encode() * 100)
    rr("save", "-m", "images", cwd=path)
    return path


@pytest.fixture
def analysis(tmp_path, inputs_ds):
    path = tmp_path / "analysis"
    rr("create", "-c", "yoda", str(path))
    rr("clone", "-d", ".", str(inputs_ds), "data/raw", cwd=path)
    return path


@pytest.mark.slow
def test_clone_registers_subdataset_without_copying_content(analysis, inputs_ds):
    gm = git("config", "-f", ".gitmodules", "--list", cwd=analysis)
    assert "submodule.data/raw.path=data/raw" in gm
    sub_id = git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=inputs_ds).strip()
    assert f"submodule.data/raw.datalad-id={sub_id}" in gm
    assert last_message(analysis).strip() == "[DATALAD] Added subdataset"
    assert git("status", "--porcelain", cwd=analysis) == ""
    png = analysis / "data" / "raw" / "train" / "cat" / "0.png"
    assert png.is_symlink() and not png.exists()  # known, not copied
    whereis = annex("whereis", "train/cat/0.png", cwd=analysis / "data" / "raw")
    assert "origin" in whereis


@pytest.mark.slow
def test_run_gets_inputs_from_uninstalled_subdataset(analysis, tmp_path):
    rr("run", "-m", "count", "-i", "data/raw/train/*/*.png", "-o", "n.txt",
       "ls {inputs} | wc -l > n.txt", cwd=analysis)
    assert (analysis / "n.txt").read_text().strip() == "4"
    # a collaborator: fresh clone of the analysis, subdataset not installed yet
    rr("clone", str(analysis), str(tmp_path / "collab"))
    collab = tmp_path / "collab"
    assert not (collab / "data" / "raw" / ".git").exists()
    before = commit_count(collab)
    rr("run", "-i", "data/raw/train/cat/*.png", "-o", "cats.txt", "cat {inputs} > cats.txt",
       cwd=collab)
    assert (collab / "cats.txt").read_text().startswith("cat0")
    assert commit_count(collab) == before + 1
    assert git("status", "--porcelain", cwd=collab) == ""


@pytest.mark.slow
def test_run_output_inside_subdataset_is_saved_bottom_up(analysis):
    rr("get", "data/raw", cwd=analysis)
    rr("run", "-m", "note", "echo note > data/raw/NOTE.txt", cwd=analysis)
    sub = analysis / "data" / "raw"
    assert "[DATALAD RUNCMD] note" in last_message(sub)
    assert "data/raw" in git("show", "--name-only", "--format=", "HEAD", cwd=analysis)
    assert git("status", "--porcelain", cwd=analysis) == ""


@pytest.mark.slow
def test_get_recursive_and_drop_refuses_last_copy(analysis, inputs_ds):
    rr("get", "-r", ".", cwd=analysis)
    png = analysis / "data" / "raw" / "train" / "dog" / "1.png"
    assert png.read_bytes().startswith(b"dog1")
    rr("drop", "data/raw/train/dog/1.png", cwd=analysis)  # origin still has it
    assert not png.exists()
    proc = rr("drop", "train/dog/1.png", cwd=inputs_ds, check=False)  # the only copy
    assert proc.returncode == 1
    assert "rr: error:" in proc.stderr and "--force" in proc.stderr
    assert (inputs_ds / "train" / "dog" / "1.png").exists()
    rr("get", "data/raw/train/dog/1.png", cwd=analysis)  # a repeated get completes
    assert png.exists()


def test_get_without_any_copy_is_one_line_error(inputs_ds, tmp_path):
    rr("clone", str(inputs_ds), str(tmp_path / "c"))
    annex("drop", "--force", "train/cat/0.png", cwd=inputs_ds)
    proc = rr("get", "train/cat/0.png", cwd=tmp_path / "c", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("rr: error: git annex get failed for train/cat/0.png")
    assert "Traceback" not in proc.stderr


def test_clone_unreachable_source(tmp_path):
    proc = rr("clone", str(tmp_path / "nowhere"), str(tmp_path / "x"), check=False)
    assert proc.returncode == 1
    assert "clone source does not exist" in proc.stderr
    proc = rr("clone", "ssh://rr-test.invalid/x", str(tmp_path / "y"), check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("rr: error: cannot clone")


@pytest.mark.slow
def test_push_to_bare_sibling_and_clone_back(inputs_ds, tmp_path):
    store = tmp_path / "store.git"
    rr("siblings", "add", "origin2", str(store), cwd=inputs_ds)
    rr("save", "--version-tag", "v1", cwd=inputs_ds)
    rr("push", "--to", "origin2", cwd=inputs_ds)
    assert git("tag", cwd=store).split() == ["v1"]
    rr("clone", str(store), str(tmp_path / "back"))
    back = tmp_path / "back"
    annex("drop", "--force", ".", cwd=inputs_ds)  # only the sibling has the content now
    rr("get", "train", cwd=back)
    assert (back / "train" / "cat" / "1.png").read_bytes().startswith(b"cat1")


@pytest.mark.slow
def test_git_and_content_split(inputs_ds, tmp_path):
    rr("siblings", "add", "pub", str(tmp_path / "pub.git"), "--data-dir",
       str(tmp_path / "content"), cwd=inputs_ds)
    listing = rr("siblings", "list", cwd=inputs_ds).stdout
    assert "pub [git]" in listing and "pub-storage" in listing
    rr("push", "--to", "pub", cwd=inputs_ds)
    stored = [f for _, _, files in os.walk(tmp_path / "content") for f in files]
    assert len(stored) == 4
    rr("clone", str(tmp_path / "pub.git"), str(tmp_path / "reader"))
    annex("drop", "--force", ".", cwd=inputs_ds)
    rr("get", ".", cwd=tmp_path / "reader")
    assert (tmp_path / "reader" / "train" / "dog" / "0.png").read_bytes().startswith(b"dog0")


@pytest.mark.slow
def test_push_rejected_non_fast_forward(inputs_ds, tmp_path):
    store = tmp_path / "shared.git"
    rr("siblings", "add", "shared", str(store), cwd=inputs_ds)
    rr("push", "--to", "shared", cwd=inputs_ds)
    rr("clone", str(store), str(tmp_path / "other"))
    other = tmp_path / "other"
    (other / "theirs.txt").write_text("theirs\n")
    rr("save", "-m", "theirs", cwd=other)
    rr("push", cwd=other)
    (inputs_ds / "mine.txt").write_text("mine\n")
    rr("save", "-m", "mine", cwd=inputs_ds)
    proc = rr("push", "--to", "shared", cwd=inputs_ds, check=False)
    assert proc.returncode == 1
    assert "rejected" in proc.stderr and "Traceback" not in proc.stderr
    assert git("status", "--porcelain", cwd=inputs_ds) == ""


@pytest.mark.slow
@needs_datalad
def test_datalad_clones_and_gets_what_rr_pushed(inputs_ds, tmp_path):
    store = tmp_path / "for-datalad.git"
    rr("siblings", "add", "store", str(store), cwd=inputs_ds)
    rr("push", "--to", "store", cwd=inputs_ds)
    subprocess.run(["datalad", "clone", str(store), str(tmp_path / "dl")], check=True,
                   capture_output=True)
    subprocess.run(["datalad", "get", "train/cat"], cwd=tmp_path / "dl", check=True,
                   capture_output=True)
    assert (tmp_path / "dl" / "train" / "cat" / "0.png").read_bytes().startswith(b"cat0")


@pytest.mark.slow
@needs_datalad
def test_rr_clones_and_gets_what_datalad_pushed(tmp_path):
    src = tmp_path / "dlsrc"
    subprocess.run(["datalad", "create", str(src)], check=True, capture_output=True)
    (src / "big.dat").write_bytes(b"payload" * 1000)
    subprocess.run(["datalad", "save", "-m", "data"], cwd=src, check=True, capture_output=True)
    store = tmp_path / "dlstore.git"
    subprocess.run(["git", "init", "-q", "--bare", str(store)], check=True)
    subprocess.run(["git", "annex", "init", "-q"], cwd=store, check=True)
    subprocess.run(["datalad", "siblings", "add", "-s", "store", "--url", str(store)], cwd=src,
                   check=True, capture_output=True)
    subprocess.run(["datalad", "push", "--to", "store"], cwd=src, check=True,
                   capture_output=True)
    rr("clone", str(store), str(tmp_path / "rrclone"))
    rr("get", "big.dat", cwd=tmp_path / "rrclone")
    assert (tmp_path / "rrclone" / "big.dat").read_bytes() == b"payload" * 1000


@pytest.mark.slow
def test_save_path_inside_subdataset(analysis):
    rr("get", "data/raw", cwd=analysis)
    (analysis / "data" / "raw" / "extra.txt").write_text("extra\n")
    rr("save", "-m", "extra file", "data/raw/extra.txt", cwd=analysis)
    assert git("log", "-1", "--format=%s", cwd=analysis / "data" / "raw").strip() == "extra file"
    assert git("log", "-1", "--format=%s", cwd=analysis).strip() == "extra file"
    assert git("status", "--porcelain", cwd=analysis) == ""


@pytest.mark.slow
def test_explicit_output_inside_subdataset(analysis):
    rr("get", "data/raw", cwd=analysis)
    (analysis / "stray.txt").write_text("stray\n")
    rr("run", "--explicit", "-m", "sub output", "-o", "data/raw/derived.txt",
       "echo derived > data/raw/derived.txt", cwd=analysis)
    sub = analysis / "data" / "raw"
    assert "[DATALAD RUNCMD] sub output" in last_message(sub)
    assert "[DATALAD RUNCMD] sub output" in last_message(analysis)
    assert git("show", "--name-only", "--format=", "HEAD", cwd=analysis).split() == ["data/raw"]
    assert git("status", "--porcelain", cwd=analysis) == "?? stray.txt\n"


def test_clone_of_a_repository_whose_head_is_unborn_checks_out_the_newest_branch(ds, tmp_path):
    """DataLad's test_clone: the source's HEAD names a branch without commits; DataLad checks
    out the branch with the newest commit (rr left an empty work tree, exit 0)."""
    (ds / "old.txt").write_text("old\n")
    rr("save", "-m", "old", cwd=ds)
    git("branch", "-m", "b-older", cwd=ds)  # named so that refname order would pick it
    git("checkout", "-q", "-b", "c-newer", cwd=ds)
    (ds / "new.txt").write_text("new\n")
    git("add", "new.txt", cwd=ds)
    subprocess.run(["git", "commit", "-q", "-m", "newer"], cwd=ds, check=True,
                   env={**os.environ, "GIT_COMMITTER_DATE": "2030-01-01T00:00:00"})
    git("checkout", "-q", "-b", "a-oldest", "b-older", cwd=ds)
    bare = tmp_path / "bare.git"
    git("clone", "-q", "--bare", str(ds), str(bare), cwd=tmp_path)
    git("symbolic-ref", "HEAD", "refs/heads/unborn", cwd=bare)
    rr("clone", str(bare), str(tmp_path / "cl"), cwd=tmp_path)
    cl = tmp_path / "cl"
    assert git("branch", "--show-current", cwd=cl).strip() == "c-newer"
    assert (cl / "new.txt").is_symlink() or (cl / "new.txt").exists()
    assert git("rev-parse", "--abbrev-ref", "c-newer@{upstream}", cwd=cl).strip() == \
        "origin/c-newer"


def test_sibling_url_with_spaces(ds_with_data, tmp_path):
    """DataLad's test_siblings: a URL with a space is kept whole (rr split `git remote -v`
    output on whitespace and cut it)."""
    store = tmp_path / "with space" / "store dir.git"
    rr("siblings", "add", "store", str(store), cwd=ds_with_data)
    listing = rr("siblings", "list", cwd=ds_with_data).stdout
    assert listing.splitlines() == [f"store [git] {store}"]
    rr("push", "--to", "store", cwd=ds_with_data)
    assert "master" in git("branch", cwd=store)
    assert "[store]" in git("annex", "whereis", "data/a.txt", cwd=ds_with_data)


def test_clone_source_with_a_tilde(ds, tmp_path):
    """DataLad's test_clone: '~' in a clone source is the home directory."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text((Path(os.environ["HOME"]) / ".gitconfig").read_text())
    git("clone", "-q", str(ds), str(home / "src"), cwd=tmp_path)
    proc = rr("clone", "~/src", str(tmp_path / "cl"), cwd=tmp_path,
              env={"HOME": str(home)})
    assert proc.returncode == 0
    assert git("remote", "get-url", "origin", cwd=tmp_path / "cl").strip() == str(home / "src")


def test_siblings_list_shows_every_special_remote(ds_with_data, tmp_path):
    """DataLad's test_siblings: special remotes are siblings too (rr listed rsync ones only)."""
    where = tmp_path / "dirremote"
    where.mkdir()
    annex("initremote", "dr", "type=directory", f"directory={where}", "encryption=none",
          cwd=ds_with_data)
    assert f"dr [annex-special] {where}" in rr("siblings", "list", cwd=ds_with_data).stdout


def test_cloning_again_into_a_clone_of_the_same_source_is_nothing_to_do(ds_with_data, tmp_path):
    """DataLad's test_clone: a second clone of the same source to the same place is notneeded
    (rr: "destination exists and is not empty"); another source there is still an error."""
    target = tmp_path / "cl"
    rr("clone", str(ds_with_data), str(target), cwd=tmp_path)
    head = git("rev-parse", "HEAD", cwd=target)
    again = rr("clone", str(ds_with_data), str(target), "--json", cwd=tmp_path)
    record = json.loads(again.stdout)
    assert (record["status"], record["path"]) == ("notneeded", str(target))
    assert git("rev-parse", "HEAD", cwd=target) == head
    other = tmp_path / "other"
    rr("create", str(other), cwd=tmp_path)
    proc = rr("clone", str(other), str(target), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"rr: error: destination exists and is not empty: {target}"]


@pytest.mark.slow
def test_get_of_several_paths_one_missing_fetches_the_others(inputs_ds, tmp_path):
    """DataLad's test_get.py (test_get_multiple_files): a path that does not exist is
    reported and fails the get, and does not keep the other paths from being fetched."""
    clone = tmp_path / "clone"
    rr("clone", str(inputs_ds), str(clone))
    proc = rr("get", "train/cat/0.png", "nope", "train/dog", cwd=clone, check=False)
    assert proc.returncode == 1
    assert "rr: error: path does not exist: nope" in proc.stderr
    assert "content is here" not in proc.stderr + proc.stdout
    for rel in ("train/cat/0.png", "train/dog/0.png", "train/dog/1.png"):
        assert (clone / rel).exists(), rel  # fetched nonetheless
    assert not (clone / "train/cat/1.png").exists()


@pytest.mark.slow
def test_clone_of_a_clone_reaches_content_at_the_origins_origin(inputs_ds, tmp_path):
    """As DataLad's clone does for a local source (its origin becomes origin-2): content the
    source only knows the location of is got from the source's own origin."""
    first = tmp_path / "first"
    rr("clone", str(inputs_ds), str(first))          # knows where content is, has none
    second = tmp_path / "second"
    rr("clone", str(first), str(second))
    remotes = git("remote", "-v", cwd=second)
    assert f"origin-2\t{inputs_ds}" in remotes
    rr("get", "train/cat/0.png", cwd=second)
    assert (second / "train/cat/0.png").read_bytes() == b"cat0" * 100
    assert not (first / "train/cat/0.png").exists()   # not via the first clone


@pytest.mark.slow
def test_get_no_data_installs_subdatasets_only(analysis, tmp_path):
    """DataLad's get -n (test_get.py, test_install_recursive's -n cases): the subdatasets on
    the way are installed, no content is fetched."""
    collab = tmp_path / "collab"
    rr("clone", str(analysis), str(collab))
    png = collab / "data" / "raw" / "train" / "cat" / "0.png"
    proc = rr("get", "-n", "data/raw/train/cat/0.png", cwd=collab)
    assert "subdatasets installed" in proc.stderr
    assert (collab / "data" / "raw" / ".git").exists()
    assert png.is_symlink() and not png.exists()  # installed, content not fetched
    rr("get", "data/raw/train/cat/0.png", cwd=collab)
    assert png.exists()


@pytest.mark.slow
def test_drop_what_datasets_and_reckless(analysis):
    """DataLad's drop --what datasets/all and --reckless (distributed/tests/test_drop.py):
    a subdataset is uninstalled (registration kept, an empty directory stays) only when
    nothing of it exists only here; --reckless kill drops it anyway; the dataset itself is
    never dropped this way."""
    rr("get", "data/raw/train/cat/0.png", cwd=analysis)
    proc = rr("drop", "--what", "datasets", "data/raw", cwd=analysis)
    assert "uninstalled data/raw" in proc.stderr
    assert (analysis / "data" / "raw").is_dir() and not any((analysis / "data/raw").iterdir())
    assert git("status", "--porcelain", cwd=analysis) == ""
    subs = [json.loads(x) for x in rr("subdatasets", "--json", cwd=analysis).stdout.splitlines()]
    assert [(s["path"], s["state"]) for s in subs] == [("data/raw", "absent")]
    rr("get", "-n", "data/raw", cwd=analysis)
    (analysis / "data" / "raw" / "notes.txt").write_text("only here\n")
    refused = rr("drop", "--what", "all", "data/raw", cwd=analysis, check=False)
    assert refused.returncode == 1 and "it has unsaved changes (notes.txt)" in refused.stderr
    assert (analysis / "data" / "raw" / "notes.txt").exists()
    rr("drop", "--what", "datasets", "--reckless", "kill", "data/raw", cwd=analysis)
    assert not (analysis / "data" / "raw" / "notes.txt").exists()
    for bad, code in ((["--what", "datasets", "."], 2), (["--what", "everything"], 2),
                      (["--reckless", "lots"], 2)):
        proc = rr("drop", *bad, cwd=analysis, check=False)
        assert proc.returncode == code and "Traceback" not in proc.stderr
