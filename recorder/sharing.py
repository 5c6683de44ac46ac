"""Sharing datasets: clone (and register as subdataset), get, drop, siblings, push."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as cfgkeys
from . import annex, gitrepo
from . import remove as remove_mod
from .dataset import DATALAD_CONFIG, Dataset
from .errors import CommandError, RecorderError, UsageError
from .results import NOTNEEDED, OK, OnEvent, Result
from .lock import dataset_lock, deferred_signals
from .recursion import check_recursion, deeper, may_descend
from .subdatasets import (check_reckless, ephemeral_annex, fetch, finish_reckless,
                          inherited_reckless, init_annex_if_needed, install, installed, is_url,
                          linked_annex, prepare_reckless, recorded_url, split_by_dataset)

# --- clone ------------------------------------------------------------------------------


CLONE_KEYS = ("action", "status", "path")  # rr's JSON of a clone: status before path


def _default_name(source: str) -> str:
    name = source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name[:-4] if name.endswith(".git") else name


def clone(source: str, path: str | None = None, dataset: str | None = None,
          reckless: str | None = None) -> Result:
    """Clone ``source`` to ``path`` (registered as a subdataset of ``dataset``): a ``clone``
    result (``path``; fields ``source``, ``id``, ``registered_in``, ``commit``, and
    ``reckless`` when the clone was set up in one of DataLad's reckless modes: ``auto``,
    ``ephemeral``, ``shared-MODE``; see :func:`subdatasets.check_reckless`).  With
    ``dataset`` and no ``reckless`` the mode the superdataset was cloned with is used."""
    reckless = check_reckless(reckless)
    superds = Dataset.find(dataset) if dataset is not None else None
    if reckless is None and superds is not None:
        reckless = inherited_reckless(superds)
    base = Path.cwd()
    if superds is not None and path is not None and not os.path.isabs(path):
        # with -d, a relative PATH is relative to the dataset (as `rr clone -d . SRC data/raw`)
        base = superds.root if not superds.contains(base) else base
    target = Path(os.path.normpath(base / (path or _default_name(source))))
    src = source
    if not is_url(source):
        src_path = Path(os.path.normpath(Path.cwd() / os.path.expanduser(source)))
        if not src_path.exists() and not (target.exists() and any(target.iterdir())):
            raise RecorderError(f"clone source does not exist: {source}")
        src = str(src_path)
    origin_annex: Path | None = None
    if reckless == "ephemeral":
        origin_annex, why = ephemeral_annex(src)
        if why:
            raise RecorderError(f"cannot make an ephemeral clone of {source}: {why}",
                                hint="clone it without --reckless ephemeral (or with "
                                     "--reckless auto: hardlinks from a local origin)")
    if target.exists() and any(target.iterdir()):
        registered = superds is None or superds.relpath(target) in superds.subdatasets()
        if registered and _same_source(target, src):  # cloned before: nothing to do (DataLad)
            return Result("clone", str(target), NOTNEEDED,
                          message=f"already a clone of {source}",
                          extra={"source": source, "id": Dataset(target).id,
                                 "registered_in": None, "commit": None}, key_order=CLONE_KEYS)
        raise RecorderError(f"destination exists and is not empty: {target}")
    if superds is not None:
        rel = superds.relpath(target)
        if rel == ".":
            raise UsageError("cannot clone a subdataset into the dataset's root")
    # with -d the clone appears inside the superdataset: under its lock, so that a run
    # without --explicit going on there cannot take the new directory as its output
    with dataset_lock(superds.git_dir, what="rr clone -d") if superds is not None \
            else contextlib.nullcontext():
        return _clone_into(src, source, target, superds, reckless, origin_annex)


def _same_source(target: Path, src: str) -> bool:
    """Whether ``target`` is a repository cloned from ``src`` (its origin names it)."""
    if not (target / ".git").exists():
        return False
    origin = gitrepo.remotes(target).get("origin")
    if origin is None:
        return False
    if is_url(src) or is_url(origin):
        return origin.rstrip("/") == src.rstrip("/")
    return os.path.realpath(os.path.join(target, origin)) == os.path.realpath(src)


def _clone_into(src: str, source: str, target: Path, superds: Dataset | None,
                reckless: str | None = None, origin_annex: Path | None = None) -> Result:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        gitrepo.clone(src, target, cwd=target.parent)
    except CommandError as exc:
        raise RecorderError(f"cannot clone {source}: {exc.message.split(': ', 1)[-1]}") from None
    sub = Dataset(target)
    if sub.head() is None:  # the source's HEAD names a branch without commits: as DataLad,
        branch = gitrepo.newest_remote_branch(target, "origin")  # the newest branch
        if branch is not None:
            gitrepo.checkout_tracking(target, branch, "origin")
    prepare_reckless(target, reckless)
    init_annex_if_needed(sub)
    finish_reckless(sub, reckless, origin_annex)
    if not is_url(src):
        _add_origins_origins(sub, Path(src))
    try:  # the run notes (durations), which git clone leaves behind
        merge_sibling_notes(sub, "origin")
    except RecorderError:
        pass  # the clone is complete without them; rr update fetches them again
    extra: dict[str, Any] = {"source": source, "id": sub.id, "registered_in": None,
                             "commit": None}
    if reckless is not None:  # only then: a plain clone's JSON stays as it was
        extra["reckless"] = reckless
    if superds is not None:
        with dataset_lock(superds.git_dir):
            rel = superds.relpath(target)
            url = recorded_url(source, src, superds.root)
            gitrepo.submodule_add(superds.root, url, rel)
            # .git/config: where this clone came from (git resolved a relative URL against
            # the superdataset's sibling, which need not have it)
            gitrepo.register_submodule(superds.root, rel, src)
            gitmodules = str(superds.root / ".gitmodules")
            if sub.id:
                gitrepo.config_set(superds.root, cfgkeys.submodule_key(rel, "datalad-id"),
                                   sub.id, file=gitmodules)
            if is_url(source):  # as DataLad records it (its first choice when installing)
                gitrepo.config_set(superds.root, cfgkeys.submodule_key(rel, "datalad-url"),
                                   source, file=gitmodules)
            gitrepo.add(superds.root, [".gitmodules", rel])
            extra["commit"] = gitrepo.commit(superds.root, "[DATALAD] Added subdataset",
                                             only=[".gitmodules", rel])
            extra["registered_in"] = str(superds.root)
    return Result("clone", str(target), OK, extra=extra, key_order=CLONE_KEYS)


def _add_origins_origins(ds: Dataset, source: Path, most: int = 8) -> None:
    """A clone of a local clone: the source's own origin becomes sibling ``origin-2`` (its
    origin ``origin-3``, ...), as DataLad adds them, so that content the source only knows
    the location of can be got from where it is.  Only local dataset paths are followed;
    a chain that loops back stops."""
    seen = {os.path.realpath(ds.root), os.path.realpath(source)}
    here = source
    for n in range(2, 2 + most):
        try:
            url = gitrepo.remotes(here).get("origin")
        except CommandError:
            return
        if not url or is_url(url):
            return
        nxt = Path(os.path.normpath(here / os.path.expanduser(url)))
        real = os.path.realpath(nxt)
        if real in seen or not (nxt / ".git").exists() and not (nxt / "HEAD").exists():
            return
        name = f"origin-{n}"
        if name in gitrepo.remotes(ds.root):
            return
        gitrepo.remote_add(ds.root, name, str(nxt))
        seen.add(real)
        here = nxt


# --- get / drop -------------------------------------------------------------------------


def _resolve_paths(ds: Dataset, paths: Sequence[str],
                   missing: list[str] | None = None) -> list[str]:
    """Dataset-relative paths; a path that does not exist (and is in no subdataset) is an
    error, or, given a ``missing`` list, is put there and left out."""
    out = []
    subs = sorted(ds.subdatasets(), key=len, reverse=True)
    for p in paths or ["."]:
        rel = ds.relpath(p)
        full = ds.root / rel
        owner = next((s for s in subs if rel == s or rel.startswith(s + "/")), None)
        if not os.path.lexists(full) and owner is None:
            if missing is None:
                raise RecorderError(f"path does not exist: {p}")
            missing.append(p)
            continue
        out.append(rel)
    return out


def get(ds: Dataset, paths: Sequence[str], recursive: bool = False,
        on_event: OnEvent | None = None, jobs: int | None = None,
        no_data: bool = False, source: str | None = None,
        recursion_limit: int | str | None = None, reckless: str | None = None) -> list[str]:
    """Fetch the content of ``paths`` (``no_data``: only install the subdatasets on the way,
    DataLad's ``get -n``; ``source``: only from the sibling of that name, DataLad's
    ``get -s``; ``recursion_limit``: with ``recursive``, that many levels of subdatasets
    down, DataLad's ``-R``, or ``"existing"``: only the subdatasets installed already, none
    installed by the recursion; ``reckless``: subdatasets installed on the way are set up in that
    mode, as by ``clone``); a path that does not exist does not keep the others from being
    fetched (as DataLad: it is reported, and the whole get fails)."""
    existing = recursion_limit == "existing"
    if isinstance(recursion_limit, str) and not existing:
        raise UsageError(f"-R/--recursion-limit takes a number of levels or 'existing', not "
                         f"{recursion_limit!r}")
    depth = check_recursion(recursive, None if isinstance(recursion_limit, str) else
                            recursion_limit)
    if existing and not recursive:
        raise UsageError("-R/--recursion-limit limits -r/--recursive: add -r")
    reckless = check_reckless(reckless)
    if source is not None and not source.strip():
        raise UsageError("-s/--source names a sibling: it cannot be empty")
    missing: list[str] = []
    rels = _resolve_paths(ds, paths, missing)
    if rels:
        _get_existing(ds, rels, recursive, on_event, jobs, no_data, source, depth, reckless,
                      existing)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise RecorderError(f"path does not exist: {missing[0]}{more}",
                            hint=f"the other {len(rels)} path(s) were fetched" if rels
                            else None)
    return rels


def _get_existing(ds: Dataset, rels: list[str], recursive: bool, on_event: OnEvent | None,
                  jobs: int | None, no_data: bool = False, source: str | None = None,
                  depth: int | None = None, reckless: str | None = None,
                  existing: bool = False) -> None:
    fetch(ds, rels, on_event, jobs, no_data=no_data, source=source, reckless=reckless)
    if recursive and may_descend(depth):
        for sub in ds.subdatasets():
            inner = _inner_path(rels, sub)
            if inner is not None and not (existing and not installed(ds, sub)):
                child = install(ds, sub, reckless=reckless)
                _get_existing(child, _resolve_paths(child, [str(child.root / inner)]), True,
                              on_event, jobs, no_data, source, deeper(depth), reckless,
                              existing)


def _inner_path(rels: Sequence[str], sub: str) -> str | None:
    """What of subdataset ``sub`` the paths ``rels`` cover: '.', a path inside, or None."""
    for rel in rels:
        if rel == "." or rel == sub or sub.startswith(rel.rstrip("/") + "/"):
            return "."
        if rel.startswith(sub + "/"):
            return rel[len(sub) + 1:]
    return None


DROP_WHAT = ("filecontent", "allkeys", "datasets", "all")
RECKLESS = ("modification", "availability", "undead", "kill")


def drop(ds: Dataset, paths: Sequence[str], recursive: bool = False,
         force: bool = False, what: str = "filecontent", reckless: str | None = None,
         recursion_limit: int | None = None) -> Result:
    """Drop annexed content: a ``drop`` result, fields ``dropped`` (the number of files
    dropped), ``records`` (git-annex's, one per file, failures included) and
    ``uninstalled`` (subdatasets).  As DataLad's drop: ``what`` filecontent (the files'
    content), allkeys (every version of every key), datasets (uninstall the subdatasets
    named: their checkout goes, their registration stays), all (both); ``reckless``
    modification (drop changed content too), availability/undead (no copy check: as
    ``force``), kill (nothing checked); ``recursion_limit``: with ``recursive``, that many
    levels of subdatasets down.

    Content is never dropped from a dataset whose annex is another repository's (an
    ephemeral clone, :func:`subdatasets.linked_annex`): whatever the options, as DataLad
    refuses it, since that content is the other repository's own copy; uninstalling such a
    subdataset (``datasets``) deletes its checkout only."""
    depth = check_recursion(recursive, recursion_limit)
    if what not in DROP_WHAT:
        raise UsageError(f"--what must be one of {', '.join(DROP_WHAT)}, not {what!r}")
    if reckless is not None and reckless not in RECKLESS:
        raise UsageError(f"--reckless must be one of {', '.join(RECKLESS)}, not {reckless!r}")
    force = force or reckless in ("availability", "undead", "kill")
    subs: list[str] = []
    if what in ("datasets", "all"):
        subs = _subdatasets_to_uninstall(ds, paths)
    linked = _linked_annexes(ds, _resolve_paths(ds, paths), recursive, depth, set(subs))
    if linked:
        where, target = linked[0]
        raise RecorderError(f"refusing to drop content in {where}: its annex is "
                            f"{target} (an ephemeral clone's): dropping there would delete "
                            "the origin's own copy; nothing was dropped",
                            hint="drop it in the origin; rr drop --what datasets uninstalls "
                                 "such a subdataset without touching that content")
    records = _drop(ds, paths, recursive, force, all_keys=what in ("allkeys", "all"),
                    modified_ok=reckless in ("modification", "kill"),
                    skip=set(subs), depth=depth)
    uninstalled = [_uninstall(ds, sub, force) for sub in subs]
    return Result("drop", None, OK, extra={
        "dropped": sum(1 for r in records if r.get("success")), "records": records,
        "uninstalled": uninstalled})


def _subdatasets_to_uninstall(ds: Dataset, paths: Sequence[str]) -> list[str]:
    """The installed subdatasets ``paths`` name (each must be one; the dataset itself is not
    dropped this way)."""
    out = []
    registered = set(ds.subdatasets())
    for p in paths or ["."]:
        rel = ds.relpath(p)
        if rel == ".":
            raise UsageError("rr drop does not delete the dataset itself",
                             hint="name its subdatasets (rr drop --what datasets SUB)")
        if rel not in registered:
            raise RecorderError(f"not a subdataset: {p}",
                                hint="--what datasets uninstalls subdatasets; their files' "
                                     "content is dropped with --what filecontent")
        if installed(ds, rel):
            out.append(rel)
    return out


def _uninstall(ds: Dataset, rel: str, force: bool) -> str:
    """Uninstall subdataset ``rel``: nothing of it may exist only here (unsaved changes,
    commits on no sibling, content no other copy holds) unless ``force``; its checkout is
    deleted, an empty directory stays where git expects the subdataset."""
    root = ds.root / rel
    if not force:
        losses = remove_mod._losses(root, rel)
        if losses:
            more = f" (and {len(losses) - 1} more)" if len(losses) > 1 else ""
            raise RecorderError(f"refusing to drop {losses[0]}{more}",
                                hint="save and push it first (rr save, rr push there); "
                                     "--reckless kill drops it anyway and loses that")
        remove_mod._drop_everything(root, rel)
    with dataset_lock(ds.git_dir, what="rr drop"):
        with deferred_signals():
            remove_mod._delete_checkout(ds, rel)
            root.mkdir(parents=True, exist_ok=True)
    return rel


def _linked_annexes(ds: Dataset, rels: Sequence[str], recursive: bool, depth: int | None,
                    skip: set[str], prefix: str = "") -> list[tuple[str, Path]]:
    """The datasets :func:`_drop` would drop content in whose annex is another repository's
    (dataset shown, where its annex is), found before anything is dropped."""
    out: list[tuple[str, Path]] = []
    for owner, group in split_by_dataset(ds, list(rels)).items():
        if owner:
            if installed(ds, owner) and owner not in skip and (
                    any(p != owner for p in group) or (recursive and may_descend(depth))):
                inner = ["." if p == owner else p[len(owner) + 1:] for p in group]
                out += _linked_annexes(Dataset(ds.root / owner), inner, recursive,
                                       deeper(depth), set(), f"{prefix}{owner}/")
            continue
        target = linked_annex(ds.root) if ds.is_annex else None
        if target is not None:
            out.append((prefix.rstrip("/") or str(ds.root), target))
        if recursive and may_descend(depth):
            for rel in ds.subdatasets():
                if installed(ds, rel) and _inner_path(group, rel) == "." and rel not in skip:
                    out += _linked_annexes(Dataset(ds.root / rel), ["."], True, deeper(depth),
                                           set(), f"{prefix}{rel}/")
    return out


def _drop(ds: Dataset, paths: Sequence[str], recursive: bool, force: bool, *,
          all_keys: bool = False, modified_ok: bool = False,
          skip: set[str] = set(), depth: int | None = None) -> list[dict]:
    rels = _resolve_paths(ds, paths)
    records: list[dict] = []
    for owner, group in split_by_dataset(ds, rels).items():
        if owner:
            if not installed(ds, owner):
                continue
            if owner in skip:  # uninstalled after: its content is dropped and checked there
                continue
            if any(p != owner for p in group) or (recursive and may_descend(depth)):
                records += _drop(Dataset(ds.root / owner), [str(ds.root / p) for p in group],
                                 recursive, force, all_keys=all_keys, modified_ok=modified_ok,
                                 depth=deeper(depth))
            continue
        if ds.is_annex:
            if not modified_ok:
                _ensure_unmodified(ds, group)
            try:
                records += annex.drop(ds.root, group, force=force)
                if all_keys:
                    records += annex.drop(ds.root, [], force=force, all_keys=True)
            except annex.AnnexError as exc:
                raise RecorderError(
                    exc.message, hint="rr refuses to drop the last known copy; make another "
                    "copy first (rr push), or pass --force to lose it") from None
        if recursive and may_descend(depth):
            for sub in ds.subdatasets():
                if installed(ds, sub) and _inner_path(group, sub) == "." and sub not in skip:
                    records += _drop(Dataset(ds.root / sub), [str(ds.root / sub)], True, force,
                                     all_keys=all_keys, modified_ok=modified_ok,
                                     depth=deeper(depth))
    return records


def _ensure_unmodified(ds: Dataset, rels: Sequence[str]) -> None:
    """Refuse to drop content that was changed and not saved (as DataLad: impossible, "cannot
    drop modified content, save first"): git-annex would drop the saved version's content
    and report nothing about the changed file."""
    entries = [e for e in gitrepo.iter_status(ds.root, list(rels), untracked="no",
                                              ignore_submodules="all") if not e.submodule]
    changed = [e.path for e in entries
               if e.state == "modified" or (e.state == "typechange" and e.worktree)]
    # an unlocked file is a staged typechange (symlink -> pointer file): changed only when
    # its key differs from HEAD's (its new content was staged)
    staged = [e.path for e in entries if e.state == "typechange" and not e.worktree]
    if staged:
        index = {path: sha for _mode, sha, path in gitrepo.ls_files_stage(ds.root, staged)}
        # HEAD's blobs: the old side of one diff-index, not a rev-parse per path
        head = {e.path: e.old_sha for e in gitrepo.iter_diff_raw(ds.root, "HEAD", None, staged)}
        blobs = gitrepo.small_blobs(ds.root, [*index.values(), *head.values()])
        changed += [path for path in staged
                    if annex.key_of_link(blobs.get(index.get(path, ""), b""))
                    != annex.key_of_link(blobs.get(head.get(path, ""), b""))]
    if changed:
        shown = ", ".join(changed[:3]) + (f" (and {len(changed) - 3} more)"
                                          if len(changed) > 3 else "")
        raise RecorderError(f"cannot drop modified content, save first: {shown}; "
                            "nothing was dropped", hint="rr save them, then drop")


# --- siblings and push ------------------------------------------------------------------


@dataclass
class Sibling:
    name: str
    url: str
    kind: str  # git | annex-special
    publish_depends: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "kind": self.kind,
                "publish_depends": self.publish_depends}


def remove_sibling(ds: Dataset, name: str) -> Result:
    """Forget sibling ``name`` (its URL, config, remote-tracking branches); nothing in the
    sibling itself changes.  A git-annex special remote is not removed this way."""
    remotes = gitrepo.remotes(ds.root)
    if name not in remotes:
        known = [s.name for s in siblings(ds)]
        if name in known:
            raise RecorderError(f"{name} is a git-annex special remote, not a git sibling",
                                hint=f"git annex dead {name} marks it gone; git remote "
                                     f"remove {name} forgets it here")
        raise RecorderError(f"unknown sibling: {name}",
                            hint=f"siblings here: {', '.join(known) or 'none'}")
    gitrepo.remote_remove(ds.root, name)
    return Result("siblings", None, OK, message=f"removed sibling {name}",
                  extra={"name": name, "url": remotes[name]})


def siblings(ds: Dataset) -> list[Sibling]:
    out = []
    cfg = ds.config
    remotes = gitrepo.remotes(ds.root)
    for name, url in remotes.items():
        deps = cfg.get_all(cfgkeys.named(cfgkeys.REMOTE_PUBLISH_DEPENDS, name))
        out.append(Sibling(name, url, "git", deps))
    # every git-annex special remote this repository knows (an annex-uuid, no git URL): its
    # location from the keys git-annex keeps for its type, where it has one
    special: dict[str, dict[str, str]] = {}
    for key, value in gitrepo.config_list(ds.root):
        parts = cfgkeys.key_parts(key, "remote")
        if parts and parts[0] not in remotes:
            special.setdefault(parts[0], {})[parts[1]] = value
    for name, props in special.items():
        if "annex-uuid" not in props:
            continue
        where = next((props[k] for k in ("annex-rsyncurl", "annex-directory", "annex-url")
                      if props.get(k)), "")
        if not where and props.get("annex-externaltype"):
            where = f"external:{props['annex-externaltype']}"
        out.append(Sibling(name, where, "annex-special"))
    return out


def add_sibling(ds: Dataset, name: str, url: str, data_dir: str | None = None) -> Sibling:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name):
        raise UsageError(f"not a valid sibling name: {name!r}")
    if name in gitrepo.remotes(ds.root):
        raise RecorderError(f"sibling {name!r} already exists")
    if not is_url(url):
        target = Path(os.path.normpath(Path.cwd() / url))
        if not target.exists():
            target.mkdir(parents=True)
            gitrepo.init(target, bare=True)
        if ds.is_annex and (target / "HEAD").exists() and (target / "objects").is_dir() \
                and gitrepo.config_get(target, cfgkeys.ANNEX_UUID) is None:
            annex.init(target)  # a bare repository can then hold annexed content
        url = str(target)
    gitrepo.remote_add(ds.root, name, url)
    deps = []
    if data_dir:
        # an rsync special remote: unlike a directory remote it keeps its location in the
        # git-annex branch, so with autoenable a clone can get content from it without setup
        if is_url(data_dir):
            location = data_dir
        else:
            store = Path(os.path.normpath(Path.cwd() / data_dir))
            store.mkdir(parents=True, exist_ok=True)
            location = str(store)
        special = f"{name}-storage"
        annex.initremote(ds.root, special, ["type=rsync", f"rsyncurl={location}",
                                            "encryption=none", "autoenable=true"])
        gitrepo.config_set(ds.root, cfgkeys.named(cfgkeys.REMOTE_PUBLISH_DEPENDS, name), special)
        gitrepo.config_set(ds.root, cfgkeys.named(cfgkeys.REMOTE_ANNEX_IGNORE, name), "true")
        deps.append(special)
    ds.reload_config()
    return Sibling(name, url, "git", deps)


def push(ds: Dataset, to: str | None = None, data: str = "auto",
         jobs: int | None = None, recursive: bool = False,
         recursion_limit: int | None = None) -> Result:
    """Push to sibling ``to``: a ``push`` result (fields ``to``, ``branch``, ``copied``: the
    files of content copied, ``refs``; with ``recursive`` ``subdatasets``: what happened in
    each installed subdataset, pushed first, bottom-up, to its own sibling of that name;
    ``recursion_limit``: that many levels of subdatasets down)."""
    depth = check_recursion(recursive, recursion_limit)
    if data not in ("auto", "anything", "nothing"):
        raise UsageError("--data must be auto, anything or nothing")
    remotes = gitrepo.remotes(ds.root)
    if to is None:
        if len(remotes) != 1:
            raise UsageError("say where to push with --to (siblings: "
                             f"{', '.join(remotes) or 'none'})")
        to = next(iter(remotes))
    if to not in remotes:
        raise RecorderError(f"unknown sibling: {to}", hint="add it with 'rr siblings add'")
    branch = gitrepo.current_branch(ds.root)
    if branch is None:  # as DataLad: nothing to say which branch the sibling should get
        raise RecorderError("HEAD is detached: there is no branch to push; nothing was pushed",
                            hint="check out a branch first (git checkout -b NAME)")
    subs: list[dict[str, Any]] = []
    if recursive:
        subs = _push_subdatasets(ds, to, data, jobs, "", depth)
        failed = [s for s in subs if s["status"] == "error"]
        if failed:
            raise RecorderError(
                f"pushing subdataset {failed[0]['path']} failed: {failed[0]['message']}; "
                "the superdataset was not pushed (it would name a commit its sibling lacks)",
                hint="fix that, then push again")
    copied = 0
    pushed: list[str] = []
    # the siblings NAME depends on first (remote.NAME.datalad-publish-depends), as DataLad:
    # a git sibling gets the same push, a special remote the content; only what this
    # machine configured - a cloned dataset's .datalad/config must not choose where to push
    for dep in _publish_depends(ds, to, remotes):
        if dep in remotes:
            copied += _push_to(ds, dep, branch, data, jobs, [])
            pushed.append(dep)
        elif data != "nothing" and ds.is_annex:
            copied += _copy_content(ds, dep, data, jobs)
    refs: list[str] = []
    copied += _push_to(ds, to, branch, data, jobs, refs)
    extra: dict[str, Any] = {"to": to, "branch": branch, "copied": copied, "refs": refs,
                             "depends": pushed}
    if recursive:
        extra["subdatasets"] = subs
    return Result("push", None, OK, extra=extra)


def _push_subdatasets(ds: Dataset, to: str, data: str, jobs: int | None,
                      prefix: str, depth: int | None = None) -> list[dict[str, Any]]:
    """Each installed subdataset (``depth`` levels down; None: all), its own subdatasets
    first, to its sibling ``to`` (as DataLad's push -r): ``{"path", "status", "message"}``
    each; one without such a sibling is passed over (notneeded); a detached one is pushed
    only if it is needed."""
    done: list[dict[str, Any]] = []
    if not may_descend(depth):
        return done
    for rel in sorted(ds.subdatasets()):
        if not installed(ds, rel):
            continue
        sub = Dataset(ds.root / rel)
        path = prefix + rel
        done += _push_subdatasets(sub, to, data, jobs, path + "/", deeper(depth))
        if to not in gitrepo.remotes(sub.root):
            done.append({"path": path, "status": "notneeded", "message": f"no sibling {to}"})
            continue
        if gitrepo.current_branch(sub.root) is None:
            head = sub.head()
            if head and to in gitrepo.remotes_containing(sub.root, head):
                done.append({"path": path, "status": "notneeded",
                             "message": f"{to} has its commit {head[:8]}"})
            else:
                done.append({"path": path, "status": "error",
                             "message": "its HEAD is detached at a commit that "
                                        f"{to} does not have (check out a branch there)"})
            continue
        try:
            res = push(sub, to, data, jobs)
        except RecorderError as exc:
            done.append({"path": path, "status": "error", "message": exc.message})
            continue
        done.append({"path": path, "status": "ok", "copied": res.copied,
                     "message": f"pushed {res.branch} and {res.copied} file(s) of content"})
    return done


def _publish_depends(ds: Dataset, to: str, remotes: dict[str, str]) -> list[str]:
    """The siblings pushed before ``to``, dependencies of dependencies first (each once)."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        for dep in ds.config.get_all_local(cfgkeys.named(cfgkeys.REMOTE_PUBLISH_DEPENDS,
                                                         name)):
            if dep in path:
                cycle = " -> ".join((*path[path.index(dep):], dep))
                raise RecorderError(f"the siblings' publish-depends form a cycle ({cycle}): "
                                    "nothing was pushed",
                                    hint=f"see git config --get-all remote.{name}."
                                         "datalad-publish-depends")
            if dep in remotes:
                visit(dep, (*path, dep))
            if dep not in order:
                order.append(dep)

    visit(to, (to,))
    return [d for d in order if d != to]


def _copy_content(ds: Dataset, target: str, data: str, jobs: int | None) -> int:
    """Copy annexed content to ``target``: with --data auto only what it wants when it has
    a preferred-content expression (``git annex wanted``), as DataLad; everything present
    otherwise (``anything``: every version)."""
    auto = data == "auto" and bool(annex.wanted(ds.root, target))
    try:
        records = annex.copy_to(ds.root, target, ["."], all_versions=data == "anything",
                                jobs=jobs, auto=auto)
    except annex.AnnexError as exc:
        raise RecorderError(f"copying content to {target} failed: {exc.message}") from None
    return sum(1 for r in records if r.get("success"))


def _push_to(ds: Dataset, to: str, branch: str, data: str, jobs: int | None,
             refs: list[str]) -> int:
    """Content (unless annex-ignore'd or --data nothing), then the branch, git-annex branch,
    rr's notes and the tags to git sibling ``to``; the files of content copied.  ``refs``
    gets the refspecs pushed."""
    copied = 0
    if data != "nothing" and ds.is_annex and \
            not ds.config.get_bool(cfgkeys.named(cfgkeys.REMOTE_ANNEX_IGNORE, to)):
        copied = _copy_content(ds, to, data, jobs)
    refs.append(f"refs/heads/{branch}:refs/heads/{branch}")
    if ds.is_annex:
        refs.append("refs/heads/git-annex:refs/heads/git-annex")
    notes = [f"refs/notes/{ref}" for ref in gitrepo.NOTES_REFS
             if gitrepo.resolve_commit(ds.root, f"refs/notes/{ref}")]
    # never forced: a collaborator's notes in the sibling are merged, not overwritten
    refs += [f"{ref}:{ref}" for ref in notes]
    result = gitrepo.push(ds.root, to, refs)
    for _ in range(3):  # the sibling may move on again meanwhile: a few rounds
        if result.ok:
            break
        merge_annex = result.refused("refs/heads/git-annex")
        merge_notes = any(result.refused(ref) for ref in notes)
        if not (merge_annex or merge_notes) or result.refused(f"refs/heads/{branch}"):
            break
        if merge_annex:  # the sibling's git-annex branch moved on: merge it and push again
            gitrepo.fetch_branch(ds.root, to, "git-annex")
            annex.merge(ds.root)
        if merge_notes:  # the sibling has notes this dataset lacks: the union, then push
            merge_sibling_notes(ds, to)
        result = gitrepo.push(ds.root, to, refs)
    if not result.ok:
        if result.status is gitrepo.GitStatus.REJECTED:
            raise RecorderError(f"push to {to} was rejected: the sibling has commits this "
                                "dataset does not have",
                                hint=f"bring them in first (rr update -s {to} --how merge), "
                                     "then push again")
        raise RecorderError(f"push to {to} failed: {result.why}")
    tags = gitrepo.push(ds.root, to, ["--tags"])
    if not tags.ok:
        raise RecorderError(f"pushing tags to {to} failed")
    return copied


def merge_sibling_notes(ds: Dataset, sibling: str) -> bool:
    """Fetch the sibling's notes of each of rr's notes refs (durations in refs/notes/rr,
    verdicts of rr rerun --verify in refs/notes/rr-verify) beside ours and merge them in,
    keeping both sides' notes; False when the sibling has none."""
    sides = gitrepo.fetch_notes(ds.root, sibling)
    with deferred_signals():  # Ctrl-C waits: each notes ref moves once, to the merge
        for ref, side in sides.items():
            gitrepo.merge_notes(ds.root, side, into=ref)
    return bool(sides)


__all__ = ["clone", "get", "drop", "push", "add_sibling", "siblings", "DATALAD_CONFIG"]
