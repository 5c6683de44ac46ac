"""History and notes: commit logs, ancestry, rr's notes ref."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from ..errors import CommandError
from ._runner import (PathLike, call_git, call_git_lines, call_git_optional, call_git_success,
                      git_dir, run)
from .objects import cat_file_batch, fast_import
from .refs import head_sha, resolve_commit, update_refs


class LogEntry(NamedTuple):
    sha: str
    parents: tuple[str, ...]
    author: str
    date: str  # strict ISO 8601 author date
    message: str  # the raw message (%B)
    note: str = ""


def iter_log(root: PathLike, revs: Sequence[str], *, reverse: bool = True,
             topo: bool = True, extra: Sequence[str] = (),
             notes_ref: str | Sequence[str] | None = None) -> list[LogEntry]:
    """One ``git log`` call for a whole range: sha, parents, author, date and message
    (and with ``notes_ref``, one notes ref or several, the notes of each commit in them,
    one after the other)."""
    refs = [notes_ref] if isinstance(notes_ref, str) else list(notes_ref or [])
    fields = 6 if refs else 5
    fmt = "%H%x00%P%x00%an%x00%aI%x00%B" + ("%x00%N" if refs else "")
    args = ["log", "-z", f"--format={fmt}"]
    args += [f"--notes={ref}" for ref in refs]
    if reverse:
        args.append("--reverse")
    if topo:
        args.append("--topo-order")
    args += [*extra, *revs, "--"]
    items = call_git(args, root).split("\0")
    # the fields of every entry, column by column (zip stops at the last whole entry)
    notes = items[5::fields] if refs else [""] * (len(items) // fields)
    return [LogEntry(sha.strip(), tuple(parents.split()), author, date, message, note.strip())
            for sha, parents, author, date, message, note in zip(
                items[0::fields], items[1::fields], items[2::fields], items[3::fields],
                items[4::fields], notes)]


def is_ancestor(root: PathLike, ancestor: str, descendant: str) -> bool:
    return call_git_success(["merge-base", "--is-ancestor", ancestor, descendant], root)


def rev_list(root: PathLike, revs: Sequence[str]) -> list[str]:
    return call_git_lines(["rev-list", *revs, "--"], root)


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


# --- the run log of rr runs and rr report -----------------------------------------------------

RUN_GREP = "--grep=^\\[DATALAD RUNCMD\\]"  # run commits only: DataLad's tag opens the message


class SourcedLogEntry(NamedTuple):
    sha: str
    parents: tuple[str, ...]
    author: str
    date: str  # strict ISO 8601 author date
    message: str  # the raw message (%B)
    note: str  # the notes of each of ``notes_refs``, one after the other
    source: str  # the ref the commit was reached from (git log --source: refs/heads/NAME, HEAD)


def iter_run_log(root: PathLike, revs: Sequence[str], *, all_branches: bool = False,
                 notes_refs: Sequence[str] = NOTES_REFS) -> list[SourcedLogEntry]:
    """The run commits of ``revs`` (or with ``all_branches`` of every branch and remote-tracking
    branch but git-annex's),
    newest first, with their notes and the ref each was reached from: one ``git log``."""
    fmt = "%H%x00%P%x00%an%x00%aI%x00%B%x00%N%x00%S"
    args = ["log", "-z", "--source", f"--format={fmt}", RUN_GREP]
    args += [f"--notes={ref}" for ref in notes_refs]
    if all_branches:
        # the siblings' branches too (what rr update fetched), as rr metrics show -a reads them
        args += ["--exclude=git-annex", "--exclude=synced/*", "--branches",
                 "--exclude=*/git-annex", "--exclude=*/HEAD", "--exclude=*/synced/*",
                 "--remotes"]
    args += [*revs, "--"]
    items = call_git(args, root).split("\0")
    entries = []
    for i in range(0, len(items) - 6, 7):
        sha, parents, author, date, message, note, source = items[i:i + 7]
        entries.append(SourcedLogEntry(sha.strip(), tuple(parents.split()), author, date,
                                       message, note.strip(), source.strip()))
    return entries


class RawLogEntry(NamedTuple):
    """One commit of :func:`iter_log_raw`: its log fields and what it changed."""

    sha: str
    parents: tuple[str, ...]
    author: str
    email: str
    date: str  # strict ISO 8601 author date
    message: str  # the raw message (%B)
    note: str
    changes: tuple[tuple[str, str, str, str], ...]  # (path, new mode, new blob, letter)


_RAW_MARK = "\x01rr-commit\x01"


def iter_log_raw(root: PathLike, revs: Sequence[str],
                 notes_ref: str | Sequence[str] | None = None) -> list[RawLogEntry]:
    """One ``git log --raw`` for a whole range, newest first in topological order: each
    commit's fields with the paths it changed against its first parent (merges list none);
    a deletion has mode '000000'."""
    refs = [notes_ref] if isinstance(notes_ref, str) else list(notes_ref or [])
    fmt = f"{_RAW_MARK}%H%x00%P%x00%an%x00%ae%x00%aI%x00%B%x00{'%N' if refs else ''}%x00"
    args = ["log", "-z", "--raw", "--no-abbrev", "--no-renames", "--topo-order",
            f"--format={fmt.replace(chr(1), '%x01')}"]
    args += [f"--notes={ref}" for ref in refs] if refs else ["--no-notes"]
    out = call_git([*args, *revs, "--"], root)
    entries = []
    for chunk in out.split(_RAW_MARK)[1:]:
        parts = chunk.split("\0", 7)
        sha, parents, author, email, date, message, note = parts[:7]
        rest = parts[7].lstrip("\0\n").split("\0") if len(parts) > 7 else []
        changes = []
        for i in range(0, len(rest) - 1, 2):
            meta = rest[i].lstrip(":").split(" ")
            if len(meta) < 5:
                continue
            changes.append((rest[i + 1], meta[1], meta[3], meta[4][:1]))
        entries.append(RawLogEntry(sha, tuple(parents.split()), author, email, date, message,
                                   note.strip(), tuple(changes)))
    return entries
