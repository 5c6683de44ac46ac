"""Objects: trees, blobs and the diffs between them; commits written without a checkout."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ._runner import PathLike, call_git, call_git_z, call_git_z_paths, run

NULL_SHA = "0" * 40


def empty_tree(root: PathLike) -> str:
    """The id of the empty tree (what a root commit is compared with)."""
    return call_git(["hash-object", "-t", "tree", "/dev/null"], root).strip()


def tree_files(root: PathLike, rev: str, under: str = "") -> list[str]:
    """The files in the tree of ``rev`` (under the directory ``under``), from git objects."""
    args = ["ls-tree", "-r", "-z", "--name-only", "--full-tree", rev]
    return call_git_z([*args, "--", under] if under else args, root)


def parse_tree(raw: bytes, width: int = 20) -> list[tuple[str, str, str]]:
    """(name, object id, mode) of a raw tree object's entries (ids of ``width`` bytes)."""
    out = []
    pos = 0
    while pos < len(raw):
        nul = raw.index(b"\0", pos)
        mode, _, name = raw[pos:nul].partition(b" ")
        oid = raw[nul + 1:nul + 1 + width].hex()
        out.append((name.decode("utf-8", "surrogateescape"), oid, mode.decode("ascii")))
        pos = nul + 1 + width
    return out


def glob_files(root: PathLike, revs: Iterable[str], parts: Sequence[str]) -> set[str]:
    """The paths of files (``ls-tree -r``'s entries: not directories) that match the path
    pattern ``parts`` (one ``fnmatch`` pattern per component) in the tree of any of
    ``revs``, read level by level: each level's trees of all revisions with one ``cat-file
    --batch`` (a tree shared by revisions is read once), so a pattern two directories below
    its fixed part costs three processes however many revisions."""
    parts = list(parts)
    fixed = 0
    while fixed < len(parts) - 1 and not any(c in parts[fixed] for c in "*?["):
        fixed += 1
    under = "/".join(parts[:fixed])
    starts = [f"{rev}:{under}" if under else f"{rev}^{{tree}}" for rev in dict.fromkeys(revs)]
    frontier: dict[str, set[str]] = {}  # tree id -> the directories it is found at
    for info in object_infos(root, starts):
        if info is not None and info[1] == "tree":
            frontier.setdefault(info[0], set()).add(under)
    found: set[str] = set()
    for depth in range(fixed, len(parts)):
        if not frontier:
            break
        last = depth == len(parts) - 1
        nxt: dict[str, set[str]] = {}
        for tree, got in cat_file_batch(root, sorted(frontier)).items():
            if got is None or got[0] != "tree":
                continue
            for name, oid, mode in parse_tree(got[1], len(tree) // 2):
                if not fnmatch.fnmatchcase(name, parts[depth]):
                    continue
                for d in frontier[tree]:
                    path = f"{d}/{name}" if d else name
                    if last and mode != "40000":
                        found.add(path)
                    elif not last and mode == "40000":
                        nxt.setdefault(oid, set()).add(path)
        frontier = nxt
    return found


def tree_entries(root: PathLike, rev: str, paths: Sequence[str] | None = None
                 ) -> dict[str, tuple[str, str]]:
    """The files of ``rev``'s tree (or those at or under ``paths``, literal, dataset-relative)
    as path -> (mode, object id): for an annexed file the blob is its symlink target or
    pointer file, so the same blob id means the same annex key."""
    args = ["ls-tree", "-r", "-z", "--full-tree", rev]
    out = call_git_z_paths(args, root, paths) if paths is not None else \
        call_git_z([*args, "--"], root)
    entries: dict[str, tuple[str, str]] = {}
    for item in out:
        meta, _, path = item.partition("\t")
        mode, _kind, sha = meta.split(" ")[:3]
        entries[path] = (mode, sha)
    return entries


def cat_file_batch(root: PathLike, specs: Sequence[str]) -> dict[str, tuple[str, bytes] | None]:
    """Read many objects (``rev:path`` specs) with one ``git cat-file --batch``.

    Returns spec -> (object type, content), or None for a missing object.
    """
    if not specs:
        return {}
    data = "".join(f"{s}\n" for s in specs).encode("utf-8", "surrogateescape")
    out = run(["cat-file", "--batch"], root, input=data).stdout
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


def object_types(root: PathLike, specs: Sequence[str]) -> list[str]:
    """The object type of each spec (``REV:PATH``...), in order; git's line for a missing
    one ('... missing') otherwise.  One ``git cat-file --batch-check``."""
    data = "".join(f"{s}\n" for s in specs).encode("utf-8", "surrogateescape")
    out = call_git(["cat-file", "--batch-check=%(objecttype)"], root, input=data)
    return [line.strip() for line in out.splitlines()]


def object_infos(root: PathLike, specs: Sequence[str]) -> list[tuple[str, str, int] | None]:
    """(object id, type, size) of each spec (``REV:PATH`` or an object id), in order; None
    for one that does not resolve.  One ``git cat-file --batch-check``."""
    if not specs:
        return []
    data = "".join(f"{s}\n" for s in specs).encode("utf-8", "surrogateescape")
    out = call_git(["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
                   root, input=data)
    result: list[tuple[str, str, int] | None] = []
    for line in out.splitlines():
        parts = line.split()
        ok = len(parts) == 3 and parts[2].isdigit()
        result.append((parts[0], parts[1], int(parts[2])) if ok else None)
    return result + [None] * (len(specs) - len(result))


def small_blobs(root: PathLike, shas: Iterable[str], limit: int = 1024) -> dict[str, bytes]:
    """Contents of the blobs among ``shas`` no larger than ``limit`` bytes (annex symlinks
    and pointer files are small; big files in git are not read): two ``cat-file`` calls."""
    wanted = sorted({s for s in shas if s and s != NULL_SHA})
    if not wanted:
        return {}
    data = "".join(f"{s}\n" for s in wanted).encode()
    out = run(["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"], root,
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


# --- diffs ------------------------------------------------------------------------------


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
    out = call_git_z_paths(args, root, paths) if paths is not None else \
        call_git_z([*args, "--"], root)
    entries = []
    for i in range(0, len(out) - 1, 2):
        meta = out[i].lstrip(":").split(" ")
        entries.append(DiffEntry(out[i + 1], meta[0], meta[1], meta[2], meta[3], meta[4][:1]))
    return entries


def diff_raw_many(root: PathLike, pairs: Sequence[tuple[str, str]]
                  ) -> dict[str, list[DiffEntry]]:
    """What each commit changed against the given parent (``(commit, parent)`` pairs, as
    :func:`iter_diff_raw` of each) in ONE ``git diff-tree --stdin``: commit -> entries."""
    if not pairs:
        return {}
    lines = "".join(f"{commit} {parent}\n" for commit, parent in pairs).encode()
    out = call_git_z(["diff-tree", "--stdin", "-r", "--raw", "-z", "--no-abbrev",
                      "--no-renames"], root, input=lines)
    found: dict[str, list[DiffEntry]] = {commit: [] for commit, _ in pairs}
    current: list[DiffEntry] = []
    i = 0
    while i < len(out):
        item = out[i]
        if not item.startswith(":"):  # a commit's header: its entries follow
            current = found.setdefault(item, [])
            i += 1
            continue
        meta = item[1:].split(" ")
        current.append(DiffEntry(out[i + 1], meta[0], meta[1], meta[2], meta[3], meta[4][:1]))
        i += 2
    return found


def changed_files(root: PathLike, parent: str | None, commit: str) -> list[tuple[str, str]]:
    """(status letter, path) of files a commit changed against its parent (or the empty tree)."""
    base = parent or empty_tree(root)
    out = call_git_z(["diff-tree", "-r", "-z", "--no-renames", "--name-status",
                      "--no-commit-id", base, commit], root)
    return [(out[i], out[i + 1]) for i in range(0, len(out) - 1, 2)]


def diff_names(root: PathLike, old: str, new: str) -> list[str]:
    """Paths that differ between two commits (``git diff --name-only``, no renames)."""
    return call_git_z(["diff", "-z", "--name-only", "--no-renames", "--ignore-submodules=none",
                       old, new, "--"], root)


def diff_tree_commits(root: PathLike, commits: Sequence[str]
                      ) -> dict[str, list[tuple[str, str, str]]]:
    """For each commit, its changes against its first parent as (mode, blob, path); a
    deletion has mode '000000'.  One ``git diff-tree --stdin`` for all of them (a merge, a
    run-merge: against its first parent too, not the empty combined diff)."""
    if not commits:
        return {}
    data = "".join(f"{c}\n" for c in commits).encode()
    out = call_git(["diff-tree", "--stdin", "-r", "-z", "--no-renames", "--always", "-m",
                    "--first-parent"], root, input=data)
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


# --- commits written without a checkout ---------------------------------------------------


def commit_tree(root: PathLike, tree_of: str, parents: Sequence[str], message: str) -> str:
    """A new commit with the tree of ``tree_of``, the given parents and ``message`` verbatim
    (as DataLad's run-merge: ``git commit-tree``); no ref moves."""
    args = ["commit-tree", f"{tree_of}^{{tree}}"]
    for p in parents:
        args += ["-p", p]
    args += ["-F", "-"]
    return call_git(args, root, input=message.encode("utf-8", "surrogateescape")).strip()


def fast_import(root: PathLike, stream: bytes, marks: PathLike) -> None:
    """Feed ``stream`` to one ``git fast-import`` (commits written without a checkout);
    the marks (mark -> sha) are exported to ``marks``."""
    call_git(["fast-import", "--quiet", "--done", "--force", f"--export-marks={marks}"], root,
             input=stream)
