"""Docker (and Podman) images stored in a dataset as an extracted ``docker save`` archive.

The layout is the one datalad-container writes (``manifest.json``, the image config JSON,
layer tarballs), so images saved by either tool load under both.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .. import proc
from ..errors import CommandError, ContainerRuntimeError


def engine_available(binary: str = "docker") -> bool:
    if shutil.which(binary) is None:
        return False
    result = proc.capture([binary, "version", "--format", "{{.Server.Version}}"], check=False)
    return result.returncode == 0


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        raise ContainerRuntimeError(f"{binary} is not installed or not on PATH")


def normalize_ref(ref: str) -> str:
    """Append ':latest' when the reference names no tag or digest (else docker save dumps
    every tag of the repository)."""
    last = ref.rsplit("/", 1)[-1]
    return ref if (":" in last or "@" in last) else f"{ref}:latest"


def image_id(binary: str, ref: str) -> str | None:
    result = proc.capture([binary, "image", "inspect", "--format", "{{.Id}}", ref], check=False)
    if result.returncode != 0:
        return None
    return result.stdout.decode().strip() or None


def ensure_local_image(binary: str, ref: str) -> str:
    """The engine's id of ``ref``, pulling it when it is not there and a registry answers."""
    _require(binary)
    found = image_id(binary, ref)
    if found:
        return found
    if os.environ.get("RR_OFFLINE", "") not in ("", "0"):
        found = None  # RR_OFFLINE=1: never ask a registry
    else:
        pulled = proc.capture([binary, "pull", "-q", ref], check=False)
        found = image_id(binary, ref) if pulled.returncode == 0 else None
    if not found:
        raise ContainerRuntimeError(
            f"image {ref} is not in the local {binary} engine and could not be pulled",
            hint=f"build or load it first ({binary} build/import/load), then add it again")
    return found


def save(binary: str, ref: str, dest: Path) -> None:
    """``docker save`` the image into ``dest`` (which must not exist or be empty), extracted."""
    _require(binary)
    if dest.exists() and any(dest.iterdir()):
        raise ContainerRuntimeError(f"directory is not empty: {dest}")
    with tempfile.TemporaryDirectory(prefix="rr-save-") as tmp:
        archive = Path(tmp) / "image.tar"
        proc.capture([binary, "save", "-o", str(archive), normalize_ref(ref)])
        dest.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive) as tar:
                # the data filter refuses absolute names, '..', links leading out of dest
                # and device files, following links already extracted
                tar.extractall(dest, filter="data")
        except tarfile.TarError as exc:
            raise ContainerRuntimeError(f"unsafe or unreadable image archive from {binary} "
                                        f"save: {exc}") from None


def _manifest(path: Path) -> list[dict]:
    try:
        return json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise ContainerRuntimeError(f"not a saved image (no readable manifest.json): {path}",
                                    hint="is its content here? rr get it, or re-add the "
                                         "container") from exc


def config_digest(path: Path, repo_tag: str | None = None) -> str:
    """sha256 of the image config: the image id under Docker's classic image store."""
    images = _manifest(path)
    if repo_tag:
        images = [i for i in images if repo_tag in (i.get("RepoTags") or [])]
    if not images:
        raise ContainerRuntimeError(f"no matching image in {path / 'manifest.json'}")
    if len(images) > 1:
        raise ContainerRuntimeError(f"several images in {path / 'manifest.json'}; "
                                    "choose one with --repo-tag")
    config = path / images[0]["Config"]
    return "sha256:" + hashlib.sha256(config.read_bytes()).hexdigest()


def ensure_loaded(binary: str, path: Path, repo_tag: str | None = None) -> str:
    """Load the saved image into the engine unless it is there; return an id to run."""
    _require(binary)
    digest = config_digest(path, repo_tag)
    if image_id(binary, digest):
        return digest
    images = _manifest(path)
    tags = [t for i in images for t in (i.get("RepoTags") or [])]

    def write(stdin: IO[bytes]) -> None:
        with tarfile.open(fileobj=stdin, mode="w|", dereference=True) as tar:
            for entry in sorted(os.listdir(path)):
                tar.add(path / entry, arcname=entry)

    code, out = proc.stream_into([binary, "load"], write)
    if code != 0:
        raise ContainerRuntimeError(f"{binary} load of {path} failed: "
                                    f"{out.strip().splitlines()[-1] if out.strip() else code}")
    if image_id(binary, digest):
        return digest
    # engines with the containerd image store name images by manifest digest
    for line in out.splitlines():
        for prefix in ("Loaded image ID: ", "Loaded image: "):
            if line.startswith(prefix):
                candidate = line[len(prefix):].strip()
                if image_id(binary, candidate):
                    return candidate
    for tag in tags:
        if image_id(binary, tag):
            return tag
    raise ContainerRuntimeError(f"image from {path} was not loaded by {binary}")


def run_argv(binary: str, image: str, *, mount: Path, pwd: Path, command: str, name: str,
             gpus: bool = False, tty: bool = False, extra_flags: Sequence[str] = ()) -> list[str]:
    """The ``docker run`` (or ``podman run``) command line rr uses.

    The whole dataset hierarchy is mounted at its own path, so absolute paths, annexed
    symlinks and {pwd}/{dspath} work; the command runs through ``sh -c`` inside the
    container, as the caller's uid:gid, with a writable HOME and no network.
    """
    argv = [binary, "run", "--rm", "-i", "--init", "--network", "none",
            "-v", f"{mount}:{mount}", "-w", str(pwd),
            "-u", f"{os.getuid()}:{os.getgid()}",
            "--tmpfs", "/tmp:mode=1777", "-e", "HOME=/tmp",
            "-e", f"DATALAD_CONTAINER_NAME={name}", "-e", f"RR_CONTAINER_NAME={name}"]
    if os.getuid() == 0:
        # root in the container ignores file modes: without this capability it cannot write
        # into the read-only annexed content under the mounted .git/annex/objects
        argv += ["--cap-drop", "DAC_OVERRIDE"]
    if tty:
        argv.append("-t")
    if gpus:
        argv += ["--gpus", "all"]
    argv += list(extra_flags)
    argv += [image, "sh", "-c", command]
    return argv


def require_engine(binary: str) -> None:
    if not engine_available(binary):
        raise ContainerRuntimeError(
            f"no {binary} engine answers here",
            hint="start it (e.g. dockerd) or run on a machine that has one")


__all__ = ["save", "ensure_loaded", "config_digest", "run_argv", "ensure_local_image",
           "engine_available", "require_engine", "ContainerRuntimeError", "CommandError"]
