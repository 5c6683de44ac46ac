"""Many notes in one notes commit: what ``git notes add -f`` one note at a time would leave,
written with a handful of processes (a replay's duration notes)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from ..errors import CommandError
from ._runner import PathLike, call_git, git_dir, run
from .commit import stripspace
from .history import NOTES_REF
from .objects import fast_import
from .refs import resolve_commit, update_refs

NOTES_MESSAGE = "Notes added by 'git notes add'\n"  # git notes add's own commit message


def add_notes(root: PathLike, notes: Mapping[str, str], ref: str = NOTES_REF) -> str | None:
    """Attach ``notes`` (commit -> text, as ``git notes add -f -m TEXT COMMIT``) to commits in
    notes ref ``ref`` with ONE notes commit on its tip; the new notes commit (None: nothing
    to add).

    The tree is the one ``git notes add -f`` of each note in turn leaves, byte for byte: git's
    own notes code writes it (its fan-out heuristic is not fast-import's), by a history-less
    ``git notes merge -s theirs`` of a side commit that holds the new notes alone into a
    temporary notes ref at the old tip (or at an empty tree); the merged tree is then
    committed on the old tip with git notes add's message.  Four processes (fast-import,
    notes merge, commit-tree, update-ref) however many notes.  If the ref moved meanwhile,
    both are merged (the new notes win, as with ``add -f``)."""
    todo = {sha: stripspace(text) for sha, text in notes.items()}
    if not todo:
        return None
    full = f"refs/notes/{ref}"
    tip = resolve_commit(root, full)
    tag = f"{os.getpid()}-{time.time_ns()}"
    side, local = f"refs/rr/notes-side-{tag}", f"refs/notes/rr-merging-{tag}"
    stamp = f"rr <rr@localhost> {int(time.time())} +0000"
    stream = [f"commit {side}\nmark :1\ncommitter {stamp}\ndata 0\n".encode()]
    for sha, text in sorted(todo.items()):
        data = text.encode("utf-8", "surrogateescape")
        stream.append(f"N inline {sha}\ndata {len(data)}\n".encode() + data + b"\n")
    if tip:
        stream.append(f"reset {local}\nfrom {tip}\n".encode())
    else:  # nothing noted yet: merged into an empty tree (no fast-forward to the side commit)
        stream.append(f"commit {local}\nmark :2\ncommitter {stamp}\ndata 0\n".encode())
    stream.append(b"\ndone\n")
    marks = os.path.join(git_dir(root), f"rr-notes-{tag}.marks")
    temporary = f"delete {side}\ndelete {local}\n"
    try:
        try:
            fast_import(root, b"".join(stream), marks)
        finally:
            if os.path.exists(marks):
                os.unlink(marks)
        call_git(["notes", f"--ref={local}", "merge", "-q", "-s", "theirs", side], root)
        new = call_git(["commit-tree", f"{local}^{{tree}}", *(["-p", tip] if tip else [])],
                       root, input=NOTES_MESSAGE.encode()).strip()
        try:  # only when nobody moved the notes meanwhile: else their notes would be lost
            update_refs(root, [f"update {full} {new} {tip or '0' * len(new)}",
                               f"delete {side}", f"delete {local}"])
            temporary = ""
        except CommandError:  # moved meanwhile: the union of both, ours winning
            call_git(["notes", f"--ref={ref}", "merge", "-q", "-s", "theirs", new], root)
        return new
    finally:
        if temporary:
            run(["update-ref", "--stdin"], root, check=False, input=temporary.encode())
