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
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import __version__, annex, gitrepo, jobs, runlog
from .. import record as records
from ..dataset import Dataset
from ..engine import SERIAL, Target
from ..errors import RecorderError
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
VERIFY_KEYS = ("action", "status", "commit", "subject", "verdict")
DIFF_LINES = 8  # of a short unified diff
DIFF_BYTES = 64 * 1024  # larger files get no diff, only their keys / blob ids
_GLOB = set("*?[")


def verify(ds: Dataset, revision: str | None = None, *, since: str | None = None,
           ignore: Sequence[str] = (), assume_ready: str | None = None,
           target: Target = SERIAL, on_event: OnEvent | None = None,
           notes: bool = True) -> Iterator[Result]:
    """One result per run record of the plan (commits without a record are left out), in
    the plan's order; ``on_event`` gets an ANNOUNCE of each command before any runs.  With
    ``notes``, once every record is verified, the verdicts are noted in refs/notes/rr-verify
    (one line per verified record; nothing is noted when the verify stops early)."""
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
    return _verify(ds, steps, todo, skipped, replay, list(ignore), target, changes, notes)


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
            changes: dict[str, list[tuple[str, str, str]]], notes: bool) -> Iterator[Result]:
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

            def result(k: int) -> Result:
                return _result(ds, steps[k], skipped.get(k),
                               outcomes.get(pending.get(k, -1)), ignore,
                               [p for _m, _b, p in changes.get(steps[k].commit, [])])

            k = 0
            done: list[Result] = []
            made: dict[str, str] = {}  # record's commit -> the re-execution's commit
            if tasks:
                runs = jobs.run_all(tasks, target)
            for pos, outcome in runs:
                outcomes[pos] = outcome
                if isinstance(outcome, JobOutcome) and outcome.commit:
                    jobs.keep(ds, verify_id, pos, outcome.commit)  # reachable until compared
                    made[todo[pos][1].commit] = outcome.commit
                while k < len(steps) and (k in skipped or pending[k] in outcomes):
                    done.append(result(k))
                    yield done[-1]  # in the plan's order, as soon as it is known
                    k += 1
            for k in range(k, len(steps)):  # skipped records after the last job
                done.append(result(k))
                yield done[-1]
            if notes:
                with deferred_signals():  # the notes ref moves once, its temporary ref goes
                    write_notes(ds, steps, done, made)
    finally:
        close = getattr(runs, "close", None)
        if close is not None:  # left early: the jobs not started are cancelled first
            close()
        jobs.remove(ds, state)


def _result(ds: Dataset, step: Step, skip: str | None,
            outcome: JobOutcome | BaseException | None, ignore: list[str],
            recorded_changes: list[str]) -> Result:
    extra: dict[str, Any] = {"commit": step.commit, "subject": step.subject}
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
    files = compare(ds, step, outcome.commit or step.parents[0], ignore, recorded_changes)
    bad = [f for f in files if f["status"] not in (IDENTICAL, IGNORED)]
    verdict = DIFFERS if bad else IDENTICAL
    message = f"{len(bad)} file(s) differ" if bad else "identical"
    return Result("verify", None, ERROR if bad else OK, message=message,
                  extra={**extra, "verdict": verdict, "files": files}, key_order=VERIFY_KEYS)


def _failed(extra: dict[str, Any], message: str, code: int | None) -> Result:
    return Result("verify", None, ERROR, message=message,
                  extra={**extra, "verdict": FAILED, "exit": code, "files": []},
                  key_order=VERIFY_KEYS)


# --- the notes ------------------------------------------------------------------------


def write_notes(ds: Dataset, steps: Sequence[Step], results: Sequence[Result],
                made: dict[str, str]) -> str | None:
    """One line per verified record (skipped ones have none) added to its commit's note in
    refs/notes/rr-verify, all with one notes commit; the notes commit, None without one.
    ``made``: the re-execution's commit of a record, whose record names the image digest
    used now (else the recorded one is noted).  The date to the microsecond: two
    verifications never make the same line (cat_sort_uniq would keep only one)."""
    common = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="microseconds"), "host": socket.gethostname(), "rr": __version__,
        "git_annex": annex_version(ds), "python": platform.python_version()}
    texts = gitrepo.cat_file_batch(ds.root, sorted(set(made.values())))
    lines: dict[str, list[str]] = {}
    for step, res in zip(steps, results):
        extra = res.extra or {}
        if extra.get("verdict") not in (IDENTICAL, DIFFERS, FAILED):
            continue
        line = {**common, "verdict": extra["verdict"],
                "files": [{"path": f["path"], "status": f["status"]}
                          for f in extra.get("files") or [] if f["status"] != IDENTICAL]}
        digest = _image_digest(texts.get(made.get(step.commit, ""))) or \
            _image_digest_of(step.record)
        if digest:
            line["image"] = digest
        lines.setdefault(step.commit, []).append(
            json.dumps(line, sort_keys=True, separators=(",", ":")))
    return gitrepo.append_notes(ds.root, gitrepo.VERIFY_NOTES_REF, lines)


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
    """git-annex's version (None in a dataset without an annex, or without git-annex)."""
    if not ds.is_annex:
        return None
    try:
        return annex.version(ds.root)
    except RecorderError:
        return None


# --- the comparison ---------------------------------------------------------------------


def compare(ds: Dataset, step: Step, new: str, ignore: Sequence[str] = (),
            recorded_changes: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The files of the record's commit and of ``new`` (both made on the record's parent)
    compared: the declared outputs and every file either commit changed; sidecar records
    (the record directory) and run logs (.rr/logs) are left out.  One dict per file: path,
    status, old, new (annex key or blob id; None when absent), and for a small differing text
    file ``diff``.
    ``recorded_changes``: the paths the record's commit changed, when known."""
    root = ds.root
    parent, recorded = step.parents[0], step.commit
    paths = set(recorded_changes) if recorded_changes is not None else \
        {p for _l, p in gitrepo.changed_files(root, parent, recorded)}
    if new != parent:
        paths |= {p for _l, p in gitrepo.changed_files(root, parent, new)}
    rec = step.record or {}
    relpwd = os.path.normpath(rec.get("pwd", "."))
    literal: list[str] = []
    globs: list[str] = []
    for out in rec.get("outputs") or []:
        full = os.path.normpath(os.path.join(relpwd, str(out)))
        if full == "." or full.startswith(".."):
            continue
        (globs if _GLOB & set(full) else literal).append(Path(full).as_posix())
    old_entries = gitrepo.tree_entries(root, recorded, None if globs else sorted(paths) + literal)
    new_entries = gitrepo.tree_entries(root, new, None if globs else sorted(paths) + literal)
    for entries in (old_entries, new_entries):
        paths |= {p for p in entries if any(p == o or p.startswith(o + "/") for o in literal)
                  or any(fnmatch.fnmatchcase(p, g) for g in globs)}
    record_dir = ds.record_directory().strip("/")
    files: list[dict[str, Any]] = []
    for path in sorted(paths):
        if record_dir and (path == record_dir or path.startswith(record_dir + "/")):
            continue
        if path.startswith(runlog.LOG_DIR + "/"):
            continue  # a run's log (rr run --log) is each run's own, like its sidecar
        old, now = old_entries.get(path), new_entries.get(path)
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
    _describe(ds, files)
    return files


def ignored(path: str, globs: Sequence[str]) -> bool:
    """Whether ``--ignore`` leaves the file out: a glob matches its dataset-relative path or
    a leading directory of it; a glob without '/' also matches its name in any directory."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, g.rstrip("/")) for g in globs for p in prefixes) or \
        any("/" not in g and fnmatch.fnmatchcase(parts[-1], g) for g in globs)


def _describe(ds: Dataset, files: list[dict[str, Any]]) -> None:
    """Entries (mode, blob) as the values a person reads: the annex key of an annexed file,
    else the blob id; a short unified diff for a small differing text file."""
    blobs = gitrepo.small_blobs(ds.root, [e[1] for f in files for e in (f["old"], f["new"])
                                          if e is not None])
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
    texts = _contents(ds, [v for f in wanted for v in (f["old"], f["new"])])
    for f in wanted:
        a, b = texts.get(f["old"]), texts.get(f["new"])
        if a is not None and b is not None:
            f["diff"] = short_diff(a, b)


def _contents(ds: Dataset, ids: list[str]) -> dict[str, str]:
    """Text of small blobs and of small annexed files whose content is here (cheap: read
    from the object store), by blob id or key; binary or large content is left out."""
    keys = [i for i in ids if not _is_sha(i)]
    shas = [i for i in ids if _is_sha(i)]
    raw: dict[str, bytes | None] = dict(gitrepo.small_blobs(ds.root, shas, limit=DIFF_BYTES))
    small_keys = [k for k in keys if _key_size(k) is not None and
                  (_key_size(k) or 0) <= DIFF_BYTES]
    if small_keys:
        raw.update(annex.read_keys(ds.root, small_keys))
    out: dict[str, str] = {}
    for ident, data in raw.items():
        if data is None or b"\0" in data or len(data) > DIFF_BYTES:
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
