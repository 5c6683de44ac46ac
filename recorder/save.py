"""Saving: stage changes (large files into the annex per .gitattributes) and commit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import annex, gitrepo
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .gitrepo import StatusEntry
from .lock import dataset_lock, deferred_signals


@dataclass
class SaveResult:
    status: str  # ok | notneeded
    commit: str | None
    paths: list[str] = field(default_factory=list)
    tag: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return {"action": "save", "status": self.status, "commit": self.commit,
                "paths": self.paths, "tag": self.tag, "message": self.message}


def stage(ds: Dataset, entries: Sequence[StatusEntry], message: str = "") -> list[str]:
    """Stage the given status entries; returns the staged paths.

    A subdataset with changes inside is saved first (same message), then its new state is
    staged in this dataset, as DataLad saves a hierarchy bottom-up.
    """
    for e in entries:
        if e.submodule and e.sub_dirty:
            sub = Dataset(ds.root / e.path)
            sub_entries = [x for x in sub.status(untracked="all") if x.state != "unmerged"]
            if sub_entries:
                commit_entries(sub, sub_entries, message, only=False)
    to_add = [e.path for e in entries if e.state != "deleted" and not e.submodule]
    plain = [e.path for e in entries if e.state == "deleted" or e.submodule]
    if to_add:
        if ds.is_annex:
            annex.add(ds.root, to_add)
        else:
            gitrepo.add(ds.root, to_add)
    if plain:
        gitrepo.add(ds.root, plain)
    return [e.path for e in entries]


def commit_entries(ds: Dataset, entries: Sequence[StatusEntry], message: str,
                   only: bool) -> str | None:
    """Stage and commit ``entries``; with ``only``, nothing else staged goes into the commit.

    Returns None when staging shows nothing really changed (an unlocked file rewritten with
    the same content is locked again and equals HEAD).
    """
    with deferred_signals():
        paths = stage(ds, entries, message)
        if not gitrepo.has_staged_changes(ds.root, paths if only else None):
            return None
        return gitrepo.commit(ds.root, message, only=paths if only else None)


def ensure_tag_available(ds: Dataset, tag: str) -> None:
    if not gitrepo.check_ref_format_tag(ds.root, tag):
        raise UsageError(f"not a valid tag name: {tag!r}")
    if gitrepo.resolve_commit(ds.root, f"refs/tags/{tag}") is not None:
        raise RecorderError(f"tag {tag!r} already exists", hint="choose another --version-tag")


def _save_in_subdatasets(ds: Dataset, rels: list[str], message: str | None) -> list[str]:
    """Paths inside installed subdatasets are saved there first (same message); the
    subdataset's new state is then saved here."""
    if not (ds.root / ".gitmodules").exists():
        return rels
    from .sharing import installed, split_by_dataset

    out: list[str] = []
    for owner, group in split_by_dataset(ds, rels).items():
        if owner and installed(ds, owner) and any(p != owner for p in group):
            sub = Dataset(ds.root / owner)
            save(sub, [str(ds.root / p) for p in group], message=message)
            out.append(owner)
        else:
            out += group
    return out


def save(ds: Dataset, paths: Sequence[str] | None = None, message: str | None = None,
         version_tag: str | None = None, base: Path | None = None) -> SaveResult:
    """Commit ``paths`` (relative to ``base``, default: the working directory) or all changes."""
    if version_tag:
        ensure_tag_available(ds, version_tag)
    rel: list[str] | None = None
    if paths:
        rel = []
        missing = []
        for p in paths:
            r = ds.relpath(p, base)
            full = ds.root / r
            if not os.path.lexists(full) and not gitrepo.ls_files(ds.root, [r]):
                missing.append(p)
            rel.append(r)
        if missing:
            raise RecorderError("path does not exist and is not tracked: " + ", ".join(missing))
        rel = _save_in_subdatasets(ds, rel, message)
    with dataset_lock(ds.git_dir):
        entries = ds.status(rel, untracked="all")
        entries = [e for e in entries if e.state != "unmerged"]
        msg = message if message is not None else "[DATALAD] Recorded changes"
        if not entries:
            if ds.head() is None and version_tag:
                raise RecorderError("nothing to save and no commit to tag yet")
            if version_tag:
                gitrepo.tag(ds.root, version_tag)
            return SaveResult("notneeded", ds.head(), [], version_tag, "nothing to save")
        sha = commit_entries(ds, entries, msg, only=rel is not None)
        if version_tag:
            gitrepo.tag(ds.root, version_tag)
    if sha is None:
        return SaveResult("notneeded", ds.head(), [], version_tag, "nothing to save")
    return SaveResult("ok", sha, [e.path for e in entries], version_tag, msg)
