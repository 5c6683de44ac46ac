"""Faults: signals at every phase of a run, SIGKILL, and failures outside rr (git-annex
missing, a read-only dataset, no Docker engine).  Everything real: a slow git-annex external
special remote, hooks that kill rr, an unprivileged user."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import RR, annex, git, rr

ROOT = Path(__file__).resolve().parents[1]

# A directory-like external special remote whose RETRIEVE waits while DIR/slow exists.
SLOW_REMOTE = r"""#!/bin/sh
dir=
echo VERSION 1
while read -r cmd a b c; do
  case "$cmd" in
    INITREMOTE|PREPARE)
      echo GETCONFIG directory; read -r _ dir
      echo "$cmd-SUCCESS" ;;
    EXTENSIONS) echo EXTENSIONS ;;
    TRANSFER)
      if [ "$a" = STORE ]; then cp "$c" "$dir/$b" && echo TRANSFER-SUCCESS STORE "$b"
      else
        while [ -e "$dir/slow" ]; do sleep 0.05; done
        cp "$dir/$b" "$c" && echo TRANSFER-SUCCESS RETRIEVE "$b"
      fi ;;
    CHECKPRESENT)
      if [ -e "$dir/$a" ]; then echo CHECKPRESENT-SUCCESS "$a"
      else echo CHECKPRESENT-FAILURE "$a"; fi ;;
    REMOVE) rm -f "$dir/$a"; echo REMOVE-SUCCESS "$a" ;;
    *) echo UNSUPPORTED-REQUEST ;;
  esac
done
"""


def _procs_in(path: Path) -> list[str]:
    """Command lines of live processes whose working directory is inside ``path``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        if state != "Z" and (cwd == str(path) or cwd.startswith(str(path) + "/")):
            found.append(cmdline.decode("utf-8", "replace").strip())
    return found


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _wait_gone(path: Path, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _procs_in(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def slow_remote(ds, tmp_path):
    """``ds`` with big.dat whose content is only on a slow special remote (slow until the
    file ``store/slow`` is removed).  Returns (ds, store, env for rr)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "git-annex-remote-rrslowtest"
    script.write_text(SLOW_REMOTE)
    script.chmod(0o755)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    os.environ["PATH"] = env["PATH"]  # for the annex() helper below; restored by monkeypatch
    store = tmp_path / "store"
    store.mkdir()
    (ds / "big.dat").write_text("content\n")
    rr("save", "-m", "data", cwd=ds)
    annex("initremote", "slow", "type=external", "externaltype=rrslowtest", "encryption=none",
          f"directory={store}", cwd=ds)
    annex("copy", "--to", "slow", "big.dat", cwd=ds)
    annex("drop", "big.dat", cwd=ds)
    (store / "slow").touch()
    return ds, store, env


@pytest.fixture(autouse=True)
def _restore_path(monkeypatch):
    monkeypatch.setenv("PATH", os.environ["PATH"])


def _start_rr(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.Popen([RR, *args], cwd=cwd, env=full, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _remote_running(ds: Path) -> bool:
    return any("rrslowtest" in c for c in _procs_in(ds))


def _assert_consistent(ds: Path) -> None:
    git("fsck", "--no-progress", cwd=ds)
    annex("fsck", "--fast", "--quiet", cwd=ds)
    assert not (ds / ".git" / "index.lock").exists()


# --- 1. one process boundary -------------------------------------------------------------


def test_ruff_finds_no_process_started_outside_proc():
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251"]
    result = subprocess.run([*ruff, "recorder", "procedures"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # the rule is live: the same check rejects a module that imports subprocess
    bad = subprocess.run([*ruff, "--stdin-filename", "recorder/leak.py", "-"], cwd=ROOT,
                         input="import subprocess\nsubprocess.run(['true'])\n",
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "TID251" in bad.stdout, bad.stdout


# --- 2. interrupts while inputs are fetched ---------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_during_fetch_stops_git_annex_and_next_run_works(slow_remote, sig):
    ds, store, env = slow_remote
    p = _start_rr(["run", "-i", "big.dat", "-o", "out.txt", "cat big.dat > out.txt"], ds, env)
    _wait_for(lambda: _remote_running(ds))
    os.kill(p.pid, sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "rr: interrupted"
    assert "Traceback" not in err
    assert _procs_in(ds) == []  # rr waited for git-annex and its special remote
    assert not (ds / "out.txt").exists()
    (store / "slow").unlink()
    rr("run", "-i", "big.dat", "-o", "out.txt", "cat big.dat > out.txt", cwd=ds, env=env)
    assert (ds / "out.txt").read_text() == "content\n"
    _assert_consistent(ds)


# --- 3. SIGKILL at any phase --------------------------------------------------------------


def test_sigkill_during_fetch_leaves_a_dataset_the_next_run_accepts(slow_remote):
    ds, store, env = slow_remote
    p = _start_rr(["run", "-i", "big.dat", "-o", "out.txt", "cat big.dat > out.txt"], ds, env)
    _wait_for(lambda: _remote_running(ds))
    p.kill()
    p.communicate(timeout=10)
    # nothing can stop the orphaned git-annex get; it finishes once the remote answers
    (store / "slow").unlink()
    assert _wait_gone(ds) == []
    _assert_consistent(ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    rr("run", "-i", "big.dat", "-o", "out.txt", "cat big.dat > out.txt", cwd=ds, env=env)
    assert (ds / "out.txt").read_text() == "content\n"


def test_sigkill_during_the_command_names_the_leftover_outputs(ds_with_data):
    ds = ds_with_data
    # the command kills rr (its parent) after writing one output and unlocking another
    p = _start_rr(["run", "-o", "out.txt", "-o", "data/a.txt",
                   "echo new > out.txt; echo changed > data/a.txt; kill -KILL $PPID; sleep 0.2"],
                  ds)
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    assert _wait_gone(ds) == []
    _assert_consistent(ds)
    status = git("status", "--porcelain", cwd=ds)
    assert "out.txt" in status and "data/a.txt" in status
    again = rr("run", "-o", "x.txt", "echo x > x.txt", cwd=ds, check=False)
    assert again.returncode == 1
    lines = again.stderr.strip().splitlines()
    assert lines[0].startswith("rr: error: the dataset has unsaved changes: ")
    assert "data/a.txt" in lines[0] and "out.txt" in lines[0]
    assert lines[1].startswith("rr: hint: ") and len(lines) == 2
    assert not (ds / "x.txt").exists()
    # annexed content was never overwritten in place: the old version is intact
    annex("fsck", "--quiet", "data/a.txt", cwd=ds)
    rr("run", "--explicit", "-o", "x.txt", "echo x > x.txt", cwd=ds)


def _hook(ds: Path, body: str) -> None:
    hook = ds / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\n" + body)
    hook.chmod(0o755)


def test_sigkill_of_rr_while_git_commits_still_makes_the_commit(ds):
    # git runs in a session of its own: killing rr does not kill a commit half-way
    _hook(ds, 'kill -KILL "$(cat .git/rr-test.pid)"\nsleep 0.3\n')
    p = _start_rr(["run", "-o", "out.txt", "echo $PPID > .git/rr-test.pid; echo hi > out.txt"],
                  ds)
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    assert _wait_gone(ds) == []
    _assert_consistent(ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    assert '"cmd": "echo $PPID' in git("log", "-1", "--format=%B", cwd=ds)
    (ds / ".git" / "hooks" / "pre-commit").unlink()
    rr("run", "-o", "next.txt", "echo next > next.txt", cwd=ds)


def test_stale_index_lock_from_a_killed_git_is_named_before_the_command_runs(ds):
    # the hook kills rr and the git commit it runs in: .git/index.lock stays behind
    _hook(ds, 'kill -KILL "$(cat .git/rr-test.pid)" $PPID\nsleep 0.3\n')
    # (git commit --only, which --explicit uses, holds index.lock while the hook runs)
    p = _start_rr(["run", "--explicit", "-o", "out.txt", "echo $PPID > .git/rr-test.pid; echo hi > out.txt"],
                  ds)
    p.communicate(timeout=30)
    assert _wait_gone(ds) == []
    assert (ds / ".git" / "index.lock").exists()
    git("fsck", "--no-progress", cwd=ds)
    (ds / ".git" / "hooks" / "pre-commit").unlink()
    again = rr("run", "--explicit", "-o", "x.txt", "echo x > x.txt", cwd=ds, check=False)
    assert again.returncode == 1
    assert again.stderr.splitlines() == [
        "rr: error: .git/index.lock exists: a git process is running in this dataset, or one "
        "was killed and left its lock",
        f"rr: hint: remove {ds / '.git' / 'index.lock'} if no git process is running"]
    assert not (ds / "x.txt").exists()  # the command did not run


def test_ensure_no_index_lock(ds):
    from recorder import gitrepo
    from recorder.errors import RecorderError

    gitrepo.ensure_no_index_lock(ds)
    (ds / ".git" / "index.lock").touch()
    with pytest.raises(RecorderError, match=r"^\.git/index\.lock exists: ") as info:
        gitrepo.ensure_no_index_lock(ds)
    assert info.value.hint == f"remove {ds / '.git' / 'index.lock'} if no git process is running"


# --- 4. faults outside rr -----------------------------------------------------------------


def _python_without_git_annex(tmp_path: Path) -> tuple[str, str]:
    """This virtual environment's interpreter and packages, seen from a bin directory that
    has no git-annex (the PyPI git-annex lives next to the interpreter); and a PATH without
    any git-annex."""
    venv = Path(sys.prefix)
    alt = tmp_path / "no-annex-venv"
    (alt / "bin").mkdir(parents=True)
    shutil.copy(venv / "pyvenv.cfg", alt / "pyvenv.cfg")
    (alt / "lib").symlink_to(venv / "lib")
    (alt / "bin" / "python3").symlink_to(os.path.realpath(sys.executable))
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if d and not os.path.exists(os.path.join(d, "git-annex")))
    return str(alt / "bin" / "python3"), path


def test_missing_git_annex_is_named_before_the_command_runs(ds, tmp_path):
    python, path = _python_without_git_annex(tmp_path)
    env = dict(os.environ, PATH=path)
    head = git("rev-parse", "HEAD", cwd=ds)
    for extra in ([], ["--explicit"]):
        result = subprocess.run([python, "-m", "recorder.cli", "run", *extra, "-o", "out.txt",
                                 "echo hi > out.txt"], cwd=ds, env=env, capture_output=True,
                                text=True)
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            "rr: error: git-annex is not installed or not on PATH",
            "rr: hint: pip install git-annex (rr depends on it)"]
        assert not (ds / "out.txt").exists()
    assert git("rev-parse", "HEAD", cwd=ds) == head


@pytest.fixture
def shared_tmp():
    """A directory an unprivileged user can reach (pytest's tmp_path is private to root)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="rr-faults-"))
    d.chmod(0o755)
    yield d
    subprocess.run(["chmod", "-R", "u+w", str(d)], check=False)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to act as an unprivileged user")
def test_read_only_dataset_is_one_line_and_left_unchanged(ds_with_data, shared_tmp):
    target = shared_tmp / "ds"
    shutil.copytree(ds_with_data, target, symlinks=True)
    home = shared_tmp / "home"
    home.mkdir()
    shutil.copy(Path(os.environ["HOME"]) / ".gitconfig", home / ".gitconfig")
    subprocess.run(["chown", "-R", "65534:65534", str(shared_tmp)], check=True)
    subprocess.run(["chmod", "-R", "a-w", str(target)], check=True)
    def git_as_root(*args: str) -> str:
        return git("-c", "safe.directory=*", *args, cwd=target)

    before = git_as_root("rev-parse", "HEAD")
    env = dict(os.environ, HOME=str(home))
    for args in (["run", "-o", "out.txt", "echo hi > out.txt"],
                 ["run", "--explicit", "-i", "data/a.txt", "-o", "data/a.txt",
                  "echo changed > data/a.txt"]):
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 RR, *args], cwd=target, env=env, capture_output=True,
                                text=True)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.splitlines()
        assert lines[0].startswith("rr: error: the dataset is not writable: "), result.stderr
        assert len(lines) == 2 and lines[1].startswith("rr: hint: ")
    assert not (target / "out.txt").exists()
    assert (target / "data" / "a.txt").read_text() == "alpha\n"
    assert git_as_root("rev-parse", "HEAD") == before
    assert git_as_root("status", "--porcelain") == ""


def _fake_docker_container(ds: Path) -> None:
    """A registered Docker container (a saved-image layout) without needing an engine."""
    img = ds / ".datalad" / "environments" / "fake" / "image"
    img.mkdir(parents=True)
    (img / "config.json").write_text('{"config": {}}')
    (img / "manifest.json").write_text('[{"Config": "config.json", "RepoTags": ["fake:1"], '
                                       '"Layers": []}]')
    git("config", "-f", ".datalad/config", "datalad.containers.fake.image",
        ".datalad/environments/fake/image", cwd=ds)
    git("config", "-f", ".datalad/config", "datalad.containers.fake.cmdexec",
        "rr containers-exec --runtime docker {img} {cmd}", cwd=ds)
    rr("save", "-m", "container", cwd=ds)


def test_unreachable_docker_engine_is_named_before_the_command_runs(ds):
    _fake_docker_container(ds)
    head = git("rev-parse", "HEAD", cwd=ds)
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = rr("containers-run", "-n", "fake", "-o", "out.txt", "echo hi > out.txt", cwd=ds,
                env=env, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0] == "rr: error: no docker engine answers here"
    assert "running:" not in result.stderr and "Traceback" not in result.stderr
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.parametrize("env", [{"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, {}])
def test_containers_add_unreachable_engine_or_missing_image(ds, env):
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    if not env and subprocess.run(["docker", "version"], capture_output=True).returncode:
        pytest.skip("no Docker engine")
    head = git("rev-parse", "HEAD", cwd=ds)
    result = rr("containers-add", "x", "--url", "dhub://rr-test/no-such-image:0", cwd=ds,
                env=env, check=False)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("rr: error: ") and len(lines) <= 2, result.stderr
    assert ("no docker engine answers here" if env else "rr-test/no-such-image:0") in lines[0]
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert git("status", "--porcelain", cwd=ds) == ""


# --- 5. options are options ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "containers-run", "run-procedure", "containers-exec"])
def test_unknown_option_before_the_command_is_a_usage_error(ds, command):
    result = rr(command, "--bogus", "echo hi > out.txt", cwd=ds, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "rr: error: no such option: --bogus",
        f"rr: hint: options go before the command; put '--' before a command that starts "
        f"with '-' (rr {command} [OPTIONS] -- CMD)"]
    assert not (ds / "out.txt").exists()


def test_options_after_the_command_and_after_double_dash_belong_to_it(ds):
    # the words after the command's first word are the command's, options or not
    rr("run", "-m", "flags", "sh", "-c", 'echo "$@" > out.txt', "sh", "--flag", "-m", "x",
       cwd=ds)
    assert (ds / "out.txt").read_text() == "--flag -m x\n"
    assert git("log", "-1", "--format=%s", cwd=ds) == "[DATALAD RUNCMD] flags\n"
    (ds / "-weird.sh").write_text("echo weird > weird.txt\n")
    rr("save", "-m", "script", cwd=ds)
    rr("run", "--", "sh", "--", "-weird.sh", cwd=ds)
    assert (ds / "weird.txt").read_text() == "weird\n"
    result = rr("run", "--explicit", "--", "--not-a-command", cwd=ds, check=False)
    assert result.returncode != 0 and "rr: running: --not-a-command" in result.stderr
