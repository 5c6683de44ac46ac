"""History and notes: commit logs, ancestry, rr's notes ref."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ._runner import (PathLike, call_git, call_git_lines, call_git_optional, call_git_success,
                      run)
from .refs import head_sha


class LogEntry(NamedTuple):
    sha: str
    parents: tuple[str, ...]
    author: str
    date: str  # strict ISO 8601 author date
    message: str  # the raw message (%B)
    note: str = ""


def iter_log(root: PathLike, revs: Sequence[str], *, reverse: bool = True,
             topo: bool = True, extra: Sequence[str] = (),
             notes_ref: str | None = None) -> list[LogEntry]:
    """One ``git log`` call for a whole range: sha, parents, author, date and message
    (and with ``notes_ref`` the note of each commit in that notes ref)."""
    fields = 6 if notes_ref else 5
    fmt = "%H%x00%P%x00%an%x00%aI%x00%B" + ("%x00%N" if notes_ref else "")
    args = ["log", "-z", f"--format={fmt}"]
    if notes_ref:
        args.append(f"--notes={notes_ref}")
    if reverse:
        args.append("--reverse")
    if topo:
        args.append("--topo-order")
    args += [*extra, *revs, "--"]
    items = call_git(args, root).split("\0")
    entries = []
    for i in range(0, len(items) - (fields - 1), fields):
        sha, parents, author, date, message = items[i:i + 5]
        note = items[i + 5] if notes_ref else ""
        entries.append(LogEntry(sha.strip(), tuple(parents.split()), author, date, message,
                                note.strip()))
    return entries


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


# --- notes ------------------------------------------------------------------------------

NOTES_REF = "rr"
NOTES_SIDE = "refs/notes/rr-remotes"  # a sibling's notes, fetched beside ours to be merged


def add_note(root: PathLike, sha: str, text: str) -> None:
    """Attach ``text`` to a commit in rr's notes ref (facts kept out of the run record, so
    the record stays byte-identical to DataLad's)."""
    run(["notes", f"--ref={NOTES_REF}", "add", "-f", "-m", text, sha], root, check=False)


def merge_notes(root: PathLike, ref: str) -> None:
    """Merge the notes in ``ref`` into rr's: the union of both (``cat_sort_uniq``: a commit
    noted on both sides keeps the lines of both, none twice), so no note is lost."""
    call_git(["notes", f"--ref={NOTES_REF}", "merge", "--quiet", "-s", "cat_sort_uniq", ref],
             root)
