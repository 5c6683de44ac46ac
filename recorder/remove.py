"""rr remove: take files, directories and subdatasets out of a dataset, as `datalad remove`
does, and commit that ("[DATALAD] removed content", DataLad's message).

Nothing is lost on the way unless ``force``: every check is made before anything changes.
A file with unsaved changes is refused.  The content of a removed annexed file is dropped
when git-annex's own numcopies check finds it safely elsewhere (and no remaining file uses
it); otherwise it stays in the local annex, reachable through the history -- which is all
DataLad ever does.  A subdataset is unregistered (its .gitmodules entry, its gitlink) and
its checkout deleted only when nothing of it lives here alone: no unsaved changes, no
commit that no sibling has, no annexed content that enough other copies do not hold
(git-annex drops it first, as `datalad remove` does); the same for the subdatasets inside
it.  ``force`` (DataLad's ``--reckless kill``) skips those checks and drops the last copies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import annex, gitrepo
from . import config as cfgkeys
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .lock import dataset_lock, deferred_signals
from .results import Result
from .subdatasets import gitmodules, installed, installed_paths, linked_annex, rmtree

DEFAULT_MESSAGE = "[DATALAD] removed content"


@dataclass
class _Plan:
    """What to remove from one dataset."""

    ds: Dataset
    prefix: str                                   # its path in the dataset the user named
    given: list[str] = field(default_factory=list)           # paths as asked, ds-relative
    files: dict[str, list[str]] = field(default_factory=dict)  # given path -> tracked files
    subdatasets: list[str] = field(default_factory=list)     # registered ones to unregister
    inner: dict[str, "_Plan"] = field(default_factory=dict)  # installed sub -> its plan


def remove(ds: Dataset, paths: Sequence[str], *, force: bool = False,
           message: str | None = None, base: Path | None = None) -> list[Result]:
    """Remove ``paths`` (relative to ``base``, default: the working directory) from ``ds``
    and its installed subdatasets, one commit per dataset changed; one result per path."""
    if not paths:
        raise UsageError("say what to remove: rr remove PATH...")
    rels = []
    for p in paths:
        rel = ds.ensure_inside(p, base)
        if rel == ".":
            raise UsageError(f"rr remove does not remove the dataset itself: {p}",
                             hint="name what to remove inside it; a subdataset is removed "
                                  "from its superdataset")
        rels.append(rel)
    plan = _plan(ds, rels, "")
    if not force:
        problems = _problems(plan)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RecorderError(f"refusing to remove {problems[0]}{more}",
                                hint="save or push it first (rr save, rr push); --force "
                                     "(or --reckless kill) removes it anyway and loses it")
    if not force:
        _drop_subdatasets_content(plan)  # the last check: nothing is committed before it
    return _execute(plan, force, message or DEFAULT_MESSAGE)


# --- planning: every path checked before anything changes --------------------------------


def _plan(ds: Dataset, rels: Sequence[str], prefix: str) -> _Plan:
    plan = _Plan(ds, prefix)
    entries = gitmodules(ds)
    subs = sorted(entries, key=len, reverse=True)
    for rel in rels:
        owner = next((s for s in subs if rel.startswith(s + "/")), None)
        if owner is not None:
            if not installed(ds, owner):
                raise RecorderError(f"cannot remove {prefix}{rel}: the subdataset "
                                    f"{prefix}{owner} is not installed",
                                    hint=f"remove the whole subdataset (rr remove "
                                         f"{prefix}{owner}) or install it first (rr get -n)")
            inner = plan.inner.get(owner)
            sub_plan = _plan(Dataset(ds.root / owner), [rel[len(owner) + 1:]],
                             f"{prefix}{owner}/")
            if inner is None:
                plan.inner[owner] = sub_plan
            else:
                _merge(inner, sub_plan)
            continue
        below = [s for s in entries if s == rel or s.startswith(rel + "/")]
        tracked = [f for f in gitrepo.ls_files(ds.root, [rel])
                   if f not in entries and not any(f.startswith(s + "/") for s in below)]
        if not tracked and not below:
            if os.path.lexists(ds.root / rel):
                raise RecorderError(f"not tracked in the dataset: {prefix}{rel}",
                                    hint="rr remove takes saved files, directories and "
                                         "subdatasets; delete an untracked file yourself")
            raise RecorderError(f"path does not exist: {prefix}{rel}")
        plan.given.append(rel)
        plan.files[rel] = tracked
        plan.subdatasets += [s for s in below if s not in plan.subdatasets]
    for owner in [o for o in plan.inner if o in plan.subdatasets]:
        del plan.inner[owner]  # the whole subdataset goes: nothing to do inside it first
    return plan


def _merge(into: _Plan, other: _Plan) -> None:
    into.given += other.given
    into.files.update(other.files)
    into.subdatasets += [s for s in other.subdatasets if s not in into.subdatasets]
    for owner, sub in other.inner.items():
        if owner in into.inner:
            _merge(into.inner[owner], sub)
        else:
            into.inner[owner] = sub


def _problems(plan: _Plan) -> list[str]:
    """What removing would lose: unsaved changes to the files, and whatever of a removed
    subdataset (or a subdataset inside it) exists only here (content is checked by
    git-annex when it is dropped, before the subdataset goes)."""
    out: list[str] = []
    ds, prefix = plan.ds, plan.prefix
    files = [f for group in plan.files.values() for f in group]
    if files:
        for e in ds.status(files, untracked="no"):
            if e.state != "deleted" and not e.submodule:
                out.append(f"{prefix}{e.path}: it has unsaved changes")
    # a directory holding files never saved (as DataLad refuses): removing its tracked files
    # would leave them behind, and --force would delete them
    folders = [g for g in plan.files if g != "." and (ds.root / g).is_dir()
               and not (ds.root / g).is_symlink()] + (["."] if "." in plan.files else [])
    if folders:
        for path in gitrepo.untracked_paths(ds.root, folders):
            out.append(f"{prefix}{path}: it is untracked (never saved)")
    for sub in plan.subdatasets:
        if installed(ds, sub):
            out += _losses(ds.root / sub, f"{prefix}{sub}")
    for sub_plan in plan.inner.values():
        out += _problems(sub_plan)
    return out


def _losses(root: Path, shown: str) -> list[str]:
    """What of the installed subdataset at ``root`` (and those inside it) is only here."""
    out: list[str] = []
    # a subdataset inside is checked on its own below (its new commits, its changes)
    dirty = [e.path for e in gitrepo.iter_status(root, untracked="normal") if not e.submodule]
    if dirty:
        out.append(f"the subdataset {shown}: it has unsaved changes ({', '.join(dirty[:3])}"
                   f"{' ...' if len(dirty) > 3 else ''})")
    ignored = gitrepo.ignored_paths(root)
    if ignored:
        out.append(f"the subdataset {shown}: it has ignored files that were never saved "
                   f"({', '.join(ignored[:3])}{' ...' if len(ignored) > 3 else ''})")
    # its branches, tags and stash, against what each sibling answers it has now
    unpushed = gitrepo.commits_only_here(root)
    if unpushed:
        out.append(f"the subdataset {shown}: {len(unpushed)} commit(s) of it are on no "
                   f"sibling that answers (its branches, tags and stash; e.g. "
                   f"{unpushed[0][:10]})")
    for inner in installed_paths(root):
        out += _losses(root / inner, f"{shown}/{inner}")
    return out


# --- doing it ---------------------------------------------------------------------------


def _execute(plan: _Plan, force: bool, message: str) -> list[Result]:
    ds = plan.ds
    results: list[Result] = []
    with dataset_lock(ds.git_dir, what="rr remove"):
        changed_subs = []
        for owner, sub_plan in plan.inner.items():
            results += _execute(sub_plan, force, message)
            changed_subs.append(owner)
        files = [f for group in plan.files.values() for f in group]
        here = [f for f in files if os.path.lexists(ds.root / f)]
        keys = annex.present_keys(ds.root, here) if here and ds.is_annex else {}
        names = {s: gitmodules(ds)[s]["name"] for s in plan.subdatasets}
        with deferred_signals():
            for sub in plan.subdatasets:
                _delete_checkout(ds, sub)
            if files or plan.subdatasets:
                gitrepo.rm(ds.root, [*files, *plan.subdatasets])
            _unregister(ds, names)
            staged = [*plan.given, *changed_subs]
            if plan.subdatasets and (ds.root / ".gitmodules").exists():
                staged.append(".gitmodules")
            if changed_subs:
                gitrepo.add(ds.root, changed_subs)
            gitrepo.commit(ds.root, message, only=staged)
        fates = _drop_unused(ds, keys, force)
        for rel in plan.given:
            results.append(_result(plan, rel, fates))
    return results


def _drop_subdatasets_content(plan: _Plan) -> None:
    """Drop the content of the installed subdatasets to be removed, in every dataset of the
    plan, as `datalad remove` does: git-annex refuses what is not safely elsewhere."""
    with dataset_lock(plan.ds.git_dir, what="rr remove"):
        for sub in plan.subdatasets:
            if installed(plan.ds, sub):
                _drop_everything(plan.ds.root / sub, f"{plan.prefix}{sub}")
    for sub_plan in plan.inner.values():
        _drop_subdatasets_content(sub_plan)


def _drop_everything(root: Path, shown: str) -> None:
    """Drop all annexed content of the subdataset at ``root`` (inner ones first) that
    git-annex finds safely elsewhere; an error names what is not."""
    for inner in installed_paths(root):
        _drop_everything(root / inner, f"{shown}/{inner}")
    if not Dataset(root).is_annex or linked_annex(root) is not None:
        # an ephemeral clone: its annex is the origin's, whose copies must stay; deleting
        # the checkout (a symlink to that annex) takes none of them
        return
    try:
        annex.drop_all(root)
    except annex.AnnexError as exc:
        failed = exc.failed
        what = failed[0].get("file") or failed[0].get("key") or "?"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise RecorderError(f"refusing to remove the subdataset {shown}: the content of "
                            f"{what}{more} has no other copy that git-annex can verify",
                            hint="push it first (rr push in the subdataset); --force (or "
                                 "--reckless kill) removes it anyway and loses it") from None


def _delete_checkout(ds: Dataset, sub: str) -> None:
    """Delete the checkout of subdataset ``sub`` (and its git directory when git keeps that
    in .git/modules), never anything outside the dataset."""
    full = ds.root / sub
    ds.ensure_inside(full, follow_final=True, what="subdataset")
    if not full.is_dir() or full.is_symlink():
        return
    gitfile = full / ".git"
    module_dir: Path | None = None
    if gitfile.is_file():
        text = gitfile.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            where = Path(os.path.normpath(full / text[len("gitdir:"):].strip()))
            modules = Path(os.path.realpath(ds.git_dir / "modules"))
            real = Path(os.path.realpath(where))
            if real != modules and modules in real.parents:
                module_dir = real
    rmtree(full)
    if module_dir is not None and module_dir.is_dir():
        rmtree(module_dir)
    parent = full.parent
    while parent != ds.root and ds.root in parent.parents:  # as git rm leaves no empty dirs
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def _unregister(ds: Dataset, names: dict[str, str]) -> None:
    """Take the subdatasets ({path: gitmodule name}) out of .gitmodules (where git rm left
    them) and out of .git/config."""
    if not names:
        return
    for name in names.values():
        gitrepo.config_remove_section(ds.root, cfgkeys.submodule_section(name),
                                      file=str(ds.root / ".gitmodules"))
        gitrepo.config_remove_section(ds.root, cfgkeys.submodule_section(name))
    if (ds.root / ".gitmodules").exists():
        gitrepo.add(ds.root, [".gitmodules"])


def _drop_unused(ds: Dataset, keys: dict[str, list[str]], force: bool) -> dict[str, str]:
    """Drop the content of the removed files that no remaining file uses: {file: fate}."""
    if not keys:
        return {}
    if linked_annex(ds.root) is not None:  # an ephemeral clone's: the origin's copies stay
        return {f: "kept" for files in keys.values() for f in files}
    used = annex.used_keys(ds.root)
    fates: dict[str, str] = {}
    candidates = [k for k in keys if k not in used]
    for k in keys:
        if k in used:
            for f in keys[k]:
                fates[f] = "kept"  # another file still uses it
    for rec in annex.drop_keys(ds.root, candidates, force=force):
        key = rec.get("key")
        for f in keys.get(key or "", []):
            fates[f] = "dropped" if rec.get("success") else "only-copy"
    return fates


def _result(plan: _Plan, rel: str, fates: dict[str, str]) -> Result:
    files = plan.files.get(rel, [])
    subs = [s for s in plan.subdatasets if s == rel or s.startswith(rel + "/")]
    counts = {fate: sum(1 for f in files if fates.get(f) == fate)
              for fate in ("dropped", "only-copy", "kept")}
    notes = []
    if counts["dropped"]:
        notes.append(f"content of {counts['dropped']} file(s) dropped (safely elsewhere)")
    if counts["only-copy"]:
        notes.append(f"content of {counts['only-copy']} file(s) kept in the local annex: "
                     "no other copy is known (it comes back with the file from the history)")
    if subs and rel not in subs:
        notes.append(f"{len(subs)} subdataset(s) inside removed")
    kind = "dataset" if rel in plan.subdatasets else \
        "file" if files == [rel] else "directory"
    extra = {"files": len(files), "subdatasets": [plan.prefix + s for s in subs],
             "dropped": counts["dropped"], "kept": counts["only-copy"] + counts["kept"]}
    return Result("remove", plan.prefix + rel, state="removed", type=kind,
                  message="; ".join(notes), extra=extra)
