"""rr rerun --verify of a range against the plain rr rerun --onto= of the same range.

    python benchmarks/bench_verify.py [--size 20] [--repeat 3]

Both re-execute every record at the range's start; --verify does it in scratch worktrees at
each record's own parent and compares each outcome with the record's commit, the plain rerun
replays onto a detached HEAD.  The target: --verify at most 1.15x the plain rerun.  Ratios in
one run: the median of --repeat paired ratios (each round times every case, rotated).
"""

from __future__ import annotations

import argparse
import resource
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


def once(cmd: list[str], ds: Path, tip: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system, of rr and every process it waited for)."""
    sh(["git", "checkout", "-q", "--detach", tip], cwd=ds)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    sh(cmd, cwd=ds)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.size
    with tempfile.TemporaryDirectory(prefix="rr-bench-verify-") as tmp:
        ds = Path(tmp) / "ds"
        tip = build(ds, n)
        cases = {"rr rerun --onto=": [RR, "rerun", "--onto=", f"--since=HEAD~{n}"],
                 "rr rerun --verify --no-notes": [RR, "rerun", "--verify", "--no-notes",
                                                  f"--since=HEAD~{n}"],
                 "rr rerun --verify": [RR, "rerun", "--verify", f"--since=HEAD~{n}"]}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        names = list(cases)
        for r in range(args.repeat):
            # each round times every case back to back, in a rotated order: the ratio of a
            # round is paired (this machine's load changes from minute to minute)
            for name in names[r % len(names):] + names[:r % len(names)]:
                times[name].append(once(cases[name], ds, tip))
        base = times["rr rerun --onto="]
        for what, i in (("wall time", 0), ("CPU time (less sensitive to the load)", 1)):
            report(f"re-executing {n} records, {what}: median of {args.repeat} paired ratios "
                   "against the plain rerun (target <= 1.15x)",
                   [(k, statistics.median(x[i] for x in v),
                     statistics.median(x[i] / b[i] for x, b in zip(v, base)))
                    for k, v in times.items()])


if __name__ == "__main__":
    main()
