"""Rendering: result records, events, JSON lines and tables, on stdout and stderr.

stdout carries what the command was asked for (records, tables, JSON lines); stderr what rr
says about it (``rr: ...`` lines, dimmed on a terminal; errors; progress)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..results import Event, EventKind, Result

if TYPE_CHECKING:
    from ..diffruns import RunsDiff
    from ..metrics import Table
    from ..status import StatusTotals


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def error(message: str, hint: str | None = None) -> None:
    """The one spelling of an error: ``rr: error: MESSAGE`` and ``rr: hint: HINT``."""
    err(f"rr: error: {message}")
    if hint:
        err(f"rr: hint: {hint}")


def info(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\x1b[2m{text}\x1b[0m\n")
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def out(text: str) -> None:
    """A line of the command's output (stdout)."""
    sys.stdout.write(text + "\n")


def _unencodable(obj: Any) -> Any:
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


def _one_encoder() -> Callable[[Any], str]:
    """``json.dumps(obj, ensure_ascii=False, allow_nan=False)`` as one function made once: the
    C encoder json.dumps makes anew for each call (with a dict of the containers it is in,
    against cycles: what rr writes comes from JSON and has none), a quarter of writing a
    line of --report or log --json."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: json's own
        return json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    chunks = make(None, _unencodable, json.encoder.encode_basestring, None, ": ", ", ",
                  False, False, False)
    join = "".join
    return lambda obj: join(chunks(obj, 0))


_JSON = _one_encoder()


def json_text(obj: Any) -> str:
    """One JSON text that any JSON parser reads: a non-finite number (``Infinity``, ``NaN``,
    which ``json.dumps`` writes though JSON has no such values) becomes ``null``; bytes that
    are not UTF-8 (surrogate escapes) are written as ``\\u`` escapes, never raw."""
    try:
        text = _JSON(obj)
    except ValueError:
        text = json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False)
    if text.isascii():  # no surrogate escapes (the common case, checked without encoding)
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: escaped (\udcff), so that
        text = json.dumps(_finite(obj), allow_nan=False)  # the output stays UTF-8 JSON
    return text


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_line(obj: Any) -> None:
    sys.stdout.write(json_text(obj) + "\n")


def json_lines(objs: Iterable[Any]) -> None:
    """A JSON line of each of ``objs`` as it comes."""
    write = sys.stdout.write
    try:
        for obj in objs:
            write(json_text(obj) + "\n")
    finally:  # a stream (of git's output) ends here, not when the error is collected
        close = getattr(objs, "close", None)
        if close is not None:
            close()


def announce(command: str) -> None:
    info(f"rr: running: {command}")


# --- events ------------------------------------------------------------------------------


def render_event(event: Event) -> None:
    """An event on stderr: what runs, warnings, notes; a step of a replay.  JOB events are
    drawn by ``Progress``, FILE events by a transfer's bar (``transfer_bar``)."""
    if event.kind is EventKind.ANNOUNCE and "array" in event.fields:
        info(f"rr: running {event.text}")  # an array's jobs: "rr: running 3 job(s) of ..."
    elif event.kind is EventKind.ANNOUNCE:
        announce(event.text)
    elif event.kind is EventKind.WARN:
        err(f"rr: warning: {event.text}")
    elif event.kind is EventKind.NOTE:
        info(f"rr: note: {event.text}")
    elif event.text:
        info(f"rr: {event.text}")


def event_handler(as_json: bool = False, *, announce_json: bool = False, steps: bool = False,
             progress: Progress | None = None, verbose: bool = False) -> Callable[[Event], None]:
    """The CLI's one event handler, given to an operation as ``on_event``: it renders each
    event synchronously (an ANNOUNCE is on stderr before the command starts).  With --json,
    announcements are left out unless ``announce_json`` (rr rerun shows what a record makes
    it execute also then); STEP events are shown with ``steps`` on a terminal without
    --json; JOB events go to ``progress``; FILE events to nothing (see ``transfer_bar``);
    events marked ``verbose`` (why the run-cache missed) only with ``verbose`` (-v)."""
    show_steps = steps and not as_json and sys.stderr.isatty()

    def handle(event: Event) -> None:
        kind = event.kind
        if event.fields.get("verbose") and not verbose:
            return
        if kind is EventKind.JOB:
            if progress is not None:
                progress.event(event)
        elif kind is EventKind.STEP:
            if show_steps:
                render_event(event)
        elif kind is EventKind.FILE or (kind is EventKind.ANNOUNCE and as_json and
                                        not announce_json):
            return
        else:
            render_event(event)

    return handle


@contextlib.contextmanager
def transfer_bar(what: str = "getting") -> Iterator[Callable[[Event], None]]:
    """An event handler that draws FILE events as a transient bar on a terminal (rich's);
    other events as ``event_handler`` does.  No bar when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield event_handler()
        return
    from rich.progress import Progress as Bar  # noqa: PLC0415  heavy, only on a terminal

    plain = event_handler()
    with Bar(transient=True) as bar:
        task = bar.add_task(what, total=None)

        def handle(event: Event) -> None:
            if event.kind is EventKind.FILE:
                bar.update(task, advance=1, description=event.text)
            else:
                plain(event)

        yield handle


# --- result records ----------------------------------------------------------------------


def render_results(results: Iterable[Result], as_json: bool,
                   line: Callable[[Any], str | None] | None = None) -> int:
    """The one rendering of result records (``recorder.results.Result``): one JSON object per
    line with ``--json``, else one line each (``line(result)``, default ``state path``; None
    skips it).  Failed results go to stderr as ``rr: error: ...``.  Returns the number of
    failed results, for the exit code."""
    failed = 0
    for r in results:
        if r.failed:
            failed += 1
        if as_json:
            json_line(r.to_dict())
            sys.stdout.flush()
            continue
        if r.failed:
            err(f"rr: {r.status}: {r.path}: {r.message}" if r.message else
                f"rr: {r.status}: {r.path}")
            continue
        text = line(r) if line else f"{r.state or r.status:<10} {r.path}"
        if text is not None:
            out(text)
    return failed


def state_line(r: Result) -> str:
    """DataLad's status/diff line: ' modified: path (type)'."""
    return f"{r.state or r.status:>9}: {r.path} ({r.type or 'file'})" + \
        (f" [{r.message}]" if r.message else "")


def status_line(r: Result) -> str:
    """``state_line``, with an annexed file's presence and size when rr status --annex."""
    info_ = r.extra or {}
    if "has_content" not in info_:
        return state_line(r)
    size = "size unknown" if info_.get("bytesize") is None else human_size(info_["bytesize"])
    where = "present" if info_["has_content"] else "absent"
    return f"{state_line(r)} [{where}, {size}]"


def annex_totals(t: StatusTotals) -> str:
    unknown = f" ({t.unknown} of unknown size)" if t.unknown else ""
    return (f"{t.present} of {t.files} annexed files present, "
            f"{human_size(t.here)} of {human_size(t.bytes)}{unknown}")


def human_size(n: int) -> str:
    """Decimal units, as DataLad prints sizes: 999 B, 12 MB, 1.4 GB."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            break
    return f"{value:.3g} {unit}"


# --- tables ------------------------------------------------------------------------------


def table_format(as_csv: bool, as_json: bool, as_md: bool) -> str:
    return "csv" if as_csv else "json" if as_json else "md" if as_md else "table"


def render_table(table: Table, fmt: str = "table") -> str:
    """A table as aligned text (``table``), ``csv``, ``md`` or ``json`` (one object per row)."""
    return "".join(iter_table(table, fmt))


def write_table(table: Table, fmt: str = "table") -> None:
    """:func:`render_table` written to stdout line by line (a long history's table is not
    held as one text besides its rows)."""
    write = sys.stdout.write
    for piece in iter_table(table, fmt):
        write(piece)


def iter_table(table: Table, fmt: str = "table") -> Iterator[str]:
    """:func:`render_table`'s text in pieces (a line each, or a few)."""
    columns, rows = table.columns, table.rows
    if fmt == "json":
        for r in rows:
            yield json_text(r) + "\n"
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
            if buf.tell() > 1 << 16:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
        return
    if fmt == "md":
        yield "| " + " | ".join(columns) + " |\n" + "|" + "---|" * len(columns) + "\n"
        for r in rows:
            yield "| " + " | ".join([_cell(r.get(c)) for c in columns]) + " |\n"
        return
    # each row's cells kept as one string until the widths are known (a row per commit of a
    # long history: a third of the memory of a list of cells each)
    shapes = {tuple(map(len, columns))}  # the cells' lengths of each row, each shape once
    kept: list[str | list[str]] = []
    in_order = getattr(rows, "values_in", None)  # metrics' rows: values without a dict each
    values: Iterable[Iterable[Any]] = in_order(columns) if in_order is not None else (
        [r.get(c) for c in columns] for r in rows)
    for vals in values:
        cells = list(map(_cell, vals))
        shapes.add(tuple(map(len, cells)))
        joined = _SEP.join(cells)
        kept.append(joined if joined.count(_SEP) == len(cells) - 1 else cells)
    widths = [max(lengths) for lengths in zip(*shapes)] if columns else []
    yield "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n"
    line = "  ".join(f"%-{w}s" for w in widths)  # str.ljust of each cell, in one operation
    for row in kept:
        cells = row.split(_SEP) if isinstance(row, str) else row
        yield (line % tuple(cells)).rstrip() + "\n"


_SEP = "\x1f"  # between a row's cells while kept (a row whose cells hold it is kept as a list)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# --- runs, replays, arrays ---------------------------------------------------------------


def dry_run(result: Result, location: str, verbose: bool = False) -> None:
    """DataLad's --dry-run=basic layout (location is the full path, path lists as lists)."""
    out("Dry run information")
    out(f" location: {location}")
    if result.inputs:
        out(f" expanded inputs:\n  {list(result.inputs)}")
    if result.outputs:
        out(f" expanded outputs:\n  {list(result.outputs)}")
    out(f" command:\n  {result.record['cmd']}")
    if result.command != result.record["cmd"]:
        out(f" expanded command:\n  {result.command}")
    found = (result.extra or {}).get("cache")
    if found:
        out(f" run-cache:\n  {cache_line(found, verbose)}")


def cache_line(found: dict, verbose: bool = False) -> str:
    """What the run-cache would do for a dry run (``result.extra["cache"]``)."""
    if found.get("cached_from"):
        return f"would be restored from cache: {found['cached_from'][:7]}"
    reasons = found.get("reasons") or []
    if not verbose or not reasons:
        return "would execute" + (" (-v says why the cache misses)" if reasons else "")
    return "would execute: " + "; ".join(reasons)


def step(result: Result) -> None:
    """One replayed step of rr rerun."""
    what = {"ok": "done", "unchanged": "unchanged", "skipped": "skipped"}.get(result.status,
                                                                             result.status)
    new = f" -> {result.new_commit[:8]}" if result.new_commit and result.action != "checkout" \
        else ""
    note = f" ({result.note})" if result.note and result.status != "unchanged" else ""
    took = f" [{result.duration:.1f}s]" if result.action == "run" else ""
    info(f"rr: [{result.index}/{result.total}] {result.action} {result.commit[:8]} "
         f"{result.subject}: {what}{new}{took}{note}")


def verified(result: Result) -> None:
    """One record of rr rerun --verify: a block on stdout, its commit, subject and verdict,
    then one line per file that is not identical (and a short diff when there is one)."""
    from .. import valuediff  # noqa: PLC0415  only when shown: rr --help loads none
    extra = result.extra or {}
    verdict = extra.get("verdict", "")
    head = f"{extra.get('commit', '')[:10]} {extra.get('subject', '')}: {verdict}"
    if verdict == "failed" or (verdict == "skipped" and result.message):
        head += f" ({result.message})"
    elif verdict == "identical" and result.message.startswith("identical within"):
        head = head[:-len(verdict)] + result.message.split(";")[0]
    lines = [head]
    for f in extra.get("files") or []:
        if f["status"] == "identical":
            continue
        what = {"differs": f"{f['old']} -> {f['new']}", "missing": f"recorded: {f['old']}",
                "extra": f"new: {f['new']}", "within-rtol": f"{f['old']} -> {f['new']}"
                }.get(f["status"], "")
        lines.append(f"  {f['status']:<8} {f['path']}" + (f"  ({what})" if what else ""))
        if f.get("values"):
            lines += [f"      {valuediff.describe(c)}" for c in f["values"]]
        else:
            lines += [f"      {line}" for line in (f.get("diff") or "").splitlines()]
    for change in extra.get("environment") or []:
        lines.append(f"  environment {valuediff.describe_env(change)}")
    out("\n".join(lines))


def verify_summary(counts: dict[str, int]) -> str:
    """The last line of rr rerun --verify."""
    verified = counts["identical"] + counts["differs"] + counts["failed"]
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    return (f"rr: verified {verified} record(s): {counts['identical']} identical, "
            f"{counts['differs']} differ, {counts['failed']} failed{skipped}")


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}s"


def _file_line(f: dict[str, Any]) -> str:
    what = {"differs": f"{f['a']} -> {f['b']}", "only-a": f"A: {f['a']}",
            "only-b": f"B: {f['b']}"}.get(f["status"], "")
    path = f"{f['path_a']} | {f['path']}" if f.get("path_a") else f["path"]
    return f"  {f['status']:<8} {path}" + (f"  ({what})" if what else "")


def runs_diff(d: RunsDiff) -> str:
    """rr diff-runs on a terminal: what differs, section by section; the last line says
    whether the outputs differ."""
    from .. import valuediff  # noqa: PLC0415  only when shown: rr --help loads none
    lines = [f"A: {d.a.commit[:10]} {d.a.subject}", f"B: {d.b.commit[:10]} {d.b.subject}"]
    for f in d.fields:
        lines.append(f"{f['what']}: {f['a']} -> {f['b']}" if f["what"] != "command" else
                     f"command:\n  A: {f['a']}\n  B: {f['b']}")
    if not d.fields:
        lines.append("command and parameters: the same")
    inputs = [f for f in d.inputs if f["status"] != "identical"]
    lines.append(f"inputs: {len(d.inputs) - len(inputs)} the same" +
                 (f", {len(inputs)} not:" if inputs else ""))
    lines += [_file_line(f) for f in inputs]
    if d.environment:
        lines.append("environment:")
        lines += [f"  {valuediff.describe_env(c)}" for c in d.environment]
    outputs = [f for f in d.outputs if f["status"] != "identical"]
    lines.append(f"outputs: {len(d.outputs) - len(outputs)} the same" +
                 (f", {len(outputs)} not:" if outputs else ""))
    for f in outputs:
        lines.append(_file_line(f))
        if f.get("values"):
            lines += [f"      {valuediff.describe(c)}" for c in f["values"]]
        else:
            lines += [f"      {line}" for line in (f.get("diff") or "").splitlines()]
    lines.append(f"duration: {_seconds(d.a.duration)} -> {_seconds(d.b.duration)}")
    if d.a.verified or d.b.verified:
        lines.append(f"verification: {d.a.verified or 'none'} -> {d.b.verified or 'none'}")
    differ = sum(1 for f in outputs if f["status"] != "within-rtol")
    close = len(outputs) - differ
    lines.append(f"rr: outputs differ ({differ} file(s))" if d.outputs_differ else
                 f"rr: outputs identical within rtol ({close} file(s))" if close else
                 "rr: outputs identical")
    return "\n".join(lines)


def _md(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def runs_diff_md(d: RunsDiff) -> str:
    """rr diff-runs --md: a Markdown comparison for a pull-request comment."""
    from .. import valuediff  # noqa: PLC0415  only when shown: rr --help loads none
    verdict = "outputs differ" if d.outputs_differ else "outputs identical"
    lines = [f"### rr diff-runs: {verdict}", "",
             "| | A | B |", "|---|---|---|",
             f"| commit | `{d.a.commit[:10]}` | `{d.b.commit[:10]}` |",
             f"| subject | {_md(d.a.subject)} | {_md(d.b.subject)} |",
             f"| command | `{_md(d.a.command)}` | `{_md(d.b.command)}` |",
             f"| duration | {_seconds(d.a.duration)} | {_seconds(d.b.duration)} |"]
    if d.a.verified or d.b.verified:
        lines.append(f"| verification | {d.a.verified or ''} | {d.b.verified or ''} |")
    lines += [f"| {_md(f['what'])} | {_md(f['a'])} | {_md(f['b'])} |" for f in d.fields
              if f["what"] != "command"]
    lines += [f"| {_md(c['what'])} | {_md(c['old'])} | {_md(c['new'])} |"
              for c in d.environment]
    for title, files in (("Inputs", d.inputs), ("Outputs", d.outputs)):
        lines += ["", f"**{title}**", ""]
        if not files:
            lines.append("none")
            continue
        lines += ["| File | Status | A | B |", "|---|---|---|---|"]
        lines += [f"| `{_md(f.get('path_a', f['path']))}`" +
                  (f" \\| `{_md(f['path'])}`" if f.get("path_a") else "") +
                  f" | {f['status']} | {_md(f['a'])} | {_md(f['b'])} |" for f in files]
    for f in d.outputs:
        if f.get("values"):
            lines += ["", f"Changed values in `{_md(f['path'])}`:", ""]
            lines += [f"- {_md(valuediff.describe(c))}" for c in f["values"]]
        elif f.get("diff"):
            lines += ["", f"`{_md(f['path'])}`:", "", "```diff", f["diff"], "```"]
    return "\n".join(lines)


def array_line(r: Result) -> str:
    extra = r.extra or {}
    if r.action == "run-array":
        return f"rr: {r.message}"
    if r.state == "dry-run":
        ins = f" <- {' '.join(extra['inputs'])}" if extra.get("inputs") else ""
        outs = f" -> {' '.join(extra['outputs'])}" if extra.get("outputs") else ""
        params = " ".join(f"{k}={v}" for k, v in extra["params"].items())
        return f"job {extra['index']}: {params}: {extra['command']}{ins}{outs}"
    took = f" ({extra['duration']:.1f}s)" if "duration" in extra else ""
    return f"{r.state:<9} {r.path}: {r.message}{took}"


class Progress:
    """One line of queued/running/done/failed jobs with the elapsed time on a terminal
    (stderr); nothing when stderr is not a terminal."""

    def __init__(self) -> None:
        self._time = time.monotonic
        self.start = time.monotonic()
        self.on = sys.stderr.isatty()
        self.state: dict[int, str] = {}
        # jobs per state, kept as events come (a count over every job per event would make
        # an array of N jobs cost N^2 on a terminal)
        self.counts = {k: 0 for k in ("queued", "running", "done", "failed")}
        self.shown = 0.0

    def event(self, e: Event) -> None:
        """A JOB event (fields ``index`` and ``state``: queued, started, done, failed)."""
        state = str(e.state)
        new = {"queued": "queued", "started": "running"}.get(state, state)
        old = self.state.get(e.index)
        if old is not None:
            self.counts[old] -= 1
        self.state[e.index] = new
        self.counts[new] = self.counts.get(new, 0) + 1
        now = self._time()
        if self.on and (now - self.shown > 0.1 or state in ("done", "failed")):
            self.shown = now
            sys.stderr.write("\r\x1b[Krr: jobs: " + ", ".join(f"{v} {k}" for k, v in
                                                              self.counts.items())
                             + f" ({now - self.start:.1f}s)")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.on:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def around(self, results: Iterable[Result]) -> Iterator[Result]:
        try:
            for r in results:
                self.clear()
                yield r
        finally:
            self.clear()
