"""The runs table: one row per run commit with its parameters and metrics as columns.

Read in one stream: one ``git log`` (records, both notes refs, the ref each commit was reached
from), one ``git cat-file --batch`` for the metrics files the runs wrote, and one git-annex
call when some of them are annexed.  ``iter_runs`` is the reader (``rr report`` and other
views reuse it); ``table``, ``only_changed``, ``filter_rows`` and ``sort_rows`` shape what
``rr runs`` shows.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import annex, gitrepo
from . import config as cfgkeys
from . import metrics as metricsop
from . import record as records
from .dataset import Dataset
from .errors import RecorderError, RecordError, UsageError
from .history import _note_facts, verification_summary

# the columns every row has, in order; parameters and metrics follow
FIXED = ("commit", "subject", "branch", "tags", "date", "duration", "status", "image")
STATUSES = ("ran", "cached", "verified", "differs", "failed", "malformed")


@dataclass
class RunRow:
    """One run commit: what rr runs shows, and what rr report draws."""

    commit: str
    subject: str
    branch: str
    tags: list[str]
    date: str
    duration: float | None
    status: str  # one of STATUSES
    image: str | None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    author: str = ""
    digest: str | None = None
    exit: int | None = None
    verification: str | None = None  # history.verification_summary of the verdicts
    verifications: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # rr's other record fields (environment)
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "subject": self.subject, "branch": self.branch,
                "tags": list(self.tags), "date": self.date, "duration": self.duration,
                "status": self.status, "image": self.image, "digest": self.digest,
                "params": dict(self.params), "metrics": dict(self.metrics),
                "command": self.command, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "chain": list(self.chain),
                "parents": list(self.parents), "author": self.author, "exit": self.exit,
                "verification": self.verification, "verifications": list(self.verifications),
                "extra": dict(self.extra), "notes": list(self.notes)}


def _status(rec: dict[str, Any], verifications: list[dict[str, Any]]) -> str:
    """The newest verdict of rr rerun --verify decides; else a record rr took from its run
    cache (``rr.cached_from``) is 'cached'; else 'ran'."""
    if verifications:
        verdict = verifications[-1].get("verdict")
        if verdict == "identical":
            return "verified"
        if verdict in ("differs", "failed"):
            return str(verdict)
    info = rec.get("rr")
    if isinstance(info, dict) and info.get("cached_from"):
        return "cached"
    return "ran"


def _image(info: dict[str, Any]) -> tuple[str | None, str | None]:
    container = info.get("container")
    if isinstance(container, str):
        return container, None
    if isinstance(container, dict):
        name = container.get("name") or container.get("image")
        return (str(name) if name else None), container.get("digest")
    return None, None


def _params(info: dict[str, Any]) -> dict[str, Any]:
    """An array job's row values (``rr.array.params``): the ``{name}`` substitutions of the
    record's command, numbers as numbers."""
    array = info.get("array")
    params = array.get("params") if isinstance(array, dict) else None
    if not isinstance(params, dict):
        return {}
    return {str(k): metricsop._number(v) for k, v in params.items()}


def _branch_name(source: str, current: str | None) -> str:
    for prefix in ("refs/heads/", "refs/remotes/", "refs/tags/"):
        if source.startswith(prefix):
            return source[len(prefix):]
    if source in ("HEAD", "") or source.startswith("HEAD"):
        return current or "HEAD"
    return source


_GLOB = re.compile(r"[*?\[]")


def _metrics_files(outputs: Sequence[str], pwd: str, patterns: Sequence[str]) -> list[str]:
    """The metrics files among a record's outputs: those matching a registered metrics file
    (``rr metrics add``; globs match component by component), or a registered file under an
    output directory; with none registered, every ``.json`` output (as rr metrics does)."""
    found: list[str] = []
    for out in outputs:
        rel = os.path.normpath(os.path.join(pwd or ".", out))
        if os.path.isabs(rel) or rel == ".." or rel.startswith("../") or "\n" in rel:
            continue  # never read outside the dataset on a record's say-so
        if not patterns:
            if rel.endswith(".json") and rel not in found:
                found.append(rel)
            continue
        parts = rel.split("/")
        for pat in patterns:
            if metricsop._matches(parts, pat.split("/")) or not _GLOB.search(pat) and (
                    rel == "." or pat.startswith(rel + "/")):
                hit = rel if metricsop._matches(parts, pat.split("/")) else pat
                if hit not in found:
                    found.append(hit)
    return found


def iter_runs(ds: Dataset, revision_range: str | None = None, *,
              all_branches: bool = False) -> list[RunRow]:
    """The run commits of ``revision_range`` (default HEAD; every branch with
    ``all_branches``), newest first, with their parameters and metrics.  A malformed record
    is a row with what its commit has and a note; a metrics file that cannot be read is a
    note; nothing here raises for what a record holds."""
    if ds.head() is None:
        return []
    revs: list[str] = []
    if not all_branches:
        rev = revision_range or "HEAD"
        ends = rev.replace("...", "..").split("..")
        if any(gitrepo.resolve_commit(ds.root, end or "HEAD") is None for end in ends):
            raise UsageError(f"unknown revision: {rev if len(rev) <= 80 else rev[:77] + '...'}")
        revs = [rev]
    elif revision_range:
        raise UsageError("give a revision range or --all, not both")
    try:
        record_dir = ds.record_directory()
    except RecorderError:  # each sidecar record is noted as unreadable below
        record_dir = ds.config.get(cfgkeys.RUN_RECORD_DIRECTORY) or ""
    entries = gitrepo.iter_run_log(ds.root, revs, all_branches=all_branches)
    current = gitrepo.current_branch(ds.root)
    tags = gitrepo.refs_by_commit(ds.root, ["refs/tags"]) if entries else {}
    patterns = metricsop.registered_files(ds)
    rows: list[RunRow] = []
    wanted: dict[int, list[str]] = {}  # row index -> its metrics files
    for e in entries:
        noted, verifications = _note_facts(e.note)  # each line of the notes read once
        row = RunRow(e.sha, "", _branch_name(e.source, current), list(tags.get(e.sha, [])),
                     e.date, noted, "ran", None,
                     parents=list(e.parents), author=e.author,
                     verifications=verifications,
                     verification=verification_summary(verifications))
        try:
            loaded = records.load_record(e.message, ds.root, record_dir)
        except RecordError as exc:
            first = e.message.strip().splitlines()[0] if e.message.strip() else ""
            row.subject = first.removeprefix(records.TAG).strip()[:200]
            row.status = "malformed"
            row.notes.append(f"malformed run record: {exc.message}")
            rows.append(row)
            continue
        if loaded is None:  # the tag, but no record block: not a run commit
            continue
        message, rec = loaded
        info: dict[str, Any] = rec["rr"] if isinstance(rec.get("rr"), dict) else {}
        row.subject = message.splitlines()[0] if message else ""
        row.status = _status(rec, verifications)
        row.image, row.digest = _image(info)
        if isinstance(info.get("duration"), (int, float)):
            row.duration = float(info["duration"])
        row.params = _params(info)
        row.command = str(rec.get("cmd", ""))
        row.inputs = list(rec.get("inputs") or [])
        row.outputs = list(rec.get("outputs") or [])
        row.chain = list(rec.get("chain") or [])
        row.exit = rec.get("exit")
        row.extra = {k: v for k, v in info.items()
                     if k not in ("array", "container", "duration", "explicit")}
        files = _metrics_files(row.outputs, str(rec.get("pwd") or "."), patterns)
        if files:
            wanted[len(rows)] = files
        rows.append(row)
    _read_metrics(ds, rows, wanted)
    return rows


def _read_metrics(ds: Dataset, rows: list[RunRow], wanted: dict[int, list[str]]) -> None:
    """Each row's metrics, from its own commit's tree: one ``cat-file --batch`` for all,
    one git-annex call for annexed ones."""
    specs = [f"{rows[i].commit}:{f}" for i, files in wanted.items() for f in files]
    blobs = gitrepo.cat_file_batch(ds.root, specs)
    keys = {s: metricsop._annex_key(obj[1]) for s, obj in blobs.items()
            if obj is not None and obj[0] == "blob"}
    annexed = sorted({k for k in keys.values() if k})
    contents = annex.read_keys(ds.root, annexed) if annexed else {}
    for i, files in wanted.items():
        row = rows[i]
        many = len(files) > 1
        for f in files:
            spec = f"{row.commit}:{f}"
            obj = blobs.get(spec)
            if obj is None or obj[0] != "blob":
                row.notes.append(f"{f}: missing")
                continue
            data: bytes | None = obj[1]
            key = keys.get(spec)
            if key:
                data = contents.get(key)
                if data is None:
                    row.notes.append(f"{f}: annexed content not here (rr get it)")
                    continue
            try:
                values = metricsop.parse(f, data or b"")
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                row.notes.append(f"{f}: cannot parse ({str(exc).splitlines()[0][:60]})")
                continue
            for k, v in values.items():
                if isinstance(v, (dict, list)):
                    continue
                row.metrics[f"{f}:{k}" if many else k] = v


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunsTable(metricsop.Table):
    """Rows as flat dicts over ``columns``; ``kinds`` says which columns are parameters
    ('param'), metrics ('metric') or rr's own ('run')."""

    kinds: dict[str, str] = field(default_factory=dict)


def table(rows: Sequence[RunRow]) -> RunsTable:
    """The fixed columns, then every parameter, then every metric, in order of appearance
    (oldest run first); a parameter or metric named like an earlier column is prefixed
    ``param:`` or ``metric:``; ``note`` last, when some row has one."""
    kinds: dict[str, str] = {c: "run" for c in FIXED}
    names: dict[tuple[str, str], str] = {}
    for kind, attr in (("param", "params"), ("metric", "metrics")):
        for r in reversed(rows):
            for k in getattr(r, attr):
                if (kind, k) in names:
                    continue
                col = k if k not in kinds else f"{kind}:{k}"
                names[(kind, k)] = col
                kinds[col] = kind
    flat = []
    for r in rows:
        d: dict[str, Any] = {"commit": r.commit, "subject": r.subject, "branch": r.branch,
                             "tags": ", ".join(r.tags) or None, "date": r.date,
                             "duration": r.duration, "status": r.status, "image": r.image}
        for col in kinds:
            if kinds[col] != "run":
                d[col] = None
        for k, v in r.params.items():
            d[names[("param", k)]] = v
        for k, v in r.metrics.items():
            d[names[("metric", k)]] = v
        if r.notes:
            d["note"] = "; ".join(r.notes)
        flat.append(d)
    columns = list(kinds)
    if any("note" in d for d in flat):
        columns.append("note")
        kinds["note"] = "run"
        for d in flat:
            d.setdefault("note", None)
    return RunsTable(columns, flat, kinds)


def varies(rows: Sequence[dict[str, Any]], column: str) -> bool:
    """Whether ``column`` has more than one value in ``rows`` (1 and 1.0 differ, as in JSON)."""
    seen: set[Any] = set()
    for d in rows:
        v = d.get(column)
        seen.add((v.__class__, v) if isinstance(v, (str, int, float, type(None)))
                 else json.dumps(v, sort_keys=True, default=str))
        if len(seen) > 1:
            return True
    return False


def only_changed(t: RunsTable) -> RunsTable:
    """Drop the columns whose value is the same in every row (commit always stays)."""
    keep = [c for c in t.columns if c == "commit" or varies(t.rows, c)]
    return RunsTable(keep, [{c: d.get(c) for c in keep} for d in t.rows],
                     {c: t.kinds[c] for c in keep})


def _known(t: RunsTable, name: str) -> str:
    if name in t.kinds:
        return name
    for prefix in ("param:", "metric:"):  # accuracy for metric:accuracy when unambiguous
        if prefix + name in t.kinds:
            return prefix + name
    raise UsageError(f"no column {name!r}", hint="columns: " + ", ".join(t.columns))


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (2, 0)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v)
    return (1, str(v))


def sort_rows(t: RunsTable, column: str, descending: bool = False) -> RunsTable:
    """Rows ordered by ``column`` (numbers before text; empty cells last either way)."""
    col = _known(t, column)
    filled = [d for d in t.rows if d.get(col) is not None]
    empty = [d for d in t.rows if d.get(col) is None]
    filled.sort(key=lambda d: _sort_key(d[col]), reverse=descending)
    return RunsTable(t.columns, filled + empty, t.kinds)


# --- --filter: a small expression grammar, parsed, never evaluated as code ---------------------
#   expr := conj ('or' conj)* ;  conj := cond (('and' | ',') cond)* ;  cond := NAME OP VALUE
#   OP: == = != >= <= > < ~ (contains) ;  VALUE: a number, a 'quoted' or "quoted" string, a word

_TOKEN = re.compile(r"""\s*(?:(?P<op>==|!=|>=|<=|=|>|<|~)|(?P<comma>,)
                      |(?P<str>'[^']*'|"[^"]*")|(?P<word>[^\s=!<>~,'"]+))""", re.X)


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: Any

    def holds(self, row: dict[str, Any]) -> bool:
        have = row.get(self.column)
        if have is None:
            return False
        want = self.value
        if self.op == "~":
            return str(want) in str(have)
        numeric = isinstance(have, (int, float)) and not isinstance(have, bool) and \
            isinstance(want, (int, float))
        if not numeric:
            have, want = str(have), str(want)
        if self.op in ("==", "="):
            return bool(have == want)
        if self.op == "!=":
            return bool(have != want)
        if not numeric and self.op in (">", "<", ">=", "<="):
            return _compare_text(have, want, self.op)
        return bool({">": have > want, "<": have < want, ">=": have >= want,
                     "<=": have <= want}[self.op])


def _compare_text(a: str, b: str, op: str) -> bool:
    return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


def _value(text: str) -> Any:
    if text[:1] in ("'", '"'):
        return text[1:-1]
    return metricsop._number(text)


def parse_filter(expr: str) -> list[list[Condition]]:
    """``'accuracy>0.9 and lr=0.1 or status==verified'`` as a list (or) of lists (and) of
    conditions; a UsageError naming the problem otherwise."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise UsageError(f"cannot read the filter at {text[pos:pos + 20]!r}",
                             hint="write e.g. --filter 'accuracy>0.9 and lr=0.1'")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    alternatives: list[list[Condition]] = [[]]
    i = 0
    while i < len(tokens):
        if len(tokens) - i < 3 or tokens[i][0] != "word" or tokens[i + 1][0] != "op" or \
                tokens[i + 2][0] not in ("word", "str"):
            got = " ".join(t[1] for t in tokens[i:i + 3])
            raise UsageError(f"a filter condition is COLUMN OP VALUE, not {got!r}",
                             hint="operators: == != > >= < <= ~ (contains); join with "
                                  "'and', ',' or 'or'")
        alternatives[-1].append(Condition(tokens[i][1], tokens[i + 1][1],
                                          _value(tokens[i + 2][1])))
        i += 3
        if i < len(tokens):
            kind, word = tokens[i]
            if kind == "comma" or (kind == "word" and word.lower() == "and"):
                i += 1
            elif kind == "word" and word.lower() == "or":
                alternatives.append([])
                i += 1
            else:
                raise UsageError(f"expected 'and', ',' or 'or' in the filter, not {word!r}")
            if i == len(tokens):
                raise UsageError("the filter ends after 'and'/'or'")
    if not alternatives[0]:
        raise UsageError("the filter is empty")
    return alternatives


def filter_rows(t: RunsTable, expressions: Sequence[str]) -> RunsTable:
    """The rows for which every expression holds."""
    parsed = [parse_filter(e) for e in expressions]
    resolved = [[[Condition(_known(t, c.column), c.op, c.value) for c in conj] for conj in alt]
                for alt in parsed]
    rows = [d for d in t.rows
            if all(any(all(c.holds(d) for c in conj) for conj in alt) for alt in resolved)]
    return RunsTable(t.columns, rows, t.kinds)


def runs_table(ds: Dataset, revision_range: str | None = None, *, all_branches: bool = False,
               only_changed_columns: bool = False, sort_by: str | None = None,
               descending: bool = False, filters: Sequence[str] = ()) -> RunsTable:
    """What ``rr runs`` shows: filter first, then sort, then drop identical columns (so
    that a filter or a sort may name a column that the view then hides)."""
    for expr in filters:  # a bad filter is reported before any history is read
        parse_filter(expr)
    t = table(iter_runs(ds, revision_range, all_branches=all_branches))
    if filters:
        t = filter_rows(t, filters)
    if sort_by:
        t = sort_rows(t, sort_by, descending)
    if only_changed_columns:
        t = only_changed(t)
    return t


def to_frame(t: RunsTable):
    """A pandas DataFrame of the table (columns in order; numbers stay numbers)."""
    try:
        import pandas as pd  # noqa: PLC0415  heavy
    except ImportError:
        raise RecorderError("the runs as a DataFrame need pandas",
                            hint="pip install pandas, or use api.runs_table") from None
    return pd.DataFrame(t.rows, columns=t.columns)
