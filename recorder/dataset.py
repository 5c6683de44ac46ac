"""Dataset: a git repository (usually with git-annex) that rr records runs in."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import gitrepo
from .errors import NoDatasetError, OutsideDatasetError

DATALAD_CONFIG = ".datalad/config"


@dataclass
class Config:
    """Merged configuration: ``.datalad/config`` (the committed "branch" scope) below git's
    own scopes, as DataLad merges them.  Values keep their order; the last one wins."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        vals = self.values.get(_norm(key))
        return vals[-1] if vals else default

    def get_all(self, key: str) -> list[str]:
        return list(self.values.get(_norm(key), []))

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None:
            return default
        return value.strip().lower() in ("1", "true", "yes", "on", "enable", "")

    def with_prefix(self, prefix: str) -> dict[str, list[str]]:
        prefix = _norm(prefix)
        return {k: v for k, v in self.values.items() if k.startswith(prefix)}


def _norm(key: str) -> str:
    """git config keys: section and variable are case-insensitive, a subsection is not."""
    first, _, rest = key.partition(".")
    if not rest:
        return key.lower()
    middle, _, last = rest.rpartition(".")
    if not middle:
        return f"{first.lower()}.{last.lower()}"
    return f"{first.lower()}.{middle}.{last.lower()}"


class Dataset:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._config: Config | None = None

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r})"

    # --- discovery ------------------------------------------------------------------
    @classmethod
    def find(cls, path: str | os.PathLike[str] | None = None) -> "Dataset":
        """The dataset containing ``path`` (default: the working directory)."""
        start = Path(os.path.normpath(Path(path if path is not None else os.getcwd()).absolute()))
        if path is not None and not start.exists():
            raise NoDatasetError(str(path))
        probe = start
        while True:
            if (probe / ".git").exists():
                return cls(probe)
            if probe.parent == probe:
                raise NoDatasetError(str(start))
            probe = probe.parent

    @property
    def exists(self) -> bool:
        return (self.root / ".git").exists()

    # --- configuration --------------------------------------------------------------
    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = self._read_config()
        return self._config

    def reload_config(self) -> None:
        self._config = None

    def _read_config(self) -> Config:
        values: dict[str, list[str]] = {}
        branch = self.root / DATALAD_CONFIG
        if branch.exists():
            for key, value in gitrepo.config_list(self.root, file=str(branch)):
                values.setdefault(_norm(key), []).append(value)
        scoped: dict[str, list[str]] = {}
        for key, value in gitrepo.config_list(self.root):
            scoped.setdefault(_norm(key), []).append(value)
        # git's own scopes override the committed defaults key by key
        values.update(scoped)
        return Config(values)

    @property
    def id(self) -> str | None:
        return self.config.get("datalad.dataset.id")

    @property
    def is_annex(self) -> bool:
        # annex.version, not annex.uuid: `git annex uninit` can leave the uuid behind
        return self.config.get("annex.version") is not None

    # --- paths ----------------------------------------------------------------------
    def relpath(self, path: str | os.PathLike[str], base: Path | None = None) -> str:
        """``path`` (absolute, or relative to ``base``/cwd) relative to the root; POSIX form."""
        full = Path(path)
        if not full.is_absolute():
            full = (base or Path.cwd()) / full
        full = Path(os.path.normpath(full))
        try:
            rel = full.relative_to(self.root)
        except ValueError:
            raise OutsideDatasetError(str(path), str(self.root)) from None
        text = rel.as_posix()
        return "." if text in ("", ".") else text

    def contains(self, path: Path) -> bool:
        try:
            Path(os.path.normpath(path)).relative_to(self.root)
            return True
        except ValueError:
            return False

    # --- state ----------------------------------------------------------------------
    def head(self) -> str | None:
        return gitrepo.head_sha(self.root)

    def status(self, paths: Sequence[str] | None = None, *, untracked: str = "normal"
               ) -> list[gitrepo.StatusEntry]:
        return gitrepo.iter_status(self.root, paths, untracked=untracked)

    def dirty_paths(self) -> list[str]:
        return [e.path for e in self.status()]

    @property
    def git_dir(self) -> Path:
        return Path(gitrepo.git_dir(self.root))
