"""Where rr's time goes: the processes each command spawns, and the time spent in Python.

    python benchmarks/profile_breakdown.py [--files 10000] [--records 20] [--commits 1000]

Each scenario of the speed issue is run once under ``strace -f -ttt -e trace=execve`` (the
process tree's execs and exits, with timestamps) and printed as a breakdown:

    rr run, 10 files         wall 0.21 s   python-only 0.09 s   14 processes
      git status             2 x   31 ms
      git-annex add          1 x   55 ms
      ...

"python-only" is the wall time during which rr's own process had no child running: its
start-up, imports and work in Python.  Children's times are their lifetimes (exec to exit;
parallel children overlap, so the column can add up to more than the wall time).  strace
slows every exec a little: read the shape (which processes, how many, which dominate), and
time with the bench_*.py scripts.  Needs strace (Debian: apt-get install strace).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RR, sh  # noqa: E402

_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
_EXECVE = re.compile(r'execve\("([^"]*)", \[(.*?)\]')
_EXIT = re.compile(r"\+\+\+ (exited with \d+|killed by \w+)")


def _name(argv: list[str]) -> str:
    """A short name for a process: git SUBCOMMAND, git-annex SUBCOMMAND, or the program."""
    if not argv:
        return "?"
    prog = os.path.basename(argv[0])
    rest, skip = [], False
    for a in argv[1:]:
        if skip:
            skip = False
        elif a in ("-c", "-C", "--git-dir", "--work-tree"):
            skip = True
        elif not a.startswith("-"):
            rest.append(a)
    if prog == "git" and rest:
        if rest[0] == "annex" and len(rest) > 1:
            return f"git-annex {rest[1]}"
        return f"git {rest[0]}"
    if prog == "git-annex" and rest:
        return f"git-annex {rest[0]}"
    if prog.startswith("python"):
        return "python " + (os.path.basename(rest[0]) if rest else "")
    return prog


def _parse(trace: Path) -> tuple[float, float, list[tuple[str, float]], int]:
    """(wall, python-only, [(name, seconds)] of the root's descendants, root pid)."""
    start: dict[int, float] = {}
    name: dict[int, str] = {}
    end: dict[int, float] = {}
    pending: dict[int, list[str]] = {}
    root = None
    first = last = None
    for line in trace.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        pid, ts, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        first = ts if first is None else first
        last = ts
        if root is None:
            root = pid
        e = _EXECVE.search(rest)
        if e:  # an exec, finished on this line or later ("<unfinished ...>")
            pending[pid] = re.findall(r'"((?:[^"\\]|\\.)*)"', e.group(2))
        if (e or "execve resumed>" in rest) and rest.endswith("= 0"):
            start.setdefault(pid, ts)
            name[pid] = _name(pending.pop(pid, []))
        elif _EXIT.search(rest):
            end[pid] = ts
    assert root is not None and first is not None and last is not None
    wall = last - first
    if root in start:  # the root's own exec to its exit: the command's wall time
        wall = end.get(root, last) - start[root]
    children = [(name[p], end.get(p, last) - start[p]) for p in start if p != root]
    # python-only: the root's time with no child alive
    events = sorted([(start[p], 1) for p in start if p != root] +
                    [(end.get(p, last), -1) for p in start if p != root])
    alive, busy, since = 0, 0.0, None
    for ts, step in events:
        if alive == 0 and step == 1:
            since = ts
        alive += step
        if alive == 0 and since is not None:
            busy += ts - since
            since = None
    return wall, max(0.0, wall - busy), children, root


def profile(label: str, argv: list[str] | str, cwd: Path, setup=None) -> None:
    if setup:
        setup()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace"
        cmd = argv if isinstance(argv, list) else ["/bin/sh", "-c", argv]
        # --seccomp-bpf: only the traced calls stop the tracee (git-annex's threads would
        # otherwise make every process many times slower)
        subprocess.run(["strace", "-f", "-q", "--seccomp-bpf", "-ttt", "-e",
                        "trace=execve,exit_group", "-e", "signal=none", "-s", "200",
                        "-o", str(out), *cmd], cwd=cwd,
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall, py, children, _ = _parse(out)
    groups: dict[str, list[float]] = collections.defaultdict(list)
    for n, secs in children:
        groups[n].append(secs)
    print(f"{label:<34} wall {wall:6.2f} s   python-only {py:5.2f} s   "
          f"{len(children)} processes")
    for n, times in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
        print(f"    {n:<30} {len(times):4d} x {1000 * sum(times) / len(times):7.1f} ms"
              f"   total {1000 * sum(times):8.1f} ms")


def main() -> None:
    os.environ["PATH"] = f"{Path(RR).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if not shutil.which("strace"):
        sys.exit("profile_breakdown: needs strace (apt-get install strace)")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--commits", type=int, default=1_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-profile-") as tmp:
        base = Path(tmp)
        profile("rr --help", [RR, "--help"], base)
        ds = base / "ds"
        sh([RR, "create", str(ds)], base)
        profile("rr run, 10 files", [RR, "run", "-o", "out",
                                     "mkdir -p out && for i in $(seq 10); do echo $i > "
                                     "out/$i; done"], ds)
        # the first run in a new dataset pays first-use costs (git re-reads the files written
        # in the second the index was, through git-annex's filter; git-annex's version is
        # asked once): the same run again shows what every later run costs
        time.sleep(1.1)
        profile("rr run, 10 files, again", [RR, "run", "-o", "out2",
                                            "mkdir -p out2 && for i in $(seq 10); do echo $i"
                                            " > out2/$i; done"], ds)
        profile(f"rr run, {a.files} files", [RR, "run", "-o", "big",
                                             f"mkdir -p big && cd big && seq {a.files} | "
                                             "xargs touch && for f in *; do echo $f > $f; "
                                             "done"], ds)
        for i in range(a.records):
            sh([RR, "run", "-m", f"step {i}", "-o", f"r{i}", f"echo {i} > r{i}"], ds)
        profile(f"rr rerun, {a.records} records", [RR, "rerun", "--onto=", "-b", "replay",
                                                    f"HEAD~{a.records}..HEAD"], ds)
        hist = base / "hist"
        sh([RR, "create", str(hist)], base)
        # many run commits at once (one fast-import; no command runs)
        msg = ('[DATALAD RUNCMD] step\n\n=== Do not change lines below ===\n{\n "chain": [],\n'
               ' "cmd": "true",\n "exit": 0,\n "extra_inputs": [],\n "inputs": [],\n'
               ' "outputs": [],\n "pwd": "."\n}\n^^^ Do not change lines above ^^^\n').encode()
        branch = subprocess.run(["git", "symbolic-ref", "HEAD"], cwd=hist, check=True,
                                capture_output=True, text=True).stdout.strip()
        stream = bytearray()
        for i in range(a.commits):
            blob = json.dumps({"accuracy": i / a.commits}).encode()
            stream += (f"commit {branch}\nmark :{i + 1}\ncommitter bench <b@example.invalid> "
                       f"{1700000000 + i} +0000\ndata {len(msg)}\n").encode() + msg + b"\n"
            if i == 0:
                stream += f"from {branch}^0\n".encode()
            stream += f"M 100644 inline metrics.json\ndata {len(blob)}\n".encode() + blob + \
                b"\n"

        subprocess.run(["git", "fast-import", "--quiet"], cwd=hist, input=bytes(stream),
                       check=True)
        profile(f"rr log, {a.commits} commits", [RR, "log"], hist)
        profile(f"rr rerun --report, {a.commits}", [RR, "rerun", "--report", "--since="], hist)
        subprocess.run(["git", "checkout", "-q", "-f"], cwd=hist, check=True)
        profile(f"rr metrics show -A, {a.commits}", [RR, "metrics", "show", "-A",
                                                     "metrics.json"], hist)


if __name__ == "__main__":
    main()
