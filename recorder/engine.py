"""The execution engine for many independent tasks: serial, or on Dask (never a scheduler of
rr's own).

``check(jobs, scheduler)`` reads ``--jobs`` and ``--scheduler`` once, before anything happens,
into a :class:`Target` (a bad value is a UsageError, exit 2); ``execute_all(fn, items,
target=)`` runs ``fn(item)`` for every item and yields ``(index, result)`` as each finishes;
an exception raised by a task is its result.  :class:`JobStatus` is the one vocabulary of a
job's state (the engine's events use its queued/started/done/failed).

- ``jobs`` None/1, no ``scheduler``: serially, in order, in this process; Dask is not imported
  (``rr --help`` and a plain ``rr run`` never pay for it).
- ``jobs`` N > 1: a ``distributed.LocalCluster`` of N single-threaded worker processes on this
  machine, without dashboard and without distributed's log lines on stderr (``RR_DEBUG=1`` or
  ``rr --debug`` shows them), closed at the end.
- ``scheduler`` "tcp://HOST:PORT" (any address ``distributed.Client`` accepts): an existing Dask
  cluster; ``jobs`` caps the tasks in flight.
- ``scheduler`` "slurm", "pbs", "sge", "htcondor", "lsf", "oar", "moab": dask-jobqueue's cluster
  class, configured only from Dask's own configuration (``~/.config/dask/jobqueue.yaml``,
  ``DASK_CONFIG``, ``DASK_JOBQUEUE__SLURM__CORES=...``), scaled to ``jobs`` workers (one job of
  the batch system by default); each worker job serves many tasks.

Failures.  rr's tasks run user commands: they are not idempotent and may take hours, so a task
is never run twice behind the user's back.  The schedulers rr creates (LocalCluster, jobqueue)
get ``distributed.scheduler.allowed-failures: 0``: a worker that dies while running a task (the
process killed, out of memory, the batch job cancelled or out of walltime) makes that task's
result an :class:`EngineError` at once; the other tasks go on (a LocalCluster's nanny restarts
the worker).  An existing scheduler (tcp://) keeps its own setting (Dask's default retries a
task on 3 workers before giving up).  LocalCluster workers have no memory limit of Dask's
(``memory_limit=0``): the system's limits apply to the user's commands, as in a serial run.

Interrupts.  KeyboardInterrupt (Ctrl-C; ``cli.main`` turns SIGTERM into one) while waiting, or
closing the generator early: every task is cancelled, the processes the tasks started on this
machine get SIGTERM (then SIGKILL), the cluster is closed (worker processes stopped, batch jobs
cancelled with scancel/qdel/...) and the KeyboardInterrupt goes on.  Tasks already running on an
existing tcp:// cluster cannot be stopped from here: they are cancelled and run to their end.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import re
import shutil
import signal
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from .errors import EngineError, UsageError
from .lock import deferred_signals
from .results import Event, job_event
from .targets import JOBQUEUE, SERIAL, Target

A = TypeVar("A")
T = TypeVar("T")



class JobStatus(StrEnum):
    """The one vocabulary of a job's state, serial or parallel, run or rerun (its values are
    those the state files, the results and ``--json`` have always used)."""

    PENDING = "pending"      # planned, not (successfully) run yet
    QUEUED = "queued"        # handed to the engine
    STARTED = "started"      # running on a worker (or in this process)
    DONE = "done"            # the engine's task returned (its outcome says how it went)
    OK = "ok"                # the job committed its record under its job ref
    NOTNEEDED = "notneeded"  # the command changed nothing: no record
    FAILED = "failed"        # the command or rr failed; the job's worktree may be kept
    COMMITTED = "committed"  # the job's record is in the branch's history


QUEUED, STARTED, DONE, FAILED = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DONE,
                                 JobStatus.FAILED)

# dask-jobqueue's cluster classes by the name users know them by (DataLad-slurm, Dask docs):
# JOBQUEUE, in targets.py with Target
_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for the processes tasks left behind
_TICK = 0.25  # the driver wakes this often while it waits (signals, dead clusters)


def check_jobs(jobs: int | None) -> None:
    """``--jobs`` is a whole number of at least 1 (or not given): else a usage error."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"--jobs must be a whole number of at least 1, not {jobs!r}")


def check(jobs: int | None = None, scheduler: str | None = None) -> Target:
    """The one check of ``--jobs`` and ``--scheduler``, before anything happens: the
    :class:`Target` they name.  A bad value, an unknown scheduler name or a batch system that
    Dask's jobqueue configuration does not describe is a :class:`UsageError` (exit 2); whether
    a scheduler address is reachable is known only when the tasks start (an EngineError then).
    Dask is not imported, but for a batch system's configuration (dask-jobqueue's)."""
    check_jobs(jobs)
    if scheduler is None or not scheduler.strip():
        return SERIAL if jobs is None or jobs == 1 else Target("local", jobs)
    name = scheduler.strip()
    if name.lower() in JOBQUEUE:
        name = name.lower()
        _check_jobqueue(name)
        return Target("jobqueue", jobs, name=name)
    if _ADDRESS.match(name):
        return Target("address", jobs, address=name)
    raise UsageError(
        f"unknown scheduler {scheduler!r}",
        hint="give a Dask scheduler address (tcp://HOST:PORT) or one of: " + ", ".join(JOBQUEUE))


def execute_all(fn: Callable[[A], T], items: Sequence[A], *, jobs: int | None = None,
                scheduler: str | None = None, target: Target | None = None,
                on_event: Callable[[Event], None] | None = None,
                teardown: Callable[[], None] | None = None,
                ) -> Iterator[tuple[int, T | BaseException]]:
    """Run ``fn(item)`` for every item; yield ``(index, result)`` as each finishes.

    ``target`` (from :func:`check`) says where; without it ``jobs`` and ``scheduler`` are
    checked here, before anything starts (a UsageError).  An unreachable scheduler raises an
    :class:`EngineError` from the first ``next()``, before any task runs.  ``fn`` and the items
    must be picklable for Dask (``fn`` a top-level function).  ``on_event`` is called in the
    thread that iterates, never from Dask's threads, with one ``results.Event`` of kind JOB
    per change of a task's state (fields ``index`` and ``state``: queued, started, done,
    failed; text: the worker's address when started, the error when failed).  Close the iterator
    (``contextlib.closing``) when leaving it early: that cancels the rest.  ``teardown``
    (picklable, like ``fn``) runs once in every process that ran tasks when they end (each
    Dask worker, or this process): what the tasks kept alive from one to the next (a worker's
    long-lived helpers) is closed there.  See the module's docstring for the modes, failures
    and interrupts."""
    items = list(items)
    if target is None:
        target = check(jobs, scheduler)
    emit = on_event or (lambda _event: None)
    if not target.parallel:
        return _iter_serial(fn, items, emit, teardown)
    return _iter_dask(fn, items, emit, target, teardown)


# --- serial -------------------------------------------------------------------------------------

def _iter_serial(fn, items, emit, teardown=None) -> Iterator[tuple[int, Any]]:
    try:
        for index in range(len(items)):
            emit(job_event(index, QUEUED))
        for index, item in enumerate(items):
            emit(job_event(index, STARTED))
            try:
                result = fn(item)
            except Exception as exc:  # a task's failure is its result; Ctrl-C goes on
                emit(job_event(index, FAILED, _one_line(exc)))
                yield index, exc
            else:
                emit(job_event(index, DONE))
                yield index, result
    finally:
        if teardown is not None:
            teardown()


# --- where the tasks run --------------------------------------------------------------------------

_ADDRESS = re.compile(r"^([a-z][a-z0-9+.-]*://)?[^\s/:]+:\d+/?$|^[a-z][a-z0-9+.-]*://\S+$", re.I)


def job_script(scheduler: str) -> str:
    """The batch script dask-jobqueue submits for one worker job of ``scheduler`` ("slurm",
    "pbs", ...), from Dask's configuration as execute_all would use it; nothing is submitted."""
    name = scheduler.strip().lower()
    if name not in JOBQUEUE:
        raise UsageError(f"not a batch system dask-jobqueue knows: {scheduler!r}",
                         hint="one of: " + ", ".join(JOBQUEUE))
    _check_jobqueue(name, submit=False)
    job_cls = getattr(_import_jobqueue(), JOBQUEUE[name]).job_cls
    return job_cls("tcp://SCHEDULER-ADDRESS:8786", name="dask-worker").job_script()


def _import_jobqueue():
    """dask_jobqueue, imported without its side effect: dask_jobqueue.runner sets a SIGINT
    handler that calls sys.exit() (exit 0, no cleanup) when imported; rr keeps its own."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue  # noqa: PLC0415  heavy (Dask): only for a batch system
    finally:
        if signal.getsignal(signal.SIGINT) is not previous and previous is not None:
            with contextlib.suppress(ValueError):  # not the main thread: nothing was changed
                signal.signal(signal.SIGINT, previous)
    return dask_jobqueue


def _check_jobqueue(name: str, submit: bool = True) -> None:
    """Dask's jobqueue configuration must say what one worker job asks for; rr adds nothing.
    What is missing is the user's to give: a UsageError."""
    dask_jobqueue = _import_jobqueue()  # also loads jobqueue.yaml's defaults into dask.config

    cls = getattr(dask_jobqueue, JOBQUEUE[name], None)
    if cls is None:
        raise UsageError(f"this dask-jobqueue has no {JOBQUEUE[name]}",
                         hint="upgrade it: pip install -U dask-jobqueue")
    missing = [key for key in ("cores", "memory")
               if _dask_setting(f"jobqueue.{name}.{key}") in (None, "")]
    if missing:
        raise UsageError(
            f"Dask's jobqueue configuration has no {' or '.join(missing)} for {name}",
            hint=f"put 'jobqueue: {{{name}: {{cores: 1, memory: 4GB}}}}' (and queue, walltime, "
                 f"...) into ~/.config/dask/jobqueue.yaml, or set "
                 f"DASK_JOBQUEUE__{name.upper()}__CORES and "
                 f"DASK_JOBQUEUE__{name.upper()}__MEMORY")
    command = (getattr(cls.job_cls, "submit_command", None) or "").split()
    tool = command[0] if command else ""
    if submit and tool and shutil.which(tool) is None:
        raise UsageError(f"{tool} is not on PATH: cannot submit {name} jobs from this machine",
                         hint=f"run rr on a login node of the {name} cluster")


# --- Dask ---------------------------------------------------------------------------------

def _dask_setting(key: str) -> Any:
    """A value of Dask's own configuration (jobqueue.yaml, DASK_* variables), None if unset;
    rr's own keys are in recorder/config.py, Dask's stay Dask's."""
    import dask  # noqa: PLC0415  heavy (Dask): only when jobs run on Dask

    return dask.config.get(key, None)


def _debug() -> bool:
    return os.environ.get("RR_DEBUG", "") not in ("", "0")


_LOGGERS = ("distributed", "dask_jobqueue", "tornado", "asyncio", "bokeh")


@contextlib.contextmanager
def _quiet(debug: bool) -> Iterator[None]:
    """distributed logs every worker start, restart and closed stream at INFO/WARNING on
    stderr; rr's users see rr's lines only, unless they ask with --debug."""
    if debug:
        yield
        return
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in _LOGGERS]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


# set in a worker's environment while it runs tasks of one execute_all: every command a task
# starts inherits it, so that the driver can find the commands an interrupt left behind, even
# after their worker is gone (see _reap)
RUN_MARK = "RR_ENGINE_RUN"


def _task(fn, item, index: int, topic: str):
    """Runs on a worker: tell the driver the task began, then run it."""
    os.environ[RUN_MARK] = topic
    try:
        from distributed import get_worker  # noqa: PLC0415  heavy; runs on a worker

        worker = get_worker()
        worker.log_event(topic, (index, worker.address))
    except Exception:  # no event then: the driver reports "started" at completion
        pass
    return fn(item)


def _teardown(teardown: Callable[[], None]) -> None:
    """Runs on a worker (``client.run``) when the tasks end: never an error of its own."""
    with contextlib.suppress(Exception):
        teardown()


def _reachable(address: str, timeout: float) -> None:
    """A quick TCP check with a clear message (Client would retry until its timeout)."""
    match = re.match(r"^(?:(tcp|tls)://)?\[?([^\]\s/]+?)\]?:(\d+)/?$", address)
    if not match:
        return  # another protocol (ucx://, inproc://): the Client decides
    host, port = match.group(2), int(match.group(3))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise EngineError(f"cannot reach the Dask scheduler at {address}: "
                          f"{exc.strerror or exc}",
                          hint="start one with 'dask scheduler' (and workers with "
                               "'dask worker ADDRESS'), or check the address") from None


def _connect_timeout() -> float:
    from dask.utils import parse_timedelta  # noqa: PLC0415  heavy (Dask)

    return float(parse_timedelta(_dask_setting("distributed.comm.timeouts.connect"), "s"))


def _start(target, debug: bool):
    """Start (or connect to) the cluster; return (cluster or None, client)."""
    import dask  # noqa: PLC0415  heavy (Dask): only when jobs run on Dask
    from distributed import Client, LocalCluster  # noqa: PLC0415  heavy (Dask)

    level = logging.DEBUG if debug else logging.CRITICAL + 1
    if target.kind == "address":
        timeout = _connect_timeout()
        _reachable(target.address, min(timeout, 10.0))
        try:
            client = Client(target.address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"cannot reach the Dask scheduler at {target.address}: "
                              f"{_one_line(exc)}") from None
        return None, client
    # schedulers rr starts: a task whose worker dies fails at once, it is never re-run
    # worker-saturation 1.0: a worker holds only the tasks it runs, so that a dying worker takes
    # no not-yet-started task down with it
    # workers forked, not spawned: a spawned worker imports distributed afresh (LocalCluster(2)
    # up in ~2.3 s here against ~0.3 s forked); rr's signal handlers die with the fork
    # (cli._raise_terminated); a jobqueue worker is a batch job, not a child of rr
    # what no task of rr's needs, each costing CPU per task or per tick in every process: the
    # workers' statistical profiler (samples the running task's stack every 10 ms), work
    # stealing (tasks are handed out one per worker thread), the event loops' 20 ms ticks
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.multiprocessing-method": "fork",
                          "distributed.worker.profile.enabled": False,
                          "distributed.scheduler.work-stealing": False,
                          "distributed.admin.tick.interval": "500ms"}):
        if target.kind == "local":
            _become_subreaper()
            cluster = LocalCluster(n_workers=target.jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit=0,
                                   # no dashboard; its HTTP server on a free port, not 8787
                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                   silence_logs=False if debug else level)
        else:
            cluster = _start_jobqueue(target, debug)
        try:
            client = Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
    return cluster, client


def _start_jobqueue(target, debug: bool):
    cls = getattr(_import_jobqueue(), JOBQUEUE[target.name])
    options = dict(_dask_setting(f"jobqueue.{target.name}.scheduler-options") or {})
    if "dashboard_address" not in options:  # the config may ask for one; else none, no port clash
        options.update(dashboard=False, dashboard_address=":0")
    try:
        cluster = cls(scheduler_options=options,
                      silence_logs=False if debug else "critical")
    except (ValueError, TypeError, KeyError) as exc:
        raise EngineError(f"dask-jobqueue cannot set up {target.name} jobs: {_one_line(exc)}",
                          hint="check jobqueue.{target.name} in ~/.config/dask/jobqueue.yaml"
                          ) from None
    # scale() submits in the background and only logs a refused submission (bad queue,
    # account, ...): catch that log record and wait for the submissions, so that a refused job
    # is an error before any task, not a hang
    refused = _Refusals()
    logger = logging.getLogger("tornado.application")
    logger.addHandler(refused)
    try:
        if target.jobs:
            cluster.scale(n=target.jobs)
        else:
            cluster.scale(jobs=1)
        correct = getattr(cluster, "_correct_state", None)
        if correct is not None:
            with contextlib.suppress(Exception):
                cluster.sync(correct)
        failed = [job for job in list(cluster.workers.values())
                  if getattr(job, "job_id", "") is None]
        if failed or refused.messages:
            raise EngineError(
                f"the {target.name} batch system refused Dask's worker job: "
                + (refused.messages[0] if refused.messages else "no job id"),
                hint=f"check jobqueue.{target.name} (queue, account, walltime, ...) in "
                     "~/.config/dask/jobqueue.yaml")
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.close()
        raise
    finally:
        logger.removeHandler(refused)
    return cluster


class _Refusals(logging.Handler):
    """Collects the last stderr line of a failed submit command from distributed's log."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower() and "exit code" not in ln.lower()]
        self.messages.append((errors or lines or [type(exc).__name__])[-1])


def _replace_lost_jobs(cluster) -> None:
    """A worker job that ended (walltime, scancel, node failure) is replaced, as the jobs
    were asked for: the tasks left would otherwise wait for workers forever."""
    now = time.monotonic()
    if now - getattr(cluster, "_rr_checked", 0.0) < 2.0:
        return
    cluster._rr_checked = now
    with contextlib.suppress(Exception):  # SpecCluster's internals: at worst no replacement
        if set(cluster.worker_spec) - set(cluster.workers):
            cluster.loop.add_callback(cluster._correct_state)


def _local_worker_pids(cluster) -> list[int]:
    pids = []
    for nanny in list(getattr(cluster, "workers", {}).values()):
        proc = getattr(getattr(nanny, "process", None), "process", None)
        pid = getattr(proc, "pid", None)
        if pid:
            pids.append(pid)
    return pids


def _descendants(pids: list[int]) -> list:
    import psutil  # noqa: PLC0415  only to clean up after Dask's workers

    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.extend(psutil.Process(pid).children(recursive=True))
    return found


def _stop_processes(procs: list, sig: int) -> None:
    import psutil  # noqa: PLC0415  only to clean up after Dask's workers

    for p in procs:
        with contextlib.suppress(psutil.Error, OSError):
            p.send_signal(sig)


def _iter_dask(fn, items, emit, target, teardown=None) -> Iterator[tuple[int, Any]]:
    n = len(items)
    if n == 0:
        return
    debug = _debug()
    import dask  # noqa: PLC0415  heavy (Dask): only when jobs run on Dask
    # its config defaults first: set() below must not hide them
    import distributed  # noqa: F401, PLC0415

    # a dead worker job is noticed after lost-worker-timeout (15 s by default); rr replaces it
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}):
        yield from _iter_started(fn, items, emit, target, debug, teardown)


def _iter_started(fn, items, emit, target, debug, teardown=None
                  ) -> Iterator[tuple[int, Any]]:
    n = len(items)
    # a signal while the cluster starts (seconds on a loaded machine) waits until it is up
    # and is raised in the try below, whose shutdown stops the workers: an interrupted start
    # would leave forked workers behind
    held: list[int] = []
    with _quiet(debug), deferred_signals(held):
        cluster, client = _start(target, debug)
    events: queue.Queue = queue.Queue()
    topic = f"rr-engine-{uuid.uuid4().hex}"
    futures: dict[str, Any] = {}   # key -> future, still pending
    index_of: dict[str, int] = {}
    started: set[int] = set()
    running: set[int] = set()      # submitted, not yet ended
    finished = False
    try:
        for sig in dict.fromkeys(held):
            os.kill(os.getpid(), sig)  # handled here: the shutdown below runs
        with _quiet(debug):
            client.subscribe_topic(topic, lambda event: events.put(("started", event[1])))
            for index in range(n):
                emit(job_event(index, QUEUED))
            # tasks in flight: never more than the workers' threads on the clusters rr starts,
            # so that no task waits on a worker that may die under another task (Dask assigns
            # small batches of tasks to workers up front); on an existing scheduler, ``jobs``
            def window() -> int:
                if target.kind == "address":
                    return target.jobs or n
                if target.kind == "local":
                    return target.jobs
                workers = cluster.scheduler_info.get("workers", {}).values()
                return sum(w.get("nthreads", 1) for w in workers)

            pending = iter(range(n))

            def submit(count: int) -> None:
                for index in itertools.islice(pending, max(count, 0)):
                    key = f"rr-task-{index}-{topic[-12:]}"
                    future = client.submit(_task, fn, items[index], index, topic, key=key,
                                           pure=False, retries=0)
                    futures[key] = future
                    index_of[key] = index
                    running.add(index)
                    future.add_done_callback(lambda f: events.put(("end", f.key)))

            left = n
            while left:
                submit(window() - len(futures))
                try:
                    batch = [events.get(timeout=_TICK)]
                except queue.Empty:
                    if target.kind == "jobqueue":
                        _replace_lost_jobs(cluster)
                    continue
                with contextlib.suppress(queue.Empty):
                    while len(batch) < 1000:  # all that arrived meanwhile: one gather for them
                        batch.append(events.get_nowait())
                ended = []
                for kind, payload in batch:
                    if kind == "started":
                        index, worker = payload
                        if index not in started and index in running:
                            started.add(index)
                            emit(job_event(index, STARTED, str(worker)))
                    elif payload in futures:
                        ended.append(futures.pop(payload))
                # the workers these tasks freed get their next task now, before the results
                # are fetched and handled here (a round trip, then the caller's work per result)
                submit(window() - len(futures))
                for future, result in _outcomes(client, ended, index_of):
                    index = index_of.pop(future.key)
                    running.discard(index)
                    future.release()
                    if index not in started:
                        started.add(index)
                        emit(job_event(index, STARTED))
                    if isinstance(result, BaseException):
                        emit(job_event(index, FAILED, _one_line(result)))
                    else:
                        emit(job_event(index, DONE))
                    left -= 1
                    yield index, result
        finished = True
    finally:
        _shutdown(cluster, client, list(futures.values()), topic, aborted=not finished,
                  debug=debug, teardown=teardown)


def _outcomes(client, ended: list, index_of: dict) -> list:
    """(future, result) for futures that ended: the values of the finished ones fetched
    together (one round trip, not one per task), the others one by one."""
    finished = [f for f in ended if f.status == "finished"]
    values: dict[str, Any] = {}
    if len(finished) > 1:
        with contextlib.suppress(Exception):  # then one by one, with a message per task
            values = dict(zip([f.key for f in finished], client.gather(finished)))
    return [(f, values[f.key] if f.key in values else _outcome(f, index_of[f.key]))
            for f in ended]


def _outcome(future, index: int):
    """The task's value, its exception, or an EngineError when its worker died."""
    from distributed import KilledWorker  # noqa: PLC0415  heavy (Dask)

    status = future.status
    if status == "finished":
        try:
            return future.result()
        except Exception as exc:  # the result could not be fetched or unpickled
            return EngineError(f"task {index}: its result could not be fetched: "
                               f"{_one_line(exc)}")
    if status == "cancelled":
        return EngineError(f"task {index} was cancelled by the Dask scheduler "
                           "(its worker or the scheduler went away)")
    try:
        error = future.exception()
    except Exception as err:  # e.g. CancelledError while fetching
        return EngineError(f"task {index}: {_one_line(err)}")
    if isinstance(error, KilledWorker):
        return EngineError(f"the Dask worker running task {index} died "
                           "(killed, out of memory, or its batch job ended); "
                           "the task was not retried")
    return error


def _shutdown(cluster, client, pending: list, topic: str, *, aborted: bool, debug: bool,
              teardown: Callable[[], None] | None = None) -> None:
    """Cancel what is left, stop what the tasks started here, close client and cluster.
    Runs to its end even when a second Ctrl-C arrives meanwhile (then re-raised)."""
    interrupted: BaseException | None = None
    with _quiet(debug):
        local_pids = _local_worker_pids(cluster) if cluster is not None else []
        leftovers = _descendants(local_pids) if aborted else []
        steps: list[Callable[[], Any]] = []
        if aborted and pending:
            steps.append(lambda: client.cancel(pending, force=True))
        if leftovers:  # the user's commands started by running tasks: SIGTERM first
            steps.append(lambda: _stop_processes(leftovers, signal.SIGTERM))
        if teardown is not None:  # on the workers, not in their tasks' threads
            steps.append(lambda: client.run(_teardown, teardown, on_error="ignore"))
        steps.append(lambda: client.unsubscribe_topic(topic))
        steps.append(lambda: client.close(timeout=5))
        if cluster is not None:
            steps.append(lambda: cluster.close(timeout=10))
        for step in steps:
            while True:
                try:
                    step()
                    break
                except (KeyboardInterrupt, SystemExit) as exc:
                    interrupted = interrupted or exc
                    continue  # finish this step: nothing may be left behind
                except Exception:
                    break
        if aborted and local_pids:
            _reap(local_pids, leftovers, topic)
    if interrupted is not None:
        raise interrupted


def _reap(worker_pids: list[int], leftovers: list, topic: str) -> None:
    """After the cluster closed: SIGKILL any worker or task process still there.

    A task that started its command just as the interrupt came may have escaped the list of
    leftovers taken before the cluster closed; when its worker then exits, the command is
    orphaned.  rr is the child subreaper of its local cluster (_become_subreaper), so such
    commands become rr's children, found here by the mark their task set (RUN_MARK)."""
    import psutil  # noqa: PLC0415  only to clean up after Dask's workers

    procs = list(leftovers)
    for pid in worker_pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    procs += _descendants(worker_pids)
    orphans = _marked_children(topic)
    _stop_processes(orphans, signal.SIGTERM)
    procs += orphans
    deadline = time.monotonic() + _GRACE
    alive = [p for p in procs if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    _stop_processes(alive, signal.SIGKILL)
    for _ in range(2):  # what a killed shell's children became: rr's children too
        late = [p for p in _marked_children(topic) if _alive(p)]
        if not late:
            break
        _stop_processes(late, signal.SIGKILL)
    _collect_zombies(procs)


def _marked_children(topic: str) -> list:
    """rr's descendants whose environment carries this run's mark (commands of its tasks)."""
    import psutil  # noqa: PLC0415  only to clean up after Dask's workers

    found = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.environ().get(RUN_MARK) == topic:
                    found.append(child)
    return found


def _collect_zombies(procs: list) -> None:
    """Wait for those of ``procs`` that ended as rr's own children (no zombies left)."""
    for p in procs:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(p.pid, os.WNOHANG)


def _become_subreaper() -> None:
    """Make rr the child subreaper (Linux): a process orphaned under it (a command whose Dask
    worker exited) is re-parented to rr, not to init, so that an interrupt can still stop it."""
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return
    import ctypes  # noqa: PLC0415  only when a local cluster starts

    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _alive(proc) -> bool:
    import psutil  # noqa: PLC0415  only to clean up after Dask's workers

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
