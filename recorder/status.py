"""``rr status`` and ``rr diff``: what changed, one result record per path.

Both follow DataLad (``datalad status`` / ``datalad diff``): states ``added``, ``modified``,
``deleted``, ``untracked``; types ``file``, ``symlink`` (a locked annexed file), ``directory``,
``dataset`` (a subdataset, "modified" when it has new commits or changes inside).  Paths in
the records are relative to the dataset the command was given (DataLad shows them so with
``-d``); paths given on the command line are relative to the working directory.

One ``git status`` (status) or one ``git diff-index``/``diff-tree`` (diff) per dataset; annex
keys come from the link targets and pointer files read with one ``cat-file`` batch, never
from one git-annex call per file.  Annexed files are compared by key: an unlocked file whose
content still matches its key is unchanged for ``rr diff``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import annex, gitrepo, protect
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .results import IMPOSSIBLE, Result
from .recursion import check_recursion, deeper, may_descend

_ANNEX_MODES = ("120000", "100644", "100755")
_STATE = {"typechange": "modified", "renamed": "added"}


# --- paths ---------------------------------------------------------------------------------


def _resolve(ds: Dataset, paths: Sequence[str], base: Path | None,
             action: str) -> tuple[list[str], list[Result]]:
    """Dataset-relative paths, and an ``impossible`` record for each that neither exists nor
    is known to git.  A path outside the dataset is an error (nothing is looked at)."""
    rels = [ds.ensure_inside(p, base, tracked_form=True) for p in paths]
    unknown = [r for r in rels if r != "." and not os.path.lexists(ds.root / r)]
    if unknown:
        known = _known(ds, unknown)
        unknown = [r for r in unknown if r not in known]
    missing = [Result(action, r, IMPOSSIBLE, message="path does not exist") for r in unknown]
    return [r for r in rels if r not in unknown], missing


def _known(ds: Dataset, rels: Sequence[str]) -> set[str]:
    """Of ``rels`` (not on disk), those git knows: in the index (of the installed subdataset
    holding them), or inside a subdataset that is not installed (unknown here, not missing)."""
    tracked = set(gitrepo.ls_files(ds.root, rels)) if (ds.git_dir / "index").exists() else set()
    subs = sorted(ds.subdatasets(), key=len, reverse=True)
    known = set()
    for r in rels:
        sub = next((s for s in subs if r == s or r.startswith(s + "/")), None)
        if sub is not None and r != sub and _installed(ds, sub):
            if _known(Dataset(ds.root / sub), [r[len(sub) + 1:]]):
                known.add(r)
        elif sub is not None or r in tracked or any(t.startswith(r + "/") for t in tracked):
            known.add(r)
    return known


def _split(ds: Dataset, rels: Sequence[str] | None
           ) -> tuple[list[str] | None, dict[str, list[str]]]:
    """Paths for this dataset, and paths inside installed subdatasets by subdataset."""
    if rels is None:
        return None, {}
    subs = sorted(ds.subdatasets(), key=len, reverse=True) if rels else []
    own: list[str] = []
    inner: dict[str, list[str]] = {}
    for r in rels:
        owner = next((s for s in subs if r.startswith(s + "/")), None)
        if owner and _installed(ds, owner):
            inner.setdefault(owner, []).append(r[len(owner) + 1:])
        else:
            own.append(r)
    return own, inner


def _installed(ds: Dataset, rel: str) -> bool:
    return (ds.root / rel / ".git").exists()


def _in_scope(sub: str, rels: Sequence[str] | None) -> bool:
    return rels is None or any(r == "." or r == sub or sub.startswith(r + "/") for r in rels)


def _type(full: Path) -> str:
    if full.is_symlink():
        return "symlink"
    if full.is_dir():
        return "dataset" if (full / ".git").exists() else "directory"
    return "file"


UNTRACKED_MODES = ("no", "normal", "all")
_MODE_TYPE = {"120000": "symlink", "160000": "dataset", "040000": "directory"}


# --- status --------------------------------------------------------------------------------


def status(ds: Dataset, paths: Sequence[str] = (), *, recursive: bool = False,
           annex_info: bool | str = False, base: Path | None = None,
           untracked: str = "normal", recursion_limit: int | None = None) -> Iterator[Result]:
    """One record per changed path (state added, modified, deleted, untracked, damaged);
    with ``annex_info`` (True, or DataLad's mode: basic, availability, all) also every
    annexed file (``clean`` when unchanged), type ``file``, with ``key``, ``backend``,
    ``keyname``, ``bytesize``, ``humansize``, ``has_content`` (and ``objloc`` with
    availability/all).  ``untracked`` as DataLad's: ``no`` (none), ``normal`` (a directory of
    untracked files as one record), ``all`` (each file).  Paths are checked here, before
    anything is reported (an error is raised by this call, not while iterating).
    ``recursion_limit``: with ``recursive``, that many levels of subdatasets down."""
    if untracked not in UNTRACKED_MODES:
        raise UsageError(f"--untracked must be no, normal or all, not {untracked!r}")
    depth = check_recursion(recursive, recursion_limit)
    rels: list[str] | None = None
    missing: list[Result] = []
    if paths:
        rels, missing = _resolve(ds, paths, base, "status")
    return _chain(missing, _status_in(ds, "", rels, recursive, annex_info, untracked, depth)
                  if rels is None or rels else iter(()))


@dataclass
class StatusTotals:
    """What ``rr status`` sums up after its records: how many paths changed, and (with
    ``annex_info``) how many annexed files there are, how many are here, and their sizes."""

    changed: int = 0   # records whose state is not clean (failed ones not counted)
    files: int = 0     # annexed files reported
    present: int = 0   # ... of which the content is here
    bytes: int = 0     # their known sizes, all of them
    here: int = 0      # ... and of those here
    unknown: int = 0   # annexed files of unknown size

    @property
    def clean(self) -> bool:
        return not self.changed

    def add(self, r: Result) -> None:
        if r.state != "clean" and not r.failed:
            self.changed += 1
        info = r.extra or {}
        if "has_content" in info:
            self.files += 1
            size = info.get("bytesize")
            self.unknown += size is None
            self.bytes += size or 0
            if info["has_content"]:
                self.present += 1
                self.here += size or 0


class StatusRecords:
    """Status records, one at a time (an ``Iterator[Result]``), counted into ``totals`` as
    they are taken: the totals are complete once the iteration is."""

    def __init__(self, results: Iterable[Result]) -> None:
        self._results = iter(results)
        self.totals = StatusTotals()

    def __iter__(self) -> StatusRecords:
        return self

    def __next__(self) -> Result:
        r = next(self._results)
        self.totals.add(r)
        return r


def _chain(first: list[Result], rest: Iterator[Result]) -> Iterator[Result]:
    yield from first
    yield from rest


def _status_in(ds: Dataset, prefix: str, rels: list[str] | None, recursive: bool,
               annex_info: bool | str, untracked: str = "normal",
               depth: int | None = None) -> Iterator[Result]:
    own, inner = _split(ds, rels)
    dirty_subs: set[str] = set()
    if own is None or own:
        scope = None if own is None or "." in own else own
        for res, dirty in _status_one(ds, prefix, scope, annex_info, untracked):
            if dirty:
                dirty_subs.add((res.path or "")[len(prefix):])
            yield res
    for sub, sub_rels in inner.items():
        yield from _status_in(Dataset(ds.root / sub), f"{prefix}{sub}/", sub_rels, recursive,
                              annex_info, untracked, deeper(depth))
    if recursive and may_descend(depth):
        for sub in ds.subdatasets():
            if sub in inner or not _installed(ds, sub) or not _in_scope(sub, own):
                continue
            if sub in dirty_subs or annex_info:
                yield from _status_in(Dataset(ds.root / sub), f"{prefix}{sub}/", None,
                                      recursive, annex_info, untracked, deeper(depth))


def _status_one(ds: Dataset, prefix: str, rels: list[str] | None,
                annex_info: bool | str, untracked: str = "normal"
                ) -> Iterator[tuple[Result, bool]]:
    """(record, whether it is a subdataset with changes inside) for one dataset: one
    ``git status``, the object store walk for damaged content, with ``annex_info`` the keys."""
    if ds.head() is None and not (ds.git_dir / "index").exists():
        entries = [gitrepo.StatusEntry(p, "untracked")
                   for p in gitrepo.untracked_paths(ds.root, rels, each_file=untracked == "all")
                   ] if untracked != "no" else []
    else:
        entries = gitrepo.iter_status(ds.root, rels, untracked=untracked)
    keys = _annexed_files(ds, rels) if annex_info and ds.is_annex else {}
    present = _presence(ds, keys, {e.path for e in entries}) if keys else {}
    # DataLad's --annex availability/all: where each present key's content is
    where = annex.content_locations(ds.root, [k for k, here in present.items() if here]) \
        if keys and annex_info in ("availability", "all") else None
    seen = set()
    for e in entries:
        rel = e.path.rstrip("/")
        seen.add(rel)
        full = ds.root / rel
        if e.submodule:
            typ = "dataset"
        elif e.state == "deleted" or not os.path.lexists(full):
            typ = _MODE_TYPE.get(e.head_mode, "file")
        else:
            typ = _type(full)
        extra = None
        if rel in keys and e.state != "deleted":
            extra = _annex_extra(ds, keys[rel], present, where)
            typ = "file"  # an annexed file, locked or not, as DataLad's --annex says
        yield (Result("status", prefix + rel, state=_STATE.get(e.state, e.state), type=typ,
                      extra=extra), e.submodule and e.sub_dirty)
    for d in protect.damaged_since_recorded(ds, rels):
        for f in d.files or (d.key,):
            extra = {"key": d.key}
            if f in keys:
                extra = _annex_extra(ds, keys[f], present, where)
            seen.add(f)
            yield (Result("status", prefix + f, state="damaged", type="symlink",
                          message="the content was changed through its link and no longer "
                                  "matches its key; git annex fsck moves it aside, then "
                                  "rr get it again", extra=extra), False)
    for rel, (key, mode) in keys.items():
        if rel not in seen:
            seen.add(rel)
            yield (Result("status", prefix + rel, state="clean", type="file",
                          extra=_annex_extra(ds, (key, mode), present, where)), False)
    # a file (or link, or subdataset) asked for by name that has not changed: clean, as
    # DataLad reports it (a directory asked for shows what changed in it)
    for rel in rels or ():
        rel = rel.rstrip("/")
        full = ds.root / rel
        if rel in seen or rel == "." or not os.path.lexists(full) or \
                (full.is_dir() and not full.is_symlink() and not (full / ".git").exists()):
            continue
        typ = "dataset" if full.is_dir() and not full.is_symlink() else _type(full)
        yield (Result("status", prefix + rel, state="clean", type=typ), False)


def _annex_extra(ds: Dataset, entry: tuple[str, str], present: dict[str, bool],
                 where: dict[str, str] | None) -> dict:
    """An annexed file's properties, named as DataLad's status --annex names them (and
    ``objloc`` with availability/all, where the content is here)."""
    key = entry[0]
    size = protect.key_size(key)
    out = {"key": key, "backend": key.split("-", 1)[0],
           "keyname": key.split("--", 1)[1] if "--" in key else key,
           "bytesize": size, "humansize": _human(size) if size is not None else None,
           "has_content": present.get(key, False)}
    if where and where.get(key):
        out["objloc"] = str(ds.root / where[key])
    return out


def _human(size: int) -> str:
    """A size as people read it (decimal units): "2 B", "1.5 kB", "3.2 GB"."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _annexed_files(ds: Dataset, rels: list[str] | None) -> dict[str, tuple[str, str]]:
    """path -> (key, index mode) of the annexed files in the index (one ``ls-files``, one
    ``cat-file`` batch over the small blobs)."""
    index = [(m, s, p) for m, s, p in gitrepo.ls_files_stage(ds.root, rels)
             if m in _ANNEX_MODES]
    blobs = gitrepo.small_blobs(ds.root, (s for _, s, _ in index))
    out = {}
    for mode, sha, path in index:
        key = annex.key_of_link(blobs[sha]) if sha in blobs else None
        if key:
            out[path] = (key, mode)
    return out


def _presence(ds: Dataset, keys: dict[str, tuple[str, str]],
              changed: set[str]) -> dict[str, bool]:
    """key -> content here.  A locked file git reports unchanged is a link to its key:
    following it (one ``stat``, no process) tells; the others are asked of git-annex in one
    ``contentlocation`` batch."""
    present: dict[str, bool] = {}
    ask = []
    root = f"{ds.root}/"
    exists = os.path.exists
    for rel, (key, mode) in keys.items():
        if mode == "120000" and rel not in changed:
            present[key] = present.get(key, False) or exists(root + rel)
        else:
            ask.append(key)
    ask = [k for k in dict.fromkeys(ask) if not present.get(k)]
    present.update(annex.content_present(ds.root, ask))
    return present


# --- diff ----------------------------------------------------------------------------------


def diff(ds: Dataset, frm: str | None = None, to: str | None = None,
         paths: Sequence[str] = (), *, recursive: bool = False,
         base: Path | None = None, untracked: str = "normal",
         recursion_limit: int | None = None) -> Iterator[Result]:
    """What differs between ``frm`` (default HEAD) and ``to`` (default: the working tree,
    untracked files included as ``untracked`` says: no, normal, all - as ``datalad diff``),
    one record per path.  Revisions and
    paths are checked here, before anything is reported: an unknown revision is an error.
    ``recursion_limit``: with ``recursive``, that many levels of subdatasets down."""
    if untracked not in UNTRACKED_MODES:
        raise UsageError(f"--untracked must be no, normal or all, not {untracked!r}")
    depth = check_recursion(recursive, recursion_limit)
    frm_sha = _commit(ds, frm or "HEAD", allow_unborn=frm is None)
    to_sha = _commit(ds, to) if to is not None else None
    rels: list[str] | None = None
    missing: list[Result] = []
    if paths:
        rels, missing = _resolve(ds, paths, base, "diff")
        if to is not None:  # a path may exist only in a revision
            rels, missing = rels + [m.path or "." for m in missing], []
    return _chain(missing, _diff_in(ds, "", frm_sha, to_sha, rels, recursive, untracked,
                                    depth)
                  if rels is None or rels else iter(()))


_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _commit(ds: Dataset, rev: str, allow_unborn: bool = False) -> str:
    if rev.startswith("-"):
        raise RecorderError(f"not a revision: {rev!r}")
    sha = gitrepo.resolve_commit(ds.root, rev)
    if sha is None:
        if allow_unborn and ds.head() is None:
            return _EMPTY_TREE
        if rev == _EMPTY_TREE or rev == gitrepo.empty_tree(ds.root):
            return rev  # DataLad takes git's empty tree as --from: everything is added
        raise RecorderError(f"unknown revision: {rev}",
                            hint="name a commit, branch or tag (see git log)")
    return sha


def _diff_in(ds: Dataset, prefix: str, frm: str, to: str | None, rels: list[str] | None,
             recursive: bool, untracked: str = "normal",
             depth: int | None = None) -> Iterator[Result]:
    own, inner = _split(ds, rels)
    changed_subs: dict[str, tuple[str | None, str | None]] = {}
    if own is None or own:
        scope = None if own is None or "." in own else own
        for res in _diff_one(ds, prefix, frm, to, scope, untracked):
            if res.type == "dataset" and res.state != "untracked":
                sub = (res.path or "")[len(prefix):]
                changed_subs[sub] = (res.extra or {}).get("prev_gitshasum"), \
                    (res.extra or {}).get("gitshasum")
            yield res
    for sub, sub_rels in inner.items():
        yield from _diff_sub(ds, prefix, sub, _recorded(ds, frm, sub),
                             _recorded(ds, to, sub) if to else None, to is None, sub_rels,
                             recursive, untracked, deeper(depth))
    if recursive and may_descend(depth):
        for sub, (old, new) in changed_subs.items():
            if sub not in inner and _installed(ds, sub):
                yield from _diff_sub(ds, prefix, sub, old, new, to is None, None, recursive,
                                     untracked, deeper(depth))


def _recorded(ds: Dataset, rev: str, sub: str) -> str | None:
    return gitrepo.object_id(ds.root, f"{rev}:{sub}")


def _diff_sub(ds: Dataset, prefix: str, sub: str, old: str | None, new: str | None,
              worktree: bool, rels: list[str] | None, recursive: bool,
              untracked: str = "normal", depth: int | None = None) -> Iterator[Result]:
    """Inside an installed subdataset: from the commit recorded at ``frm`` (none: the empty
    tree) to the one recorded at ``to`` (or its working tree)."""
    subds = Dataset(ds.root / sub)
    where = f"{prefix}{sub}"
    for sha in (old, new):
        if sha and gitrepo.resolve_commit(subds.root, sha) is None:
            yield Result("diff", where, IMPOSSIBLE, type="dataset",
                         message=f"the recorded commit {sha[:10]} is not in the installed "
                                 "subdataset (rr update or git fetch there first)")
            return
    if not worktree and new is None:
        return  # removed at --to: the parent's record says so
    yield from _diff_in(subds, where + "/", old or _EMPTY_TREE, None if worktree else new,
                        rels, recursive, untracked, depth)


def _index_second(ds: Dataset) -> int | None:
    """The second git's index was last written in (None: no index)."""
    try:
        return int((ds.git_dir / "index").stat().st_mtime)
    except OSError:
        return None


def _changed_since(full: Path, second: int) -> bool:
    """Whether the file was written in or after ``second``: git's "racily clean" case, where
    an index entry's stat can match a file changed after it was recorded."""
    try:
        return int(full.stat().st_mtime) >= second
    except OSError:
        return False


def _diff_one(ds: Dataset, prefix: str, frm: str, to: str | None,
              rels: list[str] | None, untracked: str = "normal") -> Iterator[Result]:
    entries = gitrepo.iter_diff_raw(ds.root, frm, to, rels)
    blobs = gitrepo.small_blobs(ds.root, [s for e in entries for m, s in
                                          ((e.old_mode, e.old_sha), (e.new_mode, e.new_sha))
                                          if m in _ANNEX_MODES])
    rehash: list[tuple[gitrepo.DiffEntry, dict]] = []
    racy_since = _index_second(ds) if to is None else None
    for e in entries:
        full = ds.root / e.path
        old_key = annex.key_of_link(blobs[e.old_sha]) if e.old_sha in blobs else None
        new_key = annex.key_of_link(blobs[e.new_sha]) if e.new_sha in blobs else None
        new_sha: str | None = None if e.new_sha == gitrepo.NULL_SHA else e.new_sha
        stat_only = False
        if racy_since is not None and new_key and new_sha is not None \
                and e.new_mode in ("100644", "100755") \
                and _changed_since(full, racy_since) \
                and protect.key_matches(new_key, full) is False:
            # an unlocked file rewritten (same size) in the second its index entry was made:
            # git (and git-annex's inode cache) trusted the stat; its content says otherwise
            new_key, new_sha = None, None
        elif to is None and e.new_sha == gitrepo.NULL_SHA and e.new_mode != "000000":
            if e.new_mode == "160000":
                new_sha = gitrepo.head_sha(full)
            elif e.new_mode == "120000":
                try:
                    new_key = annex.key_of_link(os.readlink(full))
                except OSError:
                    new_key = None
            elif old_key and protect.key_matches(old_key, full):
                new_key = old_key  # an unlocked file with the content it was recorded with
            elif not old_key and e.old_mode == e.new_mode and "\n" not in e.path:
                stat_only = True  # maybe only its stat changed: hashed below, unfiltered
        if old_key and old_key == new_key:
            continue  # the same content, locked or unlocked
        if e.new_mode == "160000" or e.old_mode == "160000":
            typ = "dataset"
        else:
            mode = e.new_mode if e.letter != "D" else e.old_mode
            typ = "file" if mode in ("100644", "100755") else _MODE_TYPE.get(mode, "file")
        extra: dict = {"prev_gitshasum": None if e.old_mode == "000000" else e.old_sha,
                       "gitshasum": None if e.new_mode == "000000" else new_sha}
        if old_key or new_key:
            extra.update(prev_key=old_key, key=new_key)
        state = {"A": "added", "D": "deleted"}.get(e.letter, "modified")
        res = Result("diff", prefix + e.path, state=state, type=typ, extra=extra)
        if stat_only:
            rehash.append((e, extra))
            continue
        yield res
    if rehash:
        shas = gitrepo.hash_files_raw(ds.root, [e.path for e, _ in rehash])
        for (e, extra), sha in zip(rehash, shas):
            if sha != e.old_sha:
                extra["gitshasum"] = sha
                yield Result("diff", prefix + e.path, state="modified", type="file",
                             extra=extra)
    if to is None and untracked != "no":
        for p in gitrepo.untracked_paths(ds.root, rels, each_file=untracked == "all"):
            rel = p.rstrip("/")
            yield Result("diff", prefix + rel, state="untracked", type=_type(ds.root / rel))
