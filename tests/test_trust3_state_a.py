"""Issue 20 item 5: state, paths and I/O that cannot trap rr (JSON output, records of odd
types, paths over the file-system limits, .gitmodules loops, FIFOs, symlinks, config hints)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .conftest import RR, git, one_error_line, rr


def _commit_record(ds, record: dict, subject: str = "x") -> None:
    git("commit", "-q", "--allow-empty", "-m",
        f"[DATALAD RUNCMD] {subject}\n\n=== Do not change lines below ===\n"
        f"{json.dumps(record, indent=1)}\n^^^ Do not change lines above ^^^", cwd=ds)


def test_json_is_valid_json_when_a_note_says_infinity(ds):
    rr("run", "-o", "a.txt", "echo a > a.txt", cwd=ds)
    # a collaborator's note (or a hand-made one) with a duration no JSON has
    git("notes", "--ref=rr", "add", "-f", "-m", '{"duration": 1e999}', "HEAD", cwd=ds)
    out = rr("log", "--json", cwd=ds).stdout
    for line in out.splitlines():
        row = json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        assert row["duration"] is None or isinstance(row["duration"], float)
    assert "Infinity" not in out and "NaN" not in out


def test_json_is_valid_json_when_a_record_says_nan(ds):
    _commit_record(ds, {"cmd": "echo a", "exit": 0, "pwd": ".", "rr": {"duration": 0.5}})
    # a record whose duration is not finite is a malformed record: shown as a note
    msg = git("log", "-1", "--format=%B", cwd=ds).replace('"duration": 0.5', '"duration": NaN')
    git("commit", "-q", "--amend", "--allow-empty", "-m", msg, cwd=ds)
    out = rr("log", "--json", cwd=ds).stdout
    rows = [json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            for line in out.splitlines()]
    assert rows[0]["duration"] is None and "duration" in rows[0]["note"]


def test_rerun_of_a_record_naming_its_container_by_a_string_is_no_traceback(ds):
    _commit_record(ds, {"cmd": "echo b > b.txt", "exit": 0, "pwd": ".", "outputs": ["b.txt"],
                        "rr": {"container": "nosuch"}})
    proc = rr("rerun", cwd=ds, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert (ds / "b.txt").read_text() == "b\n"


def test_record_container_of_a_wrong_type_is_one_line(ds):
    for value in (5, ["x"], True, {"name": 5}):
        _commit_record(ds, {"cmd": "echo b > b.txt", "exit": 0, "pwd": ".",
                            "rr": {"container": value}})
        proc = rr("rerun", cwd=ds, check=False)
        assert proc.returncode != 0
        assert "container" in one_error_line(proc.stderr)
        git("reset", "-q", "--hard", "HEAD~1", cwd=ds)


def test_output_over_the_name_limit_is_one_line_before_anything_runs(ds):
    long = "a" * 300
    for out in (long, f"sub/{long}", f"{'d/' * 2100}x"):
        proc = rr("run", "-o", out, "touch ran", cwd=ds, check=False)
        assert proc.returncode != 0
        line = one_error_line(proc.stderr)
        assert "bytes" in line
        assert not (ds / "ran").exists()
    assert not git("status", "--porcelain", cwd=ds).strip()


def test_the_hint_for_a_refused_default_record_directory_does_not_recommend_it(ds, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (ds / ".datalad" / "runinfo").symlink_to(outside)
    git("add", ".datalad/runinfo", cwd=ds)
    git("commit", "-q", "-m", "runinfo leads out", cwd=ds)
    proc = rr("run", "--sidecar", "yes", "-o", "x", "echo 1 > x", cwd=ds, check=False)
    assert proc.returncode != 0
    one_error_line(proc.stderr)
    hint = [x for x in proc.stderr.splitlines() if x.startswith("rr: hint:")][0]
    assert not hint.rstrip().endswith("record-directory .datalad/runinfo"), hint
    assert not list(outside.iterdir())


# --- containers-add of special files -------------------------------------------------------

def _special(tmp_path, kind: str) -> str:
    if kind == "fifo":
        path = tmp_path / "image.fifo"
        os.mkfifo(path)
        return f"file://{path}"
    if kind == "zero":
        return "file:///dev/zero"
    if kind == "link-to-device":
        link = tmp_path / "image.sif"
        link.symlink_to("/dev/zero")
        return str(link)
    directory = tmp_path / "imagedir"
    directory.mkdir()
    (directory / "manifest.json").write_text("[]")
    os.mkfifo(directory / "layer.tar")
    return f"file://{directory}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "zero", "link-to-device", "dir-with-fifo"])
def test_containers_add_refuses_a_special_file_before_opening_it(ds, tmp_path, kind):
    url = _special(tmp_path, kind)
    before = git("rev-parse", "HEAD", cwd=ds)
    proc = subprocess.run([RR, "containers-add", "img", "--url", url], cwd=ds, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "not a regular file" in one_error_line(proc.stderr)
    assert git("rev-parse", "HEAD", cwd=ds) == before
    assert not git("status", "--porcelain", cwd=ds).strip()


@pytest.mark.slow
def test_containers_add_refuses_an_image_in_the_dataset_that_is_a_fifo(ds):
    os.mkfifo(ds / "img.fifo")
    proc = subprocess.run([RR, "containers-add", "img", "--image", "img.fifo"], cwd=ds,
                          timeout=60, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "FIFO" in one_error_line(proc.stderr)


# --- an output dressed as annexed content ---------------------------------------------------

@pytest.mark.parametrize("where", ["leak", "d/leak"])
def test_an_output_symlink_dressed_as_annexed_content_leading_out_is_refused(ds, tmp_path,
                                                                            where):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET\n")
    link = ds / where
    link.parent.mkdir(exist_ok=True)
    (ds / "x" / "annex" / "objects").mkdir(parents=True)
    # x/annex/objects/../../../../ is the dataset's parent (tmp_path)
    link.symlink_to("../" * where.count("/") + "x/annex/objects/../../../../secret.txt")
    assert link.read_text() == "SECRET\n"
    rr("save", "-m", "a link", cwd=ds)
    before = git("rev-parse", "HEAD", cwd=ds)
    proc = rr("run", "-o", where.split("/")[0], "touch ran", cwd=ds, check=False)
    assert proc.returncode != 0
    assert "leads outside the dataset" in one_error_line(proc.stderr)
    assert not (ds / "ran").exists()
    assert link.is_symlink()  # not replaced by a copy of the outside file
    assert git("rev-parse", "HEAD", cwd=ds) == before


# --- .gitmodules paths that resolve to the dataset or an ancestor -------------------------

@pytest.mark.slow
@pytest.mark.parametrize("path,target", [("lnk", "."), ("a/lnk", ".."), ("a/b/lnk", "..")],
                         ids=["self", "root-from-below", "ancestor"])
def test_a_gitmodules_path_resolving_to_the_dataset_or_an_ancestor_is_refused(ds, path,
                                                                             target):
    rr("create", str(ds / "sub"), cwd=ds)
    rr("save", "-m", "sub", cwd=ds)
    link = ds / path
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    git("config", "-f", ".gitmodules", "submodule.lnk.path", path, cwd=ds)
    git("config", "-f", ".gitmodules", "submodule.lnk.url", "./sub", cwd=ds)
    git("add", ".gitmodules", path, cwd=ds)
    git("commit", "-q", "-m", "a looping entry", cwd=ds)
    for args in (["get", "-r", "."], ["subdatasets", "-r"], ["update", "-r"]):
        proc = subprocess.run([RR, *args], cwd=ds, timeout=120, capture_output=True,
                              text=True)
        assert proc.returncode != 0, args
        assert "symlink" in one_error_line(proc.stderr), args


@pytest.mark.parametrize("args", [
    ["containers-add", "a" * 300, "--url", "IMAGE"],
    ["create", "a" * 300],
    ["clone", ".", "../" + "a" * 300],
    ["download-url", "--path", "a" * 300, "IMAGE_URL"],
], ids=["containers-add", "create", "clone", "download-url"])
def test_a_name_over_the_file_system_limit_is_one_line(ds, tmp_path, args):
    image = tmp_path / "i.sif"
    image.write_bytes(os.urandom(100))
    args = [str(image) if a == "IMAGE" else image.as_uri() if a == "IMAGE_URL" else a
            for a in args]
    before = git("rev-parse", "HEAD", cwd=ds)
    proc = rr(*args, cwd=ds, check=False)
    assert proc.returncode != 0
    assert "too long" in one_error_line(proc.stderr)
    assert git("rev-parse", "HEAD", cwd=ds) == before
    assert not git("status", "--porcelain", cwd=ds).strip()


def test_the_hint_for_a_refused_containers_location_does_not_recommend_it(ds, tmp_path):
    image = tmp_path / "i.sif"
    image.write_bytes(os.urandom(100))
    (ds / ".datalad" / "environments").symlink_to(tmp_path)
    git("add", ".datalad/environments", cwd=ds)
    git("commit", "-q", "-m", "environments lead out", cwd=ds)
    proc = rr("containers-add", "c", "--url", str(image), cwd=ds, check=False)
    assert proc.returncode != 0
    assert "datalad.containers.location" in one_error_line(proc.stderr)
    hint = [x for x in proc.stderr.splitlines() if x.startswith("rr: hint:")][0]
    assert not hint.rstrip().endswith("location .datalad/environments"), hint
    assert not (tmp_path / "c").exists()


def test_json_output_stays_utf8_for_a_file_name_that_is_not(ds):
    (ds / os.fsdecode(b"v\xf9.txt")).write_text("v\n")
    out = subprocess.run([RR, "status", "--json"], cwd=ds, capture_output=True,
                         check=True).stdout
    rows = [json.loads(line.decode("utf-8")) for line in out.splitlines()]
    assert os.fsencode(rows[0]["path"]) == b"v\xf9.txt"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_download_url_of_a_special_file_is_refused_before_it_is_opened(ds, tmp_path, kind):
    url = _special(tmp_path, kind)
    git("config", "annex.security.allowed-url-schemes", "http https ftp file", cwd=ds)
    proc = subprocess.run([RR, "download-url", url], cwd=ds, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "not a regular file" in one_error_line(proc.stderr)
    assert not git("status", "--porcelain", cwd=ds).strip()


def test_the_hint_never_recommends_a_default_that_is_refused_too(ds, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (ds / ".datalad" / "runinfo").symlink_to(outside)
    git("config", "-f", ".datalad/config", "datalad.run.record-directory", "../x", cwd=ds)
    git("add", ".datalad", cwd=ds)
    git("commit", "-q", "-m", "both lead out", cwd=ds)
    proc = rr("run", "--sidecar", "yes", "-o", "x", "echo 1 > x", cwd=ds, check=False)
    assert proc.returncode != 0
    one_error_line(proc.stderr)
    hint = [x for x in proc.stderr.splitlines() if x.startswith("rr: hint:")][0]
    assert ".datalad/runinfo" not in hint.split("git config")[-1], hint
    assert "../x" not in hint.split("git config")[-1], hint
