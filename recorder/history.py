"""The run-record log: one row per run commit, read with a single ``git log`` call."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def log(ds: Dataset, revision_range: str | None = None) -> list[LogRow]:
    """Run commits reachable in ``revision_range`` (default HEAD), newest first."""
    if ds.head() is None:
        return []
    rev = revision_range or "HEAD"
    if gitrepo.resolve_commit(ds.root, rev.split("..")[-1] or "HEAD") is None:
        raise UsageError(f"unknown revision: {rev if len(rev) <= 80 else rev[:77] + '...'}")
    try:
        record_dir = ds.record_directory()
    except RecorderError:  # each sidecar record is noted as unreadable below, the log goes on
        record_dir = ds.config.get(cfgkeys.RUN_RECORD_DIRECTORY) or ""
    rows = []
    for e in gitrepo.iter_log(ds.root, [rev], reverse=False, topo=False,
                              notes_ref=gitrepo.NOTES_REF):
        note = None
        try:
            loaded = records.load_record(e.message, ds.root, record_dir)
        except RecordError as exc:  # a bad record is shown as a note; the log goes on
            first = e.message.strip().splitlines()[0] if e.message.strip() else ""
            rows.append(LogRow(e.sha, e.date, e.author, first.removeprefix(records.TAG)[:200],
                               "", None,
                               note=f"malformed run record: {exc.message}"))
            continue
        if loaded is None:
            continue
        message, rec = loaded
        rr_info = rec.get("rr") or {}
        container = rr_info.get("container")
        if isinstance(container, dict):
            container = container.get("name")
        rows.append(LogRow(
            e.sha, e.date, e.author, message.splitlines()[0] if message else "",
            str(rec.get("cmd", "")), container, list(rec.get("inputs") or []),
            list(rec.get("outputs") or []), rec.get("exit"),
            rr_info.get("duration", _note_duration(e.note)),
            list(rec.get("chain") or []), note))
    return rows


def _note_duration(note: str) -> float | None:
    """rr keeps a run's duration in a git note (refs/notes/rr), not in the record."""
    for line in note.splitlines():  # any line: merged notes are sorted, others may come first
        try:
            value = json.loads(line).get("duration")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, (int, float)):
            return float(value)
    return None
