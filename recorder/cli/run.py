"""Running and replaying: run, containers-run (and their arrays), rerun, run-procedure."""

# no `from __future__ import annotations` here: typer reads every command's annotations at
# each call, and string annotations cost it an eval each (~6 ms of `rr --help`)

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

from .params import Argument, Option

from ..errors import EXIT_NOT_REPRODUCED, EXIT_NOT_VERIFIED, RecorderError, UsageError
from ..results import Event, EventKind
from . import options as opt
from . import render
from .base import call, exit_if, usage_error
from .options import DryRun, Which

# recorder.api is imported inside each command: `rr --help` does not load the operations


def run(
    cmd: List[str] = Argument(None, help="The command. Quote it as one string when it "
                                                "uses {inputs}/{outputs}, pipes or redirections."),
    message: Annotated[Optional[str], opt.message(
        "Commit message (default: the command, cut at 40 characters).")] = None,
    inputs: Annotated[List[str], opt.inputs(
        "Input path or glob, fetched before the command; repeatable.")] = [],
    outputs: Annotated[List[str], opt.outputs(
        "Output path or glob, made writable before the command; repeatable.")] = [],
    expand: Annotated[Optional[Which], opt.expand(
        "Store expanded globs instead of the specs.")] = None,
    explicit: Annotated[bool, opt.explicit(
        "Save only the declared outputs; the dataset may be dirty.")] = False,
    assume_ready: opt.AssumeReady = None,
    dry_run: Annotated[Optional[DryRun], opt.dry_run(
        "Show what would run and change nothing: --dry-run (basic) the details, "
        "--dry-run=command only the expanded command.")] = None,
    sidecar: Annotated[bool, opt.sidecar(
        "Store the record in .datalad/runinfo instead of the commit message.")] = None,  # type: ignore[assignment]
    container: Optional[str] = Option(None, "-n", "--container",
                                            help="Run inside this registered container."),
    gpus: Annotated[bool, opt.gpus(
        "Give the container the GPUs (docker/podman --gpus all, apptainer --nv).")] = False,
    params: opt.Params = [],
    array: opt.ArrayTable = None,
    jobs: opt.ArrayJobs = None,
    scheduler: opt.ArrayScheduler = None,
    continue_: opt.ArrayContinue = False,
    env_record: opt.EnvRecord = [],
    log: opt.RunLog = None,
    no_cache: opt.NoCache = False,
    verbose: opt.Verbose = False,
    dataset: opt.Dataset = None,
    as_json: opt.Json = False,
) -> None:
    """Run a command and record it: inputs fetched, outputs saved with a run record.

    Example: rr run -m "Count words" -i 'data/*.txt' -o counts.txt "wc -w {inputs} > {outputs}"

    Example: rr run --log --env-record OMP_NUM_THREADS -o fit.json "python3 code/fit.py"

    Array (one record per row, committed in row order): rr run --param subject=01,02 -J 2
    -i 'raw/{subject}.csv' -o 'out/{subject}.txt' "wc -l {inputs} > {outputs}"

    Run-cache: when history has a run with the same command, inputs, code, image and
    declared variables, its outputs are restored instead ("restored from cache: COMMIT");
    --no-cache executes, -v says why a run was not restored.
    """
    _run(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run, sidecar,
         container, gpus, dataset, as_json, params, array, jobs, scheduler, continue_,
         env_record=env_record, log=log, no_cache=no_cache, verbose=verbose)


def containers_run(
    cmd: List[str] = Argument(None, help="The command to run inside the container."),
    container: Optional[str] = Option(None, "-n", "--container-name", "--container",
                                            help="The registered container (may be left out "
                                                 "when there is only one)."),
    message: opt.Message = None,
    inputs: Annotated[List[str], opt.inputs()] = [],
    outputs: Annotated[List[str], opt.outputs()] = [],
    expand: opt.Expand = None,
    explicit: opt.Explicit = False,
    assume_ready: opt.AssumeReady = None,
    dry_run: Annotated[Optional[DryRun], opt.dry_run(
        "Show what would run (=command: only the expanded command).")] = None,
    sidecar: Annotated[bool, opt.sidecar("Record in a sidecar.")] = None,  # type: ignore[assignment]
    gpus: opt.Gpus = False,
    params: opt.Params = [],
    array: opt.ArrayTable = None,
    jobs: opt.ArrayJobs = None,
    scheduler: opt.ArrayScheduler = None,
    continue_: opt.ArrayContinue = False,
    env_record: opt.EnvRecord = [],
    log: opt.RunLog = None,
    no_cache: opt.NoCache = False,
    verbose: opt.Verbose = False,
    dataset: opt.Dataset = None,
    as_json: opt.Json = False,
) -> None:
    """rr run inside a registered container (same options as rr run).

    Example: rr containers-run -n software -i data/train.csv -o model.joblib "python3 code/train.py"
    """
    _run(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run, sidecar,
         container or "", gpus, dataset, as_json, params, array, jobs, scheduler, continue_,
         env_record=env_record, log=log, no_cache=no_cache, verbose=verbose)


def _run(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run, sidecar,
         container, gpus, dataset, as_json, params=(), array=None, jobs=None,
         scheduler=None, continue_=False, env_record=(), log=None, no_cache=False,
         verbose=False) -> None:
    from .. import api  # noqa: PLC0415  start-up time

    if params or array is not None or continue_:
        _run_array(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run,
                   sidecar, container, gpus, dataset, as_json, params, array, jobs,
                   scheduler, continue_, env_record, log, no_cache, verbose)
        return

    # -J/--scheduler without an array: api.run checks them (one message, exit code 2)
    extra: dict = {"jobs": jobs, "scheduler": scheduler} if jobs is not None or \
        scheduler is not None else {}
    if env_record:
        extra["env_record"] = env_record
    if log is not None:
        extra["log"] = log
    result = call(api.run, cmd or [], dataset=dataset, message=message, inputs=inputs,
                  outputs=outputs, expand=expand.value if expand else None, explicit=explicit,
                  assume_ready=assume_ready.value if assume_ready else None,
                  dry_run=dry_run is not None,
                  sidecar=sidecar, container=container, gpus=gpus,
                  on_event=render.event_handler(as_json, verbose=verbose), cwd=os.getcwd(),
                  cache=not no_cache, verbose=verbose, **extra)
    for note in result.notes:
        render.render_event(Event(EventKind.NOTE, note))
    if as_json:
        render.json_line(result.to_dict())
        return
    if result.status == "dry-run" and dry_run == DryRun.command:
        render.out(result.command)
    elif result.status == "dry-run":
        render.dry_run(result, os.getcwd(), verbose=verbose)
    elif result.status == "notneeded":
        render.info("rr: the command changed nothing; no commit made")
    else:
        commit = result.commit or ""
        render.info(f"rr: saved {len(result.saved)} path(s) in {commit[:8]} with the "
                    f"run record ({result.duration:.1f}s)")


def _run_array(cmd, message, inputs, outputs, expand, explicit, assume_ready, dry_run,
               sidecar, container, gpus, dataset, as_json, params, array, jobs, scheduler,
               continue_, env_record=(), log=None, no_cache=False, verbose=False) -> None:
    from .. import api  # noqa: PLC0415  start-up time

    progress = render.Progress()
    if as_json:
        progress.on = False
    words = list(cmd or [])
    if continue_ and len(words) > 1:
        usage_error("--continue takes at most one array ID (no command)")

    def go() -> int:
        results = api.run_array(
            [] if continue_ else words, dataset=dataset, message=message, inputs=inputs,
            outputs=outputs, params=params, array=array,
            expand=expand.value if expand else None, explicit=explicit,
            assume_ready=assume_ready.value if assume_ready else None,
            dry_run=dry_run is not None, sidecar=sidecar, container=container, gpus=gpus,
            jobs=jobs, scheduler=scheduler, continue_=continue_,
            array_id=words[0] if continue_ and words else None, cwd=os.getcwd(),
            env_record=env_record, log=log,
            cache=not no_cache,
            on_event=render.event_handler(as_json, progress=progress, verbose=verbose))
        return render.render_results(progress.around(results), as_json, line=render.array_line)

    exit_if(call(go))


def rerun(
    revision: Optional[str] = Argument(None, help="Commit to replay (default HEAD), or a "
                                             "range A..B of commits."),
    since: Optional[str] = Option(None, "--since", help="Replay every commit after this "
                                        "one up to REVISION; --since= replays all history."),
    onto: Optional[str] = Option(None, "--onto", help="Replay on top of this commit; "
                                       "--onto= starts at the parent of the first run commit."),
    branch: Optional[str] = Option(None, "--branch", "-b",
                                         help="Replay onto this new branch (and stay on it)."),
    message: Annotated[Optional[str], opt.message(
        "Message for every re-executed commit.")] = None,
    report: bool = Option(False, "--report", help="Print the plan as JSON lines; run "
                                "nothing."),
    script: Optional[str] = Option(None, "--script", help="Write a shell script that "
                                         "reproduces the commands to FILE ('-' for stdout)."),
    explicit: Annotated[bool, opt.explicit(
        "Save only declared outputs; the dataset may be dirty.")] = False,
    assume_ready: opt.AssumeReady = None,
    verify: bool = Option(False, "--verify", help="Check, change nothing: re-execute "
                                "each run record in a scratch worktree at its own parent and "
                                "compare its outputs with the record's commit (exit 3: does "
                                "not reproduce)."),
    ignore: List[str] = Option([], "--ignore", metavar="GLOB", help="With --verify: "
                                     "leave files matching GLOB out of the verdict; "
                                     "repeatable."),
    no_notes: bool = Option(False, "--no-notes", help="With --verify: do not note the "
                                  "verdicts in refs/notes/rr-verify."),
    rtol: Optional[float] = Option(None, "--rtol", metavar="X", help="With --verify: "
                                         "numbers in JSON/CSV/TSV/YAML outputs within this "
                                         "relative tolerance count as identical."),
    keep: Optional[str] = Option(None, "--keep", metavar="DIR", help="With --verify: "
                                       "keep the files that differ, recorded and new, in DIR "
                                       "(--keep= for .git/rr-verify/<timestamp>/)."),
    report_md: Optional[str] = Option(None, "--report-md", metavar="FILE",
                                            help="With --verify: also write a Markdown "
                                            "report to FILE."),
    explain: bool = Option(False, "--explain", help="Change nothing: say per record "
                                 "whether it would be restored from the run-cache (and from "
                                 "which commit), or what changed since its own key."),
    no_cache: opt.NoCache = False,
    verbose: opt.Verbose = False,
    continue_: bool = Option(False, "--continue", help="Resume a replay that stopped."),
    abort: bool = Option(False, "--abort", help="Drop a stopped replay: undo the "
                               "stopped step's changes and go back to where it started."),
    jobs: Annotated[Optional[int], opt.jobs(
        "Replay the jobs of an array (rr run --param/--array) this many at once on a local "
        "Dask cluster; the rest in order, with the same result as --jobs 1.")] = None,
    scheduler: Annotated[Optional[str], opt.scheduler(
        "Replay array jobs on this Dask scheduler (tcp://HOST:PORT) or batch system (slurm, "
        "pbs, sge, htcondor, ...).")] = None,
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("Print one JSON result per step.")] = False,
) -> None:
    """Replay recorded runs: one commit, a range, or all history; in place or on a branch.

    Example: rr rerun --branch randomforest -m "Recompute" ready4analysis..SGD-100

    Example: rr rerun --jobs 4 --since=raw-data  (an array's jobs 4 at a time)

    Example: rr rerun --verify --since=raw-data  (does each record still come out the same?)

    Example: rr rerun --explain --since=  (which records the run-cache would restore, and why
    not the others)
    """
    from .. import api  # noqa: PLC0415  start-up time

    if verify:
        _verify(revision, since, ignore, no_notes, rtol=rtol, keep=keep, report_md=report_md,
                onto=onto, branch=branch, message=message,
                report=report, script=script, explicit=explicit, continue_=continue_,
                abort=abort, assume_ready=assume_ready.value if assume_ready else None,
                jobs=jobs, scheduler=scheduler, dataset=dataset, as_json=as_json)
        return
    if explain:
        _explain(revision, since, onto=onto, branch=branch, message=message, report=report,
                 script=script, explicit=explicit, continue_=continue_, abort=abort,
                 assume_ready=assume_ready, jobs=jobs, scheduler=scheduler,
                 no_cache=no_cache, ignore=ignore, no_notes=no_notes, dataset=dataset,
                 as_json=as_json)
        return
    if ignore:
        usage_error("--ignore goes with --verify")
    for flag, given in (("--no-notes", no_notes), ("--rtol", rtol is not None),
                        ("--keep", keep is not None), ("--report-md", report_md is not None)):
        if given:
            usage_error(f"{flag} goes with --verify")

    if report:
        # printed as the history is read: the plan's errors come before the first line
        call(lambda: render.json_lines(api.rerun_report(revision, dataset=dataset, since=since,
                                                        onto=onto, branch=branch)))
        return
    if script is not None:
        text = call(api.rerun_script, revision, dataset=dataset, since=since,
                    script_name=script)
        if script == "-":
            sys.stdout.write(text)
        else:
            render.info(f"rr: script written to {script}")
        return
    if abort:
        where = call(api.rerun_abort, dataset=dataset)
        render.info(f"rr: stopped replay dropped; {where}")
        return
    # what a record makes rr execute is always shown first (on stderr, also with --json)
    on_event = render.event_handler(as_json, announce_json=True, steps=True, verbose=verbose)

    def replay() -> list:
        out = []
        for result in api.rerun(revision, dataset=dataset, since=since, onto=onto,
                                branch=branch, message=message, explicit=explicit,
                                assume_ready=assume_ready.value if assume_ready else None,
                                continue_=continue_, on_event=on_event, jobs=jobs,
                                scheduler=scheduler, cache=not no_cache,
                                verbose=verbose):
            out.append(result)
            if as_json:
                render.json_line(result.to_dict())
            else:
                render.step(result)
        return out

    results = call(replay)
    if not as_json:
        ran, changed = api.replay_totals(results)
        render.info(f"rr: replayed {ran} run(s), {changed} with new results, "
                    f"{ran - changed} unchanged")


def _explain(revision: Optional[str], since: Optional[str], *, dataset: Optional[str],
             as_json: bool, **others: Any) -> None:
    """rr rerun --explain: one line (or JSON object) per run record of the plan."""
    from .. import api  # noqa: PLC0415  start-up time

    given = [name for name, value in others.items() if value not in (None, False, [])]
    if given:
        option = given[0].rstrip("_").replace("_", "-")
        usage_error(f"--explain changes nothing and takes no --{option}")

    def line(r: Any) -> str:
        return f"{r.commit[:7]} {r.subject[:50]!r}: {r.message}"

    exit_if(call(lambda: render.render_results(
        api.rerun_explain(revision, dataset=dataset, since=since), as_json, line=line)))


def _verify(revision: Optional[str], since: Optional[str], ignore: List[str], no_notes: bool,
            *, rtol: Optional[float], keep: Optional[str], report_md: Optional[str],
            assume_ready: Optional[str], jobs: Optional[int], scheduler: Optional[str],
            dataset: Optional[str], as_json: bool, **others: Any) -> None:
    """rr rerun --verify: one block (or JSON object) per record, a summary; exit 0 only when
    every verified record is identical (within --rtol), EXIT_NOT_REPRODUCED when one is not,
    EXIT_NOT_VERIFIED when no record could be verified (all skipped, or none)."""
    from .. import api  # noqa: PLC0415  start-up time

    given = [name for name, value in others.items() if value not in (None, False)]
    if given:
        option = given[0].rstrip("_").replace("_", "-")
        usage_error(f"--verify changes nothing and takes no --{option}")
    on_event = render.event_handler(as_json, announce_json=True)

    def check() -> list:
        out = []
        # closed on the way out (an interrupt): its scratch worktrees are removed then
        with contextlib.closing(api.rerun_verify(
                revision, dataset=dataset, since=since, ignore=ignore, jobs=jobs,
                assume_ready=assume_ready, on_event=on_event, scheduler=scheduler,
                notes=not no_notes, rtol=rtol or 0.0, keep=keep)) as results:
            for result in results:
                out.append(result)
                if as_json:
                    render.json_line(result.to_dict())
                else:
                    render.verified(result)
        return out

    results = call(check)
    counts = api.verify_totals(results)
    verified = counts["identical"] + counts["differs"] + counts["failed"]
    if report_md is not None:
        text = call(api.verify_report_md, results, dataset=dataset, rtol=rtol or 0.0,
                    ignore=ignore)
        call(_write_text, report_md, text)
        render.info(f"rr: Markdown report written to {report_md}")
    kept = sorted({str(os.path.dirname(r.extra["kept"])) for r in results
                   if (r.extra or {}).get("kept")})
    for where in kept:
        render.info(f"rr: the files that differ are kept in {where}")
    if not as_json:
        render.out(render.verify_summary(counts))
    if counts["differs"] or counts["failed"]:
        raise SystemExit(EXIT_NOT_REPRODUCED)
    if not verified:
        render.err("rr: nothing was verified" + (
            f" ({counts['skipped']} record(s) skipped)" if counts["skipped"] else
            " (no run record in the range)"))
        raise SystemExit(EXIT_NOT_VERIFIED)


def _write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RecorderError(f"cannot write {path}: {exc.strerror or exc}") from exc


def run_procedure(
    name: Optional[str] = Argument(None, help="The procedure (e.g. cfg_yoda)."),
    args: List[str] = Argument(None, help="Arguments passed to the procedure."),
    discover: bool = Option(False, "--discover", help="List the procedures rr finds."),
    help_proc: bool = Option(False, "--help-proc",
                                   help="Show the help of procedure NAME "
                                        "(datalad.procedures.NAME.help)."),
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("Print results as JSON.")] = False,
) -> None:
    """Run a dataset procedure, or list them with --discover.

    Example: rr run-procedure cfg_text2git
    """
    from .. import api  # noqa: PLC0415  start-up time

    if help_proc:
        if not name:
            call(_raise_usage, "--help-proc needs a procedure name")
        proc_, text = call(api.procedure_help, name, dataset=dataset)
        if as_json:
            render.json_line({"action": "procedure_help", "status": "ok", **proc_.to_dict()})
        else:
            render.out(f"{proc_.name} ({proc_.path})\n{text}")
        return

    if discover:
        for p in call(api.discover_procedures, dataset=dataset):
            if as_json:
                render.json_line(p.to_dict())
            else:
                helptext = f"  {p.help.splitlines()[0]}" if p.help else ""
                mark = f"[overridden by {p.overridden_by}] " if p.overridden_by else ""
                render.out(f"{mark}{p.name} ({p.source}: {p.path}){helptext}")
        return
    if not name:
        call(_raise_usage, "give a procedure name, or --discover")
    result = call(api.run_procedure, name, args or (), dataset=dataset,
                  on_event=render.event_handler(as_json))
    if as_json:
        render.json_line(result.to_dict())
    else:
        render.info(f"rr: procedure {name} done ({len(result.commits)} commit(s))")


def _raise_usage(message: str) -> None:
    raise UsageError(message)
