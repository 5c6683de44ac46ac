"""Submodules (subdatasets): .gitmodules read and checked, gitlinks, registration."""

from __future__ import annotations

import os
from pathlib import Path

from .. import config as cfgkeys
from ..errors import RecorderError
from ._runner import PathLike, call_git, call_git_optional, call_git_z
from .config import config_list, config_parses, config_set


def submodule_paths(root: PathLike) -> dict[str, str]:
    """{path: url} of the subdatasets registered in .gitmodules, each entry checked first.

    .gitmodules comes with a cloned dataset: a path that leaves the dataset (absolute, '..',
    through a symlink leading out), is or is inside .git, or has a line break, and a URL that
    git would read as an option ('-...') or a remote helper ('ext::...'), is a
    RecorderError naming the entry, before any caller clones or installs anything.
    """
    gitmodules = Path(root) / ".gitmodules"
    if not gitmodules.exists() and not gitmodules.is_symlink():
        return {}
    if gitmodules.is_symlink() or not gitmodules.is_file():
        raise RecorderError(".gitmodules is not a regular file (a symlink?); rr does not "
                            "follow it")
    pairs = config_list(root, file=str(gitmodules))
    if not pairs and gitmodules.stat().st_size and not config_parses(root, ".gitmodules"):
        raise RecorderError(".gitmodules cannot be parsed; no subdataset is installed from it",
                            hint="check it with: git config -f .gitmodules --list")
    paths: dict[str, str] = {}
    urls: dict[str, str] = {}
    for key, value in pairs:
        parts = cfgkeys.key_parts(key, "submodule")
        if parts and parts[1] == "path":
            paths[parts[0]] = value
        elif parts and parts[1] == "url":
            urls[parts[0]] = value
    entries = {p: urls.get(name, "") for name, p in paths.items()}
    for path, url in entries.items():
        problem = _bad_submodule_path(root, path) or bad_submodule_url(url)
        if problem:
            raise RecorderError(
                f"refusing the subdataset entry {path!r} in .gitmodules: {problem}",
                hint="the dataset's .gitmodules is malformed or hostile; fix or remove that "
                     "entry (git config -f .gitmodules --remove-section submodule.NAME)")
    return entries


def submodule_properties(root: PathLike) -> dict[str, dict[str, str]]:
    """{name: {property: value}} of every entry in .gitmodules (unchecked: see
    :func:`submodule_paths` for the checked paths and URLs)."""
    props: dict[str, dict[str, str]] = {}
    for key, value in config_list(root, file=str(Path(root) / ".gitmodules")):
        parts = cfgkeys.key_parts(key, "submodule")
        if parts:
            props.setdefault(parts[0], {})[parts[1]] = value
    return props


def _bad_submodule_path(root: PathLike, path: str) -> str | None:
    if not path:
        return "the path is empty"
    if any(ord(c) < 32 for c in path):
        return "the path contains a line break or control character"
    if path.startswith("/"):
        return "the path is absolute"
    parts = path.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "the path is not a plain relative path (it has '..', '.' or '//')"
    if any(p.lower() == ".git" for p in parts):
        return "the path is or is inside .git"
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, path))
    rel = os.path.relpath(real, real_root)
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return f"the path leads outside the dataset through a symlink (-> {real})"
    if any(p.lower() == ".git" for p in rel.split("/")):
        return "the path leads into .git through a symlink"
    if rel == ".":
        return "the path resolves to the dataset itself through a symlink"
    if rel != "/".join(parts):
        # git keeps no submodule behind a symlink; one leading to an ancestor (lnk -> ..)
        # would make every recursive command descend lnk/lnk/... for ever
        return f"the path goes through a symlink (-> {rel})"
    return None


def bad_submodule_url(url: str) -> str | None:
    """Why git must not be given ``url`` (an option, a remote helper, a line break), or None."""
    if any(ord(c) < 32 for c in url):
        return "the URL contains a line break or control character"
    if url.startswith("-"):
        return f"the URL starts with '-' (it would be read as an option): {url}"
    transport, sep, _rest = url.partition("::")
    if sep and transport and all(c.isalnum() or c in "+.-_" for c in transport):
        return f"the URL uses a git remote helper ({transport}::), which rr never runs: {url}"
    return None


def submodule_add(root: PathLike, url: str, path: str) -> None:
    # the clone is already in place; file transport is allowed for this one local step
    call_git(["-c", "protocol.file.allow=always", "submodule", "add", "-q", "--", url, path],
             root)


def gitlink(root: PathLike, path: str) -> str | None:
    """The commit recorded for the subdataset at ``path`` (index first, then HEAD)."""
    out = call_git_optional(["ls-files", "-s", "--", path], root)
    for line in (out or "").splitlines():
        meta, _, p = line.partition("\t")
        if p == path and meta.startswith("160000 "):
            return meta.split()[1]
    return None


def register_submodule(root: PathLike, path: str, url: str) -> None:
    """Mark an installed subdataset active in .git/config (what `git submodule init` does)."""
    config_set(root, cfgkeys.submodule_key(path, "url"), url)
    config_set(root, cfgkeys.submodule_key(path, "active"), "true")


def gitlinks(root: PathLike) -> dict[str, str]:
    """{path: commit} of every subdataset recorded in the index (one ls-files call)."""
    out: dict[str, str] = {}
    for entry in call_git_z(["ls-files", "-s", "-z"], root):
        meta, _, path = entry.partition("\t")
        if meta.startswith("160000 "):
            out[path] = meta.split()[1]
    return out
