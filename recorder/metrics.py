"""Metrics across revisions: read metrics files (JSON, YAML, CSV) straight from git objects.

Which files: those registered with ``rr metrics add`` (``rr.metrics.file`` in .datalad/config,
which DataLad ignores), else every ``*.json`` output named in a run record.
"""

from __future__ import annotations

import bisect
import csv
import fnmatch
import functools
import io
import operator
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from . import annex, gitrepo
from . import config as cfgkeys
from . import record as records
from .dataset import DATALAD_CONFIG, Dataset
from .errors import RecorderError, UsageError
from .save import save

CONFIG_KEY = cfgkeys.METRICS_FILE


@dataclass
class MetricsRow:
    revision: str  # the name shown: tag/branch names, or a short sha, or 'workspace'
    commit: str | None
    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    file: str | None = None  # with per_file: the one file of this row

    def flat(self) -> dict[str, Any]:
        short = self.commit[:8] if self.commit else None
        if short == self.revision:  # one string for both (a table of every commit)
            short = self.revision
        out: dict[str, Any] = {"revision": self.revision, "commit": short}
        if self.file is not None:
            out["file"] = self.file
        out.update(self.values)
        out["note"] = "; ".join(self.notes) if self.notes else None
        return out

    def shape(self) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """:meth:`flat`'s keys and values, as two tuples (a table of thousands of rows: no
        dict each)."""
        values = self.values
        if "revision" in values or "commit" in values or "note" in values or (
                self.file is not None and "file" in values):  # a metric named as a column
            flat = self.flat()
            return tuple(flat), tuple(flat.values())
        short = self.commit[:8] if self.commit else None
        if short == self.revision:
            short = self.revision
        note = "; ".join(self.notes) if self.notes else None
        if self.file is None:
            return (("revision", "commit", *values, "note"),
                    (self.revision, short, *values.values(), note))
        return (("revision", "commit", "file", *values, "note"),
                (self.revision, short, self.file, *values.values(), note))


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    _flatten_into(out, obj, prefix)
    return out


def _flatten_into(out: dict[str, Any], obj: Any, prefix: str) -> None:
    """flatten's walk, into one dict (a key seen twice keeps its first place, the last
    value)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                _flatten_into(out, v, f"{prefix}{k}.")
            else:  # the keys of every revision's file are the same: one string each
                out[sys.intern(f"{prefix}{k}")] = v
    elif isinstance(obj, list) and prefix:
        for i, v in enumerate(obj):
            _flatten_into(out, v, f"{prefix}{i}.")
    else:
        out[prefix[:-1] if prefix else "value"] = obj


@functools.lru_cache(maxsize=256)
def _suffix(name: str) -> str:
    """The file type of a metrics file (its suffix, lower case): once per name, not per
    revision."""
    return Path(name).suffix.lower()


def parse(name: str, data: bytes) -> dict[str, Any]:
    text = data.decode("utf-8")
    suffix = _suffix(name)
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]  # noqa: PLC0415  heavy
        except ImportError as exc:
            raise ValueError("YAML metrics need PyYAML (pip install pyyaml)") from exc
        return flatten(yaml.safe_load(text) or {})
    if suffix in (".csv", ".tsv"):
        rows = list(csv.DictReader(io.StringIO(text),
                                   delimiter="\t" if suffix == ".tsv" else ","))
        if not rows:
            return {}
        return {k: _number(v) for k, v in rows[-1].items() if k is not None}
    return flatten(records.loads(text))


def _number(value: Any) -> Any:
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                continue
    return value


def _rel(ds: Dataset, path: str) -> str:
    """A file named relative to the working directory inside the dataset, else to its root."""
    here = Path.cwd()
    return ds.relpath(path, base=here if ds.contains(here) else ds.root)


def registered_files(ds: Dataset) -> list[str]:
    return ds.config.get_all(CONFIG_KEY)


def add_file(ds: Dataset, path: str) -> str:
    rel = _rel(ds, path)
    if rel in registered_files(ds):
        return rel
    gitrepo.config_set(ds.root, CONFIG_KEY, rel, file=str(ds.root / DATALAD_CONFIG), add=True)
    save(ds, [DATALAD_CONFIG], base=ds.root, message=f"Track metrics file {rel}")
    ds.reload_config()
    return rel


def default_files(ds: Dataset, bad: dict[str, str] | None = None) -> list[str]:
    """Registered metrics files, else the .json outputs of run records; a malformed record
    is skipped (and noted in ``bad``: commit -> problem)."""
    files = registered_files(ds)
    if files:
        return files
    found: list[str] = []
    for e in gitrepo.iter_log(ds.root, ["HEAD"], reverse=False, topo=False,
                              extra=["--grep=^\\[DATALAD RUNCMD\\]"]):
        try:
            parsed = records.parse_message(e.message)
        except RecorderError as exc:
            if bad is not None:
                bad[e.sha] = f"commit {e.sha[:8]}: malformed run record: {exc.message}"
            continue
        if parsed is None or parsed.record is None:
            continue
        pwd = parsed.record.get("pwd", ".")
        for out in parsed.record.get("outputs") or []:
            if out.endswith(".json"):
                rel = os.path.normpath(os.path.join(pwd, out))
                if os.path.isabs(rel) or rel == ".." or rel.startswith("../") or "\n" in rel:
                    continue  # never read outside the dataset on a record's say-so
                if rel not in found:
                    found.append(rel)
    return found


def select_revisions(ds: Dataset, all_tags: bool, all_branches: bool, all_commits: bool,
                     revisions: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(name, sha) pairs, oldest first for tags/commits, as given otherwise."""
    return _select(ds, all_tags, all_branches, all_commits, revisions)[0]


def _select(ds: Dataset, all_tags: bool, all_branches: bool, all_commits: bool,
            revisions: Sequence[str] = ()
            ) -> tuple[list[tuple[str, str]], tuple[bytes, int] | None]:
    """:func:`select_revisions`, and with ``all_commits`` each commit's tree (its files are
    read from it: the raw ids one after the other, and the length of one), else None."""
    names = gitrepo.refs_by_commit(ds.root, ["refs/tags", "refs/heads"])
    chosen: list[tuple[str, str]] = []
    names.pop("", None)
    for commit in list(names):
        names[commit] = [n for n in names[commit] if n != "git-annex"]
    if all_commits:
        trees = bytearray()  # raw, one after the other: a long history in little memory
        for commit, tree in gitrepo.rev_list_trees(ds.root, [
                "--exclude=git-annex", "--exclude=synced/*", "--branches", "--tags",
                "--reverse", "--topo-order"]):
            chosen.append((", ".join(names.get(commit, [])) or commit[:8], commit))
            trees += bytes.fromhex(tree)
        return chosen, (bytes(trees), len(trees) // len(chosen)) if chosen else None
    if all_tags:
        for line in gitrepo.ref_names(ds.root, "refs/tags", by_date=True):
            sha = gitrepo.resolve_commit(ds.root, f"refs/tags/{line}")
            if sha:
                chosen.append((line, sha))
    if all_branches:
        for line in gitrepo.ref_names(ds.root, "refs/heads"):
            if line == "git-annex" or line.startswith("synced/"):
                continue
            sha = gitrepo.resolve_commit(ds.root, f"refs/heads/{line}")
            if sha:
                chosen.append((line, sha))
        # a collaborator's branches fetched by rr update (origin/randomforest); one that is
        # where the local branch of its name is adds nothing
        local = dict(chosen)
        for line in gitrepo.ref_names(ds.root, "refs/remotes"):
            remote_name, _, name = line.partition("/")
            if not name or name in ("HEAD", "git-annex") or name.startswith("synced/"):
                continue
            sha = gitrepo.resolve_commit(ds.root, f"refs/remotes/{line}")
            if sha and local.get(name) != sha:
                chosen.append((line, sha))
    for rev in revisions:
        sha = gitrepo.resolve_commit(ds.root, rev)
        if sha is None:
            raise UsageError(f"unknown revision: {rev}")
        chosen.append((rev, sha))
    if not chosen:
        head = ds.head()
        if head is None:
            return [], None
        branch = gitrepo.current_branch(ds.root)
        chosen.append((branch or "HEAD", head))
    return chosen, None


def _annex_key(data: bytes) -> str | None:
    """The annex key a symlink target or pointer file names, or None for plain content."""
    if len(data) >= 400 or b"/annex/objects/" not in data[:200]:
        return None
    return os.path.basename(data.decode("utf-8", "replace").strip())


GLOB_CHARS = "*?["


def _expand(ds: Dataset, files: list[str], revs: list[tuple[str, str]]) -> list[str]:
    """Files with glob characters (``sweep/*/accuracy.json``) matched against the trees of
    the selected revisions, component by component (``*`` stays within one directory); a
    pattern that matches nothing stays, to be noted as missing."""
    out: list[str] = []
    for f in files:
        parts = f.split("/")
        wild = [i for i, p in enumerate(parts) if any(c in p for c in GLOB_CHARS)]
        found = {f}
        if wild and "\n" not in f:  # the revisions' trees level by level, in one stream each
            found = gitrepo.glob_files(ds.root, [sha for _, sha in revs], parts) or {f}
        elif wild:
            under = "/".join(parts[:wild[0]])
            found = {path for _, sha in dict.fromkeys(revs)
                     for path in gitrepo.tree_files(ds.root, sha, under)
                     if _matches(path.split("/"), parts)} or {f}
        out.extend(p for p in sorted(found, key=_natural) if p not in out)
    return out


def _natural(path: str) -> list[Any]:
    """Sort key with numbers as numbers: max_iter-5 before max_iter-10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _matches(names: list[str], parts: list[str]) -> bool:
    return len(names) == len(parts) and all(fnmatch.fnmatchcase(n, p)
                                            for n, p in zip(names, parts))


def show(ds: Dataset, files: Sequence[str] = (), *, all_tags: bool = False,
         all_branches: bool = False, all_commits: bool = False,
         revisions: Sequence[str] = (), per_file: bool = False) -> list[MetricsRow]:
    """One row per revision (values of several files as ``FILE:KEY`` columns), or with
    ``per_file`` one row per revision and file (the outputs of a sweep side by side)."""
    return list(iter_show(ds, files, all_tags=all_tags, all_branches=all_branches,
                          all_commits=all_commits, revisions=revisions, per_file=per_file))


def iter_show(ds: Dataset, files: Sequence[str] = (), *, all_tags: bool = False,
              all_branches: bool = False, all_commits: bool = False,
              revisions: Sequence[str] = (), per_file: bool = False) -> Iterator[MetricsRow]:
    """:func:`show`'s rows one by one, as the files are read (one ``cat-file --batch``
    streamed); the rows from the first revision with annexed metrics on wait for the one
    git-annex call that reads the annexed contents of all revisions."""
    bad: dict[str, str] = {}
    files = [_rel(ds, f) for f in files] if files else default_files(ds, bad)
    if not files:
        raise RecorderError("no metrics files: none registered and no run wrote a .json output",
                            hint="register one with 'rr metrics add FILE'")
    revs, trees = _select(ds, all_tags, all_branches, all_commits, revisions)
    files = _expand(ds, files, revs)
    # bad records at commits not shown: noted on the first row
    shown = {sha for _, sha in revs} if bad else set()
    unshown = [note for sha, note in bad.items() if sha not in shown]
    del shown
    # the files of a commit read from its tree, when known: git reads no commit again
    blobs = gitrepo.read_blobs(ds.root, (f"{rev}:{f}" for rev in _objects(revs, trees)
                                         for f in files))
    # with the trees (every commit), each revision let go once read: its row has its name
    free = trees is not None
    del trees
    waiting: list[tuple[str, str, list[tuple[str, bytes] | None]]] = []
    wanted: set[str] = set()
    for index in range(len(revs)):
        name, sha = revs[index]
        if free:
            revs[index] = _READ
        if len(files) == 1:  # the common case, without a list comprehension each
            obj = next(blobs)
            objs = [obj]
            keys = [_annex_key(obj[1]) if obj is not None else None]
            if keys[0]:
                wanted.add(keys[0])
        else:
            objs = [next(blobs) for _ in files]
            keys = [_annex_key(obj[1]) if obj is not None else None for obj in objs]
            wanted.update(k for k in keys if k)
        if wanted:  # annexed metrics: read with one git-annex call at the end
            waiting.append((name, sha, objs))
            continue
        yield from _rows(name, sha, files, objs, keys, {}, per_file, bad,
                         unshown if index == 0 else [])
    contents = annex.read_keys(ds.root, sorted(wanted)) if wanted else {}
    first = len(revs) - len(waiting)
    for index, (name, sha, objs) in enumerate(waiting, start=first):
        keys = [_annex_key(obj[1]) if obj is not None else None for obj in objs]
        yield from _rows(name, sha, files, objs, keys, contents, per_file, bad,
                         unshown if index == 0 else [])


_READ = ("", "")


def _objects(revs: list[tuple[str, str]], trees: tuple[bytes, int] | None) -> Iterator[str]:
    """The object each revision's files are read from: its tree when known, else itself."""
    if trees is None:
        for _, sha in revs:
            yield sha
        return
    packed, size = trees
    for i in range(0, len(packed), size):
        yield packed[i:i + size].hex()


def _rows(name: str, sha: str, files: list[str], objs: list[tuple[str, bytes] | None],
          keys: list[str | None], contents: dict[str, bytes | None], per_file: bool,
          bad: dict[str, str], unshown: list[str]) -> list[MetricsRow]:
    """The row of one revision (with ``per_file`` its row per file): ``objs`` its files'
    objects, ``keys`` their annex keys; ``bad`` the notes of malformed records by commit,
    ``unshown`` more notes for the first row."""
    rows = []
    many = len(files) > 1 and not per_file
    row = MetricsRow(name, sha)
    for f, obj, key in zip(files, objs, keys):
        if per_file:
            row = MetricsRow(name, sha, file=f)
            rows.append(row)
        if obj is None:
            row.notes.append(f"{f}: missing")
            continue
        data = obj[1]
        if key:
            content = contents.get(key)
            if content is None:
                row.notes.append(f"{f}: annexed content not here (rr get it)")
                continue
            data = content
        try:
            values = parse(f, data)
        except (ValueError, UnicodeDecodeError) as exc:
            row.notes.append(f"{f}: cannot parse ({str(exc).splitlines()[0][:60]})")
            continue
        if many:
            for k, v in values.items():
                row.values[f"{f}:{k}"] = v
        elif row.values:
            row.values.update(values)
        else:  # the one file's values are the row's (parsed for it alone)
            row.values = values
    if bad and sha in bad:
        row.notes.append(bad.pop(sha))
    if not per_file:
        rows.append(row)
    if rows and unshown:
        rows[0].notes.extend(unshown)
    return rows


def _inside(ds: Dataset, f: str) -> bool:
    try:
        ds.ensure_inside(f, ds.root)
    except RecorderError:
        return False
    return ds.resolves_inside(f)


def read_worktree(ds: Dataset, files: Sequence[str]) -> MetricsRow:
    row = MetricsRow("workspace", None)
    many = len(files) > 1
    for f in files:
        if not _inside(ds, f):  # metrics files are named in the committed .datalad/config
            row.notes.append(f"{f}: outside the dataset (not read)")
            continue
        try:
            data = (ds.root / f).read_bytes()
        except OSError:
            row.notes.append(f"{f}: missing")
            continue
        try:
            for k, v in parse(f, data).items():
                row.values[f"{f}:{k}" if many else k] = v
        except (ValueError, UnicodeDecodeError) as exc:
            row.notes.append(f"{f}: cannot parse ({str(exc).splitlines()[0][:60]})")
    return row


@dataclass
class DiffRow:
    key: str
    old: Any
    new: Any
    change: Any

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new, "change": self.change}


def diff(ds: Dataset, a: str | None = None, b: str | None = None,
         files: Sequence[str] = ()) -> list[DiffRow]:
    files = [_rel(ds, f) for f in files] if files else default_files(ds)
    if not files:
        raise RecorderError("no metrics files", hint="register one with 'rr metrics add FILE'")
    old = show(ds, files, revisions=[a or "HEAD"])[0]
    new = show(ds, files, revisions=[b])[0] if b else read_worktree(ds, files)
    out = []
    for key in sorted(set(old.values) | set(new.values)):
        o, n = old.values.get(key), new.values.get(key)
        change = None
        if isinstance(o, (int, float)) and isinstance(n, (int, float)) and \
                not isinstance(o, bool) and not isinstance(n, bool):
            change = n - o
        out.append(DiffRow(key, o, n, change))
    return out


def to_frame(rows: Sequence[MetricsRow]):
    import pandas as pd  # noqa: PLC0415  heavy

    return pd.DataFrame([r.flat() for r in rows])


@dataclass(frozen=True)
class Table:
    """Rows of metrics as a table: the columns in order (every key of every row, in order of
    appearance; ``note`` last and only when some row has one) and the rows as dicts."""

    columns: list[str]
    rows: Sequence[dict[str, Any]]


class _Rows(Sequence[dict[str, Any]]):
    """A table's rows kept as their values, one after the other in one list, and their keys
    once for each run of rows with the same keys (a row per commit of a long history in a
    fraction of the memory of a dict, or even a tuple, each); each row read back as a dict,
    keys in their order."""

    def __init__(self) -> None:
        self._cells: list[Any] = []
        self._runs: list[tuple[int, int, tuple[str, ...]]] = []  # first row, its cell, keys
        self._firsts: list[int] = []  # the first row of each run
        self._shapes: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._count = 0

    def append(self, row: dict[str, Any]) -> None:
        self.add(tuple(row), tuple(row.values()))

    def add(self, keys: tuple[str, ...], values: tuple[Any, ...]) -> bool:
        """A row of ``keys`` and their ``values``; True when no row had these keys before."""
        shape = self._shapes.get(keys)
        new = shape is None
        if shape is None:
            self._shapes[keys] = shape = keys
        if not self._runs or self._runs[-1][2] is not shape:
            self._runs.append((self._count, len(self._cells), shape))
            self._firsts.append(self._count)
        self._cells.extend(values)
        self._count += 1
        return new

    def __len__(self) -> int:
        return self._count

    def _row(self, index: int) -> dict[str, Any]:
        first, cell, keys = self._runs[bisect.bisect_right(self._firsts, index) - 1]
        at = cell + (index - first) * len(keys)
        return dict(zip(keys, self._cells[at:at + len(keys)]))

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("table row index out of range")
        return self._row(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        cells = self._cells
        for n, (first, cell, keys) in enumerate(self._runs):
            rows = (self._firsts[n + 1] if n + 1 < len(self._runs) else self._count) - first
            width = len(keys)
            for at in range(cell, cell + rows * width, width) if width else ():
                yield dict(zip(keys, cells[at:at + width]))
            if not width:
                yield from ({} for _ in range(rows))

    def values_in(self, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Each row's values in the order of ``columns`` (None for a key the row lacks, as
        ``row.get``), without a dict each: what an aligned table of a long history reads."""
        cells, count = self._cells, len(columns)
        for n, (first, cell, keys) in enumerate(self._runs):
            rows = (self._firsts[n + 1] if n + 1 < len(self._runs) else self._count) - first
            width = len(keys)
            if not width or not count:
                yield from ((None,) * count for _ in range(rows))
                continue
            where = {k: i for i, k in enumerate(keys)}
            pick = operator.itemgetter(*[where.get(c, width) for c in columns])  # width: None
            for at in range(cell, cell + rows * width, width):
                got = pick([*cells[at:at + width], None])
                yield got if count > 1 else (got,)


def table(rows: Iterable[MetricsRow] | Iterable[DiffRow]) -> Table:
    """The table of ``show`` rows (a row per revision, or per revision and file) or of
    ``diff`` rows (a row per key), read one by one."""
    dicts = _Rows()
    columns: dict[str, None] = {}
    notes = False
    for r in rows:
        if isinstance(r, MetricsRow):
            keys, values = r.shape()
        else:
            d = r.to_dict()
            keys, values = tuple(d), tuple(d.values())
        if dicts.add(keys, values):  # keys not seen before: the columns they add
            for k in keys:
                if k not in columns:
                    columns[k] = None
        if not notes and "note" in keys:
            notes = bool(values[keys.index("note")])
    if "note" in columns:  # notes last, and only when some row has one
        del columns["note"]
        if notes:
            columns["note"] = None
    return Table(list(columns), dicts)


def plot(ds: Dataset, key: str, output: str, *, files: Sequence[str] = (),
         all_tags: bool = False, all_branches: bool = False, all_commits: bool = False) -> Path:
    """A chart of one metric across revisions (.png, .svg or .html)."""
    suffix = Path(output).suffix.lower()
    if suffix not in (".png", ".svg", ".html"):
        raise UsageError("the plot file must end in .png, .svg or .html")
    if not (all_tags or all_branches or all_commits):
        all_commits = True
    rows = show(ds, files, all_tags=all_tags, all_branches=all_branches,
                all_commits=all_commits)
    points = [(r.revision, r.values[key]) for r in rows
              if isinstance(r.values.get(key), (int, float))]
    if not points:
        known = sorted({k for r in rows for k in r.values})
        raise RecorderError(f"no numeric values of {key!r} at the selected revisions",
                            hint=f"keys seen: {', '.join(known) or 'none'}")
    try:
        import matplotlib  # noqa: PLC0415  heavy

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415  heavy
    except ImportError as exc:
        raise RecorderError("plots need matplotlib", hint="pip install matplotlib") from exc
    labels = [p[0] for p in points]
    values = [p[1] for p in points]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(points) + 2), 3.6))
    ax.plot(range(len(values)), values, marker="o", color="#1f5fa8")
    for i, v in enumerate(values):
        ax.annotate(f"{v:.4g}", (i, v), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(key)
    ax.set_title(f"{key} across revisions")
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.08, y=0.2)
    fig.tight_layout()
    target = Path(output).absolute()
    if suffix == ".html":
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        target.write_text(f"<!doctype html><meta charset='utf-8'><title>{key}</title>\n"
                          f"{buf.getvalue()}\n", encoding="utf-8")
    else:
        fig.savefig(target, dpi=120)
    plt.close(fig)
    return target
