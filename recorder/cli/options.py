"""Options shared by several commands, declared once: names, type and default here; a
command that needs a different help text passes it (``Annotated[Optional[str],
dataset("Register the clone ...")]``), the names stay.  Every option is the API keyword of
the same name (``-d/--dataset`` is ``dataset=``, ``-J/--jobs`` is ``jobs=``)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, List, Optional

from .params import Argument, Option


class Which(str, Enum):
    inputs = "inputs"
    outputs = "outputs"
    both = "both"


class DryRun(str, Enum):
    basic = "basic"
    command = "command"


DRY_RUN_MODES = tuple(m.value for m in DryRun)


def dataset(help: str = "The dataset.") -> Any:
    return Option("-d", "--dataset", help=help)


def as_json(help: str = "Print the result as JSON.") -> Any:
    return Option("--json", help=help)


def message(help: str = "Commit message.") -> Any:
    return Option("-m", "--message", help=help)


def inputs(help: str = "Input path or glob.") -> Any:
    return Option("-i", "--input", help=help)


def outputs(help: str = "Output path or glob.") -> Any:
    return Option("-o", "--output", help=help)


def recursive(help: str = "Into installed subdatasets too.") -> Any:
    return Option("-r", "--recursive", help=help)


def jobs(help: str) -> Any:
    return Option("-J", "--jobs", help=help)


def scheduler(help: str) -> Any:
    return Option("--scheduler", help=help)


def expand(help: str = "Store expanded globs.") -> Any:
    return Option("--expand", help=help)


def explicit(help: str = "Save only declared outputs.") -> Any:
    return Option("--explicit", help=help)


def assume_ready(help: str = "Skip fetching inputs / unlocking outputs.") -> Any:
    return Option("--assume-ready", help=help)


def dry_run(help: str) -> Any:
    return Option("--dry-run", metavar="[=basic|command]", help=help)


def sidecar(help: str) -> Any:
    return Option("--sidecar/--no-sidecar", help=help)


def gpus(help: str = "Give the container the GPUs.") -> Any:
    return Option("--gpus", help=help)


def metrics_file() -> Any:
    return Option("-f", "--file", help="Metrics file; repeatable.")


def paths(help: str) -> Any:
    return Argument(help=help)


# the common spellings, as types
Dataset = Annotated[Optional[str], dataset()]
Json = Annotated[bool, as_json()]
Message = Annotated[Optional[str], message()]
Recursive = Annotated[bool, recursive()]
Paths = Annotated[Optional[List[str]], paths("Files or directories (default: all).")]
Expand = Annotated[Optional[Which], expand()]
Explicit = Annotated[bool, explicit()]
AssumeReady = Annotated[Optional[Which], assume_ready()]
Gpus = Annotated[bool, gpus()]
MetricsFiles = Annotated[List[str], metrics_file()]
TransferJobs = Annotated[Optional[int], jobs("Transfers at once (git-annex's --jobs).")]

# the run-cache (recorder/cache.py): rr run, rr containers-run, rr rerun
NoCache = Annotated[bool, Option(
    "--no-cache", help="Execute even when an earlier run in history with the same key "
    "(command, inputs, code, image digest, declared variables) could be restored.")]
Verbose = Annotated[bool, Option(
    "-v", "--verbose", help="Say why the run-cache missed, for every run that executes.")]

# the array options, shared by rr run and rr containers-run
Params = Annotated[List[str], Option(
    "--param", help="NAME=V1,V2,...: run once per value ({NAME} in the command, -i and -o); "
    "several --param form their Cartesian product; repeatable.")]
ArrayTable = Annotated[Optional[str], Option(
    "--array", help="A CSV/TSV table: one job per row, its columns are parameters.")]
ArrayJobs = Annotated[Optional[int], jobs(
    "Run this many array jobs at once (Dask LocalCluster; default: one after the other).")]
ArrayScheduler = Annotated[Optional[str], scheduler(
    "Run array jobs on this Dask scheduler (tcp://HOST:PORT) or cluster (slurm, pbs, sge, "
    "htcondor).")]
# the record's extras, shared by rr run and rr containers-run (and their arrays)
EnvRecord = Annotated[List[str], Option(
    "--env-record", metavar="NAME", help="Record this environment variable's value in the run "
    "record (rr.env.vars); repeatable; beside the config list rr.run.env-record.")]
RunLog = Annotated[Optional[bool], Option(
    "--log/--no-log", help="Keep the command's stdout and stderr as an annexed file in "
    ".rr/logs, named in the record (rr.log), while still showing them (default: "
    "rr.run.log).")]
ArrayContinue = Annotated[bool, Option(
    "--continue", help="Run the jobs of an unfinished array that did not succeed (give its ID "
    "as the command when there are several) and write its history.")]

# DataLad's -R/--recursion-limit, beside -r wherever DataLad has it (get, drop, push, update,
# status, diff, subdatasets, unlock)
RecursionLimit = Annotated[Optional[int], Option(
    "-R", "--recursion-limit", metavar="LEVELS", help="With -r: only this many levels of "
    "subdatasets down (1: the dataset's own subdatasets).")]
