"""Where the time of each history view goes (issue #22 item 1): git's part and Python's.

    python benchmarks/profile_views.py [--commits 20000] [--top 0] [--keep DIR]
                                       [--commit-graph]

Over COMMITS run commits (bench_history's history), for each of ``rr log``, ``rr log
--json``, ``rr rerun --report --since=``, ``rr metrics show -A``, ``rr graph``:

- ``rr``: the whole command (wall and CPU of it and its children), median of 3;
- ``git``: the git streams the view reads (``git log``, ``rev-list``, ``cat-file --batch``),
  each read whole into memory once: the git work the view cannot do without; a stream that
  is written only once git's walk ends (``--reverse``, ``--topo-order``) adds its whole
  time to the command's, one that streams runs beside Python;
- ``Python``: the CPU time of the view inside one interpreter, with git's output replayed
  from memory (start-up and imports excluded), best of 3, and per commit.

With ``--top N`` also the N functions with the most own time (cProfile) of each view.
Read the columns against each other, not the times: the machine may be loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RR, write_commit_graph

VIEWS = {"rr log": ["log"], "rr log --json": ["log", "--json"],
         "rr rerun --report": ["rerun", "--report", "--since="],
         "rr metrics show -A": ["metrics", "show", "-A", "metrics.json"],
         "rr graph": ["graph", "-o", "{tmp}/graph.dot"]}

# run inside the dataset by a child interpreter: the view in-process, git's streams replayed
_INSIDE = r'''
import cProfile, io, json, os, pstats, sys, time
from recorder.gitrepo import _runner, history
from recorder.cli import main
real = _runner.stream_git
kept, streams = {}, []

def replay(args, cwd, size=1 << 16, input=None):
    key = (tuple(args), input)
    if key not in kept:
        t = time.perf_counter()
        kept[key] = list(real(args, cwd, size, input))
        streams.append([args[0], time.perf_counter() - t])  # git alone, read into a list
    return iter(kept[key])

history.stream_git = replay
argv, top = json.loads(sys.argv[1]), int(sys.argv[2])

def once():
    sys.argv = ["rr", *argv]
    out, sys.stdout = sys.stdout, open(os.devnull, "w")
    err, sys.stderr = sys.stderr, open(os.devnull, "w")
    try:
        main()
    except SystemExit:
        pass
    finally:
        sys.stdout.close(), sys.stderr.close()
        sys.stdout, sys.stderr = out, err

once()  # the streams read from git once, and every module imported
cpu = []
for _ in range(3):
    t = time.process_time()
    once()
    cpu.append(time.process_time() - t)
text = ""
if top:
    prof = cProfile.Profile()
    prof.enable()
    once()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
print(json.dumps({"cpu": min(cpu), "streams": streams, "profile": text}))
'''


def _git_alone(ds: Path, args: list[str], data: bytes | None) -> float:
    """Wall time of ``git ARGS`` alone, its output read from a pipe (median of 3)."""
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(["git", *args], cwd=ds, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _whole(ds: Path, argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) of ``rr ARGV`` and its children, medians of 3."""
    walls, cpus = [], []
    for _ in range(3):
        t = time.perf_counter()
        child = subprocess.Popen([RR, *argv], cwd=ds, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        _pid, _status, usage = os.wait4(child.pid, 0)
        walls.append(time.perf_counter() - t)
        cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=20000)
    ap.add_argument("--top", type=int, default=0, help="cProfile's top N functions per view")
    ap.add_argument("--keep", help="build the history here (or reuse it)")
    ap.add_argument("--commit-graph", action="store_true",
                    help="write git's commit-graph first (as git's gc does in rr's histories)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-profile-views-") as tmp:
        ds = Path(args.keep).absolute() if args.keep else Path(tmp) / "hist"
        if not ds.exists():
            here = os.path.dirname(os.path.abspath(__file__))
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from bench_history import history; history(Path(sys.argv[1]), "
                            "int(sys.argv[2]))", str(ds), str(args.commits)], cwd=here,
                           check=True)
        if args.commit_graph:  # as bench_views.py --commit-graph
            write_commit_graph(ds)
        n = int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=ds, check=True,
                               capture_output=True, text=True).stdout)
        floor = _git_alone(ds, ["log", "--format=%H%x00%P%x00%an%x00%aI%x00%B", "-z"], None)
        start = _whole(ds, ["--help"])
        print(f"\n{n} commits; git log of them alone: {floor * 1000:.0f} ms; "
              f"rr --help: {start[0] * 1000:.0f} ms wall")
        print(f"{'view':22} {'rr wall':>8} {'rr CPU':>7} {'git':>6} {'Python':>7} "
              f"{'us/commit':>9}  git streams (ms alone)")
        profiles = []
        for name, argv in VIEWS.items():
            argv = [a.format(tmp=tmp) for a in argv]
            wall, cpu = _whole(ds, argv)
            done = subprocess.run([sys.executable, "-c", _INSIDE, json.dumps(argv),
                                   str(args.top)], cwd=ds, check=True, capture_output=True,
                                  text=True)
            got = json.loads(done.stdout.strip().splitlines()[-1])
            gits = got["streams"]
            git_ms = sum(t for _, t in gits) * 1000
            print(f"{name:22} {wall * 1000:8.0f} {cpu * 1000:7.0f} {git_ms:6.0f} "
                  f"{got['cpu'] * 1000:7.0f} {got['cpu'] * 1e6 / n:9.2f}  "
                  + ", ".join(f"{g} {t * 1000:.0f}" for g, t in gits))
            if got["profile"]:
                profiles.append((name, got["profile"]))
        for name, text in profiles:
            print(f"\n=== {name}\n{text}")


if __name__ == "__main__":
    main()
