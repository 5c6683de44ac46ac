"""download-url: put files from URLs into the dataset with the URL recorded as their source,
so that a drop followed by a get downloads them again."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from . import annex, gitrepo
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .lock import dataset_lock


@dataclass
class DownloadResult:
    files: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": "download-url", "status": "ok", "files": self.files,
                "extracted": self.extracted, "commit": self.commit}


def _target(ds: Dataset, url: str, path: str | None, several: bool) -> str:
    name = unquote(os.path.basename(urlparse(url).path)) or "download"
    here = Path.cwd() if ds.contains(Path.cwd()) else ds.root
    if path is None:
        return ds.relpath(here / name)
    full = here / path
    if several or path.endswith("/") or full.is_dir():
        return ds.relpath(full / name)
    return ds.relpath(full)


def download_url(ds: Dataset, urls: list[str], *, path: str | None = None,
                 message: str | None = None, archive: bool = False) -> DownloadResult:
    if not urls:
        raise UsageError("give at least one URL")
    if not ds.is_annex:
        raise RecorderError("download-url needs a dataset with git-annex (to record sources)")
    for url in urls:
        if urlparse(url).scheme not in ("http", "https", "ftp", "file"):
            raise UsageError(f"not a downloadable URL: {url}")
    targets = [_target(ds, u, path, len(urls) > 1) for u in urls]
    for t in targets:
        if os.path.lexists(ds.root / t):
            raise RecorderError(f"file exists already: {t}")
    result = DownloadResult()
    created: list[str] = []
    try:
        with dataset_lock(ds.git_dir):
            for url, target in zip(urls, targets):
                (ds.root / target).parent.mkdir(parents=True, exist_ok=True)
                try:
                    annex.addurl(ds.root, url, target)
                except RecorderError as exc:
                    raise RecorderError(f"download of {url} failed: {exc.message}") from None
                created.append(target)
                result.files.append(target)
            if archive:
                for target in list(result.files):
                    result.extracted += _extract(ds, target)
                    created += result.extracted
        from .save import save

        msg = message or ("[DATALAD] Download URLs" if not archive else
                          "[DATALAD] Download and extract archives")
        if archive and result.extracted:
            annex.ensure_archive_remote(ds.root)
        # register before saving so the git-annex branch changes land with the commit
        saved = save(ds, created, base=ds.root, message=msg + "\n\nURLs:\n  " +
                     "\n  ".join(urls))
        if archive:
            from .archive_remote import member_url

            pairs = []
            for target in result.files:
                akey = annex.lookupkey(ds.root, target)
                prefix = str(Path(target).parent / _stem(Path(target).name))
                for f in result.extracted:
                    if f.startswith(prefix + "/") and akey:
                        key = annex.lookupkey(ds.root, f)
                        if key:
                            pairs.append((key, member_url(akey, f[len(prefix) + 1:])))
            annex.registerurls(ds.root, pairs)
        result.commit = saved.commit
    except BaseException:
        for t in created:  # nothing half-done stays behind
            full = ds.root / t
            if full.is_symlink() or full.is_file():
                full.unlink()
        gitrepo.call_git(["reset", "-q", "--", *created], ds.root) if created else None
        raise
    return result


_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")


def _stem(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _extract(ds: Dataset, target: str) -> list[str]:
    """Extract an archive next to itself (into a directory named after it); the archive stays
    in the dataset, annexed with its URL, as the source of what was extracted."""
    full = ds.root / target
    stem = _stem(full.name)
    if stem == full.name:
        raise UsageError(f"not an archive rr can extract (.tar[.gz|.bz2|.xz], .tgz, .zip): "
                         f"{target}")
    dest = full.parent / stem
    if dest.exists():
        raise RecorderError(f"extraction target exists already: {ds.relpath(dest)}")
    dest.mkdir()
    try:
        if zipfile.is_zipfile(full):
            with zipfile.ZipFile(full) as zf:
                for member in zf.namelist():
                    _check_member(dest, member)
                zf.extractall(dest)
        else:
            with tarfile.open(full) as tf:
                for member in tf.getmembers():
                    _check_member(dest, member.name)
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(dest, filter="data")
                else:  # older Pythons: members were checked above
                    tf.extractall(dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    out = []
    for dirpath, _dirs, files in os.walk(dest):
        for f in files:
            out.append(ds.relpath(Path(dirpath) / f))
    return sorted(out)


def _check_member(dest: Path, name: str) -> None:
    target = (dest / name).resolve()
    if not str(target).startswith(str(dest.resolve())):
        raise RecorderError(f"unsafe path in archive: {name}")
