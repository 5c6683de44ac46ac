"""rr run against the git floor (the command, git annex add, git add, git commit), and
against datalad run.

    python benchmarks/bench_run.py [--repeat N] [--sizes 10,10000] [--against SRC]

``--against SRC`` also times the same installed rr with the source tree SRC first on the import
path (for example a ``git worktree`` of the commit a change started from) in the same pairs, and
reports this tree's rr against it: the before/after of a change, measured in one run.

Each repetition times the floor and rr run back to back on the same dataset, and the ratio
of that pair is taken: load on the machine changes between repetitions, not within a pair.
The median of the paired ratios is reported, with the single ratios beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import DATALAD, RR, make_dataset, peak_rss_mb, report, sh, timed

FLOOR = ("rm -f floor.txt && date +%N > floor.txt && git annex add --quiet floor.txt && git add -A "
         "&& git commit -q -m floor")
RUN = [RR, "run", "-o", "out.txt", "date +%N > out.txt"]


def once(cmd: str | list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    sh(cmd, cwd, env=env)
    return time.perf_counter() - t


def with_source(src: str) -> dict[str, str]:
    """The environment that makes the installed rr import its modules from the tree ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def against(label: str, cmd: list[str], cwd: Path, src: str, repeat: int) -> None:
    """This tree's ``cmd`` against the same command importing from ``src``, in pairs."""
    here = with_source(str(Path(__file__).resolve().parent.parent))
    there = with_source(src)
    once(cmd, cwd, here)
    once(cmd, cwd, there)
    ratios, news, olds = [], [], []
    for _ in range(repeat):
        old = once(cmd, cwd, there)
        new = once(cmd, cwd, here)
        olds.append(old)
        news.append(new)
        ratios.append(new / old)
    report(f"{label}: this tree against {src} (ratio against {src})",
           [(f"{label} from {src}", statistics.median(olds), 1.0),
            (f"{label}, this tree (median of paired ratios)", statistics.median(news),
             statistics.median(ratios))])
    print("paired ratios: " + " ".join(f"{x:.2f}" for x in ratios))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", default="10,10000")
    ap.add_argument("--against", metavar="SRC", help="also compare with rr imported from SRC")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-") as tmp:
        base = Path(tmp)
        start = timed([RR, "--help"], base, repeat=args.repeat)
        rows = [("rr --help", start, 1.0)]
        if DATALAD:
            dl = timed([DATALAD, "--help"], base, repeat=args.repeat)
            rows.append(("datalad --help", dl, dl / start))
        report("start-up (ratio against rr --help)", rows)
        if args.against:
            against("rr --help", [RR, "--help"], base, args.against, args.repeat * 4)
        for n in [int(x) for x in args.sizes.split(",")]:
            ds = make_dataset(base / f"ds{n}", n)
            sh(FLOOR, ds)
            sh(RUN, ds)  # warm both paths once
            floors, runs, ratios = [], [], []
            for _ in range(args.repeat):
                f = once(FLOOR, ds)
                r = once(RUN, ds)
                floors.append(f)
                runs.append(r)
                ratios.append(r / f)
            floor, rr = statistics.median(floors), statistics.median(runs)
            rows = [("floor: command + git annex add + git add + commit", floor, 1.0),
                    ("rr run (median of paired ratios)", rr, statistics.median(ratios))]
            if DATALAD:
                dl = timed([DATALAD, "run", "-o", "dl.txt", "date +%N > dl.txt"], ds,
                           repeat=args.repeat)
                rows.append(("datalad run", dl, dl / floor))
                rows.append(("rr run against datalad run", rr, rr / dl))
            report(f"run of a trivial command, {n} annexed files (ratio against the floor)",
                   rows)
            print("paired ratios: " + " ".join(f"{x:.2f}" for x in ratios))
            if args.against:
                against(f"rr run, {n} files", RUN, ds, args.against, args.repeat)
            mem = peak_rss_mb(RUN, ds)
            print(f"peak memory of rr run (with the git/git-annex it waited for): {mem:.0f} MB")


if __name__ == "__main__":
    main()
