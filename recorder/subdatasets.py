"""Subdatasets: where a registered one can be installed from and installing it (also for the
paths a command reaches into), which are installed, listing them (``rr subdatasets``),
splitting paths by the dataset holding them, and fetching content in whichever (sub)dataset
holds it."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from . import annex, gitrepo
from . import config as cfgkeys
from .dataset import Dataset
from .errors import CommandError, RecorderError, UsageError
from .lock import deferred_signals
from .recursion import check_recursion, deeper, may_descend
from .results import Event, EventKind, OnEvent, Result

_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^[^/]+@[^/:]+:|^[^/:]+:[^/]")


def is_url(source: str) -> bool:
    return bool(_URL_RE.match(source))


def init_annex_if_needed(ds: Dataset) -> None:
    if ds.is_annex or (ds.root / ".noannex").exists():
        return
    if annex.has_annex_branch(ds.root):
        annex.init(ds.root)
        ds.reload_config()


# --- clone --reckless (DataLad's reckless modes) ------------------------------------------
# auto: content hardlinked from a local origin (annex.hardlink), this repository untrusted;
# shared-MODE: git init --shared=MODE (group-writable repository and annex), untrusted;
# ephemeral: .git/annex is a symlink to the (local, non-bare) origin's, this repository is
# private (annex.private) and declared dead: the clone uses the origin's content without
# copying it and is never counted as a copy.  The mode is kept in .git/config
# (datalad.clone.reckless) and subdatasets installed later are set up the same way.

_SHARED_MODE = re.compile(r"^shared-(false|true|umask|group|all|world|everybody|0[0-7]{3})$")


def check_reckless(mode: str | None) -> str | None:
    """``mode`` if it is one of DataLad's reckless modes, else a UsageError."""
    if mode is None or mode in ("auto", "ephemeral") or _SHARED_MODE.match(mode):
        return mode
    raise UsageError(f"--reckless must be auto, ephemeral or shared-MODE (MODE as git init "
                     f"--shared takes it: group, all, umask, 0660, ...), not {mode!r}")


def inherited_reckless(ds: Dataset) -> str | None:
    """The reckless mode ``ds`` was cloned with (its .git/config, never the committed
    .datalad/config: a dataset does not choose how it is set up on this machine)."""
    mode = ds.config.get_local(cfgkeys.CLONE_RECKLESS)
    try:
        return check_reckless(mode or None)
    except UsageError:
        raise RecorderError(f"{cfgkeys.CLONE_RECKLESS} in {ds.root} is not a reckless mode: "
                            f"{mode!r}", hint=f"git -C {ds.root} config --unset "
                            f"{cfgkeys.CLONE_RECKLESS}") from None


def local_path(source: str) -> Path | None:
    """The directory a local source names (a path, or a file:// URL on this host)."""
    if source.startswith("file://"):
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parts.path))
    if is_url(source):
        return None
    return Path(os.path.abspath(os.path.expanduser(source)))


def ephemeral_annex(source: str) -> tuple[Path | None, str]:
    """The annex directory an ephemeral clone of ``source`` links to, or None and why it
    cannot be one: only a local, non-bare repository (a bare one keeps its objects in
    another layout, hashdirlower: the clone's links would not find them).  A repository
    without git-annex at all can be: (None, "") - there is nothing to link, and its
    subdatasets installed later are ephemeral."""
    path = local_path(source)
    if path is None:
        return None, "it is not local (an ephemeral clone links to its origin's annex)"
    git = path / ".git"
    if git.is_file():  # "gitdir: PATH"
        text = git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            git = Path(os.path.normpath(path / text[len("gitdir:"):].strip()))
    if not git.is_dir():
        if (path / "HEAD").is_file() and (path / "objects").is_dir():
            return None, ("it is a bare repository (its annex has another layout); clone "
                          "a non-bare clone of it")
        return None, "it is not a git repository with a work tree"
    annex_dir = git / "annex"
    if not annex_dir.is_dir():
        if annex.has_annex_branch(path):
            return None, f"git-annex is not initialised there (git -C {path} annex init)"
        return None, ""
    return Path(os.path.realpath(annex_dir)), ""


def prepare_reckless(root: Path, mode: str | None) -> None:
    """What must be set before git-annex is initialised in a fresh clone at ``root``."""
    if mode is None:
        return
    if mode.startswith("shared-"):
        gitrepo.init_shared(root, mode[len("shared-"):])
    elif mode == "auto":
        gitrepo.config_set(root, cfgkeys.ANNEX_HARDLINK, "true")
    elif mode == "ephemeral":
        gitrepo.config_set(root, cfgkeys.ANNEX_PRIVATE, "true")


def finish_reckless(sub: Dataset, mode: str | None, origin_annex: Path | None) -> None:
    """After git-annex is initialised in the fresh clone ``sub``: trust, the link to the
    origin's annex (``ephemeral``), and the mode recorded for subdatasets installed later."""
    if mode is None:
        return
    if sub.is_annex:
        if mode == "ephemeral":
            gitrepo.config_set(sub.root, cfgkeys.remote_key("origin", "annex-ignore"), "true")
            if origin_annex is not None:
                _link_annex(sub, origin_annex)
            # after the link: annex.private keeps this in the (now shared) private journal,
            # which a link made afterwards would have thrown away (DataLad's order loses it)
            annex.set_trust(sub.root, "dead")
        else:
            annex.set_trust(sub.root, "untrust")
    gitrepo.config_set(sub.root, cfgkeys.CLONE_RECKLESS, mode)
    sub.reload_config()


def _link_annex(sub: Dataset, origin_annex: Path) -> None:
    """Replace the fresh clone's own .git/annex (nothing in it but what git annex init
    wrote) by a symlink to the origin's, as DataLad's ephemeral clones have it."""
    own = sub.git_dir / "annex"
    objects = own / "objects"
    if objects.is_dir() and any(objects.iterdir()):  # never: content was not got yet
        raise RecorderError(f"{own} already holds content; it was not replaced by a link")
    with deferred_signals():  # Ctrl-C waits: never a clone left without an annex
        if own.is_symlink():
            own.unlink()
        elif own.exists():
            rmtree(own)
        own.symlink_to(origin_annex, target_is_directory=True)


def linked_annex(root: Path) -> Path | None:
    """Where the annex of the repository at ``root`` really is when it is another
    repository's (an ephemeral clone: .git/annex or .git/annex/objects a symlink); None
    when it is its own.  Content there is the other repository's: never dropped from here."""
    git = root / ".git"
    if git.is_file():
        try:
            text = git.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None
        if not text.startswith("gitdir:"):
            return None
        git = Path(os.path.normpath(root / text[len("gitdir:"):].strip()))
    for part in (git / "annex", git / "annex" / "objects"):
        if part.is_symlink():
            return Path(os.path.realpath(part))
    return None


# --- where a registered subdataset can be installed from ----------------------------------
# A relative URL in .gitmodules ("../imagenette") is relative to the superdataset's sibling
# (git's rule for relative submodule URLs), or to the superdataset itself when it has none.
# rr records the source of `rr clone -d . ../imagenette data/raw` that way, so that it still
# works when the superdataset and its inputs are moved or cloned side by side.  Installing
# tries the places DataLad's `get` tries, in DataLad's order (distribution/get.py,
# _get_flexible_source_candidates_for_submodule): the recorded URL resolved against each
# sibling that has the superdataset's commit, that sibling's URL + the subdataset's path
# (where `push` put it beside the superdataset), the recorded URL resolved against the
# superdataset's own location -- and last, because DataLad itself records the subdataset's
# origin relative to the subdataset's place (url = ../../../imagenette for data/raw), the
# recorded URL resolved against the subdataset's place on the sibling and here.  A source
# that cannot be cloned or lacks the recorded commit is passed over for the next one.


def recorded_url(source: str, resolved: str, superds_root: Path) -> str:
    """What .gitmodules records for a subdataset cloned from ``source`` (as given;
    ``resolved`` is its absolute form): a relative local path becomes a path relative to the
    superdataset ("../imagenette"), which git and DataLad resolve against the superdataset's
    sibling or location, so it survives moving or cloning the two side by side; URLs and
    absolute paths are kept as given."""
    if is_url(source) or os.path.isabs(source):
        return resolved
    rel = Path(os.path.relpath(resolved, superds_root)).as_posix()
    return rel if rel == ".." or rel.startswith("../") else f"./{rel}"


class Source(NamedTuple):
    url: str
    why: str


def _is_relative(url: str) -> bool:
    # git reads only ./ and ../ as relative; DataLad any path that is not absolute
    return bool(url) and not is_url(url) and not os.path.isabs(url)


def _join(base: str, rel: str, root: Path) -> str:
    """``rel`` (a relative path or URL) resolved against ``base`` (a URL, host:path or a
    path; a relative path is relative to ``root``), '..' steps applied.  A base ending in
    /.git names the repository beside it, as DataLad takes it."""
    base = base.rstrip("/")
    if base.endswith("/.git"):
        base = base[:-len("/.git")]
    if "://" in base:
        parts = urlsplit(base)
        path = posixpath.normpath(posixpath.join(parts.path or "/", rel))
        return urlunsplit(parts._replace(path=path))
    if is_url(base):  # host:path, as scp and git take it
        host, _, path = base.partition(":")
        return f"{host}:{posixpath.normpath(posixpath.join(path, rel))}"
    return os.path.normpath(os.path.join(root, base, rel))


def sources(ds: Dataset, rel: str, url: str) -> list[Source]:
    """Where the registered subdataset ``rel`` (recorded URL ``url``) can be installed from,
    in the order to try them (see above)."""
    remotes = gitrepo.remotes(ds.root)
    names: list[str] = []
    tracking = gitrepo.tracking_remote(ds.root) if remotes else None
    if tracking in remotes:
        names.append(tracking)
    last = gitrepo.last_commit_touching(ds.root, rel) if remotes else None
    if last:
        names += [n for n in gitrepo.remotes_containing(ds.root, last) if n not in names]
    if not names and "origin" in remotes:
        names.append("origin")
    out: list[Source] = []
    for name in names:
        if url and _is_relative(url):
            out.append(Source(_join(remotes[name], url, ds.root),
                              f"the recorded {url}, relative to the sibling {name}"))
        elif url:
            out.append(Source(url, "the recorded source"))
    for name in names:
        out.append(Source(_join(remotes[name], rel, ds.root),
                          f"beside the superdataset on its sibling {name}"))
    if url and _is_relative(url):
        out.append(Source(os.path.normpath(ds.root / url),
                          f"the recorded {url}, relative to the superdataset"))
        for name in names:
            out.append(Source(_join(remotes[name], f"{rel}/{url}", ds.root),
                              f"the recorded {url}, relative to the subdataset's place on "
                              f"the sibling {name}"))
        out.append(Source(os.path.normpath(ds.root / rel / url),
                          f"the recorded {url}, relative to the subdataset's place"))
    elif url:
        out.append(Source(url, "the recorded source"))
    seen: set[str] = set()
    unique = []
    for src in out:
        if src.url in seen or src.url == str(ds.root / rel) or \
                gitrepo.bad_submodule_url(src.url):
            continue
        seen.add(src.url)
        unique.append(src)
    return unique


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def install(ds: Dataset, rel: str, *, say: Callable[[str], None] | None = None,
            reckless: str | None = None) -> Dataset:
    """Install the registered subdataset at ``rel``: clone it from the first of its
    :func:`sources` that has the recorded commit, and check that commit out.  Which source
    was used is said on stderr (``say``).  rr clones itself rather than `git submodule
    update`, which refuses local paths since git 2.38 (protocol.file.allow).  An installed
    subdataset is returned as it is (its origin mended when it moved: mend_moved_origin).
    The clone is set up in the ``reckless`` mode, by default the one ``ds`` was cloned with
    (DataLad's inheritance); an ephemeral one only from a local source."""
    full = ds.root / rel
    if (full / ".git").exists():
        sub = Dataset(full)
        mend_moved_origin(ds, rel, sub, say)
        return sub
    entry = gitmodules(ds).get(rel)
    if entry is None:
        raise RecorderError(f"not a registered subdataset: {rel}")
    if full.is_dir() and any(full.iterdir()):
        raise RecorderError(f"cannot install subdataset {rel}: its directory is not empty "
                            "(and not a dataset)", hint=f"move the files in {rel} aside")
    url = entry.get("url", "")
    sha = gitrepo.gitlink(ds.root, rel)
    shared = _from_main_worktree(ds, rel, full, sha)
    if shared is not None:
        (say or _say)(f"rr: installed subdataset {rel} as a worktree of {shared} (sharing its "
                      "annex)")
        return Dataset(full)
    mode = check_reckless(reckless) if reckless is not None else inherited_reckless(ds)
    passed: list[str] = []
    used: Source | None = None
    origin_annex: Path | None = None
    full.mkdir(parents=True, exist_ok=True)
    for src in sources(ds, rel, url):
        if mode == "ephemeral":
            origin_annex, why = ephemeral_annex(src.url)
            if why:
                passed.append(f"{src.url} (ephemeral: {why})")
                continue
        problem = _clone_at(src.url, full, ds.root, sha)
        if problem is None:
            used = src
            break
        passed.append(f"{src.url} ({problem})")
    if used is None:
        tried = "; ".join(passed) or "no source is recorded"
        raise RecorderError(f"cannot install subdataset {rel}: {tried}",
                            hint="push the subdataset beside the superdataset on its sibling, "
                                 f"or fix its URL: git config -f .gitmodules "
                                 f"submodule.{entry['name']}.url URL")
    (say or _say)(f"rr: installed subdataset {rel} from {used.url} ({used.why})" +
                  (f"; passed over: {'; '.join(passed)}" if passed else ""))
    gitrepo.register_submodule(ds.root, entry["name"], used.url)
    sub = Dataset(full)
    prepare_reckless(full, mode)
    init_annex_if_needed(sub)
    finish_reckless(sub, mode, origin_annex)
    return sub


def mend_moved_origin(ds: Dataset, rel: str, sub: Dataset,
                      say: Callable[[str], None] | None = None) -> None:
    """An installed subdataset whose ``origin`` is an absolute local path that is gone (the
    project directory was moved, the clone made from ``../src``) gets the first source a
    fresh install would use in its place, the recorded relative URL resolved from here
    (DataLad's fallback): its content can be got again.  Nothing changes otherwise."""
    url = gitrepo.remotes(sub.root).get("origin")
    if not url or is_url(url) or not os.path.isabs(url) or os.path.exists(url):
        return
    entry = gitmodules(ds).get(rel)
    recorded = (entry or {}).get("url", "")
    if not _is_relative(recorded):
        return
    for src in sources(ds, rel, recorded):
        if is_url(src.url) or not os.path.isdir(src.url) or \
                os.path.realpath(src.url) == os.path.realpath(sub.root):
            continue
        gitrepo.config_set(sub.root, cfgkeys.remote_key("origin", "url"), src.url)
        (say or _say)(f"rr: the origin of subdataset {rel} ({url}) is gone; it is now "
                      f"{src.url} ({src.why})")
        return


def _from_main_worktree(ds: Dataset, rel: str, full: Path, sha: str | None) -> Path | None:
    """In a linked worktree of the dataset (an array job's), the subdataset as a linked
    worktree of the one installed in the main worktree, at the recorded commit: nothing is
    cloned or copied, its annexed content is there.  None when that cannot be (not a linked
    worktree, not installed there, the commit not there)."""
    main = gitrepo.main_worktree(ds.root)
    if main is None or sha is None:
        return None
    there = main / rel
    if not (there / ".git").exists() or gitrepo.resolve_commit(there, sha) is None:
        return None
    gitrepo.worktree_prune(there)  # the worktrees of earlier jobs, removed with theirs
    full.mkdir(parents=True, exist_ok=True)
    try:
        gitrepo.worktree_add(there, full, sha)
    except CommandError:
        _empty(full)
        return None
    return there


def _clone_at(source: str, full: Path, root: Path, sha: str | None) -> str | None:
    """Clone ``source`` into the empty directory ``full`` and check out ``sha``; what was
    wrong (the clone removed again) or None."""
    if not is_url(source) and not os.path.exists(source):
        return "does not exist"
    try:
        gitrepo.clone(source, full, cwd=root)
    except CommandError as exc:
        _empty(full)
        return exc.message.split(": ", 1)[-1] or "cannot be cloned"
    if sha and gitrepo.head_sha(full) != sha:
        # a commit on none of the source's branches: asked for by its id
        if gitrepo.resolve_commit(full, sha) is None and \
                not gitrepo.fetch_commit(full, "origin", sha):
            _empty(full)
            return f"lacks the recorded commit {sha[:10]}"
        gitrepo.checkout(full, sha, detach=True)
    return None


def _empty(directory: Path) -> None:
    """Remove what a failed clone left in ``directory`` (inside the dataset, made here)."""
    for child in list(directory.iterdir()) if directory.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            rmtree(child)
        else:
            child.unlink()


def rmtree(path: Path) -> None:
    """shutil.rmtree that also removes git-annex's write-protected object directories."""
    def _writable(func: Callable, name: str, _exc: object) -> None:
        parent = os.path.dirname(name)
        os.chmod(parent, 0o700)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, 0o700)
        func(name)

    shutil.rmtree(path, onerror=_writable)


# --- what is registered -----------------------------------------------------------------


def gitmodules(ds: Dataset) -> dict[str, dict[str, str]]:
    """{path: properties} of the subdatasets in .gitmodules (``name``, ``url``,
    ``datalad-id``, ``datalad-url``, ...), every entry checked first
    (:meth:`Dataset.subdatasets`)."""
    checked = ds.subdatasets()
    if not checked:
        return {}
    props = gitrepo.submodule_properties(ds.root)
    out: dict[str, dict[str, str]] = {}
    for name, entry in props.items():
        if entry.get("path") in checked:
            out[entry["path"]] = {**entry, "name": name}
    return out


def installed(ds: Dataset, rel: str) -> bool:
    return (ds.root / rel / ".git").exists()


def installed_paths(root: Path) -> list[str]:
    """The installed subdatasets of the repository at ``root`` (entries of .gitmodules,
    checked by :func:`gitrepo.submodule_paths`, whose checkout is there)."""
    return [os.path.normpath(rel) for rel in gitrepo.submodule_paths(root)
            if (root / rel / ".git").exists()]


def install_for_specs(ds: Dataset, pwd: Path, specs: Iterable[str]) -> None:
    """Install uninstalled subdatasets that input/output globs reach into (recursively)."""
    subs = ds.subdatasets()
    if not subs:
        return
    patterns = []
    for spec in specs:
        if spec == ".":
            continue
        full = spec if os.path.isabs(spec) else os.path.normpath(pwd / spec)
        try:
            patterns.append(Path(os.path.relpath(full, ds.root)).parts)
        except ValueError:
            continue
    for sub in subs:
        sub_parts = Path(sub).parts
        for parts in patterns:
            if len(parts) > len(sub_parts) and all(
                    fnmatch.fnmatchcase(s, p) for s, p in zip(sub_parts, parts)):
                child = install(ds, sub)
                install_for_specs(child, pwd, specs)
                break


def split_by_dataset(ds: Dataset, root_paths: Sequence[str]) -> dict[str, list[str]]:
    """Group dataset-relative paths by the (installed) subdataset holding them ('' = ds)."""
    subs = sorted(ds.subdatasets(), key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    for p in root_paths:
        owner = ""
        for sub in subs:
            if p == sub or p.startswith(sub + "/"):
                owner = sub
                break
        groups.setdefault(owner, []).append(p)
    return groups


def fetch(ds: Dataset, root_paths: Sequence[str],
          on_event: OnEvent | None = None, jobs: int | None = None, prefix: str = "",
          no_data: bool = False, source: str | None = None,
          reckless: str | None = None) -> None:
    """Fetch annexed content of ``root_paths`` in whichever (sub)dataset holds them
    (``no_data``: only install the subdatasets they are in; ``source``: only from the
    sibling of that name, which each dataset content is got in must have; ``reckless``: the
    subdatasets installed on the way set up so, see :func:`install`);
    ``on_event`` gets a FILE event per file transferred (fields: git-annex's JSON record).
    A path that the installed subdataset does not have is an error (``prefix``: where ``ds``
    is in the dataset the user named, for the message)."""
    for owner, paths in split_by_dataset(ds, root_paths).items():
        if owner:
            sub = install(ds, owner, reckless=reckless)
            inner = ["." if p == owner else p[len(owner) + 1:] for p in paths]
            for path, rel in zip(paths, inner):
                if rel != "." and not os.path.lexists(sub.root / rel) \
                        and not _registered_below(sub, rel):
                    raise RecorderError(f"path does not exist: {prefix}{path}")
            fetch(sub, inner, on_event, jobs, f"{prefix}{owner}/", no_data, source, reckless)
            continue
        if not ds.is_annex or no_data:
            continue
        if "." in paths:
            missing = ["."]
        else:
            missing = annex.missing_content(ds.root, paths)
        if missing:
            if source is not None:
                ensure_sibling(ds, source, prefix)
            # closed at once when the consumer is interrupted between two records: the
            # git annex get stops then, not when the generator is collected
            with contextlib.closing(annex.iter_get(ds.root, missing, jobs, source)) as records:
                for rec in records:
                    if on_event is not None:
                        on_event(Event(EventKind.FILE, f"got {rec.get('file', '')}", rec))
            if source is not None:
                # git annex get --from passes over, without a word, what it does not know
                # the remote to have: success only for what was got
                absent = _absent_files(ds, missing)
                if absent:
                    more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
                    raise RecorderError(f"{source} did not provide the content of "
                                        f"{prefix}{absent[0]}{more}",
                                        hint=f"rr get without -s tries every place it is "
                                             f"known to be (git annex whereis {absent[0]})")


def _absent_files(ds: Dataset, rels: Sequence[str]) -> list[str]:
    """The locked annexed files at or under ``rels`` (not in subdatasets) whose content is
    not here."""
    out: list[str] = []
    for rel in rels:
        full = ds.root / rel
        if full.is_symlink() or not full.is_dir():
            if annex.missing_content(ds.root, [rel]):
                out.append(rel)
            continue
        for dirpath, dirnames, filenames in os.walk(full):
            dirnames[:] = sorted(d for d in dirnames if d != ".git" and
                                 not os.path.lexists(os.path.join(dirpath, d, ".git")))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.is_symlink() and not path.exists() and \
                        annex.annex_objects_marker(os.readlink(path)):
                    out.append(path.relative_to(ds.root).as_posix())
    return out


def ensure_sibling(ds: Dataset, name: str, prefix: str = "") -> None:
    """``name`` is a sibling of ``ds`` (a git remote or a git-annex special remote)."""
    known = sorted({parts[0] for key, _v in gitrepo.config_list(ds.root)
                    if (parts := cfgkeys.key_parts(key, "remote"))})
    if name in known:
        return
    where = f"the subdataset {prefix.rstrip('/')}" if prefix else "this dataset"
    raise RecorderError(f"{where} has no sibling {name}; nothing was got from it there",
                        hint=f"its siblings: {', '.join(known) or 'none'}")


# --- listing ----------------------------------------------------------------------------


def iter_subdatasets(ds: Dataset, paths: Sequence[str] = (), *, recursive: bool = False,
                     base: Path | None = None, recursion_limit: int | None = None
                     ) -> Iterator[Result]:
    """One result per registered subdataset (at or under ``paths``; into installed ones with
    ``recursive``, ``recursion_limit`` levels down: 1 is the dataset's own): state
    ``present`` or ``absent``, the recorded commit, URL and dataset id, with DataLad's
    `subdatasets` field names (gitshasum, gitmodule_url, ...).  The paths are checked
    (inside the dataset, existing or registered) before anything is reported."""
    depth = check_recursion(recursive, recursion_limit)
    rels = []
    for p in paths:
        rel = ds.ensure_inside(p, base)
        full = ds.root / rel
        if not os.path.lexists(full) and not _registered_below(ds, rel):
            raise RecorderError(f"path does not exist: {p}")
        rels.append(rel)
    yield from _iter_in(ds, rels or ["."], recursive, "", depth)


def _registered_below(ds: Dataset, rel: str) -> bool:
    """Whether ``rel`` is, or leads to, a registered subdataset (of installed ones too)."""
    for sub in ds.subdatasets():
        if sub == rel or sub.startswith(rel + "/"):
            return True
        if rel.startswith(sub + "/") and installed(ds, sub):
            return _registered_below(Dataset(ds.root / sub), rel[len(sub) + 1:])
    return False


def _iter_in(ds: Dataset, rels: Sequence[str], recursive: bool, prefix: str,
             depth: int | None = None) -> Iterator[Result]:
    entries = gitmodules(ds)
    if not entries:
        return
    links = gitrepo.gitlinks(ds.root)
    for sub in sorted(entries):
        entry = entries[sub]
        inner = _inner(rels, sub)
        if inner is None:
            continue
        present = installed(ds, sub)
        if inner == ".":
            yield _result(ds, sub, entry, links.get(sub), present, prefix)
        if recursive and present and may_descend(deeper(depth)):
            yield from _iter_in(Dataset(ds.root / sub), [inner], True, f"{prefix}{sub}/",
                                deeper(depth))


def _inner(rels: Sequence[str], sub: str) -> str | None:
    """'.' when the paths ``rels`` select subdataset ``sub`` itself, the path inside it one
    of them names, or None."""
    for rel in rels:
        if rel == "." or rel == sub or sub.startswith(rel.rstrip("/") + "/"):
            return "."
    for rel in rels:
        if rel.startswith(sub + "/"):
            return rel[len(sub) + 1:]
    return None


def _result(ds: Dataset, sub: str, entry: dict[str, str], sha: str | None, present: bool,
            prefix: str) -> Result:
    dsid = entry.get("datalad-id")
    if dsid is None and present:
        dsid = Dataset(ds.root / sub).id
    extra: dict[str, Any] = {"parentds": str(ds.root), "gitshasum": sha,
                             "gitmodule_name": entry["name"], "gitmodule_path": sub,
                             "gitmodule_url": entry.get("url", ""), "id": dsid}
    for prop, value in entry.items():
        if prop not in ("name", "path", "url"):
            extra[f"gitmodule_{prop}"] = value
    return Result("subdataset", prefix + sub, state="present" if present else "absent",
                  type="dataset", extra=extra)
