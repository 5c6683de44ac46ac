"""The only module that spawns git-annex.  Calls use ``--json`` and feed paths in batches."""

from __future__ import annotations

import contextlib
import json
import re
import os
import shutil
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from . import config as cfgkeys
from . import gitrepo, proc
from .errors import AnnexError, CommandError, ToolMissingError

_CHUNK_BYTES = 100_000
# git-annex started directly, not through `git annex` (a git process that only execs it):
# one process less per call; errors still name it "git annex SUBCOMMAND"
_GIT_ANNEX = ("git-annex",)


def ensure_available() -> None:
    if shutil.which("git-annex", path=proc.tool_path()) is None:
        raise ToolMissingError("git-annex", hint="pip install git-annex (rr depends on it)")


def _chunks(paths: Sequence[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for p in paths:
        if chunk and size + len(p) + 1 > _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(p)
        size += len(p) + 1
    if chunk:
        yield chunk


def _annex_json(root: str | os.PathLike[str], args: Sequence[str], paths: Sequence[str],
                *, check: bool = True) -> list[dict]:
    """Run ``git annex ARGS --json -- PATHS`` (chunked for huge lists) and parse the records."""
    ensure_available()
    records: list[dict] = []
    # git-annex silently skips a path argument that is not UTF-8 (exit 0, nothing done), but
    # takes it on stdin in batch mode: such paths go that way, byte for byte
    odd = [p for p in paths if not _is_utf8(p)] if args[0] in _BATCH_Z else []
    if odd:
        records += _annex_batch_json(root, args, odd, check=check)
        paths = [p for p in paths if _is_utf8(p)]
        if not paths:
            return records
    for chunk in _chunks(paths) if paths else [[]]:
        # dotfiles follow annex.largefiles like any file, as in DataLad (which also passes
        # annex.dotfiles=true); `**/.git* annex.largefiles=nothing` keeps .gitignore etc. in git
        argv = [*_GIT_ANNEX, args[0], "-c", cfgkeys.ANNEX_DOTFILES_ON, *args[1:], "--json",
                "--json-error-messages", "--", *chunk]
        result = proc.capture(argv, cwd=root, check=False)
        records += _json_records(result.stdout)
        if check and result.returncode != 0:
            failed = [r for r in records if not r.get("success", True)]
            if failed:
                raise AnnexError(args[0], failed)
            raise CommandError(["git", "annex", args[0]], result.returncode,
                               result.stderr.decode("utf-8", "replace"))
    return records


def _json_records(out: bytes) -> list[dict]:
    """git-annex's ``--json`` records, one per line (other lines passed over)."""
    records = []
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        if line.strip().startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


_BATCH_Z = ("add", "get", "drop", "copy", "find", "whereis")  # take --batch -z paths


def _annex_batch_json(root: str | os.PathLike[str], args: Sequence[str],
                      paths: Sequence[str], *, check: bool = True) -> list[dict]:
    """``git annex ARGS --batch -z --json``, the paths fed on stdin as bytes."""
    ensure_available()
    argv = [*_GIT_ANNEX, args[0], "-c", cfgkeys.ANNEX_DOTFILES_ON, *args[1:], "--json",
            "--json-error-messages", "--batch", "-z"]
    result = proc.capture(argv, cwd=root, check=False,
                          input=b"".join(os.fsencode(p) + b"\0" for p in paths))
    records = _json_records(result.stdout)
    failed = [r for r in records if not r.get("success", True)]
    if check and failed:
        raise AnnexError(args[0], failed)
    if check and result.returncode != 0:
        raise CommandError(["git", "annex", args[0]], result.returncode,
                           result.stderr.decode("utf-8", "replace"))
    return records


def init(root: str | os.PathLike[str], description: str | None = None) -> None:
    ensure_available()
    argv = ["git", "annex", "init", "--quiet"]
    if description:
        argv.append(description)
    proc.capture(argv, cwd=root)


def add(root: str | os.PathLike[str], paths: Sequence[str], to_git: bool = False) -> list[dict]:
    """``git annex add``: large files (per annex.largefiles) into the annex, the rest into git
    (``to_git``: everything into git, ``--force-small``).  Inside :func:`add_session` for
    ``root``, a few files go through the session's one batch process.

    When git-annex fails after moving a file's content into the object store (a full disk),
    it cannot copy it back and leaves an empty file: the content is moved back here.
    """
    session = _ADD_SESSIONS.get(os.path.realpath(root))
    if session is not None and any(map(is_attributes, paths)):
        session.retire()  # a .gitattributes is added now: the rest follows its new rules
    try:
        if session is not None and not to_git and session.takes(paths):
            return session.add(paths)
        return _annex_json(root, ["add", "--force-small"] if to_git else ["add"], paths)
    except AnnexError as exc:
        put_back_stranded_content(Path(root), exc.failed)
        raise


# --- one `git annex add --batch` for many saves ----------------------------------------------

_ADD_SESSIONS: dict[str, _AddSession] = {}
# per file, the batch process stages with one `git update-index` (a queue of one file: staged
# before its answer): cheaper than a git-annex start for a few files, dearer for many
_SESSION_MAX_PATHS = 40


@contextlib.contextmanager
def add_session(root: str | os.PathLike[str]) -> Iterator[None]:
    """While active, :func:`add` in ``root`` (without ``to_git``, of at most a few files)
    goes through one long-lived ``git annex add --batch --json`` process, started at the
    first such add, instead of a git-annex process per call: for callers that save many
    times in one process (the records of a rerun, the jobs of an array worker).

    Every file is staged in git's index when :func:`add` returns (the process runs with a
    queue of one file: git-annex flushes its queued index update before it answers for
    a file).  git-annex records the new content's location in its journal at once and
    commits its branch when the process ends, at the end of the block.  Nested blocks for
    the same dataset share the outer session; threads adding in the same dataset take turns.
    The process keeps the environment it was started in (``proc.tool_env_overlay``).

    git-annex reads its configuration once, when it starts, and the attributes of a
    directory (annex.largefiles, annex.backend) once, when it first adds there: a new
    process is started for the next add once the repository's config or info/attributes
    changed, or a ``.gitattributes`` file was saved (see :func:`attributes_changed`)."""
    key = os.path.realpath(root)
    if key in _ADD_SESSIONS:
        yield
        return
    session = _AddSession(root)
    _ADD_SESSIONS[key] = session
    try:
        yield
    finally:
        del _ADD_SESSIONS[key]
        session.close()


def attributes_changed(root: str | os.PathLike[str]) -> None:
    """A ``.gitattributes`` in ``root`` is being saved (changed, added or deleted): the
    session's process, which may have read the old one, is not used for further adds."""
    session = _ADD_SESSIONS.get(os.path.realpath(root))
    if session is not None:
        session.retire()


def is_attributes(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1] == ".gitattributes"


def _read_once_files(root: str | os.PathLike[str]) -> list[str]:
    """What git-annex reads once per process: the repository's config and info/attributes
    (in a linked worktree, an array job's, those of the repository it belongs to) and the
    worktree's own config.worktree."""
    git_dir = gitrepo.git_dir(root)
    common = git_dir
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as fh:
            common = os.path.join(git_dir, fh.read().strip())
    except OSError:
        pass
    return [os.path.join(common, "config"), os.path.join(common, "info", "attributes"),
            os.path.join(git_dir, "config.worktree")]


def _read_once_stamp(files: Sequence[str]) -> tuple[tuple[int, int] | None, ...]:
    out: list[tuple[int, int] | None] = []
    for name in files:
        try:
            st = os.stat(name)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class _AddSession:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = root
        self.child: proc.Popen | None = None
        self.errors: IO[bytes] | None = None
        self.lock = threading.Lock()  # one request-answer exchange at a time
        self.stamp: tuple[tuple[int, int] | None, ...] = ()  # _read_once_stamp at start
        self.watched: list[str] = []  # _read_once_files

    def retire(self) -> None:
        """End the process (its adds committed as at the end); the next add starts anew."""
        with self.lock:
            self._close()

    def takes(self, paths: Sequence[str]) -> bool:
        """Paths the batch process can take one per line: few, each a file (git-annex's
        batch mode does not descend into directories) named in UTF-8 without a line break
        (``--batch -z`` answers one path late: it cannot serve a request-answer loop)."""
        return 0 < len(paths) <= _SESSION_MAX_PATHS and all(
            _is_utf8(p) and "\n" not in p and "\r" not in p and p == p.strip()
            and not os.path.isdir(os.path.join(self.root, p)) for p in paths)

    def _start(self) -> proc.Popen:
        ensure_available()
        self.watched = self.watched or _read_once_files(self.root)
        self.stamp = _read_once_stamp(self.watched)
        import tempfile  # noqa: PLC0415  (random, weakref: ~1 ms) not for a one-shot add

        self.errors = tempfile.TemporaryFile()
        self.child = proc.start_batch(
            [*_GIT_ANNEX, "add", "-c", cfgkeys.ANNEX_DOTFILES_ON, "-c",
             cfgkeys.ANNEX_QUEUE_EACH_FILE, "--json", "--json-error-messages", "--batch"],
            cwd=self.root, stderr=self.errors)
        return self.child

    def add(self, paths: Sequence[str]) -> list[dict]:
        with self.lock:
            return self._add(paths)

    def _add(self, paths: Sequence[str]) -> list[dict]:
        if self.child is not None and (
                self.child.poll() is not None
                or _read_once_stamp(self.watched) != self.stamp):
            self._close()  # it ended, or its configuration changed since it started
        child = self.child if self.child is not None else self._start()
        assert child.stdin is not None and child.stdout is not None
        records: list[dict] = []
        try:
            for path in paths:
                child.stdin.write(path.encode("utf-8") + b"\n")
                child.stdin.flush()
                line = child.stdout.readline()
                if not line:  # the process ended: its error on stderr
                    raise CommandError(["git", "annex", "add"], child.wait(), self._stderr())
                records += _json_records(line)  # an empty answer: nothing to add there
        except BaseException:
            self._stop()  # a half-answered batch process is not used again
            raise
        failed = [r for r in records if not r.get("success", True)]
        if failed:
            raise AnnexError("add", failed)
        return records

    def _stderr(self) -> str:
        if self.errors is None:
            return ""
        self.errors.seek(0)
        return self.errors.read().decode("utf-8", "replace")

    def _stop(self) -> None:
        if self.child is not None:
            proc.stop_tool(self.child)
        self.child = None
        # its stderr went to a file, never a pipe nobody reads while the process lives (a
        # git-annex with much to say would block); read by now, not kept open
        if self.errors is not None:
            self.errors.close()
            self.errors = None

    def close(self) -> None:
        """End the batch process (it commits its journal to the git-annex branch)."""
        with self.lock:
            self._close()

    def _close(self) -> None:
        child, self.child = self.child, None
        try:
            if child is not None:
                assert child.stdin is not None
                try:
                    with contextlib.suppress(BrokenPipeError):  # it ended on its own
                        child.stdin.close()
                    child.wait()
                except BaseException:
                    proc.stop_tool(child)
                    raise
                finally:
                    if child.stdout is not None:
                        child.stdout.close()
        finally:
            if self.errors is not None:
                self.errors.close()
                self.errors = None


_STRANDED = re.compile(r"Unable to restore content of .*; it should be located in (.+)$")


def put_back_stranded_content(root: Path, failed: Sequence[dict]) -> list[str]:
    """Move content git-annex stranded in the object store back to its file."""
    restored = []
    for rec in failed:
        name = rec.get("file")
        where = next((m.group(1).strip() for m in map(_STRANDED.match,
                      rec.get("error-messages", [])) if m), None)
        if not name or not where:
            continue
        target, obj = root / name, root / where
        if not obj.is_file() or target.is_symlink() or \
                (target.exists() and target.stat().st_size == obj.stat().st_size):
            continue
        try:
            os.chmod(obj.parent, 0o755)
            os.replace(obj, target)
            os.chmod(target, 0o644 & ~_umask())
            obj.parent.rmdir()
        except OSError:
            continue
        restored.append(name)
    return restored


def annex_objects_marker(path: str) -> bool:
    return "/annex/objects/" in path or path.startswith(".git/annex/objects")


def missing_content(root: Path, relpaths: Iterable[str]) -> list[str]:
    """Of the given dataset-relative paths, those that need a ``git annex get``.

    Files are checked on disk (a symlink into the annex whose target is absent); a directory
    is returned as it is, and git-annex decides what under it is missing.
    """
    result = []
    for rel in relpaths:
        full = root / rel
        if full.is_symlink():
            target = os.readlink(full)
            if annex_objects_marker(target) and not full.exists():
                result.append(rel)
        elif full.is_dir():
            if _dir_has_missing(full):
                result.append(rel)
    return result


def _dir_has_missing(directory: Path) -> bool:
    for dirpath, dirnames, filenames in os.walk(directory):
        if ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not os.path.exists(full):
                if annex_objects_marker(os.readlink(full)):
                    return True
    return False


def copy_out(full: Path) -> None:
    """Replace a locked annexed file (a symlink to its content) by a writable copy."""
    tmp = full.with_name(f".{full.name}.rr-unlock")
    shutil.copyfile(full, tmp)  # follows the symlink to the annexed content
    os.chmod(tmp, 0o644 & ~_umask())
    os.replace(tmp, full)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_locked_annexed(full: Path) -> bool:
    return full.is_symlink() and annex_objects_marker(os.readlink(full))


def drop(root: str | os.PathLike[str], paths: Sequence[str], force: bool = False,
         all_keys: bool = False) -> list[dict]:
    """``git annex drop`` of ``paths`` (``all_keys``: of every key the repository has, every
    version, ``--all``); without ``force`` only what enough other copies hold."""
    args = ["drop", *(["--force"] if force else _semitrust_args(root))]
    if all_keys:
        return _annex_json(root, [*args, "--all"], [])
    return _annex_json(root, args, paths)


def _jobs(jobs: int | None) -> list[str]:
    """git-annex's own parallel transfers (DataLad's -J/--jobs hands them over the same way)."""
    return [f"--jobs={jobs}"] if jobs and jobs > 1 else []


def copy_to(root: str | os.PathLike[str], remote: str, paths: Sequence[str],
            all_versions: bool = False, jobs: int | None = None,
            auto: bool = False) -> list[dict]:
    """``git annex copy --to remote``; ``auto``: only what the remote wants (``--auto``:
    its preferred content, or what numcopies needs)."""
    args = ["copy", "--to", remote, *_jobs(jobs), *(["--auto"] if auto else [])]
    if all_versions:
        return _annex_json(root, [*args, "--all"], [])
    return _annex_json(root, args, paths or ["."])


def wanted(root: str | os.PathLike[str], remote: str) -> str:
    """The preferred-content expression of ``remote`` (``git annex wanted``); "" if none."""
    ensure_available()
    out = proc.capture(["git", "annex", "wanted", remote], cwd=root).stdout
    return out.decode("utf-8", "replace").strip()


def initremote(root: str | os.PathLike[str], name: str, params: Sequence[str]) -> None:
    ensure_available()
    proc.capture(["git", "annex", "initremote", name, *params], cwd=root)


def has_annex_branch(root: str | os.PathLike[str]) -> bool:
    return gitrepo.has_refs(root, ["refs/heads/git-annex", "refs/remotes/*/git-annex"])


def iter_get(root: str | os.PathLike[str], paths: Sequence[str],
             jobs: int | None = None, source: str | None = None
             ) -> Generator[dict, None, None]:
    """``git annex get`` that yields each file's JSON record as it completes (for progress);
    ``jobs``: that many transfers at once, done by git-annex; ``source``: only from that
    remote (``--from``, DataLad's get -s)."""
    ensure_available()
    via = ["--from", source] if source else []
    odd = [p for p in paths if not _is_utf8(p)]
    if odd:  # names that are not UTF-8: on stdin (see _annex_json)
        yield from _annex_batch_json(root, ["get", *via, *_jobs(jobs)], odd)
        paths = [p for p in paths if _is_utf8(p)]
        if not paths:
            return
    for chunk in _chunks(paths) if paths else [["."]]:
        argv = ["git", "annex", "get", "-c", cfgkeys.ANNEX_DOTFILES_ON, *via, *_jobs(jobs),
                "--json",
                "--json-error-messages", "--", *chunk]
        failed = []
        # leaving early (an interrupt, or the consumer closing this generator) stops the
        # git-annex get with its special remotes: an orphan would hold the transfer locks
        with proc.popen_lines(argv, cwd=root) as child:
            assert child.stdout is not None
            for raw in child.stdout:
                line = raw.decode("utf-8", "surrogateescape").strip()
                if not line.startswith("{"):
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if not rec.get("success", True):
                    failed.append(rec)
                yield rec
            err = child.stderr.read().decode("utf-8", "replace") if child.stderr else ""
            code = child.wait()
        if failed:
            raise AnnexError("get", failed)
        if code != 0:
            raise CommandError(argv[:3], code, err)


def get_key(root: str | os.PathLike[str], key: str) -> None:
    """``git annex get --key``: one key's content from wherever git-annex knows it is."""
    ensure_available()
    proc.capture(["git", "annex", "get", "--key", key], cwd=root)


def version(root: str | os.PathLike[str]) -> str:
    """git-annex's version (``git annex version --raw``)."""
    ensure_available()
    return proc.capture([*_GIT_ANNEX, "version", "--raw"], cwd=root).stdout.decode(
        "utf-8", "replace").strip()


def merge(root: str | os.PathLike[str]) -> None:
    """Merge fetched git-annex branches into the local one."""
    ensure_available()
    proc.capture(["git", "annex", "merge"], cwd=root)


def read_keys(root: str | os.PathLike[str], keys: Sequence[str]) -> dict[str, bytes | None]:
    """Contents of annex keys present here, located with one ``contentlocation --batch``."""
    out: dict[str, bytes | None] = {}
    for key, loc in content_locations(root, keys).items():
        path = Path(root) / loc if loc else None
        out[key] = path.read_bytes() if path is not None and path.is_file() else None
    return out


def content_locations(root: str | os.PathLike[str], keys: Sequence[str]) -> dict[str, str]:
    """Where each key's content is in the object store (relative to ``root``; '' when it is
    not here), with one ``git annex contentlocation --batch``."""
    if not keys:
        return {}
    ensure_available()
    result = proc.capture(["git", "annex", "contentlocation", "--batch"], cwd=root,
                          input="".join(f"{k}\n" for k in keys).encode(), check=False)
    lines = result.stdout.decode("utf-8", "surrogateescape").splitlines()
    lines += [""] * (len(keys) - len(lines))
    return {k: loc.strip() for k, loc in zip(keys, lines)}


def addurl(root: str | os.PathLike[str], url: str, path: str) -> dict:
    """Download ``url`` to ``path`` and register the URL as a source of its content."""
    records = _annex_json(root, ["addurl", f"--file={path}", "--raw"], [url])
    return records[-1] if records else {}


def lookupkey(root: str | os.PathLike[str], path: str) -> str | None:
    out = proc.capture(["git", "annex", "lookupkey", "--", path], cwd=root, check=False)
    return out.stdout.decode().strip() or None if out.returncode == 0 else None


def present_keys(root: str | os.PathLike[str], paths: Sequence[str]) -> dict[str, list[str]]:
    """{key: [files]} of the annexed files at or under ``paths`` whose content is here."""
    out: dict[str, list[str]] = {}
    for rec in _annex_json(root, ["find"], paths):
        if rec.get("key") and rec.get("file"):
            out.setdefault(rec["key"], []).append(rec["file"])
    return out


def used_keys(root: str | os.PathLike[str]) -> set[str]:
    """The keys of every annexed file in the worktree, content here or not."""
    return {rec["key"] for rec in _annex_json(root, ["find", "--include=*"], ["."])
            if rec.get("key")}


_TRUST_LOG = "trust.log"


def borrowed_trust(root: str | os.PathLike[str]) -> list[str]:
    """The repositories (uuids) that count as *trusted* only on a sibling's word.

    git-annex takes a trusted repository's claim to hold a key without checking it, and it
    merges trust.log from every fetched ``refs/remotes/*/git-annex`` (a collaborator's
    branch can mark its own repository trusted and claim keys it does not have).  A trust
    counts as the user's own only when set in this repository's git config
    (``remote.NAME.annex-trustlevel``) or when the winning trust.log line is in this
    repository's git-annex branch and in none of the siblings' (``git annex trust`` here,
    not pushed yet); every other trusted repository is checked as a semitrusted one.
    """
    refs = [r for r in gitrepo.refs_under(root, "refs/remotes/") if r.endswith("/git-annex")]
    specs = [f"refs/heads/git-annex:{_TRUST_LOG}"] + [f"{r}:{_TRUST_LOG}" for r in refs]
    blobs = gitrepo.cat_file_batch(root, specs)
    local_lines: set[str] = set()
    sibling_lines: set[str] = set()
    winner: dict[str, tuple[float, str, str]] = {}  # uuid -> (timestamp, value, line)
    for spec, blob in blobs.items():
        if blob is None or blob[0] != "blob":
            continue
        for line in blob[1].decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            stamp = 0.0
            if len(parts) > 2 and parts[2].startswith("timestamp="):
                try:
                    stamp = float(parts[2][len("timestamp="):].rstrip("s"))
                except ValueError:
                    stamp = 0.0
            (local_lines if spec.startswith("refs/heads/") else sibling_lines).add(line)
            if parts[0] not in winner or stamp >= winner[parts[0]][0]:
                winner[parts[0]] = (stamp, parts[1], line)
    trusted = {u: line for u, (_s, value, line) in winner.items() if value == "1"}
    if not trusted:
        return []
    config: dict[str, dict[str, str]] = {}
    for key, value in gitrepo.config_list(root):
        named = cfgkeys.key_parts(key, "remote")
        if named:
            config.setdefault(named[0], {})[named[1].lower()] = value
    own = {c.get("annex-uuid") or _remote_uuid(root, name) for name, c in config.items()
           if c.get("annex-trustlevel", "").lower() == "trusted"}
    return sorted(u for u, line in trusted.items()
                  if u not in own and (line in sibling_lines or line not in local_lines))


def _remote_uuid(root: str | os.PathLike[str], name: str) -> str | None:
    """The uuid of remote ``name`` as git-annex finds it (it records annex-uuid once it has
    talked to the remote; a remote only fetched by git has none yet)."""
    done = proc.capture(["git", "annex", "info", "--fast", "--json", "--", name], cwd=root,
                        check=False)
    try:
        uuid = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1]
                          ).get("uuid")
    except (ValueError, IndexError, AttributeError):
        return None
    return uuid if isinstance(uuid, str) else None


def _semitrust_args(root: str | os.PathLike[str]) -> list[str]:
    return [f"--semitrust={u}" for u in borrowed_trust(root)]


def drop_keys(root: str | os.PathLike[str], keys: Sequence[str],
              force: bool = False) -> list[dict]:
    """``git annex drop --key`` for each of ``keys`` (one batch process): without ``force``
    git-annex drops only what enough other copies hold (numcopies).  Returns its records,
    failures included."""
    if not keys:
        return []
    ensure_available()
    argv = ["git", "annex", "drop", "--batch-keys", "--json", "--json-error-messages",
            *(["--force"] if force else _semitrust_args(root))]
    result = proc.capture(argv, cwd=root, input="".join(f"{k}\n" for k in keys).encode(),
                          check=False)
    records = _json_records(result.stdout)
    return records


def drop_all(root: str | os.PathLike[str]) -> list[dict]:
    """Drop the content of the worktree's files, then of every other version, that enough
    other copies hold; an AnnexError names (the file of) what is not safely elsewhere."""
    trust = _semitrust_args(root)
    return _annex_json(root, ["drop", *trust], ["."]) + \
        _annex_json(root, ["drop", *trust, "--all"], [])


def ensure_archive_remote(root: str | os.PathLike[str]) -> None:
    """The rr archive special remote, initialised once per dataset (clones autoenable it)."""
    ensure_available()
    name = cfgkeys.RR_ARCHIVES_REMOTE
    if gitrepo.config_get(root, cfgkeys.remote_key(name, "annex-externaltype")) is not None:
        return
    enable = proc.capture(["git", "annex", "enableremote", name], cwd=root, check=False)
    if enable.returncode != 0:
        proc.capture(["git", "annex", "initremote", name, "type=external",
                      "externaltype=rrarchive", "encryption=none", "autoenable=true"],
                     cwd=root)


def registerurls(root: str | os.PathLike[str], pairs: Sequence[tuple[str, str]]) -> None:
    if not pairs:
        return
    ensure_available()
    data = "".join(f"{k} {u}\n" for k, u in pairs).encode()
    proc.capture(["git", "annex", "registerurl", "--batch"], cwd=root, input=data)


def repair_keys(root: str | os.PathLike[str], keys: Sequence[str]) -> tuple[list[str], list[str]]:
    """Move damaged objects aside with ``git annex fsck`` (which records that the content is
    no longer here), then fetch each key again from wherever another copy is.
    Returns (restored keys, keys with no copy to restore from)."""
    if not keys:
        return [], []
    ensure_available()
    for key in keys:
        proc.capture(["git", "annex", "fsck", "--quiet", "--key", key], cwd=root, check=False)
    restored: list[str] = []
    lost: list[str] = []
    for key in keys:
        got = proc.capture(["git", "annex", "get", "--quiet", "--key", key], cwd=root,
                           check=False)
        (restored if got.returncode == 0 else lost).append(key)
    return restored, lost


def fix(root: str | os.PathLike[str], paths: Sequence[str]) -> None:
    """``git annex fix``: the symlinks of moved annexed files point at their content again
    (what git-annex's pre-commit hook does, which rr's commits skip)."""
    if paths:
        _annex_json(root, ["fix"], paths)


def unlock(root: str | os.PathLike[str], paths: Sequence[str]) -> list[dict]:
    """``git annex unlock``: the files become writable copies of their content (the object
    store keeps its own copy unless annex.thin is set); the change is staged, as DataLad's.
    One record per file; a failed one has ``success`` false (not raised: the others count)."""
    return _annex_json(root, ["unlock"], paths, check=False) if paths else []


def content_present(root: str | os.PathLike[str], keys: Sequence[str]) -> dict[str, bool]:
    """Whether each key's content is here, with one ``contentlocation --batch`` call."""
    return {k: bool(loc) for k, loc in content_locations(root, keys).items()}


def key_of_link(target: str | bytes) -> str | None:
    """The annex key a symlink target or pointer file names (None: not annexed content)."""
    text = target.decode("utf-8", "surrogateescape") if isinstance(target, bytes) else target
    text = text.strip()
    if "\n" in text or not annex_objects_marker(text):
        return None
    return text.rsplit("/", 1)[-1] or None


def set_trust(root: str | os.PathLike[str], level: str, repository: str = "here") -> None:
    """``git annex untrust|dead REPOSITORY``: how much git-annex believes ``repository``
    holds content (DataLad's clone --reckless: auto/shared-* untrust ``here``, ephemeral
    declares it dead so that its copies are never counted by anyone)."""
    if level not in ("untrust", "dead"):
        raise ValueError(level)
    ensure_available()
    proc.capture(["git", "annex", level, "--quiet", "--", repository], cwd=root)
