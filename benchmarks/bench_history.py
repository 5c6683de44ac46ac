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

from common import RR, report, sh


def history(path: Path, n: int) -> None:
    sh([RR, "create", "-c", "text2git", str(path)], cwd=path.parent)
    dsid = subprocess.run(["git", "config", "-f", ".datalad/config", "datalad.dataset.id"],
                          cwd=path, check=True, capture_output=True, text=True).stdout.strip()
    chunks = []
    for i in range(n):
        record = {"chain": [], "cmd": "python3 train.py", "dsid": dsid, "exit": 0,
                  "extra_inputs": [], "inputs": ["data.csv"], "outputs": ["metrics.json"],
                  "pwd": "."}
        msg = (f"[DATALAD RUNCMD] step {i}\n\n=== Do not change lines below ===\n"
               f"{json.dumps(record, indent=1, sort_keys=True)}\n"
               "^^^ Do not change lines above ^^^\n").encode()
        blob = json.dumps({"accuracy": i / n, "loss": 1 - i / n}).encode()
        start = b"from refs/heads/master^0\n" if i == 0 else b""
        chunks.append(b"commit refs/heads/master\n"
                      + f"committer rr <rr@example.invalid> {1700000000 + i} +0000\n".encode()
                      + f"data {len(msg)}\n".encode() + msg + b"\n" + start
                      + f"M 100644 inline metrics.json\ndata {len(blob)}\n".encode() + blob
                      + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(chunks),
                   check=True)
    sh(["git", "reset", "-q", "--hard", "master"], cwd=path)


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
