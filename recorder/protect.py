"""Annexed content is never overwritten in place by a command rr runs.

A locked annexed file is a symlink to its content in ``.git/annex/objects``, which git-annex
makes read-only.  Root ignores file modes, so a command run as root that writes into such a
file rewrites the only copy of that content, and nothing in git notices.  rr therefore

- prevents it: as root, the command runs without ``CAP_DAC_OVERRIDE`` (``setpriv``), so file
  modes hold for it as for any user, and a container gets the object store mounted read-only;
- detects it: after the command, objects whose inode changed while it ran are checked against
  their keys (size, then checksum), so a write that got through anyway (a command that made
  the objects writable first) is found, the run is not recorded, and the damaged objects are
  moved aside by ``git annex fsck`` (and fetched again where another copy exists).
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from . import annex, gitrepo
from .dataset import Dataset
from .errors import RecorderError

_CAP_DAC_OVERRIDE = 1
_CAP_SETPCAP = 8
_caps: tuple[int, int] | None = None


def _effective_caps() -> tuple[int, int]:
    """(effective, bounding) capability masks of this process."""
    global _caps
    if _caps is None:
        eff = bnd = 0
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("CapEff:"):
                        eff = int(line.split()[1], 16)
                    elif line.startswith("CapBnd:"):
                        bnd = int(line.split()[1], 16)
        except (OSError, ValueError):
            pass
        _caps = (eff, bnd)
    return _caps


def can_override_modes() -> bool:
    """Whether this process ignores file modes (root with CAP_DAC_OVERRIDE)."""
    return bool(_effective_caps()[0] & (1 << _CAP_DAC_OVERRIDE))


def wrap_argv(ds: Dataset, argv: list[str]) -> list[str]:
    """``argv`` such that, in an annexed dataset, it runs without CAP_DAC_OVERRIDE."""
    if not ds.is_annex or not can_override_modes():
        return argv
    eff, _ = _effective_caps()
    setpriv = shutil.which("setpriv")
    if setpriv is None or not eff & (1 << _CAP_SETPCAP):
        return argv  # cannot drop it: detection after the command still guards the content
    return [setpriv, "--inh-caps=-dac_override", "--bounding-set=-dac_override", "--", *argv]


def protected() -> bool:
    """Whether a command rr runs is kept from writing into read-only annexed content."""
    if not can_override_modes():
        return True
    eff, _ = _effective_caps()
    return bool(eff & (1 << _CAP_SETPCAP)) and shutil.which("setpriv") is not None


# --- detection ----------------------------------------------------------------------------


class Damaged(NamedTuple):  # a NamedTuple: rr run imports this module on every call
    key: str
    object_path: Path
    files: tuple[str, ...]  # worktree files pointing at it (dataset-relative)


def _objects_dir(ds: Dataset) -> Path:
    return ds.git_dir / "annex" / "objects"


def iter_object_paths(objects: Path) -> Iterable[tuple[str, str]]:
    """(key, path) of every object file.  The layout is ``H1/H2/KEY/KEY`` (git-annex's
    hashdirmixed, or hashdirlower in bare repositories); a key directory is never listed,
    its file is named by the key itself.  Plain strings: this runs over every object."""
    try:
        level1 = [e.path for e in os.scandir(objects) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for d1 in level1:
        try:
            level2 = [e.path for e in os.scandir(d1) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for d2 in level2:
            try:
                keys = os.listdir(d2)
            except OSError:
                continue
            prefix = d2 + "/"
            for key in keys:
                yield key, f"{prefix}{key}/{key}"


def iter_objects(objects: Path) -> Iterable[tuple[str, str, os.stat_result]]:
    """(key, path, stat) of every object file (paths as strings: no Path per object)."""
    lstat, isreg = os.lstat, stat.S_ISREG
    for key, path in iter_object_paths(objects):
        try:
            st = lstat(path)
        except OSError:
            continue
        if isreg(st.st_mode):
            yield key, path, st


class ObjectWatch:
    """Finds annexed content a command wrote into through its link.

    Where rr keeps the command from writing into read-only content (``protected()``: not
    root, or root without ``CAP_DAC_OVERRIDE``), a write needs a deliberate ``chmod`` first;
    then the declared inputs are checked after the command (cheap), and every annexed file
    only when the command changed nothing else (the case that would otherwise pass unseen).
    Where rr cannot prevent it, every annexed file is checked: the locked files are listed
    (one ``git ls-files``) in a thread while the command runs and stat'ed through their links
    in a thread while rr runs ``git status`` (about 50 ms for 10,000 files).  Only content
    whose inode changed since the command started is checked against its key (checksum).
    Objects the command itself added are new, not overwritten.
    """

    MARGIN_NS = 20_000_000  # inode times come from a coarse clock: start the window earlier

    def __init__(self, ds: Dataset, has_commits: bool, inputs: Sequence[str] = ()) -> None:
        self.ds = ds
        self.enabled = ds.is_annex and has_commits
        self.full = self.enabled and not protected()
        self.inputs = list(inputs)
        self.since_ns = fs_now(ds) - self.MARGIN_NS if self.enabled else 0
        self._links: list[str] = []
        self._changed: list[str] = []
        self._lister = threading.Thread(target=self._list, daemon=True)
        self._checker: threading.Thread | None = None
        if self.full:
            self._lister.start()

    def _list(self) -> None:
        try:
            self._links = gitrepo.ls_files_symlinks(self.ds.root, ["."])
        except Exception:  # noqa: BLE001 - without a listing there is nothing to compare
            self._links = []

    def check_async(self) -> None:
        if not self.full:
            return
        self._checker = threading.Thread(target=self._stat, daemon=True)
        self._checker.start()

    def _stat(self) -> None:
        if self._lister.is_alive() or self._lister.ident is not None:
            self._lister.join()
        root = str(self.ds.root) + "/"
        since, stat_, changed = self.since_ns, os.stat, []
        for rel in self._links:
            try:
                st = stat_(root + rel)  # through the link: the content's inode
            except OSError:
                continue
            if st.st_ctime_ns >= since or st.st_mtime_ns >= since:
                changed.append(rel)
        self._changed = changed

    def damaged(self, *, nothing_else_changed: bool = False) -> list[Damaged]:
        if not self.enabled:
            return []
        if self.full:
            assert self._checker is not None
            self._checker.join()
            changed = self._changed
        elif nothing_else_changed:
            self._list()
            self._stat()
            changed = self._changed
        else:
            changed = self.inputs
        return damaged_objects(self.ds, self.since_ns, changed)


def key_size(key: str) -> int | None:
    for part in key.split("--", 1)[0].split("-")[1:]:
        if part.startswith("s") and part[1:].isdigit():
            return int(part[1:])
    return None


_HASHES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512",
           "SHA224": "sha224", "SHA384": "sha384", "SHA3_256": "sha3_256",
           "SHA3_512": "sha3_512", "BLAKE2B512": "blake2b"}


def key_matches(key: str, path: Path | str) -> bool | None:
    """Whether the content at ``path`` is what ``key`` names (None: cannot be told)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    expected = key_size(key)
    if expected is not None and size != expected:
        return False
    backend = key.split("-", 1)[0]
    algo = _HASHES.get(backend.rstrip("E"))
    if algo is None:
        return None
    digest = key.split("--", 1)[1] if "--" in key else ""
    if backend.endswith("E"):
        digest = digest.split(".", 1)[0]
    import hashlib  # noqa: PLC0415  OpenSSL's start (~2 ms): only when content is checked

    h = hashlib.new(algo)
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest() == digest


def fs_now(ds: Dataset) -> int:
    """The file system's own current time (ns): inode times come from a coarse kernel clock
    that can lag ``time.time_ns()``, so "changed since" is measured against a stamp file."""
    stamp = ds.git_dir / "rr-stamp"
    try:
        stamp.touch()
        os.utime(stamp)
        return os.stat(stamp).st_ctime_ns
    except OSError:
        return time.time_ns() - 50_000_000


def _suspect(key: str, path: Path | str, st: os.stat_result, since_ns: int, written: bool) -> bool:
    """Whether an object whose inode (or, with ``written``, whose content) changed since
    ``since_ns`` no longer holds its key."""
    if st.st_mtime_ns < since_ns and (written or st.st_ctime_ns < since_ns):
        return False
    ok = key_matches(key, path)
    return ok is False or (ok is None and st.st_mtime_ns >= since_ns)


def _objects_of(ds: Dataset, paths: Sequence[str]) -> Iterable[tuple[str, Path, os.stat_result]]:
    """(key, object path, stat) of the files at or under ``paths`` that are locked annexed
    files now: a file the command (or rr, for an output) replaced by a file of its own is not
    annexed content, and a link that leads anywhere but into the object store is not either."""
    files = [p for p in paths if annex.is_locked_annexed(ds.root / p)]
    dirs = [p for p in paths if (ds.root / p).is_dir() and not (ds.root / p).is_symlink()]
    if dirs:
        files += [p for p in gitrepo.ls_files_symlinks(ds.root, dirs)
                  if annex.is_locked_annexed(ds.root / p)]
    for rel in files:
        full = ds.root / rel
        try:
            target = full.resolve()
            st = os.lstat(target)
        except OSError:
            continue
        key = os.path.basename(target)
        # annex/objects/H1/H2/KEY/KEY (of this repository or, in a linked worktree, of the
        # repository it belongs to)
        parents = target.parents
        if len(parents) > 5 and parents[0].name == key and parents[3].name == "objects" and \
                parents[4].name == "annex" and stat.S_ISREG(st.st_mode):
            yield key, target, st


def damaged_objects(ds: Dataset, since_ns: int, paths: Sequence[str] | None = None, *,
                    written: bool = False) -> list[Damaged]:
    """Annexed content overwritten in place since ``since_ns`` (wall clock, ns): among the
    objects of ``paths`` (dataset-relative), or among all objects when ``paths`` is None
    (a walk of the whole object store)."""
    if not ds.is_annex:
        return []
    if paths is None:
        objects = _objects_dir(ds)
        candidates: Iterable[tuple[str, str | Path, os.stat_result]] = \
            iter_objects(objects) if objects.is_dir() else iter(())
    else:
        candidates = _objects_of(ds, paths)
    bad = {k: p for k, p, st in candidates if _suspect(k, p, st, since_ns, written)}
    if not bad:
        return []
    files = _files_of_keys(ds, list(bad))
    return [Damaged(k, Path(p), tuple(files.get(k, ()))) for k, p in bad.items()]


def damaged_since_recorded(ds: Dataset, paths: Sequence[str] | None = None) -> list[Damaged]:
    """:func:`damaged_objects` among objects written after both the last commit and the last
    change git-annex recorded (a ``get`` or ``add`` updates its index after writing the
    content): content fetched or added normally is not checksummed again, content written
    through its link later is (what ``rr status`` shows as damaged)."""
    if not ds.is_annex:
        return []
    seconds = gitrepo.head_commit_time(ds.root)
    # commit times are whole seconds: content added in the second of the commit is not new
    since = (seconds + 1) * 1_000_000_000 if seconds is not None else 0
    try:
        since = max(since, os.stat(ds.git_dir / "annex" / "index").st_mtime_ns + 1)
    except OSError:
        pass
    return damaged_objects(ds, since, paths, written=True)


def _files_of_keys(ds: Dataset, keys: Sequence[str]) -> dict[str, list[str]]:
    wanted = set(keys)
    found: dict[str, list[str]] = {}
    for rel in gitrepo.ls_files_symlinks(ds.root, ["."]):
        try:
            target = os.readlink(ds.root / rel)
        except OSError:
            continue
        name = os.path.basename(target)
        if name in wanted:
            found.setdefault(name, []).append(rel)
    return found


def content_damaged(ds: Dataset, damaged: Sequence[Damaged]) -> RecorderError:
    """Move the damaged objects aside (git annex fsck), fetch them again where possible, and
    return the error naming the files that were hit."""
    names = [f for d in damaged for f in (d.files or (d.key,))]
    restored, lost = annex.repair_keys(ds.root, [d.key for d in damaged])
    shown = ", ".join(names[:6]) + (f" (and {len(names) - 6} more)" if len(names) > 6 else "")
    detail = []
    if restored:
        detail.append(f"{len(restored)} restored from another copy")
    if lost:
        detail.append(f"{len(lost)} had no other copy: the damaged content is in "
                      ".git/annex/bad/")
    return RecorderError(
        f"the command overwrote annexed content in place: {shown}"
        + (f" ({'; '.join(detail)})" if detail else ""),
        hint="declare such files as outputs (-o) so that rr unlocks them before the command")
