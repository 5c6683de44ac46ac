"""rr's history views against the floor, as ratios in one run (issue #22 items 3 and 4).

    python benchmarks/bench_views.py [--commits 1000] [--rounds 7]

For each of ``rr log``, ``rr rerun --report --since=``, ``rr metrics show -A`` over COMMITS
run commits (each with a metrics file), and ``rr --help``: the median over paired rounds
of rr's time against ``git log`` of the same commits (the git work) and against
``python -c pass`` (the interpreter's start-up), each round timing all of them back to
back, so that a loaded machine slows both sides alike.  Read the ratios, not the times;
the CPU column (user + system time of the command and its children) is the least disturbed
by other load.

With ``--baseline DIR`` (a checkout of rr, e.g. a worktree of main), each rr case also runs
with that checkout's ``recorder`` first on the import path, in the same rounds: before and
after a change, side by side.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_history import history
from common import RR


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(cmd: list[str], cwd: Path, env: dict[str, str] | None = None
          ) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` and the processes it waited for."""
    c, t = _cpu(), time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t, _cpu() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--baseline", help="a checkout of rr to time beside this one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-views-") as tmp:
        ds = Path(tmp) / "hist"
        history(ds, args.commits)
        floors = {"git log": ["git", "log", "--format=%H%x00%P%x00%an%x00%aI%x00%B", "-z"],
                  "python -c pass": [sys.executable, "-c", "pass"]}
        cases = {"rr log": [RR, "log"],
                 "rr rerun --report": [RR, "rerun", "--report", "--since="],
                 "rr metrics show -A": [RR, "metrics", "show", "-A", "metrics.json"],
                 "rr --help": [RR, "--help"]}
        runs: list[tuple[str, list[str], dict[str, str] | None]] = [
            *((name, cmd, None) for name, cmd in floors.items()),
            *((name, cmd, None) for name, cmd in cases.items())]
        if args.baseline:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(args.baseline))
            runs += [(f"{name} (baseline)", cmd, env) for name, cmd in cases.items()]
        for _name, cmd, env in runs:  # warm caches and bytecode
            _once(cmd, ds, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in runs}
        for _ in range(args.rounds):
            for name, cmd, env in runs:
                times[name].append(_once(cmd, ds, env))
        print(f"\n{args.commits} run commits, {args.rounds} paired rounds (medians)")
        print(f"{'case':30} {'wall ms':>8} {'CPU ms':>7} {'x git log':>10} "
              f"{'x python -c pass':>17} {'x baseline':>11}")

        def ratio(a: str, b: str) -> float:
            return statistics.median(x[0] / y[0] for x, y in zip(times[a], times[b]))

        for name in times:
            base = f"{name} (baseline)"
            versus = f"{ratio(name, base):10.2f}x" if base in times else ""
            print(f"{name:30} {1000 * statistics.median(t[0] for t in times[name]):8.1f} "
                  f"{1000 * statistics.median(t[1] for t in times[name]):7.1f} "
                  f"{ratio(name, 'git log'):9.2f}x {ratio(name, 'python -c pass'):16.2f}x "
                  f"{versus}")

if __name__ == "__main__":
    main()
