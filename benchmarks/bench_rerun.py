"""rr rerun against the per-record floor, against datalad rerun, and (``--against SRC``)
against rr imported from another source tree; rr rerun --report over 1,000 commits.

    python benchmarks/bench_rerun.py [--sizes 20,100] [--repeat 3] [--against /work/base]

The floor is what a replay must do per record, typed in one shell: the command, ``git annex
add`` of its output, and a plumbing commit (``write-tree``, ``commit-tree``, ``update-ref``).
Each round times the floor and rr rerun (and rr from SRC) back to back over the same records
on the same dataset (reset to the same commit before each), and the ratios of that round
are taken: load on the machine changes between rounds, not within one.  The medians of the
paired ratios are reported, with the single ratios beside them, and the same of CPU time
(user + system of every process, which the load of other work changes less than wall
time).  Per-record cost is (time of the replay) / (number of records).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import DATALAD, RR, report, sh

HERE = str(Path(__file__).resolve().parent.parent)


def floor_script(n: int) -> str:
    """The records' work from one shell: the command, git annex add, a plumbing commit."""
    return (f"for i in $(seq 0 {n - 1}); do f=out$((i % 10)).txt; rm -f $f; "
            "echo $i >> $f && git annex add --quiet $f && t=$(git write-tree) && "
            "c=$(echo step $i | git commit-tree $t -p HEAD) && "
            "git update-ref -m floor HEAD $c || exit 1; done")


def with_source(src: str) -> dict[str, str]:
    """The environment that makes the installed rr import its modules from the tree ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def build(path: Path, n: int) -> str:
    sh([RR, "create", str(path)], cwd=path.parent)
    for i in range(n):
        sh([RR, "run", "-m", f"step {i}", "-o", f"out{i % 10}.txt",
            f"echo {i} >> out{i % 10}.txt"], cwd=path)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True,
                          capture_output=True, text=True).stdout.strip()


def replay(cmd: list[str] | str, ds: Path, tip: str, env: dict[str, str] | None = None
           ) -> float:
    return timed_replay(cmd, ds, tip, env)[0]


def timed_replay(cmd: list[str] | str, ds: Path, tip: str, env: dict[str, str] | None = None
                 ) -> tuple[float, float]:
    """Wall time and CPU time (user + system, of all the processes it waited for) of a
    replay from ``tip``."""
    sh(["git", "reset", "-q", "--hard", tip], cwd=ds)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    sh(cmd, cwd=ds, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def paired(n: int, ds: Path, tip: str, repeat: int, src: str | None) -> None:
    """Rounds of: the floor, rr rerun from this tree (and from ``src``), over the same n
    records; the medians of the paired ratios."""
    rerun = [RR, "rerun", f"--since=HEAD~{n}"]
    here = with_source(HERE)
    there = with_source(src) if src else None
    replay(floor_script(n), ds, tip)  # warm both paths once
    replay(rerun, ds, tip, here)
    floors, news, olds, ratios, against, cpu, cpu_against = [], [], [], [], [], [], []
    cases: list[tuple[str, list[str] | str, dict[str, str] | None]] = [
        ("floor", floor_script(n), None), ("here", rerun, here)]
    if there is not None:
        cases.append(("there", rerun, there))
    for round_ in range(repeat):
        # each case first, second and last in turn: what one leaves behind (git-annex's
        # journal, the page cache) is not always charged to the same one
        turn = round_ % len(cases)
        both = {name: timed_replay(cmd, ds, tip, env)
                for name, cmd, env in cases[turn:] + cases[:turn]}
        took = {name: wall for name, (wall, _) in both.items()}
        f, r = took["floor"], took["here"]
        cpu.append(both["here"][1] / both["floor"][1])
        if there is not None:
            cpu_against.append(both["here"][1] / both["there"][1])
        floors.append(f / n)
        news.append(r / n)
        ratios.append(r / f)
        if there is not None:
            olds.append(took["there"] / n)
            against.append(r / took["there"])
    rows = [("floor per record (command, annex add, commit)", statistics.median(floors), 1.0),
            ("rr rerun per record (median paired ratio)", statistics.median(news),
             statistics.median(ratios))]
    if there is not None:
        rows.append((f"rr rerun from {src} per record", statistics.median(olds),
                     statistics.median(o / f for o, f in zip(olds, floors))))
    report(f"replay of {n} trivial run commits (ratio against the floor)", rows)
    print("paired ratios against the floor: " + " ".join(f"{x:.2f}" for x in ratios))
    print(f"CPU time (user + system) against the floor, median {statistics.median(cpu):.3f}: "
          + " ".join(f"{x:.2f}" for x in cpu))
    if there is not None:
        print(f"CPU time against {src}, median {statistics.median(cpu_against):.3f}: "
              + " ".join(f"{x:.2f}" for x in cpu_against))
    if there is not None:
        print(f"this tree against {src}, median of paired ratios "
              f"{statistics.median(against):.3f}: " + " ".join(f"{x:.2f}" for x in against))


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
    ap.add_argument("--repeat", type=int, default=6)
    ap.add_argument("--report-size", type=int, default=1000)
    ap.add_argument("--against", metavar="SRC", help="also time rr imported from SRC")
    ap.add_argument("--no-datalad", action="store_true", help="leave datalad rerun out")
    args = ap.parse_args()
    datalad = None if args.no_datalad else DATALAD
    with tempfile.TemporaryDirectory(prefix="rr-bench-rerun-") as tmp:
        base = Path(tmp)
        for n in [int(x) for x in args.sizes.split(",")]:
            ds = base / f"ds{n}"
            tip = build(ds, n)
            paired(n, ds, tip, args.repeat, args.against)
            rows = []
            rr_t = replay([RR, "rerun", f"--since=HEAD~{n}"], ds, tip)
            rows.append((f"rr rerun ({n} records) per record", rr_t / n, 1.0))
            rrb = replay([RR, "rerun", "--branch", "b_rr", f"--since=HEAD~{n}"], ds, tip)
            sh(["git", "checkout", "-q", "master"], cwd=ds)
            rows.append(("rr rerun --branch per record", rrb / n, 1.0))
            if datalad:
                dl = replay([datalad, "rerun", f"--since=HEAD~{n}"], ds, tip)
                rows.append(("datalad rerun per record", dl / n, dl / rr_t))
                dlb = replay([datalad, "rerun", "--branch", "b_dl", f"--since=HEAD~{n}"],
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
