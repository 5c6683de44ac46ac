"""The execution engine (recorder/engine.py): serial, Dask LocalCluster, an existing Dask
scheduler, and dask-jobqueue — Slurm for real on this machine (tools/slurm.sh), PBS, SGE and
HTCondor only as far as their generated job scripts (their daemons cannot run here)."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from recorder import engine
from recorder.engine import EngineError, execute_all
from recorder.results import job_event
from recorder.errors import UsageError
from tests.slurm_cluster import queued_jobs

ROOT = Path(__file__).resolve().parent.parent
DASK_MODULES = "('dask', 'distributed', 'dask_jobqueue')"


# --- tasks (top level: Dask pickles them by reference) ---------------------------------------

def square(x):
    if x == 3:
        raise ValueError("three is not welcome")
    return x * x


def wait_for_partner(arg):
    """Writes its own marker, then waits for the other task's: only true parallelism ends."""
    directory, me, other = arg
    Path(directory, me).write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not Path(directory, other).exists():
        if time.monotonic() > deadline:
            return "alone"
        time.sleep(0.02)
    return os.getpid()


def kill_own_worker(x):
    if x == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def timed(x):
    start = time.monotonic()
    time.sleep(0.2)
    return start, time.monotonic()


def in_modules(code: str, cwd: Path | None = None) -> str:
    """Run code in a fresh interpreter; return what it prints."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=True, cwd=cwd, timeout=60).stdout.strip()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def wait_gone(pids, timeout=15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- serial -------------------------------------------------------------------------------------

def test_serial_in_order_without_importing_dask():
    out = in_modules(f"""
        import sys
        from recorder.engine import execute_all
        def f(x):
            if x == 2:
                raise KeyError(x)
            return x + 1
        events = []
        got = [(i, r if not isinstance(r, BaseException) else type(r).__name__)
               for i, r in execute_all(f, [0, 1, 2, 3], on_event=events.append)]
        print(got)
        print([(str(e.state), e.index) for e in events])
        print(any(m.split('.')[0] in {DASK_MODULES} for m in sys.modules))
    """)
    got, events, dask_loaded = out.splitlines()
    assert got == "[(0, 1), (1, 2), (2, 'KeyError'), (3, 4)]"
    assert events.startswith("[('queued', 0), ('queued', 1), ('queued', 2), ('queued', 3), "
                             "('started', 0), ('done', 0), ('started', 1), ('done', 1), "
                             "('started', 2), ('failed', 2)")
    assert dask_loaded == "False"


def test_rr_help_and_plain_run_do_not_import_dask(ds):
    probe = f"""
        import sys
        from recorder import cli
        sys.argv = ['rr'] + sys.argv[1:]
        try:
            cli.main()
        except SystemExit:
            pass
        print(any(m.split('.')[0] in {DASK_MODULES} for m in sys.modules), file=sys.stderr)
    """
    for args in (["--help"], ["run", "-m", "plain", "echo hi > out.txt"]):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(probe), *args], cwd=ds,
                              capture_output=True, text=True, timeout=60)
        assert proc.stderr.strip().splitlines()[-1] == "False", (args, proc.stderr)
    assert (ds / "out.txt").read_text() == "hi\n"


def test_bad_arguments_fail_before_anything_runs():
    calls = []
    with pytest.raises(UsageError, match=r"unknown scheduler 'slurmm'") as err:
        execute_all(calls.append, [1], scheduler="slurmm")
    assert "tcp://HOST:PORT" in err.value.hint and "slurm" in err.value.hint
    with pytest.raises(UsageError, match="^--jobs must be a whole number of at least 1, not 0$"):
        execute_all(calls.append, [1], jobs=0)
    with pytest.raises(UsageError, match="unknown scheduler 'not an address'"):
        execute_all(calls.append, [1], scheduler="not an address")
    assert calls == []


def test_unreachable_scheduler_is_one_error_in_seconds():
    port = free_port()
    calls = []
    start = time.monotonic()
    with pytest.raises(EngineError, match=rf"cannot reach the Dask scheduler at "
                                          rf"tcp://127.0.0.1:{port}: .*refused"):
        list(execute_all(calls.append, [1], scheduler=f"tcp://127.0.0.1:{port}"))
    assert time.monotonic() - start < 10
    assert calls == []


# --- LocalCluster ---------------------------------------------------------------------------

def test_local_cluster_runs_two_tasks_truly_in_parallel(tmp_path):
    events = []
    items = [(str(tmp_path), "a", "b"), (str(tmp_path), "b", "a")]
    results = dict(execute_all(wait_for_partner, items, jobs=2, on_event=events.append))
    assert results[0] != "alone" and results[1] != "alone"
    assert results[0] != results[1]  # two worker processes, neither of them this one
    assert os.getpid() not in results.values()
    kinds = sorted((e.state, e.index) for e in events)
    assert kinds == [("done", 0), ("done", 1), ("queued", 0), ("queued", 1),
                     ("started", 0), ("started", 1)]
    assert all(e.text.startswith("tcp://") for e in events if e.state == "started")


def test_task_exceptions_are_results_and_dask_logs_stay_quiet(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent("""
        from recorder.engine import execute_all
        def square(x):
            if x == 3:
                raise ValueError("three is not welcome")
            return x * x
        if __name__ == "__main__":
            got = dict(execute_all(square, range(5), jobs=2))
            print(sorted((i, repr(r)) for i, r in got.items()))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "RR_DEBUG": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("[(0, '0'), (1, '1'), (2, '4'), "
                                   "(3, \"ValueError('three is not welcome')\"), (4, '16')]")
    assert proc.stderr == ""  # no distributed log lines, no warnings


def test_killed_worker_fails_its_task_only_and_does_not_hang():
    events = []
    start = time.monotonic()
    results = dict(execute_all(kill_own_worker, range(4), jobs=2, on_event=events.append))
    assert time.monotonic() - start < 30
    assert isinstance(results[0], EngineError)
    assert "worker running task 0 died" in str(results[0]) and "\n" not in str(results[0])
    assert [results[i] for i in (1, 2, 3)] == [1, 2, 3]  # not retried, the others went on
    assert job_event(0, "failed", "EngineError: " + str(results[0])) in events


def test_closing_early_stops_the_workers():
    import psutil  # noqa: PLC0415  only where processes are looked at

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    gen = execute_all(timed, range(6), jobs=2)
    with contextlib.closing(gen):
        next(gen)
        pids = [p.pid for p in psutil.Process().children(recursive=True)
                if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())]
    assert len(pids) >= 2  # the two workers (and any short-lived helper a fork left)
    assert wait_gone(pids) == []


_DRIVER_MAIN = """
if __name__ == "__main__":
    try:
        for i, r in execute_all(task, [(sys.argv[1], i) for i in range(N)], jobs=2):
            print("result", i, r, flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
"""


def _interrupt_driver(tmp_path: Path, task_source: str, n: int, marker: str) -> list[int]:
    """Run ``task`` (defined in ``task_source``) over ``n`` items on two workers in a driver
    process; once two tasks have written their ``marker-I`` file of pids, SIGINT the driver.
    Returns the pids the tasks wrote, after checking the driver ended as interrupted."""
    script = tmp_path / "driver.py"
    script.write_text("import os, subprocess, sys, time\n"
                      "from recorder.engine import execute_all\n"
                      f"N = {n}\n" + textwrap.dedent(task_source) + _DRIVER_MAIN)
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def written() -> list[Path]:
        return [f for f in tmp_path.glob(f"{marker}-*") if f.read_text().strip()]

    deadline = time.monotonic() + 30
    while len(written()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(written()) == 2, driver.communicate(timeout=5)
    pids = [int(p) for f in written() for p in f.read_text().split()]
    assert all(alive(p) for p in pids)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=30)
    assert driver.returncode == 130, err
    assert out.splitlines() == ["interrupted"]
    return pids


def test_interrupt_cancels_tasks_and_leaves_no_process(tmp_path):
    """SIGINT to a driver while tasks run commands in their own sessions (as rr's run does):
    the driver ends with KeyboardInterrupt, and no worker and no command is left."""
    pids = _interrupt_driver(tmp_path, """
        def task(arg):
            directory, i = arg
            child = subprocess.Popen(["sleep", "300"], start_new_session=True)
            with open(f"{directory}/pids-{i}", "w") as fh:
                fh.write(f"{os.getpid()} {child.pid}")
            child.wait()
            return i
    """, 4, "pids")
    assert wait_gone(pids, timeout=10) == []


def test_interrupt_stops_a_command_that_left_its_workers_process_tree(tmp_path):
    """A command orphaned under a worker (here: a shell that put sleep in the background and
    exited; in life: a command that started as the interrupt came, whose worker then exited)
    is no longer the worker's descendant when the driver cleans up.  It is stopped all the same:
    the driver is the subreaper of its cluster and finds the commands of its tasks by their mark.
    Without that, the sleep lives on (re-parented to init) holding the driver's pipes."""
    pids = _interrupt_driver(tmp_path, """
        def task(arg):
            directory, i = arg
            subprocess.run(["sh", "-c", f"sleep 300 & echo $! > {directory}/orphan-{i}"],
                           start_new_session=True, check=True)
            time.sleep(300)
            return i
    """, 2, "orphan")
    assert wait_gone(pids, timeout=10) == []


# --- an existing scheduler (tcp://) -------------------------------------------------------------

def test_tcp_scheduler_runs_tasks_and_jobs_caps_tasks_in_flight():
    from distributed import LocalCluster  # noqa: PLC0415  heavy (Dask)

    with LocalCluster(n_workers=1, threads_per_worker=3, processes=False,
                      dashboard_address=None) as cluster:
        spans = dict(execute_all(timed, range(4), jobs=1, scheduler=cluster.scheduler_address))
        assert sorted(spans) == [0, 1, 2, 3]
        ordered = sorted(spans.values())
        assert all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:]))  # never two at once
        got = dict(execute_all(square, [2, 3], scheduler=cluster.scheduler_address))
    assert got[0] == 4 and isinstance(got[1], ValueError)


# --- dask-jobqueue: configuration and job scripts ------------------------------------------

@pytest.fixture
def dask_config(tmp_path, monkeypatch):
    """Write a jobqueue.yaml into a private DASK_CONFIG directory and load it."""
    import dask  # noqa: PLC0415  heavy (Dask)

    def write(text: str) -> Path:
        directory = tmp_path / "dask-config"
        directory.mkdir(exist_ok=True)
        (directory / "jobqueue.yaml").write_text(textwrap.dedent(text))
        monkeypatch.setenv("DASK_CONFIG", str(directory))
        dask.config.paths.append(str(directory))
        dask.config.refresh()
        return directory

    yield write
    import dask_jobqueue  # noqa: F401, PLC0415  heavy (Dask); loads its config defaults

    monkeypatch.undo()
    with contextlib.suppress(ValueError):
        dask.config.paths.remove(str(tmp_path / "dask-config"))
    dask.config.refresh()
    importlib.reload(sys.modules["dask_jobqueue.config"])  # its defaults again


def test_jobqueue_without_cores_and_memory_says_what_to_configure(dask_config):
    dask_config("jobqueue:\n  pbs:\n    queue: short\n")
    with pytest.raises(UsageError, match="Dask's jobqueue configuration has no cores or "
                                          "memory for pbs") as err:
        execute_all(square, [1], scheduler="pbs")
    assert "~/.config/dask/jobqueue.yaml" in err.value.hint
    assert "DASK_JOBQUEUE__PBS__CORES" in err.value.hint


def test_jobqueue_without_submit_command_is_an_error(dask_config):
    dask_config("jobqueue:\n  sge:\n    cores: 2\n    memory: 4GB\n")
    with pytest.raises(UsageError, match="qsub is not on PATH: cannot submit sge jobs"):
        execute_all(square, [1], scheduler="SGE")


@pytest.mark.parametrize("system, expected", [
    ("pbs", ["#PBS -q short", "#PBS -l select=1:ncpus=2:mem=3815MB", "#PBS -l walltime=02:00:00",
             "#PBS -A proj7"]),
    ("sge", ["#$ -q short", "#$ -l h_rt=02:00:00", "--nworkers 2 --nanny"]),
    ("htcondor", ["RequestCpus = MY.DaskWorkerCores", "MY.DaskWorkerCores = 2",
                  "RequestMemory = floor(MY.DaskWorkerMemory / 1048576)"]),
])
def test_generated_job_scripts_carry_the_configured_resources(dask_config, system, expected):
    """PBS, SGE and HTCondor cannot run here: their job scripts are what is verified."""
    dask_config(f"""
        jobqueue:
          {system}:
            cores: 2
            memory: 4GB
            queue: short
            walltime: "02:00:00"
            account: proj7
            disk: 1GB
    """)
    script = engine.job_script(system)
    for line in expected:
        assert line in script, script
    assert sys.executable in script and "distributed.cli.dask_worker" in script


# --- Slurm for real -------------------------------------------------------------------------

SLURM_DRIVER = """
import os, subprocess, sys, time
from recorder.engine import execute_all

def where(i):
    return i, os.environ.get("SLURM_JOB_ID"), os.getpid()

def cancel_own_job(i):
    if i == 0:
        subprocess.run(["scancel", os.environ["SLURM_JOB_ID"]], check=True)
        time.sleep(60)
    return i, os.environ.get("SLURM_JOB_ID"), os.getpid()

def sleep_long(i):
    print("task", i, "running", flush=True)
    time.sleep(120)
    return i

if __name__ == "__main__":
    task = {"where": where, "sleep": sleep_long, "cancel": cancel_own_job}[sys.argv[1]]
    try:
        for i, r in execute_all(task, range(int(sys.argv[2])), jobs=int(sys.argv[3]),
                                scheduler="slurm",
                                on_event=lambda e: print("event", e.state, e.index, flush=True)):
            print("result", repr(r), flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
"""


@pytest.fixture
def slurm_driver(slurm, tmp_path):
    config = tmp_path / "dask"
    config.mkdir()
    (config / "jobqueue.yaml").write_text(textwrap.dedent(f"""
        jobqueue:
          slurm:
            cores: 1
            memory: 512MB
            walltime: "00:10:00"
            log-directory: {tmp_path / "logs"}
    """))
    script = tmp_path / "driver.py"
    script.write_text(SLURM_DRIVER)
    env = {**os.environ, "DASK_CONFIG": str(config)}
    return lambda *args: subprocess.Popen([sys.executable, str(script), *args], env=env,
                                          cwd=tmp_path, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_slurm_runs_tasks_in_worker_jobs(slurm_driver):
    driver = slurm_driver("where", "6", "2")
    out, err = driver.communicate(timeout=90)
    assert driver.returncode == 0, err
    results = [eval(line.split(" ", 1)[1]) for line in out.splitlines()
               if line.startswith("result")]
    assert sorted(r[0] for r in results) == list(range(6))
    job_ids = {r[1] for r in results}
    assert None not in job_ids and 1 <= len(job_ids) <= 2  # Slurm jobs, each serving many tasks
    assert driver.pid not in {r[2] for r in results}
    assert err == ""
    deadline = time.monotonic() + 15
    while queued_jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert queued_jobs() == []


@pytest.mark.slow
def test_slurm_interrupt_cancels_the_worker_jobs(slurm_driver):
    driver = slurm_driver("sleep", "3", "2")
    deadline = time.monotonic() + 60
    seen = []
    for line in driver.stdout:
        seen.append(line)
        if line.startswith("event started") or time.monotonic() > deadline:
            break
    assert any(line.startswith("event started") for line in seen), seen
    assert queued_jobs() != []
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 130, err
    assert "interrupted" in out
    deadline = time.monotonic() + 15
    while queued_jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert queued_jobs() == []


@pytest.mark.slow
def test_slurm_job_cancelled_under_a_task_fails_that_task_and_is_replaced(slurm_driver):
    """scancel of the worker's job (as walltime or a node failure would end it): the task it
    ran is an EngineError at once, not a hang and not re-run; a new worker job runs the rest."""
    driver = slurm_driver("cancel", "3", "1")
    out, err = driver.communicate(timeout=90)
    assert driver.returncode == 0, err
    results = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("result")]
    assert len(results) == 3
    assert results[0].startswith("EngineError('the Dask worker running task 0 died")
    rest = [eval(r) for r in results[1:]]
    assert sorted(r[0] for r in rest) == [1, 2]
    # jobs=1: the one worker job was cancelled, so these ran in the job that replaced it
    assert all(r[1] is not None for r in rest)
