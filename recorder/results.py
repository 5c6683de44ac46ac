"""Result records and events: what an operation reports, and what it says while it works.

Operations that report on many things (status, diff, subdatasets, update, remove, array jobs)
yield ``Result``s, one per thing looked at or acted on; the CLI renders them in one place
(``recorder.cli.render.render_results``: one line each on a terminal, one JSON object per
line with ``--json``), so a new command gets ``--json`` and piping for free.  Commands with
one outcome (run, save, push, clone, ...) return one ``Result``.  Statuses are DataLad's:
``ok``, ``notneeded``, ``impossible``, ``error`` (``Status``, a ``StrEnum``: each member is
the very string DataLad writes, so JSON output is the same byte for byte), and three of rr's
own that refine them (``dry-run``, ``unchanged``, ``skipped``).

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
    """A result's status; a member is equal to (and formats as) its string.

    The first four are DataLad's.  The last three are rr's refinements of them, kept because
    rr's JSON has always written them: ``DRY_RUN`` (a run shown, not executed: ok),
    ``UNCHANGED`` (a replayed run whose outputs are the recorded ones: notneeded),
    ``SKIPPED`` (a replay step with nothing to do: notneeded).  ``datalad`` maps each to
    DataLad's four."""

    OK = "ok"
    NOTNEEDED = "notneeded"
    IMPOSSIBLE = "impossible"
    ERROR = "error"
    DRY_RUN = "dry-run"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"

    @property
    def datalad(self) -> Status:
        """The DataLad status this one refines (itself for DataLad's four)."""
        return _DATALAD.get(self, self)


_DATALAD = {Status.DRY_RUN: Status.OK, Status.UNCHANGED: Status.NOTNEEDED,
            Status.SKIPPED: Status.NOTNEEDED}

OK = Status.OK
NOTNEEDED = Status.NOTNEEDED
IMPOSSIBLE = Status.IMPOSSIBLE
ERROR = Status.ERROR
DRY_RUN = Status.DRY_RUN
UNCHANGED = Status.UNCHANGED
SKIPPED = Status.SKIPPED

# Python names of fields whose JSON key is spelled otherwise (``result.exit_code``: "exit")
_ALIASES = {"exit_code": "exit"}


class Result(NamedTuple):  # a NamedTuple: cheap to create by the thousand
    """Every command's outcome, one per thing looked at or acted on.

    ``extra`` holds what is particular to an operation (a run's ``commit``, ``record``,
    ``exit``, ...); it is read by name like a field (``result.commit``, ``result.exit_code``
    for the key "exit"): ``__getattr__`` looks there, and says ``Any`` to type checkers.
    ``to_dict`` is the JSON object: the fields that are set, in this order (``path`` left
    out when None; ``state``, ``type``, ``message`` when empty, or where ``extra`` has the
    same key: then they are in ``extra``'s place), then ``extra`` in its order;
    ``key_order``, when given, puts the keys it names first, in its order (the order rr's
    JSON has always had)."""

    action: str                 # the operation: "status", "diff", "update", "run", ...
    path: str | None            # relative to the dataset given ('.' for it); None: no path
    status: str = OK            # a Status (or its string): ok | notneeded | impossible | error
    state: str = ""             # what was found: "modified", "untracked", "installed", ...
    type: str = ""              # file | symlink | directory | dataset
    message: str = ""           # one line for people
    extra: dict[str, Any] | None = None   # command-specific fields, kept in --json
    key_order: tuple[str, ...] = ()  # JSON keys put first (where rr's JSON always had them)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.path is not None:
            out["path"] = self.path
        out["status"] = self.status
        extra = self.extra or {}
        if self.state and "state" not in extra:
            out["state"] = self.state
        if self.type and "type" not in extra:
            out["type"] = self.type
        if self.message and "message" not in extra:
            out["message"] = self.message
        out.update(extra)
        if self.key_order:
            return {k: out[k] for k in self.key_order if k in out} | out
        return out

    @property
    def failed(self) -> bool:
        return self.status in (IMPOSSIBLE, ERROR)

    def __getattr__(self, name: str) -> Any:
        extra = self.extra
        if extra is not None and not name.startswith("__"):
            key = _ALIASES.get(name, name)
            if key in extra:
                return extra[key]
        raise AttributeError(f"{self.action} result has no field {name!r}")

    # a field of that name, not tuple's method: a step's or a job's index, a count
    @property
    def index(self) -> Any:  # type: ignore[override]
        return self.__getattr__("index")

    @property
    def count(self) -> Any:  # type: ignore[override]
        return self.__getattr__("count")

    def updated(self, **extra: Any) -> Result:
        """The same result with ``extra`` fields set (added at the end, or in place)."""
        return self._replace(extra={**(self.extra or {}), **extra})


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


def job_event(index: int, state: Any, text: str = "") -> Event:
    """A job changed state; ``text``: the worker's address when started, the error when
    failed."""
    return Event(EventKind.JOB, text, {"index": index, "state": state})


def emit(on_event: OnEvent | None, event: Event) -> None:
    """Hand ``event`` to ``on_event`` when there is one."""
    if on_event is not None:
        on_event(event)
