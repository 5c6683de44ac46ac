"""The ``rr`` command line: each command parses, calls one ``recorder.api`` function, renders."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from typing import Any, List, Optional, TypeVar

import typer
import typer.core

from . import __version__
from .errors import RecorderError

app = typer.Typer(
    name="rr",
    help="rr records how results were made: every run's command, inputs and outputs go into "
         "a DataLad-compatible run record in the commit, and can be replayed with rr rerun.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_STATE = {"debug": False}
T = TypeVar("T")


class _CommandAfterOptions(typer.core.TyperCommand):
    """A command that takes a command line after its options (run, containers-run,
    run-procedure, containers-exec): everything from the first non-option word on, or after
    ``--``, is the command's; an unknown option before it is a usage error, not a command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:  # typer 0.28 carries its own copy of click
            from typer._click.exceptions import NoSuchOption
        except ImportError:  # pragma: no cover - typer with click as a dependency
            from click.exceptions import NoSuchOption
        try:
            return super().parse_args(ctx, self._dry_run_value(args))
        except NoSuchOption as exc:
            _err(f"rr: error: no such option: {exc.option_name}")
            _err(f"rr: hint: options go before the command; put '--' before a command that "
                 f"starts with '-' (rr {ctx.info_name} [OPTIONS] -- CMD)")
            raise typer.Exit(2) from None


    def _dry_run_value(self, args: list[str]) -> list[str]:
        """``--dry-run`` takes an optional value: ``--dry-run`` alone is ``basic``,
        ``--dry-run=MODE`` and (DataLad's spelling) ``--dry-run MODE`` name it when MODE is
        basic or command; any other word after it starts the command (``rr run --dry-run
        echo hi``).  Only the options before the command are looked at."""
        if not any(getattr(p, "name", None) == "dry_run" for p in self.params):
            return args
        takes_value = {o for p in self.params if getattr(p, "param_type_name", "") == "option"
                       and not p.is_flag and not p.count for o in p.opts}
        out: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--" or a == "-" or not a.startswith("-"):
                return out + args[i:]
            if a == "--dry-run":
                nxt = args[i + 1] if i + 1 < len(args) else None
                if nxt in DRY_RUN_MODES:
                    out.append(f"--dry-run={nxt}")
                    i += 2
                else:
                    out.append("--dry-run=basic")
                    i += 1
                continue
            if a.startswith("--dry-run=") and a.split("=", 1)[1] not in DRY_RUN_MODES:
                _err(f"rr: error: --dry-run must be basic or command, not "
                     f"{a.split('=', 1)[1]!r}")
                raise typer.Exit(2)
            out.append(a)
            if a in takes_value and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
            i += 1
        return out


_COMMAND_AFTER_OPTIONS = {"allow_interspersed_args": False}
DRY_RUN_MODES = ("basic", "command")


class DryRun(str, Enum):
    basic = "basic"
    command = "command"


class Which(str, Enum):
    inputs = "inputs"
    outputs = "outputs"
    both = "both"


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _info(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\x1b[2m{text}\x1b[0m\n")
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _announce(command: str) -> None:
    _info(f"rr: running: {command}")


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the API; turn a RecorderError into 'rr: error: ...' and its exit code."""
    try:
        return fn(*args, **kwargs)
    except RecorderError as exc:
        if _STATE["debug"]:
            raise
        _err(f"rr: error: {exc.message}")
        if exc.hint:
            _err(f"rr: hint: {exc.hint}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        if _STATE["debug"]:
            raise
        _err("rr: interrupted")
        raise typer.Exit(130) from None


def _json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def render_results(results: Any, as_json: bool,
                   line: Callable[[Any], str | None] | None = None) -> int:
    """The one rendering of result records (``recorder.results.Result``): one JSON object per
    line with ``--json``, else one line each (``line(result)``, default ``state path``; None
    skips it).  Failed results go to stderr as ``rr: error: ...``.  Returns the number of
    failed results, for the exit code."""
    failed = 0
    for r in results:
        if r.failed:
            failed += 1
        if as_json:
            _json(r.to_dict())
            sys.stdout.flush()
            continue
        if r.failed:
            _err(f"rr: {r.status}: {r.path}: {r.message}" if r.message else
                 f"rr: {r.status}: {r.path}")
            continue
        text = line(r) if line else f"{r.state or r.status:<10} {r.path}"
        if text is not None:
            print(text)
    return failed


def _version(value: bool) -> None:
    if value:
        print(f"rr {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    _STATE["debug"] = debug
    if debug:  # the engine (Dask) shows distributed's log lines then
        os.environ["RR_DEBUG"] = "1"


@app.command()
def create(
    path: Optional[str] = typer.Argument(None, help="Where to create the dataset (default: here)."),
    cfg_proc: List[str] = typer.Option([], "-c", "--cfg-proc",
                                       help="Run this configuration procedure after creation "
                                            "(yoda, text2git, ...); repeatable."),
    force: bool = typer.Option(False, "--force", "-f", help="Create in a non-empty directory."),
    no_annex: bool = typer.Option(False, "--no-annex", help="A plain git dataset, no git-annex."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset",
                                          help="Register the new dataset as a subdataset of "
                                               "this dataset (PATH is relative to the working "
                                               "directory and must be inside it)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create a dataset: git + git-annex, .datalad/config with a new id, one commit.

    Example: rr create -c yoda -c text2git my-analysis; rr create -d . data/raw
    """
    from . import api

    ds = call(api.create, path, cfg_proc=cfg_proc, force=force, annex=not no_annex,
              dataset=dataset, announce=None if as_json else _announce)
    if as_json:
        _json({"action": "create", "status": "ok", "path": str(ds.root), "id": ds.id})
    else:
        _info(f"rr: created dataset {ds.root} (id {ds.id})")


@app.command()
def save(
    paths: List[str] = typer.Argument(None, help="Paths to save (default: all changes)."),
    message: Optional[str] = typer.Option(None, "-m", "--message", help="Commit message."),
    message_file: Optional[str] = typer.Option(None, "-F", "--message-file",
                                               help="Take the commit message from this file "
                                                    "(e.g. .git/COMMIT_EDITMSG after a failed run)."),
    version_tag: Optional[str] = typer.Option(None, "--version-tag", "-t",
                                              help="Tag the saved commit with this name."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset (default: "
                                          "the one containing the working directory)."),
    recursive: bool = typer.Option(False, "-r", "--recursive",
                                   help="Accepted for DataLad users: rr always saves changes "
                                        "inside subdatasets first (bottom-up)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Save changes: large files into the annex (per .gitattributes), text into git.

    A git repository inside the dataset (made by rr create PATH, git init, ...) is saved as a
    subdataset (gitlink + .gitmodules entry), changes inside it first.

    Example: rr save -m "Add evaluation script" --version-tag ready4analysis code/evaluate.py
    """
    from . import api

    result = call(api.save, paths or (), dataset=dataset, message=message,
                  message_file=message_file, version_tag=version_tag)
    if as_json:
        _json(result.to_dict())
        return
    if result.status == "notneeded":
        _info("rr: nothing to save" + (f"; tagged HEAD as {result.tag}" if result.tag else ""))
    else:
        tag = f", tagged {result.tag}" if result.tag else ""
        _info(f"rr: saved {len(result.paths)} path(s) in {result.commit[:8]}{tag}")


# the array options, shared by rr run and rr containers-run
_PARAM = typer.Option([], "--param", help="NAME=V1,V2,...: run once per value ({NAME} in the "
                      "command, -i and -o); several --param form their Cartesian product; "
                      "repeatable.")
_ARRAY = typer.Option(None, "--array", help="A CSV/TSV table: one job per row, its columns "
                      "are parameters.")
_JOBS = typer.Option(None, "-J", "--jobs", help="Run this many array jobs at once (Dask "
                     "LocalCluster; default: one after the other).")
_SCHEDULER = typer.Option(None, "--scheduler", help="Run array jobs on this Dask scheduler "
                          "(tcp://HOST:PORT) or cluster (slurm, pbs, sge, htcondor).")
_CONTINUE = typer.Option(False, "--continue", help="Run the jobs of an unfinished array that "
                         "did not succeed (give its ID as the command when there are several) "
                         "and write its history.")


@app.command(cls=_CommandAfterOptions, context_settings=_COMMAND_AFTER_OPTIONS)
def run(
    cmd: List[str] = typer.Argument(None, help="The command. Quote it as one string when it "
                                                "uses {inputs}/{outputs}, pipes or redirections."),
    message: Optional[str] = typer.Option(None, "-m", "--message",
                                          help="Commit message (default: the command, cut at "
                                               "40 characters)."),
    inputs: List[str] = typer.Option([], "-i", "--input",
                                     help="Input path or glob, fetched before the command; "
                                          "repeatable."),
    outputs: List[str] = typer.Option([], "-o", "--output",
                                      help="Output path or glob, made writable before the "
                                           "command; repeatable."),
    expand: Optional[Which] = typer.Option(None, "--expand",
                                           help="Store expanded globs instead of the specs."),
    explicit: bool = typer.Option(False, "--explicit",
                                  help="Save only the declared outputs; the dataset may be dirty."),
    assume_ready: Optional[Which] = typer.Option(None, "--assume-ready",
                                                 help="Skip fetching inputs / unlocking outputs."),
    dry_run: Optional[DryRun] = typer.Option(None, "--dry-run", metavar="[=basic|command]",
                                             help="Show what would run and change nothing: "
                                                  "--dry-run (basic) the details, "
                                                  "--dry-run=command only the expanded "
                                                  "command."),
    sidecar: bool = typer.Option(None, "--sidecar/--no-sidecar",
                                 help="Store the record in .datalad/runinfo instead of the "
                                      "commit message."),
    container: Optional[str] = typer.Option(None, "-n", "--container",
                                            help="Run inside this registered container."),
    gpus: bool = typer.Option(False, "--gpus", help="Give the container the GPUs "
                              "(docker/podman --gpus all, apptainer --nv)."),
    params: List[str] = _PARAM,
    array: Optional[str] = _ARRAY,
    jobs: Optional[int] = _JOBS,
    scheduler: Optional[str] = _SCHEDULER,
    continue_: bool = _CONTINUE,
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run a command and record it: inputs fetched, outputs saved with a run record.

    Example: rr run -m "Count words" -i 'data/*.txt' -o counts.txt "wc -w {inputs} > {outputs}"

    Array (one record per row, committed in row order): rr run --param subject=01,02 -J 2
    -i 'raw/{subject}.csv' -o 'out/{subject}.txt' "wc -l {inputs} > {outputs}"
    """
    _run_impl(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run, sidecar,
              container, gpus, dataset, as_json, params, array, jobs, scheduler, continue_)


@app.command("containers-run", cls=_CommandAfterOptions, context_settings=_COMMAND_AFTER_OPTIONS)
def containers_run(
    cmd: List[str] = typer.Argument(None, help="The command to run inside the container."),
    container: Optional[str] = typer.Option(None, "-n", "--container-name", "--container",
                                            help="The registered container (may be left out "
                                                 "when there is only one)."),
    message: Optional[str] = typer.Option(None, "-m", "--message", help="Commit message."),
    inputs: List[str] = typer.Option([], "-i", "--input", help="Input path or glob."),
    outputs: List[str] = typer.Option([], "-o", "--output", help="Output path or glob."),
    expand: Optional[Which] = typer.Option(None, "--expand", help="Store expanded globs."),
    explicit: bool = typer.Option(False, "--explicit", help="Save only declared outputs."),
    assume_ready: Optional[Which] = typer.Option(None, "--assume-ready",
                                                 help="Skip fetching inputs / unlocking outputs."),
    dry_run: Optional[DryRun] = typer.Option(None, "--dry-run", metavar="[=basic|command]",
                                             help="Show what would run (=command: only the "
                                                  "expanded command)."),
    sidecar: bool = typer.Option(None, "--sidecar/--no-sidecar", help="Record in a sidecar."),
    gpus: bool = typer.Option(False, "--gpus", help="Give the container the GPUs."),
    params: List[str] = _PARAM,
    array: Optional[str] = _ARRAY,
    jobs: Optional[int] = _JOBS,
    scheduler: Optional[str] = _SCHEDULER,
    continue_: bool = _CONTINUE,
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """rr run inside a registered container (same options as rr run).

    Example: rr containers-run -n software -i data/train.csv -o model.joblib "python3 code/train.py"
    """
    _run_impl(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run, sidecar,
              container or "", gpus, dataset, as_json, params, array, jobs, scheduler, continue_)


def _run_impl(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run, sidecar,
              container, gpus, dataset, as_json, params=(), array=None, jobs=None,
              scheduler=None, continue_=False) -> None:
    from . import api

    if params or array is not None or continue_:
        _run_array_impl(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run,
                        sidecar, container, gpus, dataset, as_json, params, array, jobs,
                        scheduler, continue_)
        return
    if jobs is not None or scheduler is not None:
        _err("rr: error: --jobs and --scheduler run array jobs: give --param or --array")
        raise typer.Exit(2)

    def announce(command: str) -> None:
        if not as_json:
            _info(f"rr: running: {command}")

    result = call(api.run, cmd or [], dataset=dataset, message=message, inputs=inputs,
                  outputs=outputs, expand=expand.value if expand else None, explicit=explicit,
                  assume_ready=assume_ready.value if assume_ready else None,
                  dry_run=dry_run is not None,
                  sidecar=sidecar, container=container, gpus=gpus, announce=announce,
                  cwd=os.getcwd())
    for note in getattr(result, "notes", []):
        _info(f"rr: note: {note}")
    if as_json:
        _json(result.to_dict())
        return
    if result.status == "dry-run" and dry_run == DryRun.command:
        print(result.command)
    elif result.status == "dry-run":
        _render_dry_run(result, os.getcwd())
    elif result.status == "notneeded":
        _info("rr: the command changed nothing; no commit made")
    else:
        _info(f"rr: saved {len(result.saved)} path(s) in {result.commit[:8]} with the run record "
              f"({result.duration:.1f}s)")


@app.command()
def rerun(
    revision: Optional[str] = typer.Argument(None, help="Commit to replay (default HEAD), or a "
                                             "range A..B of commits."),
    since: Optional[str] = typer.Option(None, "--since", help="Replay every commit after this "
                                        "one up to REVISION; --since= replays all history."),
    onto: Optional[str] = typer.Option(None, "--onto", help="Replay on top of this commit; "
                                       "--onto= starts at the parent of the first run commit."),
    branch: Optional[str] = typer.Option(None, "--branch", "-b",
                                         help="Replay onto this new branch (and stay on it)."),
    message: Optional[str] = typer.Option(None, "-m", "--message",
                                          help="Message for every re-executed commit."),
    report: bool = typer.Option(False, "--report", help="Print the plan as JSON lines; run "
                                "nothing."),
    script: Optional[str] = typer.Option(None, "--script", help="Write a shell script that "
                                         "reproduces the commands to FILE ('-' for stdout)."),
    explicit: bool = typer.Option(False, "--explicit", help="Save only declared outputs; the "
                                  "dataset may be dirty."),
    assume_ready: Optional[Which] = typer.Option(None, "--assume-ready",
                                                 help="Skip fetching inputs / unlocking outputs."),
    continue_: bool = typer.Option(False, "--continue", help="Resume a replay that stopped."),
    abort: bool = typer.Option(False, "--abort", help="Drop a stopped replay: undo the "
                               "stopped step's changes and go back to where it started."),
    jobs: Optional[int] = typer.Option(None, "-J", "--jobs", help="Replay the jobs of an "
                                       "array (rr run --param/--array) this many at once on "
                                       "a local Dask cluster; the rest in order, with the "
                                       "same result as --jobs 1."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Replay array jobs on "
                                            "this Dask scheduler (tcp://HOST:PORT) or batch "
                                            "system (slurm, pbs, sge, htcondor, ...)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON result per step."),
) -> None:
    """Replay recorded runs: one commit, a range, or all history; in place or on a branch.

    Example: rr rerun --branch randomforest -m "Recompute" ready4analysis..SGD-100

    Example: rr rerun --jobs 4 --since=raw-data  (an array's jobs 4 at a time)
    """
    from . import api

    if report:
        for item in call(lambda: list(api.rerun_report(revision, dataset=dataset, since=since,
                                                       onto=onto, branch=branch))):
            _json(item)
        return
    if script is not None:
        text = call(api.rerun_script, revision, dataset=dataset, since=since,
                    script_name=script)
        if script == "-":
            sys.stdout.write(text)
        else:
            call(_write_script, script, text)
            _info(f"rr: script written to {script}")
        return
    if abort:
        where = call(api.rerun_abort, dataset=dataset)
        _info(f"rr: stopped replay dropped; {where}")
        return
    tty = sys.stderr.isatty()

    def notify(index: int, total: int, step: Any) -> None:
        if tty and not as_json:
            _info(f"rr: [{index}/{total}] {step.action} {step.commit[:8]} {step.subject}")

    def announce(command: str) -> None:
        # what a record makes rr execute is always shown first (on stderr, also with --json)
        _info(f"rr: running: {command}")

    def warn(text: str) -> None:
        _err(f"rr: warning: {text}")

    def replay() -> list:
        out = []
        for result in api.rerun(revision, dataset=dataset, since=since, onto=onto,
                                branch=branch, message=message, explicit=explicit,
                                assume_ready=assume_ready.value if assume_ready else None,
                                continue_=continue_, notify=notify, announce=announce,
                                warn=warn, jobs=jobs, scheduler=scheduler):
            out.append(result)
            if as_json:
                _json(result.to_dict())
            else:
                _render_step(result)
        return out

    results = call(replay)
    if not as_json:
        ran = sum(1 for r in results if r.action == "run")
        changed = sum(1 for r in results if r.action == "run" and r.status == "ok")
        _info(f"rr: replayed {ran} run(s), {changed} with new results, "
              f"{ran - changed} unchanged")


def _write_script(path: str, text: str) -> None:
    import os

    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, 0o755)
    except OSError as exc:
        raise RecorderError(f"cannot write the script: {exc.strerror or exc}") from None


@app.command("run-procedure", cls=_CommandAfterOptions, context_settings=_COMMAND_AFTER_OPTIONS)
def run_procedure(
    name: Optional[str] = typer.Argument(None, help="The procedure (e.g. cfg_yoda)."),
    args: List[str] = typer.Argument(None, help="Arguments passed to the procedure."),
    discover: bool = typer.Option(False, "--discover", help="List the procedures rr finds."),
    help_proc: bool = typer.Option(False, "--help-proc",
                                   help="Show the help of procedure NAME "
                                        "(datalad.procedures.NAME.help)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Run a dataset procedure, or list them with --discover.

    Example: rr run-procedure cfg_text2git
    """
    from . import api

    if help_proc:
        if not name:
            call(_raise_usage, "--help-proc needs a procedure name")
        proc_, text = call(api.procedure_help, name, dataset=dataset)
        if as_json:
            _json({"action": "procedure_help", "status": "ok", **proc_.to_dict()})
        else:
            print(f"{proc_.name} ({proc_.path})\n{text}")
        return

    if discover:
        for p in call(api.discover_procedures, dataset=dataset):
            if as_json:
                _json(p.to_dict())
            else:
                helptext = f"  {p.help.splitlines()[0]}" if p.help else ""
                mark = f"[overridden by {p.overridden_by}] " if p.overridden_by else ""
                print(f"{mark}{p.name} ({p.source}: {p.path}){helptext}")
        return
    if not name:
        call(_raise_usage, "give a procedure name, or --discover")
    result = call(api.run_procedure, name, args or (), dataset=dataset,
                  announce=None if as_json else _announce)
    if as_json:
        _json(result.to_dict())
    else:
        _info(f"rr: procedure {name} done ({len(result.commits)} commit(s))")


def _raise_usage(message: str) -> None:
    from .errors import UsageError

    raise UsageError(message)


@app.command("containers-add")
def containers_add(
    name: str = typer.Argument(..., help="Name of the container (letters, digits, '-')."),
    url: Optional[str] = typer.Option(None, "--url", "-u", help="Where the image comes from: "
                                      "dhub://IMAGE or docker://IMAGE (local Docker engine, "
                                      "saved into the dataset), podman://IMAGE, shub://, oras://, "
                                      "library://, or a local .sif file."),
    image: Optional[str] = typer.Option(None, "--image", "-i", help="Where the image is kept "
                                        "in the dataset (default .datalad/environments/NAME/"
                                        "image)."),
    call_fmt: Optional[str] = typer.Option(None, "--call-fmt", help="How to call the image: "
                                           "placeholders {img} {cmd} {img_dspath} "
                                           "{img_dirpath} {python}."),
    extra_input: List[str] = typer.Option([], "--extra-input", help="Another file the "
                                          "container needs; repeatable."),
    update: bool = typer.Option(False, "--update", help="Reconfigure an existing container."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Register a container image in the dataset, so runs can use it and it travels along.

    Example: rr containers-add software --url dhub://python-ml:1
    """
    from . import api

    container, commit = call(api.containers_add, name, url=url, image=image, call_fmt=call_fmt,
                             extra_input=extra_input, update=update, dataset=dataset)
    if as_json:
        _json({"action": "containers-add", "status": "ok", "commit": commit,
               **container.to_dict()})
    else:
        _info(f"rr: container {container.name} -> {container.image} ({container.runtime})")


@app.command("containers-list")
def containers_list(
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    recursive: bool = typer.Option(False, "-r", "--recursive",
                                   help="Also list the containers of installed subdatasets "
                                        "(named SUB/NAME)."),
    contains: Optional[List[str]] = typer.Option(
        None, "--contains", metavar="PATH",
        help="With -r: only subdatasets that contain PATH (relative to the dataset root); "
             "repeatable. Top-level containers are always listed."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per container."),
) -> None:
    """List the containers registered in the dataset (with -r: and in its subdatasets).

    Example: rr containers-list -r --json
    """
    from . import api

    found = call(api.containers_list, dataset=dataset, recursive=recursive,
                 contains=contains or [])
    for c in found:
        if as_json:
            _json(c.to_dict(c.parentds))
        else:
            print(f"{c.name} -> {c.shown_path} ({c.runtime})")


@app.command("containers-remove")
def containers_remove(
    name: str = typer.Argument(..., help="The container to unregister."),
    remove_image: bool = typer.Option(False, "--remove-image", help="Remove the image too."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Unregister a container (and with --remove-image delete its image from the dataset).

    Example: rr containers-remove software --remove-image
    """
    from . import api

    call(api.containers_remove, name, remove_image=remove_image, dataset=dataset)
    _info(f"rr: container {name} removed")


@app.command("containers-exec", cls=_CommandAfterOptions, context_settings=_COMMAND_AFTER_OPTIONS)
def containers_exec(
    image: str = typer.Argument(..., help="Path of the saved image."),
    cmd: List[str] = typer.Argument(None, help="The command (one shell string)."),
    runtime: str = typer.Option("docker", "--runtime", help="docker, podman, singularity or "
                                "apptainer."),
    name: Optional[str] = typer.Option(None, "--name", help="Container name (for its "
                                       "runtime-flags config)."),
    gpus: bool = typer.Option(False, "--gpus", help="Give the container the GPUs."),
    repo_tag: Optional[str] = typer.Option(None, "--repo-tag", help="Which image of a saved "
                                           "archive with several."),
) -> None:
    """Run one command inside a saved image; this is the call rr writes into run records.

    Example: rr containers-exec --runtime docker .datalad/environments/software/image "python3 -V"
    """
    from . import api

    code = call(api.containers_exec, image, cmd or [], runtime=runtime, name=name, gpus=gpus,
                repo_tag=repo_tag)
    raise typer.Exit(code)


@app.command()
def clone(
    source: str = typer.Argument(..., help="A path, git URL or SSH URL (host:path)."),
    path: Optional[str] = typer.Argument(None, help="Where to put the clone."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="Register the clone "
                                          "as a subdataset of this dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Clone a dataset (content stays where it is until you get it).

    Example: rr clone -d . ../imagenette data/raw
    """
    from . import api

    result = call(api.clone, source, path, dataset=dataset)
    if as_json:
        _json(result.to_dict())
    else:
        where = f", registered in {result.registered_in}" if result.registered_in else ""
        _info(f"rr: cloned {source} to {result.path}{where}")


@app.command()
def get(
    paths: List[str] = typer.Argument(None, help="Files or directories (default: all)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Into subdatasets too."),
    jobs: Optional[int] = typer.Option(None, "-J", "--jobs", min=1, help="Transfers at once "
                                       "(git-annex's --jobs)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Fetch annexed content, installing subdatasets on the way.

    Example: rr get -r -J 4 data/raw/train
    """
    from . import api

    if sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("getting", total=None)

            def on_file(rec: dict) -> None:
                bar.update(task, advance=1, description=f"got {rec.get('file', '')}")

            call(api.get, paths or (), dataset=dataset, recursive=recursive, on_file=on_file,
                 jobs=jobs)
    else:
        call(api.get, paths or (), dataset=dataset, recursive=recursive, jobs=jobs)
    _info("rr: content is here")


@app.command()
def drop(
    paths: List[str] = typer.Argument(None, help="Files or directories (default: all)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Into subdatasets too."),
    force: bool = typer.Option(False, "--force", help="Drop even the last known copy."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Drop annexed content that is safely stored elsewhere.

    Example: rr drop data/raw/train
    """
    from . import api

    results = call(api.drop, paths or (), dataset=dataset, recursive=recursive, force=force)
    _info(f"rr: dropped {sum(1 for r in results if r.get('success'))} file(s)")


siblings_app = typer.Typer(help="Places to push to and get from.\n\nExample: rr siblings add "
                                "origin /srv/store/analysis.git", no_args_is_help=True)
app.add_typer(siblings_app, name="siblings")


@siblings_app.command("add")
def siblings_add(
    name: str = typer.Argument(..., help="Name of the sibling."),
    url: str = typer.Argument(..., help="A path (a bare repository is made there), git URL or "
                              "SSH URL."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Put annexed content in "
                                           "this directory (a git-annex directory special "
                                           "remote) instead of the git sibling."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Add a sibling.

    Example: rr siblings add origin /srv/store/analysis.git
    """
    from . import api

    sib = call(api.siblings_add, name, url, data_dir=data_dir, dataset=dataset)
    _info(f"rr: sibling {sib.name} -> {sib.url}")


@siblings_app.command("list")
def siblings_list(
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per sibling."),
) -> None:
    """List siblings.

    Example: rr siblings list
    """
    from . import api

    for sib in call(api.siblings_list, dataset=dataset):
        if as_json:
            _json(sib.to_dict())
        else:
            deps = f" (content to {', '.join(sib.publish_depends)})" if sib.publish_depends else ""
            print(f"{sib.name} [{sib.kind}] {sib.url}{deps}")


class DataMode(str, Enum):
    auto = "auto"
    anything = "anything"
    nothing = "nothing"


@app.command()
def push(
    to: Optional[str] = typer.Option(None, "--to", help="The sibling (default: the only one)."),
    data: DataMode = typer.Option(DataMode.auto, "--data", help="Which annexed content to "
                                  "send: auto (this version), anything (all versions), nothing."),
    jobs: Optional[int] = typer.Option(None, "-J", "--jobs", min=1, help="Transfers at once "
                                       "(git-annex's --jobs)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Push history, tags and annexed content to a sibling.

    Example: rr push --to origin -J 4
    """
    from . import api

    result = call(api.push, to=to, data=data.value, dataset=dataset, jobs=jobs)
    if as_json:
        _json(result.to_dict())
    else:
        _info(f"rr: pushed {result.branch or 'HEAD'} and {result.copied} file(s) of content "
              f"to {result.to}")


metrics_app = typer.Typer(help="Compare metrics across tags, branches and commits.\n\n"
                               "Example: rr metrics show -T -a", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")


class TableFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    md = "md"


def _format(as_csv: bool, as_json: bool, as_md: bool) -> str:
    return "csv" if as_csv else "json" if as_json else "md" if as_md else "table"


@metrics_app.command("show")
def metrics_show(
    files: List[str] = typer.Argument(None, help="Metrics files (default: the registered ones, "
                                      "else every .json output of a run record); globs "
                                      "('sweep/*/accuracy.json') match the revisions' files."),
    all_tags: bool = typer.Option(False, "-T", "--all-tags", help="A row per tag."),
    all_branches: bool = typer.Option(False, "-a", "--all-branches", help="A row per branch "
                                      "(and per sibling branch fetched by rr update)."),
    all_commits: bool = typer.Option(False, "-A", "--all-commits", help="A row per commit."),
    revision: List[str] = typer.Option([], "-r", "--rev", help="A row for this revision."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per row."),
    as_md: bool = typer.Option(False, "--md", help="A Markdown table."),
    per_file: bool = typer.Option(False, "--per-file", help="A row per file (and revision), "
                                  "not a column per file: e.g. a sweep's results side by side."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Show metrics at revisions, read from git objects (nothing is checked out).

    Example: rr metrics show -T -a accuracy.json

    Example: rr metrics show --per-file 'sweep/*/accuracy.json'
    """
    from . import api
    from .metrics import render_table

    rows = call(api.metrics, files or (), dataset=dataset, all_tags=all_tags,
                all_branches=all_branches, all_commits=all_commits, revisions=revision,
                as_frame=False, per_file=per_file)
    sys.stdout.write(render_table([r.flat() for r in rows], _format(as_csv, as_json, as_md)))


@metrics_app.command("diff")
def metrics_diff(
    a: Optional[str] = typer.Argument(None, help="Old revision (default HEAD)."),
    b: Optional[str] = typer.Argument(None, help="New revision (default: the working tree)."),
    files: List[str] = typer.Option([], "-f", "--file", help="Metrics file; repeatable."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per metric."),
    as_md: bool = typer.Option(False, "--md", help="A Markdown table."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Compare metrics of two revisions: old, new and change per key.

    Example: rr metrics diff master randomforest
    """
    from . import api
    from .metrics import render_table

    rows = call(api.metrics_diff, a, b, files=files, dataset=dataset)
    sys.stdout.write(render_table([r.to_dict() for r in rows], _format(as_csv, as_json, as_md)))


@metrics_app.command("plot")
def metrics_plot(
    key: str = typer.Argument(..., help="The metric, e.g. accuracy or scores.f1."),
    output: str = typer.Option(..., "-o", "--output", help="FILE.png, FILE.svg or FILE.html."),
    files: List[str] = typer.Option([], "-f", "--file", help="Metrics file; repeatable."),
    all_tags: bool = typer.Option(False, "-T", "--all-tags", help="A point per tag."),
    all_branches: bool = typer.Option(False, "-a", "--all-branches", help="A point per branch."),
    all_commits: bool = typer.Option(False, "-A", "--all-commits", help="A point per commit "
                                     "(the default)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Chart a metric across revisions.

    Example: rr metrics plot accuracy -T -o accuracy.png
    """
    from . import api

    path = call(api.metrics_plot, key, output, files=files, all_tags=all_tags,
                all_branches=all_branches, all_commits=all_commits, dataset=dataset)
    _info(f"rr: wrote {path}")


@metrics_app.command("add")
def metrics_add(
    path: str = typer.Argument(..., help="A metrics file (JSON, YAML or CSV)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Register a metrics file for rr metrics (kept in .datalad/config).

    Example: rr metrics add accuracy.json
    """
    from . import api

    rel = call(api.metrics_add, path, dataset=dataset)
    _info(f"rr: tracking metrics in {rel}")


@app.command()
def graph(
    revision_range: Optional[str] = typer.Argument(None, help="Commits to include (default "
                                                   "HEAD)."),
    output: str = typer.Option(..., "-o", "--output", help="FILE.svg, FILE.png or FILE.dot."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """Draw the provenance graph: inputs -> command -> outputs, reruns linked to originals.

    Example: rr graph ready4analysis..HEAD -o provenance.svg
    """
    from . import api

    path = call(api.graph, output, revision_range, dataset=dataset)
    _info(f"rr: wrote {path}")


@app.command("download-url")
def download_url(
    urls: List[str] = typer.Argument(..., help="http(s), ftp or file URLs."),
    path: Optional[str] = typer.Option(None, "--path", "-O", help="Where to put it (a file "
                                       "name, or a directory for several URLs)."),
    message: Optional[str] = typer.Option(None, "-m", "--message", help="Commit message."),
    archive: bool = typer.Option(False, "--archive", help="Extract the archive; it stays as "
                                 "the source the extracted files can be got back from."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Download files into the dataset; their URLs are recorded so drop + get fetches again.

    Example: rr download-url --archive --path data/raw https://example.org/imagenette.tgz
    """
    from . import api

    result = call(api.download_url, urls, path=path, message=message, archive=archive,
                  dataset=dataset)
    if as_json:
        _json(result.to_dict())
    else:
        extra = f", extracted {len(result.extracted)} file(s)" if result.extracted else ""
        _info(f"rr: downloaded {len(result.files)} file(s){extra}")


@app.command("log")
def log_(
    revision_range: Optional[str] = typer.Argument(None, help="Commits to show (default HEAD), "
                                                   "e.g. ready4analysis..HEAD."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per run commit."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header row."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
) -> None:
    """List run commits: when, who, what command, which inputs and outputs, exit code.

    Example: rr log ready4analysis..HEAD --csv
    """
    from . import api

    rows = call(api.log, revision_range, dataset=dataset, as_frame=False)
    if as_json:
        for r in rows:
            _json(r.to_dict())
        return
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["commit", "date", "author", "message", "command", "container",
                         "inputs", "outputs", "exit", "duration"])
        for r in rows:
            writer.writerow([r.commit, r.date, r.author, r.message, r.command,
                             r.container or "", " ".join(r.inputs), " ".join(r.outputs),
                             "" if r.exit is None else r.exit,
                             "" if r.duration is None else r.duration])
        return
    for r in rows:
        exit_text = "" if r.exit in (0, None) else f" [exit {r.exit}]"
        took = f" ({r.duration:.1f}s)" if r.duration is not None else ""
        print(f"{r.commit[:8]} {r.date[:19]} {r.author}: {r.message}{exit_text}{took}")
        print(f"    $ {r.command}")
        if r.inputs:
            print(f"    inputs:  {' '.join(r.inputs)}")
        if r.outputs:
            print(f"    outputs: {' '.join(r.outputs)}")
        if r.note:
            print(f"    note: {r.note}")


# --- status, diff, unlock ---


def _state_line(r: Any) -> str:
    """DataLad's status/diff line: ' modified: path (type)'."""
    return f"{r.state or r.status:>9}: {r.path} ({r.type or 'file'})" + \
        (f" [{r.message}]" if r.message else "")


def _human_size(n: int) -> str:
    """Decimal units, as DataLad prints sizes: 999 B, 12 MB, 1.4 GB."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            break
    return f"{value:.3g} {unit}"


@app.command()
def status(
    paths: List[str] = typer.Argument(None, help="Limit to these paths (default: all)."),
    recursive: bool = typer.Option(False, "-r", "--recursive",
                                   help="Into installed subdatasets too."),
    annex: bool = typer.Option(False, "--annex", help="Also list every annexed file: whether "
                               "its content is here and its size, and a total."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per path."),
) -> None:
    """Show what changed: untracked, added, modified, deleted files and subdatasets, and
    annexed content changed through its link (damaged).

    Paths are shown relative to the dataset's root (as datalad status -d .).

    Example: rr status -r --annex data/
    """
    from . import api

    results = call(api.status, paths or (), dataset=dataset, recursive=recursive, annex=annex)
    totals = {"files": 0, "present": 0, "bytes": 0, "here": 0, "unknown": 0, "changed": 0}

    def counted(items: Any) -> Any:
        for r in items:
            if r.state != "clean" and not r.failed:
                totals["changed"] += 1
            info = r.extra or {}
            if "has_content" in info:
                totals["files"] += 1
                size = info.get("bytesize")
                totals["unknown"] += size is None
                totals["bytes"] += size or 0
                if info["has_content"]:
                    totals["present"] += 1
                    totals["here"] += size or 0
            yield r

    def line(r: Any) -> str | None:
        info = r.extra or {}
        if "has_content" not in info:
            return _state_line(r)
        size = "size unknown" if info.get("bytesize") is None else \
            _human_size(info["bytesize"])
        where = "present" if info["has_content"] else "absent"
        return f"{_state_line(r)} [{where}, {size}]"

    failed = call(render_results, counted(results), as_json, line=line)
    if not as_json:
        if not totals["changed"] and not failed:
            print("nothing to save, working tree clean")
        if annex:
            unknown = f" ({totals['unknown']} of unknown size)" if totals["unknown"] else ""
            print(f"{totals['present']} of {totals['files']} annexed files present, "
                  f"{_human_size(totals['here'])} of {_human_size(totals['bytes'])}{unknown}")
    if failed:
        raise typer.Exit(1)


# --- array jobs ---


class _Progress:
    """One line of queued/running/done/failed jobs with the elapsed time on a terminal
    (stderr); nothing when stderr is not a terminal."""

    def __init__(self) -> None:
        import time

        self._time = time.monotonic
        self.start = time.monotonic()
        self.on = sys.stderr.isatty()
        self.state: dict[int, str] = {}
        self.shown = 0.0

    def event(self, e: Any) -> None:
        self.state[e.index] = {"queued": "queued", "started": "running"}.get(e.kind, e.kind)
        now = self._time()
        if self.on and (now - self.shown > 0.1 or e.kind in ("done", "failed")):
            self.shown = now
            counts = {k: 0 for k in ("queued", "running", "done", "failed")}
            for v in self.state.values():
                counts[v] = counts.get(v, 0) + 1
            sys.stderr.write("\r\x1b[Krr: jobs: " + ", ".join(f"{v} {k}" for k, v in
                                                              counts.items())
                             + f" ({now - self.start:.1f}s)")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.on:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def around(self, results: Any) -> Any:
        try:
            for r in results:
                self.clear()
                yield r
        finally:
            self.clear()


def _array_line(r: Any) -> str:
    extra = r.extra or {}
    if r.action == "run-array":
        return f"rr: {r.message}"
    if r.state == "dry-run":
        ins = f" <- {' '.join(extra['inputs'])}" if extra.get("inputs") else ""
        outs = f" -> {' '.join(extra['outputs'])}" if extra.get("outputs") else ""
        params = " ".join(f"{k}={v}" for k, v in extra["params"].items())
        return f"job {extra['index']}: {params}: {extra['command']}{ins}{outs}"
    took = f" ({extra['duration']:.1f}s)" if "duration" in extra else ""
    return f"{r.state:<9} {r.path}: {r.message}{took}"


def _run_array_impl(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run,
                    sidecar, container, gpus, dataset, as_json, params, array, jobs, scheduler,
                    continue_) -> None:
    from . import api

    progress = _Progress()
    if as_json:
        progress.on = False
    words = list(cmd or [])
    if continue_ and len(words) > 1:
        _err("rr: error: --continue takes at most one array ID (no command)")
        raise typer.Exit(2)

    def go() -> int:
        results = api.run_array(
            [] if continue_ else words, dataset=dataset, message=message, inputs=inputs,
            outputs=outputs, params=params, array=array,
            expand=expand.value if expand else None, explicit=explicit,
            assume_ready=assume_ready.value if assume_ready else None,
            dry_run=dry_run is not None, sidecar=sidecar, container=container, gpus=gpus,
            jobs=jobs, scheduler=scheduler, continue_=continue_,
            array_id=words[0] if continue_ and words else None, cwd=os.getcwd(),
            on_event=progress.event,
            announce=None if as_json else (lambda text: _info(f"rr: running {text}")))
        return render_results(progress.around(results), as_json, line=_array_line)

    failed = call(go)
    if failed:
        raise typer.Exit(1)


# --- update ---


class How(str, Enum):
    fetch = "fetch"
    merge = "merge"
    ff_only = "ff-only"
    reset = "reset"


class Follow(str, Enum):
    sibling = "sibling"
    parentds = "parentds"


@app.command()
def update(
    sibling: Optional[str] = typer.Option(None, "-s", "--sibling", help="The sibling to update "
                                          "from (default: fetch from all; bring changes in "
                                          "from the one the current branch tracks)."),
    how: How = typer.Option(How.fetch, "--how", help="fetch: only fetch (branches appear as "
                            "SIBLING/BRANCH, content becomes gettable); merge, ff-only or "
                            "reset: also bring the current branch up to date with its "
                            "counterpart on the sibling."),
    how_subds: Optional[How] = typer.Option(None, "--how-subds", help="--how for subdatasets "
                                            "(default: the same)."),
    follow: Follow = typer.Option(Follow.parentds, "--follow", help="With -r: bring each "
                                  "subdataset to the commit its superdataset records "
                                  "(parentds, rr's default) or to its own sibling's branch "
                                  "(sibling, DataLad's default)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Into installed "
                                   "subdatasets too."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per result."),
) -> None:
    """Bring a collaborator's work in: fetch branches and where their content is from
    siblings, and with --how update the current branch (no other branch moves).

    Example: rr update -s origin; rr metrics show -a; rr update -s origin --how merge
    """
    from . import api

    def line(r: Any) -> str:
        return f"{r.state or r.status:<12} {r.path}: {r.message}"

    results = call(api.update, sibling=sibling, how=how.value,
                   how_subds=how_subds.value if how_subds else None, follow=follow.value,
                   recursive=recursive, dataset=dataset)
    failed = call(render_results, results, as_json, line=line)
    if failed:
        raise typer.Exit(1)


@app.command()
def diff(
    paths: List[str] = typer.Argument(None, help="Limit to these paths (default: all)."),
    from_: Optional[str] = typer.Option(None, "-f", "--from", help="The state to compare "
                                        "from (default HEAD)."),
    to: Optional[str] = typer.Option(None, "-t", "--to", help="The state to compare to "
                                     "(default: the working tree, untracked files included)."),
    recursive: bool = typer.Option(False, "-r", "--recursive",
                                   help="Into installed subdatasets too."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per path (with "
                                 "gitshasum/prev_gitshasum and key/prev_key of annexed files)."),
) -> None:
    """Show what differs between two states, per path; annexed files are compared by their
    content key (an unlocked file with its recorded content is unchanged).

    Example: rr diff --from ready4analysis --to HEAD -r
    """
    from . import api

    results = call(api.diff, paths or (), from_=from_, to=to, dataset=dataset,
                   recursive=recursive)
    if call(render_results, results, as_json, line=_state_line):
        raise typer.Exit(1)


@app.command()
def unlock(
    paths: List[str] = typer.Argument(None, help="Files or directories (default: all)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file."),
) -> None:
    """Make annexed files editable without a run; rr save puts them back into the annex.

    Files whose content is not here cannot be unlocked (rr get them first).

    Example: rr unlock data/labels.csv
    """
    from . import api

    results = call(api.unlock, paths or (), dataset=dataset)

    def line(r: Any) -> str:
        return f"unlock({r.status}): {r.path} ({r.type or 'file'})" + \
            (f" [{r.message}]" if r.message else "")

    if render_results(results, as_json, line=line):
        raise typer.Exit(1)


# --- subdatasets ---


@app.command()
def subdatasets(
    paths: List[str] = typer.Argument(None, help="Report the subdatasets at or under these "
                                      "paths (default: all)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Into installed "
                                   "subdatasets too."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per subdataset "
                                 "(DataLad's field names: state, gitshasum, gitmodule_url, "
                                 "...)."),
) -> None:
    """List registered subdatasets: present (installed) or absent, the recorded commit,
    the dataset id and the URL they are installed from.

    Example: rr subdatasets -r
    """
    from . import api

    def line(r: Any) -> str:
        extra = r.extra or {}
        sha = (extra.get("gitshasum") or "-")[:10]
        return f"{r.state:<8} {r.path}  {sha}  {extra.get('id') or '-'}  " \
               f"{extra.get('gitmodule_url') or '-'}"

    failed = call(lambda: render_results(api.subdatasets(paths or (), dataset=dataset,
                                                         recursive=recursive),
                                         as_json, line=line))
    if failed:
        raise typer.Exit(1)


class Reckless(str, Enum):
    kill = "kill"


@app.command()
def remove(
    paths: List[str] = typer.Argument(..., help="Files, directories or subdatasets."),
    force: bool = typer.Option(False, "--force", help="Remove even what exists only here: "
                               "unsaved changes, a subdataset's unpushed commits, the last "
                               "copy of content (dropped too, as rr drop --force)."),
    reckless: Optional[Reckless] = typer.Option(None, "--reckless", help="DataLad's "
                                                "spelling: --reckless kill is --force."),
    message: Optional[str] = typer.Option(None, "-m", "--message", help="Commit message "
                                          "(default: [DATALAD] removed content)."),
    dataset: Optional[str] = typer.Option(None, "-d", "--dataset", help="The dataset."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per path."),
) -> None:
    """Remove files, directories and subdatasets from the dataset, and commit that.

    Content of removed annexed files is dropped when it is safely elsewhere (else kept in the
    local annex); a subdataset is unregistered and deleted only when nothing of it exists
    here alone (unsaved changes, unpushed commits, the last copy of content) unless --force.

    Example: rr remove data/raw old-results.csv
    """
    from . import api

    results = call(api.remove, paths, dataset=dataset, force=force,
                   reckless=reckless.value if reckless else None, message=message)

    def line(r: Any) -> str:
        return f"removed  {r.path}" + (f" ({r.message})" if r.message else "")

    if render_results(results, as_json, line=line):
        raise typer.Exit(1)


def _render_step(result: Any) -> None:
    what = {"ok": "done", "unchanged": "unchanged", "skipped": "skipped"}.get(result.status,
                                                                             result.status)
    new = f" -> {result.new_commit[:8]}" if result.new_commit and result.action != "checkout" \
        else ""
    note = f" ({result.note})" if result.note and result.status != "unchanged" else ""
    took = f" [{result.duration:.1f}s]" if result.action == "run" else ""
    _info(f"rr: [{result.index}/{result.total}] {result.action} {result.commit[:8]} "
          f"{result.subject}: {what}{new}{took}{note}")


def _render_dry_run(result: Any, location: str) -> None:
    """DataLad's --dry-run=basic layout (location is the full path, path lists as lists)."""
    print("Dry run information")
    print(f" location: {location}")
    if result.inputs:
        print(f" expanded inputs:\n  {list(result.inputs)}")
    if result.outputs:
        print(f" expanded outputs:\n  {list(result.outputs)}")
    print(f" command:\n  {result.record['cmd']}")
    if result.command != result.record["cmd"]:
        print(f" expanded command:\n  {result.command}")


class _Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, raised like Ctrl-C."""


_MAIN_PID = os.getpid()


def _raise_terminated(signum: int, _frame: object) -> None:
    if os.getpid() != _MAIN_PID:  # a forked Dask worker: die of the signal, as by default
        import signal

        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise _Terminated(signum)


def _interrupted(_signum: int, _frame: object) -> None:
    """Ctrl-C: KeyboardInterrupt, as Python's own handler; a forked Dask worker (the terminal
    sends SIGINT to the whole process group) leaves it to rr, which cancels the jobs."""
    if os.getpid() == _MAIN_PID:
        raise KeyboardInterrupt


def _only_the_invoked_command(first: list[str]) -> None:
    """Build only the command that was asked for: typer inspects the signature of every
    registered command on each call (about 20 ms for rr's), though one runs.  ``rr --help``,
    options before the command and unknown names keep the whole application."""
    if not first or first[0].startswith("-"):
        return
    name = first[0]
    commands = [c for c in app.registered_commands
                if (c.name or (c.callback.__name__ if c.callback else "").replace("_", "-")
                    ) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) == 1:
        app.registered_commands = commands
        app.registered_groups = groups


def main() -> None:
    """Console entry point.

    SIGTERM and SIGHUP (unless ignored, as under nohup) become an exception like Ctrl-C, so
    that ``finally`` blocks run and the tools rr started are stopped; every interrupt ends
    with "rr: interrupted" and exit code 130.  A commit being made is finished first
    (``lock.deferred_signals``); the user's command gets the signal forwarded (``proc.run_shell``).
    """
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _raise_terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)
    _only_the_invoked_command(sys.argv[1:2])
    try:
        app()
    except KeyboardInterrupt:
        _err("rr: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)


if __name__ == "__main__":  # pragma: no cover
    main()
