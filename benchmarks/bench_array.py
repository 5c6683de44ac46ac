"""Array jobs (rr run --param ... --jobs 2) against the serial loop of rr runs and the floor.

    python benchmarks/bench_array.py [--n 1000] [--loop-n 100] [--sleep-n 30]

- N no-op jobs (each writes one small file) with --jobs 2, against the serial loop of N
  ``rr run``s and against the floor, N x (command + git add + git commit).  The loop is timed
  on ``--loop-n`` runs and scaled to N (one rr run costs the same at run 10 and run 1,000).
- The per-job overhead early (jobs 5-15) against late (the last 10 jobs), from the times the
  job results stream in (--json); it must not grow with the number of jobs.
- The time from the last job's result to the end (history written with fast-import, work tree
  fast-forwarded, git-annex journal committed, worktrees removed), per job.
- 1-second jobs with --jobs 2 against --jobs 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from common import RR, report, sh


def array_stream(ds: Path, args: list[str]) -> tuple[float, list[float]]:
    """Wall time of ``rr run --json ARGS`` and the arrival time of each result line."""
    t0 = time.perf_counter()
    child = subprocess.Popen([RR, "run", "--json", *args], cwd=ds, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    arrivals = []
    assert child.stdout is not None
    for line in child.stdout:
        json.loads(line)
        arrivals.append(time.perf_counter() - t0)
    assert child.wait() == 0
    return time.perf_counter() - t0, arrivals


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--loop-n", type=int, default=100)
    ap.add_argument("--sleep-n", type=int, default=30)
    args = ap.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory(prefix="rr-bench-array-") as tmp:
        base = Path(tmp)
        values = ",".join(str(i) for i in range(n))
        ds = base / "array"
        sh([RR, "create", "-c", "text2git", str(ds)], cwd=base)
        total, arrivals = array_stream(ds, ["-J", "2", "--param", f"i={values}",
                                            "-o", "out/{i}", "mkdir -p out; echo {i} > out/{i}"])
        jobs = arrivals[:-1]  # the last line is the history's
        early = (jobs[15] - jobs[5]) / 10
        late = (jobs[-1] - jobs[-11]) / 10
        history = (arrivals[-1] - jobs[-1]) / n

        floor_ds = base / "floor"
        sh([RR, "create", "-c", "text2git", str(floor_ds)], cwd=base)
        t = time.perf_counter()
        sh(f"mkdir out && for i in $(seq 0 {n - 1}); do echo $i > out/$i && git add out/$i "
           "&& git commit -q -m $i; done", floor_ds)
        floor = time.perf_counter() - t

        loop_ds = base / "loop"
        sh([RR, "create", "-c", "text2git", str(loop_ds)], cwd=base)
        t = time.perf_counter()
        sh(f"mkdir out && for i in $(seq 0 {args.loop_n - 1}); do {RR} run -o out/$i "
           "\"echo $i > out/$i\"; done", loop_ds)
        loop = (time.perf_counter() - t) * n / args.loop_n

        report(f"{n} no-op jobs (ratio against the floor)", [
            (f"floor: {n} x (command + git add + commit)", floor, 1.0),
            (f"serial loop of {n} rr run (from {args.loop_n})", loop, loop / floor),
            (f"rr run --param ({n} rows) --jobs 2", total, total / floor),
            ("  the same against the loop", total, total / loop),
        ])
        report("per-job overhead (ratio against job 10)", [
            ("jobs 5-15, per job", early, 1.0),
            (f"jobs {n - 10}-{n}, per job", late, late / early),
            ("history + clean-up, per job", history, history / early),
        ])

        m = args.sleep_n
        sleeps = ",".join(str(i) for i in range(m))
        serial_ds = base / "sleep1"
        sh([RR, "create", "-c", "text2git", str(serial_ds)], cwd=base)
        one, _ = array_stream(serial_ds, ["--param", f"i={sleeps}", "-o", "out/{i}",
                                          "sleep 1; mkdir -p out; echo {i} > out/{i}"])
        par_ds = base / "sleep2"
        sh([RR, "create", "-c", "text2git", str(par_ds)], cwd=base)
        two, _ = array_stream(par_ds, ["-J", "2", "--param", f"i={sleeps}", "-o", "out/{i}",
                                       "sleep 1; mkdir -p out; echo {i} > out/{i}"])
        report(f"{m} one-second jobs (ratio: speed-up against --jobs 1)", [
            ("--jobs 1", one, 1.0),
            ("--jobs 2", two, one / two),
        ])


if __name__ == "__main__":
    main()
