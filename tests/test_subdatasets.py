"""rr subdatasets, rr remove, and relative subdataset sources (with real git, git-annex and
DataLad)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import annex, git, last_message, needs_datalad, rr


def _objects(ds: Path) -> list[Path]:
    return [p for p in (ds / ".git" / "annex" / "objects").rglob("*") if p.is_file()]


def _build_pair(root: Path) -> None:
    """root/imagenette (a dataset with an annexed file and a subdataset meta) and root/proj
    with it registered by `rr clone -d . ../imagenette data/raw` and its content got."""
    data = root / "imagenette"
    rr("create", str(data))
    (data / "a.txt").write_text("alpha\n")
    rr("save", "-m", "data", cwd=data)
    rr("create", "-d", str(data), str(data / "meta"))
    proj = root / "proj"
    rr("create", str(proj))
    rr("clone", "-d", ".", "../imagenette", "data/raw", cwd=proj)
    rr("get", "data/raw/a.txt", cwd=proj)


@pytest.fixture(scope="session")
def _pair_template(tmp_path_factory, _isolated_home) -> Path:
    root = tmp_path_factory.mktemp("pair")
    _build_pair(root)
    return root


@pytest.fixture
def pair(tmp_path, _pair_template) -> tuple[Path, Path]:
    """A copy of the pair at tmp_path/a: (imagenette, proj); the subdataset's origin set to
    the copy of imagenette, as a clone made there would have it."""
    root = tmp_path / "a"
    shutil.copytree(_pair_template, root, symlinks=True)
    data, proj = root / "imagenette", root / "proj"
    git("remote", "set-url", "origin", str(data), cwd=proj / "data" / "raw")
    git("config", "submodule.data/raw.url", str(data), cwd=proj)
    return data, proj


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _recorded(proj: Path, path: str) -> str:
    return git("ls-files", "-s", "--", path, cwd=proj).split()[1]


# --- rr subdatasets ---------------------------------------------------------------------


@pytest.mark.slow
def test_subdatasets_lists_present_absent_recursive_and_json(pair):
    data, proj = pair

    lines = rr("subdatasets", cwd=proj).stdout.splitlines()
    assert len(lines) == 1 and lines[0].split()[:2] == ["present", "data/raw"]
    assert lines[0].split()[-1] == "../imagenette"

    recs = _json_lines(rr("subdatasets", "-r", "--json", cwd=proj).stdout)
    assert [(r["path"], r["state"]) for r in recs] == [("data/raw", "present"),
                                                        ("data/raw/meta", "absent")]
    top, meta = recs
    assert top["gitshasum"] == _recorded(proj, "data/raw")
    assert top["gitmodule_url"] == "../imagenette"
    data_id = git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=data).strip()
    assert top["id"] == top["gitmodule_datalad-id"] == data_id
    assert meta["gitshasum"] == _recorded(proj / "data/raw", "meta")
    assert meta["id"] and meta["type"] == "dataset" and meta["action"] == "subdataset"

    # paths select; a path inside an installed subdataset is followed with -r
    assert [r["path"] for r in _json_lines(rr("subdatasets", "--json", "data",
                                              cwd=proj).stdout)] == ["data/raw"]
    assert [r["path"] for r in _json_lines(rr("subdatasets", "--json", "-r", "data/raw/meta",
                                              cwd=proj).stdout)] == ["data/raw/meta"]
    assert rr("subdatasets", "--json", "data/raw/meta", cwd=proj).stdout == ""


@needs_datalad
def test_subdatasets_fields_match_datalad(pair):
    data, proj = pair
    ours = {r["path"]: r for r in _json_lines(rr("subdatasets", "-r", "--json",
                                                 cwd=proj).stdout)}
    out = subprocess.run(["datalad", "-f", "json", "subdatasets", "-r"], cwd=proj, check=True,
                         capture_output=True, text=True).stdout
    theirs = {str(Path(r["path"]).relative_to(proj)): r for r in _json_lines(out)}
    assert set(ours) == set(theirs) == {"data/raw", "data/raw/meta"}
    for path, r in theirs.items():
        for key in ("state", "gitshasum", "gitmodule_url", "gitmodule_name",
                    "gitmodule_datalad-id", "type", "parentds"):
            assert ours[path][key] == r[key], (path, key)


def test_subdatasets_errors(tmp_path, ds):
    proc = rr("subdatasets", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "rr: error: not inside a dataset" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = rr("subdatasets", str(tmp_path), cwd=ds, check=False)
    assert proc.returncode == 1 and "rr: error: path is outside the dataset" in proc.stderr
    proc = rr("subdatasets", "nothere", cwd=ds, check=False)
    assert proc.returncode == 1 and "rr: error: path does not exist: nothere" in proc.stderr
    assert rr("subdatasets", cwd=ds).stdout == ""  # none registered: nothing, success


# --- rr remove: files -------------------------------------------------------------------


def test_remove_annexed_file_keeps_the_only_copy_unless_force(ds_with_data):
    ds = ds_with_data
    before = _objects(ds)
    proc = rr("remove", "data/a.txt", cwd=ds)
    assert "removed  data/a.txt" in proc.stdout and "kept in the local annex" in proc.stdout
    assert not (ds / "data" / "a.txt").exists()
    assert last_message(ds).strip() == "[DATALAD] removed content"
    assert git("status", "--porcelain", cwd=ds) == ""
    assert len(_objects(ds)) == len(before)  # the only copy is not lost
    # back from the history, content and all
    git("checkout", "HEAD~1", "--", "data/a.txt", cwd=ds)
    assert (ds / "data" / "a.txt").read_text() == "alpha\n"
    git("reset", "-q", "--hard", cwd=ds)

    rec = _json_lines(rr("remove", "--force", "--json", "-m", "drop b", "data/b.txt",
                         cwd=ds).stdout)
    assert rec == [{"action": "remove", "path": "data/b.txt", "status": "ok",
                    "state": "removed", "type": "file", "message": rec[0]["message"],
                    "files": 1, "subdatasets": [], "dropped": 1, "kept": 0}]
    assert last_message(ds).strip() == "drop b"
    assert len(_objects(ds)) == len(before) - 1


def test_remove_drops_content_that_is_elsewhere_but_not_what_another_file_uses(ds_with_data,
                                                                               tmp_path):
    (ds_with_data / "data" / "same-as-a.txt").write_text("alpha\n")
    (ds_with_data / "keep").mkdir()
    (ds_with_data / "keep" / "also-a.txt").write_text("alpha\n")
    rr("save", "-m", "copies", cwd=ds_with_data)
    clone = tmp_path / "clone"
    rr("clone", str(ds_with_data), str(clone))
    rr("get", ".", cwd=clone)
    assert len(_objects(clone)) == 3  # a (three files), b, code/count.sh

    recs = _json_lines(rr("remove", "--json", "data", cwd=clone).stdout)
    assert [(r["path"], r["type"], r["files"]) for r in recs] == [("data", "directory", 3)]
    assert recs[0]["dropped"] == 1 and recs[0]["kept"] == 2  # b dropped; a's key still used
    assert not (clone / "data").exists()
    assert (clone / "keep" / "also-a.txt").read_text() == "alpha\n"
    assert len(_objects(clone)) == 2
    assert git("status", "--porcelain", cwd=clone) == ""
    assert git("show", "--stat", "--format=", "HEAD", cwd=clone).count("data/") == 3


def test_remove_refuses_unsaved_changes(ds):
    (ds / "notes.txt").write_text("one\n")
    rr("save", "-m", "notes", cwd=ds)
    annex("unlock", "notes.txt", cwd=ds)
    (ds / "notes.txt").write_text("two\n")
    head = git("rev-parse", "HEAD", cwd=ds)
    proc = rr("remove", "notes.txt", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "rr: error: refusing to remove notes.txt: it has unsaved changes" in proc.stderr
    assert "--force" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=ds) == head and (ds / "notes.txt").exists()
    rr("remove", "--force", "notes.txt", cwd=ds)
    assert not (ds / "notes.txt").exists() and git("rev-parse", "HEAD", cwd=ds) != head


def test_remove_refuses_a_directory_with_untracked_files(ds_with_data):
    """As DataLad: a directory holding files never saved is not removed (rr removed the
    tracked files, left the others and exited 0)."""
    (ds_with_data / "data" / "mine.txt").write_text("never saved\n")
    head = git("rev-parse", "HEAD", cwd=ds_with_data)
    proc = rr("remove", "data", cwd=ds_with_data, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == ("rr: error: refusing to remove data/mine.txt: it is "
                                           "untracked (never saved)")
    assert git("rev-parse", "HEAD", cwd=ds_with_data) == head
    assert (ds_with_data / "data" / "a.txt").exists()
    assert (ds_with_data / "data" / "mine.txt").exists()
    (ds_with_data / "data" / "mine.txt").unlink()
    rr("remove", "--force", "data", cwd=ds_with_data)  # --force: as before
    assert not (ds_with_data / "data").exists()


def test_remove_errors(tmp_path, ds):
    (ds / "untracked.txt").write_text("x\n")
    for args, code, text in [
        ((), 2, "Missing argument"),
        (("nothere",), 1, "rr: error: path does not exist: nothere"),
        (("untracked.txt",), 1, "rr: error: not tracked in the dataset: untracked.txt"),
        ((str(tmp_path),), 1, "rr: error: path is outside the dataset"),
        (("../outside",), 1, "rr: error: path is outside the dataset"),
        ((".",), 2, "rr: error: rr remove does not remove the dataset itself"),
        (("--reckless", "availability", "x"), 2, "--reckless"),
    ]:
        proc = rr("remove", *args, cwd=ds, check=False)
        assert proc.returncode == code, (args, proc.stderr)
        assert text in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert (ds / "untracked.txt").exists()
    proc = rr("remove", "x", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "rr: error: not inside a dataset" in proc.stderr


# --- rr remove: subdatasets -------------------------------------------------------------


def test_remove_subdataset_unregisters_and_deletes_it(pair):
    data, proj = pair
    recs = _json_lines(rr("remove", "--json", "data/raw", cwd=proj).stdout)
    assert [(r["path"], r["type"]) for r in recs] == [("data/raw", "dataset")]
    assert not (proj / "data").exists()
    assert "data/raw" not in (proj / ".gitmodules").read_text()
    assert git("ls-files", "-s", cwd=proj).count("160000") == 0
    assert subprocess.run(["git", "config", "--get-regexp", "^submodule"], cwd=proj,
                          capture_output=True).returncode == 1
    assert git("status", "--porcelain", cwd=proj) == ""
    assert last_message(proj).strip() == "[DATALAD] removed content"
    assert (data / "a.txt").read_text() == "alpha\n"  # the source is untouched


def test_remove_subdataset_refuses_to_lose_its_last_copies(pair):
    data, proj = pair
    head = git("rev-parse", "HEAD", cwd=proj)
    # the source loses the content: the subdataset holds the last copy
    annex("drop", "--force", "a.txt", cwd=data)
    proc = rr("remove", "data/raw", cwd=proj, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "rr: error: refusing to remove the subdataset data/raw: the content of a.txt" \
        in proc.stderr and "--force" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=proj) == head
    assert (proj / "data" / "raw" / "a.txt").read_text() == "alpha\n"

    # a commit no sibling has, and unsaved changes
    sub = proj / "data" / "raw"
    (sub / "new.txt").write_text("new\n")
    proc = rr("remove", "data/raw", cwd=proj, check=False)
    assert "the subdataset data/raw: it has unsaved changes (new.txt)" in proc.stderr
    rr("save", "-m", "new", cwd=sub)
    proc = rr("remove", "data/raw", cwd=proj, check=False)
    assert proc.returncode == 1
    assert "the subdataset data/raw: 1 commit(s) of it are on no sibling" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=proj) == head and (sub / "new.txt").exists()

    rr("remove", "--reckless", "kill", "data/raw", cwd=proj)
    assert not sub.exists() and git("rev-parse", "HEAD", cwd=proj) != head


def test_remove_in_a_subdataset_and_of_a_nested_one(pair):
    data, proj = pair
    (proj / "sets").mkdir()
    rr("create", str(proj / "sets" / "inner"))
    rr("save", "-m", "inner", cwd=proj)
    recs = _json_lines(rr("remove", "--json", "data/raw/a.txt", "data/raw/meta",
                          cwd=proj).stdout)
    assert [(r["path"], r["type"], r["dropped"]) for r in recs] == [
        ("data/raw/a.txt", "file", 1), ("data/raw/meta", "dataset", 0)]  # meta is absent
    assert git("status", "--porcelain", cwd=proj) == ""
    assert git("ls-files", "-s", cwd=proj / "data/raw").count("a.txt") == 0
    assert "meta" not in git("ls-files", "-s", cwd=proj / "data/raw")
    assert "meta" not in (proj / "data" / "raw" / ".gitmodules").read_text()
    assert last_message(proj / "data/raw").strip() == "[DATALAD] removed content"
    assert _recorded(proj, "data/raw") == git("rev-parse", "HEAD", cwd=proj / "data/raw").strip()
    # a directory holding a subdataset: the subdataset (a commit only here) is refused
    proc = rr("remove", "sets", cwd=proj, check=False)
    assert proc.returncode == 1 and "1 commit(s) of it are on no sibling" in proc.stderr


# --- relative sources -------------------------------------------------------------------


def test_relative_source_survives_moving_the_superdataset(tmp_path, pair):
    _, proj = pair
    assert git("config", "-f", ".gitmodules", "submodule.data/raw.url",
               cwd=proj).strip() == "../imagenette"
    shutil.move(tmp_path / "a", tmp_path / "b")
    proj = tmp_path / "b" / "proj"
    shutil.rmtree(proj / "data" / "raw")
    (proj / "data" / "raw").mkdir()
    proc = rr("get", "data/raw/a.txt", cwd=proj)
    assert (proj / "data" / "raw" / "a.txt").read_text() == "alpha\n"
    assert f"installed subdataset data/raw from {tmp_path / 'b' / 'imagenette'}" in proc.stderr


@pytest.mark.slow
def test_clone_installs_from_the_sibling_when_the_source_lacks_the_commit(tmp_path, pair):
    data, proj = pair
    pub = tmp_path / "pub"
    pub.mkdir()
    git("clone", "-q", "--bare", str(data), str(pub / "imagenette"), cwd=tmp_path)
    sub = proj / "data" / "raw"
    (sub / "b.txt").write_text("beta\n")
    rr("save", "-m", "more data", "data/raw/b.txt", cwd=proj)
    rr("siblings", "add", "origin", str(pub / "proj"), cwd=proj)
    rr("push", "--to", "origin", cwd=proj)
    rr("siblings", "add", "pub", str(pub / "proj" / "data" / "raw"), cwd=sub)
    rr("push", "--to", "pub", cwd=sub)

    clone = tmp_path / "elsewhere" / "clone"
    rr("clone", str(pub / "proj"), str(clone))
    proc = rr("get", "data/raw", cwd=clone)
    assert (clone / "data" / "raw" / "b.txt").read_text() == "beta\n"
    assert git("rev-parse", "HEAD", cwd=clone / "data/raw").strip() == \
        _recorded(clone, "data/raw")
    assert f"from {pub / 'proj' / 'data' / 'raw'} (beside the superdataset on its sibling " \
           "origin)" in proc.stderr
    assert f"passed over: {pub / 'imagenette'} (lacks the recorded commit" in proc.stderr


@pytest.mark.slow
def test_install_fetches_a_recorded_commit_on_no_branch_by_its_id(tmp_path, pair):
    """As DataLad's get (test_get.py, a subdataset whose recorded commit is not on a branch
    of its source): the commit is fetched by its id."""
    data, proj = pair
    sub = proj / "data" / "raw"
    (sub / "b.txt").write_text("beta\n")  # in git: the source has what the commit needs
    git("-c", "annex.largefiles=nothing", "add", "b.txt", cwd=sub)
    git("commit", "-qm", "more data", cwd=sub)
    rr("save", "-m", "more data", "data/raw", cwd=proj)
    recorded = _recorded(proj, "data/raw")
    # the source gets the commit, then its branch moves back: the commit is on no branch
    git("fetch", "-q", str(sub), "HEAD", cwd=data)
    assert git("cat-file", "-t", recorded, cwd=data).strip() == "commit"
    # a file:// URL: git transfers what is asked for (a local path would copy every object)
    url = f"file://{data}"
    git("config", "submodule.data/raw.url", url, cwd=proj)
    clone = tmp_path / "clone"
    rr("clone", str(proj), str(clone))
    git("config", "submodule.data/raw.url", url, cwd=clone)
    git("config", "-f", ".gitmodules", "submodule.data/raw.url", url, cwd=clone)
    git("commit", "-qam", "absolute url", cwd=clone)
    shutil.rmtree(sub)  # the superdataset's own checkout cannot serve it
    proc = rr("get", "data/raw", cwd=clone, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"from {url} (the recorded source)" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=clone / "data/raw").strip() == recorded
    assert (clone / "data" / "raw" / "b.txt").read_text() == "beta\n"


def test_install_names_every_source_it_tried(tmp_path, pair):
    data, proj = pair
    clone = tmp_path / "clone"
    rr("clone", str(proj), str(clone))
    shutil.rmtree(data)
    shutil.rmtree(proj / "data" / "raw")
    proc = rr("get", "data/raw", cwd=clone, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "rr: error: cannot install subdataset data/raw: " in proc.stderr
    assert f"{tmp_path / 'a' / 'imagenette'} (does not exist)" in proc.stderr
    assert "rr: hint:" in proc.stderr


# --- mixed teams: DataLad installs rr's registration, rr installs DataLad's ---------------


@needs_datalad
def test_datalad_installs_an_rr_registered_subdataset(tmp_path, pair):
    _, proj = pair
    shutil.rmtree(proj / "data" / "raw")  # the sibling's own checkout cannot serve
    (proj / "data" / "raw").mkdir()
    clone = tmp_path / "b" / "deeper" / "clone"
    subprocess.run(["datalad", "clone", str(proj), str(clone)], check=True,
                   capture_output=True)
    subprocess.run(["datalad", "get", "-n", "data/raw"], cwd=clone, check=True,
                   capture_output=True)
    assert git("rev-parse", "HEAD", cwd=clone / "data/raw").strip() == \
        _recorded(clone, "data/raw")
    subprocess.run(["datalad", "get", "data/raw/a.txt"], cwd=clone, check=True,
                   capture_output=True)
    assert (clone / "data" / "raw" / "a.txt").read_text() == "alpha\n"


@pytest.mark.slow
@needs_datalad
def test_rr_installs_a_datalad_registered_subdataset(tmp_path):
    root = tmp_path / "a"
    root.mkdir()

    def dl(*args: str, cwd: Path) -> None:
        subprocess.run(["datalad", *args], cwd=cwd, check=True, capture_output=True)

    dl("create", "imagenette", cwd=root)
    (root / "imagenette" / "a.txt").write_text("alpha\n")
    dl("save", "-m", "data", cwd=root / "imagenette")
    dl("create", "proj", cwd=root)
    dl("clone", "-d", ".", "../imagenette", "data/raw", cwd=root / "proj")
    proj = root / "proj"
    dl("get", "data/raw/a.txt", cwd=proj)
    # DataLad records the subdataset's origin relative to the subdataset's place
    url = git("config", "-f", ".gitmodules", "submodule.data/raw.url", cwd=proj).strip()
    assert url == "../../../imagenette"

    clone = tmp_path / "b" / "clone"
    rr("clone", str(proj), str(clone))
    proc = rr("get", "data/raw/a.txt", cwd=clone)  # the sibling's checkout serves
    assert (clone / "data" / "raw" / "a.txt").read_text() == "alpha\n"
    assert "beside the superdataset on its sibling origin" in proc.stderr

    clone2 = tmp_path / "c" / "clone"
    rr("clone", str(proj), str(clone2))
    shutil.rmtree(proj / "data" / "raw")  # the sibling has no checkout to serve now
    (proj / "data" / "raw").mkdir()
    proc = rr("get", "data/raw/a.txt", cwd=clone2)
    assert (clone2 / "data" / "raw" / "a.txt").read_text() == "alpha\n"
    assert "relative to the subdataset's place on the sibling origin" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=clone2 / "data/raw").strip() == \
        _recorded(clone2, "data/raw")


def test_get_of_a_path_no_subdataset_has_is_an_error(pair):
    """DataLad's test_get: a path that does not exist deep in subdatasets is impossible; rr
    installed the subdatasets on the way and said "content is here", exit 0."""
    _data, proj = pair
    for path in ("data/raw/nothere.txt", "data/raw/meta/deep/nothere.txt"):
        proc = rr("get", path, cwd=proj, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.splitlines() == [f"rr: error: path does not exist: {path}"] or \
            proc.stderr.splitlines()[-1] == f"rr: error: path does not exist: {path}"
        assert "content is here" not in proc.stderr and "Traceback" not in proc.stderr
    assert rr("get", "data/raw/a.txt", cwd=proj).returncode == 0  # what exists still works


def test_subdatasets_fulfilled_and_contains(pair, tmp_path):
    """DataLad's subdatasets --fulfilled and --contains (test_subdataset.py)."""
    _, proj = pair
    clone = tmp_path / "clone"
    rr("clone", str(proj), str(clone))

    def listed(*args, cwd=clone):
        return [json.loads(x)["path"] for x in rr("subdatasets", "--json", *args, cwd=cwd)
                .stdout.splitlines()]

    assert listed("--fulfilled", "false") == ["data/raw"]
    assert listed("--fulfilled", "true") == []
    assert listed("--contains", "data/raw/a.txt") == ["data/raw"]
    assert listed("--contains", "data") == []           # data itself is not a subdataset
    assert listed("--contains", "data/raw") == ["data/raw"]
    bad = rr("subdatasets", "--fulfilled", "maybe", cwd=clone, check=False)
    assert bad.returncode == 2 and "--fulfilled must be true or false" in bad.stderr
