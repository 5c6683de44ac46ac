"""A replay's state: its steps, their results, the state file of a stopped replay
(``.git/rr-rerun.json``: written when a replay stops, validated when read), and the one place
where rr says how to go on after a replay stopped (:func:`hint`)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

from .. import record as records
from ..dataset import Dataset
from ..errors import EXIT_INTERRUPTED, RecorderError, RecordError, RerunStoppedError
from ..gitrepo import DiffEntry
from ..results import OK, Event, EventKind, OnEvent, Result, Status
from ..targets import SERIAL, Target

CONTINUE = "'rr rerun --continue'"
ABORT = "'rr rerun --abort'"


class Stop(Enum):
    """Why a replay stopped (or cannot start): what :func:`hint` tells the user to do."""

    INTERRUPTED = "interrupted"
    COMMAND_FAILED = "command failed"
    STOPPED = "stopped"  # another error at a step (where: the step)
    JOB_FAILED = "job failed"  # an error of a parallel job (where: the step)
    RESUME = "resume"
    NOT_INDEPENDENT = "not independent"
    PICK_CONFLICT = "pick conflict"
    MERGE_CONFLICT = "merge conflict"
    WAITING = "waiting"
    SEQUENCER = "sequencer"
    DAMAGED = "damaged"


def hint(why: Stop, where: str = "") -> str:
    """How to go on after a replay stopped: the one spelling of the stop-and-resume hint.
    ``where`` is the step (``COMMIT (INDEX/TOTAL)``) for STOPPED and JOB_FAILED."""
    resume = f"resume with {CONTINUE}, or give up with {ABORT}"
    texts = {
        Stop.INTERRUPTED: f"resume with {CONTINUE} (the step starts again), or give up with "
                          f"{ABORT}",
        Stop.COMMAND_FAILED: "the failed step's changes are left for inspection; fix the cause "
                             f"(discard or save those changes), then {resume}",
        Stop.STOPPED: f"the replay stopped at {where}: resume with {CONTINUE} or give up with "
                      f"{ABORT}",
        Stop.JOB_FAILED: f"the replay stopped at {where}: {resume}",
        Stop.RESUME: resume,
        Stop.NOT_INDEPENDENT: "the jobs of this array are not independent: replay them one "
                              f"after the other with --jobs 1; {resume}",
        Stop.PICK_CONFLICT: "resolve it and 'git cherry-pick --continue' (or 'git cherry-pick "
                            f"--abort'), then {CONTINUE}; or give up with {ABORT}",
        Stop.MERGE_CONFLICT: f"resolve the conflict and commit, then {CONTINUE}; or give up "
                             f"with {ABORT}",
        Stop.WAITING: f"finish it with {CONTINUE} or drop it with {ABORT}",
        Stop.SEQUENCER: "finish it (git cherry-pick --continue / git commit) or abort it, then "
                        f"run {CONTINUE} again",
        Stop.DAMAGED: f"drop it with {ABORT} (the dataset stays as it is)",
    }
    return texts[why]


def add_stop_hint(exc: RecorderError, step: Step, index: int, total: int) -> None:
    """An error at a step: its own hint, then how to go on with the replay."""
    exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
        hint(Stop.STOPPED, f"{step.commit[:10]} ({index}/{total})")


STATE_FILE = "rr-rerun.json"


@dataclass
class Step:
    action: str  # checkout | run | skip-or-pick | merge
    commit: str
    parents: list[str] = field(default_factory=list)
    author: str = ""
    date: str = ""
    run_message: str | None = None
    record: dict[str, Any] | None = None
    raw_message: str = ""
    note: str | None = None
    branch: str | None = None  # for checkout

    @property
    def subject(self) -> str:
        text = (self.run_message if self.run_message is not None else self.raw_message).strip()
        return text.splitlines()[0] if text else ""


@dataclass
class Plan:
    revision: str  # full sha
    range_desc: str
    steps: list[Step]
    since: str | None


STEP_KEYS = ("index", "total", "action", "status")  # rr's JSON of a step: where it is first


def step_result(index: int, total: int, action: str, status: Status, commit: str,
                new_commit: str | None, subject: str, *, duration: float = 0.0,
                note: str | None = None) -> Result:
    """A replayed step's result: ``action`` checkout | run | pick | skip | merge, status ok,
    unchanged (a run whose outputs are the recorded ones) or skipped; fields ``index``,
    ``total``, ``commit`` (the original commit), ``new_commit``, ``subject``, ``duration``,
    ``note``."""
    return Result(action, None, status, extra={
        "index": index, "total": total, "commit": commit, "new_commit": new_commit,
        "subject": subject, "duration": duration, "note": note}, key_order=STEP_KEYS)


def replay_totals(results: Sequence[Result]) -> tuple[int, int]:
    """The runs replayed, and those of them with new results (the rest were unchanged)."""
    ran = [r for r in results if r.action == "run"]
    return len(ran), sum(1 for r in ran if r.status == OK)


_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@dataclass
class Replay:
    ds: Dataset
    steps: list[Step]
    mapping: dict[str, str]  # original commit -> its replacement (DataLad's new_bases)
    start: str  # DataLad's "onto": where the replay started
    head: str
    branch_name: str | None  # the branch that ends at the replay's tip (None: detached)
    message: str | None
    explicit: bool
    assume_ready: str | None
    total: int
    done: int = 0
    pick_base: str | None = None
    origin_branch: str | None = None  # where the user was: the branch checked out ...
    origin_sha: str = ""  # ... and its commit
    new_branch: bool = False  # branch_name was created by --branch
    touched: list[str] = field(default_factory=list)  # paths the stopped step changed
    interrupted: bool = False
    on_event: OnEvent | None = None  # STEP before each step, ANNOUNCE, WARN
    saved: bool = False
    target: Target = SERIAL  # --jobs / --scheduler: where an array's jobs run
    # runs may be restored from the run-cache (rr rerun sets it; --verify never: it re-executes)
    cache: bool = False
    cache_verbose: bool = False  # -v: say why the cache missed
    # not kept in the state file: the tree is known clean (checked under the replay's dataset
    # lock, and every step since left it so) ...
    clean: bool = False
    # ... and the duration notes of the records replayed (commit -> note), written as one
    # notes commit when the replay ends or stops
    durations: dict[str, str] = field(default_factory=dict)
    # what each run step's commit changed (steps.replay_spec), read for all at once
    diffs: dict[str, list[DiffEntry]] | None = None

    def emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def starting(self, index: int, step: Step) -> None:
        """A STEP event: step ``index`` (of ``total``) starts."""
        self.emit(Event(EventKind.STEP, f"[{index}/{self.total}] {step.action} "
                        f"{step.commit[:8]} {step.subject}",
                        {"index": index, "total": self.total, "action": step.action,
                         "commit": step.commit}))

    def warn(self, text: str) -> None:
        self.emit(Event(EventKind.WARN, text))

    def save_state(self, failed: Step | None, *, touched: Sequence[str] = (),
                   interrupted: bool = False) -> None:
        """Write the state file: the replay waits at step ``failed`` (None: after its last
        step, for its end), ``touched`` the paths that step changed."""
        remaining = self.steps[self.steps.index(failed):] if failed in self.steps else []
        self.touched = sorted(set(self.touched) | set(touched))
        self.interrupted = interrupted
        data = {"steps": [asdict(s) for s in remaining], "mapping": self.mapping,
                "start": self.start, "head": self.head, "branch_name": self.branch_name,
                "message": self.message, "explicit": self.explicit,
                "assume_ready": self.assume_ready, "total": self.total, "done": self.done,
                "pick_base": self.pick_base, "origin_branch": self.origin_branch,
                "origin_sha": self.origin_sha, "new_branch": self.new_branch,
                "touched": self.touched, "interrupted": self.interrupted}
        path = self.ds.git_dir / STATE_FILE
        tmp = path.with_name(STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)
        self.saved = True

    @classmethod
    def load(cls, ds: Dataset) -> Replay:
        path = ds.git_dir / STATE_FILE
        if not path.exists():
            raise RecorderError("no stopped replay to continue in this dataset")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(ds=ds, **_check_state(data))
        except (ValueError, TypeError, KeyError, RecursionError, RecordError) as exc:
            detail = exc.message if isinstance(exc, RecordError) else str(exc) or type(exc).__name__
            raise RecorderError(f"the stopped replay's state file .git/{STATE_FILE} is damaged: "
                                f"{detail}",
                                hint=hint(Stop.DAMAGED)) from None


def _check_state(data: Any) -> dict[str, Any]:
    """The state file's content as keyword arguments of Replay; ValueError if malformed."""
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(what)

    def sha(value: Any, name: str, optional: bool = False) -> None:
        if optional and value is None:
            return
        need(isinstance(value, str) and bool(_SHA_RE.fullmatch(value)),
             f"'{name}' is not a commit id")

    def opt_str(value: Any, name: str) -> None:
        need(value is None or isinstance(value, str), f"'{name}' is not a string")

    need(isinstance(data, dict), "not a JSON object")
    for key in ("steps", "mapping", "start", "head", "branch_name", "message", "explicit",
                "assume_ready", "total", "done", "pick_base"):
        need(key in data, f"'{key}' is missing")
    need(isinstance(data["steps"], list), "'steps' is not a list")
    steps = []
    for raw in data["steps"]:
        need(isinstance(raw, dict), "a step is not an object")
        need(set(raw) <= {f.name for f in fields(Step)}, "a step has unknown keys")
        need(raw.get("action") in ("run", "skip-or-pick", "merge"), "a step has a bad action")
        sha(raw.get("commit"), "commit")
        need(isinstance(raw.get("parents", []), list), "a step's parents are not a list")
        for p in raw.get("parents", []):
            sha(p, "parents")
        for key in ("author", "date", "raw_message"):
            need(isinstance(raw.get(key, ""), str), f"a step's '{key}' is not a string")
        for key in ("run_message", "note", "branch"):
            opt_str(raw.get(key), key)
        rec = raw.get("record")
        if rec is not None:
            need(isinstance(rec, dict), "a step's record is not an object")
            records.validate(rec)
            need("pwd" in rec, "a step's record has no 'pwd'")
        elif raw["action"] == "run":
            raise ValueError("a run step has no record")
        steps.append(Step(**raw))
    need(isinstance(data["mapping"], dict), "'mapping' is not an object")
    for k, v in data["mapping"].items():
        sha(k, "mapping")
        sha(v, "mapping")
    sha(data["start"], "start")
    sha(data["head"], "head")
    sha(data["pick_base"], "pick_base", optional=True)
    for key in ("branch_name", "message", "origin_branch"):
        opt_str(data.get(key), key)
    need(data.get("assume_ready") in (None, "inputs", "outputs", "both"), "'assume_ready' is bad")
    need(isinstance(data["explicit"], bool), "'explicit' is not true or false")
    for key in ("total", "done"):
        need(isinstance(data[key], int) and not isinstance(data[key], bool) and data[key] >= 0,
             f"'{key}' is not a count")
    origin = data.get("origin_sha") or data["start"]
    sha(origin, "origin_sha")
    touched = data.get("touched", [])
    need(isinstance(touched, list) and all(isinstance(t, str) and safe_rel(t) for t in touched),
         "'touched' is not a list of dataset paths")
    for key in ("new_branch", "interrupted"):
        need(isinstance(data.get(key, False), bool), f"'{key}' is not true or false")
    return {"steps": steps, "mapping": dict(data["mapping"]), "start": data["start"],
            "head": data["head"], "branch_name": data["branch_name"],
            "message": data["message"], "explicit": data["explicit"],
            "assume_ready": data["assume_ready"], "total": data["total"], "done": data["done"],
            "pick_base": data["pick_base"], "origin_branch": data.get("origin_branch"),
            "origin_sha": origin, "new_branch": data.get("new_branch", False),
            "touched": list(touched), "interrupted": data.get("interrupted", False)}


def safe_rel(path: str) -> bool:
    norm = os.path.normpath(path)
    return bool(path) and not os.path.isabs(norm) and norm != ".." and \
        not norm.startswith("../") and "\0" not in path


def has_stopped_replay(ds: Dataset) -> bool:
    return (ds.git_dir / STATE_FILE).exists()


def interrupted_at(step: Step, position: int, total: int) -> RerunStoppedError:
    """The error of a replay interrupted at ``step`` (one at a time or in a parallel batch)."""
    return RerunStoppedError(
        f"replay interrupted at {step.commit[:10]} ({position}/{total})",
        hint=hint(Stop.INTERRUPTED), exit_code=EXIT_INTERRUPTED)
