"""Subdatasets: install registered subdatasets (recursively, for the paths a command
reaches into), tell which are installed, split paths by the dataset holding them, and fetch
content in whichever (sub)dataset holds it."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from . import annex, gitrepo
from .dataset import Dataset
from .errors import CommandError, RecorderError

_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^[^/]+@[^/:]+:|^[^/:]+:[^/]")


def is_url(source: str) -> bool:
    return bool(_URL_RE.match(source))


def init_annex_if_needed(ds: Dataset) -> None:
    if ds.is_annex or (ds.root / ".noannex").exists():
        return
    if annex.has_annex_branch(ds.root):
        annex.init(ds.root)
        ds.reload_config()


def _resolve_url(ds: Dataset, url: str) -> str:
    """A relative submodule URL is relative to the superdataset's origin (or its path)."""
    if not (url.startswith("./") or url.startswith("../")):
        return url
    base = gitrepo.remotes(ds.root).get("origin") or str(ds.root)
    if is_url(base):
        return base.rstrip("/") + "/" + url
    return os.path.normpath(os.path.join(base, url))


def install(ds: Dataset, rel: str) -> Dataset:
    """Install the registered subdataset at ``rel``: clone it from its recorded URL and check
    out the recorded commit.  rr clones itself rather than `git submodule update`, which
    refuses local paths since git 2.38 (protocol.file.allow).  An installed subdataset is
    returned as it is."""
    full = ds.root / rel
    if (full / ".git").exists():
        return Dataset(full)
    url = ds.subdatasets().get(rel)
    if not url:
        raise RecorderError(f"not a registered subdataset: {rel}")
    source = _resolve_url(ds, url)
    sha = gitrepo.gitlink(ds.root, rel)
    full.mkdir(parents=True, exist_ok=True)
    try:
        gitrepo.clone(source, full, cwd=ds.root)
    except CommandError as exc:
        raise RecorderError(f"cannot install subdataset {rel} from {source}: "
                            f"{exc.message.split(': ', 1)[-1]}") from None
    if sha and gitrepo.head_sha(full) != sha:
        if gitrepo.resolve_commit(full, sha) is None:
            raise RecorderError(f"subdataset {rel}: the recorded commit {sha[:10]} is not "
                                f"available from {source}")
        gitrepo.checkout(full, sha, detach=True)
    gitrepo.register_submodule(ds.root, rel, url)
    sub = Dataset(full)
    init_annex_if_needed(sub)
    return sub


def installed(ds: Dataset, rel: str) -> bool:
    return (ds.root / rel / ".git").exists()


def installed_paths(root: Path) -> list[str]:
    """The installed subdatasets of the repository at ``root`` (entries of .gitmodules,
    checked by :func:`gitrepo.submodule_paths`, whose checkout is there)."""
    return [os.path.normpath(rel) for rel in gitrepo.submodule_paths(root)
            if (root / rel / ".git").exists()]


def install_for_specs(ds: Dataset, pwd: Path, specs: Iterable[str]) -> None:
    """Install uninstalled subdatasets that input/output globs reach into (recursively)."""
    subs = ds.subdatasets()
    if not subs:
        return
    patterns = []
    for spec in specs:
        if spec == ".":
            continue
        full = spec if os.path.isabs(spec) else os.path.normpath(pwd / spec)
        try:
            patterns.append(Path(os.path.relpath(full, ds.root)).parts)
        except ValueError:
            continue
    for sub in subs:
        sub_parts = Path(sub).parts
        for parts in patterns:
            if len(parts) > len(sub_parts) and all(
                    fnmatch.fnmatchcase(s, p) for s, p in zip(sub_parts, parts)):
                child = install(ds, sub)
                install_for_specs(child, pwd, specs)
                break


def split_by_dataset(ds: Dataset, root_paths: Sequence[str]) -> dict[str, list[str]]:
    """Group dataset-relative paths by the (installed) subdataset holding them ('' = ds)."""
    subs = sorted(ds.subdatasets(), key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    for p in root_paths:
        owner = ""
        for sub in subs:
            if p == sub or p.startswith(sub + "/"):
                owner = sub
                break
        groups.setdefault(owner, []).append(p)
    return groups


def fetch(ds: Dataset, root_paths: Sequence[str],
          on_file: Callable[[dict], None] | None = None) -> None:
    """Fetch annexed content of ``root_paths`` in whichever (sub)dataset holds them."""
    for owner, paths in split_by_dataset(ds, root_paths).items():
        if owner:
            sub = install(ds, owner)
            inner = ["." if p == owner else p[len(owner) + 1:] for p in paths]
            fetch(sub, inner, on_file)
            continue
        if not ds.is_annex:
            continue
        if "." in paths:
            missing = ["."]
        else:
            missing = annex.missing_content(ds.root, paths)
        if missing:
            for rec in annex.iter_get(ds.root, missing):
                if on_file:
                    on_file(rec)
