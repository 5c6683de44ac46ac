"""Comparing two run commits: diff-runs."""

# no `from __future__ import annotations` here: typer reads every command's annotations at
# each call, and string annotations cost it an eval each (~6 ms of `rr --help`)

from typing import Annotated, Optional

from .params import Argument, Option

from ..errors import EXIT_NOT_REPRODUCED
from . import options as opt
from . import render
from .base import call, usage_error

# recorder.api is imported inside the command: `rr --help` does not load the operations


def diff_runs(
    a: str = Argument(..., help="The first run commit (a revision)."),
    b: str = Argument(..., help="The second run commit."),
    md: bool = Option(False, "--md", help="Print the comparison as Markdown (for a "
                            "pull-request comment)."),
    fail_on_change: bool = Option(False, "--fail-on-change", help="Exit 3 when the "
                                        "outputs differ."),
    rtol: Optional[float] = Option(None, "--rtol", metavar="X", help="Numbers in "
                                         "JSON/CSV/TSV/YAML outputs within this relative "
                                         "tolerance count as the same."),
    dataset: opt.Dataset = None,
    as_json: Annotated[bool, opt.as_json("Print the comparison as one JSON object.")] = False,
) -> None:
    """Show what differs between two run commits: command, parameters, inputs, image,
    environment, outputs (with short diffs and changed metric values), duration.

    Example: rr diff-runs HEAD~1 HEAD --fail-on-change
    """
    from .. import api  # noqa: PLC0415  start-up time

    if md and as_json:
        usage_error("--md and --json: give one")
    diff = call(api.diff_runs, a, b, dataset=dataset, rtol=rtol or 0.0)
    if as_json:
        render.json_line(diff.to_dict())
    elif md:
        render.out(render.runs_diff_md(diff))
    else:
        render.out(render.runs_diff(diff))
    if fail_on_change and diff.outputs_differ:
        raise SystemExit(EXIT_NOT_REPRODUCED)
