"""Reading the history: log, metrics, graph."""

# no `from __future__ import annotations` here: typer reads every command's annotations at
# each call, and string annotations cost it an eval each (~6 ms of `rr --help`)

import contextlib
import csv
import sys
import itertools
from collections.abc import Generator, Iterator
from typing import Annotated, Any, List, Optional

from .params import Argument, Group, Option

from . import options as opt
from . import render
from .base import call, usage_error

# recorder.api is imported inside each command: `rr --help` does not load the operations


def log_(
    revision_range: Optional[str] = Argument(None, help="Commits to show (default HEAD), "
                                                   "e.g. ready4analysis..HEAD."),
    as_json: Annotated[bool, opt.as_json("One JSON object per run commit.")] = False,
    as_csv: bool = Option(False, "--csv", help="CSV with a header row."),
    show_output: bool = Option(False, "--show-output", help="Print the output the run "
                                     "at REVISION (default HEAD) kept with rr run --log, "
                                     "fetching its content when it is not here."),
    dataset: opt.Dataset = None,
) -> None:
    """List run commits: when, who, what command, which inputs and outputs, exit code.

    Example: rr log ready4analysis..HEAD --csv

    Example: rr log --show-output HEAD~2  (the output of a run made with rr run --log)
    """
    from .. import api  # noqa: PLC0415  start-up time

    if show_output:
        if as_json or as_csv:
            usage_error("--show-output prints the log itself: no --json or --csv")
        _path, content = call(api.show_output, revision_range or "HEAD", dataset=dataset)
        sys.stdout.flush()
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return

    # the rows are printed as the history is read: an error (an unknown revision) comes
    # before the first
    call(lambda: _print_log(api.log_rows(revision_range, dataset=dataset), as_json, as_csv))


def _print_log(rows: Generator[Any, None, None], as_json: bool, as_csv: bool) -> None:
    with contextlib.closing(rows):  # the stream of git's output ends here on an error too
        _print_rows(rows, as_json, as_csv)


def _print_rows(rows: Iterator[Any], as_json: bool, as_csv: bool) -> None:
    first = next(rows, None)  # the checks and the first read before any output
    if first is not None:
        rows = itertools.chain([first], rows)
    if as_json:
        render.json_lines(r.json_dict() for r in rows)
        return
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["commit", "date", "author", "message", "command", "container",
                         "inputs", "outputs", "exit", "duration"])
        for r in rows:
            writer.writerow([r.commit, r.date, r.author, r.message, r.command,
                             r.container or "", " ".join(r.inputs), " ".join(r.outputs),
                             "" if r.exit is None else r.exit,
                             "" if r.duration is None else r.duration])
        return
    out = sys.stdout.write
    for r in rows:
        exit_text = "" if r.exit in (0, None) else f" [exit {r.exit}]"
        took = f" ({r.duration:.1f}s)" if r.duration is not None else ""
        out(f"{r.commit[:8]} {r.date[:19]} {r.author}: {r.message}{exit_text}{took}\n"
            f"    $ {r.command}\n")
        if r.inputs:
            out(f"    inputs:  {' '.join(r.inputs)}\n")
        if r.outputs:
            out(f"    outputs: {' '.join(r.outputs)}\n")
        if r.verified:
            out(f"    verification: {r.verified}\n")
        if r.note:
            out(f"    note: {r.note}\n")


def graph(
    revision_range: Optional[str] = Argument(None, help="Commits to include (default "
                                                   "HEAD)."),
    output: str = Option(..., "-o", "--output", help="FILE.svg, FILE.png or FILE.dot."),
    dataset: opt.Dataset = None,
) -> None:
    """Draw the provenance graph: inputs -> command -> outputs, reruns linked to originals.

    Example: rr graph ready4analysis..HEAD -o provenance.svg
    """
    from .. import api  # noqa: PLC0415  start-up time

    path = call(api.graph, output, revision_range, dataset=dataset)
    render.info(f"rr: wrote {path}")


metrics_app = Group(help="Compare metrics across tags, branches and commits.\n\n"
                               "Example: rr metrics show -T -a", no_args_is_help=True)

_CSV = Option("--csv", help="CSV.")
_MD = Option("--md", help="A Markdown table.")
_ALL_TAGS = "-T", "--all-tags"
_ALL_BRANCHES = "-a", "--all-branches"
_ALL_COMMITS = "-A", "--all-commits"


@metrics_app.command("show")
def metrics_show(
    files: List[str] = Argument(None, help="Metrics files (default: the registered ones, "
                                      "else every .json output of a run record); globs "
                                      "('sweep/*/accuracy.json') match the revisions' files."),
    all_tags: bool = Option(False, *_ALL_TAGS, help="A row per tag."),
    all_branches: bool = Option(False, *_ALL_BRANCHES, help="A row per branch (and per "
                                      "sibling branch fetched by rr update)."),
    all_commits: bool = Option(False, *_ALL_COMMITS, help="A row per commit."),
    revision: List[str] = Option([], "-r", "--rev", help="A row for this revision."),
    as_csv: Annotated[bool, _CSV] = False,
    as_json: Annotated[bool, opt.as_json("One JSON object per row.")] = False,
    as_md: Annotated[bool, _MD] = False,
    per_file: bool = Option(False, "--per-file", help="A row per file (and revision), "
                                  "not a column per file: e.g. a sweep's results side by side."),
    dataset: opt.Dataset = None,
) -> None:
    """Show metrics at revisions, read from git objects (nothing is checked out).

    Example: rr metrics show -T -a accuracy.json

    Example: rr metrics show --per-file 'sweep/*/accuracy.json'
    """
    from .. import api  # noqa: PLC0415  start-up time

    table = call(api.metrics_table, files or (), dataset=dataset, all_tags=all_tags,
                 all_branches=all_branches, all_commits=all_commits, revisions=revision,
                 per_file=per_file)
    render.write_table(table, render.table_format(as_csv, as_json, as_md))


@metrics_app.command("diff")
def metrics_diff(
    a: Optional[str] = Argument(None, help="Old revision (default HEAD)."),
    b: Optional[str] = Argument(None, help="New revision (default: the working tree)."),
    files: opt.MetricsFiles = [],
    as_csv: Annotated[bool, _CSV] = False,
    as_json: Annotated[bool, opt.as_json("One JSON object per metric.")] = False,
    as_md: Annotated[bool, _MD] = False,
    dataset: opt.Dataset = None,
) -> None:
    """Compare metrics of two revisions: old, new and change per key.

    Example: rr metrics diff master randomforest
    """
    from .. import api  # noqa: PLC0415  start-up time

    table = call(api.metrics_diff_table, a, b, files=files, dataset=dataset)
    render.write_table(table, render.table_format(as_csv, as_json, as_md))


@metrics_app.command("plot")
def metrics_plot(
    key: str = Argument(..., help="The metric, e.g. accuracy or scores.f1."),
    output: str = Option(..., "-o", "--output", help="FILE.png, FILE.svg or FILE.html."),
    files: opt.MetricsFiles = [],
    all_tags: bool = Option(False, *_ALL_TAGS, help="A point per tag."),
    all_branches: bool = Option(False, *_ALL_BRANCHES, help="A point per branch."),
    all_commits: bool = Option(False, *_ALL_COMMITS, help="A point per commit "
                                     "(the default)."),
    dataset: opt.Dataset = None,
) -> None:
    """Chart a metric across revisions.

    Example: rr metrics plot accuracy -T -o accuracy.png
    """
    from .. import api  # noqa: PLC0415  start-up time

    path = call(api.metrics_plot, key, output, files=files, all_tags=all_tags,
                all_branches=all_branches, all_commits=all_commits, dataset=dataset)
    render.info(f"rr: wrote {path}")


@metrics_app.command("add")
def metrics_add(
    path: str = Argument(..., help="A metrics file (JSON, YAML or CSV)."),
    dataset: opt.Dataset = None,
) -> None:
    """Register a metrics file for rr metrics (kept in .datalad/config).

    Example: rr metrics add accuracy.json
    """
    from .. import api  # noqa: PLC0415  start-up time

    rel = call(api.metrics_add, path, dataset=dataset)
    render.info(f"rr: tracking metrics in {rel}")
