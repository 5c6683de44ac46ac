"""The only module that spawns git.  Functions are named by what they return."""

from __future__ import annotations

from typing import NamedTuple

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import proc
from .errors import CommandError, RecorderError

PathLike = str | os.PathLike[str]


def _git(
    args: Sequence[str],
    cwd: PathLike,
    *,
    input: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
):
    return proc.capture(["git", *args], cwd=cwd, input=input, check=check, env=env)


def call_git(args: Sequence[str], cwd: PathLike, *, input: bytes | None = None,
             env: dict[str, str] | None = None) -> str:
    """stdout of ``git ARGS`` as text."""
    return _git(args, cwd, input=input, env=env).stdout.decode("utf-8", "surrogateescape")


def call_git_lines(args: Sequence[str], cwd: PathLike) -> list[str]:
    return call_git(args, cwd).splitlines()


def call_git_z(args: Sequence[str], cwd: PathLike, *, input: bytes | None = None) -> list[str]:
    """NUL-separated stdout of ``git ARGS`` as a list (empty items dropped at the end)."""
    out = call_git(args, cwd, input=input)
    items = out.split("\0")
    if items and items[-1] == "":
        items.pop()
    return items


def call_git_success(args: Sequence[str], cwd: PathLike) -> bool:
    return _git(args, cwd, check=False).returncode == 0


def call_git_optional(args: Sequence[str], cwd: PathLike) -> str | None:
    """stdout of ``git ARGS``, or None when git exits non-zero."""
    proc_ = _git(args, cwd, check=False)
    if proc_.returncode != 0:
        return None
    return proc_.stdout.decode("utf-8", "surrogateescape")


def nul_paths(paths: Iterable[str]) -> bytes:
    return b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)


# --- repository level ------------------------------------------------------------------


def init(path: PathLike) -> None:
    call_git(["init", "-q"], path)


def head_sha(root: PathLike) -> str | None:
    """The commit HEAD points to (None before the first commit).  Read from HEAD and a loose
    branch ref when they are plain files (git writes both atomically), else asked of git."""
    fast = _head_from_files(Path(git_dir(root)))
    if fast is not None:
        return fast
    out = call_git_optional(["rev-parse", "-q", "--verify", "HEAD^{commit}"], root)
    return out.strip() if out else None


def _is_object_id(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _head_from_files(gd: Path) -> str | None:
    try:
        head = (gd / "HEAD").read_text(encoding="ascii", errors="replace").strip()
        if _is_object_id(head):
            return head  # detached
        if not head.startswith("ref: refs/heads/") or ".." in head:
            return None
        ref = head[len("ref: "):]
        common = gd
        if (gd / "commondir").is_file():  # a linked worktree: branches live in the main one
            common = (gd / (gd / "commondir").read_text().strip()).resolve()
        sha = (common / ref).read_text(encoding="ascii", errors="replace").strip()
        return sha if _is_object_id(sha) else None
    except OSError:
        return None  # packed, unborn, or not plain files: git knows


def current_branch(root: PathLike) -> str | None:
    """The branch HEAD is on (None when detached), read from HEAD itself when it is a plain
    file (no process), else from git."""
    try:
        text = (Path(git_dir(root)) / "HEAD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if text.startswith("ref: refs/heads/"):
        return text[len("ref: refs/heads/"):].strip()
    if text and not text.startswith("ref:"):
        return None  # detached: HEAD holds a commit id
    out = call_git_optional(["symbolic-ref", "-q", "--short", "HEAD"], root)
    return out.strip() if out else None


def resolve_commit(root: PathLike, rev: str) -> str | None:
    out = call_git_optional(["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], root)
    return out.strip() if out else None


class StatusEntry(NamedTuple):  # a NamedTuple: cheaper than a dataclass at start-up
    """One path from ``git status --porcelain=v2``.

    ``state`` is one of added, modified, deleted, typechange, renamed, untracked, unmerged.
    ``submodule`` is true for a subdataset entry.
    """

    path: str
    state: str
    submodule: bool = False
    staged: bool = False
    sub_dirty: bool = False  # a subdataset with uncommitted changes inside
    worktree: bool = True  # the worktree differs from the index (False: fully staged)
    head_mode: str = ""  # the octal mode in HEAD ("000000": not in HEAD; "120000": a symlink)


_XY_STATE = {"A": "added", "M": "modified", "D": "deleted", "T": "typechange", "R": "renamed",
             "C": "added"}


def iter_status(
    root: PathLike,
    paths: Sequence[str] | None = None,
    *,
    untracked: str = "normal",
    ignore_submodules: str = "none",
) -> list[StatusEntry]:
    """Parse ``git status --porcelain=v2 -z`` (one call) into entries."""
    args = ["status", "--porcelain=v2", "-z", f"--untracked-files={untracked}",
            f"--ignore-submodules={ignore_submodules}"]
    if paths is not None:
        # git status has no --pathspec-from-file: pass literal pathspecs in argv chunks
        out = _call_git_z_paths(args, root, paths)
    else:
        out = call_git_z(args, root)
    entries: list[StatusEntry] = []
    i = 0
    while i < len(out):
        item = out[i]
        kind = item[:1]
        if kind == "1":
            parts = item.split(" ", 8)
            xy, sub, path = parts[1], parts[2], parts[8]
            entries.append(_entry(path, xy, sub, parts[3]))
        elif kind == "2":
            parts = item.split(" ", 9)
            xy, sub, path = parts[1], parts[2], parts[9]
            orig = out[i + 1]
            i += 1
            entries.append(_entry(path, xy, sub, parts[3]))
            entries.append(StatusEntry(orig, "deleted", staged=True, worktree=False))
        elif kind == "u":
            parts = item.split(" ", 10)
            entries.append(StatusEntry(parts[10], "unmerged", parts[2].startswith("S")))
        elif kind == "?":
            entries.append(StatusEntry(item[2:], "untracked"))
        i += 1
    return entries


def _argv_chunks(paths: Sequence[str], limit: int = 100_000) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for p in paths:
        if chunks[-1] and size + len(p) > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(p)
        size += len(p) + 1
    return chunks if chunks[0] else []


def _entry(path: str, xy: str, sub: str, head_mode: str = "") -> StatusEntry:
    x, y = xy[0], xy[1]
    # the worktree state wins: a staged add that was deleted again is a deletion
    code = y if y != "." else x
    state = _XY_STATE.get(code, "modified")
    if x == "A" and y == "M":
        state = "added"
    dirty_inside = sub.startswith("S") and (sub[2] == "M" or sub[3] == "U")
    return StatusEntry(path, state, submodule=sub.startswith("S"), staged=x != ".",
                       sub_dirty=dirty_inside, worktree=y != ".", head_mode=head_mode)


def add(root: PathLike, paths: Sequence[str], *, update_only: bool = False) -> None:
    """``git add -A`` of exactly ``paths`` (literal pathspecs, fed on stdin)."""
    if not paths:
        return
    args = ["add", "-A" if not update_only else "-u", "--pathspec-from-file=-", "--pathspec-file-nul"]
    call_git(args, root, input=nul_paths(paths), env={"GIT_LITERAL_PATHSPECS": "1"})


def commit(root: PathLike, message: str, *, only: Sequence[str] | None = None,
           allow_empty: bool = False, hooks_path: str | None | bool = False,
           head: str | None = None, plain: bool = False) -> str:
    """Commit the index (or, with ``only``, just those paths) and return the new sha.

    The message gets git's 'whitespace' cleanup exactly as for ``git commit -F`` (which is
    how DataLad commits).  ``plain`` (the caller checked git's config: no signing, no
    clean-up mode, no message encoding) with ``head`` known, the whole index committed and no
    hook that git commit would run: written with write-tree, commit-tree and update-ref —
    the same commit and reflog entry without git commit's refresh of the whole index (a
    stat of every tracked file, ~35 ms per 10,000 files; rr's staging check already looked).
    """
    if plain and head and only is None and _no_commit_hooks(root, hooks_path):
        return _commit_plumbing(root, message, head)
    msg_path = Path(git_dir(root)) / "RR_COMMIT_MSG"
    msg_path.write_text(message, encoding="utf-8")
    args = ["commit", "-q", "--no-edit", "-F", str(msg_path)]
    if _only_annex_precommit_hook(root, hooks_path):
        # git-annex's own pre-commit hook fixes up files staged behind its back; rr stages
        # through git-annex, so the hook (a git-annex process walking the tree) is skipped
        args.append("--no-verify")
    if allow_empty:
        args.append("--allow-empty")
    try:
        if only is not None:
            args += ["--only", "--pathspec-from-file=-", "--pathspec-file-nul"]
            call_git(args, root, input=nul_paths(only), env={"GIT_LITERAL_PATHSPECS": "1"})
        else:
            call_git(args, root)
    finally:
        msg_path.unlink(missing_ok=True)
    sha = head_sha(root)
    assert sha is not None
    return sha


def _commit_plumbing(root: PathLike, message: str, head: str) -> str:
    text = stripspace(message)
    if not text:
        raise CommandError(["git", "commit"], 1, "Aborting commit due to empty commit message.")
    # the caller has checked that the index differs from head (save.commit_entries)
    tree = call_git(["write-tree"], root).strip()
    sha = call_git(["commit-tree", tree, "-p", head], root,
                   input=text.encode("utf-8")).strip()
    subject = text.split("\n", 1)[0]
    # as git commit: both HEAD's and the branch's reflog, and only if HEAD is still `head`
    call_git(["update-ref", "-m", f"commit: {subject}", "HEAD", sha, head], root)
    call_git(["maintenance", "run", "--auto", "--quiet"], root)  # what git commit does after
    return sha


def stripspace(message: str) -> str:
    """git's 'whitespace' message clean-up (``git stripspace`` without -s): trailing
    whitespace of each line removed, runs of empty lines made one, leading and trailing
    empty lines removed, a final newline."""
    out: list[str] = []
    empty = 0
    for line in message.split("\n"):
        line = line.rstrip(" \t\r")  # git's isspace: no \v, \f or Unicode spaces
        if not line:
            empty += 1
            continue
        if empty and out:
            out.append("")
        empty = 0
        out.append(line)
    return "\n".join(out) + "\n" if out else ""


def _no_commit_hooks(root: PathLike, hooks_path: str | None | bool) -> bool:
    """No hook would run in git commit --no-verify (git-annex's stock pre-commit aside)."""
    if not _only_annex_precommit_hook(root, hooks_path):
        return False
    hooks = Path(git_dir(root)) / "hooks"
    return not any((hooks / name).exists() for name in ("prepare-commit-msg", "post-commit"))


_ANNEX_PRECOMMIT = "#!/bin/sh\n# automatically configured by git-annex\ngit annex pre-commit .\n"


def _only_annex_precommit_hook(root: PathLike, hooks_path: str | None | bool = False) -> bool:
    """True when the only hooks --no-verify would skip are git-annex's stock pre-commit.
    ``hooks_path``: core.hooksPath when the caller knows it (None: unset), False: ask git."""
    gd = Path(git_dir(root))
    if (gd / "commondir").exists():  # a linked worktree (an array job): hooks are shared
        gd = gd / (gd / "commondir").read_text().strip()
    hooks = gd / "hooks"
    try:
        if (hooks / "pre-commit").read_text() != _ANNEX_PRECOMMIT:
            return False
    except OSError:
        return False
    if (hooks / "commit-msg").exists():
        return False
    if hooks_path is False:
        return call_git_optional(["config", "core.hooksPath"], root) is None
    return hooks_path is None


def tag(root: PathLike, name: str, rev: str = "HEAD") -> None:
    call_git(["tag", name, rev], root)


def check_ref_format_tag(root: PathLike, name: str) -> bool:
    return call_git_success(["check-ref-format", f"refs/tags/{name}"], root)


_GIT_DIRS: dict[str, str] = {}


def git_dir(root: PathLike) -> str:
    key = os.fspath(root)
    cached = _GIT_DIRS.get(key)
    if cached:
        return cached
    dotgit = Path(root) / ".git"
    if dotgit.is_dir():
        result = str(dotgit)
    else:
        result = call_git(["rev-parse", "--absolute-git-dir"], root).strip()
    _GIT_DIRS[key] = result
    return result


def config_list(root: PathLike, file: str | None = None) -> list[tuple[str, str]]:
    """All (key, value) pairs of git's config (or of one config ``file``), in order."""
    args = ["config", "-f", file, "-z", "--list"] if file else ["config", "-z", "--list"]
    proc_ = _git(args, root, check=False)
    if proc_.returncode != 0:
        if file is not None:
            return []
        raise CommandError(["git", *args], proc_.returncode, proc_.stderr.decode(errors="replace"))
    pairs = []
    for item in proc_.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not item:
            continue
        key, _, value = item.partition("\n")
        pairs.append((key, value))
    return pairs


def config_set(root: PathLike, key: str, value: str, *, file: str | None = None,
               add: bool = False) -> None:
    args = ["config"]
    if file:
        args += ["-f", file]
    if add:
        args.append("--add")
    call_git([*args, key, value], root)


def config_unset_all(root: PathLike, key: str, *, file: str | None = None) -> None:
    args = ["config"] + (["-f", file] if file else []) + ["--unset-all", key]
    _git(args, root, check=False)


def config_remove_section(root: PathLike, section: str, *, file: str | None = None) -> bool:
    args = ["config"] + (["-f", file] if file else []) + ["--remove-section", section]
    return _git(args, root, check=False).returncode == 0


def ls_files_symlinks(root: PathLike, paths: Sequence[str]) -> list[str]:
    """Tracked paths under ``paths`` whose index mode is a symlink (locked annexed files)."""
    if not paths:
        return []
    out = _call_git_z_paths(["ls-files", "-s", "-z"], root, paths)
    result = []
    for item in out:
        meta, _, path = item.partition("\t")
        if meta.startswith("120000 "):
            result.append(path)
    return result


def ls_files(root: PathLike, paths: Sequence[str] | None = None) -> list[str]:
    args = ["ls-files", "-z"]
    if paths is None:
        return call_git_z(args, root)
    return _call_git_z_paths(args, root, paths)


def _call_git_z_paths(args: Sequence[str], root: PathLike, paths: Sequence[str]) -> list[str]:
    """NUL-separated output of a git command over literal pathspecs given in argv chunks."""
    out: list[str] = []
    for chunk in _argv_chunks(paths):
        text = _git([*args, "--", *chunk], root, env={"GIT_LITERAL_PATHSPECS": "1"}).stdout
        items = text.decode("utf-8", "surrogateescape").split("\0")
        if items and items[-1] == "":
            items.pop()
        out += items
    return out


def write_commit_editmsg(root: PathLike, message: str) -> Path:
    path = Path(git_dir(root)) / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    return path


# --- history --------------------------------------------------------------------------


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


NOTES_REF = "rr"


def add_note(root: PathLike, sha: str, text: str) -> None:
    """Attach ``text`` to a commit in rr's notes ref (facts kept out of the run record, so
    the record stays byte-identical to DataLad's)."""
    _git(["notes", f"--ref={NOTES_REF}", "add", "-f", "-m", text, sha], root, check=False)


NOTES_SIDE = "refs/notes/rr-remotes"  # a sibling's notes, fetched beside ours to be merged


def fetch_notes(root: PathLike, remote: str) -> str | None:
    """Fetch the sibling's rr notes into a side ref (``refs/notes/rr-remotes/REMOTE``, kept
    under refs/notes/ so that ``git notes merge`` takes it); ours do not move.  The side ref,
    or None when the sibling has no notes.  Raises CommandError when the fetch fails."""
    side = f"{NOTES_SIDE}/{remote}"
    result = _git(["fetch", "--quiet", "--no-tags", "--", remote,
                   f"+refs/notes/{NOTES_REF}:{side}"], root, check=False)
    if result.returncode != 0:
        text = (result.stderr or b"").decode("utf-8", "replace")
        if "couldn't find remote ref" in text:
            return None
        raise CommandError(["git", "fetch", remote, f"refs/notes/{NOTES_REF}"],
                           result.returncode, text)
    return side


def merge_notes(root: PathLike, ref: str) -> None:
    """Merge the notes in ``ref`` into rr's: the union of both (``cat_sort_uniq``: a commit
    noted on both sides keeps the lines of both, none twice), so no note is lost."""
    call_git(["notes", f"--ref={NOTES_REF}", "merge", "--quiet", "-s", "cat_sort_uniq", ref],
             root)


def is_ancestor(root: PathLike, ancestor: str, descendant: str) -> bool:
    return call_git_success(["merge-base", "--is-ancestor", ancestor, descendant], root)


def rev_list(root: PathLike, revs: Sequence[str]) -> list[str]:
    return call_git_lines(["rev-list", *revs, "--"], root)


def checkout(root: PathLike, rev: str, *, new_branch: str | None = None,
             detach: bool = False) -> None:
    args = ["checkout", "-q"]
    if new_branch:
        args += ["-b", new_branch]
    elif detach:
        args.append("--detach")
    call_git([*args, rev], root)


def branch_exists(root: PathLike, name: str) -> bool:
    return call_git_success(["show-ref", "--verify", "--quiet", f"refs/heads/{name}"], root)


def set_branch_and_checkout(root: PathLike, branch: str, rev: str) -> None:
    call_git(["checkout", "-q", "-B", branch, rev], root)


def cherry_pick(root: PathLike, sha: str) -> "proc.CompletedProcess[bytes]":
    return _git(["cherry-pick", "--allow-empty", "--keep-redundant-commits", sha], root,
                check=False)


def merge(root: PathLike, parents: Sequence[str], message: str) -> "proc.CompletedProcess[bytes]":
    return _git(["merge", "-q", "--no-ff", "--allow-unrelated-histories", "-m", message,
                 *parents], root, check=False)


def changed_files(root: PathLike, parent: str | None, commit: str) -> list[tuple[str, str]]:
    """(status letter, path) of files a commit changed against its parent (or the empty tree)."""
    base = parent or call_git(["hash-object", "-t", "tree", "/dev/null"], root).strip()
    out = call_git_z(["diff-tree", "-r", "-z", "--no-renames", "--name-status",
                      "--no-commit-id", base, commit], root)
    return [(out[i], out[i + 1]) for i in range(0, len(out) - 1, 2)]


def describe(root: PathLike, sha: str) -> str:
    out = call_git_optional(["describe", "--tags", "--always", sha], root)
    return out.strip() if out else sha


def sequencer_in_progress(root: PathLike) -> bool:
    gd = Path(git_dir(root))
    return (gd / "CHERRY_PICK_HEAD").exists() or (gd / "MERGE_HEAD").exists()


# --- submodules (subdatasets) -------------------------------------------------------------


def submodule_paths(root: PathLike) -> dict[str, str]:
    """{path: url} of the subdatasets registered in .gitmodules, each entry checked first.

    .gitmodules comes with a cloned dataset: a path that leaves the dataset (absolute, '..',
    through a symlink leading out), is or is inside .git, or has a line break, and a URL that
    git would read as an option ('-...') or a remote helper ('ext::...'), is a
    RecorderError naming the entry, before any caller clones or installs anything.
    """
    gitmodules = Path(root) / ".gitmodules"
    if not gitmodules.exists() and not gitmodules.is_symlink():
        return {}
    if gitmodules.is_symlink() or not gitmodules.is_file():
        raise RecorderError(".gitmodules is not a regular file (a symlink?); rr does not "
                            "follow it")
    pairs = config_list(root, file=str(gitmodules))
    if not pairs and gitmodules.stat().st_size and \
            call_git_optional(["config", "-f", ".gitmodules", "--list"], root) is None:
        raise RecorderError(".gitmodules cannot be parsed; no subdataset is installed from it",
                            hint="check it with: git config -f .gitmodules --list")
    paths: dict[str, str] = {}
    urls: dict[str, str] = {}
    for key, value in pairs:
        if key.startswith("submodule.") and key.endswith(".path"):
            paths[key[len("submodule."):-len(".path")]] = value
        elif key.startswith("submodule.") and key.endswith(".url"):
            urls[key[len("submodule."):-len(".url")]] = value
    entries = {p: urls.get(name, "") for name, p in paths.items()}
    for path, url in entries.items():
        problem = _bad_submodule_path(root, path) or _bad_submodule_url(url)
        if problem:
            raise RecorderError(
                f"refusing the subdataset entry {path!r} in .gitmodules: {problem}",
                hint="the dataset's .gitmodules is malformed or hostile; fix or remove that "
                     "entry (git config -f .gitmodules --remove-section submodule.NAME)")
    return entries


def _bad_submodule_path(root: PathLike, path: str) -> str | None:
    if not path:
        return "the path is empty"
    if any(ord(c) < 32 for c in path):
        return "the path contains a line break or control character"
    if path.startswith("/"):
        return "the path is absolute"
    parts = path.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "the path is not a plain relative path (it has '..', '.' or '//')"
    if any(p.lower() == ".git" for p in parts):
        return "the path is or is inside .git"
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, path))
    rel = os.path.relpath(real, real_root)
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return f"the path leads outside the dataset through a symlink (-> {real})"
    if any(p.lower() == ".git" for p in rel.split("/")):
        return "the path leads into .git through a symlink"
    return None


def _bad_submodule_url(url: str) -> str | None:
    if any(ord(c) < 32 for c in url):
        return "the URL contains a line break or control character"
    if url.startswith("-"):
        return f"the URL starts with '-' (it would be read as an option): {url}"
    transport, sep, _rest = url.partition("::")
    if sep and transport and all(c.isalnum() or c in "+.-_" for c in transport):
        return f"the URL uses a git remote helper ({transport}::), which rr never runs: {url}"
    return None


def clone(source: str, dest: PathLike, cwd: PathLike) -> None:
    call_git(["clone", "-q", "--", source, os.fspath(dest)], cwd)


def submodule_add(root: PathLike, url: str, path: str) -> None:
    # the clone is already in place; file transport is allowed for this one local step
    call_git(["-c", "protocol.file.allow=always", "submodule", "add", "-q", "--", url, path],
             root)


def gitlink(root: PathLike, path: str) -> str | None:
    """The commit recorded for the subdataset at ``path`` (index first, then HEAD)."""
    out = call_git_optional(["ls-files", "-s", "--", path], root)
    for line in (out or "").splitlines():
        meta, _, p = line.partition("\t")
        if p == path and meta.startswith("160000 "):
            return meta.split()[1]
    return None


def register_submodule(root: PathLike, path: str, url: str) -> None:
    """Mark an installed subdataset active in .git/config (what `git submodule init` does)."""
    call_git(["config", f"submodule.{path}.url", url], root)
    call_git(["config", f"submodule.{path}.active", "true"], root)


def gitlinks(root: PathLike) -> dict[str, str]:
    """{path: commit} of every subdataset recorded in the index (one ls-files call)."""
    out: dict[str, str] = {}
    for entry in call_git_z(["ls-files", "-s", "-z"], root):
        meta, _, path = entry.partition("\t")
        if meta.startswith("160000 "):
            out[path] = meta.split()[1]
    return out


def last_commit_touching(root: PathLike, path: str) -> str | None:
    """The newest commit on HEAD that changed ``path`` (None without one)."""
    out = call_git_optional(["rev-list", "-n1", "HEAD", "--", path], root)
    return (out or "").strip() or None


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


def unpushed_commits(root: PathLike) -> list[str]:
    """Commits of HEAD and the local branches (not git-annex's own) that no remote-tracking
    branch has: what is lost with this repository."""
    if head_sha(root) is None:
        return []
    return call_git_lines(["rev-list", "HEAD", "--exclude=git-annex", "--exclude=synced/*",
                           "--branches", "--not", "--remotes"], root)


def rm(root: PathLike, paths: Sequence[str], *, cached: bool = False) -> None:
    """``git rm -r`` of exactly ``paths`` (literal pathspecs); with ``cached`` the worktree
    is left alone."""
    args = ["rm", "-q", "-r", "-f", *(["--cached"] if cached else []),
            "--pathspec-from-file=-", "--pathspec-file-nul"]
    call_git(args, root, input=nul_paths(paths), env={"GIT_LITERAL_PATHSPECS": "1"})


def remotes(root: PathLike) -> dict[str, str]:
    result = {}
    for line in call_git_lines(["remote", "-v"], root):
        parts = line.split()
        if len(parts) >= 2 and parts[-1] == "(fetch)":
            result[parts[0]] = parts[1]
    return result


def push(root: PathLike, remote: str, refspecs: Sequence[str]) -> "proc.CompletedProcess[bytes]":
    return _git(["push", "--porcelain", remote, *refspecs], root, check=False)


def tree_files(root: PathLike, rev: str, under: str = "") -> list[str]:
    """The files in the tree of ``rev`` (under the directory ``under``), from git objects."""
    args = ["ls-tree", "-r", "-z", "--name-only", "--full-tree", rev]
    return call_git_z([*args, "--", under] if under else args, root)


def cat_file_batch(root: PathLike, specs: Sequence[str]) -> dict[str, tuple[str, bytes] | None]:
    """Read many objects (``rev:path`` specs) with one ``git cat-file --batch``.

    Returns spec -> (object type, content), or None for a missing object.
    """
    if not specs:
        return {}
    data = "".join(f"{s}\n" for s in specs).encode("utf-8", "surrogateescape")
    out = _git(["cat-file", "--batch"], root, input=data).stdout
    result: dict[str, tuple[str, bytes] | None] = {}
    pos = 0
    for spec in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("utf-8", "surrogateescape")
        pos = end + 1
        parts = header.split()
        if len(parts) == 3 and parts[2].isdigit():
            size = int(parts[2])
            result[spec] = (parts[1], out[pos:pos + size])
            pos += size + 1
        else:
            result[spec] = None
    return result


def refs_by_commit(root: PathLike, patterns: Sequence[str]) -> dict[str, list[str]]:
    """commit sha -> short ref names (tags peeled to their commits)."""
    out = call_git_lines(["for-each-ref", "--format=%(objectname) %(*objectname) "
                          "%(refname:short)", *patterns], root)
    refs: dict[str, list[str]] = {}
    for line in out:
        obj, peeled, name = line.split(" ", 2)
        refs.setdefault(peeled or obj, []).append(name)
    return refs


# --- checks around staging and committing ---------------------------------------------------


def ensure_no_index_lock(root: PathLike) -> None:
    """Raise when ``.git/index.lock`` exists: a git process is running, or one was killed
    (SIGKILL, power loss) and left it; every later commit would fail after the command ran."""
    from .errors import RecorderError

    lock = Path(git_dir(root)) / "index.lock"
    if lock.exists():
        shown = os.path.relpath(lock, root) if str(lock).startswith(str(root)) else str(lock)
        raise RecorderError(f"{shown} exists: a git process is running in this dataset, or "
                            "one was killed and left its lock",
                            hint=f"remove {lock} if no git process is running")


def staged_paths(root: PathLike, paths: Sequence[str] | None = None, *,
                 head: str | None | bool = False) -> set[str]:
    """Paths whose index entry differs from HEAD (all of them, or among ``paths``);
    ``head``: HEAD's commit when the caller knows it (None: no commit yet)."""
    if (head_sha(root) if head is False else head) is None:
        if paths is None:
            return set(call_git_z(["ls-files", "-z"], root))
        return set(_call_git_z_paths(["ls-files", "-z"], root, paths))
    args = ["diff", "--cached", "--name-only", "-z", "--no-renames", "HEAD"]
    if paths is None:
        return set(call_git_z(args, root))
    return set(_call_git_z_paths(args, root, paths))


def unstaged_paths(root: PathLike, paths: Sequence[str]) -> list[str]:
    """Of ``paths``, those whose worktree state differs from the index (committed
    subdatasets count as staged even when dirty inside)."""
    if not paths:
        return []
    return [e.path for e in iter_status(root, paths, untracked="all", ignore_submodules="dirty")
            if e.worktree and e.state != "unmerged"]


# --- run-merges (commands that commit) ------------------------------------------------------


def commit_tree(root: PathLike, tree_of: str, parents: Sequence[str], message: str) -> str:
    """A new commit with the tree of ``tree_of``, the given parents and ``message`` verbatim
    (as DataLad's run-merge: ``git commit-tree``); no ref moves."""
    args = ["commit-tree", f"{tree_of}^{{tree}}"]
    for p in parents:
        args += ["-p", p]
    args += ["-F", "-"]
    return call_git(args, root, input=message.encode("utf-8", "surrogateescape")).strip()


def update_ref(root: PathLike, ref: str, new: str, old: str, message: str = "") -> None:
    """Move ``ref`` to ``new`` only if it is still at ``old`` (atomic compare-and-swap)."""
    args = ["update-ref"]
    if message:
        args += ["-m", message]
    call_git([*args, ref, new, old], root)


def diff_names(root: PathLike, old: str, new: str) -> list[str]:
    """Paths that differ between two commits (``git diff --name-only``, no renames)."""
    return call_git_z(["diff", "-z", "--name-only", "--no-renames", old, new, "--"], root)


# --- status and diff (rr status, rr diff) ----------------------------------------------------

NULL_SHA = "0" * 40


class DiffEntry(NamedTuple):
    """One path of ``git diff-index/diff-tree --raw``: modes, blobs, git's status letter."""

    path: str
    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str  # NULL_SHA: the working tree file, not hashed by git
    letter: str   # A, M, D, T


def iter_diff_raw(root: PathLike, old: str, new: str | None,
                  paths: Sequence[str] | None = None) -> list[DiffEntry]:
    """What differs between the trees of ``old`` and ``new`` (None: the working tree) in one
    git call.  The working tree is compared with ``diff-index`` without refreshing the index:
    ``git diff`` would run git-annex's clean filter on a changed unlocked file just to compare
    it, which takes its content into the annex; a stat-changed file shows as NULL_SHA."""
    if new is None:
        args = ["diff-index", "--raw", "-z", "--no-abbrev", "--no-renames",
                "--ignore-submodules=none", old]
    else:
        args = ["diff-tree", "-r", "--raw", "-z", "--no-abbrev", "--no-renames", old, new]
    out = _call_git_z_paths(args, root, paths) if paths is not None else \
        call_git_z([*args, "--"], root)
    entries = []
    for i in range(0, len(out) - 1, 2):
        meta = out[i].lstrip(":").split(" ")
        entries.append(DiffEntry(out[i + 1], meta[0], meta[1], meta[2], meta[3], meta[4][:1]))
    return entries


def untracked_paths(root: PathLike, paths: Sequence[str] | None = None) -> list[str]:
    """Untracked, not ignored paths; a directory holding only untracked files as ``dir/``
    (what ``git status`` shows)."""
    args = ["ls-files", "-z", "--others", "--exclude-standard", "--directory",
            "--no-empty-directory"]
    return _call_git_z_paths(args, root, paths) if paths is not None else call_git_z(args, root)


def small_blobs(root: PathLike, shas: Iterable[str], limit: int = 1024) -> dict[str, bytes]:
    """Contents of the blobs among ``shas`` no larger than ``limit`` bytes (annex symlinks
    and pointer files are small; big files in git are not read): two ``cat-file`` calls."""
    wanted = sorted({s for s in shas if s and s != NULL_SHA})
    if not wanted:
        return {}
    data = "".join(f"{s}\n" for s in wanted).encode()
    out = _git(["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"], root,
               input=data).stdout.decode("ascii", "replace").splitlines()
    small = [p[0] for p in (line.split() for line in out)
             if len(p) == 3 and p[1] == "blob" and int(p[2]) <= limit]
    found = cat_file_batch(root, small)
    return {s: v[1] for s, v in found.items() if v is not None}


def hash_files_raw(root: PathLike, paths: Sequence[str]) -> list[str]:
    """Blob ids of worktree files as git would store them without filters (no git-annex
    clean filter runs: nothing is taken into the annex)."""
    if not paths:
        return []
    data = "".join(f"{p}\n" for p in paths).encode("utf-8", "surrogateescape")
    return call_git(["hash-object", "--no-filters", "--stdin-paths"], root,
                    input=data).split()


def ls_files_stage(root: PathLike, paths: Sequence[str] | None = None
                   ) -> list[tuple[str, str, str]]:
    """(mode, blob, path) of every index entry (stage 0), under ``paths`` when given."""
    args = ["ls-files", "-s", "-z"]
    out = _call_git_z_paths(args, root, paths) if paths is not None else call_git_z(args, root)
    result = []
    for item in out:
        meta, _, path = item.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[2] == "0":
            result.append((parts[0], parts[1], path))
    return result


# --- update (fetch from siblings, bring the current branch up to date) ----------------------


def fetch(root: PathLike, remote: str) -> "proc.CompletedProcess[bytes]":
    """``git fetch REMOTE`` with its configured refspecs (branches, the git-annex branch, and
    tags on the fetched history); only remote-tracking refs move.  Not checked: the caller
    reports a failure as its own."""
    return _git(["fetch", "--quiet", "--", remote], root, check=False)


def upstream(root: PathLike, branch: str) -> tuple[str | None, str | None]:
    """(remote, branch on that remote) that ``branch`` tracks, each None when not set."""
    remote = call_git_optional(["config", f"branch.{branch}.remote"], root)
    merge_ref = call_git_optional(["config", f"branch.{branch}.merge"], root)
    ref = merge_ref.strip() if merge_ref else ""
    return ((remote.strip() or None) if remote else None,
            ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None)


def merge_into_head(root: PathLike, rev: str, *, ff_only: bool
                    ) -> "proc.CompletedProcess[bytes]":
    """``git merge`` of ``rev`` into the current branch (fast-forward when possible); on a
    conflict git leaves its usual merge state.  Not checked: the caller reads the outcome."""
    return _git(["merge", "--no-edit", "--ff-only" if ff_only else "--ff", rev], root,
                check=False, env={"GIT_MERGE_AUTOEDIT": "no"})


def reset_hard(root: PathLike, rev: str) -> None:
    call_git(["reset", "-q", "--hard", rev], root)


def unmerged_paths(root: PathLike) -> list[str]:
    return sorted(set(call_git_z(["diff", "--name-only", "-z", "--diff-filter=U"], root)))


# --- array jobs (recorder/array.py) ---------------------------------------------------------


def worktree_add(root: PathLike, path: PathLike, commit: str) -> None:
    """A detached linked worktree at ``path`` checked out at ``commit``."""
    call_git(["worktree", "add", "-q", "--detach", str(path), commit], root)


def main_worktree(root: PathLike) -> Path | None:
    """The main worktree of the repository when ``root`` is a linked worktree (an array job's),
    else None (also for a bare main repository)."""
    gd = Path(git_dir(root))
    try:
        common = (gd / (gd / "commondir").read_text().strip()).resolve()
    except OSError:
        return None
    return common.parent if common.name == ".git" else None


def worktree_reset(root: PathLike, commit: str) -> None:
    """Back to ``commit`` with nothing else in the work tree (a reused job worktree)."""
    call_git(["reset", "-q", "--hard", commit], root)
    call_git(["clean", "-q", "-ffdx"], root)


def worktree_remove(root: PathLike, path: PathLike) -> None:
    _git(["worktree", "remove", "--force", "--force", str(path)], root, check=False)


def worktree_prune(root: PathLike) -> None:
    _git(["worktree", "prune"], root, check=False)


def diff_tree_commits(root: PathLike, commits: Sequence[str]) -> dict[str, list[tuple[str, str, str]]]:
    """For each commit, its changes against its first parent as (mode, blob, path); a
    deletion has mode '000000'.  One ``git diff-tree --stdin`` for all of them."""
    if not commits:
        return {}
    data = "".join(f"{c}\n" for c in commits).encode()
    out = call_git(["diff-tree", "--stdin", "-r", "-z", "--no-renames", "--always"], root,
                   input=data)
    result: dict[str, list[tuple[str, str, str]]] = {c: [] for c in commits}
    items = out.split("\0")
    current = None
    i = 0
    while i < len(items):
        item = items[i]
        if not item:
            i += 1
            continue
        if item.startswith(":"):
            _old_mode, new_mode, _old, new, status = item[1:].split(" ")
            path = items[i + 1]
            i += 2
            assert current is not None
            if status == "D":
                result[current].append(("000000", "", path))
            else:
                result[current].append((new_mode, new, path))
            continue
        current = item.strip()
        i += 1
    return result


def fast_import(root: PathLike, stream: bytes, marks: PathLike) -> None:
    """Feed ``stream`` to one ``git fast-import`` (commits written without a checkout);
    the marks (mark -> sha) are exported to ``marks``."""
    call_git(["fast-import", "--quiet", "--done", "--force", f"--export-marks={marks}"], root,
             input=stream)


def update_refs(root: PathLike, lines: Sequence[str]) -> None:
    """Several ref updates in one ``git update-ref --stdin`` transaction."""
    if lines:
        call_git(["update-ref", "--stdin"], root, input="".join(f"{x}\n" for x in lines).encode())


def refs_under(root: PathLike, prefix: str) -> dict[str, str]:
    """ref name -> sha for the refs under ``prefix``."""
    out = call_git_lines(["for-each-ref", "--format=%(refname) %(objectname)", prefix], root)
    return dict(tuple(line.split(" ", 1)) for line in out if line)  # type: ignore[misc]


def read_tree_update(root: PathLike, old: str, new: str) -> None:
    """Move the index and the work tree from ``old`` to ``new`` (a fast-forward of the work
    tree; git refuses when a local change would be overwritten)."""
    call_git(["read-tree", "-m", "-u", old, new], root)
