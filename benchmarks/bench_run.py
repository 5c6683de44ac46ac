"""rr run vs the floor (command + git add -A + git commit) vs datalad run.

    python benchmarks/bench_run.py [--repeat N]

Ratios are against the floor measured in the same run on the same datasets.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import DATALAD, RR, make_dataset, peak_rss_mb, report, sh, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", default="10,10000")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-") as tmp:
        base = Path(tmp)
        start = timed([RR, "--help"], base, repeat=args.repeat)
        rows = [("rr --help", start, 1.0)]
        if DATALAD:
            dl = timed([DATALAD, "--help"], base, repeat=args.repeat)
            rows.append(("datalad --help", dl, dl / start))
        report("start-up (ratio against rr --help)", rows)
        for n in [int(x) for x in args.sizes.split(",")]:
            ds = make_dataset(base / f"ds{n}", n)
            sh("date +%N > floor.txt && git add -A && git commit -q -m floor", ds)
            floor = timed("date +%N > floor.txt && git add -A && git commit -q -m floor", ds,
                          repeat=args.repeat)
            rr = timed([RR, "run", "-o", "out.txt", "date +%N > out.txt"], ds,
                       repeat=args.repeat)
            rows = [("floor: command + git add -A + git commit", floor, 1.0),
                    ("rr run", rr, rr / floor)]
            if DATALAD:
                dl = timed([DATALAD, "run", "-o", "dl.txt", "date +%N > dl.txt"], ds,
                           repeat=args.repeat)
                rows.append(("datalad run", dl, dl / floor))
                rows.append(("rr run against datalad run", rr, rr / dl))
            report(f"run of a trivial command, {n} annexed files (ratio against the floor)",
                   rows)
            mem = peak_rss_mb([RR, "run", "-o", "out.txt", "date +%N > out.txt"], ds)
            print(f"peak memory of rr run (with the git/git-annex it waited for): {mem:.0f} MB")


if __name__ == "__main__":
    main()
