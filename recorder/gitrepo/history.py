"""History and notes: commit logs, ancestry, rr's notes ref."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from ..errors import CommandError
from ._runner import (PathLike, call_git, call_git_lines, call_git_optional, call_git_success,
                      git_dir, run, stream_git)
from .objects import cat_file_batch, fast_import
from .refs import head_sha, resolve_commit, update_refs


class LogEntry(NamedTuple):
    """One commit as :func:`read_log` reads it; the fields a call did not ask for are empty."""

    sha: str
    parents: tuple[str, ...]
    author: str
    date: str  # strict ISO 8601 author date
    message: str  # the raw message (%B)
    note: str = ""  # the notes of each notes ref asked for, one after the other
    source: str = ""  # with ``source``: the ref the commit was reached from (git log --source)
    email: str = ""  # with ``raw``: the author's email
    changes: tuple[tuple[str, str, str, str], ...] = ()  # with ``raw``: (path, new mode,
    # new blob, letter) of each path changed against the first parent; a deletion's mode
    # is '000000', a merge lists none


# the older names of the one entry type
SourcedLogEntry = LogEntry
RawLogEntry = LogEntry

RUN_GREP = "--grep=^\\[DATALAD RUNCMD\\]"  # run commits only: DataLad's tag opens the message
# with all_branches: every branch and the siblings' remote-tracking branches (what rr update
# fetched), not git-annex's own
_ALL_BRANCHES = ("--exclude=git-annex", "--exclude=synced/*", "--branches",
                 "--exclude=*/git-annex", "--exclude=*/HEAD", "--exclude=*/synced/*",
                 "--remotes")
_RAW_MARK = "\x01rr-commit\x01"


def read_log(root: PathLike, revs: Sequence[str], *, reverse: bool = False,
             topo: bool = False, notes_refs: str | Sequence[str] | None = None,
             runs_only: bool = False, source: bool = False, all_branches: bool = False,
             raw: bool = False, extra: Sequence[str] = ()) -> Iterator[LogEntry]:
    """The one reader of history: one ``git log`` of ``revs``, read as git writes it and
    parsed commit by commit (a generator: the history is never held whole).

    Each commit's sha, parents, author, date and raw message; with ``notes_refs`` (one notes
    ref or several) its notes in them, one after the other; with ``runs_only`` only run
    commits (DataLad's tag opens the message); with ``source`` the ref each was reached from;
    with ``all_branches`` every branch and remote-tracking branch but git-annex's besides
    ``revs``; with ``raw`` the author's email and the paths each changed (``git log --raw``,
    topological order).  ``reverse`` and ``topo`` as git log's --reverse and --topo-order;
    ``extra`` more git log options.  A failing git log raises CommandError when the stream
    ends."""
    refs = [notes_refs] if isinstance(notes_refs, str) else list(notes_refs or [])
    fields = ["%H", "%P", "%an", *(["%ae"] if raw else []), "%aI", "%B"]
    if refs or raw:
        fields.append("%N" if refs else "")
    if source:
        fields.append("%S")
    args = ["log", "-z"]
    if raw:
        args += ["--raw", "--no-abbrev", "--no-renames"]
        topo = True
    if source:
        args.append("--source")
    fmt = "%x00".join(fields) + ("%x00" if raw else "")
    args.append(f"--format={'%x01rr-commit%x01' if raw else ''}{fmt}")
    if runs_only:
        args.append(RUN_GREP)
    args += [f"--notes={ref}" for ref in refs] if refs or not raw else ["--no-notes"]
    if reverse:
        args.append("--reverse")
    if topo:
        args.append("--topo-order")
    if all_branches:
        args += _ALL_BRANCHES
    args += [*extra, *revs, "--"]
    pieces = stream_git(args, root)
    if raw:
        return _raw_entries(pieces)
    return _entries(pieces, len(fields), bool(refs), source)


def _entries(pieces: Iterator[bytes], size: int, notes: bool, source: bool
             ) -> Iterator[LogEntry]:
    """Entries of ``size`` NUL-separated fields (entries are NUL-separated too, ``-z``)."""
    tail = b""
    pending: list[str] = []
    done = False
    make = tuple.__new__  # a LogEntry without its Python-level __new__ (one per commit)
    while not done:
        piece = next(pieces, None)
        if piece is None:  # the last field of the last entry has no NUL after it
            done = True
            pending += tail.decode("utf-8", "surrogateescape").split("\0")
        else:
            tail += piece
            cut = tail.rfind(b"\0")
            if cut < 0:
                continue
            pending += tail[:cut].decode("utf-8", "surrogateescape").split("\0")
            tail = tail[cut + 1:]
        whole = len(pending) - len(pending) % size
        fields = iter(pending)
        for f in zip(*[fields] * size):  # the entries read whole; the rest waits
            yield make(LogEntry, (f[0].strip(), tuple(f[1].split()), f[2], f[3], f[4],
                                  f[5].strip() if notes else "",
                                  f[-1].strip() if source else "", "", ()))
        del pending[:whole]


def _raw_entries(pieces: Iterator[bytes]) -> Iterator[LogEntry]:
    """Entries of ``git log --raw`` output, each opened by _RAW_MARK."""
    mark = _RAW_MARK.encode()
    tail = b""
    done = False
    while not done:
        piece = next(pieces, None)
        if piece is None:
            done = True
            chunks = tail.split(mark)
            tail = b""
        else:
            tail += piece
            cut = tail.rfind(mark)
            if cut <= 0:
                continue
            chunks = tail[:cut].split(mark)
            tail = tail[cut:]
        for chunk in chunks:
            if chunk:
                yield _raw_entry(chunk.decode("utf-8", "surrogateescape"))


def _raw_entry(chunk: str) -> LogEntry:
    parts = chunk.split("\0", 7)
    sha, parents, author, email, date, message, note = parts[:7]
    rest = parts[7].lstrip("\0\n").split("\0") if len(parts) > 7 else []
    changes = []
    for i in range(0, len(rest) - 1, 2):
        meta = rest[i].lstrip(":").split(" ")
        if len(meta) < 5:
            continue
        changes.append((rest[i + 1], meta[1], meta[3], meta[4][:1]))
    return LogEntry(sha, tuple(parents.split()), author, date, message, note.strip(),
                    email=email, changes=tuple(changes))


def read_blobs(root: PathLike, specs: Iterable[str]) -> Iterator[tuple[str, bytes] | None]:
    """The objects ``specs`` name (``REV:PATH``), in order, as (object type, content) or None
    for a missing one: one ``git cat-file --batch``, read as git writes it (metrics of every
    commit of a history without holding them all; ``specs`` may be a generator, read
    whole before git starts)."""
    data = bytearray()
    left = 0
    for s in specs:
        data += f"{s}\n".encode("utf-8", "surrogateescape")
        left += 1
    del specs  # git has them (the generator keeps no list of a whole history)
    if not left:
        return
    pieces = stream_git(["cat-file", "--batch"], root, input=bytes(data))
    del data
    buf = bytearray()
    for piece in pieces:
        buf += piece
        pos = 0
        while left:
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            parts = buf[pos:end].split()
            if len(parts) == 3 and parts[2].isdigit():
                size = int(parts[2])
                if len(buf) < end + 2 + size:  # the content (and its newline) is not all here
                    break
                yield parts[1].decode(), bytes(buf[end + 1:end + 1 + size])
                pos = end + 2 + size
            else:
                yield None
                pos = end + 1
            left -= 1
        del buf[:pos]


def iter_log(root: PathLike, revs: Sequence[str], *, reverse: bool = True,
             topo: bool = True, extra: Sequence[str] = (),
             notes_ref: str | Sequence[str] | None = None) -> list[LogEntry]:
    """:func:`read_log` as a list, oldest first in topological order by default."""
    return list(read_log(root, revs, reverse=reverse, topo=topo, extra=extra,
                         notes_refs=notes_ref))


def is_ancestor(root: PathLike, ancestor: str, descendant: str) -> bool:
    return call_git_success(["merge-base", "--is-ancestor", ancestor, descendant], root)


def rev_list(root: PathLike, revs: Sequence[str]) -> list[str]:
    return call_git_lines(["rev-list", *revs, "--"], root)


def rev_list_trees(root: PathLike, revs: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(commit, its tree) of each commit ``git rev-list REVS`` lists, in its order, as git
    writes them: a file of a commit read as ``TREE:PATH`` spares ``cat-file`` reading the
    commit again (half its time over a long history)."""
    carry: list[bytes] = []
    buf = b""
    for piece in stream_git(["rev-list", "--format=%T", *revs, "--"], root):
        buf += piece
        cut = buf.rfind(b"\n") + 1
        if not cut:
            continue
        words = carry + buf[:cut].split()  # "commit SHA\nTREE\n" each
        buf = buf[cut:]
        whole = len(words) - len(words) % 3
        for i in range(0, whole, 3):
            yield words[i + 1].decode(), words[i + 2].decode()
        carry = words[whole:]


def first_parent_chain(root: PathLike, tip: str, exclude: str) -> list[tuple[str, ...]]:
    """(commit, parent, ...) of each commit on ``tip``'s first-parent line that ``exclude``
    does not contain, newest first."""
    lines = call_git_lines(["rev-list", "--first-parent", "--parents", tip, f"^{exclude}",
                            "--"], root)
    return [tuple(line.split()) for line in lines if line]


def commit_message(root: PathLike, rev: str) -> str:
    """The raw message of commit ``rev`` (as git stores it, %B)."""
    return call_git(["log", "-1", "--format=%B", rev, "--"], root)


def describe(root: PathLike, sha: str) -> str:
    out = call_git_optional(["describe", "--tags", "--always", sha], root)
    return out.strip() if out else sha


def last_commit_touching(root: PathLike, path: str) -> str | None:
    """The newest commit on HEAD that changed ``path`` (None without one)."""
    out = call_git_optional(["rev-list", "-n1", "HEAD", "--", path], root)
    return (out or "").strip() or None


def head_commit_time(root: PathLike) -> int | None:
    """HEAD's committer time (seconds since the epoch), or None without a commit."""
    out = call_git_optional(["log", "-1", "--format=%ct", "HEAD"], root)
    return int(out.strip()) if out and out.strip().isdigit() else None


def unpushed_commits(root: PathLike) -> list[str]:
    """Commits of HEAD and the local branches (not git-annex's own) that no remote-tracking
    branch has: what is lost with this repository."""
    if head_sha(root) is None:
        return []
    return call_git_lines(["rev-list", "HEAD", "--exclude=git-annex", "--exclude=synced/*",
                           "--branches", "--not", "--remotes"], root)


def commits_only_here(root: PathLike) -> list[str]:
    """Commits that are lost with this repository: those of HEAD, the local branches (not
    git-annex's own), the tags and the stash that no sibling has *now*.  What a sibling has
    is asked of it (``git ls-remote``): a remote-tracking ref is only what it had when last
    fetched, and a sibling that no longer answers proves nothing."""
    if head_sha(root) is None:
        return []
    have: list[str] = []
    for name in _remote_names(root):
        done = run(["ls-remote", "--heads", "--tags", "--", name], root, check=False)
        if done.returncode != 0:
            continue
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            sha = line.split("\t", 1)[0].strip()
            if len(sha) in (40, 64) and all(c in "0123456789abcdef" for c in sha):
                have.append(sha)
    stash = call_git_optional(["log", "-g", "--format=%H", "refs/stash"], root) or ""
    starts = ["HEAD", "--exclude=git-annex", "--exclude=synced/*", "--branches", "--tags",
              *stash.split()]
    out = run(["rev-list", "--ignore-missing", *starts, "--not", *sorted(set(have))], root,
              check=False)
    return out.stdout.decode("utf-8", "replace").split()


def _remote_names(root: PathLike) -> list[str]:
    return call_git_lines(["remote"], root)


def ignored_paths(root: PathLike) -> list[str]:
    """Ignored files in the worktree (a directory of them as ``dir/``): never saved, they
    exist only here."""
    out = call_git_optional(["ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                             "--directory"], root) or ""
    return [p for p in out.split("\0") if p]


# --- notes ------------------------------------------------------------------------------

NOTES_REF = "rr"  # durations of runs
VERIFY_NOTES_REF = "rr-verify"  # verdicts of rr rerun --verify, one JSON line each
NOTES_REFS = (NOTES_REF, VERIFY_NOTES_REF)  # rr's notes refs: pushed, cloned, updated alike
NOTES_SIDE = "refs/notes/rr-remotes"  # a sibling's notes, fetched beside ours to be merged


def notes_side(ref: str, remote: str) -> str:
    """Where a sibling's notes of rr's notes ref ``ref`` are fetched to, beside ours (under
    refs/notes/ so that ``git notes merge`` takes it): refs/notes/rr-remotes/REMOTE for the
    durations, refs/notes/REF-remotes/REMOTE for the others."""
    return f"{NOTES_SIDE}/{remote}" if ref == NOTES_REF else f"refs/notes/{ref}-remotes/{remote}"


def add_note(root: PathLike, sha: str, text: str) -> None:
    """Attach ``text`` to a commit in rr's notes ref (facts kept out of the run record, so
    the record stays byte-identical to DataLad's)."""
    run(["notes", f"--ref={NOTES_REF}", "add", "-f", "-m", text, sha], root, check=False)


def merge_notes(root: PathLike, ref: str, into: str = NOTES_REF) -> None:
    """Merge the notes in ``ref`` into rr's notes ref ``into``: the union of both
    (``cat_sort_uniq``: a commit noted on both sides keeps the lines of both, none twice), so
    no note is lost."""
    call_git(["notes", f"--ref={into}", "merge", "--quiet", "-s", "cat_sort_uniq", ref],
             root)


def append_notes(root: PathLike, ref: str, lines: Mapping[str, Sequence[str]]) -> str | None:
    """Add lines to the notes of many commits (commit -> lines) in notes ref ``ref`` with
    one notes commit: the existing notes read with one ``git notes list`` and one
    ``cat-file --batch``, the new notes written with one ``git fast-import``, the ref moved
    with one ``update-ref`` (if it moved meanwhile, the two are merged with cat_sort_uniq).
    Each note's lines come out sorted and unique, as ``git notes merge -s cat_sort_uniq``
    leaves them.  The new notes commit, None when there was nothing to add."""
    todo = {sha: list(new) for sha, new in lines.items() if new}
    if not todo:
        return None
    full = f"refs/notes/{ref}"
    tip = resolve_commit(root, full)
    blobs: dict[str, str] = {}
    if tip:
        for row in call_git_lines(["notes", f"--ref={ref}", "list"], root):
            parts = row.split()
            if len(parts) == 2 and parts[1] in todo:
                blobs[parts[1]] = parts[0]
    old = cat_file_batch(root, list(blobs.values()))
    tmp = f"refs/rr/notes-{os.getpid()}-{time.time_ns()}"
    out = [f"commit {tmp}\nmark :1\ncommitter rr <rr@localhost> {int(time.time())} +0000\n"
           "data 0\n".encode()]
    if tip:
        out.append(f"from {tip}\n".encode())
    for sha, new in sorted(todo.items()):
        have = old.get(blobs.get(sha, ""))
        text = have[1].decode("utf-8", "surrogateescape").splitlines() if have else []
        data = "".join(f"{x}\n" for x in sorted(set(text + new)) if x).encode(
            "utf-8", "surrogateescape")
        out.append(f"N inline {sha}\ndata {len(data)}\n".encode() + data + b"\n")
    out.append(b"\ndone\n")
    marks = os.path.join(git_dir(root), f"{tmp.rsplit('/', 1)[-1]}.marks")
    try:
        fast_import(root, b"".join(out), marks)
        with open(marks, encoding="utf-8") as fh:
            new_tip = fh.read().split()[1]
    finally:
        if os.path.exists(marks):
            os.unlink(marks)
    try:  # only when nobody moved the notes meanwhile: else their notes would be lost
        update_refs(root, [f"update {full} {new_tip} {tip or '0' * len(new_tip)}",
                           f"delete {tmp}"])
    except CommandError:  # moved meanwhile: the union of both
        merge_notes(root, tmp, into=ref)
        update_refs(root, [f"delete {tmp}"])
    return new_tip


# --- the older readers, kept as lists ------------------------------------------------------


def iter_run_log(root: PathLike, revs: Sequence[str], *, all_branches: bool = False,
                 notes_refs: Sequence[str] = NOTES_REFS) -> list[LogEntry]:
    """The run commits of ``revs`` (or with ``all_branches`` of every branch and
    remote-tracking branch but git-annex's), newest first, with their notes and the ref each
    was reached from: :func:`read_log` as a list."""
    return list(read_log(root, revs, runs_only=True, source=True, all_branches=all_branches,
                         notes_refs=list(notes_refs)))


def iter_log_raw(root: PathLike, revs: Sequence[str],
                 notes_ref: str | Sequence[str] | None = None) -> list[LogEntry]:
    """:func:`read_log` with ``raw`` as a list: newest first in topological order, each
    commit's paths changed against its first parent."""
    return list(read_log(root, revs, raw=True, notes_refs=notes_ref))
