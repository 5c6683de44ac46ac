"""DataLad's -R/--recursion-limit: with -r, how many levels of subdatasets down a command
goes (1: only the dataset's own subdatasets).  A depth is None (no limit) or the levels still
allowed.  A module of its own: ``rr status`` imports it without the subdataset machinery."""

from __future__ import annotations

from .errors import UsageError


def check_recursion(recursive: bool, recursion_limit: int | None) -> int | None:
    """The depth a command with ``recursive`` goes to (None: no limit); a limit without
    ``recursive`` or below 0 is a UsageError."""
    if recursion_limit is None:
        return None
    if recursion_limit < 0:
        raise UsageError(f"-R/--recursion-limit must be 0 or more, not {recursion_limit}")
    if not recursive:
        raise UsageError("-R/--recursion-limit limits -r/--recursive: add -r")
    return recursion_limit


def may_descend(depth: int | None) -> bool:
    """Whether one more level of subdatasets is allowed."""
    return depth is None or depth > 0


def deeper(depth: int | None) -> int | None:
    """The depth left one level of subdatasets down."""
    return None if depth is None else depth - 1
