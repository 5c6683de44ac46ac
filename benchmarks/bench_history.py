"""rr metrics show -A and rr log over a long history vs checking out every revision.

    python benchmarks/bench_history.py [--commits 1000]

The naive baseline reads the metrics file after `git checkout` of each revision (measured on
the first 100 revisions and scaled), ratios in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from common import RR, report, run_commits, sh


def history(path: Path, n: int) -> None:
    def step(i: int, dsid: str):
        record = {"chain": [], "cmd": "python3 train.py", "dsid": dsid, "exit": 0,
                  "extra_inputs": [], "inputs": ["data.csv"], "outputs": ["metrics.json"],
                  "pwd": "."}
        blob = json.dumps({"accuracy": i / n, "loss": 1 - i / n}).encode()
        return f"step {i}", record, {"metrics.json": blob}

    run_commits(path, n, step, text2git=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-hist-") as tmp:
        ds = Path(tmp) / "hist"
        history(ds, args.commits)
        revs = subprocess.run(["git", "rev-list", "--reverse", "HEAD"], cwd=ds, check=True,
                              capture_output=True, text=True).stdout.split()
        sample = revs[-100:]
        t = time.perf_counter()
        for rev in sample:
            sh(["git", "checkout", "-q", rev], cwd=ds)
            json.loads((ds / "metrics.json").read_text())
        naive = (time.perf_counter() - t) * len(revs) / len(sample)
        sh(["git", "checkout", "-q", "master"], cwd=ds)
        t = time.perf_counter()
        sh([RR, "metrics", "show", "-A", "metrics.json", "--csv"], cwd=ds)
        show = time.perf_counter() - t
        t = time.perf_counter()
        sh([RR, "log", "--csv"], cwd=ds)
        logt = time.perf_counter() - t
        report(f"metrics over {len(revs)} commits (ratio against a checkout per revision)",
               [("checkout + read per revision (scaled)", naive, 1.0),
                ("rr metrics show -A", show, show / naive),
                ("rr log", logt, logt / naive)])


if __name__ == "__main__":
    main()
