"""Containers: registry (DataLad-compatible config), Docker for real, Singularity/Apptainer and
Podman at the command-line level."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recorder import record as records
from recorder.containers import execute
from tests.conftest import commit_count, git, last_message, needs_datalad, rr


def rec(ds, rev="HEAD"):
    return records.parse_message(last_message(ds, rev))


@pytest.fixture
def cds(ds, busybox_image):
    """A dataset with the busybox image registered as container 'bb'."""
    rr("containers-add", "bb", "--url", f"dhub://{busybox_image}", cwd=ds)
    return ds


def test_add_writes_datalad_config_and_annexes_image(cds):
    cfg = git("config", "-f", ".datalad/config", "--get-regexp", "datalad.containers", cwd=cds)
    assert "datalad.containers.bb.image .datalad/environments/bb/image" in cfg
    assert "datalad.containers.bb.cmdexec rr containers-exec --runtime docker {img} {cmd}" in cfg
    image = cds / ".datalad" / "environments" / "bb" / "image"
    assert (image / "manifest.json").is_symlink()  # annexed, travels with the dataset
    assert last_message(cds).strip() == "[DATALAD] Configure containerized environment 'bb'"
    assert git("status", "--porcelain", cwd=cds) == ""
    listed = json.loads(rr("containers-list", "--json", cwd=cds).stdout)
    assert listed["name"] == "bb" and listed["runtime"] == "docker"


def test_command_runs_inside_with_shell_semantics(cds):
    rr("containers-run", "-n", "bb", "-o", "a.txt", "-o", "b.txt",
       "test -e /.dockerenv && echo in > a.txt; test -e /.dockerenv && echo in > b.txt", cwd=cds)
    assert (cds / "a.txt").read_text() == "in\n"
    assert (cds / "b.txt").read_text() == "in\n"  # the part after ';' ran inside too
    r = rec(cds)
    assert r.record["extra_inputs"] == [".datalad/environments/bb/image"]
    assert r.record["rr"]["container"]["name"] == "bb"
    assert r.record["rr"]["container"]["digest"].startswith("sha256:")
    assert r.record["cmd"].startswith("rr containers-exec --name bb --runtime docker ")


@pytest.mark.slow
def test_whole_dataset_mounted_from_subdirectory(cds):
    (cds / "data").mkdir()
    (cds / "data" / "in.txt").write_text("annexed input\n")
    (cds / "code").mkdir()
    (cds / "code" / "keep").write_text("")
    rr("save", cwd=cds)
    rr("run", "--container", "bb", "-i", "../data/in.txt", "-o", "out.txt",
       "cat {inputs} > out.txt; echo $HOME > home.txt; touch $HOME/ok", cwd=cds / "code")
    assert (cds / "code" / "out.txt").read_text() == "annexed input\n"
    assert rec(cds).record["pwd"] == "code"
    st = os.stat(cds / "code" / "home.txt")
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_failing_container_command_passes_exit_code(cds):
    before = commit_count(cds)
    proc = rr("containers-run", "-n", "bb", "echo x > x.txt; exit 3", cwd=cds, check=False)
    assert proc.returncode == 3
    assert commit_count(cds) == before


@pytest.mark.slow
def test_image_loads_from_dataset_after_rmi(ds, busybox_image, tmp_path):
    # a private image: removing it must not pull the shared busybox image from under the
    # tests running in parallel
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN touch /etc/{ctx.parent.name}\n")
    ref = f"rrtest/busybox-rmi:{os.getpid()}"
    subprocess.run(["docker", "build", "-q", "--network", "none", "-t", ref, str(ctx)],
                   check=True, capture_output=True)
    rr("containers-add", "bb", "--url", f"dhub://{ref}", cwd=ds)
    image_dir = ds / ".datalad" / "environments" / "bb" / "image"
    from recorder.containers.docker import config_digest

    digest = config_digest(image_dir)
    subprocess.run(["docker", "rmi", "-f", ref, digest], capture_output=True)
    try:
        rr("containers-run", "-n", "bb", "-o", "l.txt", "echo loaded > l.txt", cwd=ds)
        assert (ds / "l.txt").read_text() == "loaded\n"
        assert rec(ds).record["rr"]["container"]["digest"] == digest
    finally:
        subprocess.run(["docker", "rmi", "-f", ref, digest], capture_output=True)


@pytest.mark.slow
def test_rerun_of_container_run_and_changed_image_noted(cds, busybox_image, tmp_path):
    rr("containers-run", "-n", "bb", "-o", "n.txt", "ls /etc | wc -l > n.txt", cwd=cds)
    first = (cds / "n.txt").read_text()
    rr("rerun", cwd=cds)  # same image, same result: no commit
    # a changed image: one more file in /etc
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN touch /etc/extra\n")
    subprocess.run(["docker", "build", "-q", "--network", "none", "-t", "rrtest/busybox:2",
                    str(ctx)], check=True, capture_output=True)
    rr("containers-add", "bb", "--update", "--url", "dhub://rrtest/busybox:2", cwd=cds)
    proc = rr("rerun", "HEAD~1", cwd=cds)
    assert "container image bb changed" in proc.stderr
    assert (cds / "n.txt").read_text() != first


def test_validation_leaves_dataset_untouched(ds, busybox_image):
    before = commit_count(ds)
    for args, needle in [
        (["bad_name", "--url", f"dhub://{busybox_image}"], "can only contain"),
        (["ok", "--url", "ftp://nowhere/x"], "unsupported image URL"),
        (["ok", "--url", f"dhub://{busybox_image}", "--extra-input", "{nope}/x"],
         "unknown placeholder"),
        (["ok", "--url", "dhub://rrtest/does-not-exist:9"], "could not be pulled"),
        (["ok", "--url", f"dhub://{busybox_image}", "--call-fmt", "run {bogus} {cmd}"],
         "unrecognized call-format placeholder"),
    ]:
        proc = rr("containers-add", *args, cwd=ds, check=False)
        assert proc.returncode in (1, 2), proc.stderr
        assert needle in proc.stderr
        assert "Traceback" not in proc.stderr
        assert git("status", "--porcelain", "--ignored", cwd=ds) == ""
        assert commit_count(ds) == before


def test_existing_name_needs_update(cds, busybox_image):
    proc = rr("containers-add", "bb", "--url", f"dhub://{busybox_image}", cwd=cds, check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr


def test_unknown_container(cds):
    proc = rr("containers-run", "-n", "nope", "true", cwd=cds, check=False)
    assert proc.returncode == 1
    assert "unknown container: nope" in proc.stderr and "bb" in proc.stderr


def test_remove_with_image(cds):
    rr("containers-remove", "bb", "--remove-image", cwd=cds)
    assert "containers.bb" not in (cds / ".datalad" / "config").read_text()
    assert not (cds / ".datalad" / "environments" / "bb" / "image").exists()
    assert last_message(cds).strip() == "[DATALAD] Remove container bb"
    assert git("status", "--porcelain", cwd=cds) == ""


@pytest.mark.slow
@needs_datalad
def test_datalad_reruns_rr_container_record(cds):
    rr("containers-run", "-n", "bb", "-o", "g.txt", "echo $RR_CONTAINER_NAME >> g.txt", cwd=cds)
    subprocess.run(["datalad", "rerun"], cwd=cds, check=True, capture_output=True)
    assert (cds / "g.txt").read_text() == "bb\nbb\n"


@pytest.mark.slow
@needs_datalad
def test_datalad_container_dataset_runs_under_rr(ds, busybox_image):
    # what `datalad containers-add dl --url dhub://IMAGE` makes (its pull step needs a registry,
    # so the adapter's save is called directly and the image registered with -i)
    image = ".datalad/environments/dl/image"
    subprocess.run([sys.executable, "-m", "datalad_container.adapters.docker", "save", busybox_image,
                    image], cwd=ds, check=True, capture_output=True)
    subprocess.run(["datalad", "save", "-m", "image"], cwd=ds, check=True, capture_output=True)
    subprocess.run(["datalad", "containers-add", "dl", "-i", image, "--call-fmt",
                    "{python} -m datalad_container.adapters.docker run {img} {cmd}"],
                   cwd=ds, check=True, capture_output=True)
    # rr runs a container that datalad-container registered (its adapter call format)
    rr("containers-run", "-n", "dl", "-o", "r.txt", "test -e /.dockerenv && echo rr > r.txt",
       cwd=ds)
    assert (ds / "r.txt").read_text() == "rr\n"
    # and replays a record that datalad containers-run wrote
    subprocess.run(["datalad", "containers-run", "-n", "dl", "-o", "d.txt",
                    "sh -c 'echo dl >> d.txt'"], cwd=ds, check=True, capture_output=True)
    assert "datalad_container.adapters.docker" in rec(ds).record["cmd"]
    rr("rerun", cwd=ds)
    assert (ds / "d.txt").read_text() == "dl\ndl\n"


# --- Singularity / Apptainer and Podman: command-line level --------------------------------


def _stub_runtime(bindir: Path, name: str) -> Path:
    """A stand-in runtime that logs its argv and runs the `sh -c CMD` tail on the host.

    It proves the command line and bookkeeping only, not container semantics."""
    log = bindir / f"{name}.log"
    script = bindir / name
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{log}"\n'
        f'env | grep -E "^(APPTAINERENV|SINGULARITYENV)_" | sort >> "{log}.env"\n'
        'if [ "$1" = pull ]; then printf "#!/usr/bin/env run-singularity\\n" > "$3"; exit 0; fi\n'
        'while [ "$1" != "sh" ]; do shift; done\n'
        'exec "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def _fake_sif(path: Path) -> None:
    path.write_bytes(b"#!/usr/bin/env run-singularity\n".ljust(32, b"\0") + b"SIF_MAGIC" +
                     b"\0" * 64)


@pytest.mark.parametrize("binary", ["apptainer", "singularity"])
def test_singularity_command_line_shim(ds, tmp_path, binary):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = _stub_runtime(bindir, binary)
    sif = tmp_path / "tool.sif"
    _fake_sif(sif)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    rr("containers-add", "tool", "--url", str(sif), cwd=ds, env=env)
    assert "cmdexec = rr containers-exec --runtime singularity {img} {cmd}" in \
        (ds / ".datalad" / "config").read_text()
    (ds / "sub").mkdir()
    (ds / "sub" / "k").write_text("")
    rr("save", cwd=ds)
    rr("containers-run", "-n", "tool", "--gpus", "-o", "o.txt", "echo hi > o.txt; echo 2 >> o.txt",
       cwd=ds / "sub", env=env)
    argv = log.read_text().splitlines()
    image = str(ds / "sub" / "../.datalad/environments/tool/image")
    as_root = ["--drop-caps", "CAP_DAC_OVERRIDE"] if os.getuid() == 0 else []
    assert argv == [
        "exec", "--cleanenv", "-B", f"{ds}:{ds}", "--pwd", str(ds / "sub"), *as_root, "--nv",
        image, "sh", "-c", "echo hi > o.txt; echo 2 >> o.txt"]
    assert (ds / "sub" / "o.txt").read_text() == "hi\n2\n"
    assert "APPTAINERENV_DATALAD_CONTAINER_NAME=tool" in Path(f"{log}.env").read_text()


def test_apptainer_preferred_over_singularity(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _stub_runtime(bindir, "apptainer")
    _stub_runtime(bindir, "singularity")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    argv, _ = execute.build_argv("singularity", tmp_path / "x.sif", ["true"], cwd=tmp_path)
    assert argv[0] == "apptainer"


def test_podman_and_runtime_flags_command_line(cds, tmp_path):
    git("config", "datalad.containers.bb.runtime-flags", "--device /dev/null --shm-size 1g",
        cwd=cds)  # machine-local, in .git/config
    image = cds / ".datalad" / "environments" / "bb" / "image"
    argv, _ = execute.build_argv("podman", image, ["echo a; echo b"], name="bb", gpus=True,
                                 cwd=cds, load=False)
    assert argv[:2] == ["podman", "run"]
    for flag in ("--rm", "-i", "--init"):
        assert flag in argv
    assert argv[argv.index("--network") + 1] == "none"
    assert argv[argv.index("-v") + 1] == f"{cds}:{cds}"
    assert argv[argv.index("-w") + 1] == str(cds)
    assert argv[argv.index("-u") + 1] == f"{os.getuid()}:{os.getgid()}"
    assert argv[argv.index("--gpus") + 1] == "all"
    assert "--device" in argv and "--shm-size" in argv
    assert argv[-3:] == ["sh", "-c", "echo a; echo b"]


@pytest.mark.parametrize("url", ["oras://ghcr.io/example/tool:1.0", "library://example/tool:1",
                                 "shub://example/tool"])
def test_singularity_pull_command_line_shim(ds, tmp_path, url):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = _stub_runtime(bindir, "apptainer")
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    rr("containers-add", "pulled", "--url", url, cwd=ds, env=env)
    image = ds / ".datalad" / "environments" / "pulled" / "image"
    assert log.read_text().splitlines() == ["pull", "--force", str(image), url]
    assert image.is_symlink()  # saved into the annex
    assert "runtime singularity" in (ds / ".datalad" / "config").read_text()


def test_singularity_url_without_runtime_is_refused(ds, tmp_path):
    before = commit_count(ds)
    env = {"PATH": "/usr/bin:/bin"}
    proc = rr("containers-add", "x", "--url", "oras://ghcr.io/example/tool:1.0", cwd=ds, env=env,
              check=False)
    assert proc.returncode == 1
    assert "neither apptainer nor singularity is installed" in proc.stderr
    assert commit_count(ds) == before and git("status", "--porcelain", cwd=ds) == ""
