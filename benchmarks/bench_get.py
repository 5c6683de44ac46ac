"""rr get of 1,000 small annexed files from a local sibling vs datalad get vs git annex get.

    python benchmarks/bench_get.py [--files 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from common import DATALAD, RR, make_dataset, report, sh


def fresh_clone(src: Path, dest: Path) -> Path:
    sh(["git", "clone", "-q", str(src), str(dest)], cwd=dest.parent)
    sh(["git", "annex", "init", "-q"], cwd=dest)
    return dest


def timed_once(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-get-") as tmp:
        base = Path(tmp)
        src = make_dataset(base / "src", args.files)
        floor = timed_once(["git", "annex", "get", "-q", "data"], fresh_clone(src, base / "a"))
        rows = [("git annex get", floor, 1.0)]
        rr = timed_once([RR, "get", "data"], fresh_clone(src, base / "b"))
        rows.append(("rr get", rr, rr / floor))
        if DATALAD:
            dl = timed_once([DATALAD, "get", "data"], fresh_clone(src, base / "c"))
            rows.append(("datalad get", dl, dl / floor))
        report(f"get of {args.files} small annexed files from a local sibling "
               "(ratio against git annex get)", rows)


if __name__ == "__main__":
    main()
