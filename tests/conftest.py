"""Shared fixtures: real git, real git-annex, datasets copied from a per-session template.

Two ways to call rr: ``rr(...)`` runs the installed command in a subprocess (signals, locks,
concurrency, round trips), ``rr_in(...)`` runs it in this process through typer's CliRunner
(arguments, usage errors and error lines: about a hundred times faster)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RR = str(Path(sys.executable).with_name("rr"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Never touch the real ~/.gitconfig: a private HOME with a git identity."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = rr test\n\temail = rr-test@example.invalid\n"
        "[init]\n\tdefaultBranch = master\n"
        "[annex]\n\tsecurehashesonly = false\n"
        # tests serve downloads from a local HTTP server; git-annex refuses loopback otherwise
        "[annex \"security\"]\n\tallowed-ip-addresses = 127.0.0.1\n",
        encoding="utf-8",
    )
    old = {k: os.environ.get(k) for k in ("HOME", "GIT_CONFIG_NOSYSTEM", "XDG_CONFIG_HOME")}
    os.environ["HOME"] = str(home)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["RR_OFFLINE"] = "1"  # tests never ask a registry for an image
    os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def rr(*args: str, cwd: str | os.PathLike[str] | None = None, check: bool = True,
       input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed rr command line and capture its output."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run([RR, *args], cwd=cwd, capture_output=True, text=True, input=input,
                          env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"rr {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def rr_in(*args: str, cwd: str | os.PathLike[str] | None = None, input: str | None = None):
    """Run rr in this process (typer's CliRunner) and return its result (``exit_code``,
    ``stdout``, ``stderr``).  Nothing leaks into the next test: the working directory, the
    environment and the CLI's --debug state are restored.  An exception that rr let through
    (a traceback for the user) is raised here."""
    from typer.testing import CliRunner

    from recorder.cli import app
    from recorder.cli.base import STATE

    old_cwd, old_env = os.getcwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(app, list(args), input=input, prog_name="rr")
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        STATE["debug"] = False
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_error_line(stderr: str) -> str:
    """The one ``rr: error:`` line of an output that has no traceback."""
    lines = [x for x in stderr.splitlines() if x.startswith("rr: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def git(*args: str, cwd: str | os.PathLike[str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def annex(*args: str, cwd: str | os.PathLike[str]) -> str:
    return subprocess.run(["git", "annex", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def last_message(cwd: str | os.PathLike[str], rev: str = "HEAD") -> str:
    return subprocess.run(["git", "log", "-1", "--format=%B", rev], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def commit_count(cwd: str | os.PathLike[str]) -> int:
    return int(git("rev-list", "--count", "HEAD", cwd=cwd).strip())


@pytest.fixture(scope="session")
def _template(tmp_path_factory, _isolated_home) -> Path:
    from recorder import api

    path = tmp_path_factory.mktemp("template") / "ds"
    api.create(path)
    return path


@pytest.fixture
def ds(tmp_path, _template) -> Path:
    """A fresh, clean dataset (a copy of a template made once per session)."""
    target = tmp_path / "ds"
    shutil.copytree(_template, target, symlinks=True)
    return target


@pytest.fixture
def ds_with_data(ds) -> Path:
    """A dataset with two annexed text files under data/ and a small script in git."""
    (ds / "data").mkdir()
    (ds / "data" / "a.txt").write_text("alpha\n")
    (ds / "data" / "b.txt").write_text("beta\n")
    (ds / "code").mkdir()
    (ds / "code" / "count.sh").write_text("#!/bin/sh\nwc -l \"$@\"\n")
    rr("save", "-m", "add data", cwd=ds)
    return ds


def has_datalad() -> bool:
    return shutil.which("datalad") is not None


needs_datalad = pytest.mark.skipif(not has_datalad(), reason="DataLad is not installed")


def docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def busybox_image() -> str:
    """A tiny local image (static busybox), built offline with docker import."""
    if not docker_engine():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine in CI: tools/test.sh should have started dockerd")
        pytest.skip("no Docker engine on this machine")
    ref = "rrtest/busybox:1"
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0:
        return ref
    busybox = shutil.which("busybox") or "/bin/busybox"
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for tool in ("sh", "cat", "echo", "ls", "id", "env", "wc", "sleep", "date", "mkdir",
                     "rm", "test", "true", "false", "pwd", "touch", "sort", "head"):
            info = tarfile.TarInfo(f"bin/{tool}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
    subprocess.run(["docker", "import", "-", ref], input=buf.getvalue(), check=True,
                   capture_output=True)
    return ref


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> None:
    """A one-node Slurm cluster on this machine (tools/slurm.sh), started once for the whole
    test run and stopped after it (tests/slurm_cluster.py); skips when Slurm cannot run."""
    from tests import slurm_cluster

    shared = tmp_path_factory.getbasetemp().parent  # one directory for all xdist workers
    reason = slurm_cluster.acquire(shared)
    if reason:
        pytest.skip(reason)
    yield
    slurm_cluster.release(shared)


@pytest.fixture
def counted(ds, tmp_path):
    """A dataset with an input, and a command that copies it and appends a line to a marker
    outside the dataset each time it executes: (dataset, marker, command)."""
    marker = tmp_path / "marker"
    (ds / "in.txt").write_text("one\n")
    rr("save", "-m", "input", cwd=ds)
    cmd = f"cat in.txt > out.txt; head -c 3000 /dev/urandom >> out.txt; echo x >> {marker}"
    return ds, marker, cmd


@pytest.fixture
def started(tmp_path, monkeypatch):
    """The git-annex processes rr's tools start: a logging wrapper first on PATH; call the
    fixture's value for the lines of one subcommand (``started()``: the adds; git may start
    git-annex's filter on its own)."""
    from recorder import proc

    bindir = tmp_path / "wrap-bin"
    bindir.mkdir()
    log = tmp_path / "annex-starts.log"
    real = shutil.which("git-annex")
    assert real
    script = bindir / "git-annex"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(proc, "_BASE_ENV", None)

    def starts(sub: str = "add") -> list[str]:
        lines = log.read_text().splitlines() if log.exists() else []
        return [line for line in lines if line.startswith(sub + " ")]
    return starts


def one_commit_repo(tmp_path: Path) -> tuple[Path, str]:
    """A plain git repository with one empty commit: (its path, the commit)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "one", cwd=repo)
    return repo, git("rev-parse", "HEAD", cwd=repo).strip()
