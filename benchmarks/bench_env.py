"""rr run with environment capture (rr.env, rr.resources; the default) against rr run with
capture switched off (rr.run.record-environment=false, the baseline), in one run; and rr
run --log against the baseline.

    python benchmarks/bench_env.py [--repeat N]

Each repetition times the baseline and the case back to back on the same dataset (load on the
machine changes between repetitions, not within a pair).  Reported: the medians, the median of
the paired differences in milliseconds (the budget: about 20 ms) and of the paired ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import RR, report, sh

RUN = [RR, "run", "-o", "out.txt", "date +%N > out.txt"]


def switch(on: bool) -> dict[str, str]:
    """The environment that sets rr.run.record-environment for one call (git's -c)."""
    env = dict(os.environ)
    env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="rr.run.record-environment",
               GIT_CONFIG_VALUE_0="true" if on else "false")
    return env


def once(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    sh(cmd, cwd, env=env)
    return time.perf_counter() - t


def pairs(label: str, cmd: list[str], ds: Path, repeat: int) -> tuple[str, float, float]:
    base_env, env = switch(False), switch(True)
    once(RUN, ds, base_env)
    once(cmd, ds, env)  # warm: the git-annex version is cached under .git/rr
    bases, news, diffs, ratios = [], [], [], []
    for _ in range(repeat):
        base = once(RUN, ds, base_env)
        new = once(cmd, ds, env)
        bases.append(base)
        news.append(new)
        diffs.append((new - base) * 1000)
        ratios.append(new / base)
    print(f"{label}: paired differences (ms): " + " ".join(f"{d:.0f}" for d in diffs))
    return (f"{label} (+{statistics.median(diffs):.1f} ms)", statistics.median(news),
            statistics.median(ratios))


def in_process(ds: Path, repeat: int = 500) -> float:
    """Milliseconds one capture costs inside rr (environment.measure; the dataset's config
    already read, as rr run has it; the git-annex version cache warm): the part of the
    difference that is not noise from process start-up."""
    from recorder import environment  # noqa: PLC0415  the rr on the import path
    from recorder.dataset import Dataset  # noqa: PLC0415

    d = Dataset(ds)
    environment.measure(d, 0.1, None)
    t = time.perf_counter()
    for _ in range(repeat):
        environment.measure(d, 0.1, None)
    return (time.perf_counter() - t) / repeat * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-") as tmp:
        ds = Path(tmp) / "ds"
        sh([RR, "create", str(ds)], cwd=tmp)
        base = statistics.median(once(RUN, ds, switch(False)) for _ in range(args.repeat))
        rows = [("rr run, capture off (baseline)", base, 1.0),
                pairs("rr run, capture on", RUN, ds, args.repeat),
                pairs("rr run --env-record HOME,PATH", [RR, "run", "--env-record", "HOME",
                                                        "--env-record", "PATH", *RUN[2:]],
                      ds, args.repeat),
                pairs("rr run --log", [RR, "run", "--log", *RUN[2:]], ds, args.repeat)]
        report("environment capture (ratio: median of paired ratios against capture off)",
               rows)
        print(f"\nin process: one capture (environment.measure) takes "
              f"{in_process(ds):.2f} ms")


if __name__ == "__main__":
    main()
