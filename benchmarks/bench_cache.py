"""The run-cache: a replay with a warm cache against the same replay executing; the index
built from 1,000 run commits against the one ``git log`` it reads.

    python benchmarks/bench_cache.py [--records 6] [--seconds 2] [--history 1000]

1. A history of ``--records`` runs, each reading a declared input and taking ``--seconds``
   (a stand-in for real work).  ``rr rerun --no-cache --onto= --branch cold --since=``
   executes every command; ``rr rerun --onto= --branch warm --since=`` (the same range, a
   warm cache) restores every output: the marker file outside the dataset proves that no
   command ran.  Target: at most 0.1x.
2. The index rebuilt from scratch (``.git/rr-cache`` removed) over ``--history`` synthetic
   run commits, against ``git log`` of the same commits.  Target: about a second.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import RR, report, run_commits, sh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recorder import cache  # noqa: E402
from recorder.dataset import Dataset  # noqa: E402


def build(ds: Path, n: int, seconds: float, marker: Path) -> None:
    sh([RR, "create", "-c", "text2git", str(ds)], cwd=ds.parent)
    (ds / "data.txt").write_text("input\n")
    sh([RR, "save", "-m", "data"], cwd=ds)
    for i in range(n):
        sh([RR, "run", "-m", f"step {i}", "-i", "data.txt", "-o", f"out{i}.txt",
            f"sleep {seconds}; cat data.txt > out{i}.txt; echo {i} >> out{i}.txt; "
            f"echo {i} >> {marker}"], cwd=ds)


def timed(cmd: list[str], ds: Path) -> float:
    t = time.perf_counter()
    sh(cmd, cwd=ds)
    return time.perf_counter() - t


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def synthetic(ds: Path, n: int) -> None:
    """``n`` run commits with a declared input and an output each, written by fast-import."""
    def step(i: int, dsid: str):
        rec = {"chain": [], "cmd": f"cat in{i % 7}.txt > out{i % 10}.txt", "dsid": dsid,
               "exit": 0, "extra_inputs": [], "inputs": [f"in{i % 7}.txt"],
               "outputs": [f"out{i % 10}.txt"], "pwd": "."}
        return f"step {i}", rec, {f"in{i % 7}.txt": f"{i % 3}\n".encode(),
                                  f"out{i % 10}.txt": f"{i}\n".encode()}

    run_commits(ds, n, step, text2git=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--history", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-cache-") as tmp:
        base = Path(tmp)
        marker = base / "marker"
        ds = base / "ds"
        build(ds, args.records, args.seconds, marker)
        built = lines(marker)
        cold = timed([RR, "rerun", "--no-cache", "--onto=", "--branch", "cold", "--since="],
                     ds)
        executed_cold = lines(marker) - built
        sh(["git", "checkout", "-q", "master"], cwd=ds)
        warm = timed([RR, "rerun", "--onto=", "--branch", "warm", "--since="], ds)
        executed_warm = lines(marker) - built - executed_cold
        report(f"rr rerun of {args.records} runs of {args.seconds:g} s each "
               "(ratio: against executing)",
               [(f"executing ({executed_cold} commands ran)", cold, 1.0),
                (f"warm cache ({executed_warm} commands ran)", warm, warm / cold)])
        print(f"target: warm/executing <= 0.1; no command ran: {executed_warm == 0}")

        hist = base / "hist"
        synthetic(hist, args.history)
        t = time.perf_counter()
        sh(["git", "log", "--format=%H%x00%P%x00%B", "master"], cwd=hist)
        log = time.perf_counter() - t
        shutil.rmtree(hist / ".git" / "rr-cache", ignore_errors=True)
        d = Dataset(hist)
        t = time.perf_counter()
        index = cache.load_index(d)
        build_t = time.perf_counter() - t
        t = time.perf_counter()
        cache.load_index(Dataset(hist))
        load_t = time.perf_counter() - t
        cacheable = sum(1 for e in index.entries if e["key"])
        report(f"run-cache index over {args.history} run commits ({cacheable} cacheable) "
               "(ratio: against one git log)",
               [("git log of the history", log, 1.0),
                ("index built from scratch", build_t, build_t / log),
                ("index up to date: loaded", load_t, load_t / log)])


if __name__ == "__main__":
    main()
