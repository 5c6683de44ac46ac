"""Hostile datasets: nothing a cloned dataset says (.gitmodules, config, records, archives,
symlinks) makes rr read or write outside it, or plant code a later command runs.

Each test builds the hostile dataset with plain git, runs rr, and checks that rr refused with
one error line (no traceback) and that nothing appeared outside the dataset.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from recorder.containers import execute
from tests.conftest import git, rr


def refused(proc, *words: str) -> str:
    """Assert a one-line refusal (plus an optional hint), never a traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("rr: error: ")]
    assert len(errors) == 1, proc.stderr
    assert all(line.startswith(("rr: error: ", "rr: hint: ", "rr: warning: ")) for line in lines), \
        proc.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def commit_all(path: Path, message: str = "hostile") -> None:
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", message, cwd=path)


@pytest.fixture(scope="session")
def attacker(tmp_path_factory) -> Path:
    """An attacker's repository: a 'procedure' that leaves a marker when it runs."""
    path = tmp_path_factory.mktemp("attacker") / "repo"
    path.mkdir()
    git("init", "-q", cwd=path)
    marker = path.parent / "PWNED"
    (path / "cfg_yoda.sh").write_text(f'#!/bin/sh\ntouch "{marker}"\n')
    (path / "cfg_yoda.sh").chmod(0o755)
    commit_all(path, "payload")
    return path


def plant_gitmodules(ds: Path, entries: dict[str, str], name: str = "evil") -> None:
    (ds / ".gitmodules").write_text("".join(
        f'[submodule "{name}{i}"]\n\tpath = {path}\n\turl = {url}\n'
        for i, (path, url) in enumerate(entries.items())), encoding="utf-8")
    commit_all(ds, "add subdatasets")


def listing(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.exists() else []


# --- 1. subdataset paths and URLs from .gitmodules ---------------------------------------


BAD_SUBDATASET_PATHS = ["../outside", "ABS", "a/../../outside", ".git", ".git/hooks/x",
                        "sub/.git", '"line\\nbreak"', "./x", "a//b", "link", "link/sub"]


def test_bad_gitmodules_paths_are_refused_by_the_one_accessor(ds, tmp_path):
    """Every caller gets its subdatasets from Dataset.subdatasets(): each hostile entry
    is refused there, naming .gitmodules."""
    from recorder.dataset import Dataset
    from recorder.errors import RecorderError

    (tmp_path / "elsewhere").mkdir()
    (ds / "link").symlink_to(tmp_path / "elsewhere")
    for bad in BAD_SUBDATASET_PATHS:
        path = str(tmp_path / "abs") if bad == "ABS" else bad
        (ds / ".gitmodules").write_text(f'[submodule "x"]\n\tpath = {path}\n\turl = /x\n')
        with pytest.raises(RecorderError, match=r"\.gitmodules") as info:
            Dataset(ds).subdatasets()
        assert "\n" not in info.value.message, bad
    (ds / ".gitmodules").write_text('[submodule "x"]\n\tpath = data/in\n\turl = ../in\n')
    assert Dataset(ds).subdatasets() == {"data/in": "../in"}
    (ds / ".gitmodules").write_text('[submodule "x"\n\tpath = broken\n')
    with pytest.raises(RecorderError, match=r"\.gitmodules cannot be parsed"):
        Dataset(ds).subdatasets()


@pytest.mark.parametrize("bad", ["../outside", "ABS", "a/../../outside", ".git/hooks/x"])
def test_bad_gitmodules_path_refused_before_cloning(ds, tmp_path, attacker, bad):
    target = tmp_path / "abs-target"
    path = str(target) if bad == "ABS" else bad
    plant_gitmodules(ds, {path: str(attacker)})
    before = listing(tmp_path)
    proc = rr("get", "-r", ".", cwd=ds, check=False)
    refused(proc, ".gitmodules")
    assert listing(tmp_path) == before  # nothing cloned next to the dataset
    assert not target.exists() and not (tmp_path / "outside").exists()
    assert not (ds / ".git" / "hooks" / "x").exists()
    assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.parametrize("command", [
    ["get", "-r", "."], ["get", "d/file"], ["drop", "-r", "."],
    ["run", "-i", "d/*", "true"], ["save", "x.txt"],
])
def test_every_command_reading_gitmodules_refuses(ds, tmp_path, attacker, command):
    plant_gitmodules(ds, {"../outside": str(attacker), "d": str(attacker)})
    if command[0] == "save":
        (ds / "x.txt").write_text("x\n")
    proc = rr(*command, cwd=ds, check=False)
    refused(proc, "../outside", ".gitmodules")
    assert not (tmp_path / "outside").exists()
    assert not (ds / "d").exists()


def test_gitmodules_path_through_symlink_leading_out(ds, tmp_path, attacker):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (ds / "link").symlink_to(outside)
    plant_gitmodules(ds, {"link/sub": str(attacker), "link": str(attacker)})
    for args in (["get", "-r", "."], ["get", "link/sub"]):
        refused(rr(*args, cwd=ds, check=False), "symlink", ".gitmodules")
    assert listing(outside) == []


@pytest.mark.parametrize("url", ["-uhello", "--upload-pack=touch PWNED-URL",
                                 "ext::sh -c touch% PWNED-URL", "fd::17"])
def test_gitmodules_url_option_or_remote_helper_refused(ds, tmp_path, url):
    plant_gitmodules(ds, {"sub": url})
    proc = rr("get", "-r", ".", cwd=ds, check=False)
    refused(proc, ".gitmodules", "URL")
    assert not (ds / "sub").exists()
    assert not list(tmp_path.rglob("PWNED-URL"))


def test_planted_procedure_never_reaches_a_later_create(ds, tmp_path, attacker):
    """`rr get -r .` once cloned an attacker's repository into the user's procedure
    directory; a later, unrelated `rr create -c yoda` then ran it."""
    xdg = tmp_path / "xdg"
    env = {"XDG_CONFIG_HOME": str(xdg)}
    rel = os.path.relpath(xdg / "datalad" / "procedures", ds)
    plant_gitmodules(ds, {rel: str(attacker)})
    refused(rr("get", "-r", ".", cwd=ds, check=False, env=env), ".gitmodules")
    assert not (xdg / "datalad").exists()
    rr("create", "-c", "yoda", str(tmp_path / "fresh"), env=env)
    assert not (attacker.parent / "PWNED").exists()
    assert (tmp_path / "fresh" / "code").is_dir()  # the shipped cfg_yoda ran


def test_valid_subdataset_still_installs(ds, tmp_path):
    sub = tmp_path / "inputs"
    rr("create", str(sub))
    (sub / "f.txt").write_text("content\n")
    rr("save", "-m", "f", cwd=sub)
    rr("clone", "-d", ".", str(sub), "data/in", cwd=ds)
    clone = tmp_path / "clone"
    git("clone", "-q", str(ds), str(clone), cwd=tmp_path)
    rr("get", "-r", ".", cwd=clone)
    assert (clone / "data" / "in" / "f.txt").read_text() == "content\n"


# --- 2. datalad.run.record-directory ----------------------------------------------------


def test_record_directory_accessor_refuses_leaving_the_dataset(ds, tmp_path):
    from recorder.dataset import Dataset
    from recorder.errors import RecorderError

    outside = tmp_path / "outside-records"
    outside.mkdir()
    (ds / "link").symlink_to(outside)
    for value in ("../outside-records", str(outside), "a/../../outside-records", "link",
                  "link/deeper", ".git/records", ".git"):
        git("config", "-f", ".datalad/config", "datalad.run.record-directory", value, cwd=ds)
        with pytest.raises(RecorderError, match="datalad.run.record-directory"):
            Dataset(ds).record_directory()
    git("config", "-f", ".datalad/config", "datalad.run.record-directory", "rec/ords", cwd=ds)
    assert Dataset(ds).record_directory() == "rec/ords"


@pytest.mark.parametrize("value", ["../outside-records", "link/deeper"])
def test_record_directory_must_stay_inside(ds, tmp_path, value):
    outside = tmp_path / "outside-records"
    outside.mkdir()
    (ds / "link").symlink_to(outside)
    git("config", "-f", ".datalad/config", "datalad.run.record-directory", value, cwd=ds)
    commit_all(ds)
    proc = rr("run", "--sidecar", "-m", "x", "echo ran > out.txt", cwd=ds, check=False)
    refused(proc, "datalad.run.record-directory")
    assert listing(outside) == []
    assert not (ds / "out.txt").exists()  # refused before the command ran
    refused(rr("rerun", cwd=ds, check=False), "datalad.run.record-directory")


def test_record_directory_inside_works(ds):
    git("config", "-f", ".datalad/config", "datalad.run.record-directory", "records", cwd=ds)
    commit_all(ds)
    rr("run", "--sidecar", "-m", "x", "echo ran > out.txt", cwd=ds)
    assert len(os.listdir(ds / "records")) == 1
    assert "x" in rr("log", cwd=ds).stdout


def test_sidecar_id_from_a_commit_message_is_not_a_path(ds, tmp_path):
    import json
    import lzma

    secret = tmp_path / "secret"  # a well-formed sidecar outside the dataset
    with lzma.open(secret, "wb") as fh:
        fh.write(json.dumps({"cmd": f"touch {tmp_path}/PWNED", "exit": 0, "inputs": [],
                             "outputs": [], "extra_inputs": [], "pwd": ".",
                             "chain": []}).encode() + b"\n")
    (ds / ".datalad" / "runinfo").mkdir()
    rel = os.path.relpath(secret, ds / ".datalad" / "runinfo")
    msg = f'[DATALAD RUNCMD] x\n\n=== Do not change lines below ===\n"{rel}"\n' \
          "^^^ Do not change lines above ^^^\n"
    git("commit", "-q", "--allow-empty", "-m", msg, cwd=ds)
    proc = rr("rerun", cwd=ds, check=False)
    refused(proc, "sidecar")
    assert not (tmp_path / "PWNED").exists()


# --- 3. inputs and outputs through symlinks ----------------------------------------------


@pytest.fixture
def linked(ds, tmp_path):
    """A dataset with a committed symlink to a directory outside it."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "existing.txt").write_text("outside\n")
    (ds / "link").symlink_to(outside)
    commit_all(ds)
    return ds, outside


@pytest.mark.parametrize("args", [
    ["-o", "link/out.txt"], ["-o", "link/existing.txt"], ["-o", "link/*"],
    ["-i", "link/existing.txt"], ["-o", ".git/config"], ["-i", ".git/config"],
    ["--explicit", "-o", "link/out.txt"],
])
def test_run_refuses_paths_leading_outside(linked, args):
    ds, outside = linked
    proc = rr("run", *args, "echo ran > link/out.txt", cwd=ds, check=False)
    refused(proc)
    assert listing(outside) == ["existing.txt"]
    assert not (outside / "existing.txt").is_symlink()
    assert (outside / "existing.txt").read_text() == "outside\n"
    assert not list((ds / ".git" / "annex" / "objects").rglob("*.txt")) if \
        (ds / ".git" / "annex" / "objects").exists() else True


def test_save_refuses_paths_leading_outside(linked):
    ds, outside = linked
    for path in ("link/existing.txt", "link/", ".git/config"):
        refused(rr("save", path, cwd=ds, check=False))
    assert not (outside / "existing.txt").is_symlink()


def test_annexed_output_and_inside_symlink_still_work(ds):
    (ds / "real").mkdir()
    (ds / "alias").symlink_to("real")
    commit_all(ds)
    rr("run", "-o", "real/out.txt", "echo one > real/out.txt", cwd=ds)
    assert (ds / "real" / "out.txt").is_symlink()  # annexed: a final symlink is fine
    rr("run", "-o", "real/out.txt", "echo two > real/out.txt", cwd=ds)
    assert (ds / "real" / "out.txt").read_text() == "two\n"
    rr("run", "-i", "alias/out.txt", "cat alias/out.txt > copy.txt", cwd=ds)


# --- 4. archive members ----------------------------------------------------------------


@pytest.fixture
def web(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def _tar(path: Path, members: list[tuple[str, str, str]]) -> None:
    """members: (kind, name, link-or-content)."""
    with tarfile.open(path, "w:gz") as tf:
        for kind, name, extra in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = extra.encode()
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE,
                         "dir": tarfile.DIRTYPE}[kind]
            info.linkname = extra
            if kind == "chr":
                info.devmajor, info.devminor = 1, 3
            tf.addfile(info)


HOSTILE_TARS = {
    "dotdot": [("file", "ok.txt", "ok"), ("file", "../../evil.txt", "evil")],
    "absolute": [("file", "ABS/evil.txt", "evil")],
    "symlink-out": [("sym", "ln", "OUT"), ("file", "ln/evil.txt", "evil")],
    "symlink-up": [("sym", "up", "../../.."), ("file", "up/evil.txt", "evil")],
    "symlink-chain": [("dir", "d", ""), ("sym", "d/a", ".."), ("sym", "b", "d/a/.."),
                      ("file", "b/evil.txt", "evil")],
    "hardlink-out": [("hard", "hl", "OUT/secret.txt")],
    "hardlink-up": [("hard", "hl", "../../secret.txt")],
    "device": [("chr", "null", "")],
    "fifo": [("fifo", "pipe", "")],
    "git-dir": [("file", ".git/hooks/post-commit", "evil")],
}


def _members(case: str, out: Path) -> list[tuple[str, str, str]]:
    return [(k, n.replace("ABS", str(out)), e.replace("OUT", str(out)))
            for k, n, e in HOSTILE_TARS[case]]


def test_hostile_tar_members_refused_in_process(ds, tmp_path):
    """download._extract on each hostile tar: one RecorderError, nothing written outside,
    the extraction directory removed again."""
    from recorder import download
    from recorder.dataset import Dataset
    from recorder.errors import RecorderError

    out = tmp_path / "out"
    out.mkdir()
    (out / "secret.txt").write_text("secret\n")
    for case in sorted(HOSTILE_TARS):
        _tar(ds / "pkg.tgz", _members(case, out))
        before = listing(tmp_path)
        with pytest.raises(RecorderError) as info:
            download._extract(Dataset(ds), "pkg.tgz")
        assert "\n" not in info.value.message, case
        assert listing(out) == ["secret.txt"] and listing(tmp_path) == before, case
        assert not (ds / "pkg").exists(), case


@pytest.mark.parametrize("case", ["dotdot", "symlink-out", "device"])
def test_hostile_tar_members_refused(ds, web, tmp_path, case):
    base, root = web
    out = tmp_path / "out"
    out.mkdir()
    (out / "secret.txt").write_text("secret\n")
    _tar(root / "pkg.tgz", _members(case, out))
    before = listing(tmp_path)
    proc = rr("download-url", "--archive", f"{base}/pkg.tgz", cwd=ds, check=False)
    refused(proc)
    assert listing(out) == ["secret.txt"] and listing(tmp_path) == before
    assert not (ds / "pkg").exists() and not (ds / "pkg.tgz").exists()
    assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/rr-hostile-evil.txt", "a/../../evil.txt"])
def test_hostile_zip_members_refused(ds, web, tmp_path, name):
    base, root = web
    with zipfile.ZipFile(root / "pkg.zip", "w") as zf:
        zf.writestr("ok.txt", "ok")
        zf.writestr(zipfile.ZipInfo(name), "evil")
    proc = rr("download-url", "--archive", f"{base}/pkg.zip", cwd=ds, check=False)
    refused(proc, "archive")
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/rr-hostile-evil.txt").exists()
    assert not (ds / "pkg").exists()
    assert git("status", "--porcelain", cwd=ds) == ""


def test_zip_symlink_member_leading_out_refused(ds, tmp_path):
    from recorder import download
    from recorder.dataset import Dataset
    from recorder.errors import RecorderError

    with zipfile.ZipFile(ds / "pkg.zip", "w") as zf:
        info = zipfile.ZipInfo("ln")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../../etc")
    with pytest.raises(RecorderError, match="symlink leading outside"):
        download._extract(Dataset(ds), "pkg.zip")
    assert not (ds / "pkg").exists()


def test_download_target_through_symlink_refused(linked, web):
    ds, outside = linked
    base, root = web
    (root / "f.txt").write_text("f\n")
    refused(rr("download-url", "-O", "link/", f"{base}/f.txt", cwd=ds, check=False))
    assert listing(outside) == ["existing.txt"]


def test_not_an_archive_is_one_error_line(ds, web):
    base, root = web
    (root / "pkg.tgz").write_text("not a tarball\n")
    refused(rr("download-url", "--archive", f"{base}/pkg.tgz", cwd=ds, check=False),
            "cannot extract")


# --- 5. procedures (see also test_procedures.py) ----------------------------------------


def test_dataset_procedure_directory_must_stay_inside(ds, tmp_path):
    outside = tmp_path / "procs"
    outside.mkdir()
    (outside / "cfg_x.sh").write_text(f'touch "{tmp_path}/PWNED"\n')
    git("config", "-f", ".datalad/config", "datalad.locations.dataset-procedures",
        "../procs", cwd=ds)
    commit_all(ds)
    refused(rr("run-procedure", "cfg_x", cwd=ds, check=False), "dataset-procedures")
    refused(rr("run-procedure", "--discover", cwd=ds, check=False), "dataset-procedures")
    assert not (tmp_path / "PWNED").exists()


def test_committed_config_cannot_move_user_procedures_or_call_format(ds, tmp_path):
    mine = ds / "mine"
    mine.mkdir()
    (mine / "cfg_text2git.sh").write_text('echo hijacked > "$1/who.txt"\n')
    git("config", "-f", ".datalad/config", "datalad.locations.user-procedures", "mine", cwd=ds)
    git("config", "-f", ".datalad/config", "datalad.locations.system-procedures",
        str(mine), cwd=ds)
    git("config", "-f", ".datalad/config", "datalad.procedures.cfg_yoda.call-format",
        f'touch "{tmp_path}/PWNED" #', cwd=ds)
    commit_all(ds)
    listing_ = rr("run-procedure", "--discover", cwd=ds).stdout
    assert str(mine) not in listing_
    rr("run-procedure", "cfg_yoda", cwd=ds)
    assert not (tmp_path / "PWNED").exists() and (ds / "code").is_dir()


# --- 6. container runtime flags and image paths ------------------------------------------


def _fake_image(ds: Path) -> Path:
    image = ds / ".datalad" / "environments" / "bb" / "image"
    image.mkdir(parents=True)
    (image / "cfg.json").write_text("{}")
    (image / "manifest.json").write_text('[{"Config": "cfg.json", "RepoTags": ["bb:1"]}]')
    git("config", "-f", ".datalad/config", "datalad.containers.bb.image",
        ".datalad/environments/bb/image", cwd=ds)
    return image


def test_committed_runtime_flags_ignored_with_warning(ds, capsys):
    image = _fake_image(ds)
    git("config", "-f", ".datalad/config", "datalad.containers.bb.runtime-flags",
        "-v /:/host --privileged", cwd=ds)
    commit_all(ds)
    argv, _ = execute.build_argv("docker", image, ["true"], name="bb", cwd=ds, load=False)
    assert "--privileged" not in argv and "/:/host" not in argv
    assert "datalad.containers.bb.runtime-flags" in capsys.readouterr().err
    git("config", "--local", "datalad.containers.bb.runtime-flags", "--shm-size 1g", cwd=ds)
    argv, _ = execute.build_argv("docker", image, ["true"], name="bb", cwd=ds, load=False)
    assert "--shm-size" in argv and "--privileged" not in argv


def test_container_image_path_must_stay_inside(ds, tmp_path):
    from recorder.containers import registry
    from recorder.dataset import Dataset
    from recorder.errors import RecorderError

    outside = tmp_path / "outside-image"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    (ds / "link").symlink_to(outside)
    git("config", "-f", ".datalad/config", "datalad.containers.evil.cmdexec", "{img} {cmd}",
        cwd=ds)
    for value in ("../outside-image", str(outside), "link/img", ".git/img", "link"):
        git("config", "-f", ".datalad/config", "datalad.containers.evil.image", value, cwd=ds)
        with pytest.raises(RecorderError, match="image"):
            registry.find(Dataset(ds), "evil")
    commit_all(ds)
    refused(rr("run", "-n", "evil", "true", cwd=ds, check=False), "image")
    refused(rr("containers-remove", "evil", "--remove-image", cwd=ds, check=False), "image")
    assert listing(outside) == ["keep.txt"]


# --- 7. other paths a dataset names ------------------------------------------------------


def test_metrics_file_named_by_committed_config_is_not_read_outside(ds, tmp_path):
    (tmp_path / "secret.json").write_text('{"password_hash": 31337}\n')
    (ds / "link").symlink_to(tmp_path)
    (ds / "acc.json").write_text('{"acc": 1}\n')
    for value in ("acc.json", "link/secret.json"):
        git("config", "-f", ".datalad/config", "--add", "rr.metrics.file", value, cwd=ds)
    commit_all(ds)
    for args in (["metrics", "diff", "--json"], ["metrics", "show", "--json"]):
        proc = rr(*args, cwd=ds, check=False)
        assert "31337" not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
    for value in ("../secret.json", str(tmp_path / "secret.json")):
        git("config", "-f", ".datalad/config", "--add", "rr.metrics.file", value, cwd=ds)
        proc = rr("metrics", "diff", "--json", cwd=ds, check=False)
        assert "31337" not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr


def test_committed_config_files_leading_outside_are_not_read(ds, tmp_path):
    outside = tmp_path / "gitconfig-elsewhere"
    outside.write_text('[datalad "run"]\n\trecord-directory = ../x\n[submodule "s"]\n'
                       '\tpath = ../x\n\turl = /x\n')
    (ds / ".datalad" / "config").unlink()
    (ds / ".datalad" / "config").symlink_to(outside)
    (ds / ".gitmodules").symlink_to(outside)
    refused(rr("run", "true", cwd=ds, check=False), ".datalad/config")
    from recorder.dataset import Dataset
    from recorder.errors import RecorderError

    with pytest.raises(RecorderError, match=".gitmodules"):
        Dataset(ds).subdatasets()


def test_a_dataset_procedure_is_shown_before_it_runs(ds):
    pdir = ds / ".datalad" / "procedures"
    pdir.mkdir()
    (pdir / "tidy.sh").write_text('echo tidy > "$1/tidy.txt"\n')
    commit_all(ds)
    proc = rr("run-procedure", "tidy", cwd=ds)
    shown = [line for line in proc.stderr.splitlines() if line.startswith("rr: running: ")]
    assert any(str(pdir / "tidy.sh") in line for line in shown), proc.stderr
    assert (ds / "tidy.txt").read_text() == "tidy\n"


def test_dataset_procedure_symlinked_to_a_file_elsewhere_is_not_run(ds, tmp_path):
    script = tmp_path / "elsewhere.sh"
    script.write_text(f'touch "{tmp_path}/PWNED"\n')
    pdir = ds / ".datalad" / "procedures"
    pdir.mkdir()
    (pdir / "evil.sh").symlink_to(script)
    commit_all(ds)
    refused(rr("run-procedure", "evil", cwd=ds, check=False), "unknown procedure")
    assert not (tmp_path / "PWNED").exists()
