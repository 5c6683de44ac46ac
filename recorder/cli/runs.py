"""Comparing runs: the runs table and the one-file HTML report."""

# no `from __future__ import annotations` here: typer reads every command's annotations at
# each call, and string annotations cost it an eval each

from typing import Annotated, List, Optional

from .params import Argument, Option

from . import options as opt
from . import render
from .base import call

# recorder.api is imported inside each command: `rr --help` does not load the operations

_RANGE = Argument(None, help="Commits to show (default HEAD), e.g. ready4analysis..HEAD.")
_ALL = Option("-a", "--all", help="The run commits of every branch.")


def runs(
    revision_range: Optional[str] = _RANGE,
    all: Annotated[bool, _ALL] = False,
    only_changed: bool = Option(False, "--only-changed", help="Drop the columns that "
                                      "are the same in every row."),
    sort_by: Optional[str] = Option(None, "--sort-by", metavar="COLUMN",
                                          help="Order the rows by this column."),
    desc: bool = Option(False, "--desc", help="With --sort-by: largest first."),
    filter: List[str] = Option([], "--filter", metavar="EXPR",
                                     help="Keep the rows where EXPR holds, e.g. "
                                          "'accuracy>0.9 and lr=0.1' (== != > >= < <= ~; "
                                          "and , or); repeatable."),
    as_csv: bool = Option(False, "--csv", help="CSV with a header row."),
    as_json: Annotated[bool, opt.as_json("One JSON object per run.")] = False,
    as_md: bool = Option(False, "--md", help="A Markdown table."),
    dataset: opt.Dataset = None,
) -> None:
    """One row per run: commit, subject, branch, date, duration, status, image, and the
    parameters and metrics of each run as columns.

    Example: rr runs -a --only-changed --sort-by accuracy --desc

    Example: rr runs --filter 'accuracy>0.9' --csv
    """
    from .. import api  # noqa: PLC0415  start-up time

    table = call(api.runs_table, revision_range, dataset=dataset, all=all,
                 only_changed=only_changed, sort_by=sort_by, desc=desc, filter=filter)
    fmt = render.table_format(as_csv, as_json, as_md)
    if fmt in ("table", "md"):  # the short commit on a terminal and in Markdown
        rows = [dict(r, commit=(r.get("commit") or "")[:8]) for r in table.rows]
        if fmt == "md":  # a | in a cell would end it
            rows = [{k: v.replace("|", "\\|") if isinstance(v, str) else v
                     for k, v in r.items()} for r in rows]
        table = type(table)(table.columns, rows, table.kinds)
    render.write_table(table, fmt)


def report(
    revision_range: Optional[str] = _RANGE,
    output: str = Option(..., "-o", "--output", help="The HTML file to write."),
    all: Annotated[bool, _ALL] = False,
    dataset: opt.Dataset = None,
) -> None:
    """Write one self-contained HTML report: the runs table (differences only, sorting),
    parameters against metrics, each metric over history per branch, the provenance graph,
    verification verdicts.  It opens offline and makes no network request.

    Example: rr report -a -o report.html
    """
    from .. import api  # noqa: PLC0415  start-up time

    path = call(api.report, output, revision_range, dataset=dataset, all=all)
    render.info(f"rr: wrote {path}")
