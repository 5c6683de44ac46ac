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
from .results import IMPOSSIBLE, NOTNEEDED, OK, Result


def unlock(ds: Dataset, paths: Sequence[str], *, base: Path | None = None) -> list[Result]:
    """One record per file (``path`` relative to ``ds``); every path is checked first, paths
    inside installed subdatasets are unlocked there.  The caller holds the dataset lock."""
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
