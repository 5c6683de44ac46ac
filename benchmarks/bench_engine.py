"""The engine's own overhead: 1,000 no-op tasks serially vs on a LocalCluster of 2 workers.

    python benchmarks/bench_engine.py [--tasks 1000]

Prints the wall times of one run: the serial path (no Dask), the LocalCluster path including
its start-up and shutdown, and the per-task cost once the cluster is up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recorder.engine import execute_all  # noqa: E402


def noop(x):
    return x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    n = parser.parse_args().tasks

    t = time.perf_counter()
    assert len(list(execute_all(noop, range(n)))) == n
    serial = time.perf_counter() - t

    first = []
    t = time.perf_counter()
    for i, _ in execute_all(noop, range(n), jobs=2):
        if not first:
            first.append(time.perf_counter())
    end = time.perf_counter()
    total, startup = end - t, first[0] - t
    per_task = (end - first[0]) / max(n - 1, 1)
    print(f"{n} no-op tasks: serial {serial * 1000:.1f} ms; LocalCluster(2) {total:.2f} s "
          f"(start-up to first result {startup:.2f} s, then {per_task * 1000:.2f} ms per task)")


if __name__ == "__main__":
    main()
