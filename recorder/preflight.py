"""Checks made before a command runs, so that a run never executes and then fails to save
for a reason that was knowable before: a missing tool, a dataset rr cannot
write, a container engine that does not answer."""

from __future__ import annotations

import os
from pathlib import Path

from . import annex, gitrepo
from .dataset import Dataset
from .errors import RecorderError


def ensure_writable(ds: Dataset) -> None:
    """The dataset root and its git directory must be writable by this user."""
    git_dir = Path(gitrepo.git_dir(ds.root))
    for path in (ds.root, git_dir, git_dir / "objects", git_dir / "index"):
        if path.exists() and not os.access(path, os.W_OK):
            raise RecorderError(f"the dataset is not writable: {path} is read-only for this "
                                "user", hint="rr needs write access to the dataset and its "
                                ".git directory; run where you can write, or fix the "
                                "permissions")


def check_run(ds: Dataset, runtime: str | None = None) -> None:
    """Everything ``rr run`` needs, checked before anything is fetched or executed."""
    ensure_writable(ds)
    # gitrepo.ensure_no_index_lock belongs under run.py's dataset_lock: out here a parallel
    # `rr run --explicit` that is committing holds .git/index.lock legitimately
    if ds.is_annex:
        annex.ensure_available()
    if gitrepo.sequencer_in_progress(ds.root):
        raise RecorderError("a merge or cherry-pick is in progress in this dataset",
                            hint="finish it (git commit) or abort it (git merge --abort / "
                                 "git cherry-pick --abort) first")
    if runtime in ("docker", "podman"):
        # loaded only when a container runs: rr run's start-up without one stays as it was
        from .containers import docker  # noqa: PLC0415  start-up of rr run

        docker.require_engine(runtime)
