"""The run-cache: outputs of an earlier run restored instead of executing the command again.

A run's *key* is made of what decides its outcome, as its record and the tree it ran on say:

- the command as recorded (placeholders unexpanded: ``{dspath}`` and ``{tmpdir}`` differ
  between clones and runs; what ``{inputs}``/``{outputs}`` expand to is covered below), its
  ``pwd``, the declared outputs as recorded, and whether the run was ``--explicit``;
- the content of every declared input and extra input (a container image) in the tree the
  run starts from: an annexed file by its annex key, a file in git by its blob id, a
  directory by its tree id, a glob whose wildcard is in its last part by the entries it
  matches, another glob by the tree id of the directory before its first wildcard (a
  superset of what it matches: safe), an input in a subdataset by the subdataset's commit
  recorded in the tree (a superset too);
- the content of the declared code paths (``rr.run.cache-code``);
- the container image digest (``rr.container.digest``) and the declared environment
  (``rr.env.vars``).

Besides the key, the files the command names (``python code/train.py``: ``code/train.py``)
are *implicit code*, and so are the dataset's Python modules such a script imports (``import
utils``, ``from .lib import x``, ``python -m pkg.main``: resolved as Python would from the
script's directory, transitively, in git's copy of each file at the run's base): an earlier
run is used only when each such file it saw has the same content now.

A *cache entry* is a run commit anywhere in this dataset's history (any branch, remote
branch or tag) whose record yields the key: its outputs are the paths that commit changed.
The entry hits when every annexed output's content is here.  Restoring writes those paths
as the entry's commit has them (``git checkout COMMIT -- PATHS``: the same keys, locked or
unlocked as committed, new files written, never annexed content in place); the run is then
saved as any run, its record with ``"rr": {"cached_from": COMMIT}``.

Safety: a command can read what it does not declare.  So a run is *not* cacheable without a
declared input or declared code (``rr.run.cache-code``), nor is a record with a non-zero
exit, an ``--explicit`` record that declares no outputs, a run-merge, a record whose commit
changed a subdataset or that names inputs outside the dataset or absent from its tree, or a
run whose inputs have unsaved changes.  ``rr run --no-cache`` (and ``rr.run.cache=false``) executes.

The index (``.git/rr-cache/index.json``, in the common git directory) is derived from
history: rebuilt when any branch, remote branch, tag or HEAD moved, reusing what it knows
about older commits; one ``git log`` of the run commits, one ``git diff-tree --stdin`` and
two ``git cat-file`` batches for any number of new commits.  Deleting it loses nothing; a
fresh clone finds the same entries.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import json
import os
import posixpath
import re
import shlex
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import annex, environment, gitrepo
from . import config as cfgkeys
from . import record as records
from .dataset import Dataset
from .errors import RecorderError, RecordError
from .results import Event, EventKind, OnEvent, emit

INDEX_VERSION = 3  # 2: the outputs of uncacheable runs too (rr status --stale names them);
# 3: the dataset's Python modules the named scripts import are implicit code too
INDEX_DIR = "rr-cache"
INDEX_FILE = "index.json"
_SMALL = 1024  # annex symlinks and pointer files are smaller; bigger blobs are not read
_GREP = r"--grep=^\[DATALAD RUNCMD\] "

_NO_INPUTS = ("it declares no inputs (declare them with -i, or the code it reads with "
              "rr.run.cache-code)")

Entry = dict[str, Any]
"""One run commit as the index keeps it: ``commit``, ``key`` (None: not cacheable),
``why`` (why not), ``recipe`` (the command and pwd: what explanations compare with),
``parts`` (the key's components), ``code`` (implicit code path -> id at the parent),
``outputs`` ([path, mode, blob, annex key or None]; mode '000000': deleted)."""


# --- the index ----------------------------------------------------------------------------



def _sha256(data: bytes) -> str:
    # hashlib loads OpenSSL (~2 ms): only for runs the cache is asked about, not every rr run
    import hashlib  # noqa: PLC0415  start-up of rr run

    return hashlib.sha256(data).hexdigest()

def enabled(ds: Dataset) -> bool:
    """Whether the dataset's configuration lets rr use the run-cache."""
    return bool(ds.config.typed(cfgkeys.RUN_CACHE))


def code_paths(ds: Dataset) -> list[str]:
    """The declared code paths (``rr.run.cache-code``), dataset-relative, sorted."""
    found = {posixpath.normpath(n.strip("/"))
             for value in ds.config.get_all(cfgkeys.RUN_CACHE_CODE)
             for n in re.split(r"[\s,]+", value) if n}
    return sorted(p for p in found if p not in (".", "") and not p.startswith(".."))


def common_dir(ds: Dataset) -> Path:
    """The git directory shared by all worktrees (a linked worktree's ``commondir``)."""
    gd = ds.git_dir
    pointer = gd / "commondir"
    if pointer.is_file():
        return (gd / pointer.read_text(encoding="utf-8").strip()).resolve()
    return gd


def index_path(ds: Dataset) -> Path:
    return common_dir(ds) / INDEX_DIR / INDEX_FILE


def _tips(ds: Dataset) -> list[str]:
    """The commits history is read from: branches, remote branches, tags (git-annex's own
    branches left out), HEAD."""
    tips: set[str] = set()
    for sha, names in gitrepo.refs_by_commit(ds.root, ["refs/heads", "refs/remotes",
                                                       "refs/tags"]).items():
        if any(n != "git-annex" and not n.endswith("/git-annex") and "synced/" not in n
               for n in names):
            tips.add(sha)
    head = ds.head()
    if head:
        tips.add(head)
    return sorted(tips)


class Index(NamedTuple):
    entries: list[Entry]  # newest first
    by_commit: dict[str, Entry]
    by_key: dict[str, list[Entry]]

    @classmethod
    def of(cls, entries: list[Entry]) -> Index:
        by_key: dict[str, list[Entry]] = {}
        for e in entries:
            if e.get("key"):
                by_key.setdefault(e["key"], []).append(e)
        return cls(entries, {e["commit"]: e for e in entries}, by_key)


def load_index(ds: Dataset) -> Index:
    """The index, brought up to date with the history first when the refs moved."""
    tips = _tips(ds)
    code = code_paths(ds)
    signature = _sha256(json.dumps([INDEX_VERSION, tips, code]).encode())
    path = index_path(ds)
    data: dict[str, Any] = {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION or \
                not _well_formed(data.get("entries")):
            data = {}  # damaged: rebuilt from history
    except (OSError, ValueError, RecursionError):
        data = {}
    if data.get("refs") == signature and isinstance(data.get("entries"), list):
        return Index.of(data["entries"])
    known: dict[str, Entry] = {}
    if data.get("code") == code and isinstance(data.get("entries"), list):
        known = {e["commit"]: e for e in data["entries"] if isinstance(e, dict)}
    entries = _build(ds, tips, known, code)
    _write(path, {"version": INDEX_VERSION, "refs": signature, "code": code,
                  "entries": entries})
    return Index.of(entries)


def _well_formed(entries: Any) -> bool:
    """Whether the index's entries have the shape :func:`_entry` gives them."""
    if not isinstance(entries, list):
        return False
    for e in entries:
        if not (isinstance(e, dict) and isinstance(e.get("commit"), str)
                and isinstance(e.get("key"), (str, type(None)))
                and isinstance(e.get("why"), str)
                and (e.get("parts") is None or _parts_shaped(e["parts"]))
                and isinstance(e.get("code"), dict) and isinstance(e.get("outputs"), list)
                and all(isinstance(o, list) and len(o) == 4 and
                        all(isinstance(x, (str, type(None))) for x in o)
                        for o in e["outputs"])):
            return False
    return True


def _parts_shaped(parts: Any) -> bool:
    return isinstance(parts, dict) and all(
        isinstance(parts.get(k), dict) for k in ("inputs", "image_files", "code", "env"))


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write the index atomically (a temp file renamed); a failure only costs a rebuild."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.time_ns()}")
        tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def _build(ds: Dataset, tips: list[str], known: dict[str, Entry], code: list[str]
           ) -> list[Entry]:
    """Entries for every run commit reachable from ``tips``, newest first; commits in
    ``known`` are taken as they are, the others read in one stream."""
    if not tips:
        return []
    log = gitrepo.iter_log(ds.root, tips, reverse=False, topo=False, extra=["-E", _GREP])
    try:
        record_dir = ds.record_directory()
    except RecorderError:
        record_dir = ""
    fresh: dict[str, Entry] = {}
    pending: list[tuple[str, str, dict[str, Any]]] = []  # (commit, parent, record)
    refused: list[str] = []  # single-parent run commits that are not cacheable
    for e in log:
        if e.sha in known:
            continue
        try:
            loaded = records.load_record(e.message, ds.root, record_dir)
        except RecordError:
            fresh[e.sha] = _uncacheable(e.sha, "its run record is malformed")
            continue
        if loaded is None:
            continue
        rec = loaded[1]
        why = _record_problem(rec, len(e.parents))
        if why:
            fresh[e.sha] = _uncacheable(e.sha, why, rec)
            if len(e.parents) == 1:
                refused.append(e.sha)
            continue
        pending.append((e.sha, e.parents[0], rec))
    changes = gitrepo.diff_tree_commits(ds.root, [c for c, _, _ in pending] + refused)
    for commit in refused:  # what they wrote: rr status --stale says it cannot tell
        fresh[commit]["outputs"] = _outputs(changes.get(commit, []), {}, record_dir)
    requests: dict[str, list[str]] = {}
    for commit, parent, rec in pending:
        requests[commit] = [f"{parent}:{p}" for p in _wanted(rec, code)]
    out_blobs = [b for c, _, _ in pending for mode, b, _ in changes.get(c, [])
                 if mode not in ("000000", "160000")]
    ids = _resolve(ds.root, [s for specs in requests.values() for s in specs], out_blobs)
    imported = _imported_code(ds.root, [(c, p, rec) for c, p, rec in pending], ids)
    for commit, parent, rec in pending:
        fresh[commit] = _entry(commit, parent, rec, code, ids, changes.get(commit, []),
                               record_dir, imported.get(commit))
    return [known.get(e.sha) or fresh[e.sha] for e in log if e.sha in known or e.sha in fresh]


def _outputs(changes: Sequence[tuple[str, str, str]], ids: Mapping[str, str | None],
             record_dir: str) -> list[list[str | None]]:
    """A run commit's outputs as an entry keeps them: [path, mode, blob, annex key or None]
    of what it changed (a sidecar record and subdatasets left out)."""
    side = record_dir.strip("/") + "/" if record_dir else None
    outputs: list[list[str | None]] = []
    for mode, blob, path in changes:
        if (side and path.startswith(side)) or mode == "160000":
            continue  # a sidecar record: the new run writes its own
        got = ids.get(blob) if mode != "000000" else None
        key = got[6:] if got and got.startswith("annex:") else None
        outputs.append([path, mode, blob, key])
    return outputs


def _uncacheable(commit: str, why: str, rec: dict[str, Any] | None = None) -> Entry:
    return {"commit": commit, "key": None, "why": why,
            "recipe": _recipe(rec) if rec else None, "parts": None, "code": {},
            "outputs": []}


def _record_problem(rec: dict[str, Any], parents: int) -> str:
    """Why a record in history cannot be a cache entry ('' when it can)."""
    if parents > 1:
        return "a run-merge (the command made commits of its own)"
    if parents == 0:
        return "the first commit of the history"
    if rec.get("exit") not in (0, None):
        return f"its command exited with code {rec.get('exit')}"
    return _spec_problem(rec)


def _spec_problem(rec: dict[str, Any]) -> str:
    """Why a run (recorded or about to run) is not cacheable by what it declares."""
    rr = rec.get("rr") or {}
    if rr.get("explicit") and not rec.get("outputs"):
        return "an --explicit run that declares no outputs"
    if str(rec.get("pwd", ".")).startswith(".."):
        return "its command runs outside the dataset"
    return ""


# --- keys -------------------------------------------------------------------------------


def _ds_path(pwd: str, spec: str) -> str | None:
    """A record's path spec as a dataset-relative path (None: outside the dataset)."""
    if os.path.isabs(spec):
        return None
    path = posixpath.normpath(posixpath.join(pwd or ".", spec))
    if path == "." or path == "":
        return "."
    if path.startswith("../") or path == ".." or "\n" in path:
        return None
    return path


def _fixed(path: str) -> str:
    """The directory a glob starts in (the path itself when it has no wildcard)."""
    if not globmod.has_magic(path):
        return path
    parts = path.split("/")
    fixed: list[str] = []
    for part in parts:
        if globmod.has_magic(part):
            break
        fixed.append(part)
    return "/".join(fixed) or "."


def _look(path: str) -> str:
    """What to look up in a tree for a dataset-relative path ('' is the root tree).  A glob
    whose only wildcard is in its last part (``data/*.csv``) is looked up as
    ``DIR\0PATTERN``: the entries of DIR that match, each by its id; any other glob by the
    directory before its first wildcard (a superset: safe)."""
    p = _fixed(path)
    if p != path and "**" not in path:
        head, _, last = path.rpartition("/")
        if (head or ".") == p or (not head and p == "."):
            return f"{'' if p == '.' else p}\0{last}"
    return "" if p == "." else p


def _declared(rec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(component, dataset-relative spec, path looked up) of the declared inputs and extra
    inputs; a spec outside the dataset has path None."""
    pwd = str(rec.get("pwd", "."))
    rr = rec.get("rr") or {}
    out = []
    for kind, field in (("input", "inputs"), ("image" if rr.get("container") else "input",
                                               "extra_inputs")):
        for spec in rec.get(field) or []:
            path = _ds_path(pwd, str(spec))
            out.append((kind, path or str(spec), "\0" if path is None else _look(path)))
    return out


def _words(text: str, depth: int = 3) -> list[str]:
    """The shell words of ``text``, and the words of each word that is itself a command (a
    container call quotes the user's command: ``... 'python3 code/train.py'``)."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    out = []
    for w in words:
        out.append(w)
        if depth > 1 and any(c.isspace() for c in w):
            out += _words(w, depth - 1)
    return out


def _tokens(rec: dict[str, Any]) -> list[str]:
    """Dataset-relative paths the command names (implicit code candidates): words of the
    command (and the value of ``--opt=value``) that are relative paths without
    placeholders or wildcards, other than the declared inputs and outputs."""
    words = _words(str(rec.get("cmd", "")))
    pwd = str(rec.get("pwd", "."))
    skip = {_ds_path(pwd, str(s)) for f in ("inputs", "outputs", "extra_inputs")
            for s in rec.get(f) or []}
    found: list[str] = []
    for word in words:
        for w in (word, word.partition("=")[2]):
            if not w or len(w) > 1024 or w.startswith("-") or "{" in w or \
                    globmod.has_magic(w) or os.path.isabs(w) or w in (".", ".."):
                continue
            path = _ds_path(pwd, w)
            if path and path != "." and path not in skip and path not in found and \
                    not path.startswith(".git/") and path != ".git":
                found.append(path)
    return found[:64]


def _wanted(rec: dict[str, Any], code: Sequence[str]) -> list[str]:
    """Every path whose id the key of ``rec`` needs, at the run's base."""
    paths = [look for _, _, look in _declared(rec) if look != "\0"]
    # the directories above each input: one of them may be a subdataset (its commit decides)
    paths += [look.partition("\0")[0] for look in paths if "\0" in look]  # a glob's dir
    paths += [a for look in paths for a in _ancestors(look.partition("\0")[0])]
    paths += list(code) + _tokens(rec)
    return [p for p in dict.fromkeys(paths) if "\n" not in p]


def _ancestors(path: str) -> list[str]:
    """The directories above a dataset-relative path, the root ('') first."""
    parts = path.split("/") if path else []
    return ["/".join(parts[:i]) for i in range(0, len(parts))]


def _in_subdataset(ids: Mapping[str, str | None], base: str, look: str) -> str | None:
    """The id of an input in a subdataset: the subdataset's commit recorded in the tree (a
    superset of the input: any change in the subdataset changes it); None when ``look`` is
    in no subdataset."""
    path = look.partition("\0")[0]
    for a in [*reversed(_ancestors(path)), path]:
        got = ids.get(f"{base}:{a}")
        if got and got.startswith("commit:"):
            return f"{got} ({a})"
    return None


def _resolve(root: Path, specs: Sequence[str], blobs: Iterable[str] = ()
             ) -> dict[str, str | None]:
    """``spec -> id`` for ``REV:PATH`` specs and blob ids: 'annex:KEY' for annexed content,
    'blob:SHA', 'tree:SHA', 'commit:SHA' (a subdataset), None when absent; for a
    ``REV:DIR\0PATTERN`` spec 'glob:DIGEST' of the entries of DIR that match PATTERN.  Two
    ``git cat-file`` calls for all of them."""
    wanted = list(dict.fromkeys([*specs, *blobs]))
    objects = [w.partition("\0")[0] for w in wanted]
    infos = gitrepo.object_infos(root, objects)
    small = {i[0] for i in infos if i and i[1] == "blob" and i[2] <= _SMALL}
    trees = {i[0] for w, i in zip(wanted, infos) if i and i[1] == "tree" and "\0" in w}
    contents = gitrepo.cat_file_batch(root, sorted(small | trees))
    ids: dict[str, str | None] = {}
    for spec, info in zip(wanted, infos):
        if info is None:
            ids[spec] = None
            continue
        sha, kind, _size = info
        got = contents.get(sha)
        if "\0" in spec:
            pattern = spec.partition("\0")[2]
            if kind != "tree" or got is None:
                ids[spec] = None
                continue
            matched = [f"{name} {oid}" for name, oid, _ in gitrepo.parse_tree(got[1], len(sha) // 2)
                       if fnmatch.fnmatchcase(name, pattern)
                       and (pattern.startswith(".") or not name.startswith("."))]
            ids[spec] = "glob:" + _sha256("\n".join(sorted(matched)).encode(
                "utf-8", "surrogateescape"))[:40]
            continue
        key = annex.key_of_link(got[1]) if got and kind == "blob" else None
        ids[spec] = f"annex:{key}" if key else f"{kind}:{sha}"
    _gitlinks(root, ids, [w for w, i in zip(wanted, infos) if i is None and "\0" not in w])
    return ids


def _gitlinks(root: Path, ids: dict[str, str | None], missing: Sequence[str]) -> None:
    """A subdataset's commit is not in this repository (``cat-file`` says missing): read it
    from the tree that holds it, when that tree's id was resolved (one more ``cat-file``)."""
    holders: dict[str, list[tuple[str, str]]] = {}
    for spec in missing:
        rev, _, path = spec.partition(":")
        if not path:
            continue
        head, _, name = path.rpartition("/")
        holder = ids.get(f"{rev}:{head}")
        if holder and holder.startswith("tree:"):
            holders.setdefault(holder[5:], []).append((spec, name))
    if not holders:
        return
    raws = gitrepo.cat_file_batch(root, sorted(holders))
    for tree, items in holders.items():
        got = raws.get(tree)
        if got is None:
            continue
        links = {name: oid for name, oid, mode in gitrepo.parse_tree(got[1], len(tree) // 2)
                 if mode == "160000"}
        for spec, name in items:
            if name in links:
                ids[spec] = f"commit:{links[name]}"


def _recipe(rec: dict[str, Any]) -> str:
    return _sha256(json.dumps([rec.get("cmd"), rec.get("pwd", ".")]).encode())[:16]


def _parts(rec: dict[str, Any], base: str, code: Sequence[str], ids: Mapping[str, str | None],
           env: Mapping[str, str | None] | None = None) -> tuple[dict[str, Any] | None, str]:
    """The key's components for ``rec`` run on ``base`` (ids looked up as ``BASE:PATH``),
    or (None, why not cacheable)."""
    why = _spec_problem(rec)
    if why:
        return None, why
    declared = _declared(rec)
    inputs: dict[str, str] = {}
    images: dict[str, str] = {}
    for kind, spec, look in declared:
        if look == "\0":
            return None, f"{kind} {spec} lies outside the dataset"
        got = ids.get(f"{base}:{look}")
        if got is None or got.startswith("commit:"):
            got = _in_subdataset(ids, base, look)
        if got is None:
            return None, f"{kind} {spec} is not in the tree it runs on"
        (images if kind == "image" else inputs)[spec] = got
    if not rec.get("inputs") and not code:
        return None, _NO_INPUTS
    code_ids: dict[str, str] = {}
    for p in code:
        code_ids[p] = ids.get(f"{base}:{p}") or "absent"
    rr = rec.get("rr") or {}
    container = rr.get("container") if isinstance(rr.get("container"), dict) else {}
    recorded_env = ((rr.get("env") or {}).get("vars") or {}) if isinstance(rr.get("env"),
                                                                             dict) else {}
    parts = {
        "cmd": str(rec.get("cmd", "")), "pwd": str(rec.get("pwd", ".")),
        "outputs": [str(o) for o in rec.get("outputs") or []],
        "explicit": bool(rr.get("explicit")), "inputs": inputs, "image_files": images,
        "code": code_ids, "image": (container or {}).get("digest"),
        "env": dict(env if env is not None else recorded_env),
    }
    return parts, ""


def key_of(parts: Mapping[str, Any]) -> str:
    return _sha256(json.dumps(parts, sort_keys=True).encode("utf-8", "surrogateescape"))


def _entry(commit: str, parent: str, rec: dict[str, Any], code: Sequence[str],
           ids: Mapping[str, str | None], changes: Sequence[tuple[str, str, str]],
           record_dir: str, imported: Mapping[str, str] | None = None) -> Entry:
    parts, why = _parts(rec, parent, code, ids)
    if any(mode == "160000" for mode, _, _ in changes):
        parts, why = None, "it changed a subdataset"
    outputs = _outputs(changes, ids, record_dir)
    if parts is None:
        return dict(_uncacheable(commit, why, rec), outputs=outputs)
    changed = {o[0] for o in outputs}
    implicit = {t: ids[f"{parent}:{t}"] for t in _tokens(rec)
                if t not in changed and ids.get(f"{parent}:{t}") and t not in code}
    modules = {m: i for m, i in (imported or {}).items()
               if m not in changed and m not in code and m not in implicit}
    entry = {"commit": commit, "key": key_of(parts), "why": "", "recipe": _recipe(rec),
             "parts": parts, "code": {**implicit, **modules}, "outputs": outputs}
    if modules:
        entry["imported"] = sorted(modules)
    return entry


# --- Python modules a named script imports --------------------------------------------------

_PY_MAX = 1 << 20  # bigger scripts are not parsed (their own id still counts)
_IMPORT_ROUNDS = 6  # import depth followed
_IMPORT_LIMIT = 256  # modules per run at most


def _python_starts(rec: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """The dataset's Python scripts the command names (``*.py`` words) and the modules it runs
    with ``python -m NAME``, as (module name, directory it is looked up from)."""
    scripts = [t for t in _tokens(rec) if t.endswith(".py")]
    words = _words(str(rec.get("cmd", "")))
    pwd = _ds_path(str(rec.get("pwd", ".")), ".") or ""
    mains = [(words[i + 1], "" if pwd == "." else pwd) for i, w in enumerate(words[:-1])
             if w == "-m" and i and "python" in posixpath.basename(words[i - 1])
             and re.fullmatch(r"[A-Za-z_][\w.]*", words[i + 1])]
    return scripts, mains


def _module_paths(name: str, level: int, where: str, top: str) -> list[str]:
    """Dataset paths that ``import name`` (``level`` dots) in the file ``where`` may load, for a
    program whose first import directory is ``top``: each package's ``__init__.py`` on the
    way, the module's ``.py``, and the package's ``__init__.py``/``__main__.py``."""
    if level:
        base = posixpath.dirname(where)
        for _ in range(level - 1):
            base = posixpath.dirname(base)
    else:
        base = top
    parts = [p for p in name.split(".") if p]
    out = []
    for i in range(1, len(parts) + 1):
        stem = posixpath.join(base, *parts[:i]) if base else "/".join(parts[:i])
        out += [f"{stem}.py", f"{stem}/__init__.py"]
    if not parts and level:
        out.append(posixpath.join(base, "__init__.py") if base else "__init__.py")
    return [posixpath.normpath(p) for p in out if not posixpath.normpath(p).startswith("..")]


_READABLE = ("blob:", "annex:")


def _sources(root: Path, oids: Iterable[str]) -> dict[str, bytes | None]:
    """The content of files by id ('blob:SHA' from git, 'annex:KEY' from the annex object
    store when present); None for what is absent or bigger than ``_PY_MAX``."""
    oids = sorted(oids)
    out: dict[str, bytes | None] = dict.fromkeys(oids)
    blobs = [o[5:] for o in oids if o.startswith("blob:")]
    if blobs:
        sizes = {i[0]: i[2] for i in gitrepo.object_infos(root, blobs) if i}
        contents = gitrepo.cat_file_batch(
            root, [b for b in blobs if sizes.get(b, _PY_MAX + 1) <= _PY_MAX])
        for b in blobs:
            got = contents.get(b)
            out[f"blob:{b}"] = got[1] if got else None
    keys = [o[6:] for o in oids if o.startswith("annex:")]
    for key, loc in annex.content_locations(root, keys).items():
        full = root / loc if loc else None
        try:
            if full is not None and full.stat().st_size <= _PY_MAX:
                out[f"annex:{key}"] = full.read_bytes()
        except OSError:
            pass
    return out


def _imports_of(source: bytes) -> list[tuple[str, int]]:
    """(module, level) of every import statement in Python ``source`` (also ``from m import
    name``: ``m.name`` may be a submodule); nothing when it does not parse."""
    import ast  # noqa: PLC0415 - only when a run names a Python script

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            found.append((mod, node.level))
            found += [(f"{mod}.{a.name}" if mod else a.name, node.level)
                      for a in node.names if a.name != "*"]
    return found


def _imported_code(root: Path, runs: Sequence[tuple[str, str, dict[str, Any]]],
                   ids: Mapping[str, str | None]) -> dict[str, dict[str, str]]:
    """``commit -> {path: id}`` of the dataset's Python modules the scripts each run names
    import (transitively), as they were at the run's parent (an annexed file is read when
    its content is here); a few ``git cat-file`` calls per import level for all runs
    together."""
    parsed: dict[str, list[tuple[str, int]]] = {}  # blob id -> imports
    out: dict[str, dict[str, str]] = {}
    # per run: files to parse next (path, its id, top directory), modules seen
    todo: dict[str, list[tuple[str, str, str]]] = {}
    for commit, parent, rec in runs:
        scripts, mains = _python_starts(rec)
        first = [(s, ids.get(f"{parent}:{s}") or "", posixpath.dirname(s)) for s in scripts]
        first = [f for f in first if f[1].startswith(_READABLE)]
        pending = [(p, top) for name, top in mains for p in _module_paths(name, 0, "", top)]
        if first or pending:
            todo[commit] = first
            if pending:
                todo[commit] += [("\0" + p, "", top) for p, top in pending]
            out[commit] = {}
    parents = {commit: parent for commit, parent, _ in runs}
    for _ in range(_IMPORT_ROUNDS):
        # candidate paths to look up (from `python -m` or the imports parsed last round)
        lookups = [f"{parents[c]}:{p[1:]}" for c, files in todo.items() for p, _, _ in files
                   if p.startswith("\0")]
        found = _resolve(root, lookups) if lookups else {}
        wanted: set[str] = set()
        for commit, files in todo.items():
            kept = []
            for path, oid, top in files:
                if path.startswith("\0"):
                    path = path[1:]
                    oid = found.get(f"{parents[commit]}:{path}") or ""
                    if not oid.startswith(_READABLE):
                        continue
                    if path in out[commit] or len(out[commit]) >= _IMPORT_LIMIT:
                        continue
                    out[commit][path] = oid
                kept.append((path, oid, top))
                if oid not in parsed:
                    wanted.add(oid)
            todo[commit] = kept
        for oid, source in _sources(root, wanted).items():
            parsed[oid] = _imports_of(source) if source is not None else []
        nxt: dict[str, list[tuple[str, str, str]]] = {}
        for commit, files in todo.items():
            cands = {(p, top) for path, oid, top in files
                     for name, level in parsed.get(oid, [])
                     for p in _module_paths(name, level, path, top)}
            new = sorted(c for c in cands if c[0] not in out[commit])
            if new:
                nxt[commit] = [("\0" + p, "", top) for p, top in new]
        if not nxt:
            break
        todo = nxt
    return {c: m for c, m in out.items() if m}


# --- lookup ---------------------------------------------------------------------------------


class Lookup(NamedTuple):
    """What the cache says about a run about to execute."""

    hit: Entry | None  # the entry to restore
    reasons: list[str]  # why it missed (for -v), or why it is not cacheable


def current_parts(ds: Dataset, rec: dict[str, Any], run_env: Mapping[str, str] | None = None,
                  base: str = "HEAD") -> tuple[dict[str, Any] | None, str, dict[str, Any]]:
    """(parts, why not cacheable, ids) of a run about to execute on ``base``: the record it
    would write, its declared variables' values as the command would see them now."""
    code = code_paths(ds)
    rr = rec.get("rr") or {}
    names = list(((rr.get("env") or {}).get("vars") or {}).keys()) \
        if isinstance(rr.get("env"), dict) else []
    env = environment.declared_values(names, run_env or {})
    ids = _resolve(ds.root, [f"{base}:{p}" for p in _wanted(rec, code)])
    parts, why = _parts(rec, base, code, ids, env)
    return parts, why, ids


def lookup(ds: Dataset, rec: dict[str, Any], *, run_env: Mapping[str, str] | None = None,
           check_dirty: bool = False) -> Lookup:
    """The cache entry for a run about to execute (``rec``: the record it would write), or
    the reasons it misses.  ``check_dirty``: the worktree may have unsaved changes (an
    ``--explicit`` run): a run with a changed input is not looked up."""
    if ds.head() is None:
        return Lookup(None, ["no commits yet"])
    if not rec.get("inputs") and not code_paths(ds):  # decided without starting git
        return Lookup(None, [f"not cacheable: {_NO_INPUTS}"])
    parts, why, ids = current_parts(ds, rec, run_env)
    if parts is None:
        return Lookup(None, [f"not cacheable: {why}"])
    if check_dirty:
        looked = [look.partition("\0")[0] for _, _, look in _declared(rec) if look != "\0"]
        looked += [*code_paths(ds), *_tokens(rec)]
        dirty = [p for p in ds.dirty_paths()
                 if any(p == w or w == "" or p.startswith(w.rstrip("/") + "/")
                        for w in looked)]
        if dirty:
            return Lookup(None, [f"not cacheable now: {dirty[0]} has unsaved changes"])
    index = load_index(ds)
    key = key_of(parts)
    reasons: list[str] = []
    candidates = index.by_key.get(key, [])
    for entry in candidates:
        entry = with_declared_outputs(ds, entry)
        problem = why_unusable(ds, entry)
        if not problem:
            return Lookup(entry, [])
        reasons.append(f"{entry['commit'][:7]} has the same key, but {problem}")
    if not candidates:
        reasons.append(_nearest(index, rec, parts))
    return Lookup(None, reasons)


def with_declared_outputs(ds: Dataset, entry: Entry, base: str = "HEAD") -> Entry:
    """The entry with every file under its declared outputs that differs between its commit
    and ``base`` among the outputs to restore, not only the files its commit changed: an
    output the command wrote unchanged, and which was changed later, must come back as the
    command made it.  A glob output is matched within the directory before its wildcard;
    '.' (the whole dataset) is left at the changed files.  Two ``git ls-tree`` and one
    ``git cat-file`` call."""
    parts = entry.get("parts") or {}
    pwd = str(parts.get("pwd", "."))
    specs = [p for p in (_ds_path(pwd, str(o)) for o in parts.get("outputs") or [])
             if p and p != "."]
    if not specs:
        return entry
    looks = sorted({_fixed(p) for p in specs} - {".", ""})
    if not looks:
        return entry
    then = gitrepo.tree_entries(ds.root, entry["commit"], looks)
    now = gitrepo.tree_entries(ds.root, base, looks)

    def declared(path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") or
                   (globmod.has_magic(p) and fnmatch.fnmatchcase(path, p)) for p in specs)

    known = {o[0] for o in entry["outputs"]}
    extra = [(path, mode, blob) for path, (mode, blob) in then.items()
             if path not in known and now.get(path) != (mode, blob) and declared(path)
             and mode != "160000"]
    if not extra:
        return entry
    ids = _resolve(ds.root, [], [b for _, _, b in extra])
    more = []
    for path, mode, blob in extra:
        got = ids.get(blob)
        more.append([path, mode, blob, got[6:] if got and got.startswith("annex:") else None])
    return dict(entry, outputs=[*entry["outputs"], *more])


def why_unusable(ds: Dataset, entry: Entry) -> str:
    """Why a cache entry with the right key cannot be restored here ('' when it can)."""
    code = entry.get("code") or {}
    if code:
        now = _resolve(ds.root, [f"HEAD:{p}" for p in code])
        for p, old in code.items():
            new = now.get(f"HEAD:{p}")
            if new != old:
                how = "a script it names imports" if p in (entry.get("imported") or ()) \
                    else "the command names"
                return f"{how} {p}, which changed: {_short(old)} -> {_short(new)}"
    for o in entry["outputs"]:
        full = ds.root / o[0]
        if full.is_dir() and not full.is_symlink():  # never removed to make room
            return f"its output {o[0]} is a directory here"
    keys = [o[3] for o in entry["outputs"] if o[3]]
    if keys:
        present = annex.content_present(ds.root, sorted(set(keys)))
        absent = [o[0] for o in entry["outputs"] if o[3] and not present.get(o[3])]
        if absent:
            more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
            return f"the content of its output {absent[0]}{more} is not here (rr get it)"
    return ""


def _nearest(index: Index, rec: dict[str, Any], parts: Mapping[str, Any]) -> str:
    """What changed since the newest earlier run of the same command in the same place."""
    recipe = _recipe(rec)
    for entry in index.entries:
        if entry.get("recipe") != recipe:
            continue
        if entry.get("parts") is None:
            return f"its last run {entry['commit'][:7]} is not cacheable: {entry['why']}"
        changes = differences(entry["parts"], parts)
        return f"since {entry['commit'][:7]}: " + "; ".join(changes or ["the key differs"])
    for entry in index.entries:  # the newest run that wrote the same outputs from there
        old = entry.get("parts")
        if old and old.get("outputs") == parts.get("outputs") and parts.get("outputs") and \
                old.get("pwd") == parts.get("pwd"):
            return f"since {entry['commit'][:7]} (the same outputs): " + \
                "; ".join(differences(old, parts))
    return "no earlier run of this command in this dataset's history"


def _short(value: Any) -> str:
    if value is None or value == "absent":
        return "(absent)"
    text = str(value)
    if text.startswith("commit:"):
        sha, _, where = text[7:].partition(" ")
        return f"subdataset {where.strip('()')} at {sha[:10]}" if where else f"commit {sha[:10]}"
    if text.startswith(("blob:", "tree:", "glob:")):
        kind, _, sha = text.partition(":")
        return f"{kind} {sha[:10]}"
    if text.startswith("annex:"):
        return text[6:]
    return text


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The components that differ between two keys' parts, in words."""
    out: list[str] = []
    if old.get("cmd") != new.get("cmd"):
        out.append(f"the command text changed: {old.get('cmd')!r} -> {new.get('cmd')!r}")
    if old.get("pwd") != new.get("pwd"):
        out.append(f"pwd changed: {old.get('pwd')} -> {new.get('pwd')}")
    if old.get("outputs") != new.get("outputs") or old.get("explicit") != new.get("explicit"):
        out.append("the declared outputs changed")
    for name, label in (("inputs", "input"), ("image_files", "image file"),
                        ("code", "code")):
        a, b = old.get(name) or {}, new.get(name) or {}
        for p in sorted(set(a) | set(b)):
            if a.get(p) != b.get(p):
                if p not in a:
                    out.append(f"{label} {p} is new")
                elif p not in b:
                    out.append(f"{label} {p} is no longer declared")
                else:
                    out.append(f"{label} {p} changed: {_short(a[p])} -> {_short(b[p])}")
    if old.get("image") != new.get("image"):
        out.append(f"the image digest changed: {_short(old.get('image'))} -> "
                   f"{_short(new.get('image'))}")
    a, b = old.get("env") or {}, new.get("env") or {}
    for n in sorted(set(a) | set(b)):
        if n not in a:
            out.append(f"variable {n} is newly declared ({b[n]!r})")
        elif n not in b:
            out.append(f"variable {n} is no longer declared")
        elif a[n] != b[n]:
            out.append(f"variable {n} changed: {a[n]!r} -> {b[n]!r}")
    return out


# --- the same key now ---------------------------------------------------------------------


def parts_now(ds: Dataset, entries: Sequence[Entry], *, base: str = "HEAD",
              env: Mapping[str, str | None] | None = None) -> dict[str, dict[str, Any]]:
    """For cacheable entries: their key's parts as they would be for the same record run on
    ``base`` now (the inputs', image files' and code's ids there, the dataset's declared
    code paths; with ``env``, the declared variables' values from it, else as recorded),
    and the implicit code's ids under the part ``"implicit"`` (recorded ones under
    ``"implicit_was"``).  Two ``git cat-file`` calls for all entries."""
    code = code_paths(ds)
    specs: list[str] = []
    for e in entries:
        p = e["parts"]
        paths = [_look(x) for x in [*p["inputs"], *p["image_files"]]]
        paths += [x.partition("\0")[0] for x in paths if "\0" in x]
        paths += [a for x in paths for a in _ancestors(x.partition("\0")[0])]
        specs += [f"{base}:{x}" for x in [*paths, *code, *(e.get("code") or {})]]
    ids = _resolve(ds.root, specs)
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        p = e["parts"]

        def now(x: str) -> str:
            got = ids.get(f"{base}:{_look(x)}")
            if got is None or got.startswith("commit:"):
                got = _in_subdataset(ids, base, _look(x))
            return got or "absent"

        new = dict(p, inputs={x: now(x) for x in p["inputs"]},
                   image_files={x: now(x) for x in p["image_files"]},
                   code={x: ids.get(f"{base}:{x}") or "absent" for x in code})
        if env is not None:
            new["env"] = {n: env.get(n) for n in p.get("env") or {}}
        new["implicit"] = {x: ids.get(f"{base}:{x}") for x in e.get("code") or {}}
        new["implicit_was"] = dict(e.get("code") or {})
        new["imported"] = list(e.get("imported") or [])
        out[e["commit"]] = new
    return out


def changes_now(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What changed between an entry's parts and :func:`parts_now`, in words (the implicit
    code included)."""
    changes = differences(old, new)
    was, now = new.get("implicit_was") or {}, new.get("implicit") or {}
    imported = set(new.get("imported") or ())
    for x in sorted(was):
        if was[x] != now.get(x):
            how = "imported by a script the command names" if x in imported \
                else "named in the command"
            changes.append(f"code {x} ({how}) changed: {_short(was[x])} -> "
                           f"{_short(now.get(x))}")
    return changes


def key_now(new: Mapping[str, Any]) -> str:
    return key_of({k: v for k, v in new.items()
                   if k not in ("implicit", "implicit_was", "imported")})


# --- restoring ------------------------------------------------------------------------------


def restore(ds: Dataset, entry: Entry) -> list[str]:
    """Write the entry's outputs into the worktree as its commit has them, and remove what
    it deleted; returns the paths.  Every file is written anew (the old one unlinked first):
    a file in git from its blob, an annexed file as the symlink or the unlocked copy of its
    content (the same key), never annexed content in place.  Saving the run stages them."""
    try:
        return _restore(ds, entry)
    except BaseException:
        # interrupted or failed half-way: the outputs go back to HEAD's (nothing ran)
        _back_to_head(ds, [o[0] for o in entry["outputs"]])
        raise


def _back_to_head(ds: Dataset, paths: list[str]) -> None:
    try:
        kinds = gitrepo.object_infos(ds.root, [f"HEAD:{p}" for p in paths])
        tracked = [p for p, k in zip(paths, kinds) if k is not None]
        for p, k in zip(paths, kinds):
            full = ds.root / p
            if k is None and (full.is_symlink() or full.is_file()):
                full.unlink()
        if tracked:
            gitrepo.checkout_paths(ds.root, "HEAD", tracked)
    except (RecorderError, OSError):
        pass  # the error that got us here is the one to report


def _restore(ds: Dataset, entry: Entry) -> list[str]:
    written = [o for o in entry["outputs"] if o[1] != "000000"]
    deleted = [o[0] for o in entry["outputs"] if o[1] == "000000"]
    blobs = gitrepo.cat_file_batch(ds.root, sorted({o[2] for o in written}))
    unlocked = [o[3] for o in written if o[3] and o[1] != "120000"]
    where = annex.content_locations(ds.root, sorted(set(unlocked))) if unlocked else {}
    for rel in deleted:
        full = ds.root / rel
        if full.is_symlink() or full.is_file():
            full.unlink()
    for path, mode, blob, key in written:
        full = ds.root / path
        if full.is_symlink() or full.is_file():
            full.unlink()
        full.parent.mkdir(parents=True, exist_ok=True)
        got = blobs.get(blob)
        if got is None:
            raise RecorderError(f"the run-cache cannot read {path} of commit "
                                f"{entry['commit'][:10]}", hint="rerun with --no-cache")
        if mode == "120000":
            os.symlink(os.fsdecode(got[1]), full)
            continue
        if key and mode != "120000" and where.get(key):
            shutil.copyfile(ds.root / where[key], full)  # an unlocked file: its content
        else:
            full.write_bytes(got[1])
        os.chmod(full, 0o755 & ~_umask() if mode == "100755" else 0o644 & ~_umask())
    return [o[0] for o in written] + deleted


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def restored_event(commit: str) -> Event:
    return Event(EventKind.NOTE, f"restored from cache: {commit[:7]}",
                 {"cached_from": commit})


def miss_event(reasons: Sequence[str]) -> Event:
    """A cache miss and its reasons: shown with -v (``fields["verbose"]``)."""
    return Event(EventKind.NOTE, "cache miss: " + "; ".join(reasons),
                 {"verbose": True, "cache": "miss"})


def emit_miss(on_event: OnEvent | None, reasons: Sequence[str]) -> None:
    if reasons:
        emit(on_event, miss_event(reasons))


__all__ = ["Index", "Lookup", "load_index", "lookup", "restore", "differences", "parts_now",
           "changes_now", "key_now", "why_unusable", "with_declared_outputs",
           "current_parts", "key_of", "code_paths", "enabled", "index_path",
           "restored_event", "miss_event", "emit_miss"]
