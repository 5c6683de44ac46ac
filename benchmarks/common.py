"""Helpers for rr's benchmarks: timing whole commands, building datasets quickly."""

from __future__ import annotations

import json
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


def dataset_id(path: Path) -> str:
    return subprocess.run(["git", "config", "-f", ".datalad/config", "datalad.dataset.id"],
                          cwd=path, check=True, capture_output=True, text=True).stdout.strip()


def run_commits(path: Path, n: int, step, text2git: bool = False) -> None:
    """A new dataset at ``path`` with ``n`` run commits written by one ``git fast-import``
    (seconds for thousands of commits, where ``rr run`` would take minutes).

    ``step(i, dsid)`` returns ``(subject, record, files)``: the commit's subject, its run
    record (a dict, stored as DataLad does) and ``{path: bytes}`` of the files it writes.
    """
    sh([RR, "create", *(["-c", "text2git"] if text2git else []), str(path)], cwd=path.parent)
    dsid = dataset_id(path)
    chunks = []
    for i in range(n):
        subject, record, files = step(i, dsid)
        msg = (f"[DATALAD RUNCMD] {subject}\n\n=== Do not change lines below ===\n"
               f"{json.dumps(record, indent=1, sort_keys=True)}\n"
               "^^^ Do not change lines above ^^^\n").encode()
        chunks.append(b"commit refs/heads/master\n"
                      + f"committer rr <rr@example.invalid> {1700000000 + i} +0000\n".encode()
                      + f"data {len(msg)}\n".encode() + msg + b"\n"
                      + (b"from refs/heads/master^0\n" if i == 0 else b""))
        for name, blob in files.items():
            chunks.append(f"M 100644 inline {name}\ndata {len(blob)}\n".encode() + blob + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(chunks),
                   check=True)
    sh(["git", "reset", "-q", "--hard", "master"], cwd=path)


def write_commit_graph(path: Path) -> None:
    """git's commit-graph file for every commit (what git's automatic gc writes in a history
    ``rr run`` builds): ``--topo-order`` walks then stream."""
    subprocess.run(["git", "commit-graph", "write", "--reachable", "--no-progress"], cwd=path,
                   check=True)
