"""``rr diff-runs A B``: what differs between two run commits.

Read from git objects only (no checkout): both commits' messages and duration notes with one
``git log --no-walk``, what each commit changed with one ``diff-tree --stdin``, the trees
with ``ls-tree``, small blobs and annexed text with ``cat-file --batch`` /
``contentlocation --batch``.  Compared: the command, the parameters (an array job's
``rr.array.params``), pwd and exit code; the declared inputs at each commit's parent (what
the command read: annex keys or blob ids; a subdataset by its commit); the image digest;
the declared environment and the versions where the records keep them (``rr.env``); the
outputs (the declared ones and every file either commit changed: keys, a short diff for
text, the changed values of metrics files via ``recorder.valuediff``); the duration (the
record's ``rr.duration`` or rr's note in refs/notes/rr).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import gitrepo, valuediff
from . import record as records
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .history import verification_summary
from .rerun import verify as _verify

SAME, DIFFERS, ONLY_A, ONLY_B = "identical", "differs", "only-a", "only-b"
WITHIN_RTOL = _verify.WITHIN_RTOL
_GLOB = set("*?[")


@dataclass(frozen=True)
class RunSide:
    """One of the two run commits, as its record says."""

    commit: str
    subject: str
    command: str
    pwd: str
    exit: int | None
    params: dict[str, Any]
    image: str | None
    duration: float | None
    env: dict[str, Any]  # valuediff.recorded_env
    verified: str | None = None  # rr rerun --verify's verdicts in a few words (rr log's)

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "subject": self.subject, "command": self.command,
                "pwd": self.pwd, "exit": self.exit, "params": self.params,
                "image": self.image, "duration": self.duration, "env": self.env,
                "verified": self.verified}


@dataclass(frozen=True)
class RunsDiff:
    """What differs between run commits ``a`` and ``b``.  ``fields``: the record's fields
    that differ (``{"what", "a", "b"}``: command, pwd, exit, parameters one by one);
    ``inputs`` / ``outputs``: one dict per file (path, status identical | differs | only-a |
    only-b, a, b: annex key or blob id, and for a differing text output ``diff``, for a
    metrics output ``values``); ``environment``: the image digest, versions and declared
    variables that differ (``{"what", "old", "new"}``, old = A's)."""

    a: RunSide
    b: RunSide
    fields: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    environment: list[dict[str, Any]] = field(default_factory=list)

    @property
    def outputs_differ(self) -> bool:
        return any(f["status"] not in (SAME, WITHIN_RTOL) for f in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {"action": "diff-runs", "status": "ok", "a": self.a.to_dict(),
                "b": self.b.to_dict(), "outputs_differ": self.outputs_differ,
                "fields": self.fields, "inputs": self.inputs, "outputs": self.outputs,
                "environment": self.environment}


def diff_runs(ds: Dataset, a: str, b: str, *, rtol: float = 0.0) -> RunsDiff:
    """Compare the run commits ``a`` and ``b`` (any revisions naming run commits)."""
    shas = []
    for rev in (a, b):
        sha = gitrepo.resolve_commit(ds.root, rev) if rev and not rev.startswith("-") \
            else None
        if sha is None:
            raise UsageError(f"unknown revision: {rev if len(rev) <= 80 else rev[:77] + '...'}")
        shas.append(sha)
    entries = {e.sha: e for e in gitrepo.iter_log(
        ds.root, list(dict.fromkeys(shas)), reverse=False, topo=False,
        extra=["--no-walk=unsorted"], notes_ref=gitrepo.NOTES_REFS)}
    try:
        record_dir = ds.record_directory()
    except RecorderError:
        record_dir = ""
    sides, recs, parents = [], [], []
    for rev, sha in zip((a, b), shas):
        entry = entries[sha]
        loaded = records.load_record(entry.message, ds.root, record_dir, commit=sha)
        if loaded is None:
            subject = entry.message.strip().splitlines()[0] if entry.message.strip() else ""
            raise UsageError(f"{rev} ({sha[:10]} {subject[:60]}) is not a run commit: its "
                             f"message has no run record")
        message, rec = loaded
        sides.append(_side(sha, message, rec, entry.note))
        recs.append(rec)
        parents.append(entry.parents[0] if entry.parents else None)
    side_a, side_b = sides
    return RunsDiff(side_a, side_b, _fields(side_a, side_b),
                    _inputs(ds, recs, parents),
                    _outputs(ds, recs, shas, parents, record_dir, rtol),
                    valuediff.env_changes(side_a.env, side_b.env, both=True))


def _side(sha: str, message: str, rec: dict[str, Any], note: str) -> RunSide:
    info: dict[str, Any] = rec["rr"] if isinstance(rec.get("rr"), dict) else {}
    array: dict[str, Any] = info["array"] if isinstance(info.get("array"), dict) else {}
    params: dict[str, Any] = array["params"] if isinstance(array.get("params"), dict) else {}
    duration = info.get("duration")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool):
        duration = _note_duration(note)
    env = valuediff.recorded_env(rec)
    exit_code = rec.get("exit")
    return RunSide(sha, message.splitlines()[0] if message else "", str(rec.get("cmd", "")),
                   str(rec.get("pwd", ".")), exit_code if isinstance(exit_code, int) else None,
                   dict(params), env.get("image"), duration, env, _verified(note))


def _note_lines(note: str) -> list[dict[str, Any]]:
    """The JSON objects of a commit's notes (refs/notes/rr and refs/notes/rr-verify)."""
    out = []
    for line in note.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _note_duration(note: str) -> float | None:
    """The duration rr notes on a run commit (refs/notes/rr: a JSON line with one)."""
    for value in _note_lines(note):
        if isinstance(value.get("duration"), (int, float)) and \
                not isinstance(value["duration"], bool):
            return float(value["duration"])
    return None


def _verified(note: str) -> str | None:
    """The verdicts noted by rr rerun --verify, summed up as rr log does."""
    found = sorted((v for v in _note_lines(note) if isinstance(v.get("verdict"), str)),
                   key=lambda v: str(v.get("date", "")))
    return verification_summary(found)


def _fields(a: RunSide, b: RunSide) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"what": name, "a": x, "b": y} for name, x, y in (
        ("command", a.command, b.command), ("pwd", a.pwd, b.pwd), ("exit", a.exit, b.exit))
        if x != y]
    for name in sorted(set(a.params) | set(b.params)):
        x, y = a.params.get(name), b.params.get(name)
        if x != y:
            out.append({"what": f"parameter {name}", "a": x, "b": y})
    return out


def _declared(rec: dict[str, Any], names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The record's paths of fields ``names``, dataset-relative: (literal, globs)."""
    relpwd = os.path.normpath(str(rec.get("pwd", ".")))
    literal: list[str] = []
    globs: list[str] = []
    for name in names:
        for p in rec.get(name) or []:
            full = os.path.normpath(os.path.join(relpwd, str(p)))
            if full == "." or full.startswith(".."):
                continue
            (globs if _GLOB & set(full) else literal).append(Path(full).as_posix())
    return literal, globs


def _matching(entries: dict[str, tuple[str, str]], literal: list[str],
              globs: list[str]) -> dict[str, tuple[str, str]]:
    """The tree entries a declared path names: itself, under it, matched by a glob, or the
    subdataset (gitlink) that holds it."""
    out = {}
    links = [p for p, (mode, _s) in entries.items() if mode == "160000"]
    for path, entry in entries.items():
        if any(path == o or path.startswith(o + "/") for o in literal) or \
                any(fnmatch.fnmatchcase(path, g) for g in globs):
            out[path] = entry
    for link in links:
        if any(p.startswith(link + "/") for p in literal + globs):
            out[link] = entries[link]
    return out


def _tree(ds: Dataset, rev: str | None, literal: list[str], globs: list[str],
          more: Sequence[str] = ()) -> dict[str, tuple[str, str]]:
    if rev is None:
        return {}
    if globs or any(_under_link(p) for p in literal):
        return gitrepo.tree_entries(ds.root, rev)
    wanted = sorted(set(literal) | set(more) | {str(Path(p).parent) for p in literal
                                                  if "/" in p})
    return gitrepo.tree_entries(ds.root, rev, wanted) if wanted else {}


def _under_link(path: str) -> bool:
    return "/" in path  # an input in a subdataset: its gitlink is found in the whole tree


def _inputs(ds: Dataset, recs: list[dict[str, Any]], parents: list[str | None]
            ) -> list[dict[str, Any]]:
    """The declared inputs (and extra inputs) at each commit's parent."""
    sides = []
    for rec, parent in zip(recs, parents):
        literal, globs = _declared(rec, ("inputs", "extra_inputs"))
        sides.append(_matching(_tree(ds, parent, literal, globs), literal, globs))
    return _files(ds, sides[0], sides[1], 0.0, diff=False)


def _outputs(ds: Dataset, recs: list[dict[str, Any]], shas: list[str],
             parents: list[str | None], record_dir: str, rtol: float) -> list[dict[str, Any]]:
    """The declared outputs and the files each commit changed, at each commit."""
    changed = gitrepo.diff_tree_commits(ds.root, [s for s, p in zip(shas, parents) if p])
    sides = []
    declared = []
    record_dir = record_dir.strip("/")
    for rec, sha in zip(recs, shas):
        literal, globs = _declared(rec, ("outputs",))
        declared.append(literal)
        made = [p for _m, _b, p in changed.get(sha, [])]
        entries = _tree(ds, sha, literal, globs, made)
        side = _matching(entries, literal, globs)
        side.update({p: entries[p] for p in made if p in entries})
        sides.append({p: e for p, e in side.items() if not record_dir or not (
            p == record_dir or p.startswith(record_dir + "/"))})
    # two jobs of an array (out/{subject}.txt): their declared files paired by position
    pairs: list[tuple[str, str]] = []
    if declared[0] != declared[1] and len(declared[0]) == len(declared[1]):
        pairs = [(x, y) for x, y in zip(*declared) if x != y and x in sides[0] and
                 y in sides[1] and x not in sides[1] and y not in sides[0]]
    paired = [(sides[0].pop(x), sides[1].pop(y)) for x, y in pairs]
    # a file only one commit made is compared with the other commit's copy of it
    for k, other in ((0, 1), (1, 0)):
        missing = sorted(set(sides[other]) - set(sides[k]))
        if missing:
            sides[k].update(gitrepo.tree_entries(ds.root, shas[k], missing))
    return _files(ds, sides[0], sides[1], rtol, diff=True,
                  pairs=[(x, y, ex, ey) for (x, y), (ex, ey) in zip(pairs, paired)])


def _files(ds: Dataset, a: dict[str, tuple[str, str]], b: dict[str, tuple[str, str]],
           rtol: float, *, diff: bool,
           pairs: Sequence[tuple[str, str, tuple[str, str], tuple[str, str]]] = ()
           ) -> list[dict[str, Any]]:
    """One dict per path (``pairs``: A's path, B's path and their entries: a file of each,
    compared with each other, ``path`` B's and ``path_a`` A's)."""
    files: list[dict[str, Any]] = []
    for path in sorted(set(a) | set(b)):
        old, new = a.get(path), b.get(path)
        status = ONLY_B if old is None else ONLY_A if new is None else \
            SAME if old == new else DIFFERS
        files.append({"path": path, "status": status, "old": old, "new": new})
    for path_a, path_b, old, new in pairs:
        files.append({"path": path_b, "path_a": path_a,
                      "status": SAME if old[1] == new[1] else DIFFERS, "old": old, "new": new})
    _verify.describe_files(ds, files, rtol, texts=diff)
    for f in files:  # A's and B's
        f["a"], f["b"] = f.pop("old"), f.pop("new")
    return files
