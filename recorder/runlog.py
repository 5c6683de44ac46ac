"""Per-run logs (``rr run --log``): the command's stdout and stderr kept in the dataset.

While the command runs, its output is streamed live and copied (``proc.run_shell(log=...)``)
into a file under ``.git/rr/logs/``, outside the work tree the command sees.  When it has
ended, the file moves to ``.rr/logs/<UTC time>-<6 hex>.log`` and is saved in the run's
commit, annexed whatever the dataset's ``annex.largefiles`` says (``.rr/logs/.gitattributes``
holds ``*.log annex.largefiles=anything``); the record names it in ``rr.log``.  A command
that fails leaves its log beside its outputs, saved with them by the ``rr save`` the error
names; an interrupted command's log stays under ``.git/rr/logs/``.
``rr log --show-output COMMIT`` prints a record's log (:func:`read`), fetching its
content with git-annex when it is absent.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, NamedTuple

from . import annex, gitrepo
from . import record as records
from .dataset import Dataset
from .errors import RecorderError

LOG_DIR = ".rr/logs"
ATTRIBUTES = "*.log annex.largefiles=anything\n"


class Log(NamedTuple):  # a NamedTuple: cheaper than a dataclass at start-up
    rel: str  # where it is saved, dataset-relative
    tmp: Path  # where it is written while the command runs
    file: IO[bytes]


def begin(ds: Dataset) -> Log:
    """A new log file, written under .git/rr/logs/ until :func:`end`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{stamp}-{os.urandom(3).hex()}.log"
    tmp_dir = ds.git_dir / "rr" / "logs"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / name
    return Log(f"{LOG_DIR}/{name}", tmp, open(tmp, "wb"))


def end(ds: Dataset, log: Log) -> list[str]:
    """Move the log into the work tree; the dataset-relative paths to save with the run
    (the log, and the attributes file that annexes logs when it is new)."""
    log.file.close()
    target = ds.root / log.rel
    target.parent.mkdir(parents=True, exist_ok=True)
    made = []
    attributes = target.parent / ".gitattributes"
    if not attributes.exists():
        attributes.write_text(ATTRIBUTES, encoding="utf-8")
        made.append(f"{LOG_DIR}/.gitattributes")
    os.replace(log.tmp, target)
    return [log.rel, *made]


def finish(ds: Dataset, log: Log, ran: bool, interrupted: bool) -> list[str]:
    """The log of a command that ran goes into the work tree (:func:`end`); that of a command
    that did not run is dropped; that of an interrupted one stays under .git/rr/logs/ (the
    dataset is left as the command left it)."""
    if ran and not interrupted:
        return end(ds, log)
    log.file.close()
    if not ran:
        log.tmp.unlink(missing_ok=True)
    return []


def logged_path(record: dict | None) -> str | None:
    """The dataset-relative log path a record names (rr.log), if a safe one."""
    info = (record or {}).get("rr")
    path = info.get("log") if isinstance(info, dict) else None
    if not isinstance(path, str) or not path.startswith(LOG_DIR + "/"):
        return None
    norm = os.path.normpath(path)
    return path if norm == path and not norm.startswith("..") else None


def read(ds: Dataset, commit: str) -> tuple[str, bytes]:
    """(path, content) of the log of the run record at ``commit``; annexed content that is
    absent is fetched first (``git annex get``, as ``rr get`` would)."""
    sha = None if commit.startswith("-") else gitrepo.resolve_commit(ds.root, commit)
    obj = gitrepo.cat_file_batch(ds.root, [sha]).get(sha) if sha else None
    if sha is None or obj is None:
        raise RecorderError(f"not a commit: {commit}")
    message = obj[1].partition(b"\n\n")[2].decode("utf-8", "replace")
    loaded = records.load_record(message, ds.root, ds.record_directory(), sha)
    if loaded is None:
        raise RecorderError(f"commit {sha[:10]} is not a run commit")
    record = loaded[1]
    path = logged_path(record)
    if path is None:
        raise RecorderError(f"the run record of {sha[:10]} keeps no log",
                            hint="rr run --log keeps the output of a command")
    blob = gitrepo.cat_file_batch(ds.root, [f"{sha}:{path}"]).get(f"{sha}:{path}")
    if blob is None:
        raise RecorderError(f"the log {path} is not in commit {sha[:10]}")
    key = annex.key_of_link(blob[1]) if ds.is_annex else None
    if key is None:
        return path, blob[1]
    content = annex.read_keys(ds.root, [key]).get(key)
    if content is None:
        annex.get_key(ds.root, key)
        content = annex.read_keys(ds.root, [key]).get(key)
    if content is None:
        raise RecorderError(f"the content of {path} is not available",
                            hint="rr siblings; get it from a sibling that has it")
    return path, content
