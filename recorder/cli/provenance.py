"""Provenance: lineage of a file, and the standard export (RO-Crate)."""

# no `from __future__ import annotations` here: typer reads every command's annotations

import sys
from typing import Annotated, Optional

from .params import Argument, Group, Option

from . import options as opt
from . import render
from .base import call

# recorder.api is imported inside each command: `rr --help` does not load the operations


def lineage(
    path: str = Argument(..., help="A file of the dataset."),
    forward: bool = Option(False, "--forward", help="Also the runs that consumed it "
                                 "(and those that consumed theirs)."),
    as_json: Annotated[bool, opt.as_json("The lineage as one JSON object.")] = False,
    as_script: bool = Option(False, "--script", help="Print a shell script that makes "
                                   "the file again in a clone: the commands in order."),
    dataset: opt.Dataset = None,
) -> None:
    """Where a file came from: the run commits that made its current content, back to data
    no run made (command, inputs with their keys, image of each); read from the records.

    Example: rr lineage model/model.joblib --forward
    """
    from .. import api  # noqa: PLC0415  start-up time

    if as_script:
        sys.stdout.write(call(api.lineage_script, path, dataset=dataset))
        return
    lin = call(api.lineage, path, forward=forward, dataset=dataset)
    if as_json:
        render.json_line(lin.to_dict())
        return
    st = lin.state
    render.out(f"{lin.path}  ({_what(st)})")
    if not lin.steps:
        render.out(f"  made by no run: saved in {st.commit[:8]}")
    for n, step in enumerate(lin.steps, 1):
        _show_step(f"{n}.", step)
    if lin.sources:
        render.out("from data no run made:")
        for f in lin.sources:
            render.out(f"  {f.path}  ({_what(f)}, saved in {f.commit[:8]})")
    if forward:
        render.out("consumed by:" if lin.forward else "consumed by no run")
        for step in lin.forward:
            _show_step("->", step)
    for note in lin.notes:
        render.out(f"note: {note}")


def _what(f) -> str:  # type: ignore[no-untyped-def]
    if f.kind == "subdataset":
        return f"subdataset at {f.blob[:10]}"
    if f.key:
        return f"annex {f.key}"
    return f"{f.kind} blob {f.blob[:10]}"


def _show_step(mark: str, step) -> None:  # type: ignore[no-untyped-def]
    extra = ""
    if step.image:
        digest = step.image.get("digest")
        extra = f" [image {step.image.get('name')}{' ' + digest[:19] if digest else ''}]"
    if step.cached_from:
        extra += f" (cached from {step.cached_from[:8]})"
    if step.chain:
        extra += f" (rerun of {step.chain[-1][:8]})"
    exit_text = "" if step.exit in (0, None) else f" [exit {step.exit}]"
    render.out(f"{mark} {step.commit[:8]} {step.date[:19]} {step.message}{extra}{exit_text}")
    render.out(f"    $ {step.command}")
    for f in step.inputs:
        render.out(f"    in:  {f.path}  ({_what(f)})")
    for f in step.outputs:
        render.out(f"    out: {f.path}  ({_what(f)})")


export_app = Group(help="Export the run records in a standard form.\n\n"
                              "Example: rr export ro-crate -o crate.zip",
                         no_args_is_help=True)


@export_app.command("ro-crate")
def export_ro_crate(
    revision_range: Optional[str] = Argument(None, help="Commits to export (default "
                                                   "HEAD), e.g. ready4analysis..HEAD."),
    output: str = Option(..., "-o", "--output", help="A new directory, or FILE.zip."),
    with_content: bool = Option(False, "--with-content", help="Copy the files present "
                                      "here into the crate."),
    dataset: opt.Dataset = None,
) -> None:
    """Write the run records as a Workflow Run RO-Crate (Process Run Crate profile): one
    CreateAction per run, its command or container image, inputs, outputs and checksums.

    Example: rr export ro-crate ready4analysis..HEAD -o crate.zip
    """
    from .. import api  # noqa: PLC0415  start-up time

    path = call(api.export_ro_crate, output, revision_range, with_content=with_content,
                dataset=dataset)
    render.info(f"rr: wrote {path}")
