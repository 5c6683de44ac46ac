"""The container registry of a dataset: DataLad-compatible ``datalad.containers.NAME.*`` config,
images under ``.datalad/environments/NAME/image``, and wrapping a run into a container call.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import stat
import string
import sys
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from .. import config as cfgkeys
from .. import annex, gitrepo, proc, subdatasets
from ..dataset import DATALAD_CONFIG, Dataset
from ..errors import PlaceholderError, RecorderError, UsageError
from ..save import save
from . import docker, singularity

if TYPE_CHECKING:
    from ..run import RunSpec

NAME_RE = re.compile(r"^[0-9a-zA-Z-]+$")
PREFIX = cfgkeys.CONTAINERS_SECTION + "."
DEFAULT_LOCATION = ".datalad/environments"
RR_EXEC = "rr containers-exec"
DATALAD_DOCKER_ADAPTER = "datalad_container.adapters.docker"
CMDEXEC_PLACEHOLDERS = ("python", "img", "cmd", "img_dspath", "img_dirpath")
DOCKER_SCHEMES = ("dhub://", "docker://")
SINGULARITY_SCHEMES = ("shub://", "oras://", "library://")


@dataclass
class Container:
    name: str
    image: str  # relative to the dataset root, POSIX
    cmdexec: str | None = None
    extra_inputs: list[str] = field(default_factory=list)
    other: dict[str, list[str]] = field(default_factory=dict)
    # the dataset whose config registers it (a subdataset for "sub/NAME"); None: the top one
    parentds: Path | None = None
    refds: Path | None = None  # the dataset that was asked (containers-list -r)

    @property
    def shown_path(self) -> str:
        """The image path relative to the dataset that was asked."""
        if self.parentds is None or self.refds is None:
            return self.image
        return Path(os.path.relpath(self.parentds / self.image, self.refds)).as_posix()

    @property
    def runtime(self) -> str:
        fmt = self.cmdexec or ""
        match = re.search(r"--runtime[ =](\w+)", fmt)
        if match:
            return match.group(1)
        if DATALAD_DOCKER_ADAPTER in fmt:
            return "docker"
        if "singularity" in fmt or "apptainer" in fmt:
            return "singularity"
        return "custom"

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "image": self.image, "cmdexec": self.cmdexec,
                               "extra_inputs": self.extra_inputs, "runtime": self.runtime}
        if root is not None:
            out["path"] = str((self.parentds or root) / self.image)
            out["parentds"] = str(self.parentds or root)
        for k, v in self.other.items():
            out[k] = v[0] if len(v) == 1 else v
        return out


def _image_path(value: str, root: Path) -> str:
    """POSIX image path; backslash paths written on Windows by datalad-container < 1.2.5
    are read as Windows paths when they look like it (as datalad-container guesses)."""
    if "\\" in value and (value.startswith(".datalad\\environments\\") or
                          (root / value.replace("\\", "/")).exists()):
        return value.replace("\\", "/")
    return value


def list_containers(ds: Dataset) -> list[Container]:
    found: dict[str, Container] = {}
    raw: dict[str, dict[str, list[str]]] = {}
    for key, values in ds.config.values.items():
        if not key.startswith(PREFIX):
            continue
        name, _, item = key[len(PREFIX):].rpartition(".")
        if not name or not item:
            continue
        raw.setdefault(name, {})[item] = values
    for name, items in raw.items():
        if "image" not in items:
            continue
        cmdexec = items.get("cmdexec", [None])[-1]
        found[name] = Container(
            name=name, image=_image_path(items["image"][-1], ds.root), cmdexec=cmdexec,
            extra_inputs=list(items.get("extra-input", [])),
            other={k: v for k, v in items.items() if k not in ("image", "cmdexec",
                                                               "extra-input")})
    return sorted(found.values(), key=lambda c: c.name)


def _subdataset_names(ds: Dataset) -> dict[str, str]:
    """{path: gitmodule name} of the subdatasets registered in ``.gitmodules`` (every entry
    checked by :meth:`Dataset.subdatasets` first)."""
    paths = ds.subdatasets()
    if not paths:
        return {}
    names = {props["path"]: name for name, props in gitrepo.submodule_properties(ds.root).items()
             if props.get("path") in paths}
    return {p: names.get(p, p) for p in paths}


def _contains(ds: Dataset, sub: str, contains: list[Path]) -> bool:
    """Whether subdataset ``sub`` contains one of ``contains`` (or is one of them), as
    ``datalad subdatasets --contains PATH`` selects."""
    top = Path(os.path.normpath(ds.root / sub))
    for path in contains:
        if path == top or top in path.parents:
            return True
    return False


def list_all(ds: Dataset, recursive: bool = False,
             contains: list[str] | tuple[str, ...] | None = None) -> list[Container]:
    """The containers of ``ds`` and, with ``recursive``, of its installed subdatasets (named
    ``sub/NAME`` by the chain of gitmodule names, listed before the top-level ones, as
    ``datalad containers-list -r``).  ``contains`` limits the subdatasets to those that
    contain one of these paths (relative to the dataset root); top-level containers are
    always listed.  Uninstalled subdatasets are skipped."""
    out: list[Container] = []
    if recursive:
        wanted = [Path(os.path.normpath(ds.root / c)) for c in contains or ()]
        for rel, gm_name in _subdataset_names(ds).items():
            if wanted and not _contains(ds, rel, wanted):
                continue
            if not (ds.root / rel / ".git").exists():
                continue
            sub = Dataset(ds.root / rel)
            for c in list_all(sub, recursive=True):
                c.name = f"{gm_name}/{c.name}"
                c.parentds = c.parentds or sub.root
                out.append(c)
    for c in list_containers(ds):
        c.parentds = ds.root
        out.append(c)
    for c in out:
        c.refds = ds.root
    return out


def find(ds: Dataset, name: str | None) -> Container:
    """The container named ``name`` (or the only one); its image path is checked to stay
    inside the dataset that registers it before anything uses it.  ``sub/NAME`` names a
    container of subdataset ``sub``, installed on demand (as datalad-container does)."""
    c = _find(ds, name)
    holder = Dataset(c.parentds) if c.parentds else ds
    if holder.root != ds.root:
        ds.ensure_inside(holder.root, ds.root, follow_final=True, what="subdataset")
    ensure_image_inside(holder, c)
    return c


def _install_chain(ds: Dataset, names: list[str]) -> Dataset | None:
    """Install the subdatasets named by the chain of gitmodule names ``names``; the deepest
    one, or None when the chain names no registered subdataset."""
    cur = ds
    for gm_name in names:
        match = [p for p, n in _subdataset_names(cur).items() if n == gm_name]
        if not match:
            return None
        cur = subdatasets.install(cur, match[0])
    return cur


def ensure_image_inside(ds: Dataset, c: Container) -> None:
    """``datalad.containers.NAME.image`` names a place in the dataset: not absolute, no
    '..' out of it, not through a symlinked directory leading out, not in .git."""
    key = cfgkeys.named(cfgkeys.CONTAINER_IMAGE, c.name)
    if os.path.isabs(c.image):
        raise RecorderError(f"{key} must be a path inside the dataset, not an absolute path: "
                            f"{c.image}")
    try:
        ds.ensure_inside(c.image, ds.root, what=key)
    except RecorderError as exc:
        raise RecorderError(f"{key} is not a path inside the dataset: {exc.message}") from None
    if not ds.resolves_inside(c.image):  # an annexed image may lead into .git/annex only
        raise RecorderError(f"{key} is a symlink leading outside the dataset: {c.image}")


def runtime_flags(ds: Dataset, name: str) -> list[str]:
    """Machine-specific runtime flags (``datalad.containers.NAME.runtime-flags``): from git's
    own config scopes only (``git config --global/--local``).  Flags committed in
    .datalad/config would let a cloned dataset add ``-v /:/host`` or ``--privileged`` to
    every run, so they are ignored with a warning."""
    key = cfgkeys.named(cfgkeys.CONTAINER_RUNTIME_FLAGS, name)
    value = ds.config.get_local(key)
    if ds.config.committed_only(key):
        sys.stderr.write(f"rr: warning: ignoring {key} from the committed {DATALAD_CONFIG}; "
                         "runtime flags are taken from git config --global/--local only\n")
        sys.stderr.flush()
    if not value:
        return []
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise RecorderError(f"{key} cannot be split into words: {exc}") from None


def _find(ds: Dataset, name: str | None) -> Container:
    recursive = bool(name) and "/" in name  # type: ignore[operator]
    if recursive:
        parts = name.split("/")  # type: ignore[union-attr]
        if not (ds.root.joinpath(*parts[:-1]) / ".git").exists():
            deepest = _install_chain(ds, parts[:-1])
            if deepest is not None:
                found = [c for c in list_all(ds, True, [str(deepest.root)]) if c.name == name]
                if found:
                    return found[0]
    containers = list_all(ds, recursive=recursive)
    if not containers:
        raise RecorderError("no containers are registered in this dataset",
                            hint="add one with 'rr containers-add NAME --url dhub://IMAGE'")
    known = ", ".join(c.name for c in containers)
    if not name:
        if len(containers) == 1:
            return containers[0]
        raise UsageError(f"several containers are registered; choose one with -n ({known})")
    for c in containers:
        if c.name == name:
            return c
    for c in containers:  # a path to the image works too, as in datalad-container
        if os.path.normpath(ds.root / name) == os.path.normpath((c.parentds or ds.root) /
                                                                c.image):
            return c
    raise RecorderError(f"unknown container: {name}", hint=f"known containers: {known}")


# --- cmdexec formatting -----------------------------------------------------------------


def default_cmdexec(runtime: str) -> str:
    return f"{RR_EXEC} --runtime {runtime} {{img}} {{cmd}}"


def _translate(fmt: str) -> str:
    """datalad-container's Docker adapter call becomes rr's own Docker runtime."""
    if DATALAD_DOCKER_ADAPTER in fmt:
        return re.sub(r"^.*?-m\s+datalad_container\.adapters\.docker\s+run\b",
                      f"{RR_EXEC} --runtime docker", fmt)
    return fmt


def translate_recorded(command: str) -> str:
    """A command recorded by datalad-container's Docker adapter, run with rr's runtime.

    The recorded interpreter path is machine-specific (datalad-container #249) and the
    adapter may not be installed: rr runs the same image with its own Docker runtime.
    """
    match = re.match(r"^\S+ -m datalad_container\.adapters\.docker run "
                     r"((?:--\S+ \S+ )*)(\S+) (.*)$", command, re.S)
    if not match:
        return command
    options, image, rest = match.groups()
    repo_tag = re.search(r"--repo-tag (\S+)", options or "")
    tag = f" --repo-tag {repo_tag.group(1)}" if repo_tag else ""
    words = shlex.split(rest)
    return f"{RR_EXEC} --runtime docker{tag} {image} {shlex.quote(shlex.join(words))}"


def check_cmdexec(fmt: str) -> None:
    for _lit, field_name, _spec, _conv in string.Formatter().parse(fmt):
        if field_name is not None and field_name not in CMDEXEC_PLACEHOLDERS:
            raise PlaceholderError(
                f"unrecognized call-format placeholder: {{{field_name}}}",
                hint="known: " + ", ".join(CMDEXEC_PLACEHOLDERS) +
                     "; write run placeholders with double braces, e.g. {{pwd}}")


def format_call(fmt: str, *, name: str, img: str, cmd: str, img_dspath: str, img_dirpath: str,
                gpus: bool = False) -> str:
    fmt = _translate(fmt)
    check_cmdexec(fmt)
    ours = fmt.startswith(RR_EXEC)
    if ours:
        extra = f" --name {name}" + (" --gpus" if gpus else "")
        fmt = RR_EXEC + extra + fmt[len(RR_EXEC):]
    elif gpus:
        raise UsageError("--gpus needs an rr runtime call format (docker, podman, singularity); "
                         "put the GPU flags into this container's call format instead")
    # braces of the user's command must survive the run-time placeholder expansion as they are
    return fmt.format(python=shlex.quote(sys.executable), img=img,
                      cmd=shlex.quote(cmd) if ours else cmd, img_dspath=img_dspath,
                      img_dirpath=img_dirpath)


# --- digests ----------------------------------------------------------------------------


def image_digest(full: Path) -> str | None:
    """An identifier of the image bits: the config digest of a saved Docker image, the annex
    key (or sha256) of a single-file image.  None when the content is not here."""
    if full.is_dir():
        try:
            return docker.config_digest(full)
        except RecorderError:
            return None
    if full.is_symlink():
        target = os.readlink(full)
        if "/annex/objects/" in target:
            return os.path.basename(target)
    if full.is_file():
        h = hashlib.sha256()
        with open(full, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest()
    return None


# --- wrapping a run ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerCall:
    """A run wrapped into a container call: what :func:`run.with_container` puts into the
    run's spec (the call as its command, the image as an extra input, the record's "rr"
    object naming the container and its image digest)."""

    container: Container
    cmd: str
    extra_inputs: tuple[str, ...]
    env: dict[str, str]
    rr_info: dict[str, Any]
    digest_pending: bool

    @property
    def runtime(self) -> str:
        return self.container.runtime


def wrap_spec(ds: Dataset, spec: RunSpec, name: str | None, gpus: bool = False
              ) -> ContainerCall:
    """The container call of a run (the spec itself is not changed)."""
    c = find(ds, name)
    holder = c.parentds or ds.root  # the (sub)dataset that registers the container
    full = holder / c.image
    img = os.path.relpath(full, spec.pwd)
    img_dspath = os.path.relpath(holder, spec.pwd)
    img_dirpath = os.path.dirname(img) or "."
    fmt = c.cmdexec or _guess_cmdexec(full)
    cmd = format_call(fmt, name=c.name, img=img, cmd=spec.cmd, img_dspath=img_dspath,
                      img_dirpath=img_dirpath, gpus=gpus)
    extra = []
    for value in c.extra_inputs:
        try:
            extra.append(value.format(img_dspath=img_dspath, img_dirpath=img_dirpath))
        except (KeyError, IndexError, ValueError) as exc:
            raise PlaceholderError(f"extra input {value!r} of container {c.name} has an "
                                   f"unknown placeholder: {exc}") from None
        try:  # a (sub)dataset's config names no input outside the dataset
            ds.ensure_inside(extra[-1], spec.pwd, what=f"extra input of container {c.name}")
        except RecorderError as exc:
            raise RecorderError(f"{cfgkeys.named(cfgkeys.CONTAINER_EXTRA_INPUT, c.name)} {value!r} "
                                "is not a path inside "
                                f"the dataset: {exc.message}") from None
    digest = image_digest(full)
    return ContainerCall(
        c, cmd, tuple([img] + extra + [x for x in spec.extra_inputs if x != img]),
        dict(spec.env, DATALAD_CONTAINER_NAME=c.name),
        dict(spec.rr_info, container={"name": c.name, "image": ds.relpath(full, ds.root),
                                      "digest": digest}),
        digest is None)


def _guess_cmdexec(full: Path) -> str:
    if full.is_dir() or (full / "manifest.json").exists():
        return default_cmdexec("docker")
    if singularity.looks_like_sif(full) or full.suffix in (".sif", ".simg"):
        return default_cmdexec("singularity")
    return "{img} {cmd}"


def prepare_rerun(ds: Dataset, spec: RunSpec, rr_info: dict[str, Any]) -> RunSpec:
    """Before replaying a container run: the spec that notes when the image changed since
    the record."""
    info = rr_info.get("container")
    # a record may name its container by a string only (no image to check), or hold some
    # other type a validated record never has: nothing to prepare either way
    if not isinstance(info, dict) or not isinstance(info.get("image"), str):
        return spec
    image = info["image"]
    if not image:
        return spec
    _ensure_recorded_image_inside(ds, image)
    return replace(spec, rr_info=dict(spec.rr_info, container=dict(info)),
                   env=dict(spec.env, DATALAD_CONTAINER_NAME=info.get("name", "")),
                   digest_pending=True, recorded_digest=info.get("digest"))


def refresh_digest(ds: Dataset, spec: RunSpec) -> RunSpec:
    """After the image content was fetched: the spec with the digest recorded and a change
    noted."""
    info = spec.rr_info.get("container")
    if not isinstance(info, dict) or not spec.digest_pending:
        return spec
    _ensure_recorded_image_inside(ds, info["image"])
    current = image_digest(ds.root / info["image"])
    recorded = spec.recorded_digest
    notes = list(spec.notes)
    if recorded and current and recorded != current:
        notes.append(f"container image {info.get('name')} changed: {recorded[:19]} -> "
                     f"{current[:19]}")
    return replace(spec, rr_info=dict(spec.rr_info, container=dict(info, digest=current)),
                   notes=notes)


def _ensure_recorded_image_inside(ds: Dataset, image: Any) -> None:
    """A container image named by a run record is read (hashed) only inside the dataset."""
    if not isinstance(image, str) or os.path.isabs(image):
        raise RecorderError(f"the run record names a container image outside the dataset: "
                            f"{image!r}")
    try:
        ds.ensure_inside(image, ds.root, what="recorded container image")
        if not ds.resolves_inside(image):
            raise RecorderError(f"it is a symlink leading outside the dataset: {image}")
    except RecorderError as exc:
        raise RecorderError(f"the run record's container image is not inside the dataset: "
                            f"{exc.message}") from None


# --- add / remove -----------------------------------------------------------------------


def _scheme(url: str) -> str | None:
    for s in DOCKER_SCHEMES + SINGULARITY_SCHEMES + ("podman://",):
        if url.startswith(s):
            return s
    return None


def add(ds: Dataset, name: str, *, url: str | None = None, image: str | None = None,
        call_fmt: str | None = None, extra_inputs: tuple[str, ...] | list[str] = (),
        update: bool = False) -> tuple[Container, str]:
    """Register (or with ``update`` re-register) a container; returns it and the commit."""
    if not NAME_RE.match(name):
        raise UsageError(f"container names can only contain letters, digits and '-': {name!r}")
    existing = {c.name: c for c in list_containers(ds)}.get(name)
    if existing and not update:
        raise RecorderError(f"container {name!r} already exists",
                            hint="use --update to reconfigure it")
    if update and existing is None:
        update = False
    if update and not (url or image or call_fmt or extra_inputs):
        raise UsageError("nothing to update: give --url, --image, --call-fmt or --extra-input")
    if call_fmt:
        check_cmdexec(call_fmt)
    for value in extra_inputs:
        try:
            value.format(img_dspath="", img_dirpath="")
        except (KeyError, IndexError, ValueError) as exc:
            raise PlaceholderError(f"--extra-input {value!r} has an unknown placeholder: {exc}; "
                                   "known: img_dirpath, img_dspath") from None
    scheme = _scheme(url) if url else None
    local_source: Path | None = None
    if url and scheme is None:
        local_source = _local_source(url)
        if not local_source.exists():
            raise UsageError(f"unsupported image URL or missing file: {url}",
                             hint="use dhub://IMAGE or docker://IMAGE (local Docker engine), "
                                  "podman://IMAGE, shub://, oras://, library:// or a .sif path")
        _ensure_plain_files(local_source)  # before anything opens it
    # the location is checked as a config value: a refused one names its key
    rel_image = image or (existing.image if existing and not url else
                          f"{ds.config_path(cfgkeys.CONTAINERS_LOCATION, DEFAULT_LOCATION)}"
                          f"/{name}/image")
    full = Path(os.path.normpath(ds.root / rel_image))
    rel_image = ds.relpath(full)
    if not url and not full.exists() and not full.is_symlink():
        raise UsageError(f"no image at {rel_image}", hint="give --url to obtain it")
    if not url and full.exists():
        _ensure_plain_files(full)
    runtime = _runtime_for(url, scheme, local_source)
    # everything checked: now change the dataset, and put it back on any failure
    config_file = ds.root / DATALAD_CONFIG
    config_before = config_file.read_bytes() if config_file.exists() else None
    created_image = False
    try:
        if url:
            if full.exists() or full.is_symlink():
                _remove_path(ds, full)
            full.parent.mkdir(parents=True, exist_ok=True)
            created_image = True
            _obtain_image(full, url, scheme, runtime, local_source)
        fmt = call_fmt or (existing.cmdexec if existing and not url else None) or \
            (default_cmdexec(runtime) if runtime else None)
        cfg = str(config_file)
        gitrepo.config_set(ds.root, cfgkeys.named(cfgkeys.CONTAINER_IMAGE, name), rel_image,
                           file=cfg)
        if fmt:
            gitrepo.config_set(ds.root, cfgkeys.named(cfgkeys.CONTAINER_CMDEXEC, name), fmt,
                               file=cfg)
        if extra_inputs:  # on --update without --extra-input the old ones are kept
            gitrepo.config_unset_all(ds.root, cfgkeys.named(cfgkeys.CONTAINER_EXTRA_INPUT, name),
                                     file=cfg)
            for value in extra_inputs:
                gitrepo.config_set(ds.root, cfgkeys.named(cfgkeys.CONTAINER_EXTRA_INPUT, name),
                                   value, file=cfg,
                                   add=True)
        verb = "Update" if (update and url) else "Configure"
        result = save(ds, [rel_image, DATALAD_CONFIG], base=ds.root,
                      message=f"[DATALAD] {verb} containerized environment '{name}'")
        _register_file_url(ds, rel_image, url, local_source)
    except BaseException:
        if config_before is not None:
            config_file.write_bytes(config_before)
        if created_image and (full.exists() or full.is_symlink()):
            _remove_path(ds, full)
        raise
    ds.reload_config()
    return find(ds, name), result.commit or ""


def _runtime_for(url: str | None, scheme: str | None, local_source: Path | None) -> str | None:
    """The runtime an image URL or file needs, checked to be there (a Docker image pulled
    into the local engine first); None when the image does not say."""
    if url and (scheme in DOCKER_SCHEMES or scheme == "podman://"):
        runtime = "podman" if scheme == "podman://" else "docker"
        docker.require_engine(runtime)
        docker.ensure_local_image(runtime, url[len(scheme or ""):])
        return runtime
    if local_source and _docker_archive(local_source):
        return "docker"  # a `docker save` archive or its extracted directory
    if scheme in SINGULARITY_SCHEMES or (local_source and (
            singularity.looks_like_sif(local_source) or local_source.suffix in (".sif", ".simg"))):
        if scheme:
            singularity.binary()  # fails early when no runtime can pull
        return "singularity"
    return None


def _obtain_image(full: Path, url: str, scheme: str | None, runtime: str | None,
                  local_source: Path | None) -> None:
    """The image from ``url`` saved at ``full`` (inside the dataset)."""
    if runtime in ("docker", "podman") and scheme:
        docker.save(runtime, url[len(scheme):], full)
    elif scheme:
        proc.capture(singularity.pull_argv(singularity.binary(), full, url),
                     stderr_to_terminal=True)
    else:
        assert local_source is not None
        _copy_local(local_source, full)


def _local_source(url: str) -> Path:
    """The local file a URL names: a plain path (relative to the working directory) or a
    ``file://`` URL (copied into the dataset, as datalad-container does with local images)."""
    if url.startswith("file:"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise UsageError(f"a file:// URL must name a local file, not one on host "
                             f"{parsed.netloc!r}: {url}")
        return Path(unquote(parsed.path)).absolute()
    return Path(url).expanduser().absolute()


def _register_file_url(ds: Dataset, rel_image: str, url: str | None,
                       local_source: Path | None) -> None:
    """A ``file://`` image file is registered with git-annex under its URL, as DataLad's
    containers-add does: a clone can get the image from it (a directory image, or one kept
    in git, has no key to register)."""
    if not url or not url.startswith("file:") or local_source is None or \
            not local_source.is_file() or not ds.is_annex:
        return
    key = annex.lookupkey(ds.root, rel_image)
    if key:
        annex.registerurls(ds.root, [(key, url if url.startswith("file://")
                                      else local_source.as_uri())])


def _ensure_plain_files(source: Path) -> None:
    """A local image is a regular file or a directory of them: a FIFO would block rr
    forever, a device (``/dev/zero``) never end, a socket not open; refused before any of
    them is opened, also when a symlink (or a directory's entry) leads to one."""
    def special(path: str) -> str | None:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            return f"unreadable ({exc.strerror})"
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            return None
        return ("a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket"
                if stat.S_ISSOCK(mode) else "not a regular file")

    problem = special(str(source))
    bad = str(source)
    if problem is None and source.is_dir():
        seen: set[tuple[int, int]] = set()
        for dirpath, dirs, files in os.walk(source, followlinks=True):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen:
                problem, bad = "a directory that contains itself (a symlink loop)", dirpath
                break
            seen.add((st.st_dev, st.st_ino))
            for name in files + dirs:
                problem = special(os.path.join(dirpath, name))
                if problem is not None:
                    bad = os.path.join(dirpath, name)
                    break
            if problem is not None:
                break
    if problem is not None:
        raise UsageError(f"the image {bad} is {problem}, not a regular file",
                         hint="give the path of an image file (or of a directory of files)")


def _docker_archive(source: Path) -> bool:
    """Whether ``source`` is a saved Docker image: a `docker save` tar or its extraction."""
    if source.is_dir():
        return (source / "manifest.json").is_file()
    try:
        with tarfile.open(source) as tar:
            return any(m.name.lstrip("./") == "manifest.json" for m in tar)
    except (OSError, tarfile.TarError):
        return False


def _copy_local(source: Path, full: Path) -> None:
    """Copy a local image into the dataset; a `docker save` archive is extracted (what the
    Docker runtime loads from), a directory copied as it is."""
    if source.is_dir():
        shutil.copytree(source, full, symlinks=False)
    elif _docker_archive(source):
        full.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(source) as tar:
                # the data filter refuses absolute names, '..', links leading out, devices
                tar.extractall(full, filter="data")
        except tarfile.TarError as exc:
            raise RecorderError(f"unsafe or unreadable image archive {source}: {exc}") from None
    else:
        shutil.copy2(source, full)


def _remove_path(ds: Dataset, full: Path) -> None:
    if full.is_dir() and not full.is_symlink():
        for dirpath, _dirs, files in os.walk(full):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(full)
    else:
        full.unlink()


def remove(ds: Dataset, name: str, remove_image: bool = False) -> str | None:
    c = {x.name: x for x in list_containers(ds)}.get(name)
    if c is None:
        raise RecorderError(f"unknown container: {name}")
    if remove_image:
        ensure_image_inside(ds, c)  # never delete what a hostile image path points at
    cfg = str(ds.root / DATALAD_CONFIG)
    if not gitrepo.config_remove_section(ds.root, f"{cfgkeys.CONTAINERS_SECTION}.{name}",
                                         file=cfg):
        raise RecorderError(f"container {name} is not configured in {DATALAD_CONFIG} (only in "
                            "git's own config); remove it there with git config")
    paths = [DATALAD_CONFIG]
    full = ds.root / c.image
    if remove_image and (full.exists() or full.is_symlink()):
        _remove_path(ds, full)
        paths.append(c.image)
    result = save(ds, paths, base=ds.root, message=f"[DATALAD] Remove container {name}")
    ds.reload_config()
    return result.commit
