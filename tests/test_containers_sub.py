"""Containers registered in subdatasets: ``-n sub/NAME`` (installed on demand), containers-list
-r/--contains, extra inputs, as datalad-container does them.  The "image" is a shell script run
with a custom call format, so these tests need neither Docker nor Singularity."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from recorder import record as records
from tests.conftest import git, last_message, needs_datalad, rr

SCRIPT = 'echo "container $DATALAD_CONTAINER_NAME" >&2\nexec sh -c "$*"\n'
FMT = "sh {img} {cmd}"


def rec(ds, rev="HEAD"):
    return records.parse_message(last_message(ds, rev)).record


@pytest.fixture
def top(ds, tmp_path):
    """ds with subdataset sub (container sc, two extra inputs) and sub/subsub (container
    deep), everything saved."""
    script = tmp_path / "img.sh"
    script.write_text(SCRIPT)
    rr("create", "-d", ".", "sub", cwd=ds)
    rr("create", "-d", "sub", "sub/subsub", cwd=ds)
    rr("containers-add", "-d", "sub", "sc", "--url", str(script), "--call-fmt", FMT,
       "--extra-input", "{img_dirpath}/extra.dat", "--extra-input", "{img_dspath}/other.dat",
       cwd=ds)
    rr("containers-add", "-d", "sub/subsub", "deep", "--url", str(script), "--call-fmt", FMT,
       cwd=ds)
    (ds / "sub" / ".datalad" / "environments" / "sc" / "extra.dat").write_text("extra\n")
    (ds / "sub" / "other.dat").write_text("other\n")
    rr("save", "-d", "sub", cwd=ds)
    rr("save", cwd=ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    return ds


@pytest.fixture
def clone(top, tmp_path):
    """A clone of top: its subdatasets are not installed."""
    rr("clone", str(top), str(tmp_path / "clone"))
    c = tmp_path / "clone"
    assert not (c / "sub" / ".git").exists()
    return c


@pytest.mark.slow
def test_run_installs_subdataset_and_records_like_datalad_container(clone):
    p = rr("containers-run", "-n", "sub/sc", "-m", "msg", "cat sub/other.dat > out.txt",
           cwd=clone)
    assert (clone / "sub" / ".git").exists()  # installed on demand
    assert (clone / "out.txt").read_text() == "other\n"
    assert "container sub/sc" in p.stderr  # DATALAD_CONTAINER_NAME as listed
    r = rec(clone)
    assert r["cmd"] == "sh sub/.datalad/environments/sc/image cat sub/other.dat > out.txt"
    # the image first, then the extra inputs with {img_dirpath}/{img_dspath} of the subdataset
    assert r["extra_inputs"] == ["sub/.datalad/environments/sc/image",
                                 "sub/.datalad/environments/sc/extra.dat", "sub/other.dat"]
    assert r["pwd"] == "."
    assert r["rr"]["container"]["name"] == "sub/sc"
    assert r["rr"]["container"]["image"] == "sub/.datalad/environments/sc/image"
    # the extra inputs were fetched in the subdataset
    assert (clone / "sub" / ".datalad" / "environments" / "sc" / "extra.dat").read_text() \
        == "extra\n"


@pytest.mark.slow
def test_nested_container_from_subdirectory_with_rr_run(clone):
    (clone / "code").mkdir()
    rr("run", "-n", "sub/subsub/deep", "echo deep > o.txt", cwd=clone / "code")
    assert (clone / "sub" / "subsub" / ".git").exists()
    assert (clone / "code" / "o.txt").read_text() == "deep\n"
    r = rec(clone)
    assert r["pwd"] == "code"
    assert r["cmd"] == "sh ../sub/subsub/.datalad/environments/deep/image echo deep > o.txt"
    assert r["extra_inputs"] == ["../sub/subsub/.datalad/environments/deep/image"]
    # a replay finds the image where the record says
    rr("rerun", cwd=clone)


@pytest.mark.slow
def test_image_path_of_subdataset_container_selects_it(clone):
    rr("containers-run", "-n", "sub/.datalad/environments/sc/image", "echo p > p.txt",
       cwd=clone)
    assert rec(clone)["extra_inputs"][0] == "sub/.datalad/environments/sc/image"


@pytest.mark.slow
def test_unknown_subdataset_container_is_one_clear_error(clone):
    for name in ("sub/nope", "nosub/x/nope"):
        p = rr("containers-run", "-n", name, "true", cwd=clone, check=False)
        assert p.returncode != 0
        # (after the line saying where the subdataset was installed from)
        assert f"\nrr: error: unknown container: {name}" in "\n" + p.stderr
        assert "Traceback" not in p.stderr


@pytest.mark.slow
def test_subdataset_container_image_must_stay_inside_it(top, tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text(SCRIPT)
    # a subdataset's config naming an image outside the subdataset (in the superdataset)
    (top / "x.sh").write_text(SCRIPT)
    git("config", "-f", ".datalad/config", "datalad.containers.sc.image", "../x.sh",
        cwd=top / "sub")
    p = rr("containers-run", "-n", "sub/sc", "true", cwd=top, check=False)
    assert p.returncode != 0 and "not a path inside the dataset" in p.stderr
    git("config", "-f", ".datalad/config", "datalad.containers.sc.image", str(outside),
        cwd=top / "sub")
    p = rr("containers-run", "-n", "sub/sc", "true", cwd=top, check=False)
    assert p.returncode != 0 and "absolute path" in p.stderr


@pytest.mark.slow
def test_extra_input_leading_out_of_the_dataset_is_refused(top):
    git("config", "-f", ".datalad/config", "--add", "datalad.containers.sc.extra-input",
        "{img_dspath}/../../outside.dat", cwd=top / "sub")
    p = rr("containers-run", "-n", "sub/sc", "true", cwd=top, check=False)
    assert p.returncode != 0
    assert p.stderr.startswith("rr: error: datalad.containers.sub/sc.extra-input")
    assert "not a path inside the dataset" in p.stderr and "Traceback" not in p.stderr


def _names(out: str) -> list[str]:
    return [line.split(" -> ")[0] for line in out.splitlines() if " -> " in line]


@pytest.mark.slow
def test_list_recursive_and_contains(clone):
    assert _names(rr("containers-list", cwd=clone).stdout) == []
    # uninstalled subdatasets are skipped silently
    assert _names(rr("containers-list", "-r", cwd=clone).stdout) == []
    rr("containers-run", "-n", "sub/subsub/deep", "true", cwd=clone)
    out = rr("containers-list", "-r", cwd=clone).stdout
    assert "sub/subsub/deep -> sub/subsub/.datalad/environments/deep/image" in out
    assert _names(out) == ["sub/subsub/deep", "sub/sc"]  # subdatasets first, deepest first
    assert _names(rr("containers-list", "-r", "--contains", "sub/subsub/x",
                     cwd=clone).stdout) == ["sub/subsub/deep", "sub/sc"]
    assert _names(rr("containers-list", "-r", "--contains", "elsewhere",
                     cwd=clone).stdout) == []
    listed = [json.loads(line) for line in
              rr("containers-list", "-r", "--json", cwd=clone).stdout.splitlines()]
    deep = listed[0]
    assert deep["name"] == "sub/subsub/deep"
    assert deep["parentds"] == str(clone / "sub" / "subsub")
    assert deep["path"] == str(clone / "sub/subsub/.datalad/environments/deep/image")


@pytest.mark.slow
@needs_datalad
def test_same_record_and_listing_as_datalad_container(top, tmp_path):
    for name in ("a", "b"):
        rr("clone", str(top), str(tmp_path / name))
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "code").mkdir()
    (b / "code").mkdir()
    subprocess.run(["datalad", "containers-run", "-n", "sub/sc", "echo hi > o.txt"],
                   cwd=a / "code", check=True, capture_output=True)
    rr("containers-run", "-n", "sub/sc", "echo hi > o.txt", cwd=b / "code")
    theirs, ours = rec(a), rec(b)
    for key in ("cmd", "pwd", "inputs", "outputs", "exit"):
        assert ours[key] == theirs[key], key
    # datalad-container takes the extra inputs through a set: same items, image first
    assert ours["extra_inputs"][0] == theirs["extra_inputs"][0]
    assert sorted(ours["extra_inputs"]) == sorted(theirs["extra_inputs"])
    for contains in ([], ["--contains", "sub"], ["--contains", "nothere"]):
        dl = subprocess.run(["datalad", "containers-list", "-r", *contains], cwd=a,
                            check=True, capture_output=True, text=True).stdout
        assert _names(rr("containers-list", "-r", *contains, cwd=b).stdout) == _names(dl)


@pytest.mark.slow
@needs_datalad
def test_extra_inputs_recorded_as_datalad_container_from_subdirectory(ds, tmp_path):
    """Extra inputs from containers-add --extra-input and from git's own config: formatted
    with {img_dirpath}/{img_dspath}, plain values relative to the working directory."""
    script = tmp_path / "img.sh"
    script.write_text(SCRIPT)
    rr("containers-add", "c", "--url", str(script), "--call-fmt", FMT,
       "--extra-input", "{img_dirpath}/overlay.img", "--extra-input", "{img_dspath}/top.dat",
       "--extra-input", "plain.dat", cwd=ds)
    cfg = git("config", "-f", ".datalad/config", "--get-all",
              "datalad.containers.c.extra-input", cwd=ds).split()
    assert cfg == ["{img_dirpath}/overlay.img", "{img_dspath}/top.dat", "plain.dat"]
    (ds / ".datalad" / "environments" / "c" / "overlay.img").write_text("o\n")
    (ds / "top.dat").write_text("t\n")
    (ds / "code").mkdir()
    (ds / "code" / "plain.dat").write_text("p\n")
    rr("save", cwd=ds)
    for name in ("a", "b"):
        rr("clone", str(ds), str(tmp_path / name))
    a, b = tmp_path / "a", tmp_path / "b"
    subprocess.run(["datalad", "containers-run", "-n", "c", "cat plain.dat > o.txt"],
                   cwd=a / "code", check=True, capture_output=True)
    rr("containers-run", "-n", "c", "cat plain.dat > o.txt", cwd=b / "code")
    theirs, ours = rec(a), rec(b)
    assert ours["cmd"] == theirs["cmd"] == "sh ../.datalad/environments/c/image cat plain.dat > o.txt"
    assert ours["extra_inputs"] == ["../.datalad/environments/c/image",
                                    "../.datalad/environments/c/overlay.img", "../top.dat",
                                    "plain.dat"]
    assert sorted(ours["extra_inputs"]) == sorted(theirs["extra_inputs"])
    assert (b / "code" / "o.txt").read_text() == "p\n"
    # the extra inputs were fetched
    assert (b / ".datalad" / "environments" / "c" / "overlay.img").read_text() == "o\n"
    assert (b / "top.dat").read_text() == "t\n"


def test_file_url_image_is_copied_into_the_dataset(ds, tmp_path):
    """containers-add --url file:///... copies the file (as datalad-container copies local
    images); --update with another file:// URL replaces it."""
    (tmp_path / "foo.img").write_text(SCRIPT)
    (tmp_path / "bar.img").write_text("bar\n")
    rr("containers-add", "foo", "--call-fmt", FMT, "--url",
       (tmp_path / "foo.img").as_uri(), cwd=ds)
    image = ds / ".datalad" / "environments" / "foo" / "image"
    assert image.read_text() == SCRIPT
    assert git("status", "--porcelain", cwd=ds) == ""
    assert last_message(ds).strip() == "[DATALAD] Configure containerized environment 'foo'"
    rr("containers-run", "-n", "foo", "echo ok > ok.txt", cwd=ds)
    assert (ds / "ok.txt").read_text() == "ok\n"
    rr("containers-add", "foo", "--update", "--url", (tmp_path / "bar.img").as_uri(), cwd=ds)
    assert image.read_text() == "bar\n"
    assert last_message(ds).strip() == "[DATALAD] Update containerized environment 'foo'"
    p = rr("containers-add", "x", "--url", "file://otherhost/tmp/x.img", cwd=ds, check=False)
    assert p.returncode != 0 and p.stderr.startswith("rr: error: a file:// URL must name")
    p = rr("containers-add", "y", "--url", (tmp_path / "missing.img").as_uri(), cwd=ds,
           check=False)
    assert p.returncode != 0 and "missing file" in p.stderr
    assert git("status", "--porcelain", cwd=ds) == ""


def test_file_url_to_docker_save_archive_runs_with_docker(ds, tmp_path, busybox_image):
    archive = tmp_path / "bb.tar"
    subprocess.run(["docker", "save", "-o", str(archive), busybox_image], check=True)
    rr("containers-add", "bb", "--url", archive.as_uri(), cwd=ds)
    image = ds / ".datalad" / "environments" / "bb" / "image"
    assert (image / "manifest.json").is_symlink()  # extracted and annexed, as dhub:// does
    cmdexec = git("config", "-f", ".datalad/config", "datalad.containers.bb.cmdexec", cwd=ds)
    assert cmdexec.strip() == "rr containers-exec --runtime docker {img} {cmd}"
    rr("containers-run", "-n", "bb", "-o", "in.txt",
       "test -e /.dockerenv && echo in > in.txt", cwd=ds)
    assert (ds / "in.txt").read_text() == "in\n"
