"""rr report: one self-contained HTML file of the runs.

The runs table (sortable, with a "differences only" toggle), a parallel-coordinates view of
parameters against a metric, each metric over history per branch, the provenance graph as
inline SVG (Graphviz, from rr graph's data) and the verification verdicts and environment
facts that records carry.  Charts are Vega-Lite specs drawn in the browser by Vega, Vega-Lite
and vega-embed, whose JavaScript is inlined (recorder/assets/, fetched pinned from npm by
tools/fetch-report-js.sh); where rr was installed without it (a plain ``pip install``), the
page's own small SVG renderer draws the same data.  The page's Content-Security-Policy
forbids every network request.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from . import graph as graphop
from . import runs as runsop
from .dataset import Dataset
from .errors import RecorderError, UsageError

ASSETS = Path(__file__).with_name("assets")
TEMPLATE = Path(__file__).with_name("report_template.html")
JS_FILES = {"vega": "vega.min.js", "vega_lite": "vega-lite.min.js",
            "vega_embed": "vega-embed.min.js"}
GRAPH_LIMIT = 300  # the newest runs drawn in the graph (Graphviz's layout grows fast)
HISTORY_METRICS = 12  # metrics charted over history, the first in column order
DETAIL_LIMIT = 500  # rows of the verification and environment section


def javascript_installed() -> bool:
    """Whether Vega's JavaScript is here (tools/fetch-report-js.sh); without it the report's
    charts are drawn by rr's own small SVG renderer (no tooltips' formatting, no legend
    layout of Vega's, the same data)."""
    return all((ASSETS / file).is_file() for file in JS_FILES.values())


def _javascript() -> dict[str, str]:
    found = {}
    for name, file in JS_FILES.items():
        try:
            found[name] = (ASSETS / file).read_text(encoding="utf-8")
        except OSError:
            return dict.fromkeys(JS_FILES, "")  # the built-in renderer draws the charts
    return found


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _cell(col: str, v: Any, kind: str) -> tuple[str, str, str]:
    """(text shown, data-v for sorting, class) of one cell."""
    if v is None:
        return "–", "", ""
    if col == "commit":
        return str(v)[:8], str(v), "mono"
    if col == "duration" and _number(v):
        return f"{v:.2f}s", repr(v), "num"
    if col == "date":
        return str(v)[:19].replace("T", " "), str(v), ""
    if col == "status":
        return str(v), str(v), f"status-{v}"
    if _number(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v), repr(v), "num"
    return str(v), str(v), ""


def _table_html(t: runsop.RunsTable) -> str:
    same = {c for c in t.columns if c != "commit" and not runsop.varies(t.rows, c)}
    out = ['<table class="runs" id="runs"><thead><tr>']
    for c in t.columns:
        classes = " ".join(x for x in (t.kinds.get(c, "run"), "same" if c in same else "")
                           if x)
        out.append(f'<th class="{classes}" data-col="{html.escape(c)}" '
                   f'title="{html.escape(t.kinds.get(c, "run"))}">{html.escape(c)}</th>')
    out.append("</tr></thead><tbody>")
    for d in t.rows:
        out.append(f'<tr data-commit="{html.escape(str(d.get("commit")))}">')
        for c in t.columns:
            text, key, cls = _cell(c, d.get(c), t.kinds.get(c, "run"))
            if c in same:
                cls = f"{cls} same".strip()
            title = f' title="{html.escape(str(d.get(c)))}"' if c in ("commit", "date") else ""
            out.append(f'<td class="{cls}" data-v="{html.escape(key)}"{title}>'
                       f'{html.escape(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _numeric_columns(t: runsop.RunsTable, kind: str) -> list[str]:
    return [c for c in t.columns if t.kinds.get(c) == kind
            and any(_number(d.get(c)) for d in t.rows)]


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _parallel(t: runsop.RunsTable) -> dict[str, Any]:
    """The parallel coordinates: an axis per parameter (numbers on a linear scale, text as
    evenly spaced categories) and per numeric metric, each scaled to 0..1 here; a line per
    run that has every parameter and some metric; labels for each axis's ends (numbers) or
    categories (text).  Lines are coloured by a metric: fields m0, m1, ... (metric names may
    hold dots, which Vega-Lite would read as nesting)."""
    params = [c for c in t.columns if t.kinds.get(c) == "param"
              and any(d.get(c) is not None for d in t.rows)]
    metrics = _numeric_columns(t, "metric")
    rows = [d for d in t.rows if all(d.get(c) is not None for c in params)
            and any(_number(d.get(m)) for m in metrics)]
    if not params or not rows:
        return {"pc_axes": [], "pc_rows": [], "pc_labels": [], "pc_metrics": metrics}
    axes = params + metrics
    scale: dict[str, dict[Any, float]] = {}
    numeric: dict[str, tuple[float, float]] = {}
    labels: list[dict[str, Any]] = []
    for c in axes:
        values: list[Any] = [d[c] for d in rows if d.get(c) is not None]
        if values and all(_number(v) for v in values):
            lo, hi = min(values), max(values)
            numeric[c] = (float(lo), float(hi))
            labels += [{"key": c, "norm": 1.0, "label": _short(hi)},
                       {"key": c, "norm": 0.0, "label": _short(lo)}]
        else:
            cats = sorted({_short(v) for v in values}, key=_natural)
            step = 1 / (len(cats) - 1) if len(cats) > 1 else 0.0
            scale[c] = {v: (i * step if len(cats) > 1 else 0.5) for i, v in enumerate(cats)}
            labels += [{"key": c, "norm": scale[c][v], "label": v[:24]} for v in cats[:40]]
    long = []
    for i, d in enumerate(rows):
        colour = {f"m{j}": d[m] for j, m in enumerate(metrics) if _number(d.get(m))}
        for c in axes:
            v: Any = d.get(c)
            if c in numeric:
                if not _number(v):
                    continue
                lo, hi = numeric[c]
                norm = 0.5 if hi == lo else (v - lo) / (hi - lo)
            elif v is None:
                continue
            else:
                norm = scale[c][_short(v)]
            long.append({"i": i, "commit": d["commit"][:8], "key": c,
                         "value": v if _number(v) else _short(v), "norm": norm, **colour})
    return {"pc_axes": axes, "pc_rows": long, "pc_labels": labels, "pc_metrics": metrics}


def _natural(text: str) -> list[Any]:
    """Sort key with numbers as numbers: seed-2 before seed-10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _chart_data(rows: Sequence[runsop.RunRow], t: runsop.RunsTable) -> dict[str, Any]:
    metrics = _numeric_columns(t, "metric")
    shown = metrics[:HISTORY_METRICS]
    history = []
    for n, (r, d) in enumerate(zip(reversed(rows), reversed(t.rows)), start=1):
        for m in shown:
            if _number(d.get(m)):
                history.append({"n": n, "commit": r.commit[:8], "subject": r.subject[:80],
                                "date": r.date, "branch": r.branch, "metric": m,
                                "value": d[m]})
    return {**_parallel(t), "history": history, "history_metrics": shown}


def _graph_html(rows: Sequence[runsop.RunRow]) -> str:
    if not rows:
        return '<p class="empty">No runs.</p>'
    shown = list(rows[:GRAPH_LIMIT])
    dot = graphop.runs_to_dot(graphop.GraphRun(r.commit, r.subject, r.image,
                                               r.status == "malformed", r.inputs, r.outputs,
                                               r.chain) for r in reversed(shown))
    svg = graphop.dot_svg(dot)
    if svg is None:
        return ('<p class="empty">The graph needs Graphviz (apt-get install graphviz); '
                'rr graph -o graph.dot writes its source.</p>')
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    note = ""
    if len(rows) > len(shown):
        note = (f'<p class="meta">The newest {len(shown)} of {len(rows)} runs; '
                f'rr graph RANGE -o graph.svg draws any range.</p>')
    return note + svg


def _environment(verdict: dict[str, Any]) -> str:
    """The versions a verification noted (rr, Python, git-annex) and the image digest."""
    parts = [f"{name} {verdict[key]}" for key, name in
             (("rr", "rr"), ("python", "Python"), ("git_annex", "git-annex"))
             if verdict.get(key)]
    if verdict.get("image"):
        parts.append(f"image {str(verdict['image'])[:19]}")
    return ", ".join(parts)


def _verification_html(rows: Sequence[runsop.RunRow]) -> str:
    parts = []
    verified = [r for r in rows if r.verifications][:DETAIL_LIMIT]
    if verified:
        parts.append('<table class="runs verdicts"><thead><tr><th>commit</th><th>subject</th>'
                     '<th>verdict</th><th>newest</th><th>host</th><th>environment</th>'
                     '</tr></thead><tbody>')
        for r in verified:
            newest = r.verifications[-1]
            parts.append(
                f'<tr><td class="mono">{html.escape(r.commit[:8])}</td>'
                f'<td>{html.escape(r.subject[:80])}</td>'
                f'<td class="status-{html.escape(r.status)}">'
                f'{html.escape(r.verification or "")}</td>'
                f'<td>{html.escape(str(newest.get("date", ""))[:19])}</td>'
                f'<td>{html.escape(str(newest.get("host", "")))}</td>'
                f'<td>{html.escape(_environment(newest))}</td></tr>')
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="empty">No run has been verified (rr rerun --verify).</p>')
    described = [r for r in rows if r.extra or r.digest or r.notes][:DETAIL_LIMIT]
    if described:
        parts.append('<p class="meta">What each record carries beyond the command: its '
                     'image and digest, environment facts, notes on what could not be '
                     'read.</p>')
    for r in described:
        facts: dict[str, Any] = dict(r.extra)
        if r.image:
            facts["image"] = r.image
        if r.digest:
            facts["digest"] = r.digest
        if r.notes:
            facts["notes"] = r.notes
        parts.append(f"<details><summary><code>{html.escape(r.commit[:8])}</code> "
                     f"{html.escape(r.subject[:80])}</summary><pre>"
                     f"{html.escape(json.dumps(facts, indent=1, sort_keys=True, default=str))}"
                     f"</pre></details>")
    return "".join(parts)


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no '</' or '<!--' can end or open anything."""
    text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029",
                                                                             "\\u2029")


def render(ds: Dataset, revision_range: str | None = None, *,
           all_branches: bool = False) -> str:
    """The report's HTML text."""
    js = _javascript()
    rows = runsop.iter_runs(ds, revision_range, all_branches=all_branches)
    t = runsop.table(rows)
    charts = _chart_data(rows, t)
    metrics = charts["pc_metrics"]
    if metrics and charts["pc_axes"]:
        options = "".join(f'<option value="m{j}">{html.escape(m)}</option>'
                          for j, m in enumerate(metrics))
        pc_controls = f'<label>colour by <select id="pc-metric">{options}</select></label>'
    else:
        pc_controls = ""
    branches = sorted({r.branch for r in rows})
    what = "every branch" if all_branches else (revision_range or "HEAD")
    summary = (f"{len(rows)} run{'s' if len(rows) != 1 else ''} of {html.escape(what)} "
               f"({', '.join(html.escape(b) for b in branches) or 'no branch'}) in "
               f"{html.escape(ds.root.name)}, written by rr {__version__}")
    if not js["vega"]:
        summary += (" · charts drawn by rr's built-in renderer (for Vega's interactive "
                    "charts: tools/fetch-report-js.sh in rr's source, then write the "
                    "report again)")
    values = {
        "version": html.escape(__version__),
        "title": html.escape(f"rr report: {ds.root.name}"),
        "summary": summary,
        "table": _table_html(t) if rows else '<p class="empty">No run commits.</p>'
                 '<table class="runs" id="runs"><thead><tr></tr></thead><tbody></tbody></table>',
        "pc_controls": pc_controls,
        "graph": _graph_html(rows),
        "verification": _verification_html(rows),
        "data": _script_json(charts),
        **js,
    }
    template = TEMPLATE.read_text(encoding="utf-8")
    # one pass: text put in (JavaScript, commit messages) is never read as a placeholder
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def write_report(ds: Dataset, output: str, revision_range: str | None = None, *,
                 all_branches: bool = False) -> Path:
    if not output.lower().endswith((".html", ".htm")):
        raise UsageError("the report file must end in .html")
    text = render(ds, revision_range, all_branches=all_branches)
    target = Path(output).absolute()
    part = target.with_name(target.name + ".part")
    try:
        part.write_text(text, encoding="utf-8")
        part.replace(target)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise RecorderError(f"cannot write the report: {exc.strerror or exc}") from None
    return target
