"""The provenance graph of run records: inputs -> command -> outputs, chained across commits."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from . import proc
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .history import iter_rows


def _q(text: str) -> str:
    if "\\" not in text and '"' not in text:
        return f'"{text}"'
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GraphRun(NamedTuple):
    """One run as the graph draws it (from rr log's rows, or rr runs' for rr report)."""

    commit: str
    message: str
    container: str | None
    malformed: bool
    inputs: list[str]
    outputs: list[str]
    chain: list[str]


def to_dot(ds: Dataset, revision_range: str | None = None) -> str:
    return "".join(_dot_lines(ds, revision_range))


def _dot_lines(ds: Dataset, revision_range: str | None) -> list[str]:
    """:func:`to_dot`'s text in pieces, each ending in a newline (written one by one, the
    text of a long history is never held twice)."""
    # read newest first, as git writes while it walks (git log --reverse writes nothing
    # before the walk ends), and drawn oldest first, as git log --reverse lists them
    rows = iter_rows(ds, revision_range)
    return _dot((GraphRun(r.commit, r.message, r.container, bool(r.note), r.inputs,
                          r.outputs, r.chain) for r in rows), newest_first=True)


def runs_to_dot(runs: Iterable[GraphRun]) -> str:
    """The graph of ``runs`` (oldest first) in Graphviz's language."""
    return "".join(_dot(runs, newest_first=False))


def _dot(runs: Iterable[GraphRun], newest_first: bool) -> list[str]:
    """The graph of ``runs``, drawn oldest first (``newest_first``: they come the other way),
    in pieces that each end in a newline."""
    lines = ["digraph provenance {", "  rankdir=LR;",
             '  node [fontname="Helvetica", fontsize=10];']
    drawn: list[str] = []  # each run's lines, one string
    files: set[str] = set()
    for r in runs:
        node = f"run_{r.commit[:10]}"
        label = f"{r.commit[:8]}\\n{r.message[:40]}"
        if r.container:
            label += f"\\n[{r.container}]"
        if r.malformed:
            label += "\\n(malformed record)"
        run = [f"  {node} [shape=box, style=filled, fillcolor=\"#dde8f5\", "
               f"label={_q(label).replace(chr(92) * 2 + 'n', chr(92) + 'n')}];"]
        for path in r.inputs:
            files.add(path)
            run.append(f"  {_q('f:' + path)} -> {node};")
        for path in r.outputs:
            files.add(path)
            run.append(f"  {node} -> {_q('f:' + path)};")
        if r.chain:
            original = f"run_{r.chain[-1][:10]}"
            run.append(f"  {original} -> {node} [style=dashed, label=\"rerun\"];")
        run.append("")
        drawn.append("\n".join(run))
    if newest_first:
        drawn.reverse()
    head = "\n".join(lines) + "\n"
    lines = [f"  {_q('f:' + path)} [shape=note, label={_q(path)}];" for path in sorted(files)]
    lines.append("}")
    drawn.insert(0, head)
    drawn.append("\n".join(lines) + "\n")
    return drawn


def dot_svg(dot: str) -> str | None:
    """``dot`` rendered as SVG text by Graphviz, or None when Graphviz is not installed."""
    if shutil.which("dot", path=proc.tool_path()) is None:
        return None
    return proc.capture(["dot", "-Tsvg"], input=dot.encode("utf-8")).stdout.decode("utf-8")


def write_graph(ds: Dataset, output: str, revision_range: str | None = None) -> Path:
    suffix = Path(output).suffix.lower()
    if suffix not in (".dot", ".svg", ".png"):
        raise UsageError("the graph file must end in .dot, .svg or .png")
    parts = _dot_lines(ds, revision_range)
    target = Path(output).absolute()
    if suffix == ".dot":
        try:
            with open(target, "w", encoding="utf-8") as fh:
                fh.writelines(parts)
        except OSError as exc:
            raise RecorderError(f"cannot write the graph: {exc.strerror or exc}") from None
        return target
    dot = "".join(parts)
    del parts
    if shutil.which("dot", path=proc.tool_path()) is None:
        raise RecorderError("rendering .svg/.png needs Graphviz's dot",
                            hint="apt-get install graphviz, or write a .dot file")
    result = proc.capture(["dot", f"-T{suffix[1:]}", "-o", os.fspath(target)],
                          input=dot.encode("utf-8"))
    del result
    return target
