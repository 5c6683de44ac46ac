"""``rr rerun --verify``: does a record still come out the same?

Each run record of the plan is re-executed as a job (``recorder.jobs``: a scratch linked
worktree at the record's own parent, content fetched as ``rr run`` would, the record's
container, pwd, inputs and outputs), and the job's commit is compared with the record's
commit, both made on the same parent, by git tree entries: an annexed file's blob is its
symlink target or pointer file, so the same blob id is the same annex key.  Nothing of the
user's changes: no branch, tag, HEAD, index or work tree file; the scratch worktrees and
their private refs are removed afterwards, also after a failure or an interrupt.

Per file: ``identical``, ``differs``, ``missing`` (the record has it, the re-execution did
not make it), ``extra`` (made now, not in the record), ``ignored`` (``--ignore``).  Per
record (its ``verdict``): ``identical``, ``differs``, ``failed`` (the command exited
otherwise than recorded, or could not run), ``skipped`` (a run record that cannot be
verified this way: a run-merge, a command run outside the dataset, a record that changed a
subdataset).

A differing metrics file (JSON, YAML, CSV, TSV) is described by its changed values
(``recorder.valuediff``); with ``rtol``, one whose every change is a number within the
tolerance is ``within-rtol`` and its record identical.  Beside the outputs, each verified
record's environment is compared with this one (image digest, versions, declared variables:
``environment``).  ``keep``: the files not identical, recorded and new, copied out;
:func:`markdown_report`: the results as a Markdown report.

Each verified record (not a skipped one) gets one JSON line in its commit's note in
``refs/notes/rr-verify`` (beside rr's duration notes; pushed, cloned and updated as they
are): date, host, versions, the image digest, the verdict and the files not identical.  All
of a verify's lines are written at its end with one notes commit (``--no-notes``: none); the
notes ref is the only ref a verify moves.
"""

from __future__ import annotations

import datetime
import difflib
import fnmatch
import json
import os
import platform
import shutil
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import __version__, annex, environment, gitrepo, jobs, runlog, valuediff
from .. import record as records
from ..dataset import Dataset
from ..engine import SERIAL, Target
from ..errors import RecorderError, UsageError
from ..jobs import JobOutcome, JobStatus, JobTask
from ..lock import deferred_signals
from ..results import ERROR, OK, SKIPPED, OnEvent, Result, announce
from .batch import shown_command
from .plan import build_plan
from .replay import signals_interrupt
from .state import Replay, Step
from .steps import replay_spec

IDENTICAL, DIFFERS, MISSING, EXTRA, IGNORED = "identical", "differs", "missing", "extra", \
    "ignored"
FAILED = "failed"
WITHIN_RTOL = "within-rtol"  # a metrics file whose every changed number is within --rtol
VERIFY_KEYS = ("action", "status", "commit", "subject", "verdict")
DIFF_LINES = 8  # of a short unified diff
DIFF_BYTES = 64 * 1024  # larger files get no diff, only their keys / blob ids
METRICS_BYTES = 8 * 1024 * 1024  # metrics files (JSON, CSV, ...) compared by value up to this
_GLOB = set("*?[")


def verify(ds: Dataset, revision: str | None = None, *, since: str | None = None,
           ignore: Sequence[str] = (), assume_ready: str | None = None,
           target: Target = SERIAL, on_event: OnEvent | None = None,
           notes: bool = True, rtol: float = 0.0, keep: str | None = None
           ) -> Iterator[Result]:
    """One result per run record of the plan (commits without a record are left out), in
    the plan's order; ``on_event`` gets an ANNOUNCE of each command before any runs.  With
    ``notes``, once every record is verified, the verdicts are noted in refs/notes/rr-verify
    (one line per verified record; nothing is noted when the verify stops early).
    ``rtol``: numbers in metrics files within this relative tolerance count as identical.
    ``keep``: a directory where the files of a record that are not identical are kept,
    ``<commit>/<path>.recorded`` and ``.new`` ('' for .git/rr-verify/<timestamp>); each
    result that kept a file names its directory in ``kept``."""
    plan = build_plan(ds, revision, since)
    steps = [s for s in plan.steps if s.action == "run"]
    replay = Replay(ds, [], {}, plan.revision, plan.revision, None, None, False, assume_ready,
                    len(steps), on_event=on_event)
    # what each record changed against its parent: one git call for the whole plan
    changes = gitrepo.diff_tree_commits(ds.root, [s.commit for s in steps
                                                  if len(s.parents) == 1])
    todo: list[tuple[int, Step]] = []
    skipped: dict[int, str] = {}
    for k, step in enumerate(steps):
        why = _not_verifiable(ds, step, changes.get(step.commit, []))
        if why:
            skipped[k] = why
        else:
            todo.append((k, step))
    if not 0 <= rtol < float("inf"):  # nan too
        raise UsageError(f"--rtol must be a number, 0 or more, not {rtol}")
    keep_dir = keep_directory(ds, keep)
    return _verify(ds, steps, todo, skipped, replay, list(ignore), target, changes, notes,
                   rtol, keep_dir)


def _not_verifiable(ds: Dataset, step: Step, changed: list[tuple[str, str, str]]) -> str:
    if len(step.parents) != 1:
        return "a run-merge (its command ran on more than one parent); not verified"
    pwd = Path(os.path.normpath(ds.root / (step.record or {}).get("pwd", ".")))
    if not ds.contains(pwd):
        return f"its command ran outside the dataset ({pwd}); not verified"
    if any(mode == "160000" for mode, _blob, _path in changed):
        return "it changed a subdataset, which a scratch worktree does not have; not verified"
    return ""


def _verify(ds: Dataset, steps: list[Step], todo: list[tuple[int, Step]],
            skipped: dict[int, str], replay: Replay, ignore: list[str], target: Target,
            changes: dict[str, list[tuple[str, str, str]]], notes: bool,
            rtol: float = 0.0, keep_dir: Path | None = None) -> Iterator[Result]:
    verify_id = jobs.new_id("verify-")
    wtdir = str(jobs.job_dir(ds, verify_id))
    state: jobs.JobsState = {"id": verify_id, "jobs": [
        {"index": k, "status": JobStatus.PENDING} for k in range(len(todo))]}
    runs: Iterator[tuple[int, JobOutcome | BaseException]] = iter(())
    try:
        with signals_interrupt():  # SIGTERM and SIGHUP too: the worktrees go
            tasks: list[JobTask] = []
            for pos, (_k, step) in enumerate(todo):
                spec = replay_spec(replay, step)
                replay.emit(announce(shown_command(ds, spec)))  # shown before anything runs
                tasks.append(JobTask(str(ds.root), wtdir, step.parents[0], pos,
                                     Path(os.path.relpath(spec.pwd, ds.root)).as_posix(),
                                     cmd=spec.cmd, spec=spec))
            outcomes: dict[int, JobOutcome | BaseException] = {}
            pending = {k: pos for pos, (k, _s) in enumerate(todo)}

            # git-annex's version: for the notes, or for records that keep theirs
            now = environment_now(ds, annex_too=notes or any(
                "git_annex" in valuediff.recorded_env(s.record) for _k, s in todo))

            def result(k: int) -> Result:
                res = _result(ds, steps[k], skipped.get(k),
                              outcomes.get(pending.get(k, -1)), ignore,
                              changes.get(steps[k].commit, []), rtol, now)
                return keep_files(ds, keep_dir, res) if keep_dir is not None else res

            k = 0
            done: list[Result] = []
            ready: dict[int, Result] = {}
            if tasks:
                runs = jobs.run_all(tasks, target)
            for pos, outcome in runs:
                outcomes[pos] = outcome
                # compared as soon as it arrives: no ref needs to keep the job's commit (its
                # objects stay in the shared store; jobs run with gc.auto=0)
                ready[todo[pos][0]] = result(todo[pos][0])
                while k < len(steps) and (k in skipped or k in ready):
                    done.append(ready.pop(k) if k in ready else result(k))
                    yield done[-1]  # in the plan's order, as soon as it is known
                    k += 1
            for k in range(k, len(steps)):  # skipped records after the last job
                done.append(result(k))
                yield done[-1]
            if notes:
                with deferred_signals():  # the notes ref moves once, its temporary ref goes
                    write_notes(ds, steps, done, rtol, now)
    finally:
        close = getattr(runs, "close", None)
        if close is not None:  # left early: the jobs not started are cancelled first
            close()
        jobs.remove(ds, state)


def _result(ds: Dataset, step: Step, skip: str | None,
            outcome: JobOutcome | BaseException | None, ignore: list[str],
            recorded_changes: list[tuple[str, str, str]], rtol: float = 0.0,
            now: dict[str, Any] | None = None) -> Result:
    extra: dict[str, Any] = {"commit": step.commit, "subject": step.subject,
                             "command": (step.record or {}).get("cmd", ""), "environment": []}
    if skip is None and outcome is not None:
        extra.update(_environment(ds, step, outcome, now or {}))
    if skip is not None or outcome is None:
        return Result("verify", None, SKIPPED, message=skip or "not verified",
                      extra={**extra, "verdict": "skipped", "files": []},
                      key_order=VERIFY_KEYS)
    recorded = int((step.record or {}).get("exit", 0) or 0)
    if not isinstance(outcome, JobOutcome):
        text = outcome.message if isinstance(outcome, RecorderError) else \
            f"{type(outcome).__name__}: {outcome}"
        return _failed(extra, (text or "the job failed").splitlines()[0], None)
    if outcome.status == JobStatus.FAILED and outcome.error == "CommandFailedError":
        return _failed(extra, f"command exited with code {outcome.exit_code}, recorded "
                              f"{recorded}", outcome.exit_code)
    if outcome.status == JobStatus.FAILED:
        return _failed(extra, outcome.message.splitlines()[0] if outcome.message else
                       "the re-execution failed", None)
    if outcome.command_exit is not None and outcome.command_exit != recorded:
        return _failed(extra, f"command exited with code {outcome.command_exit}, recorded "
                              f"{recorded}", outcome.command_exit)
    files = compare(ds, step, outcome.commit or step.parents[0], ignore, recorded_changes,
                    rtol)
    bad = [f for f in files if f["status"] not in (IDENTICAL, IGNORED, WITHIN_RTOL)]
    close = [f for f in files if f["status"] == WITHIN_RTOL]
    verdict = DIFFERS if bad else IDENTICAL
    message = f"{len(bad)} file(s) differ" if bad else \
        f"identical within rtol {rtol:g} ({len(close)} file(s))" if close else "identical"
    if extra.get("environment"):
        message += "; " + "; ".join(valuediff.describe_env(c) for c in extra["environment"])
    return Result("verify", None, ERROR if bad else OK, message=message,
                  extra={**extra, "verdict": verdict, "files": files}, key_order=VERIFY_KEYS)


def _failed(extra: dict[str, Any], message: str, code: int | None) -> Result:
    if extra.get("environment"):
        message += "; " + "; ".join(valuediff.describe_env(c) for c in extra["environment"])
    return Result("verify", None, ERROR, message=message,
                  extra={**extra, "verdict": FAILED, "exit": code, "files": []},
                  key_order=VERIFY_KEYS)


# --- the notes ------------------------------------------------------------------------


def write_notes(ds: Dataset, steps: Sequence[Step], results: Sequence[Result],
                rtol: float = 0.0, now: dict[str, Any] | None = None) -> str | None:
    """One line per verified record (skipped ones have none) added to its commit's note in
    refs/notes/rr-verify, all with one notes commit; the notes commit, None without one.
    The image digest noted: the one the re-execution used (a result's ``image``), else the
    recorded one; ``environment``: the differences from the record's environment.  The date
    to the microsecond: two verifications never make the same line (cat_sort_uniq would keep
    only one)."""
    now = now if now is not None else environment_now(ds)
    common = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="microseconds"), "host": socket.gethostname(), "rr": __version__,
        "git_annex": now.get("git_annex"), "python": platform.python_version()}
    lines: dict[str, list[str]] = {}
    for step, res in zip(steps, results):
        extra = res.extra or {}
        if extra.get("verdict") not in (IDENTICAL, DIFFERS, FAILED):
            continue
        line = {**common, "verdict": extra["verdict"],
                "files": [{"path": f["path"], "status": f["status"]}
                          for f in extra.get("files") or [] if f["status"] != IDENTICAL]}
        if any(f["status"] == WITHIN_RTOL for f in line["files"]):
            line["rtol"] = rtol  # "identical" said with the tolerance it took
        digest = extra.get("image") or _image_digest_of(step.record)
        if digest:
            line["image"] = digest
        if extra.get("environment"):
            line["environment"] = extra["environment"]
        lines.setdefault(step.commit, []).append(
            json.dumps(line, sort_keys=True, separators=(",", ":")))
    return gitrepo.append_notes(ds.root, gitrepo.VERIFY_NOTES_REF, lines)


def environment_now(ds: Dataset, annex_too: bool = True) -> dict[str, Any]:
    """The facts of this environment a record's rr.env is compared with (the versions, OS
    and architecture; the declared variables are read per record, ``vars``); git-annex's
    version only ``annex_too``."""
    uname = os.uname()  # as rr run records them (recorder/environment.py)
    facts = {"rr": __version__, "python": sys.version.split()[0],
             "os": f"{uname.sysname} {uname.release}", "arch": uname.machine}
    version = annex_version(ds) if annex_too else None
    if version:
        facts["git_annex"] = version
    return facts


def _environment(ds: Dataset, step: Step, outcome: JobOutcome | BaseException,
                 now: dict[str, Any]) -> dict[str, Any]:
    """``image``: the digest of the image the re-execution used (read from its commit's
    record); ``environment``: what differs from the record's environment (image digest,
    versions, declared variables and their values here)."""
    recorded = valuediff.recorded_env(step.record)
    here = dict(now)
    here["vars"] = {name: os.environ.get(name) for name in recorded.get("vars") or {}}
    out: dict[str, Any] = {}
    if isinstance(outcome, JobOutcome) and outcome.commit and "image" in recorded:
        digest = _image_digest(gitrepo.cat_file_batch(ds.root, [outcome.commit])
                               .get(outcome.commit))
        if digest:
            here["image"] = out["image"] = digest
    out["environment"] = valuediff.env_changes(recorded, here)
    return out


# --- --keep: the outputs that are not identical, both versions -------------------------


def keep_directory(ds: Dataset, keep: str | None) -> Path | None:
    """Where --keep puts files: the directory named (relative to the current directory),
    or .git/rr-verify/<timestamp>/ for ''; None without --keep.  An existing file there is
    an error before anything runs."""
    if keep is None:
        return None
    where = Path(keep).absolute() if keep else \
        ds.git_dir / "rr-verify" / datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    if where.exists() and not where.is_dir():
        raise UsageError(f"--keep {keep}: not a directory")
    return where


def keep_files(ds: Dataset, where: Path, res: Result) -> Result:
    """The files of a verified record that are not identical (nor ignored) written under
    ``where/<commit>/``: ``<path>.recorded`` from the record's commit, ``<path>.new`` from
    the re-execution (an annexed file's content when it is here); the result then names the
    directory in ``kept``."""
    extra = res.extra or {}
    files = [f for f in extra.get("files") or []
             if f["status"] in (DIFFERS, MISSING, EXTRA, WITHIN_RTOL)]
    if not files:
        return res
    base = where / extra["commit"][:12]
    wanted = [(f["path"], suffix, ident) for f in files
              for suffix, ident in ((".recorded", f["old"]), (".new", f["new"]))
              if isinstance(ident, str) and " (mode " not in ident]
    shas = [i for _p, _s, i in wanted if _is_sha(i)]
    keys = [i for _p, _s, i in wanted if not _is_sha(i)]
    blobs = gitrepo.cat_file_batch(ds.root, shas) if shas else {}
    places = annex.content_locations(ds.root, keys) if keys else {}
    for path, suffix, ident in wanted:
        target = base / (path + suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        if ident in places:
            if places[ident]:
                shutil.copyfile(ds.root / places[ident], target)
        else:
            blob = blobs.get(ident)
            if blob is not None:
                target.write_bytes(blob[1])
    return res._replace(extra={**extra, "kept": str(base)})


def _image_digest(obj: tuple[str, bytes] | None) -> str | None:
    """The image digest in the record of a commit object's message (an inline record)."""
    if obj is None:
        return None
    message = obj[1].partition(b"\n\n")[2].decode("utf-8", "replace")
    try:
        parsed = records.parse_message(message)
    except RecorderError:
        return None
    return _image_digest_of(parsed.record if parsed is not None else None)


def _image_digest_of(record: dict[str, Any] | None) -> str | None:
    container = ((record or {}).get("rr") or {}).get("container")
    digest = container.get("digest") if isinstance(container, dict) else None
    return digest if isinstance(digest, str) else None


def annex_version(ds: Dataset) -> str | None:
    """git-annex's version without a process when rr run has kept it
    (``environment.annex_version``); None in a dataset without an annex."""
    return environment.annex_version(ds, keep=False)


def compare(ds: Dataset, step: Step, new: str, ignore: Sequence[str] = (),
            recorded_changes: Sequence[tuple[str, str, str]] | None = None,
            rtol: float = 0.0) -> list[dict[str, Any]]:
    """The files of the record's commit and of ``new`` (both made on the record's parent)
    compared: the declared outputs and every file either commit changed; sidecar records
    (the record directory) and run logs (.rr/logs) are left out.  One dict per file: path,
    status, old, new (annex key or blob id; None when absent), and for a small differing text
    file ``diff``.
    ``recorded_changes``: what the record's commit changed against its parent, (mode, blob,
    path) with mode '000000' for a deletion, when known.  A differing metrics file (JSON,
    CSV, TSV, YAML) gets ``values``, its changed keys (recorder.valuediff); with every change
    a number within ``rtol`` its status is WITHIN_RTOL.

    Both commits share the parent: a path neither changed is the same in both, so one diff
    of the record's tree against the new one says everything but the entries of declared
    outputs neither changed (listed from the record's tree only when there are such)."""
    root = ds.root
    recorded = step.commit
    if recorded_changes is None:
        recorded_changes = gitrepo.diff_tree_commits(root, [recorded])[recorded]
    old_entries: dict[str, tuple[str, str] | None] = {
        p: None if m == "000000" else (m, b) for m, b, p in recorded_changes}
    new_entries = dict(old_entries)
    if new != recorded:
        for d in gitrepo.iter_diff_raw(root, recorded, new):
            old_entries[d.path] = None if d.old_mode == "000000" else (d.old_mode, d.old_sha)
            new_entries[d.path] = None if d.new_mode == "000000" else (d.new_mode, d.new_sha)
    rec = step.record or {}
    relpwd = os.path.normpath(rec.get("pwd", "."))
    literal: list[str] = []
    globs: list[str] = []
    for out in rec.get("outputs") or []:
        full = os.path.normpath(os.path.join(relpwd, str(out)))
        if full == "." or full.startswith(".."):
            continue
        (globs if _GLOB & set(full) else literal).append(Path(full).as_posix())
    unseen = [o for o in literal if o not in old_entries]
    if globs or unseen:  # declared outputs neither commit changed: as the record has them
        for path, entry in gitrepo.tree_entries(root, recorded,
                                                None if globs else unseen).items():
            if path not in old_entries and (
                    any(path == o or path.startswith(o + "/") for o in literal)
                    or any(fnmatch.fnmatchcase(path, g) for g in globs)):
                old_entries[path] = new_entries[path] = entry
    record_dir = ds.record_directory().strip("/")
    files: list[dict[str, Any]] = []
    for path in sorted(old_entries):
        if record_dir and (path == record_dir or path.startswith(record_dir + "/")):
            continue
        if path.startswith(runlog.LOG_DIR + "/"):
            continue  # a run's log (rr run --log) is each run's own, like its sidecar
        old, now = old_entries[path], new_entries[path]
        if old is None and now is None:
            continue
        if ignored(path, ignore):
            status = IGNORED
        elif old is None:
            status = EXTRA
        elif now is None:
            status = MISSING
        else:
            status = IDENTICAL if old == now else DIFFERS
        files.append({"path": path, "status": status, "old": old, "new": now})
    describe_files(ds, files, rtol)
    return files


def ignored(path: str, globs: Sequence[str]) -> bool:
    """Whether ``--ignore`` leaves the file out: a glob matches its dataset-relative path or
    a leading directory of it; a glob without '/' also matches its name in any directory."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, g.rstrip("/")) for g in globs for p in prefixes) or \
        any("/" not in g and fnmatch.fnmatchcase(parts[-1], g) for g in globs)


def describe_files(ds: Dataset, files: list[dict[str, Any]], rtol: float = 0.0, *,
                   texts: bool = True) -> None:
    """Entries (mode, blob) of ``old``/``new`` as the values a person reads: the annex key
    of an annexed file, else the blob id; with ``texts``, for a small differing text file a
    short unified diff, or for a metrics file its changed ``values`` (all within ``rtol``:
    status WITHIN_RTOL)."""
    entries = {e for f in files for e in (f["old"], f["new"]) if e is not None}
    # a symlink's blob is small (a locked annexed file's: its key): read without sizing it
    links = sorted({sha for mode, sha in entries if mode == "120000"})
    blobs = {sha: obj[1] for sha, obj in gitrepo.cat_file_batch(ds.root, links).items()
             if obj is not None}
    blobs.update(gitrepo.small_blobs(ds.root, [sha for mode, sha in entries
                                               if mode != "120000"]))
    keys: dict[str, str] = {}
    for sha, content in blobs.items():
        key = annex.key_of_link(content)
        if key:
            keys[sha] = key
    wanted: list[dict[str, Any]] = []
    for f in files:
        old, new = f["old"], f["new"]
        f["old"] = None if old is None else keys.get(old[1], old[1])
        f["new"] = None if new is None else keys.get(new[1], new[1])
        if f["status"] == DIFFERS and old[0] != new[0] and old[1] == new[1]:
            f["old"], f["new"] = f"{f['old']} (mode {old[0]})", f"{f['new']} (mode {new[0]})"
        elif f["status"] == DIFFERS:
            wanted.append(f)
    if not texts:
        return
    metrics = [f for f in wanted if valuediff.is_metrics(f["path"])]
    contents = _contents(ds, [v for f in wanted if f not in metrics
                              for v in (f["old"], f["new"])])
    if metrics:  # compared by value up to a larger size
        contents.update(_contents(ds, [v for f in metrics for v in (f["old"], f["new"])],
                                  METRICS_BYTES))
    for f in wanted:
        a, b = contents.get(f["old"]), contents.get(f["new"])
        if a is None or b is None:
            continue
        values = valuediff.diff_texts(f["path"], a, b, rtol) if \
            valuediff.is_metrics(f["path"]) else None
        if values is not None:
            f["values"] = valuediff.summary(values)
            if rtol and valuediff.only_within_rtol(values):
                f["status"] = WITHIN_RTOL
            continue  # the values say it; no text diff
        if len(a) <= DIFF_BYTES and len(b) <= DIFF_BYTES:
            f["diff"] = short_diff(a, b)


def _contents(ds: Dataset, ids: list[str], limit: int = DIFF_BYTES) -> dict[str, str]:
    """Text of small blobs and of small annexed files whose content is here (cheap: read
    from the object store), by blob id or key; binary content or more than ``limit`` bytes
    is left out."""
    keys = [i for i in ids if not _is_sha(i)]
    shas = [i for i in ids if _is_sha(i)]
    raw: dict[str, bytes | None] = dict(gitrepo.small_blobs(ds.root, shas, limit=limit))
    small_keys = [k for k in keys if _key_size(k) is not None and
                  (_key_size(k) or 0) <= limit]
    if small_keys:
        raw.update(annex.read_keys(ds.root, small_keys))
    out: dict[str, str] = {}
    for ident, data in raw.items():
        if data is None or b"\0" in data or len(data) > limit:
            continue
        try:
            out[ident] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _key_size(key: str) -> int | None:
    """The size field of an annex key (``BACKEND-sSIZE--HASH``), None when it has none."""
    for field in key.split("--", 1)[0].split("-")[1:]:
        if field.startswith("s") and field[1:].isdigit():
            return int(field[1:])
    return None


def short_diff(old: str, new: str, limit: int = DIFF_LINES) -> str:
    """A unified diff of two texts without its file header, at most ``limit`` lines."""
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1))[2:]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def totals(results: Sequence[Result]) -> dict[str, int]:
    """The verdicts of ``rr rerun --verify``'s results, counted."""
    counts = {IDENTICAL: 0, DIFFERS: 0, FAILED: 0, "skipped": 0}
    for r in results:
        verdict = (r.extra or {}).get("verdict", "")
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


# --- --report-md ------------------------------------------------------------------------


def markdown_report(results: Sequence[Result], now: dict[str, Any] | None = None, *,
                    rtol: float = 0.0, ignore: Sequence[str] = (), host: str | None = None,
                    date: str | None = None) -> str:
    """A Markdown report of a verify a person can attach to a paper or a pull request: the
    summary line, where and with what it was verified, then per record its commit, subject,
    command, verdict, environment differences, a table of its files, the diffs and the
    metrics' changed values."""
    now = now or {}
    counts = totals(results)
    verified = counts[IDENTICAL] + counts[DIFFERS] + counts[FAILED]
    when = date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# rr verification report", "", f"**{summary_line(counts)}**", "",
             f"Verified on {host or socket.gethostname()}, {when}: rr {now.get('rr', __version__)}"
             f", git-annex {now.get('git_annex', 'none')}, Python "
             f"{now.get('python', platform.python_version())}, "
             f"{now.get('os', platform.system())} {now.get('arch', platform.machine())}."]
    options = ([f"numbers within a relative tolerance of {rtol:g} count as identical"]
               if rtol else []) + ([f"ignored: {', '.join(f'`{g}`' for g in ignore)}"]
                                   if ignore else [])
    if options:
        lines += ["", "Options: " + "; ".join(options) + "."]
    if not verified:
        lines += ["", "Nothing could be verified."]
    for r in results:
        lines += ["", *_markdown_record(r)]
    return "\n".join(lines) + "\n"


def summary_line(counts: dict[str, int]) -> str:
    """``verified 3 record(s): 2 identical, 1 differ, 0 failed, 1 skipped``."""
    verified = counts[IDENTICAL] + counts[DIFFERS] + counts[FAILED]
    skipped = f", {counts['skipped']} skipped" if counts.get("skipped") else ""
    return (f"verified {verified} record(s): {counts[IDENTICAL]} identical, "
            f"{counts[DIFFERS]} differ, {counts[FAILED]} failed{skipped}")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_record(r: Result) -> list[str]:
    extra = r.extra or {}
    verdict = extra.get("verdict", "")
    out = [f"## `{extra.get('commit', '')[:10]}` {_cell(extra.get('subject', ''))}", "",
           f"- Command: `{_cell(extra.get('command', ''))}`",
           f"- Verdict: **{verdict}**" + (f" ({_cell(r.message)})" if r.message and
                                          r.message != verdict else "")]
    env = extra.get("environment") or []
    if env:
        out.append("- Environment differences: " +
                   "; ".join(_cell(valuediff.describe_env(c)) for c in env))
    if extra.get("kept"):
        out.append(f"- Kept: `{extra['kept']}`")
    files = [f for f in extra.get("files") or []]
    if files:
        out += ["", "| File | Status | Recorded | Re-executed |", "|---|---|---|---|"]
        out += [f"| `{_cell(f['path'])}` | {f['status']} | {_cell(f['old'])} | "
                f"{_cell(f['new'])} |" for f in files]
    for f in files:
        if f.get("values"):
            out += ["", f"Changed values in `{_cell(f['path'])}`:", "",
                    "| Key | Recorded | Re-executed | |", "|---|---|---|---|"]
            for c in f["values"]:
                if "more" in c:
                    out.append(f"| ... {c['more']} more | | | |")
                    continue
                note = {valuediff.WITHIN_RTOL: "within rtol", valuediff.ADDED: "added",
                        valuediff.REMOVED: "removed"}.get(c["change"], "")
                out.append(f"| `{_cell(c['key'])}` | {_cell(c['old'])} | {_cell(c['new'])}"
                           f" | {note} |")
        elif f.get("diff"):
            out += ["", f"Diff of `{_cell(f['path'])}` (recorded → re-executed):", "",
                    "```diff", f["diff"], "```"]
    return out
