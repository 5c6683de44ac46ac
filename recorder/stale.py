"""What the run-cache's index explains: ``rr rerun --explain`` (per record, what changed
since its own key, or the commit it would be restored from) and ``rr status --stale``
(outputs out of date because a declared input, declared code or the image changed since the
run commit that wrote them).  Both compare the key a record had at its parent with the key
the same record would have on HEAD now; neither executes or changes anything."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from . import cache, gitrepo
from .containers import registry
from .dataset import Dataset
from .rerun.plan import build_plan
from .results import Result, Status


def _digest_now(ds: Dataset, record: dict[str, Any] | None) -> str | None:
    """The digest of the record's container image as the dataset has it now (None: no
    container, or its content is not here)."""
    info = ((record or {}).get("rr") or {}).get("container")
    image = info.get("image") if isinstance(info, dict) else None
    if not image or not isinstance(image, str) or not ds.resolves_inside(ds.root / image):
        return None
    return registry.image_digest(ds.root / image)


def explain(ds: Dataset, revision: str | None = None, since: str | None = None
            ) -> Iterator[Result]:
    """For each run record of the plan (as ``rr rerun`` would replay it): whether it would
    be restored from the run-cache on HEAD now, and from which commit, or what changed since
    its own key (input: path, old and new key; image digest; declared variable; command)
    or why it is not cacheable.  One ``Result`` per record: ``commit``, ``subject``,
    ``cached_from`` (or None), ``changes`` (list of lines), ``why`` (not cacheable)."""
    plan = build_plan(ds, revision, since)
    runs = [s for s in plan.steps if s.action == "run"]
    if not runs:
        return
    index = cache.load_index(ds)
    entries = [index.by_commit.get(s.commit) for s in runs]
    cacheable = [e for e in entries if e is not None and e.get("parts")]
    now = cache.parts_now(ds, cacheable, env=dict(os.environ))
    off = not cache.enabled(ds)
    for step, entry in zip(runs, entries):
        extra: dict[str, Any] = {"commit": step.commit, "subject": step.subject,
                                 "cached_from": None, "changes": [], "why": ""}
        if entry is None or not entry.get("parts"):
            why = entry["why"] if entry else "its run record could not be read"
            yield Result("explain", None, Status.OK,
                         message=f"would execute: not cacheable: {why}",
                         extra={**extra, "why": why})
            continue
        new = now[entry["commit"]]
        digest = _digest_now(ds, step.record)
        if digest:
            new["image"] = digest
        changes = cache.changes_now(entry["parts"], new)
        if changes:
            yield Result("explain", None, Status.OK,
                         message="would execute: " + "; ".join(changes),
                         extra={**extra, "changes": changes})
            continue
        problems = []
        same = index.by_key.get(cache.key_now(new), [])
        for candidate in [entry] + [c for c in same if c is not entry]:  # itself first
            problem = cache.why_unusable(ds, cache.with_declared_outputs(ds, candidate))
            if not problem:
                text = f"would be restored from cache: {candidate['commit'][:7]}"
                if off:
                    text = (f"unchanged since its key (restorable from "
                            f"{candidate['commit'][:7]}), but the run-cache is off "
                            "(rr.run.cache)")
                yield Result("explain", None, Status.OK, message=text,
                             extra={**extra, "cached_from": candidate["commit"]})
                break
            problems.append(f"{candidate['commit'][:7]}: {problem}")
        else:
            yield Result("explain", None, Status.OK,
                         message="would execute: unchanged, but " + "; ".join(problems),
                         extra={**extra, "why": "; ".join(problems)})


def stale(ds: Dataset, paths: Sequence[str] = ()) -> Iterator[Result]:
    """Outputs on HEAD that are out of date: for each file the newest run commit on HEAD
    wrote (and HEAD still has as it wrote it), whether a declared input, the declared code,
    a file the command names or the container image changed since that commit's parent.  One
    ``Result`` per stale file (``state`` 'stale'): ``commit``, ``changes``, ``update`` (the
    command that brings it up to date).  ``paths`` (dataset-relative) limit the files.
    Records that are not cacheable (no declared inputs or code) cannot be judged: their
    outputs are left out, but for the files ``paths`` name, which get a ``Result`` with
    ``state`` 'unknown' ("cannot tell: ...") and ``why``."""
    if ds.head() is None:
        return
    index = cache.load_index(ds)
    on_head = set(gitrepo.rev_list(ds.root, ["HEAD"]))
    owner: dict[str, tuple[cache.Entry, str]] = {}
    for entry in index.entries:  # newest first
        if entry["commit"] not in on_head:
            continue
        for path, mode, blob, _key in entry["outputs"]:
            owner.setdefault(path, (entry, blob if mode != "000000" else ""))
    wanted = [p.rstrip("/") for p in paths if p not in (".", "")]
    if wanted:
        owner = {p: v for p, v in owner.items()
                 if any(p == w or p.startswith(w + "/") for w in wanted)}
    owner = {p: v for p, v in owner.items() if v[1] and (v[0].get("parts") or wanted)}
    if not owner:
        return
    head = gitrepo.tree_entries(ds.root, "HEAD", sorted(owner))
    current = {p: e for p, (e, blob) in owner.items() if head.get(p, ("", ""))[1] == blob}
    for path in sorted(p for p, e in current.items() if not e.get("parts")):
        entry = current.pop(path)  # a path the user named, whose run cannot be judged
        yield Result("stale", path, Status.OK, state="unknown",
                     message=f"{path}: cannot tell: its run {entry['commit'][:7]} is not "
                             f"cacheable: {entry['why']}",
                     extra={"commit": entry["commit"], "changes": [], "why": entry["why"]})
    entries = list({e["commit"]: e for e in current.values()}.values())
    now = cache.parts_now(ds, entries)
    for path in sorted(current):
        entry = current[path]
        new = now[entry["commit"]]
        written = {o[0] for o in entry["outputs"]}
        # an input the run rewrote itself (in place) is as the run left it
        new["inputs"] = {k: (entry["parts"]["inputs"][k] if k in written else v)
                         for k, v in new["inputs"].items()}
        digest = _digest_now(ds, _record_of(entry))
        if digest:
            new["image"] = digest
        changes = cache.changes_now(entry["parts"], new)
        if changes:
            update = f"rr rerun {entry['commit'][:10]}"
            yield Result("stale", path, Status.OK, state="stale",
                         message=f"{path}: out of date since {entry['commit'][:7]}: "
                                 f"{'; '.join(changes)}; update with: {update}",
                         extra={"commit": entry["commit"], "changes": changes,
                                "update": update})


def _record_of(entry: cache.Entry) -> dict[str, Any]:
    """Enough of a record for :func:`_digest_now`: the container image path, which the
    key's image files name."""
    parts = entry.get("parts") or {}
    images = list(parts.get("image_files") or {})
    if not images:
        return {}
    return {"rr": {"container": {"image": images[0]}}}
