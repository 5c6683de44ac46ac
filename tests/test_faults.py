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
