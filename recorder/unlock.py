"""``rr unlock``: make annexed files editable without a run, as ``datalad unlock``.

``git annex unlock`` replaces each locked file (a symlink into the object store) by a
writable copy of its content and stages that change; the object store keeps its own copy
(annex.thin is not set), so editing the file cannot damage it.  ``rr save`` then takes the
file into the annex again and locks it, as ``datalad save`` does.  As DataLad: a file whose
content is not here cannot be unlocked (``impossible``), a file in git is ``notneeded``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import annex, gitrepo
from .dataset import Dataset
from .recursion import check_recursion, deeper, may_descend
from .subdatasets import installed
from .results import IMPOSSIBLE, NOTNEEDED, OK, Result


def unlock(ds: Dataset, paths: Sequence[str], *, base: Path | None = None,
           recursive: bool = False, recursion_limit: int | None = None) -> list[Result]:
    """One record per file (``path`` relative to ``ds``); every path is checked first, paths
    inside installed subdatasets are unlocked there; with ``recursive`` the files of the
    installed subdatasets under the directories named too (``recursion_limit`` levels down
    from ``ds``), as DataLad's unlock -r.  The caller holds the dataset lock."""
    depth = check_recursion(recursive, recursion_limit)
    rels = [ds.ensure_inside(p, base) for p in paths] if paths else ["."]
    by_ds: dict[str, list[str]] = {}
    results = []
    for rel in rels:
        if not os.path.lexists(ds.root / rel):
            results.append(Result("unlock", rel, IMPOSSIBLE, message="path does not exist"))
            continue
        by_ds.setdefault(_owner(ds, rel), []).append(rel)
    for owner, group in by_ds.items():
        sub = Dataset(ds.root / owner) if owner else ds
        prefix = f"{owner}/" if owner else ""
        inner = [r[len(prefix):] if r != owner else "." for r in group]
        results += _unlock_in(sub, prefix, inner)
        if recursive:
            results += _unlock_below(sub, prefix, inner, _levels_left(ds, owner, depth))
    return results


def _levels_left(ds: Dataset, owner: str, depth: int | None) -> int | None:
    """``depth`` (levels below ``ds``) as seen from the (sub)dataset ``owner`` of ``ds``."""
    if depth is None or not owner:
        return depth
    parts = Path(owner).parts
    level = sum(1 for n in range(1, len(parts) + 1)
                if (ds.root.joinpath(*parts[:n]) / ".git").exists())
    return depth - level


def _unlock_below(ds: Dataset, prefix: str, rels: list[str], depth: int | None
                  ) -> list[Result]:
    """The files of the installed subdatasets of ``ds`` inside the directories ``rels``
    (their own subdatasets' too, ``depth`` levels down)."""
    results: list[Result] = []
    if not may_descend(depth):
        return results
    dirs = [r for r in rels if (ds.root / r).is_dir() and not (ds.root / r).is_symlink()]
    for sub in sorted(ds.subdatasets()):
        if not installed(ds, sub) or not any(
                d == "." or sub == d or sub.startswith(d.rstrip("/") + "/") for d in dirs):
            continue
        child = Dataset(ds.root / sub)
        results += _unlock_in(child, f"{prefix}{sub}/", ["."])
        results += _unlock_below(child, f"{prefix}{sub}/", ["."], deeper(depth))
    return results


def _owner(ds: Dataset, rel: str) -> str:
    """The installed (sub)dataset holding ``rel``, relative to ``ds`` ('' for ``ds``)."""
    found = Dataset.find(ds.root / rel if (ds.root / rel).is_dir() and
                         not (ds.root / rel).is_symlink() else (ds.root / rel).parent)
    owner = os.path.relpath(found.root, ds.root)
    return "" if owner == "." else Path(owner).as_posix()


def _unlock_in(ds: Dataset, prefix: str, rels: list[str]) -> Iterator[Result]:
    files = [r for r in rels if not (ds.root / r).is_dir() or (ds.root / r).is_symlink()]
    dirs = [r for r in rels if r not in files]
    if not ds.is_annex:
        for r in files:
            yield Result("unlock", prefix + r, NOTNEEDED, type="file",
                         message="non-annex file; cannot unlock")
        return
    # a directory: its locked annexed files (git's index says which); DataLad passes over
    # the ones whose content is absent there and reports only what it unlocked
    under = gitrepo.ls_files_symlinks(ds.root, dirs) if dirs else []
    todo: list[str] = []
    for r in files:
        full = ds.root / r
        if annex.is_locked_annexed(full):
            if full.exists():
                todo.append(r)
            else:
                yield Result("unlock", prefix + r, IMPOSSIBLE, type="file",
                             message="no content present; cannot unlock (rr get it first)")
        elif gitrepo.ls_files(ds.root, [r]):
            pointer = _pointer_key(ds, r)
            if pointer:
                yield Result("unlock", prefix + r, NOTNEEDED, type="file",
                             message="already unlocked")
            else:
                yield Result("unlock", prefix + r, NOTNEEDED, type="file",
                             message="non-annex file; cannot unlock")
        else:
            # as DataLad: impossible, not "nothing to do" (the file is not in the dataset)
            yield Result("unlock", prefix + r, IMPOSSIBLE, type="file",
                         message="untracked; cannot unlock (rr save it first)")
    todo += [r for r in under if annex.is_locked_annexed(ds.root / r)
             and (ds.root / r).exists()]
    if not todo:
        return
    records = {rec.get("file"): rec for rec in annex.unlock(ds.root, todo)}
    for r in todo:
        rec = records.get(r)
        if rec is not None and rec.get("success", True):
            yield Result("unlock", prefix + r, OK, type="file")
        else:
            why = " ".join(m.strip() for m in (rec or {}).get("error-messages", []))
            yield Result("unlock", prefix + r, "error", type="file",
                         message=why or "git annex unlock did not unlock it")


def _pointer_key(ds: Dataset, rel: str) -> str | None:
    """The key of an unlocked annexed file (its index entry is a pointer file)."""
    staged = gitrepo.ls_files_stage(ds.root, [rel])
    if not staged:
        return None
    blobs = gitrepo.small_blobs(ds.root, [staged[0][1]])
    return annex.key_of_link(blobs[staged[0][1]]) if staged[0][1] in blobs else None
