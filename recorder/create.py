"""Creating a dataset: git + git-annex, .datalad/config with an id, DataLad's attributes."""

from __future__ import annotations

import os
import pwd
import socket
import uuid
from pathlib import Path

from . import config as cfgkeys
from . import annex, gitrepo
from .dataset import DATALAD_CONFIG, Dataset
from .errors import RecorderError
from .lock import dataset_lock
from .save import register_subdataset

# DataLad's defaults for a new dataset (verified against `datalad create`)
GITATTRIBUTES = "* annex.backend=MD5E\n**/.git* annex.largefiles=nothing\n"
DATALAD_GITATTRIBUTES = "config annex.largefiles=nothing\n"
NEW_DATASET_MESSAGE = "[DATALAD] new dataset"
NEW_SUBDATASET_MESSAGE = "[DATALAD] Created subdataset"


def create(path: str | os.PathLike[str] | None = None, force: bool = False,
           annex_repo: bool = True) -> Dataset:
    target = Path(path if path is not None else os.getcwd()).absolute()
    if (target / ".git").exists():
        raise RecorderError(f"there is already a dataset (git repository) at {target}")
    if target.exists() and not target.is_dir():
        raise RecorderError(f"not a directory: {target}")
    if target.exists() and any(target.iterdir()) and not force:
        raise RecorderError(f"directory is not empty: {target}",
                            hint="pass --force to create the dataset in it anyway")
    if annex_repo:
        annex.ensure_available()
    target.mkdir(parents=True, exist_ok=True)
    gitrepo.init(target)
    if annex_repo:
        annex.init(target, f"{_user()}@{socket.gethostname()}:{target}")
    ds = Dataset(target)
    dsid = str(uuid.uuid4())
    (target / ".datalad").mkdir(exist_ok=True)
    gitrepo.config_set(target, cfgkeys.DATASET_ID, dsid, file=str(target / DATALAD_CONFIG))
    paths = [DATALAD_CONFIG]
    if annex_repo:
        _write_if_absent(target / ".gitattributes", GITATTRIBUTES)
        _write_if_absent(target / ".datalad" / ".gitattributes", DATALAD_GITATTRIBUTES)
        paths += [".gitattributes", ".datalad/.gitattributes"]
    gitrepo.add(target, paths)
    gitrepo.commit(target, NEW_DATASET_MESSAGE, only=paths)
    ds.reload_config()
    return ds


def check_subdataset_target(superds: Dataset, path: str | os.PathLike[str] | None) -> Path:
    """Where ``rr create -d SUPER PATH`` creates: PATH relative to the working directory (as
    DataLad takes a path given with ``-d``), strictly inside SUPER and not inside another
    dataset below it.  Checked before anything is created."""
    target = Path(os.path.normpath(Path.cwd() / (path if path is not None else superds.root)))
    if not superds.contains(target) or target == superds.root:
        raise RecorderError(f"{target} is not underneath the dataset {superds.root}",
                            hint="give a PATH inside the dataset named with -d")
    probe = target.parent
    while not probe.exists():
        probe = probe.parent
    owner = Dataset.find(probe).root
    if owner != superds.root:
        raise RecorderError(f"{target} would be inside another dataset ({owner}), not directly "
                            f"in {superds.root}",
                            hint=f"create it there: rr create -d {owner} {path}")
    rel = superds.relpath(target)
    if gitrepo.ls_files(superds.root, [rel]):
        raise RecorderError(f"{rel} is already tracked in {superds.root}")
    return target


def register_in(superds: Dataset, sub: Dataset) -> str:
    """Register ``sub`` as a subdataset of ``superds`` and commit that alone there (the
    gitlink and .gitmodules), with DataLad's message; returns the commit."""
    rel = superds.relpath(sub.root)
    with dataset_lock(superds.git_dir, what="rr create"):
        register_subdataset(superds, rel)
        paths = [".gitmodules", rel]
        gitrepo.add(superds.root, paths)
        return gitrepo.commit(superds.root, NEW_SUBDATASET_MESSAGE, only=paths,
                              hooks_path=superds.config.get(cfgkeys.CORE_HOOKSPATH))


def _write_if_absent(path: Path, text: str) -> None:
    if path.exists():
        existing = path.read_text(encoding="utf-8")
        missing = [line for line in text.splitlines() if line not in existing.splitlines()]
        if missing:
            sep = "" if existing.endswith("\n") or not existing else "\n"
            path.write_text(existing + sep + "\n".join(missing) + "\n", encoding="utf-8")
        return
    path.write_text(text, encoding="utf-8")


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return "user"
