"""download-url: put files from URLs into the dataset with the URL recorded as their source,
so that a drop followed by a get downloads them again."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from . import annex, gitrepo
from .dataset import Dataset
from .errors import RecorderError, UnsafeArchiveError, UsageError
from .results import OK, Result
from .archive_remote import member_url
from .lock import dataset_lock
from .save import save


def _target(ds: Dataset, url: str, path: str | None, several: bool) -> str:
    name = unquote(os.path.basename(urlparse(url).path)) or "download"
    here = Path.cwd() if ds.contains(Path.cwd()) else ds.root
    if path is None:
        return ds.relpath(here / name)
    full = here / path
    if several or path.endswith("/") or full.is_dir():
        return ds.relpath(full / name)
    return ds.relpath(full)


def _ensure_regular(path: str, url: str) -> None:
    """A file:// URL names a regular file: a FIFO would block the download for ever, a device
    (/dev/zero) never end; refused before git-annex opens it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # git-annex says what is wrong with a missing file
    if not stat.S_ISREG(mode):
        raise UsageError(f"{url} is not a regular file (a FIFO, device, socket or directory)",
                         hint="give the URL of a file")


def download_url(ds: Dataset, urls: list[str], *, path: str | None = None,
                 message: str | None = None, archive: bool = False) -> Result:
    """Download ``urls`` into the dataset (their sources registered with git-annex), extract
    archives with ``archive``, save: a ``download-url`` result (fields ``files``,
    ``extracted``, ``commit``)."""
    if not urls:
        raise UsageError("give at least one URL")
    if not ds.is_annex:
        raise RecorderError("download-url needs a dataset with git-annex (to record sources)")
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https", "ftp", "file"):
            raise UsageError(f"not a downloadable URL: {url}")
        if parsed.scheme == "file":
            _ensure_regular(unquote(parsed.path), url)
    targets = [_target(ds, u, path, len(urls) > 1) for u in urls]
    for t in targets:
        if os.path.lexists(ds.root / t):
            raise RecorderError(f"file exists already: {t}")
    files: list[str] = []
    extracted: list[str] = []
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
                files.append(target)
            if archive:
                for target in list(files):
                    extracted += _extract(ds, target)
                    created += extracted
        msg = message or ("[DATALAD] Download URLs" if not archive else
                          "[DATALAD] Download and extract archives")
        if archive and extracted:
            annex.ensure_archive_remote(ds.root)
        # register before saving so the git-annex branch changes land with the commit
        saved = save(ds, created, base=ds.root, message=msg + "\n\nURLs:\n  " +
                     "\n  ".join(urls))
        if archive:
            pairs = []
            for target in files:
                akey = annex.lookupkey(ds.root, target)
                prefix = str(Path(target).parent / _stem(Path(target).name))
                for f in extracted:
                    if f.startswith(prefix + "/") and akey:
                        key = annex.lookupkey(ds.root, f)
                        if key:
                            pairs.append((key, member_url(akey, f[len(prefix) + 1:])))
            annex.registerurls(ds.root, pairs)
    except BaseException:
        for t in created:  # nothing half-done stays behind
            full = ds.root / t
            if full.is_symlink() or full.is_file():
                full.unlink()
        gitrepo.unstage(ds.root, created)
        raise
    return Result("download-url", None, OK,
                  extra={"files": files, "extracted": extracted, "commit": saved.commit})


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
        try:
            if zipfile.is_zipfile(full):
                with zipfile.ZipFile(full) as zf:
                    for info in zf.infolist():
                        _check_zip_member(zf, info)
                    zf.extractall(dest)
            else:
                with tarfile.open(full) as tf:
                    for member in tf.getmembers():
                        _check_tar_member(member)
                    # the data filter checks again while extracting, following the links
                    # already extracted (a link to a link that leads out is refused too)
                    tf.extractall(dest, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError,
                EOFError, ValueError) as exc:
            raise RecorderError(f"cannot extract {target}: {_reason(exc)}") from None
        _check_extracted(dest)
    except BaseException:
        _remove_tree(dest)
        raise
    out = []
    for dirpath, _dirs, files in os.walk(dest):
        for f in files:
            out.append(ds.relpath(Path(dirpath) / f))
    return sorted(out)


def _check_name(name: str) -> None:
    if not name or "\0" in name:
        raise UnsafeArchiveError(name, "has an empty or NUL name")
    if name.startswith(("/", "\\")) or (name[:1].isalpha() and name[1:3] in (":/", ":\\")):
        raise UnsafeArchiveError(name, "has an absolute name")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafeArchiveError(name, "has '..' in its name")
    if any(p.lower() == ".git" for p in parts):
        raise UnsafeArchiveError(name, "would be written into a .git directory")


def _link_leaves(member_name: str, link: str) -> bool:
    """Whether a link target (relative to the member's directory) leaves the archive root."""
    if not link or link.startswith("/"):
        return True
    parts = [p for p in member_name.split("/")[:-1] if p not in ("", ".")]
    depth = len(parts)
    for part in link.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


def _check_tar_member(m: tarfile.TarInfo) -> None:
    _check_name(m.name)
    if m.ischr() or m.isblk() or m.isfifo() or not (m.isfile() or m.isdir() or m.issym()
                                                      or m.islnk()):
        raise UnsafeArchiveError(m.name, "is a device, FIFO or other special file")
    if m.issym() and _link_leaves(m.name, m.linkname):
        raise UnsafeArchiveError(m.name, f"is a symlink leading outside ({m.linkname})")
    if m.islnk():
        # a hard link names another member of the archive, relative to the archive root
        _check_name(m.linkname)


def _check_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    _check_name(info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        # zipfile writes a symlink entry as a file holding its target; refuse one that
        # leads out all the same, as for tar
        target = zf.read(info)[:4096].decode("utf-8", "replace")
        if _link_leaves(info.filename, target):
            raise UnsafeArchiveError(info.filename, f"is a symlink leading outside ({target})")
    if mode and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or
                 stat.S_ISSOCK(mode)):
        raise UnsafeArchiveError(info.filename, "is a device, FIFO or other special file")


def _check_extracted(dest: Path) -> None:
    """After extraction: every entry is really inside ``dest`` (belt and braces)."""
    real_dest = os.path.realpath(dest)
    for dirpath, dirs, files in os.walk(dest):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                real = os.path.realpath(full)
                if os.path.commonpath([real, real_dest]) != real_dest:
                    raise UnsafeArchiveError(os.path.relpath(full, dest),
                                             "is a symlink leading outside")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _remove_tree(dest: Path) -> None:
    if dest.is_symlink() or not dest.exists():
        return
    for dirpath, _dirs, _files in os.walk(dest):
        try:
            os.chmod(dirpath, 0o755)
        except OSError:
            pass
    shutil.rmtree(dest, ignore_errors=True)
