"""rr lineage and rr export ro-crate over a long history, against rr log in the same run.

    python benchmarks/bench_provenance.py [--commits 1000]

The history is a chain: each run reads the previous run's output (lineage walks all of it),
written with one git fast-import.  The baseline is `rr log --csv` (one `git log` over the
same records): lineage and the export read the history the same way, with one `git log --raw`
and a `cat-file --batch` or two, so their ratio to it stays flat as the history grows.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import RR, report, run_commits, sh


def chain(path: Path, n: int) -> None:
    def step(i: int, _dsid: str):
        record = {"chain": [], "cmd": f"python3 step.py s{i - 1}.txt s{i}.txt", "exit": 0,
                  "extra_inputs": [], "inputs": [f"s{i - 1}.txt"] if i else [],
                  "outputs": [f"s{i}.txt"], "pwd": "."}
        return f"step {i}", record, {f"s{i}.txt": f"{i}\n".encode()}

    run_commits(path, n, step, text2git=True)


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
