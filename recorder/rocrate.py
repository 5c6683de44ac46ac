"""The run records as a Workflow Run RO-Crate, Process Run Crate profile 0.5.

One ``CreateAction`` per run record: ``instrument`` the POSIX shell that ran the recorded
command (the command itself is the action's ``description``), ``containerImage`` the image it
ran in (a ``ContainerImage`` with its digest), ``object`` the inputs, ``result`` the outputs as
they were at the commit, ``endTime`` the commit's date (``startTime`` from the recorded
duration), ``exitCode``, ``actionStatus``, ``agent`` the commit's author.  Every file
version is one ``File`` with its checksum (``sha256`` from a SHA256 annex key or from the
blob of a file kept in git; the annex key as an ``identifier``).  A file whose content is in
the crate (``--with-content``: the files present here, as they are at the range's tip) has
its path as ``@id``; every other version has a local ``#`` identifier, which the RO-Crate
specification allows for content that is not in the payload.

Read with the same single pass as :mod:`recorder.lineage` (one ``git log --raw``, the keys
with one ``cat-file --batch``, the blobs of files in git with another).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import shutil
import tempfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import __version__, annex, gitrepo
from . import config as cfgkeys
from .dataset import Dataset
from .errors import RecorderError, UsageError
from .lineage import GITLINK, FileState, History, Step

PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
CRATE_SPEC = "https://w3id.org/ro/crate/1.1"
WFRUN = "https://w3id.org/ro/terms/workflow-run#"
# the Workflow Run terms rr uses, inline: the crate needs no second remote context
CONTEXT: list[Any] = [f"{CRATE_SPEC}/context", {
    name: WFRUN + name for name in ("containerImage", "ContainerImage", "DockerImage",
                                    "SIFImage", "registry", "tag", "exitCode")}]
SHELL_ID = "https://pubs.opengroup.org/onlinepubs/9799919799/utilities/sh.html"
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"
METADATA = "ro-crate-metadata.json"
_HASHES = {"SHA256": "sha256", "SHA512": "sha512", "SHA1": "sha1", "MD5": "md5"}
_BLOB_READ_LIMIT = 64 * 1024 * 1024  # files in git larger than this get no checksum


def key_checksum(key: str) -> tuple[str, str] | None:
    """(algorithm, hex digest) that an annex key carries (SHA256E-s3--abc.txt -> sha256)."""
    backend, _, rest = key.partition("-")
    algo = _HASHES.get(backend.rstrip("E"))
    if algo is None or "--" not in rest:
        return None
    digest = rest.split("--", 1)[1].split(".", 1)[0]
    return (algo, digest) if all(c in "0123456789abcdef" for c in digest) and digest else None


def key_size(key: str) -> int | None:
    for field in key.split("--", 1)[0].split("-")[1:]:
        if field.startswith("s") and field[1:].isdigit():
            return int(field[1:])
    return None


class _Builder:
    def __init__(self, ds: Dataset, hist: History, with_content: bool) -> None:
        self.ds = ds
        self.hist = hist
        self.with_content = with_content
        self.graph: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str], str] = {}  # (path, blob) -> @id
        self.copies: dict[str, str] = {}  # @id (a path in the crate) -> dataset path
        self.people: dict[str, str] = {}
        self.git_blobs: dict[str, bytes] = {}
        self.notes: list[str] = []

    def add(self, entity: dict[str, Any]) -> str:
        self.graph.setdefault(entity["@id"], entity)
        return entity["@id"]

    def person(self, name: str, email: str) -> dict[str, str]:
        pid = self.people.get(email or name)
        if pid is None:
            pid = f"#person-{len(self.people) + 1}"
            self.people[email or name] = pid
            entity: dict[str, Any] = {"@id": pid, "@type": "Person", "name": name or email,
                                      "affiliation": {"@id": "#affiliation"}}
            if email:
                entity["email"] = email
            self.add(entity)
        return {"@id": pid}

    def file(self, f: FileState, present: set[tuple[str, str]]) -> dict[str, str]:
        fid = self.files.get((f.path, f.blob))
        if fid is not None:
            return {"@id": fid}
        if f.kind == "subdataset":
            fid = f"#subdataset-{f.path}@{f.blob[:12]}"
            self.files[(f.path, f.blob)] = fid
            self.add({"@id": fid, "@type": "Dataset", "name": f.path,
                      "description": f"subdataset {f.path} at commit {f.blob}",
                      "identifier": f"git commit {f.blob}"})
            return {"@id": fid}
        if (f.path, f.blob) in present:
            fid = f.path
            self.copies[fid] = f.path
        else:
            fid = f"#file-{f.path}@{f.blob[:12]}"
        self.files[(f.path, f.blob)] = fid
        entity: dict[str, Any] = {"@id": fid, "@type": "File", "name": f.path,
                                  "encodingFormat": _media_type(f.path)}
        if f.key:
            entity["identifier"] = f"annex key {f.key}"
            checksum = key_checksum(f.key)
            size = key_size(f.key)
            if checksum is not None:
                entity[checksum[0] if checksum[0] == "sha256" else "description"] = (
                    checksum[1] if checksum[0] == "sha256" else f"{checksum[0]} {checksum[1]}")
            if size is not None:
                entity["contentSize"] = str(size)
        else:
            entity["identifier"] = f"git blob {f.blob}"
            content = self.git_blobs.get(f.blob)
            if content is not None:
                entity["sha256"] = hashlib.sha256(content).hexdigest()
                entity["contentSize"] = str(len(content))
        return {"@id": self.add(entity)}

    def image(self, info: dict[str, Any]) -> dict[str, str] | None:
        name = info.get("name")
        if not name:
            return None
        digest = info.get("digest")
        iid = f"#container-{name}" + (f"@{str(digest)[-12:]}" if digest else "")
        entity: dict[str, Any] = {"@id": iid, "@type": "ContainerImage",
                                  "additionalType": {"@id": WFRUN + "DockerImage"},
                                  "name": str(name),
                                  "registry": f"the dataset ({info.get('image') or 'in it'})"}
        if isinstance(digest, str) and digest:
            algo, _, value = digest.partition(":")
            entity["sha256" if algo == "sha256" else "identifier"] = value if algo == \
                "sha256" else digest
        if info.get("image"):
            entity["description"] = f"saved in the dataset at {info['image']}"
        return {"@id": self.add(entity)}

    def action(self, step: Step, present: set[tuple[str, str]]) -> str:
        aid = f"#run-{step.commit}"
        end = _iso(step.date)
        entity: dict[str, Any] = {
            "@id": aid, "@type": "CreateAction", "name": step.message or step.command[:80],
            "description": f"$ {step.command}" + (f"\n(in {step.pwd})" if step.pwd not in
                                                  ("", ".") else "") +
            (f"\ncached: made by the run of commit {step.cached_from}"
             if step.cached_from else "") +
            (f"\nrerun of commit {step.chain[-1]}" if step.chain else ""),
            "instrument": {"@id": SHELL_ID},
            "agent": self.person(step.author, step.email),
            "endTime": end,
            "identifier": f"git commit {step.commit}",
        }
        for prop, files in (("object", step.inputs), ("result", step.outputs)):
            if files:
                entity[prop] = _one_or_list([self.file(f, present) for f in files])
        if step.duration is not None:
            try:
                start = datetime.fromisoformat(end) - timedelta(seconds=step.duration)
                entity["startTime"] = start.replace(microsecond=0).isoformat()
            except ValueError:
                pass
        if step.exit is not None:
            entity["exitCode"] = step.exit
            # a string: the profile compares the value as a literal URL
            entity["actionStatus"] = COMPLETED if step.exit == 0 else FAILED
            if step.exit != 0:
                entity["error"] = f"the command exited with {step.exit}"
        if step.image:
            image = self.image(step.image)
            if image is not None:
                entity["containerImage"] = image
        return self.add(entity)


def _iso(date: str) -> str:
    """git's strict ISO date in the form the profile's pattern takes (+00:00, not Z)."""
    try:
        value = datetime.fromisoformat(date.replace("Z", "+00:00"))
    except ValueError:
        return date
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.replace(microsecond=0).isoformat()


def _media_type(path: str) -> str:
    guessed = mimetypes.guess_type(path, strict=False)[0]
    return guessed or ("text/plain" if path.endswith((".txt", ".csv", ".tsv", ".log"))
                       else "application/octet-stream")


def build(ds: Dataset, revision_range: str | None = None, *,
          with_content: bool = False) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The crate's metadata, the files to copy into it (crate path -> dataset path) and
    notes on records left out."""
    rev = revision_range or "HEAD"
    tip = rev.split("..")[-1] or "HEAD"
    hist = History(ds, tip)
    base = rev.split("..")[0] if ".." in rev else ""
    if base and gitrepo.resolve_commit(ds.root, base) is None:
        raise UsageError(f"unknown revision: {base[:80]}")
    wanted = set(gitrepo.rev_list(ds.root, [rev])) if ".." in rev else None
    order = [i for i in range(len(hist.commits) - 1, -1, -1)
             if wanted is None or hist.commits[i].entry.sha in wanted]
    runs: list[int] = []
    notes: list[str] = []
    for i in order:
        try:
            loaded = hist.record(i)
        except RecorderError as exc:  # never a traceback: the record is left out, noted
            notes.append(f"commit {hist.commits[i].entry.sha[:10]} left out: {exc.message}")
            continue
        if loaded is None:
            note = hist.note(i)
            if note:
                notes.append(f"{note} (left out)")
            continue
        runs.append(i)
    steps = hist.steps(runs)
    b = _Builder(ds, hist, with_content)
    # blobs of files kept in git, for their sha256 (one cat-file)
    git_blobs = {f.blob for s in steps for f in s.inputs + s.outputs if f.kind == "git"}
    if git_blobs:
        found = gitrepo.cat_file_batch(ds.root, sorted(git_blobs))
        b.git_blobs = {sha: v[1] for sha, v in found.items()
                       if v is not None and len(v[1]) <= _BLOB_READ_LIMIT}
    present: set[tuple[str, str]] = set()
    if with_content:
        present = _present(ds, hist, steps)
    publisher = {"@id": "#publisher"}
    root_parts: list[dict[str, str]] = []
    actions = []
    for step in steps:
        actions.append({"@id": b.action(step, present)})
    for fid in b.copies:
        root_parts.append({"@id": fid})
    tip_sha = hist.commits[0].entry.sha if hist.commits else ""
    name = ds.root.name
    dsid = ds.id
    identifiers: list[str] = [f"git commit {tip_sha}"]
    if dsid:
        identifiers.insert(0, f"urn:uuid:{dsid}" if _is_uuid(dsid) else dsid)
    authors = sorted({b.person(s.author, s.email)["@id"] for s in steps}) or []
    root: dict[str, Any] = {
        "@id": "./", "@type": "Dataset", "name": f"Run records of {name}",
        "description": f"The run records of the DataLad dataset {name} "
                       f"({dsid or 'without an id'}) in {rev}, as recorded by rr: one "
                       "CreateAction per run commit.",
        "datePublished": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "license": {"@id": "#license"},
        "conformsTo": {"@id": PROFILE},
        "identifier": identifiers,
        "version": tip_sha,
        "publisher": publisher,
    }
    for prop, values in (("author", [{"@id": a} for a in authors]), ("hasPart", root_parts),
                         ("mentions", actions)):
        if values:
            root[prop] = _one_or_list(values)
    own_url = f"urn:uuid:{dsid}" if dsid and _is_uuid(dsid) else ds.root.as_uri()
    graph: list[dict[str, Any]] = [
        {"@id": METADATA, "@type": "CreativeWork", "about": {"@id": "./"},
         "conformsTo": [{"@id": CRATE_SPEC}, {"@id": PROFILE}]},
        root,
        {"@id": PROFILE, "@type": "CreativeWork", "name": "Process Run Crate",
         "version": "0.5"},
        {"@id": SHELL_ID, "@type": "SoftwareApplication", "name": "sh (the POSIX shell)",
         "url": SHELL_ID, "softwareVersion": "POSIX.1-2024",
         "description": "Each recorded command ran as the argument of sh -c."},
        {"@id": "#publisher", "@type": "Organization",
         "name": ds.config.get(cfgkeys.EXPORT_PUBLISHER) or f"the DataLad dataset {name}",
         "url": ds.config.get(cfgkeys.EXPORT_PUBLISHER_URL) or own_url,
         "description": "Exported from the dataset's history by rr, version "
                        f"{__version__}; the people who ran the commands are the agents."},
        {"@id": "#affiliation", "@type": "Organization", "name": "not recorded",
         "url": own_url,
         "description": "git records no affiliation for commit authors."},
    ]
    license_url = ds.config.get(cfgkeys.EXPORT_LICENSE)
    if license_url:
        root["license"] = {"@id": license_url}
        graph.append({"@id": license_url, "@type": "CreativeWork",
                      "name": license_url.rstrip("/").rsplit("/", 1)[-1]})
    else:
        graph.append({"@id": "#license", "@type": "CreativeWork", "name": "not recorded",
                      "description": "The dataset's license is not recorded in its history "
                                     f"(set {cfgkeys.EXPORT_LICENSE} to name it)."})
    graph += list(b.graph.values())
    return {"@context": CONTEXT, "@graph": graph}, dict(b.copies), notes


def _one_or_list(values: list[Any]) -> Any:
    """A single value as itself (RO-Crate 1.1's compact form), several as a list."""
    return values[0] if len(values) == 1 else values


def _is_uuid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(
        c in "0123456789abcdef" for c in text.replace("-", "").lower())


def _present(ds: Dataset, hist: History, steps: list[Step]) -> set[tuple[str, str]]:
    """The (path, blob) of the steps' files that are here as they are at the tip: the
    tip's version of the path, unchanged in the work tree, its content present."""
    candidates: dict[tuple[str, str], FileState] = {}
    for s in steps:
        for f in s.inputs + s.outputs:
            if f.kind == "subdataset" or (f.path, f.blob) in candidates:
                continue
            st = hist.state(f.path, 0, inclusive=True)
            if st is not None and st[2] == f.blob and st[1] != GITLINK:
                candidates[(f.path, f.blob)] = f
    keys = sorted({f.key for f in candidates.values() if f.key})
    have = annex.content_present(ds.root, keys) if keys else {}
    in_git = [f for f in candidates.values() if not f.key and f.kind == "git"
              and os.path.isfile(ds.root / f.path) and not os.path.islink(ds.root / f.path)]
    same = set()
    if in_git:  # a file kept in git: the work tree's file is the committed blob
        hashed = gitrepo.hash_files_raw(ds.root, [f.path for f in in_git])
        same = {f.path for f, sha in zip(in_git, hashed) if sha == f.blob}
    found = set()
    real_root = os.path.realpath(ds.root)
    for f in candidates.values():
        full = ds.root / f.path
        real = os.path.realpath(full)
        if not real.startswith(real_root.rstrip("/") + "/"):
            continue  # a link out of the dataset: nothing outside it is read on its say-so
        if f.key:
            if not have.get(f.key) or not os.path.isfile(full):
                continue
            if os.path.islink(full):  # a locked file: its link names the key
                if not os.readlink(full).endswith("/" + f.key):
                    continue
            elif not _content_matches(full, f.key):  # unlocked: the content itself
                continue
        elif f.path not in same:
            continue
        found.add((f.path, f.blob))
    return found


def _content_matches(path: Path, key: str) -> bool:
    """Whether an unlocked file still holds the content its key names (checked by the
    key's hash; a key without one, by its size)."""
    checksum = key_checksum(key)
    if checksum is None:
        size = key_size(key)
        return size is None or os.path.getsize(path) == size
    digest = hashlib.new(checksum[0])
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == checksum[1]


def export(ds: Dataset, output: str, revision_range: str | None = None, *,
           with_content: bool = False) -> Path:
    """Write the crate into the new directory ``output``, or the zip file ``output``."""
    target = Path(output).absolute()
    as_zip = target.suffix.lower() == ".zip"
    if target.exists() and (as_zip or not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{output} exists: give a new directory or .zip file")
    if as_zip and not target.parent.is_dir():
        raise UsageError(f"no such directory: {target.parent}")
    metadata, copies, notes = build(ds, revision_range, with_content=with_content)
    if notes:
        metadata["@graph"][1]["description"] += " Left out: " + "; ".join(notes)
    text = json.dumps(metadata, indent=1, ensure_ascii=False) + "\n"
    try:
        if as_zip:
            _write_zip(ds, target, text, copies)
        else:
            target.mkdir(parents=True, exist_ok=True)
            (target / METADATA).write_text(text, encoding="utf-8")
            for rel, src in copies.items():
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ds.root / src, dest)
    except OSError as exc:
        raise RecorderError(f"cannot write the crate: {exc.strerror or exc}") from None
    return target


def _write_zip(ds: Dataset, target: Path, text: str, copies: dict[str, str]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".rr-crate-", suffix=".zip", dir=target.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(METADATA, text)
            for rel, src in copies.items():
                zf.write(ds.root / src, rel)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
