"""Array jobs (rr run --param ... --jobs 2) against the serial loop of rr runs and the floor.

    python benchmarks/bench_array.py [--n 1000] [--loop-n 100] [--sleep-n 30]
                                     [--against SRC [--rounds 3] [--only-against]]
                                     [--breakdown]

- N no-op jobs (each writes one small file) with --jobs 2, against the serial loop of N
  ``rr run``s and against the floor, N x (command + git add + git commit).  The loop is timed
  on ``--loop-n`` runs and scaled to N (one rr run costs the same at run 10 and run 1,000).
- The per-job overhead early (jobs 5-15) against late (the last 10 jobs), from the times the
  job results stream in (--json); it must not grow with the number of jobs.
- The time from the last job's result to the end (history written with fast-import, work tree
  fast-forwarded, git-annex journal committed, worktrees removed), per job.
- 1-second jobs with --jobs 2 against --jobs 1.
- ``--against SRC``: the same array (N jobs, --jobs 2) with the installed rr importing from
  the source tree SRC (a ``git worktree`` of the commit a change started from) and from this
  tree, in pairs on fresh datasets, ``--rounds`` times: the median of the paired ratios is
  the before/after of a change, measured in one run on a loaded machine.  ``--only-against``
  skips the rest.
- ``--breakdown``: where a job's CPU time goes, for N jobs with --jobs 2: every git and
  git-annex process rr starts timed by a wrapper on PATH (its CPU from ``wait4``, with the
  git processes a git-annex starts: a worker's long-lived ``git-annex add`` is one line), the
  rest (Python: the driver, Dask, the workers; the commands) as the whole tree's CPU minus
  theirs; then nothing else is run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RR, report, sh


def array_stream(ds: Path, args: list[str], env: dict[str, str] | None = None
                 ) -> tuple[float, list[float]]:
    """Wall time of ``rr run --json ARGS`` and the arrival time of each result line."""
    t0 = time.perf_counter()
    child = subprocess.Popen([RR, "run", "--json", *args], cwd=ds, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    arrivals = []
    assert child.stdout is not None
    for line in child.stdout:
        json.loads(line)
        arrivals.append(time.perf_counter() - t0)
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child.returncode = 0
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - t0, arrivals


# the CPU time (user + system) of the last array_stream's rr and every process it waited for
# (its Dask workers, their git and git-annex processes): steadier than wall time under load
LAST_CPU = [0.0]


def with_source(src: str) -> dict[str, str]:
    """The environment that makes the installed rr import its modules from the tree ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def against(base: Path, n: int, src: str, rounds: int) -> None:
    """N no-op jobs with --jobs 2 from this tree and from ``src``, in pairs."""
    here = with_source(str(Path(__file__).resolve().parent.parent))
    there = with_source(src)
    values = ",".join(str(i) for i in range(n))
    args = ["-J", "2", "--param", f"i={values}", "-o", "out/{i}",
            "mkdir -p out; echo {i} > out/{i}"]
    olds, news, ratios = [], [], []
    cpu_olds, cpu_news, cpu_ratios = [], [], []
    for r in range(rounds):
        times, cpus = {}, {}
        # the order alternates: neither tree always runs first
        for name, env in ((("old", there), ("new", here)) if r % 2 == 0 else
                          (("new", here), ("old", there))):
            ds = base / f"against-{name}-{r}"
            sh([RR, "create", "-c", "text2git", str(ds)], cwd=base, env=env)
            times[name], arrivals = array_stream(ds, args, env)
            cpus[name] = LAST_CPU[0]
            jobs = arrivals[:-1]
            if len(jobs) > 30:  # per-job overhead early and late: flat in the job count
                print(f"round {r} {name}: {times[name]:.1f} s, CPU {cpus[name]:.1f} s, per "
                      f"job: jobs 5-15 {(jobs[15] - jobs[5]) / 10:.3f} s, last 10 "
                      f"{(jobs[-1] - jobs[-11]) / 10:.3f} s")
        olds.append(times["old"])
        news.append(times["new"])
        ratios.append(times["new"] / times["old"])
        cpu_olds.append(cpus["old"])
        cpu_news.append(cpus["new"])
        cpu_ratios.append(cpus["new"] / cpus["old"])
    report(f"{n} no-op jobs, --jobs 2: this tree against {src} (ratio against {src})", [
        (f"from {src}", statistics.median(olds), 1.0),
        ("this tree (median of paired ratios)", statistics.median(news),
         statistics.median(ratios)),
        (f"CPU time from {src}", statistics.median(cpu_olds), 1.0),
        ("CPU time, this tree (median of paired ratios)", statistics.median(cpu_news),
         statistics.median(cpu_ratios)),
    ])
    print("paired ratios: " + " ".join(f"{x:.2f}" for x in ratios) + "; CPU: " +
          " ".join(f"{x:.2f}" for x in cpu_ratios))


# a git on PATH that runs the real one and logs its subcommand and CPU time; git processes
# that git or git-annex start are counted in their parent's time (not logged again)
SHIM = """#!{python} -S
import os, sys
real = {real!r}
if os.environ.get("RR_BENCH_SHIM_INNER"):
    os.execv(real, [{name!r}] + sys.argv[1:])
os.environ["RR_BENCH_SHIM_INNER"] = "1"
pid = os.fork()
if pid == 0:
    os.execv(real, [{name!r}] + sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
a, skip = [], False
for x in sys.argv[1:]:
    if skip or x.startswith("-"):
        skip = x == "-c"
        continue
    a.append(x)
sub = {name!r} + " " + (" ".join(a[:2]) if a[:1] == ["annex"] else (a[0] if a else "?"))
own = os.times()
with open({log!r}, "a") as f:
    f.write(sub + "\\t" + str(ru.ru_utime + ru.ru_stime) + "\\t" +
            str(own.user + own.system) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def breakdown(base: Path, n: int) -> None:
    """Where the CPU time of N no-op jobs (--jobs 2) goes, per job."""
    shim_dir = base / "shim"
    shim_dir.mkdir()
    log = base / "git-cpu.log"
    # git and git-annex timed where rr starts them (a git-annex's own git processes are in
    # its time: their wrapper only passes them on)
    for name in ("git", "git-annex"):
        real = shutil.which(name)
        assert real is not None
        shim = shim_dir / name
        shim.write_text(SHIM.format(python=sys.executable, real=real, name=name, log=str(log)))
        shim.chmod(0o755)
    here = with_source(str(Path(__file__).resolve().parent.parent))
    shimmed = dict(here, PATH=f"{shim_dir}{os.pathsep}{here.get('PATH', '')}")
    values = ",".join(str(i) for i in range(n))
    args = ["-J", "2", "--param", f"i={values}", "-o", "out/{i}",
            "mkdir -p out; echo {i} > out/{i}"]
    # the whole tree's CPU without the wrappers (they cost more than the git they time),
    # then the git processes' with them
    cpus = {}
    for name, env in (("plain", here), ("shimmed", shimmed)):
        ds = base / f"breakdown-{name}"
        sh([RR, "create", "-c", "text2git", str(ds)], cwd=base, env=here)
        log.write_text("")
        total, _ = array_stream(ds, args, env)
        cpus[name] = LAST_CPU[0]
        if name == "plain":
            wall = total
    cpu = cpus["plain"]
    groups: dict[str, list[float]] = collections.defaultdict(list)
    for line in log.read_text().splitlines():
        sub, secs = line.split("\t")[:2]
        groups[sub].append(float(secs))
    git_cpu = sum(sum(v) for v in groups.values())
    print(f"\n{n} no-op jobs, --jobs 2: wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"({1000 * cpu / n:.1f} ms per job); the git processes timed in a second run")
    print(f"{'process':28} {'count':>6} {'per job':>8} {'ms per job':>11}")
    for sub, secs in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
        print(f"{sub:28} {len(secs):6d} {len(secs) / n:8.2f} {1000 * sum(secs) / n:11.1f}")
    print(f"{'the rest (Python, commands)':28} {'':6} {'':8} {1000 * (cpu - git_cpu) / n:11.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--loop-n", type=int, default=100)
    ap.add_argument("--sleep-n", type=int, default=30)
    ap.add_argument("--against", metavar="SRC", help="also compare with rr imported from SRC")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only-against", action="store_true")
    ap.add_argument("--breakdown", action="store_true")
    args = ap.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory(prefix="rr-bench-array-") as tmp:
        base = Path(tmp)
        if args.breakdown:
            breakdown(base, n)
            return
        if args.against:
            against(base, n, args.against, args.rounds)
            if args.only_against:
                return
        values = ",".join(str(i) for i in range(n))
        ds = base / "array"
        sh([RR, "create", "-c", "text2git", str(ds)], cwd=base)
        total, arrivals = array_stream(ds, ["-J", "2", "--param", f"i={values}",
                                            "-o", "out/{i}", "mkdir -p out; echo {i} > out/{i}"])
        jobs = arrivals[:-1]  # the last line is the history's
        early = (jobs[15] - jobs[5]) / 10
        late = (jobs[-1] - jobs[-11]) / 10
        history = (arrivals[-1] - jobs[-1]) / n

        floor_ds = base / "floor"
        sh([RR, "create", "-c", "text2git", str(floor_ds)], cwd=base)
        t = time.perf_counter()
        sh(f"mkdir out && for i in $(seq 0 {n - 1}); do echo $i > out/$i && git add out/$i "
           "&& git commit -q -m $i; done", floor_ds)
        floor = time.perf_counter() - t

        loop_ds = base / "loop"
        sh([RR, "create", "-c", "text2git", str(loop_ds)], cwd=base)
        t = time.perf_counter()
        sh(f"mkdir out && for i in $(seq 0 {args.loop_n - 1}); do {RR} run -o out/$i "
           "\"echo $i > out/$i\"; done", loop_ds)
        loop = (time.perf_counter() - t) * n / args.loop_n

        report(f"{n} no-op jobs (ratio against the floor)", [
            (f"floor: {n} x (command + git add + commit)", floor, 1.0),
            (f"serial loop of {n} rr run (from {args.loop_n})", loop, loop / floor),
            (f"rr run --param ({n} rows) --jobs 2", total, total / floor),
            ("  the same against the loop", total, total / loop),
        ])
        report("per-job overhead (ratio against job 10)", [
            ("jobs 5-15, per job", early, 1.0),
            (f"jobs {n - 10}-{n}, per job", late, late / early),
            ("history + clean-up, per job", history, history / early),
        ])

        m = args.sleep_n
        sleeps = ",".join(str(i) for i in range(m))
        serial_ds = base / "sleep1"
        sh([RR, "create", "-c", "text2git", str(serial_ds)], cwd=base)
        one, _ = array_stream(serial_ds, ["--param", f"i={sleeps}", "-o", "out/{i}",
                                          "sleep 1; mkdir -p out; echo {i} > out/{i}"])
        par_ds = base / "sleep2"
        sh([RR, "create", "-c", "text2git", str(par_ds)], cwd=base)
        two, _ = array_stream(par_ds, ["-J", "2", "--param", f"i={sleeps}", "-o", "out/{i}",
                                       "sleep 1; mkdir -p out; echo {i} > out/{i}"])
        report(f"{m} one-second jobs (ratio: speed-up against --jobs 1)", [
            ("--jobs 1", one, 1.0),
            ("--jobs 2", two, one / two),
        ])


if __name__ == "__main__":
    main()
