"""The run-record log: one row per run commit, read with a single ``git log`` call."""

from __future__ import annotations

import json
import math
from collections.abc import Generator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import config as cfgkeys
from . import gitrepo
from . import record as records
from .dataset import Dataset
from .errors import RecorderError, RecordError, UsageError


@dataclass
class LogRow:
    commit: str
    date: str
    author: str
    message: str
    command: str
    container: str | None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    exit: int | None = None
    duration: float | None = None
    chain: list[str] = field(default_factory=list)
    note: str | None = None
    verifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verified(self) -> str | None:
        """The verifications in a few words: the newest verdict decides ("verified
        identical", "differs (1 file)", "failed to verify"), then how many and on how many
        hosts when more than one ("verified identical ×2 (2 hosts)"); None when never
        verified."""
        return verification_summary(self.verifications)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def json_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without its copies (what ``rr log --json`` writes: the same keys
        and values, several times faster)."""
        return {name: getattr(self, name) for name in _LOG_FIELDS}


_LOG_FIELDS = tuple(f.name for f in fields(LogRow))


def log(ds: Dataset, revision_range: str | None = None) -> list[LogRow]:
    """Run commits reachable in ``revision_range`` (default HEAD), newest first."""
    return list(iter_rows(ds, revision_range))


def iter_rows(ds: Dataset, revision_range: str | None = None, *,
              reverse: bool = False) -> Generator[LogRow, None, None]:
    """:func:`log`'s rows one by one, as the history is read (with ``reverse`` oldest
    first): the history is never held whole."""
    if ds.head() is None:
        return
    rev = revision_range or "HEAD"
    # HEAD is a commit (read above, without a process): checked only should git log fail
    _check_revisions(ds, rev, skip_head=True)
    try:
        record_dir = ds.record_directory()
    except RecorderError:  # each sidecar record is noted as unreadable below, the log goes on
        record_dir = ds.config.get(cfgkeys.RUN_RECORD_DIRECTORY) or ""
    # the durations and the verdicts of rr rerun --verify: both notes refs in the one stream
    entries = gitrepo.read_log(ds.root, [rev], reverse=reverse, notes_refs=gitrepo.NOTES_REFS)
    while True:
        try:
            e = next(entries)
        except StopIteration:
            return
        except RecorderError:
            _check_revisions(ds, rev, skip_head=False)  # an unknown HEAD says so, as before
            raise
        row = _row(e, ds, record_dir)
        if row is not None:
            yield row


def _row(e: gitrepo.LogEntry, ds: Dataset, record_dir: str) -> LogRow | None:
    """The row of one commit: None for a commit without a run record."""
    try:
        loaded = records.load_record(e.message, ds.root, record_dir)
    except RecordError as exc:  # a bad record is shown as a note; the log goes on
        first = e.message.strip().splitlines()[0] if e.message.strip() else ""
        return LogRow(e.sha, e.date, e.author, first.removeprefix(records.TAG)[:200], "", None,
                      note=f"malformed run record: {exc.message}")
    if loaded is None:
        return None
    message, rec = loaded
    rr_info = rec.get("rr") or {}
    container = rr_info.get("container")
    if isinstance(container, dict):
        container = container.get("name")
    note = e.note
    noted, verifications = _note_facts(note) if note else (None, [])
    duration = rr_info["duration"] if "duration" in rr_info else noted
    # the record was parsed for this row alone: its lists are the row's, not copies
    return LogRow(
        e.sha, e.date, e.author, message.splitlines()[0] if message else "",
        str(rec.get("cmd", "")), container, rec.get("inputs") or [],
        rec.get("outputs") or [], rec.get("exit"), duration,
        rec.get("chain") or [], None, verifications)


def _check_revisions(ds: Dataset, rev: str, *, skip_head: bool) -> None:
    """UsageError naming an end of ``rev`` (a revision or a range) that is no commit."""
    for end in dict.fromkeys(rev.replace("...", "..").split("..")):  # both ends of a range
        if skip_head and end in ("", "HEAD"):
            continue
        if gitrepo.resolve_commit(ds.root, end or "HEAD") is None:
            shown = end if len(end) <= 80 else end[:77] + "..."
            raise UsageError(f"unknown revision: {shown}")


def _note_verifications(note: str) -> list[dict[str, Any]]:
    """The verdicts of rr rerun --verify noted on a commit (refs/notes/rr-verify, read with
    the duration notes: its lines are the JSON objects with a ``verdict``), oldest first."""
    found = []
    for line in note.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("verdict"), str):
            found.append(value)
    return sorted(found, key=lambda v: str(v.get("date", "")))


def _note_facts(note: str) -> tuple[float | None, list[dict[str, Any]]]:
    """(:func:`_note_duration`, :func:`_note_verifications`) of a note, each line read once
    (a run's duration note is on every run commit)."""
    duration = None
    found = []
    for line in note.splitlines():
        try:
            value = records.loads(line)
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        if duration is None:
            took = value.get("duration")
            if isinstance(took, (int, float)) and not isinstance(took, bool) \
                    and math.isfinite(took) and took >= 0:
                duration = float(took)
        if isinstance(value.get("verdict"), str):
            found.append(value)
    return duration, sorted(found, key=lambda v: str(v.get("date", ""))) if found else found


def verification_summary(verifications: list[dict[str, Any]]) -> str | None:
    """See LogRow.verified."""
    if not verifications:
        return None
    newest = verifications[-1]
    verdict = newest["verdict"]
    if verdict == "identical":
        text = "verified identical"
    elif verdict == "differs":
        n = sum(1 for f in newest.get("files") or [] if isinstance(f, dict)
                and f.get("status") in ("differs", "missing", "extra"))
        text = f"differs ({n} file{'' if n == 1 else 's'})"
    elif verdict == "failed":
        text = "failed to verify"
    else:
        text = f"verified: {verdict}"
    if len(verifications) > 1:
        hosts = len({str(v.get("host")) for v in verifications})
        text += f" ×{len(verifications)} ({hosts} host{'' if hosts == 1 else 's'})"
    return text


def _note_duration(note: str) -> float | None:
    """rr keeps a run's duration in a git note (refs/notes/rr), not in the record."""
    for line in note.splitlines():  # any line: merged notes are sorted, others may come first
        try:
            value = json.loads(line).get("duration")  # a verdict line has none
        except (ValueError, AttributeError):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) and value >= 0:
            return float(value)  # a sibling's note may say 1e999 or NaN: not a duration
    return None
