"""Lineage: where a file's content came from, what consumed it, how to make it again.

Read from the history only (nothing is checked out, no process per commit): one ``git log
--raw`` over HEAD gives every commit's record, notes and changed paths; the state of any path
before or at any commit is then known in memory (the newest change among the commit's
ancestors), and one ``cat-file --batch`` reads the annex keys of the files involved.
:class:`History` is that reader; the RO-Crate export (:mod:`recorder.rocrate`) uses it too.
"""

from __future__ import annotations

import bisect
import posixpath
import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from . import annex, gitrepo
from . import config as cfgkeys
from . import record as records
from .dataset import Dataset
from .errors import RecorderError, RecordError, UsageError
from .history import _note_duration
from .placeholders import PathList, QuotedPath, expand, substitutions

GITLINK = "160000"
SYMLINK = "120000"
DELETED = "000000"
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass
class FileState:
    """A path's content at some point of the history: its blob, its annex key when annexed
    (the commit of a subdataset for a subdataset), and the commit that made it so."""

    path: str
    kind: str  # "annex", "git", "symlink" or "subdataset"
    blob: str
    key: str | None
    commit: str  # the commit that last changed it
    by_run: bool = False  # that commit is a run commit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Step:
    """One run commit: its record in short, and its inputs and outputs as they were."""

    commit: str
    date: str
    author: str
    email: str
    message: str
    command: str
    pwd: str
    exit: int | None
    image: dict[str, Any] | None
    cached_from: str | None
    chain: list[str]
    inputs: list[FileState] = field(default_factory=list)
    outputs: list[FileState] = field(default_factory=list)
    duration: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Lineage:
    path: str
    state: FileState
    steps: list[Step]  # oldest first: the order that regenerates the file
    sources: list[FileState]  # the data no run made that the steps read
    forward: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Commit:
    __slots__ = ("entry", "loaded", "note")

    def __init__(self, entry: gitrepo.RawLogEntry) -> None:
        self.entry = entry
        self.loaded: tuple[str, dict[str, Any]] | None = None
        self.note: str | None = None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as Python's glob.glob reads it (as DataLad): ``*`` and ``?`` stay within one
    name, ``**`` crosses directories, ``[...]`` a character class."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class History:
    """The history of ``rev`` (default HEAD) read once: records, notes, changed paths."""

    def __init__(self, ds: Dataset, rev: str | None = None) -> None:
        self.ds = ds
        rev = rev or "HEAD"
        if ds.head() is None:
            raise UsageError("the dataset has no commits yet")
        tip = rev.split("..")[-1] or "HEAD"
        if gitrepo.resolve_commit(ds.root, tip) is None:
            raise UsageError(f"unknown revision: {rev if len(rev) <= 80 else rev[:77] + '...'}")
        entries = gitrepo.iter_log_raw(ds.root, [rev], notes_ref=gitrepo.NOTES_REFS)
        self.tip = tip
        self.commits = [_Commit(e) for e in entries]  # newest first
        self.index = {e.sha: i for i, e in enumerate(entries)}
        n = len(entries)
        # ancestors as bit sets (bit j: commit j): merges and branches answered exactly
        self.ancestors = [0] * n
        for i in range(n - 1, -1, -1):
            mask = 1 << i
            for p in entries[i].parents:
                j = self.index.get(p)
                if j is not None:
                    mask |= self.ancestors[j]
            self.ancestors[i] = mask
        # path -> [(commit index, mode, blob)], newest first
        self.changes: dict[str, list[tuple[int, str, str]]] = {}
        for i, e in enumerate(entries):
            for path, mode, blob, _letter in e.changes:
                self.changes.setdefault(path, []).append((i, mode, blob))
        self.paths = sorted(self.changes)
        self.gitlinks = sorted(p for p, ch in self.changes.items()
                               if any(m == GITLINK for _i, m, _b in ch))
        try:
            self.record_dir = ds.record_directory()
        except RecorderError:  # each sidecar record is noted as unreadable
            self.record_dir = ds.config.get(cfgkeys.RUN_RECORD_DIRECTORY) or ""
        self._keys: dict[str, str | None] = {}
        self._io: dict[int, tuple[list[tuple[str, tuple[int, str, str]]],
                                  list[tuple[str, tuple[int, str, str]]]]] = {}

    # --- records ---------------------------------------------------------------------

    def record(self, i: int) -> tuple[str, dict[str, Any]] | None:
        """(message, record) of commit ``i``; None for a commit without one (a malformed
        record is None too, with :meth:`note` saying why)."""
        c = self.commits[i]
        if c.loaded is None and c.note is None:
            try:
                c.loaded = records.load_record(c.entry.message, self.ds.root, self.record_dir)
            except RecordError as exc:
                c.note = f"commit {c.entry.sha[:10]} has a malformed run record: {exc.message}"
            if c.loaded is None and c.note is None:
                c.note = ""
        return c.loaded

    def note(self, i: int) -> str | None:
        self.record(i)
        return self.commits[i].note or None

    def run_commits(self) -> list[int]:
        """Indexes of the commits with a readable record, oldest first."""
        return [i for i in range(len(self.commits) - 1, -1, -1) if self.record(i) is not None]

    # --- path states -----------------------------------------------------------------

    def state(self, path: str, i: int, *, inclusive: bool) -> tuple[int, str, str] | None:
        """(commit index, mode, blob) of ``path`` in commit ``i`` (``inclusive``) or in its
        parents (the newest change among the ancestors); None when it does not exist."""
        mask = self.ancestors[i]
        changes = self.changes.get(path, ())
        start = bisect.bisect_left(changes, (i if inclusive else i + 1,))
        for j, mode, blob in changes[start:]:
            if mask >> j & 1:
                return None if mode == DELETED else (j, mode, blob)
        return None

    def _candidates(self, prefix: str) -> list[str]:
        lo = bisect.bisect_left(self.paths, prefix)
        hi = bisect.bisect_left(self.paths, prefix + "\U0010ffff")
        return self.paths[lo:hi]

    def gitlink_of(self, path: str) -> str | None:
        """The subdataset (gitlink) at or above ``path``."""
        for g in self.gitlinks:
            if path == g or path.startswith(g + "/"):
                return g
        return None

    def expand(self, specs: list[str], pwd: str, i: int, *, inclusive: bool
               ) -> list[tuple[str, tuple[int, str, str]]]:
        """The files that the input/output ``specs`` (globs, directories, relative to
        ``pwd``) named in commit ``i`` (or before it): (path, state); a path inside a
        subdataset is the subdataset's gitlink."""
        found: dict[str, tuple[int, str, str]] = {}
        for spec in specs:
            full = posixpath.normpath(posixpath.join(pwd, spec)) if pwd not in ("", ".") \
                else posixpath.normpath(spec)
            if full in (".", "..") or full.startswith(("../", "/")):
                continue  # outside the dataset: not followed
            link = self.gitlink_of(full)
            if link is not None:
                names = [link]
            elif _GLOB_CHARS.search(full):
                literal = _GLOB_CHARS.split(full, 1)[0]
                rx = _glob_regex(full)
                # as glob.glob: a wildcard does not match a name starting with a dot
                dotted = full.startswith(".") or "/." in full
                # a match of a directory names all its files (DataLad reads the directory)
                depth = None if "**" in full else full.count("/") + 1
                names = [p for p in self._candidates(literal)
                         if rx.match(p if depth is None else "/".join(p.split("/")[:depth]))
                         and (dotted or not (p.startswith(".") or "/." in p))]
            elif full in self.changes:
                names = [full]
            else:
                names = self._candidates(full + "/")
            for name in names:
                if name in found:
                    continue
                st = self.state(name, i, inclusive=inclusive)
                if st is not None:
                    found[name] = st
        return sorted(found.items())

    def load_keys(self, states: list[tuple[int, str, str]]) -> None:
        """Read the annex keys of these blobs (symlinks and pointer files) in one go."""
        wanted = [b for _j, m, b in states if m != GITLINK and b not in self._keys]
        if not wanted:
            return
        small = gitrepo.small_blobs(self.ds.root, wanted, limit=1024)
        for b in wanted:
            content = small.get(b)
            self._keys[b] = annex.key_of_link(content) if content is not None else None

    def file_state(self, path: str, st: tuple[int, str, str]) -> FileState:
        j, mode, blob = st
        key: str | None = blob
        if mode == GITLINK:
            kind = "subdataset"
        else:
            key = self._keys.get(blob)
            kind = "annex" if key else ("symlink" if mode == SYMLINK else "git")
        return FileState(path, kind, blob, key, self.commits[j].entry.sha,
                         self.record(j) is not None)

    def io(self, i: int) -> tuple[list[tuple[str, tuple[int, str, str]]],
                                  list[tuple[str, tuple[int, str, str]]]]:
        """Commit ``i``'s inputs as they were before it and outputs as it left them."""
        cached = self._io.get(i)
        if cached is None:
            loaded = self.record(i)
            assert loaded is not None
            rec = loaded[1]
            pwd = str(rec.get("pwd") or ".")
            cached = (self.expand(list(rec.get("inputs") or []), pwd, i, inclusive=False),
                      self.expand(list(rec.get("outputs") or []), pwd, i, inclusive=True))
            self._io[i] = cached
        return cached

    def steps(self, indexes: list[int]) -> list[Step]:
        """The run commits ``indexes`` (each has a record) as steps; the keys of all their
        files read in one go."""
        states = [st for i in indexes for part in self.io(i) for _p, st in part]
        self.load_keys(states)
        return [self._step(i) for i in indexes]

    def _step(self, i: int) -> Step:
        loaded = self.record(i)
        assert loaded is not None
        message, rec = loaded
        e = self.commits[i].entry
        ins, outs = self.io(i)
        info = rec.get("rr") if isinstance(rec.get("rr"), dict) else {}
        assert isinstance(info, dict)
        container = info.get("container")
        image = ({"name": container} if isinstance(container, str)
                 else dict(container) if isinstance(container, dict) else None)
        cached = info.get("cached_from")
        duration = info.get("duration")
        if duration is None:
            duration = _note_duration(e.note)
        return Step(e.sha, e.date, e.author, e.email,
                    message.splitlines()[0] if message else "", str(rec.get("cmd", "")),
                    str(rec.get("pwd") or "."), rec.get("exit"), image,
                    cached if isinstance(cached, str) else None,
                    list(rec.get("chain") or []),
                    [self.file_state(p, s) for p, s in ins],
                    [self.file_state(p, s) for p, s in outs],
                    float(duration) if isinstance(duration, (int, float)) else None)


def _dataset_path(ds: Dataset, path: str) -> str:
    rel = ds.relpath(path)
    if rel in ("", "."):
        raise UsageError("give a file: the lineage of the whole dataset is its history")
    return rel


def lineage(ds: Dataset, path: str, *, forward: bool = False) -> Lineage:
    """The chain of run commits that made ``path``'s content at HEAD, back to data no run
    made (``steps``, oldest first, and ``sources``); with ``forward`` also the runs that
    consumed it, and the runs that consumed theirs (``forward``, oldest first)."""
    rel = _dataset_path(ds, path)
    hist = History(ds)
    head = hist.state(rel, 0, inclusive=True)
    if head is None:
        link = hist.gitlink_of(rel)
        if link is not None:
            raise UsageError(f"{rel} is in the subdataset {link}",
                             hint=f"ask the subdataset: rr lineage -d {link} {rel}")
        inside = hist._candidates(rel + "/")
        if inside:
            raise UsageError(f"{rel} is a directory: give one of its files, e.g. {inside[0]}")
        raise UsageError(f"{rel} is not in HEAD's tree", hint="commit it first (rr save)")
    hist.load_keys([head])
    result = Lineage(rel, hist.file_state(rel, head), [], [])
    # backwards: each state's producer; a run commit's inputs are followed in turn
    made: set[int] = set()
    sources: dict[tuple[str, int], tuple[int, str, str]] = {}
    todo = [(rel, head)]
    while todo:
        p, st = todo.pop()
        j = st[0]
        if hist.record(j) is None:
            note = hist.note(j)
            if note and note not in result.notes:
                result.notes.append(note)
            sources.setdefault((p, j), st)
            continue
        if j not in made:
            made.add(j)
            todo.extend(hist.io(j)[0])
    hist.load_keys(list(sources.values()))
    # oldest first: the order that makes the file again
    result.steps = hist.steps(sorted(made, reverse=True))
    result.sources = sorted((hist.file_state(p, st) for (p, _j), st in sources.items()),
                            key=lambda f: (-hist.index[f.commit], f.path))
    if forward:
        result.forward = _forward(hist, rel, head)
    return result


def _forward(hist: History, path: str, head: tuple[int, str, str]) -> list[Step]:
    """The runs after ``path``'s content was made that read it, and those that read what
    they made, oldest first."""
    made = head[0]
    frontier = {(path, made)}
    found = []
    for i in range(made - 1, -1, -1):
        if not hist.ancestors[i] >> made & 1 or hist.record(i) is None:
            continue
        ins, outs = hist.io(i)
        if not any((p, st[0]) in frontier for p, st in ins):
            continue
        found.append(i)
        frontier.update((p, st[0]) for p, st in outs)
    return hist.steps(found)


# --- the script ----------------------------------------------------------------------


class _ShellVar(str):
    """A value inserted as a shell variable reference (not quoted)."""


def script(ds: Dataset, lin: Lineage) -> str:
    """A POSIX shell script that makes ``lin.path`` again from its sources, run at the top
    of a clone of the dataset: each step fetches its inputs (rr get), removes its outputs
    (in a clone they are annex links without content) and runs its command."""
    where = f"dataset {ds.id}" if ds.id else "the dataset"
    what = f" (annex key {lin.state.key})" if lin.state.key else f" (blob {lin.state.blob})"
    lines = [
        "#!/bin/sh",
        f"# Makes {lin.path}{what} again, in {len(lin.steps)} step(s).",
        f"# Generated by: rr lineage --script {shlex.quote(lin.path)}, in {where}",
        "# Run it at the top of a clone of the dataset.",
        "set -e",
        'rr_root=$(git rev-parse --show-toplevel)',
        'cd "$rr_root"',
    ]
    subs = substitutions(ds.config.values)
    made = {step.commit for step in lin.steps}
    for step in lin.steps:
        lines += ["", f"# {step.commit[:10]} {step.message}".rstrip()]
        if step.cached_from:
            lines.append(f"# (a cached result of {step.cached_from[:10]}'s run)")
        pwd = step.pwd if step.pwd not in ("", ".") else ""
        rel_in = [_rel(i.path, pwd) for i in step.inputs]
        rel_out = [_rel(o.path, pwd) for o in step.outputs]
        values: dict[str, Any] = dict(subs)
        base = '"$rr_root"' if not pwd else f'"$rr_root"/{shlex.quote(pwd)}'
        values.update(pwd=_ShellVar(base), dspath=_ShellVar('"$rr_root"'),
                      tmpdir=_ShellVar('"$rr_tmpdir"'), inputs=PathList(rel_in),
                      outputs=PathList(rel_out))
        try:
            command = expand(step.command, values)
        except RecorderError as exc:
            lines.append(f"# not included: {exc.message}")
            continue
        # what an earlier step makes again is not fetched: it is here, made
        fetch = [i.path for i in step.inputs if i.commit not in made]
        if step.image and step.image.get("image"):
            fetch.append(str(step.image["image"]))
        if fetch:
            lines.append("rr get -- " + " ".join(shlex.quote(p) for p in fetch))
        if step.outputs:
            lines.append("rm -f -- " + " ".join(shlex.quote(o.path) for o in step.outputs))
        uses_tmp = "$rr_tmpdir" in command
        if uses_tmp:
            lines.append('rr_tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/rr-run-XXXXXXXX")')
        lines.append(f"(cd {base} && {command})")
        if uses_tmp:
            lines.append('rm -rf "$rr_tmpdir"')
    return "\n".join(lines) + "\n"


def _rel(path: str, pwd: str) -> str:
    return QuotedPath(posixpath.relpath(path, pwd) if pwd else path)
