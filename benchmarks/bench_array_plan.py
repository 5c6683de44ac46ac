"""Planning an array: the output-overlap check and the per-row checks must grow linearly.

    python benchmarks/bench_array_plan.py [--n 20000]

``rr run --dry-run`` of N rows (every job: a glob output in its own directory and one sharing
a directory with the others) against N/4 rows: the ratio per row should stay near 1 (a
quadratic check makes it 4).  Also against ``rr run --dry-run`` of a single run (start-up).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import RR, report, sh


def plan_time(ds: Path, n: int) -> float:
    values = ",".join(str(i) for i in range(n))
    t = time.perf_counter()
    sh([RR, "run", "--dry-run", "--param", f"i={values}", "-o", "out/{i}/*.txt",
        "-o", "log/*_{i}.txt", "-o", "res/{i}.csv", "echo {i}"], cwd=ds)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory(prefix="rr-bench-array-plan-") as tmp:
        ds = Path(tmp) / "ds"
        sh([RR, "create", "-c", "text2git", str(ds)], cwd=tmp)
        t = time.perf_counter()
        sh([RR, "run", "--dry-run", "-o", "x", "true"], cwd=ds)
        single = time.perf_counter() - t
        quarter = plan_time(ds, n // 4)
        full = plan_time(ds, n)
        per_quarter = (quarter - single) / (n // 4)
        per_full = (full - single) / n
        report(f"planning {n} rows (per-row time, ratio against {n // 4} rows)", [
            ("rr run --dry-run (one run: start-up)", single, 1.0),
            (f"{n // 4} rows, per row", per_quarter, 1.0),
            (f"{n} rows, per row", per_full, per_full / per_quarter),
            (f"{n} rows, total", full, full / single),
        ])


if __name__ == "__main__":
    main()
