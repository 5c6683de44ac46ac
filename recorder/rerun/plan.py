"""A replay's plan (DataLad's, spec §3), and what reads it only: ``--report`` and ``--script``."""

from __future__ import annotations

import itertools
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import gitrepo
from .. import record as records
from ..dataset import Dataset
from ..errors import RecorderError, RecordError, UsageError
from ..placeholders import PathList, QuotedPath, expand, substitutions
from .state import Plan, Step

if TYPE_CHECKING:
    from ..run import Globbed


def _split_range(revision: str | None, since: str | None) -> tuple[str, str | None]:
    rev = revision or "HEAD"
    if ".." in rev and "..." not in rev:
        left, right = rev.split("..", 1)
        if since is not None:
            raise UsageError("give either a range A..B or --since, not both")
        return right or "HEAD", left or "HEAD"
    return rev, since


def short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def build_plan(ds: Dataset, revision: str | None = None, since: str | None = None, *,
               lenient: bool = False) -> Plan:
    """The steps of a replay; every record of the range is read and validated here, before
    anything runs.  A malformed record is an error, or with ``lenient`` (report, script) a
    step that is not re-executed and carries a note."""
    reading = _Reading(ds, revision, since, lenient)
    steps = list(reading.steps)
    return reading.finish(steps) or Plan(reading.revision, reading.desc, steps, reading.since)


class _Reading:
    """A plan as the history is read (one ``git log``, commit by commit): ``steps`` its
    steps, ``finish`` its checks once read (``build_plan`` reads them all first; ``--report``
    and ``--script`` stream them after the first run step)."""

    def __init__(self, ds: Dataset, revision: str | None, since: str | None,
                 lenient: bool) -> None:
        if ds.head() is None:
            raise RecorderError("cannot rerun: nothing recorded yet (the dataset has no "
                                "commits)")
        rev, since = _split_range(revision, since)
        rev_sha = gitrepo.resolve_commit(ds.root, rev)
        if rev_sha is None:
            raise UsageError(f"unknown revision: {short(rev)}")
        self.revision, self.since, self.lenient = rev_sha, since, lenient
        self._tip_of: str | None = None
        if since is not None and since.strip() == "":
            # all history up to rev: one git log, whose last entry is rev itself (the
            # description says which once it is read)
            entries = gitrepo.read_log(ds.root, [rev_sha], reverse=True, topo=True)
            self._tip_of, self.desc = rev, rev
        else:
            head_entry = list(gitrepo.read_log(ds.root, [rev_sha], extra=["-1", "--no-walk"]))[0]
            if not head_entry.parents:
                revs, self.desc = [rev_sha], rev
            elif since is None:
                revs, self.desc = [f"{rev_sha}^..{rev_sha}"], f"{rev}^..{rev}"
            else:
                since_sha = gitrepo.resolve_commit(ds.root, since)
                if since_sha is None:
                    raise UsageError(f"unknown revision: {short(since)}")
                revs, self.desc = [f"{since_sha}..{rev_sha}"], f"{since}..{rev}"
            entries = gitrepo.read_log(ds.root, revs, reverse=True, topo=True)
        self.steps = self._steps(ds, entries)

    def _steps(self, ds: Dataset, entries: Iterator[gitrepo.LogEntry]) -> Iterator[Step]:
        record_dir = ds.record_directory()
        dsid = ds.id
        for e in entries:
            if self._tip_of is not None and e.sha == self.revision:
                self.desc = f"all history up to {self._tip_of}" if e.parents else self._tip_of
            yield self._step(ds, e, record_dir, dsid)

    def _step(self, ds: Dataset, e: gitrepo.LogEntry, record_dir: str,
              dsid: str | None) -> Step:
        action, note = "skip-or-pick", None
        message: str | None = None
        rec: dict[str, Any] | None = None
        try:
            loaded = records.load_record(e.message, ds.root, record_dir, commit=e.sha)
            if loaded is not None and "pwd" not in loaded[1]:
                raise RecordError(f"commit {e.sha[:10]} has a malformed run record: "
                                  "no 'pwd' field")
        except RecordError as exc:
            if not self.lenient:
                raise
            loaded = None
            note = exc.message
        if loaded is not None:
            message, rec = loaded
            if not e.parents:
                note = "has a run record but is a root commit; not re-executed"
            elif len(e.parents) > 2:
                note = "has a run record but is an octopus merge; not re-executed"
            elif rec.get("dsid") and dsid and rec["dsid"] != dsid:
                note = "was run in a different dataset; skipped or cherry-picked"
            else:
                action = "run"
        if action != "run" and len(e.parents) > 1:
            action = "merge"
        # one construction with every field (a step per commit of the range)
        return Step(action, e.sha, list(e.parents), e.author, e.date, message, rec, e.message,
                    note)

    def finish(self, steps: list[Step]) -> Plan | None:
        """The checks of a plan whose steps are ``steps`` (all of them, or those up to the
        first run step): an error when none is a run step, the plan of the notes alone when
        leniently only notes are left; the leading steps that are no run dropped (from
        ``steps``) unless the range was given.  None: the plan is ``steps``."""
        lenient, since = self.lenient, self.since
        if not any(s.action == "run" for s in steps):
            if any(s.record is not None for s in steps):
                raise RecorderError(f"no run commit in {self.desc} can be re-executed in this "
                                    "dataset")
            if lenient and any(s.note for s in steps):
                return Plan(self.revision, self.desc, [s for s in steps if s.note], since)
            raise RecorderError(f"no run commits found in {self.desc}",
                                hint="give a range (A..B) or --since to replay more history")
        if since is None or since.strip() == "":
            while steps and steps[0].action != "run" and not (
                    lenient and steps[0].note and steps[0].record is None):
                steps.pop(0)
        return None

    def plan(self) -> tuple[Plan, Iterator[Step]]:
        """The plan read up to its first run step (checked as :func:`build_plan` checks it)
        and its steps, all of them, the later ones read as they are iterated."""
        head: list[Step] = []
        for step in self.steps:
            head.append(step)
            if step.action == "run":
                break
        done = self.finish(head)
        if done is not None:
            return done, iter(done.steps)
        return (Plan(self.revision, self.desc, head, self.since),
                itertools.chain(head, self.steps))


def resolve_onto(ds: Dataset, plan: Plan, onto: str | None) -> str | None:
    if onto is None:
        return None
    if onto.strip() == "":
        first = next((s for s in plan.steps if s.action == "run"), None)
        if first is None:
            raise RecorderError("--onto= needs a run commit in the range, and there is none")
        if not first.parents:
            raise RecorderError("--onto= needs a parent of the first run commit, but it is a root")
        return first.parents[0]
    sha = gitrepo.resolve_commit(ds.root, onto)
    if sha is None:
        raise UsageError(f"revision given for --onto does not exist: {short(onto)}")
    return sha


def report(ds: Dataset, revision: str | None = None, *, since: str | None = None,
           onto: str | None = None, branch: str | None = None) -> Iterator[dict[str, Any]]:
    """One dict per step of the plan, nothing executed (the steps as the history is read)."""
    plan, steps = _Reading(ds, revision, since, lenient=True).plan()
    start = resolve_onto(ds, plan, onto)
    head = ds.head()
    base = start or head
    if start is not None or branch is not None:
        yield {"action": "checkout", "commit": base, "branch": branch}
    reachable: set[str] | None = None
    if base and base != plan.revision and not gitrepo.is_ancestor(ds.root, plan.revision, base):
        reachable = set(gitrepo.rev_list(ds.root, [base]))
    for step in steps:
        out: dict[str, Any] = {
            "action": step.action, "commit": step.commit, "parents": step.parents,
            "author": step.author, "date": step.date, "subject": step.subject,
        }
        if step.action == "skip-or-pick":
            out["action"] = "skip" if reachable is None or step.commit in reachable else "pick"
        if step.record is not None:
            out["record"] = step.record
            out["run_message"] = step.run_message
        if step.note:
            out["note"] = step.note
        yield out


class _ShellVar(str):
    """A value inserted as a shell variable reference (not quoted)."""


def script(ds: Dataset, revision: str | None = None, *, since: str | None = None,
           script_name: str = "-") -> str:
    """A POSIX shell script that reproduces the run commits of the range."""
    plan, steps = _Reading(ds, revision, since, lenient=True).plan()
    args = f"--script={script_name}" + (f" --since={since}" if since is not None else "")
    where = f"dataset {ds.id} at {ds.root}" if ds.id else f"dataset at {ds.root}"
    lines = [
        "#!/bin/sh",
        "#",
        "# This file was generated by running (the equivalent of)",
        "#",
        f"#   rr rerun {args} {plan.revision}",
        "#",
        f"# in {where}",
    ]
    from ..run import glob_specs  # noqa: PLC0415 (rr run's modules: not for --report)

    subs = substitutions(ds.config.values)
    # what the specs of a directory match, read once: the files do not change while the
    # script is written, and a long history names the same inputs and outputs record after
    # record (each match is checked against the file system: 40,000 checks for 20,000 records)
    matched: dict[tuple[str, tuple[str, ...]], Globbed] = {}
    places: dict[str, tuple[Path, bool]] = {}

    def glob_once(specs: list[str], pwd: Path) -> Globbed:
        key = (str(pwd), tuple(specs))
        found = matched.get(key)
        if found is None:
            found = matched[key] = glob_specs(specs, pwd, ds)
        return found

    for step in steps:
        if step.action != "run" or step.record is None:
            if step.note and step.record is None and step.run_message is None \
                    and step.raw_message.startswith(records.TAG):
                lines += ["", f"# (record: {step.commit}) not included: {step.note}"]
            continue
        rec = step.record
        where_run = rec.get("pwd", ".")
        place = places.get(where_run)
        if place is None:  # each recorded directory once: its path, and whether it is inside
            pwd = Path(os.path.normpath(ds.root / where_run))
            place = places[where_run] = (pwd, ds.contains(pwd))
        pwd, inside = place
        try:
            ins = glob_once(rec.get("inputs") or [], pwd)
            outs = glob_once(rec.get("outputs") or [], pwd)
        except RecorderError as exc:
            lines += ["", f"# (record: {step.commit}) not included: {exc.message}"]
            continue
        values: dict[str, Any] = dict(subs)
        values.update(pwd=QuotedPath(str(pwd)), dspath=QuotedPath(str(ds.root)),
                      tmpdir=_ShellVar('"$rr_tmpdir"'),
                      inputs=PathList(ins.hits + ins.unmatched),
                      outputs=PathList(outs.hits + outs.unmatched))
        try:
            command = expand(rec["cmd"], values)
        except RecorderError as exc:
            lines += ["", f"# (record: {step.commit}) not included: {exc.message}"]
            continue
        lines.append("")
        message = step.run_message or ""
        if message and message != records.shorty(command):
            lines += [f"# {line}".rstrip() for line in message.splitlines()]
        else:
            lines.append("")
        lines.append(f"# (record: {step.commit})")
        if not inside:
            lines.append(f"# note: the recorded directory is outside the dataset: {pwd}")
        lines.append(f"cd {shlex.quote(str(pwd))} || exit 1")
        uses_tmp = "$rr_tmpdir" in command
        if uses_tmp:
            lines.append('rr_tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/rr-run-XXXXXXXX") || exit 1')
        lines.append(command)
        if uses_tmp:
            lines.append('rm -rf "$rr_tmpdir"')
    return "\n".join(lines) + "\n"


def write_script(path: str, text: str) -> None:
    """``--script FILE``: the script written to FILE (a path the user gave), executable."""
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, 0o755)
    except OSError as exc:
        raise RecorderError(f"cannot write the script: {exc.strerror or exc}") from None
