"""Run records: the one module that writes and reads them (DataLad-compatible, byte-exact).

A run commit message is::

    [DATALAD RUNCMD] <message>

    === Do not change lines below ===
    <JSON, indent 1, sorted keys, UTF-8>
    ^^^ Do not change lines above ^^^

or, with a sidecar, a JSON string holding the record id in place of the object.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RecordError

TAG = "[DATALAD RUNCMD] "
BELOW = "=== Do not change lines below ==="
ABOVE = "^^^ Do not change lines above ^^^"
DEFAULT_RECORD_DIR = ".datalad/runinfo"
SHORTY_LENGTH = 40

# anchored at the start of the message; both parts greedy, so the last markers win (as DataLad)
_RECORD_RE = re.compile(
    r"\[DATALAD RUNCMD\] (?P<message>.*)=== Do not change lines below ===\n"
    r"(?P<record>.*)\n\^\^\^ Do not change lines above \^\^\^",
    re.DOTALL,
)

FIELDS = ("chain", "cmd", "dsid", "exit", "extra_inputs", "inputs", "outputs", "pwd")


def dumps(record: dict[str, Any]) -> str:
    """The record text exactly as DataLad writes it."""
    return json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False)


def shorty(expanded_command: str) -> str:
    """DataLad's automatic subject: the expanded command cut to 40 characters plus '...'."""
    if len(expanded_command) > SHORTY_LENGTH:
        return expanded_command[:SHORTY_LENGTH] + "..."
    return expanded_command


def format_message(message: str, record: dict[str, Any] | None = None,
                   record_id: str | None = None) -> str:
    body = json.dumps(record_id) if record_id is not None else dumps(record or {})
    return f"{TAG}{message}\n\n{BELOW}\n{body}\n{ABOVE}\n"


def record_id_of(record: dict[str, Any]) -> str:
    """The sidecar file name: md5 of the indented record text."""
    return hashlib.md5(dumps(record).encode("utf-8")).hexdigest()


def write_sidecar(root: Path, record_dir: str, record: dict[str, Any]) -> tuple[str, Path]:
    rid = record_id_of(record)
    path = root / record_dir / rid
    if not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        tmp = path.with_name(f".{rid}.tmp")
        with lzma.open(tmp, "wb") as fh:
            fh.write(line.encode("utf-8") + b"\n")
        tmp.replace(path)
    return rid, path


def read_sidecar(root: Path, record_dir: str, rid: str) -> dict[str, Any]:
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._-]*", rid):
        # the id comes from a commit message: never a path that leads elsewhere
        raise RecordError(f"run record sidecar id is not a plain file name: {rid!r}")
    path = root / record_dir / rid
    if not path.exists():
        if path.is_symlink():
            raise RecordError(
                f"run record sidecar {path.relative_to(root)} has no content here",
                hint=f"fetch it with 'rr get {path.relative_to(root)}' (or git annex get)")
        raise RecordError(f"run record sidecar file not found: {path.relative_to(root)}")
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(root)):
        raise RecordError(f"run record sidecar {path.relative_to(root)} leads outside the "
                          "dataset; rr does not read it")
    try:
        with lzma.open(path, "rb") as fh:
            first = fh.readline()
        return json.loads(first.decode("utf-8"))
    except (OSError, ValueError, lzma.LZMAError) as exc:
        raise RecordError(f"run record sidecar {rid} cannot be read: {exc}") from exc


@dataclass(frozen=True)
class ParsedMessage:
    message: str  # the run message (subject and body), trailing whitespace stripped
    record: dict[str, Any] | None  # None when a sidecar id still needs reading
    record_id: str | None


def parse_message(text: str) -> ParsedMessage | None:
    """Split a commit message into run message and record; None for a non-run commit.

    Raises RecordError when the message looks like a run commit but cannot be parsed.
    """
    if not text.startswith(TAG):
        return None
    match = _RECORD_RE.match(text)
    if match is None:
        return None
    message = match.group("message").rstrip()
    try:
        value = json.loads(match.group("record"))
    except ValueError as exc:
        raise RecordError("run record is not valid JSON") from exc
    if isinstance(value, dict):
        if "cmd" not in value:
            raise RecordError("looks like a run commit but the record has no command")
        return ParsedMessage(message, value, None)
    if isinstance(value, list):
        raise RecordError("run record is a JSON list, not an object")
    return ParsedMessage(message, None, str(value))


def load_record(text: str, root: Path, record_dir: str) -> tuple[str, dict[str, Any]] | None:
    """(message, record) of a commit message, reading a sidecar when needed."""
    parsed = parse_message(text)
    if parsed is None:
        return None
    if parsed.record is not None:
        return parsed.message, parsed.record
    assert parsed.record_id is not None
    record = read_sidecar(root, record_dir, parsed.record_id)
    if not isinstance(record, dict) or "cmd" not in record:
        raise RecordError("looks like a run commit but the sidecar record has no command")
    return parsed.message, record


def new_record(*, cmd: str, dsid: str | None, exit_code: int, inputs: list[str],
               extra_inputs: list[str], outputs: list[str], pwd: str,
               chain: list[str] | None = None, rr: dict[str, Any] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "chain": list(chain or []),
        "cmd": cmd,
        "exit": exit_code,
        "extra_inputs": list(extra_inputs),
        "inputs": list(inputs),
        "outputs": list(outputs),
        "pwd": pwd,
    }
    if dsid is not None:
        record["dsid"] = dsid
    if rr:
        record["rr"] = rr
    return record
