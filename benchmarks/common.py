"""Helpers for rr's benchmarks: timing whole commands, building datasets quickly."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
RR = str(BIN / "rr") if (BIN / "rr").exists() else shutil.which("rr") or "rr"
DATALAD = str(BIN / "datalad") if (BIN / "datalad").exists() else shutil.which("datalad")

# measured as installed: pip writes bytecode, so Python compiles nothing at start-up; an
# environment that forbids bytecode (PYTHONDONTWRITEBYTECODE) would time rr's and DataLad's
# compilers instead (rr: ~0.1 s per call)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def sh(cmd: str | list[str], cwd: Path | str, **kw) -> subprocess.CompletedProcess:
    shell = isinstance(cmd, str)
    return subprocess.run(cmd, cwd=cwd, shell=shell, check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, **kw)


def timed(cmd: str | list[str], cwd: Path | str, repeat: int = 5, setup=None) -> float:
    """Median wall time of ``cmd`` over ``repeat`` runs (``setup`` runs untimed before each)."""
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        t = time.perf_counter()
        sh(cmd, cwd)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_mb(cmd: list[str], cwd: Path | str) -> float:
    """Peak resident memory of ``cmd`` and the processes it waited for, in MB."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024


def make_dataset(path: Path, n_files: int) -> Path:
    """A dataset with ``n_files`` small annexed files, made with bulk git-annex calls."""
    sh([RR, "create", str(path)], cwd=path.parent)
    data = path / "data"
    for i in range(n_files):
        sub = data / f"d{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.dat").write_text(f"content {i}\n")
    sh(["git", "annex", "add", "--quiet", "data"], cwd=path)
    sh(["git", "commit", "-q", "-m", "data"], cwd=path)
    return path


def report(title: str, rows: list[tuple[str, float, float]]) -> None:
    print(f"\n{title}")
    print(f"{'case':44} {'seconds':>9} {'ratio':>8}")
    for name, secs, ratio in rows:
        print(f"{name:44} {secs:9.3f} {ratio:8.3f}x")
