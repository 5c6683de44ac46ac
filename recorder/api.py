"""The public Python API of rr.  Every CLI command is a thin twin of a function here.

    >>> from recorder import api
    >>> ds = api.create("analysis")
    >>> api.run("echo hi > hi.txt", dataset="analysis", outputs=["hi.txt"])
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from typing import TYPE_CHECKING, Any

from .dataset import Dataset
from .errors import RecorderError, UsageError
from .results import OnEvent, Result

if TYPE_CHECKING:
    from . import metrics as _metrics
    from . import runs as _runs
    from . import status as _status

PathArg = str | os.PathLike[str] | None


def _changing(ds: Dataset, what: str):
    """The dataset lock for a command that changes the dataset: its changes to the worktree
    and its commit happen under it, so a run without --explicit never takes them."""
    from .lock import dataset_lock

    return dataset_lock(ds.git_dir, what=what)


def find_dataset(dataset: PathArg = None) -> Dataset:
    return Dataset.find(dataset)


def _find(dataset: PathArg) -> Dataset:
    """Dataset.find, with an unusable path (too long, ...) as a one-line error."""
    try:
        return Dataset.find(dataset)
    except OSError as exc:
        raise RecorderError(f"cannot use the dataset path: {exc.strerror or exc}") from None


def create(path: PathArg = None, *, cfg_proc: Sequence[str] = (), force: bool = False,
           annex: bool = True, dataset: PathArg = None,
           on_event: OnEvent | None = None) -> Dataset:
    """Create a dataset (git + git-annex, DataLad layout) and run procedures on it.

    With ``dataset``, ``path`` (relative to the working directory) must lie inside that
    dataset, and the new dataset is registered there as a subdataset and committed.
    ``on_event`` gets an ANNOUNCE of a procedure's command that rr does not ship."""
    from . import create as _create

    superds = _find(dataset) if dataset is not None else None
    if superds is not None:
        path = _create.check_subdataset_target(superds, path)
    if cfg_proc:
        from . import procedures

        procedures.ensure_known(cfg_proc, path)
    ds = _create.create(path, force=force, annex_repo=annex)
    if cfg_proc:
        from . import procedures

        with _changing(ds, "rr create -c"):
            for name in cfg_proc:
                procedures.run_procedure(ds, name if name.startswith("cfg_") else f"cfg_{name}",
                                         record=False, on_event=on_event)
    if superds is not None:
        with _changing(superds, "rr create -d"):
            _create.register_in(superds, ds)
    return ds


def save(paths: Sequence[str] = (), *, dataset: PathArg = None, message: str | None = None,
         message_file: PathArg = None, version_tag: str | None = None,
         updated: bool = False, to_git: bool = False, amend: bool = False) -> Result:
    """Commit the given paths (or all changes); large files go to the annex (``to_git``: all
    into git); ``updated``: only changes of tracked paths."""
    from . import save as _save

    ds = Dataset.find(dataset)
    if message_file is not None:
        if message is not None:
            raise RecorderError("give either a message or a message file, not both")
        message = _read_message_file(ds, message_file)
    return _save.save(ds, list(paths) or None, message=message, version_tag=version_tag,
                      updated=updated, to_git=to_git, amend=amend)


def _read_message_file(ds: Dataset, path: str | os.PathLike[str]) -> str:
    p = Path(path)
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, ds.root / p]
    for c in candidates:
        if c.is_file():
            try:
                return c.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"the message file {path} is not UTF-8 text (byte "
                                 f"{exc.start})", hint="save it as UTF-8") from None
            except OSError as exc:
                raise RecorderError(f"cannot read the message file {path}: "
                                    f"{exc.strerror or exc}") from None
    raise RecorderError(f"message file not found: {path}")


def run(cmd: str | Sequence[str], *, dataset: PathArg = None, message: str | None = None,
        inputs: Sequence[str] = (), outputs: Sequence[str] = (), expand: str | None = None,
        explicit: bool = False, assume_ready: str | None = None, dry_run: bool = False,
        sidecar: bool | None = None, container: str | None = None, gpus: bool = False,
        on_event: OnEvent | None = None, cwd: PathArg = None,
        jobs: int | None = None, scheduler: str | None = None,
        env_record: Sequence[str] = (), log: bool | None = None, cache: bool = True,
        verbose: bool = False) -> Result:
    """Run a command, then save its outputs with a DataLad-compatible run record.

    The command runs in ``cwd`` and relative inputs/outputs are taken from there, even when
    it is outside the dataset (what the command line does with ``-d``, as DataLad).  Without
    ``cwd``: the working directory when it is inside the dataset, else the dataset root.
    ``jobs`` and ``scheduler`` are for arrays (:func:`run_array`): a usage error here.
    ``env_record``: environment variables whose values the record keeps (beside the
    dataset's ``rr.run.env-record`` list); ``log``: keep the command's output in the
    dataset (None: as ``rr.run.log`` says).
    ``cache=False`` (``--no-cache``) executes even when an earlier run with the same key
    could be restored from history (recorder/cache.py); ``verbose``: ``on_event`` also gets
    a NOTE saying why the run-cache missed (``fields["cache"] == "miss"``).  A ``dry_run``
    result says what the run-cache would do: ``cache`` (``cached_from``: the commit it would
    be restored from, or None; ``reasons``: why not).
    ``on_event`` (``results.Event``) gets an ANNOUNCE of the expanded command before it
    starts.  Returns a ``results.Result`` (``commit``, ``record``, ``exit_code``, ``saved``,
    ... by name; ``--json`` is its ``to_dict()``).
    """
    from . import run as _run

    if jobs is not None or scheduler is not None:
        from . import engine  # only then: a plain run does not load the engine

        engine.check_jobs(jobs)
        raise UsageError("--jobs and --scheduler run array jobs: give --param or --array")

    ds = Dataset.find(dataset)
    spec = _run.prepare_spec(ds, cmd, message=message, inputs=inputs, outputs=outputs,
                             expand=expand, explicit=explicit, assume_ready=assume_ready,
                             sidecar=sidecar, cwd=None if cwd is None else Path(cwd),
                             env_record=env_record, log=log)
    if not cache or verbose:
        from dataclasses import replace

        spec = replace(spec, cache=cache, cache_verbose=verbose)
    runtime = None
    if container is not None or gpus:
        from .containers import registry

        call = registry.wrap_spec(ds, spec, container, gpus=gpus)
        spec = _run.with_container(spec, call)
        runtime = call.runtime
    if dry_run:
        return _run.dry_run(ds, spec)
    if runtime in ("docker", "podman"):
        from .containers import docker

        docker.require_engine(runtime)
    return _run.execute(ds, spec, on_event=on_event)


def run_procedure(name: str, args: Sequence[str] = (), *, dataset: PathArg = None,
                  on_event: OnEvent | None = None):
    """Run a procedure (user, system, dataset or shipped) on a dataset."""
    from . import procedures

    return procedures.run_procedure(Dataset.find(dataset), name, args, on_event=on_event)


def discover_procedures(*, dataset: PathArg = None):
    """All procedures rr can find, the first location that has a name wins (user, system,
    extra, dataset, subdatasets, shipped); the ones it shadows follow, marked overridden."""
    from . import procedures

    return procedures.discover(_optional_dataset(dataset), overridden=True)


def procedure_help(name: str, *, dataset: PathArg = None):
    """(procedure, help text) for ``run-procedure --help-proc NAME``."""
    from . import procedures

    return procedures.help_text(_optional_dataset(dataset), name)


def _optional_dataset(dataset: PathArg) -> Dataset | None:
    """The dataset named (or, unnamed, the one here if any): procedures work without one."""
    try:
        return Dataset.find(dataset)
    except RecorderError:
        if dataset is not None:
            raise
        return None


def log(revision_range: str | None = None, *, dataset: PathArg = None, as_frame: bool = True):
    """The run commits of a range (default HEAD), newest first.

    Returns a pandas DataFrame when pandas is installed and ``as_frame`` is true, else a list of
    rows.
    """
    from . import history  # noqa: PLC0415  start-up time

    rows = history.log(_find(dataset), revision_range)
    if as_frame:
        try:
            import pandas as pd  # noqa: PLC0415  heavy
        except ImportError:
            return rows
        return pd.DataFrame([r.to_dict() for r in rows])
    return rows


def log_rows(revision_range: str | None = None, *, dataset: PathArg = None):
    """``log``'s rows one by one as the history is read (an iterator, newest first): what
    ``rr log`` prints, never holding the whole history."""
    from . import history  # noqa: PLC0415  start-up time

    return history.iter_rows(_find(dataset), revision_range)


def show_output(commit: str = "HEAD", *, dataset: PathArg = None) -> tuple[str, bytes]:
    """(path, content) of the log the run at ``commit`` kept (``rr run --log``); its annexed
    content is fetched when it is not here."""
    from . import runlog  # noqa: PLC0415  start-up time

    return runlog.read(_find(dataset), commit)


def containers_add(name: str, *, url: str | None = None, image: str | None = None,
                   call_fmt: str | None = None, extra_input: Sequence[str] = (),
                   update: bool = False, dataset: PathArg = None):
    """Register a container image in the dataset (DataLad-compatible configuration)."""
    from .containers import registry

    ds = Dataset.find(dataset)
    with _changing(ds, "rr containers-add"):
        return registry.add(ds, name, url=url, image=image, call_fmt=call_fmt,
                            extra_inputs=list(extra_input), update=update)


def containers_list(*, dataset: PathArg = None, recursive: bool = False,
                    contains: Sequence[str] = ()):
    """The containers of the dataset; with ``recursive`` also those of its installed
    subdatasets (named ``sub/NAME``), limited by ``contains`` to the subdatasets containing
    one of these paths (relative to the dataset root), as ``datalad containers-list``."""
    from .containers import registry

    return registry.list_all(Dataset.find(dataset), recursive=recursive,
                             contains=list(contains))


def containers_remove(name: str, *, remove_image: bool = False, dataset: PathArg = None):
    from .containers import registry

    ds = Dataset.find(dataset)
    with _changing(ds, "rr containers-remove"):
        return registry.remove(ds, name, remove_image=remove_image)


def containers_exec(image: str, cmd: Sequence[str], *, runtime: str = "docker",
                    name: str | None = None, gpus: bool = False,
                    repo_tag: str | None = None) -> int:
    """Run a command inside a saved image (the call rr writes into container run records)."""
    from .containers import execute

    return execute.exec_in_container(runtime, image, list(cmd), name=name, gpus=gpus,
                                     repo_tag=repo_tag)


def clone(source: str, path: str | None = None, *, dataset: PathArg = None,
          reckless: str | None = None):
    """Clone a dataset; with ``dataset`` register the clone there as a subdataset;
    ``reckless``: DataLad's auto, ephemeral or shared-MODE set-up (``sharing.clone``)."""
    from . import sharing

    return sharing.clone(source, path, None if dataset is None else str(dataset),
                         reckless=reckless)


def get(paths: Sequence[str] = (), *, dataset: PathArg = None, recursive: bool = False,
        on_event: OnEvent | None = None, jobs: int | None = None,
        no_data: bool = False, source: str | None = None,
        recursion_limit: int | str | None = None, reckless: str | None = None) -> list[str]:
    """Fetch annexed content (installing subdatasets on the way; ``no_data``: only install
    them); ``jobs`` transfers at once; ``on_event`` gets a FILE event per file transferred;
    ``source``: only from the sibling of that name; ``recursion_limit``: with ``recursive``,
    that many levels of subdatasets down ("existing": only those installed already);
    ``reckless``: subdatasets installed on the way are set up in that mode (DataLad's auto,
    ephemeral, shared-MODE, as ``clone``)."""
    from . import engine, sharing

    engine.check(jobs)
    return sharing.get(Dataset.find(dataset), list(paths), recursive=recursive, on_event=on_event,
                       jobs=jobs, no_data=no_data, source=source,
                       recursion_limit=recursion_limit, reckless=reckless)


def drop(paths: Sequence[str] = (), *, dataset: PathArg = None, recursive: bool = False,
         force: bool = False, what: str = "filecontent", reckless: str | None = None,
         recursion_limit: int | None = None) -> Result:
    """Drop annexed content; refuses to drop the last known copy unless ``force``.  The
    result's ``dropped``: the number of files dropped; ``uninstalled``: the subdatasets
    uninstalled.  ``what``, ``reckless`` and ``recursion_limit`` as DataLad's
    (``sharing.drop``)."""
    from . import sharing

    ds = Dataset.find(dataset)
    with _changing(ds, "rr drop"):
        return sharing.drop(ds, list(paths), recursive=recursive, force=force, what=what,
                            reckless=reckless, recursion_limit=recursion_limit)


def siblings_add(name: str, url: str, *, data_dir: str | None = None, dataset: PathArg = None):
    from . import sharing

    return sharing.add_sibling(Dataset.find(dataset), name, url, data_dir=data_dir)


def siblings_remove(name: str, *, dataset: PathArg = None):
    """Forget the git sibling ``name`` (nothing in the sibling changes)."""
    from . import sharing

    return sharing.remove_sibling(Dataset.find(dataset), name)


def siblings_list(*, dataset: PathArg = None):
    from . import sharing

    return sharing.siblings(Dataset.find(dataset))


def push(*, to: str | None = None, data: str = "auto", dataset: PathArg = None,
         jobs: int | None = None, recursive: bool = False,
         recursion_limit: int | None = None):
    """Push history (branch, tags, git-annex branch) and annexed content to a sibling;
    ``jobs`` content transfers at once; ``recursive``: installed subdatasets first, each to
    its own sibling of the same name (``recursion_limit``: that many levels down)."""
    from . import engine, sharing

    engine.check(jobs)
    ds = Dataset.find(dataset)
    with _changing(ds, "rr push"):
        return sharing.push(ds, to=to, data=data, jobs=jobs, recursive=recursive,
                            recursion_limit=recursion_limit)


def metrics(files: Sequence[str] = (), *, dataset: PathArg = None, all_tags: bool = False,
            all_branches: bool = False, all_commits: bool = False,
            revisions: Sequence[str] = (), as_frame: bool = True, per_file: bool = False):
    """Metrics at each selected revision, read from git objects: a pandas DataFrame (one row per
    revision, or with ``per_file`` per revision and file) when pandas is installed and
    ``as_frame``, else a list of rows."""
    from . import metrics as _metrics  # noqa: PLC0415  start-up time

    rows = _metrics.show(_find(dataset), list(files), all_tags=all_tags,
                         all_branches=all_branches, all_commits=all_commits,
                         revisions=list(revisions), per_file=per_file)
    if as_frame:
        try:
            return _metrics.to_frame(rows)
        except ImportError:
            return rows
    return rows


def metrics_table(files: Sequence[str] = (), *, dataset: PathArg = None,
                  all_tags: bool = False, all_branches: bool = False, all_commits: bool = False,
                  revisions: Sequence[str] = (), per_file: bool = False) -> "_metrics.Table":
    """``metrics`` as a table (``metrics.Table``: columns and rows), as ``rr metrics show``
    prints it."""
    from . import metrics as _metrics  # noqa: PLC0415  start-up time

    # the rows as the files are read: a table, never a list of rows besides it
    return _metrics.table(_metrics.iter_show(_find(dataset), list(files), all_tags=all_tags,
                                             all_branches=all_branches,
                                             all_commits=all_commits,
                                             revisions=list(revisions), per_file=per_file))


def metrics_diff_table(a: str | None = None, b: str | None = None, *,
                       files: Sequence[str] = (), dataset: PathArg = None) -> "_metrics.Table":
    """``metrics_diff`` as a table (key, old, new, change), as ``rr metrics diff`` prints it."""
    from . import metrics as _metrics  # noqa: PLC0415  start-up time

    return _metrics.table(metrics_diff(a, b, files=files, dataset=dataset))


def metrics_diff(a: str | None = None, b: str | None = None, *, files: Sequence[str] = (),
                 dataset: PathArg = None):
    """Per metric: value at A (default HEAD), at B (default the working tree), and the change."""
    from . import metrics as _metrics  # noqa: PLC0415  start-up time

    return _metrics.diff(_find(dataset), a, b, list(files))


def metrics_add(path: str, *, dataset: PathArg = None) -> str:
    """Register a metrics file (kept in .datalad/config)."""
    from . import metrics as _metrics  # noqa: PLC0415  start-up time

    ds = _find(dataset)
    with _changing(ds, "rr metrics add"):
        return _metrics.add_file(ds, path)


def metrics_plot(key: str, output: str, *, files: Sequence[str] = (), all_tags: bool = False,
                 all_branches: bool = False, all_commits: bool = False,
                 dataset: PathArg = None):
    """Chart one metric across revisions into a .png, .svg or .html file."""
    from . import metrics as _metrics  # noqa: PLC0415  start-up time

    return _metrics.plot(_find(dataset), key, output, files=list(files),
                         all_tags=all_tags, all_branches=all_branches, all_commits=all_commits)


def graph(output: str, revision_range: str | None = None, *, dataset: PathArg = None):
    """Write the provenance graph of the run records (.dot, .svg or .png)."""
    from . import graph as _graph

    return _graph.write_graph(_find(dataset), output, revision_range)


def runs(revision_range: str | None = None, *, dataset: PathArg = None, all: bool = False,
         only_changed: bool = False, sort_by: str | None = None, desc: bool = False,
         filter: Sequence[str] = ()):
    """One row per run commit of a range (default HEAD; every branch with ``all``), newest
    first: commit, subject, branch, tags, date, duration, status, image, then the parameters
    and the metrics as columns; a pandas DataFrame (numbers stay numbers)."""
    from . import runs as _runs

    return _runs.to_frame(runs_table(revision_range, dataset=dataset, all=all,
                                     only_changed=only_changed, sort_by=sort_by, desc=desc,
                                     filter=filter))


def runs_table(revision_range: str | None = None, *, dataset: PathArg = None, all: bool = False,
               only_changed: bool = False, sort_by: str | None = None, desc: bool = False,
               filter: Sequence[str] = ()) -> "_runs.RunsTable":
    """``runs`` as a table (``runs.RunsTable``: columns, rows, the kind of each column), as
    ``rr runs`` prints it; ``filter`` expressions such as ``'accuracy>0.9 and lr=0.1'``."""
    from . import runs as _runs

    if isinstance(filter, str):
        filter = [filter]
    return _runs.runs_table(_find(dataset), revision_range, all_branches=all,
                            only_changed_columns=only_changed, sort_by=sort_by,
                            descending=desc, filters=list(filter))


def report(output: str, revision_range: str | None = None, *, dataset: PathArg = None,
           all: bool = False) -> Path:
    """Write one self-contained HTML report of the runs (table, charts, provenance graph)."""
    from . import report as _report

    return _report.write_report(_find(dataset), output, revision_range, all_branches=all)


def lineage(path: str | os.PathLike[str], *, forward: bool = False, dataset: PathArg = None):
    """Where ``path``'s content at HEAD came from: a ``lineage.Lineage`` with the run
    commits that made it (``steps``, oldest first: command, inputs with their keys, image),
    the data no run made (``sources``) and, with ``forward``, the runs that consumed it."""
    from . import lineage as _lineage  # noqa: PLC0415  start-up time

    return _lineage.lineage(_find(dataset), os.fspath(path), forward=forward)


def lineage_script(path: str | os.PathLike[str], *, dataset: PathArg = None) -> str:
    """A shell script that makes ``path`` again in a clone: its lineage's commands in order,
    each after fetching its inputs."""
    from . import lineage as _lineage  # noqa: PLC0415  start-up time

    ds = _find(dataset)
    return _lineage.script(ds, _lineage.lineage(ds, os.fspath(path)))


def export_ro_crate(output: str | os.PathLike[str], revision_range: str | None = None, *,
                    with_content: bool = False, dataset: PathArg = None) -> Path:
    """Write the run records of ``revision_range`` (default HEAD) as a Workflow Run RO-Crate
    (Process Run Crate profile) into the directory or .zip file ``output``; with
    ``with_content`` the files present here are copied into it.  Returns the path written."""
    from . import rocrate as _rocrate  # noqa: PLC0415  start-up time

    return _rocrate.export(_find(dataset), os.fspath(output), revision_range,
                           with_content=with_content)


def download_url(urls: Sequence[str], *, path: str | None = None, message: str | None = None,
                 archive: bool = False, dataset: PathArg = None):
    """Download into the dataset, the URL recorded as the content's source."""
    from . import download

    ds = Dataset.find(dataset)
    with _changing(ds, "rr download-url"):
        return download.download_url(ds, list(urls), path=path, message=message,
                                     archive=archive)


def rerun(revision: str | None = None, *, dataset: PathArg = None, since: str | None = None,
          onto: str | None = None, branch: str | None = None, message: str | None = None,
          explicit: bool = False, assume_ready: str | None = None, continue_: bool = False,
          on_event: OnEvent | None = None, jobs: int | None = None,
          scheduler: str | None = None, cache: bool = True, verbose: bool = False):
    """Replay run records; returns an iterator of results, one per step of the plan.

    ``revision`` may be a range ``A..B``; ``since=""`` replays all history.  ``on_event``
    gets a STEP event before each step, an ANNOUNCE of each expanded command just before it
    executes, a WARN about a step.
    ``jobs`` > 1 or ``scheduler``: the jobs of an array run in parallel on Dask.
    ``cache=False`` (``--no-cache``): every run executes, none is restored from the
    run-cache; ``verbose``: a NOTE says why each run that executes was not restored.
    """
    from . import engine
    from . import rerun as _rerun

    target = engine.check(jobs, scheduler)
    ds = _find(dataset)
    return _rerun.rerun(ds, revision, since=since, onto=onto, branch=branch, message=message,
                        explicit=explicit, assume_ready=assume_ready, continue_=continue_,
                        on_event=on_event, target=target, cache=cache, verbose=verbose)


def rerun_explain(revision: str | None = None, *, dataset: PathArg = None,
                  since: str | None = None) -> Iterator[Result]:
    """``rr rerun --explain``: for each run record of the plan (as :func:`rerun` would take
    it), whether it would be restored from the run-cache on HEAD now (``cached_from``) or
    what changed since its own key (``changes``: input path with old and new key, image
    digest, declared variable, command text), or why it is not cacheable (``why``).
    Executes and changes nothing."""
    from . import stale as _stale  # noqa: PLC0415  start-up time

    return _stale.explain(_find(dataset), revision, since)


def stale(paths: Sequence[str] = (), *, dataset: PathArg = None) -> Iterator[Result]:
    """``rr status --stale``: outputs on HEAD out of date because a declared input, declared
    code, a file the command names or the container image changed since the run commit that
    wrote them; one ``Result`` per file (``commit``, ``changes``, ``update``: the
    ``rr rerun COMMIT`` that brings it up to date).  ``paths``: relative to the working
    directory."""
    from . import stale as _stale  # noqa: PLC0415  start-up time

    ds = _find(dataset)
    rel = [ds.relpath(Path(p).absolute()) for p in paths]
    return _stale.stale(ds, rel)


def rerun_verify(revision: str | None = None, *, dataset: PathArg = None,
                 since: str | None = None, ignore: Sequence[str] = (),
                 assume_ready: str | None = None, on_event: OnEvent | None = None,
                 jobs: int | None = None, scheduler: str | None = None, notes: bool = True,
                 rtol: float = 0.0, keep: str | None = None):
    """``rr rerun --verify``: re-execute each run record of the plan (``revision``, a range
    ``A..B``, ``since``) in a scratch worktree at its own parent and compare the outcome with
    the record's commit; returns an iterator of results, one per run record (action
    "verify", ``verdict`` identical | differs | failed | skipped, ``files``).  Branches, HEAD,
    the index and the work tree are never touched.  ``ignore``: globs of files left out of
    the verdict.  ``jobs`` > 1 or ``scheduler``: records verified in parallel.  ``notes``:
    once all are verified, each verified record's verdict is noted in refs/notes/rr-verify
    (the only ref a verify moves).  ``rtol``: numbers in JSON/CSV/TSV/YAML outputs within
    this relative tolerance count as identical (said so: file status "within-rtol").
    ``keep``: a directory for the files not identical (``<commit>/<path>.recorded`` and
    ``.new``; '' for .git/rr-verify/<timestamp>/), named by each result's ``kept``."""
    from . import engine
    from . import rerun as _rerun

    target = engine.check(jobs, scheduler)
    ds = _find(dataset)
    return _rerun.verify.verify(ds, revision, since=since, ignore=ignore,
                                assume_ready=assume_ready, target=target, on_event=on_event,
                                notes=notes, rtol=rtol, keep=keep)


def verify_report_md(results: Sequence[Result], *, dataset: PathArg = None,
                     rtol: float = 0.0, ignore: Sequence[str] = ()) -> str:
    """``rr rerun --verify --report-md``: the results of a verify as a Markdown report
    (summary, host and versions, per record its command, verdict, files, diffs, changed
    metric values and environment differences)."""
    from . import rerun as _rerun

    ds = _find(dataset)
    return _rerun.verify.markdown_report(results, _rerun.verify.environment_now(ds),
                                         rtol=rtol, ignore=ignore)


def diff_runs(a: str, b: str, *, dataset: PathArg = None, rtol: float = 0.0):
    """``rr diff-runs A B``: what differs between two run commits (a ``diffruns.RunsDiff``):
    command, parameters, pwd, exit code, declared inputs (keys or blob ids at each commit's
    parent), image digest, declared environment and versions, outputs (keys, short diffs,
    changed metric values; numbers within ``rtol`` count as the same), durations.  A commit
    without a run record, or with a malformed one, is an error naming it."""
    from . import diffruns
    from .errors import UsageError

    if not 0 <= rtol < float("inf"):  # nan too
        raise UsageError(f"--rtol must be a number, 0 or more, not {rtol}")
    return diffruns.diff_runs(_find(dataset), a, b, rtol=rtol)


def verify_totals(results: Sequence[Result]) -> dict[str, int]:
    """rr rerun --verify's summary: the records per verdict."""
    from . import rerun as _rerun

    return _rerun.verify.totals(results)


def replay_totals(results: Sequence[Result]) -> tuple[int, int]:
    """rr rerun's summary of its results: the runs replayed, and those with new results."""
    from . import rerun as _rerun

    return _rerun.replay_totals(results)


def rerun_abort(*, dataset: PathArg = None) -> str:
    """Forget a stopped replay and go back to where it started (the stopped step's changes
    are undone; steps done stay on the branch replayed in place or the new --branch);
    returns a description of where HEAD is now."""
    from . import rerun as _rerun

    return _rerun.abort(_find(dataset))


def rerun_report(revision: str | None = None, *, dataset: PathArg = None,
                 since: str | None = None, onto: str | None = None, branch: str | None = None):
    from . import rerun as _rerun

    ds = _find(dataset)
    return _rerun.report(ds, revision, since=since, onto=onto, branch=branch)


def rerun_script(revision: str | None = None, *, dataset: PathArg = None,
                 since: str | None = None, script_name: str = "-") -> str:
    """``--script``: a shell script that reproduces the range's commands; written to the
    file ``script_name`` (made executable) unless it is ``-``.  Returns the script."""
    from . import rerun as _rerun

    ds = _find(dataset)
    text = _rerun.script(ds, revision, since=since, script_name=script_name)
    if script_name != "-":
        _rerun.write_script(script_name, text)
    return text


# --- status, diff, unlock ---


def status(paths: Sequence[str] = (), *, dataset: PathArg = None, recursive: bool = False,
           annex: bool | str = False, untracked: str = "normal",
           recursion_limit: int | None = None) -> "_status.StatusRecords":
    """What changed in the dataset, one ``Result`` per path (an iterator): states added,
    modified, deleted, untracked (and damaged: annexed content changed through its link);
    with ``annex`` (True, or DataLad's mode "basic", "availability", "all") also each
    annexed file's key, size and whether its content is here (and where, with
    availability/all).
    Paths are relative to the working directory; the records' paths to the dataset.  The
    iterator's ``totals`` (``status.StatusTotals``) count what it yielded: changed paths,
    annexed files present and their sizes.  ``recursion_limit``: with ``recursive``, that many
    levels of subdatasets down."""
    from . import status as _status  # noqa: PLC0415  start-up time

    return _status.StatusRecords(_status.status(_find(dataset), list(paths),
                                                recursive=recursive, annex_info=annex,
                                                untracked=untracked,
                                                recursion_limit=recursion_limit))


def diff(paths: Sequence[str] = (), *, from_: str | None = None, to: str | None = None,
         dataset: PathArg = None, recursive: bool = False, untracked: str = "normal",
         recursion_limit: int | None = None):
    """What differs between two states, one ``Result`` per path (an iterator): ``from_``
    (default HEAD) and ``to`` (default: the working tree, untracked files as ``untracked``
    says: no, normal, all); annexed files compared by key."""
    from . import status as _status  # noqa: PLC0415  start-up time

    return _status.diff(_find(dataset), from_, to, list(paths), recursive=recursive,
                        untracked=untracked, recursion_limit=recursion_limit)


def unlock(paths: Sequence[str] = (), *, dataset: PathArg = None, recursive: bool = False,
           recursion_limit: int | None = None):
    """Make annexed files editable (``git annex unlock``); ``rr save`` annexes them again.
    Returns one ``Result`` per file; absent content is ``impossible``.  ``recursive``: the
    files of the installed subdatasets under the paths too (``recursion_limit`` levels)."""
    from . import unlock as _unlock

    ds = _find(dataset)
    with _changing(ds, "rr unlock"):
        return _unlock.unlock(ds, list(paths), recursive=recursive,
                              recursion_limit=recursion_limit)


# --- update ---


def update(*, sibling: str | None = None, how: str = "fetch", how_subds: str | None = None,
           follow: str = "parentds", recursive: bool = False, dataset: PathArg = None,
           recursion_limit: int | None = None):
    """Fetch from a sibling (all by default), the git-annex branch included, and bring the
    current branch up to date as ``how`` says (fetch, merge, ff-only, reset); returns an
    iterator of ``Result`` records.  The request is checked before anything is fetched."""
    from . import update as _update

    return _update.update(_find(dataset), sibling=sibling, how=how, how_subds=how_subds,
                          follow=follow, recursive=recursive, recursion_limit=recursion_limit)


# --- subdatasets ---


def subdatasets(paths: Sequence[str] = (), *, dataset: PathArg = None, recursive: bool = False,
                fulfilled: bool | None = None, contains: Sequence[str] = (),
                recursion_limit: int | None = None):
    """The registered subdatasets (at or under ``paths``), one ``Result`` each: state present
    or absent, recorded commit (gitshasum), URL (gitmodule_url), dataset id; with
    ``recursive`` also those inside installed ones.  As DataLad's: ``fulfilled`` True/False
    keeps only the installed/absent ones; ``contains`` only those that contain one of these
    paths (or are one).  A generator: nothing is checked until it is iterated."""
    from . import subdatasets as _subdatasets

    ds = _find(dataset)
    within = [ds.relpath(p) for p in contains]
    for res in _subdatasets.iter_subdatasets(ds, list(paths), recursive=recursive,
                                             recursion_limit=recursion_limit):
        if fulfilled is not None and not res.failed and \
                (res.state == "present") != fulfilled:
            continue
        rel = res.path or ""
        if within and not res.failed and not any(
                c == rel or c.startswith(rel + "/") for c in within):
            continue
        yield res


def remove(paths: Sequence[str], *, dataset: PathArg = None, force: bool = False,
           reckless: str | None = None, message: str | None = None):
    """Remove files, directories and subdatasets and commit that; refuses to lose anything
    that exists only here (unsaved changes, unpushed commits of a subdataset, the last copy
    of content) unless ``force`` (or DataLad's ``reckless="kill"``).  A list of ``Result``."""
    from . import remove as _remove

    if reckless not in (None, "kill"):

        raise UsageError(f"--reckless {reckless} is not supported; rr takes --reckless kill "
                         "(the same as --force)")
    ds = _find(dataset)
    with _changing(ds, "rr remove"):
        return _remove.remove(ds, list(paths), force=force or reckless == "kill",
                              message=message)


# --- array jobs ---


def run_array(cmd: str | Sequence[str] = (), *, dataset: PathArg = None,
              message: str | None = None, inputs: Sequence[str] = (),
              outputs: Sequence[str] = (), params: Sequence[str] = (), array: str | None = None,
              expand: str | None = None, explicit: bool = False,
              assume_ready: str | None = None, dry_run: bool = False,
              sidecar: bool | None = None, container: str | None = None, gpus: bool = False,
              jobs: int | None = None, scheduler: str | None = None,
              continue_: bool = False, array_id: str | None = None, cwd: PathArg = None,
              on_event: OnEvent | None = None, env_record: Sequence[str] = (),
              log: bool | None = None, cache: bool = True) -> Iterator[Any]:
    """Run a command once per row of parameters (``params``: ``NAME=V1,V2``, their Cartesian
    product; ``array``: a CSV/TSV table), every row its own run record, committed in row
    order.  ``jobs``/``scheduler`` go to the execution engine (serial without them).
    ``continue_``: run what did not succeed of an unfinished array (``array_id``, or the only
    one) and write its history.  Yields one ``Result`` per job and one for the history.
    Each row is a unit of the run-cache: a row run before is restored, not executed
    (``cache=False``, ``--no-cache``: every row executes).
    ``on_event`` gets an ANNOUNCE of the jobs before they start, then JOB events, and after
    each job what the run-cache said in it (restored from, or why it missed) as NOTE events
    marked ``verbose`` (``fields["cache"] == "job"``, ``index``); a job's result has the same
    lines in ``cache``."""
    from . import array as _array
    from . import engine
    from . import run as _run

    target = engine.check(jobs, scheduler)
    ds = Dataset.find(dataset)
    if continue_:
        if params or array is not None or inputs or outputs or message is not None or dry_run:
            raise UsageError("--continue runs an array as it was started: it takes no "
                             "--param, --array, -i, -o, -m or --dry-run")
        state = _array.resume(ds, array_id)
        return _array.execute(ds, state, target=target, on_event=on_event)
    if not params and array is None:
        raise RecorderError("an array needs --param NAME=V1,V2 or --array TABLE")
    options = {"expand": expand, "explicit": explicit, "assume_ready": assume_ready,
               "sidecar": sidecar, "container": container, "gpus": gpus,
               "env_record": list(env_record), "log": log, "cache": cache}
    planned, relpwd = _array.plan(ds, cmd, message=message, inputs=inputs, outputs=outputs,
                                  params=params, table=array,
                                  cwd=None if cwd is None else Path(cwd), options=options)
    if dry_run:
        return _array.dry_run(ds, planned, relpwd)
    if container is not None or gpus:
        from .containers import docker, registry

        runtime = registry.find(ds, container or None).runtime if container is not None else None
        if runtime in ("docker", "podman"):
            docker.require_engine(runtime)
    state = _array.start(ds, planned, relpwd, cmd_message=message, options=options,
                         command=_run.normalize_command(cmd))
    return _array.execute(ds, state, target=target, on_event=on_event)
