"""rr runs and rr report over a long sweep history, against git log of the same commits.

    python benchmarks/bench_runs.py [--runs 10000] [--rounds 3]

The history is array-job records (lr x seed) each with its own metrics file, written by
fast-import.  The floor is ``git log`` of the records plus ``git cat-file --batch`` of the
metrics blobs (the git work rr runs must do); rr's figures are ratios against it, measured
round by round in the same run (median of the paired ratios).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import RR, report, run_commits, sh


def history(path: Path, n: int) -> None:
    def step(i: int, dsid: str):
        lr, seed = [0.1, 0.01, 0.001, 0.0001][i % 4], i // 4
        record = {"chain": [], "cmd": f"python3 train.py {lr} {seed}", "dsid": dsid,
                  "exit": 0, "extra_inputs": [], "inputs": ["data.csv"],
                  "outputs": [f"out/{i}/metrics.json"], "pwd": ".",
                  "rr": {"array": {"id": "a1", "index": i,
                                   "params": {"lr": str(lr), "seed": str(seed)}},
                         "duration": 1.5}}
        blob = json.dumps({"accuracy": 0.5 + (i % 97) / 200, "loss": 1 / (i + 1)}).encode()
        return f"train lr={lr} seed={seed}", record, {f"out/{i}/metrics.json": blob}

    run_commits(path, n, step)


def floor(ds: Path) -> None:
    """git log of the records, then cat-file --batch of every metrics file they name."""
    out = subprocess.run(["git", "log", "-z", "--format=%H%x00%B", "--notes=rr",
                          "--grep=^\\[DATALAD RUNCMD\\]"], cwd=ds, check=True,
                         capture_output=True).stdout.split(b"\0")
    specs = [f"{out[i].decode().strip()}:out/{i // 2}/metrics.json\n"
             for i in range(0, len(out) - 1, 2)]
    subprocess.run(["git", "cat-file", "--batch"], cwd=ds, input="".join(specs).encode(),
                   check=True, capture_output=True)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-runs-") as tmp:
        ds = Path(tmp) / "runs"
        history(ds, args.runs)
        html = Path(tmp) / "report.html"
        cases = {"rr runs --csv": [RR, "runs", "--csv"],
                 "rr runs --only-changed --sort-by accuracy": [
                     RR, "runs", "--only-changed", "--sort-by", "accuracy"],
                 "rr report (1,000 runs)": [RR, "report", "HEAD~1000..HEAD", "-o", str(html)]}
        base: list[float] = []
        times: dict[str, list[float]] = {c: [] for c in cases}
        for _ in range(args.rounds):
            b = timed(lambda: floor(ds))
            base.append(b)
            for name, cmd in cases.items():
                times[name].append(timed(lambda cmd=cmd: sh(cmd, cwd=ds)))
        rows = [("floor: git log + cat-file --batch", statistics.median(base), 1.0)]
        for name, ts in times.items():
            ratios = [t / b for t, b in zip(ts, base)]
            rows.append((name, statistics.median(ts), statistics.median(ratios)))
        report(f"rr runs over {args.runs} run commits (ratio against the git work)", rows)
        print(f"report size: {html.stat().st_size / 1e6:.2f} MB for 1,000 runs")


if __name__ == "__main__":
    main()
