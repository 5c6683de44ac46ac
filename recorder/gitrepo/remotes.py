"""Remotes and bringing histories together: clone, fetch, push, merge, cherry-pick.

Fetch, push, merge and cherry-pick return a typed outcome (never git's raw process result):
its ``status`` says what happened and ``why`` is the one line of git's output the user is
shown, picked here so that no caller parses git's stderr.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from typing import NamedTuple

from .. import config as cfgkeys
from .. import proc
from ..errors import CommandError
from ._runner import PathLike, call_git, call_git_lines, call_git_optional, run
from .config import config_list
from .refs import resolve_commit
from .history import NOTES_REFS, notes_side
from .index import unmerged_paths
from .refs import current_branch


class GitStatus(enum.Enum):
    OK = "ok"
    REJECTED = "rejected"  # push: the sibling refused a ref (it has commits we lack)
    CONFLICT = "conflict"  # merge, cherry-pick: stopped at conflicts, git's state left
    FAILED = "failed"      # anything else (no such remote, network, refused to start...)


class FetchOutcome(NamedTuple):  # immutable; cheaper than a dataclass at start-up
    status: GitStatus
    why: str = ""  # the last line git wrote, or 'git fetch exited N'

    @property
    def ok(self) -> bool:
        return self.status is GitStatus.OK


class PushOutcome(NamedTuple):  # immutable; cheaper than a dataclass at start-up
    status: GitStatus
    rejected: tuple[str, ...] = ()  # git's porcelain lines of the refs refused ('!' lines)
    why: str = ""  # the last line git wrote

    @property
    def ok(self) -> bool:
        return self.status is GitStatus.OK

    def refused(self, ref: str) -> bool:
        """Whether the push of the local ref ``ref`` (``refs/heads/main``...) was refused."""
        return any(f"{ref}:" in line for line in self.rejected)


class MergeOutcome(NamedTuple):  # immutable; cheaper than a dataclass at start-up
    """The outcome of a merge or a cherry-pick."""

    status: GitStatus
    conflicts: tuple[str, ...] = ()  # the unmerged paths git left
    why: str = ""  # for a merge: git's 'error:'/'fatal:' line (else its first line)
    first_line: str = ""  # the first line git wrote (what a stopped cherry-pick shows)

    @property
    def ok(self) -> bool:
        return self.status is GitStatus.OK


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


def clone(source: str, dest: PathLike, cwd: PathLike) -> None:
    call_git(["clone", "-q", "--", source, os.fspath(dest)], cwd)


def remotes(root: PathLike) -> dict[str, str]:
    """name -> URL of every remote, as configured (read from git's config, NUL-separated: a
    URL may hold spaces, which ``git remote -v`` output cannot show apart)."""
    result = {}
    for key, value in config_list(root):
        parts = cfgkeys.key_parts(key, "remote")
        if parts is not None and parts[1] == "url" and parts[0] not in result:
            result[parts[0]] = value
    return result


def remote_remove(root: PathLike, name: str) -> None:
    """``git remote remove NAME``: its URL, config and remote-tracking refs go."""
    call_git(["remote", "remove", "--", name], root)


def remote_add(root: PathLike, name: str, url: str) -> None:
    call_git(["remote", "add", name, url], root)


def tracking_remote(root: PathLike) -> str | None:
    """The remote the current branch tracks (None: detached, or it tracks none)."""
    branch = current_branch(root)
    if not branch:
        return None
    out = call_git_optional(["for-each-ref", "--format=%(upstream:remotename)",
                             f"refs/heads/{branch}"], root)
    return (out or "").strip() or None


def remotes_containing(root: PathLike, sha: str) -> list[str]:
    """Names of the remotes whose remote-tracking branches contain commit ``sha``."""
    names = sorted(remotes(root), key=len, reverse=True)
    out: list[str] = []
    for ref in call_git_lines(["for-each-ref", "--format=%(refname:strip=2)",
                               f"--contains={sha}", "refs/remotes"], root):
        name = next((n for n in names if ref.startswith(n + "/")), None)
        if name and name not in out:
            out.append(name)
    return out


# --- fetch ------------------------------------------------------------------------------


def fetch(root: PathLike, remote: str) -> FetchOutcome:
    """``git fetch REMOTE`` with its configured refspecs (branches, the git-annex branch, and
    tags on the fetched history); only remote-tracking refs move."""
    done = run(["fetch", "--quiet", "--", remote], root, check=False)
    if done.returncode == 0:
        return FetchOutcome(GitStatus.OK)
    text = _text(done.stderr).strip()
    return FetchOutcome(GitStatus.FAILED, text.splitlines()[-1] if text else
                        f"git fetch exited {done.returncode}")


def fetch_branch(root: PathLike, remote: str, branch: str) -> None:
    """``git fetch REMOTE BRANCH`` (into FETCH_HEAD and its remote-tracking branch); a failure
    raises CommandError."""
    call_git(["fetch", "-q", remote, branch], root)


def fetch_commit(root: PathLike, remote: str, sha: str) -> bool:
    """Fetch one commit by its id (one that is on none of the remote's branches: git's
    protocol v2 allows that where the remote has it); whether it is here now."""
    done = run(["fetch", "--quiet", "--no-tags", "--", remote, sha], root, check=False)
    return done.returncode == 0 and resolve_commit(root, sha) is not None


def fetch_notes(root: PathLike, remote: str) -> dict[str, str]:
    """Fetch the sibling's notes of each of rr's notes refs (``NOTES_REFS``) into a side ref
    (``notes_side``: refs/notes/rr-remotes/REMOTE for the durations, kept under refs/notes/
    so that ``git notes merge`` takes it); ours do not move.  Which of them the sibling has
    is asked first (one ``ls-remote``), then those are fetched with one ``fetch``.  Our
    notes ref -> its side ref, for the notes the sibling has (empty when it has none).
    Raises CommandError when the fetch fails."""
    wanted = [f"refs/notes/{ref}" for ref in NOTES_REFS]
    done = run(["ls-remote", "--", remote, *wanted], root, check=False)
    if done.returncode != 0:
        raise CommandError(["git", "ls-remote", remote, *wanted], done.returncode,
                           _text(done.stderr))
    there = {line.split()[-1] for line in _text(done.stdout).splitlines() if line.strip()}
    sides = {ref: notes_side(ref, remote) for ref in NOTES_REFS if f"refs/notes/{ref}" in there}
    if not sides:
        return {}
    specs = [f"+refs/notes/{ref}:{side}" for ref, side in sides.items()]
    done = run(["fetch", "--quiet", "--no-tags", "--", remote, *specs], root, check=False)
    if done.returncode != 0:
        raise CommandError(["git", "fetch", remote, *specs], done.returncode,
                           _text(done.stderr))
    return sides


# --- push -------------------------------------------------------------------------------


def push(root: PathLike, remote: str, refspecs: Sequence[str]) -> PushOutcome:
    """``git push --porcelain REMOTE REFSPECS``: OK, REJECTED (the sibling has commits this
    repository lacks: non-fast-forward, fetch first) or FAILED."""
    done = run(["push", "--porcelain", remote, *refspecs], root, check=False)
    if done.returncode == 0:
        return PushOutcome(GitStatus.OK)
    text = _text(done.stdout + done.stderr)
    rejected = tuple(line for line in text.splitlines() if line.startswith("!"))
    refused = "non-fast-forward" in text or "rejected" in text or "fetch first" in text
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return PushOutcome(GitStatus.REJECTED if refused else GitStatus.FAILED, rejected, last)


# --- merge and cherry-pick --------------------------------------------------------------


def _merge_outcome(root: PathLike, done: proc.CompletedProcess[bytes]) -> MergeOutcome:
    if done.returncode == 0:
        return MergeOutcome(GitStatus.OK)
    conflicts = tuple(unmerged_paths(root))
    lines = [ln.strip() for ln in _text(done.stderr or done.stdout).splitlines() if ln.strip()]
    why = next((ln for ln in lines if ln.startswith(("error:", "fatal:"))),
               lines[0] if lines else f"git exited {done.returncode}")
    both = _text(done.stdout + done.stderr).strip().splitlines()
    return MergeOutcome(GitStatus.CONFLICT if conflicts else GitStatus.FAILED, conflicts, why,
                        both[0] if both else "")


def merge_into_head(root: PathLike, rev: str, *, ff_only: bool) -> MergeOutcome:
    """``git merge`` of ``rev`` into the current branch (fast-forward when possible); on a
    conflict git leaves its usual merge state."""
    done = run(["merge", "--no-edit", "--ff-only" if ff_only else "--ff", rev], root,
               check=False, env={"GIT_MERGE_AUTOEDIT": "no"})
    return _merge_outcome(root, done)


def merge_commits(root: PathLike, parents: Sequence[str], message: str) -> MergeOutcome:
    """``git merge --no-ff`` of ``parents`` into HEAD with ``message`` (a replayed merge)."""
    done = run(["merge", "-q", "--no-ff", "--allow-unrelated-histories", "-m", message,
                *parents], root, check=False)
    return _merge_outcome(root, done)


def cherry_pick_commit(root: PathLike, sha: str) -> MergeOutcome:
    """``git cherry-pick`` of ``sha`` onto HEAD (an empty or redundant commit kept)."""
    done = run(["cherry-pick", "--allow-empty", "--keep-redundant-commits", sha], root,
               check=False)
    return _merge_outcome(root, done)
