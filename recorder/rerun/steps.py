"""What a replayed step stands on and touches: the base it is replayed on (HEAD moved under
the dataset lock), the run it re-executes, the files it changed, restoring them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .. import environment, gitrepo, runlog
from ..containers import registry
from ..dataset import Dataset
from ..errors import RecorderError
from ..lock import dataset_lock
from ..run import RunSpec, glob_specs
from ..subdatasets import installed_paths
from .state import Replay, Step, safe_rel


def checkout(ds: Dataset, rev: str, *, new_branch: str | None = None) -> None:
    with dataset_lock(ds.git_dir):
        gitrepo.checkout(ds.root, rev, new_branch=new_branch, detach=new_branch is None)


def checkout_branch(ds: Dataset, branch: str, at: str | None = None) -> None:
    """Check ``branch`` out; with ``at``, point it there first (only ever a branch rr may
    move: the one replayed in place, or the new --branch)."""
    with dataset_lock(ds.git_dir):
        if at is None:
            gitrepo.checkout_branch(ds.root, branch)
        else:
            gitrepo.set_branch_and_checkout(ds.root, branch, at)


def base_for(replay: Replay, step: Step) -> tuple[str | None, bool]:
    """Put HEAD on the base a run or non-run commit is replayed on (DataLad's rules, spec
    §3 rule 15-16).  Returns (head to go back to if the commit is skipped, skip now)."""
    ds = replay.ds
    parent = step.parents[0]
    new_base = replay.mapping.get(parent)
    if step.action == "run" and len(step.parents) > 1:
        # a run-merge: recreate the state before the command, on the (mapped) first parent
        target = new_base or parent
        if target != replay.head:
            checkout(ds, target)
            replay.head = target
        return None, False
    if new_base:
        if new_base != replay.head:
            checkout(ds, new_base)
            previous, replay.head = replay.head, new_base
            return previous, False
        return None, False
    if parent != replay.head and gitrepo.is_ancestor(ds.root, replay.start, parent):
        if step.action == "run":
            checkout(ds, parent)  # replay in place on the original parent
            replay.head = parent
            return None, False
        return None, True
    if parent != replay.head:
        replay.mapping[parent] = replay.head
    return None, False


def replay_spec(replay: Replay, step: Step) -> RunSpec:
    """The run of a record as it is replayed (on the base base_for chose); warns about its
    directory."""
    ds = replay.ds
    rec = step.record or {}
    rr_info = dict(rec.get("rr") or {})
    # the declared variables are recorded again (their values now); the machine's facts, the
    # resources and the log are the new run's own
    names = environment.recorded_names(rr_info)
    logged = runlog.logged_path(rec) is not None
    rr_info = environment.without_measured(rr_info)
    was_explicit = bool(rr_info.pop("explicit", False))
    rr_info.pop("duration", None)
    outputs = list(rec.get("outputs") or [])
    pwd = Path(os.path.normpath(ds.root / rec.get("pwd", ".")))
    if not ds.contains(pwd):
        replay.warn(f"commit {step.commit[:10]} runs its command outside the dataset, "
                      f"in {pwd}")
    elif not pwd.is_dir():
        replay.warn(f"commit {step.commit[:10]} runs its command in {pwd}, which does not "
                      "exist in this tree; it is created")
    parent = step.parents[0] if step.parents else None
    extra_unlock = changed_files(ds, parent, step.commit, _prefetched(replay, parent, step))
    extra_unlock += [p for p in declared_in_subdatasets(ds, pwd, outputs)
                     if p not in extra_unlock]
    spec = RunSpec(
        cmd=rec["cmd"], pwd=pwd, inputs=list(rec.get("inputs") or []), outputs=outputs,
        extra_inputs=list(rec.get("extra_inputs") or []),
        message=replay.message if replay.message is not None else step.run_message,
        explicit=replay.explicit or was_explicit, assume_ready=replay.assume_ready,
        chain=list(rec.get("chain") or []) + [step.commit],
        expected_exit=int(rec.get("exit", 0) or 0), extra_unlock=extra_unlock,
        rr_info=rr_info, env_record=environment.declared_names(ds, names), log=logged,
        cache=replay.cache, cache_verbose=replay.cache_verbose,
    )
    if rr_info.get("container"):
        spec = registry.prepare_rerun(ds, spec, rr_info)
    return spec


def changed_files(ds: Dataset, parent: str | None, commit: str,
                  changes: list[gitrepo.DiffEntry] | None = None) -> list[str]:
    """Files (dataset-relative) the commit added or modified, also inside installed
    subdatasets (diffing each subdataset between its recorded commits), as DataLad's
    rerun does (spec §3 rule 24).  ``changes``: the commit's diff when known already."""
    return _changed_in(ds.root, parent, commit, "", changes)


def _prefetched(replay: Replay, parent: str | None, step: Step
                ) -> list[gitrepo.DiffEntry] | None:
    """The step's diff against ``parent`` from one ``git diff-tree --stdin`` of all the run
    steps of the replay (made at the first step that needs it); None: not there."""
    if parent is None:
        return None
    if replay.diffs is None:
        pairs = [(s.commit, s.parents[0]) for s in replay.steps
                 if s.action == "run" and s.parents]
        try:
            replay.diffs = gitrepo.diff_raw_many(replay.ds.root, pairs)
        except RecorderError:
            replay.diffs = {}
    return replay.diffs.get(step.commit)


def _changed_in(root: Path, parent: str | None, commit: str, prefix: str,
                changes: list[gitrepo.DiffEntry] | None = None) -> list[str]:
    if changes is None:
        base = parent or gitrepo.empty_tree(root)
        try:
            changes = gitrepo.iter_diff_raw(root, base, commit)
        except RecorderError:
            return []  # the subdataset lacks these commits: nothing to learn here
    paths: list[str] = []
    for change in changes:
        path = change.path
        if change.letter[:1] not in ("A", "M", "T"):
            continue
        if change.new_mode == "160000":
            sub = root / path
            if not safe_rel(path) or not (sub / ".git").exists():
                continue
            old = change.old_sha if change.old_mode == "160000" \
                and set(change.old_sha) != {"0"} else None
            paths += _changed_in(sub, old, change.new_sha, f"{prefix}{path}/")
            continue
        paths.append(prefix + path)
    return paths


def declared_in_subdatasets(ds: Dataset, pwd: Path, outputs: Sequence[str]) -> list[str]:
    """Declared outputs that are, or lie in, installed subdatasets: the annexed files there
    (run's own unlocking does not look inside subdatasets)."""
    subs = installed_paths(ds.root)
    if not subs or not ds.contains(pwd):
        return []
    try:
        hits = glob_specs([o for o in outputs if o != "."], pwd, ds).hits
    except RecorderError:
        return []
    found: list[str] = []
    for hit in hits:
        rel = ds.relpath(pwd / hit)
        for sub in sorted(subs, key=len, reverse=True):
            if rel == sub or rel.startswith(sub + "/"):
                inner = "." if rel == sub else rel[len(sub) + 1:]
                if (ds.root / rel).is_dir() and not (ds.root / rel).is_symlink():
                    listed = gitrepo.ls_files_symlinks(ds.root / sub, [inner])
                    found += [f"{sub}/{p}" for p in listed]
                else:
                    found.append(rel)
                break
    return found


def dirty_paths(ds: Dataset) -> list[str]:
    """Changed and untracked files, dataset-relative, also inside installed subdatasets."""
    return _dirty_in(ds.root, "")


def _dirty_in(root: Path, prefix: str) -> list[str]:
    out: list[str] = []
    for e in gitrepo.iter_status(root, untracked="all"):
        if e.submodule:
            if safe_rel(e.path) and (root / e.path / ".git").exists():
                out += _dirty_in(root / e.path, f"{prefix}{e.path}/")
            continue
        out.append(prefix + e.path)
    return out


def touched_since(ds: Dataset, before: set[str] | None) -> list[str]:
    try:
        now = dirty_paths(ds)
    except RecorderError:
        return []
    return sorted(set(now) - (before or set()))


def restore(ds: Dataset, paths: Sequence[str]) -> None:
    """Put the given files back to their state in HEAD (of the repository holding each):
    tracked files are checked out again (an unlocked annexed file is a symlink again),
    files HEAD does not have are removed."""
    subs = sorted(installed_paths(ds.root), key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    for p in paths:
        if not safe_rel(p):
            continue
        owner = next((s for s in subs if p.startswith(s + "/")), "")
        groups.setdefault(owner, []).append(p[len(owner) + 1:] if owner else p)
    with dataset_lock(ds.git_dir):
        for owner, rels in groups.items():
            root = ds.root / owner if owner else ds.root
            _restore_in(root, rels)


def _restore_in(root: Path, rels: list[str]) -> None:
    kinds = [k if k in ("blob", "tree", "commit") else "missing"
             for k in gitrepo.object_types(root, [f"HEAD:{p}" for p in rels])]
    tracked = [p for p, k in zip(rels, kinds) if k in ("blob", "commit")]
    new = [p for p, k in zip(rels, kinds) if k == "missing"]
    if tracked:
        gitrepo.checkout_paths(root, "HEAD", tracked)
    if new:
        gitrepo.forget(root, new)
        for p in new:
            full = root / p
            if full.is_symlink() or full.is_file():
                full.unlink()
