"""Run records: the one module that writes and reads them (DataLad-compatible, byte-exact).

A run commit message is::

    [DATALAD RUNCMD] <message>

    === Do not change lines below ===
    <JSON, indent 1, sorted keys, UTF-8>
    ^^^ Do not change lines above ^^^

or, with a sidecar, a JSON string holding the record id in place of the object.
"""

from __future__ import annotations

import json
import lzma
import math
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from .errors import RecordError

TAG = "[DATALAD RUNCMD] "
BELOW = "=== Do not change lines below ==="
ABOVE = "^^^ Do not change lines above ^^^"
DEFAULT_RECORD_DIR = ".datalad/runinfo"
SHORTY_LENGTH = 40

# anchored at the start of the message; both parts greedy, so the last markers win (as DataLad)
# a run message: TAG, the message, BELOW and a newline, the record, a newline and ABOVE; the
# last ABOVE, and the last BELOW before it (DataLad's greedy regular expression, found with
# two searches from the end instead of backtracking over the message)
_BELOW_LINE = BELOW + "\n"
_ABOVE_LINE = "\n" + ABOVE

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
    import hashlib  # noqa: PLC0415  OpenSSL's (~2.5 ms): only when a record is written

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
    """The record in sidecar ``rid``; only a file inside the dataset is ever read."""
    if not _SIDECAR_ID_RE.fullmatch(rid):
        raise RecordError(f"run record sidecar id is not a hex string: {_show(rid)}")
    real_root = os.path.realpath(root)
    path = root / record_dir / rid
    shown = os.path.normpath(os.path.join(record_dir, rid))
    if not _inside(os.path.normpath(os.path.join(real_root, record_dir, rid)), real_root):
        raise RecordError(f"run record directory {record_dir!r} is outside the dataset")
    try:
        if not path.exists():
            if path.is_symlink():
                raise RecordError(
                    f"run record sidecar {shown} has no content here",
                    hint=f"fetch it with 'rr get {shown}' (or git annex get)")
            raise RecordError(f"run record sidecar file not found: {shown}")
        real = os.path.realpath(path)
        if not _inside(real, real_root) and not _inside(
                real, os.path.join(os.path.realpath(root / ".git"), "annex", "objects")):
            raise RecordError(f"run record sidecar {shown} points outside the dataset")
        with lzma.open(path, "rb") as fh:
            first = fh.readline(_SIDECAR_LIMIT)
        return json.loads(first.decode("utf-8"))
    except RecordError:
        raise
    except (OSError, ValueError, lzma.LZMAError, RecursionError) as exc:
        raise RecordError(f"run record sidecar {rid} cannot be read: {exc}") from exc


_SIDECAR_LIMIT = 16 * 1024 * 1024


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class ParsedMessage(NamedTuple):  # a NamedTuple: cheaper than a dataclass at start-up
    message: str  # the run message (subject and body), trailing whitespace stripped
    record: dict[str, Any] | None  # None when a sidecar id still needs reading
    record_id: str | None


def parse_message(text: str) -> ParsedMessage | None:
    """Split a commit message into run message and record; None for a non-run commit.

    Raises RecordError when the message looks like a run commit but cannot be parsed.  An
    inline record is validated (:func:`validate`); a sidecar id must be a hex string.
    """
    if not text.startswith(TAG):
        return None
    end = text.rfind(_ABOVE_LINE)
    start = text.rfind(_BELOW_LINE, len(TAG), end) if end >= 0 else -1
    if start < 0:
        return None
    message = text[len(TAG):start].rstrip()
    begin = start + len(_BELOW_LINE)
    value = _json_in(text, begin, end)
    if isinstance(value, dict):
        return _parsed(ParsedMessage, (message, validate(value), None))
    if isinstance(value, list):
        raise RecordError("run record is a JSON list, not an object")
    if not isinstance(value, str) or not _SIDECAR_ID_RE.fullmatch(value):
        raise RecordError(f"run record sidecar id is not a hex string: {_show(value)}")
    return ParsedMessage(message, None, value)


_parsed = tuple.__new__  # a NamedTuple made without its Python-level __new__


def _json_in(text: str, begin: int, end: int) -> Any:
    """The JSON value of ``text[begin:end]``, scanned in place (no copy of the record): a
    value the scanner ends within that span is the value of the slice, as the scanner never
    looks past the character after a value.  Anything else (an error, text after the value)
    is read from the slice, for the same error."""
    if begin < end and text[begin] == "{":
        try:
            value, stop = _SCAN(text, begin)
        except (StopIteration, ValueError, RecursionError):
            pass
        else:
            if stop == end or (stop < end and not text[stop:end].strip(_JSON_SPACE)):
                return value
    try:
        return _json_value(text[begin:end])
    except (ValueError, RecursionError) as exc:
        raise RecordError("run record is not valid JSON") from exc


_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # json.loads' scanner
_JSON_SPACE = " \t\n\r"  # JSON's whitespace


def _json_value(text: str) -> Any:
    """``json.loads(text)`` for a record: the same value, the same errors (as ValueError),
    without json.loads' two regular-expression passes over the whitespace around it (a
    fifth of reading a record; a history view reads one per commit)."""
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        value, end = _SCAN(text, start)
    except StopIteration:
        raise ValueError("Expecting value") from None
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        raise ValueError("Extra data")
    return value


def loads(text: str) -> Any:
    """``json.loads(text)``: the same value, the same errors; a JSON object or array with no
    space before it (a record, a note's line, a metrics file) scanned straight, without
    json.loads' two regular-expression passes over the space around it."""
    if text[:1] in ("{", "["):
        try:
            value, end = _SCAN(text, 0)
        except (StopIteration, ValueError, RecursionError):
            pass  # json.loads says what is wrong
        else:
            if end == len(text) or not text[end:].strip(_JSON_SPACE):
                return value
    return json.loads(text)


def load_record(text: str, root: Path, record_dir: str,
                commit: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(message, record) of a commit message, reading a sidecar when needed.

    With ``commit``, an error names it: ``commit <sha> has a malformed run record: ...``.
    """
    try:
        parsed = parse_message(text)
        if parsed is None:
            return None
        if parsed.record is not None:
            return parsed.message, parsed.record
        assert parsed.record_id is not None
        record = read_sidecar(root, record_dir, parsed.record_id)
        if not isinstance(record, dict):
            raise RecordError("the sidecar record is not a JSON object")
        return parsed.message, validate(record)
    except RecordError as exc:
        if commit is None:
            raise
        raise RecordError(f"commit {commit[:10]} has a malformed run record: {exc.message}",
                          hint=exc.hint) from None


# --- validation -------------------------------------------------------------------------

# what one argument of execve may hold (MAX_ARG_STRLEN): a longer command cannot be run
MAX_COMMAND_BYTES = 128 * 1024 - 1
MAX_PATH_BYTES = 4095
MAX_NAME_BYTES = 255
_SHORT_PATH = MAX_NAME_BYTES // 4  # characters that cannot make a name over MAX_NAME_BYTES
_SIDECAR_ID_RE = re.compile(r"[0-9a-fA-F]{1,128}")
_PATH_FIELDS = ("inputs", "outputs", "extra_inputs")
_LIST_FIELDS = (*_PATH_FIELDS, "chain")


def _show(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value),
                                                                          type(value).__name__)


def not_utf8(text: str) -> str | None:
    """The bytes of ``text`` that are not UTF-8 (as read from the command line or the file
    system: surrogate escapes), shown as ``\\xNN``, or None.  A run record is JSON text in a
    UTF-8 commit message: such bytes cannot be recorded faithfully."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        bad = [c for c in text if "\udc80" <= c <= "\udcff"]
        return "".join(f"\\x{ord(c) - 0xdc00:02x}" for c in bad[:4]) or "a lone surrogate"


def path_problem(value: str) -> str | None:
    """Why ``value`` cannot be a path on this system (NUL, a path or a name over the limits
    of Linux file systems), or None."""
    if "\0" in value:
        return "holds a NUL character"
    if len(value) <= _SHORT_PATH:  # at most 4 bytes a character: within every limit
        return None
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_PATH_BYTES:
        return f"is a path of {len(raw)} bytes (at most {MAX_PATH_BYTES})"
    for part in raw.split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            return f"holds a name of {len(part)} bytes (at most {MAX_NAME_BYTES})"
    return None


def _check_path(name: str, value: str) -> None:
    problem = path_problem(value)
    if problem is not None:
        raise RecordError(f"field '{name}' {problem}")


def validate(record: dict[str, Any]) -> dict[str, Any]:
    """Check every known field's type (DataLad's schema, spec §1.5) and size; return the record.

    ``cmd`` str (required); ``pwd`` str; ``exit`` int or null; ``inputs``, ``outputs``,
    ``extra_inputs`` lists of str; ``chain`` list of str; ``dsid`` str; ``rr`` object.
    Other keys are kept unchecked (DataLad ignores them too).
    """
    if _plain(record):
        return record
    return _validate_fields(record)


def _validate_fields(record: dict[str, Any]) -> dict[str, Any]:
    """:func:`validate` field by field."""
    def wrong(name: str, expected: str) -> RecordError:
        return RecordError(f"field '{name}' must be {expected}, not "
                           f"{_type_name(record[name])} ({_show(record[name])})")

    if "cmd" not in record:
        raise RecordError("looks like a run commit but the record has no command ('cmd')")
    if not isinstance(record["cmd"], str):
        raise wrong("cmd", "a string")
    # at most 4 bytes a character: a short command needs no encoding to know its size
    size = len(record["cmd"]) if len(record["cmd"]) * 4 <= MAX_COMMAND_BYTES else \
        len(record["cmd"].encode("utf-8", "surrogateescape"))
    if size > MAX_COMMAND_BYTES:
        raise RecordError(f"field 'cmd' is {size} bytes long; a command can be at most "
                          f"{MAX_COMMAND_BYTES} bytes")
    if "\0" in record["cmd"]:
        raise RecordError("field 'cmd' holds a NUL character")
    if "pwd" in record:
        if not isinstance(record["pwd"], str):
            raise wrong("pwd", "a string")
        _check_path("pwd", record["pwd"])
    if "exit" in record and record["exit"] is not None and (
            isinstance(record["exit"], bool) or not isinstance(record["exit"], int)):
        raise wrong("exit", "a whole number or null")
    for name in _LIST_FIELDS:
        value = record.get(name)
        if value is None:  # absent or null: read as empty, as DataLad does
            continue
        if not isinstance(value, list):
            raise wrong(name, "a list of strings")
        paths = name != "chain"
        for item in value:
            if not isinstance(item, str):
                raise RecordError(f"field '{name}' must be a list of strings, but holds "
                                  f"{_type_name(item)} ({_show(item)})")
            if paths and (len(item) > _SHORT_PATH or "\0" in item):  # else no problem
                _check_path(name, item)
    if "dsid" in record and record["dsid"] is not None and not isinstance(record["dsid"], str):
        raise wrong("dsid", "a string")
    if "rr" in record and record["rr"] is not None:
        if not isinstance(record["rr"], dict):
            raise wrong("rr", "an object")
        _validate_rr(record["rr"])
    return record


_QUICK_CMD = MAX_COMMAND_BYTES // 4  # characters: at most 4 bytes each


def _plain(record: dict[str, Any]) -> bool:
    """True when :func:`validate` finds nothing wrong in ``record``, checked in a few C-level
    operations for what records hold (a short command, short paths); False when unsure:
    then :func:`validate` checks it field by field, and says what is wrong."""
    cmd = record.get("cmd")
    if type(cmd) is not str or len(cmd) > _QUICK_CMD or "\0" in cmd:
        return False
    pwd = record.get("pwd", "")
    if type(pwd) is not str or len(pwd) > _SHORT_PATH or "\0" in pwd:
        return False
    code = record.get("exit")
    if code is not None and type(code) is not int:
        return False
    dsid = record.get("dsid")
    if dsid is not None and type(dsid) is not str:
        return False
    for name in _LIST_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        if type(value) is not list:
            return False
        try:
            joined = "".join(value)  # TypeError: an item that is no string
        except TypeError:
            return False
        if len(joined) > _SHORT_PATH and name != "chain" \
                and max(map(len, value)) > _SHORT_PATH:
            return False
        if "\0" in joined and name != "chain":
            return False
    info = record.get("rr")
    if info is not None:
        if type(info) is not dict:
            return False
        _validate_rr(info)
    return True


def _validate_rr(info: dict[str, Any]) -> None:
    """rr's own extension of the record: the parts rr reads back."""
    def wrong(name: str, expected: str, value: Any) -> RecordError:
        return RecordError(f"field 'rr.{name}' must be {expected}, not {_type_name(value)} "
                           f"({_show(value)})")

    if "explicit" in info and not isinstance(info["explicit"], bool):
        raise wrong("explicit", "true or false", info["explicit"])
    if "duration" in info and (isinstance(info["duration"], bool) or
                               not isinstance(info["duration"], (int, float)) or
                               not math.isfinite(info["duration"])):
        raise wrong("duration", "a finite number", info["duration"])
    _validate_measured(info, wrong)
    container = info.get("container")
    if container is None or isinstance(container, str):
        return
    if not isinstance(container, dict):
        raise wrong("container", "an object", container)
    for key in ("name", "image", "digest"):
        if container.get(key) is not None and not isinstance(container[key], str):
            raise wrong(f"container.{key}", "a string", container[key])
    image = container.get("image")
    if image:
        _check_path("rr.container.image", image)
        norm = os.path.normpath(image)
        if os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
            raise RecordError(f"field 'rr.container.image' is outside the dataset: {image!r}")


def _validate_measured(info: dict[str, Any], wrong: Any) -> None:
    """The fields rr measures: env (the machine, the declared variables), resources, log."""
    env = info.get("env")
    if env is not None:
        if not isinstance(env, dict):
            raise wrong("env", "an object", env)
        for key in ("os", "arch", "python", "rr", "git_annex"):
            if env.get(key) is not None and not isinstance(env[key], str):
                raise wrong(f"env.{key}", "a string", env[key])
        found = env.get("vars")
        if found is not None:
            if not isinstance(found, dict):
                raise wrong("env.vars", "an object", found)
            for name, value in found.items():
                if value is not None and not isinstance(value, str):
                    raise wrong(f"env.vars.{name}", "a string or null", value)
        gpus = env.get("gpu")
        if gpus is not None:
            if not isinstance(gpus, list):
                raise wrong("env.gpu", "a list", gpus)
            for gpu in gpus:
                if not isinstance(gpu, dict) or not all(
                        isinstance(gpu.get(k), str) for k in ("name", "driver")):
                    raise wrong("env.gpu", "a list of {name, driver} objects", gpu)
    used = info.get("resources")
    if used is not None:
        if not isinstance(used, dict):
            raise wrong("resources", "an object", used)
        for key in ("wall_seconds", "cpu_seconds", "max_rss_bytes"):
            value = used.get(key)
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, float))):
                raise wrong(f"resources.{key}", "a number", value)
    log = info.get("log")
    if log is not None:
        if not isinstance(log, str):
            raise wrong("log", "a string", log)
        _check_path("rr.log", log)
        norm = os.path.normpath(log)
        if os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
            raise RecordError(f"field 'rr.log' is outside the dataset: {log!r}")


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
