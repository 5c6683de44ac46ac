"""rr lineage and rr export ro-crate over a long history, against rr log in the same run.

    python benchmarks/bench_provenance.py [--commits 1000]

The history is a chain: each run reads the previous run's output (lineage walks all of it),
written with one git fast-import.  The baseline is `rr log --csv` (one `git log` over the
same records): lineage and the export read the history the same way, with one `git log --raw`
and a `cat-file --batch` or two, so their ratio to it stays flat as the history grows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import RR, report, sh


def chain(path: Path, n: int) -> None:
    sh([RR, "create", "-c", "text2git", str(path)], cwd=path.parent)
    chunks = []
    for i in range(n):
        record = {"chain": [], "cmd": f"python3 step.py s{i - 1}.txt s{i}.txt", "exit": 0,
                  "extra_inputs": [], "inputs": [f"s{i - 1}.txt"] if i else [],
                  "outputs": [f"s{i}.txt"], "pwd": "."}
        msg = (f"[DATALAD RUNCMD] step {i}\n\n=== Do not change lines below ===\n"
               f"{json.dumps(record, indent=1, sort_keys=True)}\n"
               "^^^ Do not change lines above ^^^\n").encode()
        blob = f"{i}\n".encode()
        start = b"from refs/heads/master^0\n" if i == 0 else b""
        chunks.append(b"commit refs/heads/master\n"
                      + f"committer rr <rr@example.invalid> {1700000000 + i} +0000\n".encode()
                      + f"data {len(msg)}\n".encode() + msg + b"\n" + start
                      + f"M 100644 inline s{i}.txt\ndata {len(blob)}\n".encode() + blob
                      + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(chunks),
                   check=True)
    sh(["git", "reset", "-q", "--hard", "master"], cwd=path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-prov-") as tmp:
        ds = Path(tmp) / "chain"
        chain(ds, args.commits)
        last = f"s{args.commits - 1}.txt"

        def best(cmd: list[str], setup=None) -> float:
            times = []
            for _ in range(3):
                if setup:
                    setup()
                t = time.perf_counter()
                sh(cmd, ds)
                times.append(time.perf_counter() - t)
            return min(times)

        base = best([RR, "log", "--csv"])
        lin = best([RR, "lineage", "--json", last])
        fwd = best([RR, "lineage", "--forward", "--json", "s0.txt"])
        crate = Path(tmp) / "crate"
        exp = best([RR, "export", "ro-crate", "-o", str(crate)],
                   setup=lambda: shutil.rmtree(crate, ignore_errors=True))
        report(f"provenance over {args.commits} run commits (ratio against rr log)",
               [("rr log --csv", base, 1.0),
                (f"rr lineage {last} (a {args.commits}-step chain)", lin, lin / base),
                ("rr lineage --forward s0.txt", fwd, fwd / base),
                ("rr export ro-crate", exp, exp / base)])


if __name__ == "__main__":
    main()
