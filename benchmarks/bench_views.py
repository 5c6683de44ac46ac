"""rr's history views against the floor, as ratios in one run (issue #22 items 3 and 4).

    python benchmarks/bench_views.py [--commits 1000] [--rounds 7] [--baseline DIR]
                                     [--memory-against 1000] [--commit-graph]

For each of ``rr log``, ``rr rerun --report --since=``, ``rr metrics show -A``, ``rr graph``
over COMMITS run commits (each with a metrics file), and ``rr --help``: the median over paired
rounds of rr's time against ``git log`` of the same commits (the git work) and against
``python -c pass`` (the interpreter's start-up), each round timing all of them back to
back, so that a loaded machine slows both sides alike.  Read the ratios, not the times;
the CPU column (user + system time of the command and its children) is the least disturbed
by other load.

With ``--baseline DIR`` (a checkout of rr, e.g. a worktree of main), each rr case also runs
with that checkout's ``recorder`` first on the import path, in the same rounds: before and
after a change, side by side.

With ``--commit-graph`` both histories get the commit-graph file (``git commit-graph write
--reachable``) that git's automatic gc writes in a history ``rr run`` builds (rr runs git's
auto maintenance after its commits, as git commit does; gc.writeCommitGraph is on by
default): git's ``--topo-order`` walk then streams instead of reading every commit before
its first line.  Without it the history is as ``git fast-import`` (or a fresh clone) leaves
it, with none.

Memory: the peak RSS of each command (the largest of its process tree, from ``wait4``), and
with ``--memory-against N`` (default 1000; 0: none) its ratio to the same command's over an
N-commit history built beside it: the views stream, so a long history should cost about what
a short one does (issue #22 item 6: at most ~1.5x from 1,000 to 20,000 commits).  A child's
peak RSS counts the benchmark's own pages until it execs: the floors' figures are that floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RR, write_commit_graph


def _once(cmd: list[str], cwd: Path, env: dict[str, str] | None = None
          ) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of ``cmd`` and the processes it waited for."""
    t = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, cmd)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _history(path: Path, n: int, commit_graph: bool = False) -> None:
    """bench_history's history, built in a child process: this one stays small, as the
    pages a child has before it execs count in its peak RSS."""
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from bench_history import history; history(Path(sys.argv[1]), "
                    "int(sys.argv[2]))", str(path), str(n)], cwd=here, check=True)
    if commit_graph:
        write_commit_graph(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--baseline", help="a checkout of rr to time beside this one")
    ap.add_argument("--memory-against", type=int, default=1000,
                    help="the peak RSS also over a history this long, as a ratio (0: none)")
    ap.add_argument("--commit-graph", action="store_true",
                    help="write git's commit-graph in the histories (as git's gc does)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-views-") as tmp:
        ds = Path(tmp) / "hist"
        _history(ds, args.commits, args.commit_graph)
        floors = {"git log": ["git", "log", "--format=%H%x00%P%x00%an%x00%aI%x00%B", "-z"],
                  "python -c pass": [sys.executable, "-c", "pass"]}
        cases = {"rr log": [RR, "log"],
                 "rr rerun --report": [RR, "rerun", "--report", "--since="],
                 "rr metrics show -A": [RR, "metrics", "show", "-A", "metrics.json"],
                 "rr graph": [RR, "graph", "-o", str(Path(tmp) / "graph.dot")],
                 "rr --help": [RR, "--help"]}
        runs: list[tuple[str, list[str], dict[str, str] | None]] = [
            *((name, cmd, None) for name, cmd in floors.items()),
            *((name, cmd, None) for name, cmd in cases.items())]
        if args.baseline:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(args.baseline))
            runs += [(f"{name} (baseline)", cmd, env) for name, cmd in cases.items()]
        for _name, cmd, env in runs:  # warm caches and bytecode
            _once(cmd, ds, env)
        times: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in runs}
        for _ in range(args.rounds):
            for name, cmd, env in runs:
                times[name].append(_once(cmd, ds, env))
        small: dict[str, float] = {}
        if args.memory_against and args.memory_against != args.commits:
            short = Path(tmp) / "short"
            _history(short, args.memory_against, args.commit_graph)
            for name, cmd, env in runs:
                if name.startswith("rr "):
                    small[name] = statistics.median(_once(cmd, short, env)[2] for _ in range(3))
        graph = "with" if args.commit_graph else "without"
        print(f"\n{args.commits} run commits ({graph} a commit-graph), {args.rounds} paired "
              "rounds (medians)")
        print(f"{'case':30} {'wall ms':>8} {'CPU ms':>7} {'x git log':>10} "
              f"{'x python -c pass':>17} {'x baseline':>11} {'RSS MB':>7}"
              + (f" {'x ' + str(args.memory_against) + ' commits':>15}" if small else ""))

        def ratio(a: str, b: str) -> float:
            return statistics.median(x[0] / y[0] for x, y in zip(times[a], times[b]))

        for name in times:
            base = f"{name} (baseline)"
            versus = f"{ratio(name, base):10.2f}x" if base in times else " " * 11
            rss = statistics.median(t[2] for t in times[name])
            grown = f" {rss / small[name]:14.2f}x" if name in small else ""
            print(f"{name:30} {1000 * statistics.median(t[0] for t in times[name]):8.1f} "
                  f"{1000 * statistics.median(t[1] for t in times[name]):7.1f} "
                  f"{ratio(name, 'git log'):9.2f}x {ratio(name, 'python -c pass'):16.2f}x "
                  f"{versus} {rss:7.1f}{grown}")


if __name__ == "__main__":
    main()
