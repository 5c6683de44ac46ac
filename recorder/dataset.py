"""Dataset: a git repository (usually with git-annex) that rr records runs in."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

from . import config as cfgkeys
from . import gitrepo
from .errors import NoDatasetError, OutsideDatasetError, RecorderError, UnsafePathError
from .record import DEFAULT_RECORD_DIR

DATALAD_CONFIG = ".datalad/config"
RECORD_DIR_KEY = cfgkeys.RUN_RECORD_DIRECTORY


@dataclass
class Config:
    """Merged configuration, as DataLad merges it (see :mod:`recorder.config`):
    ``.datalad/config`` (the committed "branch" scope) < git's own scopes < the environment
    (``DATALAD_*``, ``DATALAD_CONFIG_OVERRIDES_JSON``).  Values keep their order; the last
    one wins."""

    values: dict[str, list[str]] = field(default_factory=dict)
    # git's own scopes (system, global, local, worktree, command line) and the environment:
    # what the user or this machine set, never what a cloned dataset committed
    git_values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def layered(cls, committed: dict[str, list[str]], scoped: dict[str, list[str]],
                env: dict[str, list[str]] | None = None) -> "Config":
        env = cfgkeys.env_overrides() if env is None else env
        own = {**scoped, **env}  # the environment overrides git's scopes key by key
        return cls({**committed, **own}, own)

    def get(self, key: str, default: str | None = None) -> str | None:
        vals = self.values.get(_norm(key))
        return vals[-1] if vals else default

    def get_all(self, key: str) -> list[str]:
        return list(self.values.get(_norm(key), []))

    def get_bool(self, key: str, default: bool = False) -> bool:
        return cfgkeys.to_bool(self.get(key), default)

    def typed(self, key: str, *, local: bool | None = None) -> Any:
        """``key`` as the registry (:mod:`recorder.config`) types it, with its default;
        keys the registry marks ``scope="git"`` (or ``local=True``) skip .datalad/config."""
        entry = cfgkeys.lookup(key)
        if local is None:
            local = entry is not None and entry.scope == "git"
        store = self.git_values if local else self.values
        return cfgkeys.typed(key, store.get(_norm(key)))

    def get_local(self, key: str, default: str | None = None) -> str | None:
        """The value from git's own config scopes and the environment only (not the
        committed .datalad/config)."""
        vals = self.git_values.get(_norm(key))
        return vals[-1] if vals else default

    def get_all_local(self, key: str) -> list[str]:
        return list(self.git_values.get(_norm(key), []))

    def committed_only(self, key: str) -> bool:
        """True when ``key`` is set in .datalad/config but in none of git's own scopes nor
        the environment."""
        key = _norm(key)
        return key in self.values and key not in self.git_values

    def with_prefix(self, prefix: str) -> dict[str, list[str]]:
        prefix = _norm(prefix)
        return {k: v for k, v in self.values.items() if k.startswith(prefix)}


_norm = cfgkeys.normalize


class Dataset:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._config: Config | None = None
        self._real_root: Path | None = None

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
        if (branch.is_symlink() or branch.exists()) and not _within(
                os.path.realpath(branch), self.real_root):
            # a committed symlink would make rr read a file outside the dataset as config
            raise UnsafePathError(f"{DATALAD_CONFIG} is a symlink leading outside the "
                                  "dataset; rr does not follow it",
                                  hint=f"replace it with a plain file: git rm {DATALAD_CONFIG}")
        if branch.exists():
            for key, value in gitrepo.config_file_list(self.root, str(branch)):
                values.setdefault(_norm(key), []).append(value)
        scoped: dict[str, list[str]] = {}
        for key, value in gitrepo.config_list(self.root):
            scoped.setdefault(_norm(key), []).append(value)
        # git's own scopes override the committed defaults key by key, the environment both
        return Config.layered(values, scoped)

    @property
    def id(self) -> str | None:
        return self.config.get(cfgkeys.DATASET_ID)

    @property
    def is_annex(self) -> bool:
        # annex.version, not annex.uuid: `git annex uninit` can leave the uuid behind
        return self.config.get(cfgkeys.ANNEX_VERSION) is not None

    # --- paths ----------------------------------------------------------------------
    # Everything that turns a path into a place in the dataset goes through ensure_inside:
    # lexically inside the root, really inside once symlinked directories are followed, and
    # never inside a .git directory.  Paths from the command line, from .gitmodules, from
    # config and from run records are all checked this way before anything is read or written.
    @property
    def real_root(self) -> Path:
        if self._real_root is None:
            self._real_root = Path(os.path.realpath(self.root))
        return self._real_root

    def ensure_inside(self, path: str | os.PathLike[str], base: Path | None = None, *,
                      follow_final: bool = False, what: str = "path",
                      tracked_form: bool = False) -> str:
        """``path`` (absolute, or relative to ``base``/cwd) as a POSIX path relative to the
        root, or an error when it is outside the dataset, leads out of it through a symlinked
        directory or lies inside ``.git``.  A final component that is itself a symlink (an
        annexed file) is not followed unless ``follow_final``.  An absolute path that reaches
        the dataset through a symlink outside it is taken as the path there (as DataLad).
        With ``tracked_form`` (paths asked about in git's terms: status, diff) a path through
        a symlinked directory inside the dataset is an error, as git's "beyond a symbolic
        link"; reading an input through one stays allowed."""
        text = os.fspath(path)
        full = Path(text)
        if not full.is_absolute():
            full = (base or Path.cwd()) / full
        norm = Path(os.path.normpath(full))
        try:
            rel = norm.relative_to(self.root).as_posix()
        except ValueError:
            # the dataset reached through a symlink outside it (an absolute path over another
            # name of the same directory): the path as it is there, as DataLad takes it
            there = Path(_real_location(os.fspath(norm), False))
            try:
                rel = there.relative_to(self.real_root).as_posix()
            except ValueError:
                raise OutsideDatasetError(text, str(self.root)) from None
            full = self.root / rel
        rel = "." if rel in ("", ".") else rel
        if _in_git_dir(rel):
            raise UnsafePathError(f"{what} is inside .git, which rr never reads or writes as "
                                  f"data: {rel}")
        # "link/" names the directory the symlink leads to, not the symlink
        real = _real_location(os.fspath(full), follow_final or text.endswith(("/", "/.")))
        real_rel = os.path.relpath(real, self.real_root)
        if not _within(real, self.real_root):
            raise UnsafePathError(f"{what} leads outside the dataset {self.root} through a "
                                  f"symlink: {rel} (-> {real})")
        if _in_git_dir(Path(real_rel).as_posix()):
            raise UnsafePathError(f"{what} leads into .git through a symlink: {rel}")
        if tracked_form and rel != "." and not follow_final and not text.endswith(("/", "/.")):
            parent = os.path.dirname(rel)
            real_parent = os.path.dirname(Path(real_rel).as_posix())
            if parent and parent != real_parent and real_parent != ".":
                # through a symlinked directory inside the dataset: git cannot track it there
                # ("beyond a symbolic link"); an error, not a silent nothing
                raise UnsafePathError(f"{what} is beyond a symbolic link: {rel} (its directory "
                                      f"is {real_parent})")
        return rel

    def resolves_inside(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path``, every symlink followed (the final one too), is inside the
        dataset; unlike :meth:`ensure_inside` the annex object store in .git counts."""
        real = os.path.realpath(self.root / path)
        if _within(real, self.real_root):
            return True
        shared = self._shared_annex_objects()
        if shared is not None and _within(real, shared):
            return True
        # an ephemeral clone (rr clone --reckless ephemeral): .git/annex (or its objects) is a
        # symlink, made on this machine, to the origin's; those objects are this dataset's
        own = self.root / ".git" / "annex"
        return (own.is_symlink() or (own / "objects").is_symlink()) and \
            _within(real, Path(os.path.realpath(own / "objects")))

    def _shared_annex_objects(self) -> Path | None:
        """The annex object store of the repository this linked worktree belongs to (an
        array job's worktree keeps its annexed content there), or None for a main one.
        Read from git's own files in .git, never from anything committed."""
        gd = self.root / ".git"
        try:
            if gd.is_file():  # "gitdir: PATH" (git-annex replaces it by a symlink)
                gd = self.root / gd.read_text(encoding="utf-8").split(":", 1)[1].strip()
            real = Path(os.path.realpath(gd))
            common = (real / "commondir").read_text(encoding="utf-8").strip()
        except (OSError, IndexError):
            return None
        return Path(os.path.realpath(real / common)) / "annex" / "objects"

    def relpath(self, path: str | os.PathLike[str], base: Path | None = None) -> str:
        """``path`` (absolute, or relative to ``base``/cwd) relative to the root; POSIX form.
        Checked with :meth:`ensure_inside`."""
        return self.ensure_inside(path, base)

    def contains(self, path: Path) -> bool:
        try:
            self.ensure_inside(path, follow_final=True)
            return True
        except RecorderError:
            return False

    # --- paths named by the dataset itself --------------------------------------------
    def subdatasets(self) -> dict[str, str]:
        """{path: url} of the subdatasets registered in ``.gitmodules``, every entry checked
        (by :func:`gitrepo.submodule_paths`, so any caller gets checked entries) before
        anything is cloned, installed, dropped or descended into: a path that is not a plain
        relative path inside this dataset (``..``, absolute, through a symlink leading out,
        ``.git``, line breaks) or a URL git would take for an option or a remote helper
        (``-...``, ``ext::...``) is an error naming the entry and ``.gitmodules``."""
        return gitrepo.submodule_paths(self.root)

    def config_path(self, key: str, default: str, value: str | None = None) -> str:
        """A directory or file named by dataset config ``key`` (default ``default``; or one
        ``value`` of a multi-valued key), as a path relative to the root, checked to stay
        inside the dataset (not in .git)."""
        if value is None:
            value = self.config.get(key) or default
        if os.path.isabs(value):
            raise UnsafePathError(f"{key} must be a path inside the dataset, not an absolute "
                                  f"path: {value}", hint=self._config_path_hint(key, default,
                                                                                value))
        try:
            return self.ensure_inside(value, self.root, follow_final=True, what=key)
        except RecorderError as exc:
            raise UnsafePathError(f"{key} is not a path inside the dataset: {exc.message}",
                                  hint=self._config_path_hint(key, default, value)) from None

    def _config_path_hint(self, key: str, default: str, refused: str) -> str:
        """How to fix a refused path setting: the default when it is not the refused value
        and is itself acceptable here, else a placeholder (never the refused value)."""
        usable = os.path.normpath(refused) != os.path.normpath(default)
        if usable:
            try:
                self.ensure_inside(default, self.root, follow_final=True, what=key)
            except RecorderError:
                usable = False
        if usable:
            return f"set it to a relative path, e.g. git config -f {DATALAD_CONFIG} {key} {default}"
        return (f"replace {default} by a directory inside the dataset, or set {key} to another "
                f"relative path: git config -f {DATALAD_CONFIG} {key} PATH")

    def record_directory(self) -> str:
        """Where sidecar run records live (``datalad.run.record-directory``), relative to
        the root and checked to be inside the dataset."""
        return self.config_path(RECORD_DIR_KEY, DEFAULT_RECORD_DIR)

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


def _within(real: str, root: Path) -> bool:
    rel = os.path.relpath(real, root)
    return not (rel == ".." or rel.startswith("../") or os.path.isabs(rel))


def _in_git_dir(rel: str) -> bool:
    return any(part.lower() == ".git" for part in rel.split("/"))


def _real_location(full: str, follow_final: bool) -> str:
    """Where ``full`` really is: symlinked directories on the way are followed; the final
    component only with ``follow_final`` (or when it is '.' or '..')."""
    head, tail = os.path.split(full.rstrip("/") if full != "/" else full)
    if follow_final or tail in ("", ".", "..") or full.endswith("/"):
        return os.path.realpath(full)
    return os.path.join(os.path.realpath(head), tail)
