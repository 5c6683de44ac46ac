"""Singularity / Apptainer: command lines for exec and pull.

Apptainer is preferred, ``singularity`` is the fallback.  These command lines are tested at
the command-line level (a stub runtime logs its argv): no real runtime runs on rr's CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..errors import ContainerRuntimeError

SIF_LAUNCH = b"#!/usr/bin/env run-singularity"
SIF_MAGIC = b"SIF_MAGIC"


def binary() -> str:
    for name in ("apptainer", "singularity"):
        if shutil.which(name):
            return name
    raise ContainerRuntimeError("neither apptainer nor singularity is installed",
                                hint="install Apptainer, or run where it is available")


def exec_argv(runtime: str, image: Path | str, *, mount: Path, pwd: Path, command: str,
              gpus: bool = False, extra_flags: Sequence[str] = ()) -> list[str]:
    argv = [runtime, "exec", "--cleanenv", "-B", f"{mount}:{mount}", "--pwd", str(pwd)]
    if os.getuid() == 0:  # as for docker: root must not write into read-only annexed content
        argv += ["--drop-caps", "CAP_DAC_OVERRIDE"]
    if gpus:
        argv.append("--nv")
    argv += list(extra_flags)
    argv += [str(image), "sh", "-c", command]
    return argv


def container_env(name: str) -> dict[str, str]:
    """Variables that reach the container through --cleanenv (both prefixes, as Apptainer
    renamed SINGULARITYENV_ to APPTAINERENV_)."""
    env = {}
    for prefix in ("APPTAINERENV_", "SINGULARITYENV_"):
        env[prefix + "DATALAD_CONTAINER_NAME"] = name
        env[prefix + "RR_CONTAINER_NAME"] = name
    return env


def pull_argv(runtime: str, dest: Path, url: str) -> list[str]:
    return [runtime, "pull", "--force", str(dest), url]


def looks_like_sif(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(48)
    except OSError:
        return False
    return head.startswith(SIF_LAUNCH) or SIF_MAGIC in head
