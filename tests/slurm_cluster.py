"""A one-node Slurm for the tests, started once per test run by tools/slurm.sh.

pytest-xdist runs a session per worker: the first session that needs Slurm starts it (under a
file lock in the run's shared temporary directory), every session counts itself in, and the
last one out stops it again if the tests started it (a Slurm that was already running is left
as it was).  Tests skip, with the reason, only when Slurm cannot run here.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "slurm.sh"


@contextmanager
def _locked(shared: Path):
    with open(shared / "rr-slurm.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sh(action: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True,
                          timeout=timeout)


def acquire(shared: Path) -> str | None:
    """Start Slurm if needed and count this session in; return why it cannot run, or None."""
    if not (shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("sbatch")):
        return ("Slurm is not installed (bash tools/slurm.sh install, or "
                "RR_WITH_SLURM=1 bash tools/setup.sh)")
    if os.geteuid() != 0 and not shutil.which("sudo"):
        return "starting Slurm needs root or sudo"
    with _locked(shared):
        users = shared / "rr-slurm.users"
        count = int(users.read_text() or 0) if users.exists() else 0
        if _sh("status").returncode != 0:
            try:
                proc = _sh("start")
            except subprocess.TimeoutExpired:
                return "Slurm did not start within 120 s (see /var/log/slurm/)"
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                return f"Slurm cannot run here: {last}"
            (shared / "rr-slurm.started").write_text("1")
        users.write_text(str(count + 1))
    return None


def release(shared: Path) -> None:
    with _locked(shared):
        users = shared / "rr-slurm.users"
        count = max(int(users.read_text() or 0) - 1, 0) if users.exists() else 0
        users.write_text(str(count))
        started = shared / "rr-slurm.started"
        if count == 0 and started.exists():
            _sh("stop")
            started.unlink()


def queued_jobs() -> list[str]:
    """The ids of the jobs squeue lists (every user's)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if line.strip()]
