"""Result records and events: what an operation reports, and what it says while it works.

Operations that report on many things (status, diff, subdatasets, update, remove, array jobs)
yield ``Result``s, one per thing looked at or acted on; the CLI renders them in one place
(``recorder.cli.render.render_results``: one line each on a terminal, one JSON object per
line with ``--json``), so a new command gets ``--json`` and piping for free.  Statuses are
DataLad's: ``ok``, ``notneeded``, ``impossible``, ``error`` (``Status``, a ``StrEnum``: each
member is the very string DataLad writes, so JSON output is the same byte for byte).

While it works an operation tells the user what is going on through ``Event``s: what it is
about to execute, warnings, notes, a step or a job that started or ended, a file that was
transferred.  One type for all of them; the CLI renders them (``cli.render.render_event``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class Status(StrEnum):
    """DataLad's result statuses; a member is equal to (and formats as) its string."""

    OK = "ok"
    NOTNEEDED = "notneeded"
    IMPOSSIBLE = "impossible"
    ERROR = "error"


OK = Status.OK
NOTNEEDED = Status.NOTNEEDED
IMPOSSIBLE = Status.IMPOSSIBLE
ERROR = Status.ERROR


class Result(NamedTuple):  # a NamedTuple: cheap to create by the thousand
    action: str                 # the operation: "status", "diff", "update", "remove", ...
    path: str                   # relative to the dataset the command was given ('.' for it)
    status: str = OK            # a Status (or its string): ok | notneeded | impossible | error
    state: str = ""             # what was found: "modified", "untracked", "installed", ...
    type: str = ""              # file | symlink | directory | dataset
    message: str = ""           # one line for people
    extra: dict[str, Any] | None = None   # command-specific fields, kept in --json

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "path": self.path, "status": self.status}
        if self.state:
            out["state"] = self.state
        if self.type:
            out["type"] = self.type
        if self.message:
            out["message"] = self.message
        if self.extra:
            out.update(self.extra)
        return out

    @property
    def failed(self) -> bool:
        return self.status in (IMPOSSIBLE, ERROR)


class EventKind(StrEnum):
    """What an ``Event`` tells."""

    ANNOUNCE = "announce"   # what is about to execute (always shown, before it executes)
    WARN = "warn"           # something the user should know; the operation goes on
    NOTE = "note"           # a remark on the outcome
    STEP = "step"           # one step of several started (fields: index, total, ...)
    JOB = "job"             # a job changed state (fields: index, state)
    FILE = "file"           # a file was transferred (fields: file, ...)
    PROGRESS = "progress"   # anything else that measures progress


@dataclass(frozen=True)
class Event:
    """One thing an operation says while it works: ``text`` for people, ``fields`` for
    renderers that want more (a job's index and state, a step's number)."""

    kind: EventKind
    text: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> Any:
        """A JOB's or STEP's index (None for other events)."""
        return self.fields.get("index")

    @property
    def state(self) -> Any:
        """A JOB's state (an ``engine.JobStatus``: queued, started, done, failed)."""
        return self.fields.get("state")


OnEvent = Callable[[Event], None]
"""The one progress callback: every operation that reports progress takes ``on_event``."""


def announce(command: str, **fields: Any) -> Event:
    """What is about to execute (shown before it executes)."""
    return Event(EventKind.ANNOUNCE, command, fields)


def warn(text: str) -> Event:
    return Event(EventKind.WARN, text)


def job_event(index: int, state: Any, text: str = "") -> Event:
    """A job changed state; ``text``: the worker's address when started, the error when
    failed."""
    return Event(EventKind.JOB, text, {"index": index, "state": state})


def emit(on_event: OnEvent | None, event: Event) -> None:
    """Hand ``event`` to ``on_event`` when there is one."""
    if on_event is not None:
        on_event(event)
