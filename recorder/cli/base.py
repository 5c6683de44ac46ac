"""What every command shares: calling the API with the one error printer, usage errors, and
the argument rules of commands that take a command line after their options (``--dry-run``
with an optional value) and of ``--annex[=MODE]`` - used by typer's command classes
(recorder/cli/typed.py) and by the fast path (recorder/cli/fast.py) alike.  No typer here:
an exit is ``SystemExit`` (what typer's ``Exit`` becomes too)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from ..errors import RecorderError
from . import render
from .options import DRY_RUN_MODES

STATE = {"debug": False}
T = TypeVar("T")


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the API; turn a RecorderError into 'rr: error: ...' (and its hint) and its exit
    code, Ctrl-C into 'rr: interrupted' and 130; with --debug both raise (a traceback)."""
    try:
        return fn(*args, **kwargs)
    except RecorderError as exc:
        if STATE["debug"]:
            raise
        render.error(exc.message, exc.hint)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        if STATE["debug"]:
            raise
        render.err("rr: interrupted")
        raise SystemExit(130) from None
    except OSError as exc:
        # a name over the file-system limit (255 bytes a name, 4095 a path) can come from any
        # argument that becomes a path: one line naming it, not a traceback
        if STATE["debug"] or exc.errno != errno.ENAMETOOLONG:
            raise
        name = str(exc.filename or "")
        shown = name if len(name) <= 80 else name[:60] + "..." + name[-12:]
        render.error(f"a file name is too long for the file system: {shown}",
                     "names can be at most 255 bytes, paths 4095")
        raise SystemExit(1) from None


def usage_error(message: str, hint: str | None = None) -> NoReturn:
    """A usage error found by the CLI itself: one line (and a hint), exit code 2."""
    render.error(message, hint)
    raise SystemExit(2)


def exit_if(failed: int) -> None:
    """Exit code 1 when some result records failed."""
    if failed:
        raise SystemExit(1)


ANNEX_MODES = ("basic", "availability", "all")


def annex_mode_args(args: list[str]) -> list[str]:
    """``--annex`` takes an optional value, as DataLad's: ``--annex`` alone is ``basic``,
    ``--annex MODE`` / ``--annex=MODE`` name it when MODE is basic, availability or all;
    any other word after it is a path.  The arguments with ``--annex=MODE`` spelled out."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            out += args[i:]
            break
        if a == "--annex":
            nxt = args[i + 1] if i + 1 < len(args) else None
            out.append(f"--annex={nxt if nxt in ANNEX_MODES else 'basic'}")
            i += 2 if nxt in ANNEX_MODES else 1
            continue
        if a.startswith("--annex=") and a.split("=", 1)[1] not in ANNEX_MODES:
            usage_error(f"--annex must be basic, availability or all, not "
                        f"{a.split('=', 1)[1]!r}")
        out.append(a)
        i += 1
    return out


def dry_run_args(args: list[str], takes_value: set[str]) -> list[str]:
    """``--dry-run`` takes an optional value: ``--dry-run`` alone is ``basic``,
    ``--dry-run=MODE`` and (DataLad's spelling) ``--dry-run MODE`` name it when MODE is
    basic or command; any other word after it starts the command (``rr run --dry-run
    echo hi``).  Only the options before the command are looked at (``takes_value``: the
    command's options that take a value)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--" or a == "-" or not a.startswith("-"):
            return out + args[i:]
        if a == "--dry-run":
            nxt = args[i + 1] if i + 1 < len(args) else None
            if nxt in DRY_RUN_MODES:
                out.append(f"--dry-run={nxt}")
                i += 2
            else:
                out.append("--dry-run=basic")
                i += 1
            continue
        if a.startswith("--dry-run=") and a.split("=", 1)[1] not in DRY_RUN_MODES:
            usage_error(f"--dry-run must be basic or command, not {a.split('=', 1)[1]!r}")
        out.append(a)
        if a in takes_value and i + 1 < len(args):
            out.append(args[i + 1])
            i += 1
        i += 1
    return out


def no_such_option(command: str, option: str) -> NoReturn:
    """An unknown option before the command of a command that takes a command line."""
    usage_error(f"no such option: {option}",
                f"options go before the command; put '--' before a command that "
                f"starts with '-' (rr {command} [OPTIONS] -- CMD)")


# the command classes (typer's, made in recorder/cli/typed.py) of commands that take a
# command line after their options, and of those with --annex[=MODE]
AFTER_OPTIONS = "after-options"
ANNEX_MODE = "annex-mode"
