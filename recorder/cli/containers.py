"""Containers registered in the dataset: containers-add, -list, -remove, -exec."""

# no `from __future__ import annotations` here: typer reads every command's annotations at
# each call, and string annotations cost it an eval each (~6 ms of `rr --help`)

from typing import Annotated, List, Optional

from .params import Argument, Option

from . import options as opt
from . import render
from .base import call

# recorder.api is imported inside each command: `rr --help` does not load the operations


def containers_add(
    name: str = Argument(..., help="Name of the container (letters, digits, '-')."),
    url: Optional[str] = Option(None, "--url", "-u", help="Where the image comes from: "
                                      "dhub://IMAGE or docker://IMAGE (local Docker engine, "
                                      "saved into the dataset), podman://IMAGE, shub://, oras://, "
                                      "library://, or a local .sif file."),
    image: Optional[str] = Option(None, "--image", "-i", help="Where the image is kept "
                                        "in the dataset (default .datalad/environments/NAME/"
                                        "image)."),
    call_fmt: Optional[str] = Option(None, "--call-fmt", help="How to call the image: "
                                           "placeholders {img} {cmd} {img_dspath} "
                                           "{img_dirpath} {python}."),
    extra_input: List[str] = Option([], "--extra-input", help="Another file the "
                                          "container needs; repeatable."),
    update: bool = Option(False, "--update", help="Reconfigure an existing container."),
    dataset: opt.Dataset = None,
    as_json: opt.Json = False,
) -> None:
    """Register a container image in the dataset, so runs can use it and it travels along.

    Example: rr containers-add software --url dhub://python-ml:1
    """
    from .. import api  # noqa: PLC0415  start-up time

    container, commit = call(api.containers_add, name, url=url, image=image, call_fmt=call_fmt,
                             extra_input=extra_input, update=update, dataset=dataset)
    if as_json:
        render.json_line({"action": "containers-add", "status": "ok", "commit": commit,
                          **container.to_dict()})
    else:
        render.info(f"rr: container {container.name} -> {container.image} ({container.runtime})")


def containers_list(
    dataset: opt.Dataset = None,
    recursive: Annotated[bool, opt.recursive(
        "Also list the containers of installed subdatasets (named SUB/NAME).")] = False,
    contains: Optional[List[str]] = Option(
        None, "--contains", metavar="PATH",
        help="With -r: only subdatasets that contain PATH (relative to the dataset root); "
             "repeatable. Top-level containers are always listed."),
    as_json: Annotated[bool, opt.as_json("One JSON object per container.")] = False,
) -> None:
    """List the containers registered in the dataset (with -r: and in its subdatasets).

    Example: rr containers-list -r --json
    """
    from .. import api  # noqa: PLC0415  start-up time

    found = call(api.containers_list, dataset=dataset, recursive=recursive,
                 contains=contains or [])
    for c in found:
        if as_json:
            render.json_line(c.to_dict(c.parentds))
        else:
            render.out(f"{c.name} -> {c.shown_path} ({c.runtime})")


def containers_remove(
    name: str = Argument(..., help="The container to unregister."),
    remove_image: bool = Option(False, "--remove-image", help="Remove the image too."),
    dataset: opt.Dataset = None,
) -> None:
    """Unregister a container (and with --remove-image delete its image from the dataset).

    Example: rr containers-remove software --remove-image
    """
    from .. import api  # noqa: PLC0415  start-up time

    call(api.containers_remove, name, remove_image=remove_image, dataset=dataset)
    render.info(f"rr: container {name} removed")


def containers_exec(
    image: str = Argument(..., help="Path of the saved image."),
    cmd: List[str] = Argument(None, help="The command (one shell string)."),
    runtime: str = Option("docker", "--runtime", help="docker, podman, singularity or "
                                "apptainer."),
    name: Optional[str] = Option(None, "--name", help="Container name (for its "
                                       "runtime-flags config)."),
    gpus: opt.Gpus = False,
    repo_tag: Optional[str] = Option(None, "--repo-tag", help="Which image of a saved "
                                           "archive with several."),
) -> None:
    """Run one command inside a saved image; this is the call rr writes into run records.

    Example: rr containers-exec --runtime docker .datalad/environments/software/image "python3 -V"
    """
    from .. import api  # noqa: PLC0415  start-up time

    code = call(api.containers_exec, image, cmd or [], runtime=runtime, name=name, gpus=gpus,
                repo_tag=repo_tag)
    raise SystemExit(code)
