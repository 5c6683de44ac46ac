"""``rr containers-exec``: run one command inside a dataset's image (the call in run records).

    rr containers-exec [--runtime docker|podman|singularity|apptainer] [--name NAME] [--gpus]
                       [--repo-tag TAG] IMAGE CMD...

One CMD word is a shell command line; several words are quoted and joined, so the result is
the same either way.  The command runs through ``sh -c`` inside the container.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import proc
from ..dataset import Dataset
from ..errors import NoDatasetError, UsageError
from . import docker, singularity
from .registry import runtime_flags as configured_flags

RUNTIMES = ("docker", "podman", "singularity", "apptainer")


def hierarchy_root(start: Path) -> Path:
    """The top of the dataset hierarchy that contains ``start`` (or ``start`` itself)."""
    try:
        top = Dataset.find(start).root
    except NoDatasetError:
        return start
    while top.parent != top:
        try:
            up = Dataset.find(top.parent).root
        except NoDatasetError:
            break
        top = up
    return top


def runtime_flags(name: str | None, start: Path) -> list[str]:
    """Per-container extra flags: ``datalad.containers.NAME.runtime-flags`` from git's own
    config scopes, so a machine can add its own (GPU devices, mounts) in .git/config; never
    from the committed .datalad/config (see registry.runtime_flags)."""
    if not name:
        return []
    try:
        ds = Dataset.find(start)
    except NoDatasetError:
        return []

    return configured_flags(ds, name)


def build_argv(runtime: str, image: Path, words: Sequence[str], *, name: str | None = None,
               gpus: bool = False, repo_tag: str | None = None, cwd: Path | None = None,
               load: bool = True) -> tuple[list[str], dict[str, str]]:
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown container runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    if not words:
        raise UsageError("no command given to run in the container")
    here = Path(cwd or os.getcwd()).absolute()
    command = words[0] if len(words) == 1 else shlex.join(words)
    full = image if image.is_absolute() else here / image
    mount = hierarchy_root(here)
    flags = runtime_flags(name, here)
    label = name or full.parent.name
    if runtime in ("docker", "podman"):
        if load:
            docker.require_engine(runtime)
            ref = docker.ensure_loaded(runtime, full, repo_tag)
        else:
            ref = docker.config_digest(full, repo_tag)
        argv = docker.run_argv(runtime, ref, mount=mount, pwd=here, command=command, name=label,
                               gpus=gpus, tty=sys.stdin.isatty(), extra_flags=flags)
        return argv, {}
    binary = singularity.binary() if runtime == "singularity" else runtime
    argv = singularity.exec_argv(binary, full, mount=mount, pwd=here, command=command,
                                 gpus=gpus, extra_flags=flags)
    return argv, singularity.container_env(label)


def exec_in_container(runtime: str, image: str, words: Sequence[str], *, name: str | None = None,
                      gpus: bool = False, repo_tag: str | None = None) -> int:
    argv, env = build_argv(runtime, Path(image), words, name=name, gpus=gpus, repo_tag=repo_tag)
    outcome = proc.run_shell("", Path.cwd(), env=env, argv=argv)
    if outcome.interrupted_by is not None:
        return 130
    code = outcome.returncode
    return code if code >= 0 else 128 - code
