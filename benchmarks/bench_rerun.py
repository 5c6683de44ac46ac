"""rr rerun vs datalad rerun over ranges of trivial run commits; rr rerun --report over 1,000.

    python benchmarks/bench_rerun.py [--sizes 20,100]

Per-record cost is (time of the replay) / (number of records); ratios in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from common import DATALAD, RR, report, sh


def build(path: Path, n: int) -> str:
    sh([RR, "create", str(path)], cwd=path.parent)
    for i in range(n):
        sh([RR, "run", "-m", f"step {i}", "-o", f"out{i % 10}.txt",
            f"echo {i} >> out{i % 10}.txt"], cwd=path)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True,
                          capture_output=True, text=True).stdout.strip()


def replay(cmd: list[str], ds: Path, tip: str) -> float:
    sh(["git", "reset", "-q", "--hard", tip], cwd=ds)
    t = time.perf_counter()
    sh(cmd, cwd=ds)
    return time.perf_counter() - t


def synthetic_history(path: Path, n: int) -> None:
    sh([RR, "create", str(path)], cwd=path.parent)
    dsid = subprocess.run(["git", "config", "-f", ".datalad/config", "datalad.dataset.id"],
                          cwd=path, check=True, capture_output=True, text=True).stdout.strip()
    lines = []
    for i in range(n):
        record = {"chain": [], "cmd": f"echo {i} > x", "dsid": dsid, "exit": 0,
                  "extra_inputs": [], "inputs": [], "outputs": ["x"], "pwd": "."}
        msg = (f"[DATALAD RUNCMD] step {i}\n\n=== Do not change lines below ===\n"
               f"{json.dumps(record, indent=1, sort_keys=True)}\n"
               "^^^ Do not change lines above ^^^\n")
        data = msg.encode()
        start = b"from refs/heads/master^0\n" if i == 0 else b""
        lines.append(f"commit refs/heads/master\ncommitter rr <rr@example.invalid> "
                     f"{1700000000 + i} +0000\ndata {len(data)}\n".encode() + data + b"\n"
                     + start)
    stream = b"".join(lines)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=stream, check=True)
    sh(["git", "reset", "-q", "--hard", "master"], cwd=path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="20,100")
    ap.add_argument("--report-size", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-rerun-") as tmp:
        base = Path(tmp)
        for n in [int(x) for x in args.sizes.split(",")]:
            ds = base / f"ds{n}"
            tip = build(ds, n)
            rows = []
            rr_t = replay([RR, "rerun", f"--since=HEAD~{n}"], ds, tip)
            rows.append((f"rr rerun ({n} records) per record", rr_t / n, 1.0))
            rrb = replay([RR, "rerun", "--branch", "b_rr", f"--since=HEAD~{n}"], ds, tip)
            sh(["git", "checkout", "-q", "master"], cwd=ds)
            rows.append(("rr rerun --branch per record", rrb / n, 1.0))
            if DATALAD:
                dl = replay([DATALAD, "rerun", f"--since=HEAD~{n}"], ds, tip)
                rows.append(("datalad rerun per record", dl / n, dl / rr_t))
                dlb = replay([DATALAD, "rerun", "--branch", "b_dl", f"--since=HEAD~{n}"],
                             ds, tip)
                sh(["git", "checkout", "-q", "master"], cwd=ds)
                rows.append(("datalad rerun --branch per record", dlb / n, dlb / rrb))
            report(f"replay of {n} trivial run commits (ratio: datalad against rr)", rows)
        hist = base / "history"
        synthetic_history(hist, args.report_size)
        t = time.perf_counter()
        out = subprocess.run([RR, "rerun", "--report", "--since="], cwd=hist, check=True,
                             capture_output=True, text=True).stdout
        rep = time.perf_counter() - t
        count = len(out.splitlines())
        t = time.perf_counter()
        sh(["git", "log", "--format=%B"], cwd=hist)
        log = time.perf_counter() - t
        report(f"rr rerun --report over {count} commits (ratio against one git log)",
               [("git log --format=%B", log, 1.0), ("rr rerun --report", rep, rep / log)])


if __name__ == "__main__":
    main()
