"""rr rerun --verify of a range against the plain rr rerun --onto= of the same range.

    python benchmarks/bench_verify.py [--size 20] [--repeat 3]

Both re-execute every record at the range's start; --verify does it in scratch worktrees at
each record's own parent and compares each outcome with the record's commit, the plain rerun
replays onto a detached HEAD.  The target: --verify at most 1.15x the plain rerun.  Ratios in
one run (the medians of --repeat runs each, alternated).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import RR, report, sh


def build(path: Path, n: int) -> str:
    sh([RR, "create", str(path)], cwd=path.parent)
    for i in range(n):
        sh([RR, "run", "-m", f"step {i}", "-o", f"out{i % 10}.txt",
            f"echo {i} >> out{i % 10}.txt"], cwd=path)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True,
                          capture_output=True, text=True).stdout.strip()


def once(cmd: list[str], ds: Path, tip: str) -> float:
    sh(["git", "checkout", "-q", "--detach", tip], cwd=ds)
    t = time.perf_counter()
    sh(cmd, cwd=ds)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.size
    with tempfile.TemporaryDirectory(prefix="rr-bench-verify-") as tmp:
        ds = Path(tmp) / "ds"
        tip = build(ds, n)
        cases = {"rr rerun --onto=": [RR, "rerun", "--onto=", f"--since=HEAD~{n}"],
                 "rr rerun --verify --no-notes": [RR, "rerun", "--verify", "--no-notes",
                                                  f"--since=HEAD~{n}"],
                 "rr rerun --verify": [RR, "rerun", "--verify", f"--since=HEAD~{n}"]}
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeat):
            for name, cmd in cases.items():
                times[name].append(once(cmd, ds, tip))
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["rr rerun --onto="]
        report(f"re-executing {n} records (ratio against the plain rerun; target <= 1.15x)",
               [(k, v, v / base) for k, v in med.items()])


if __name__ == "__main__":
    main()
