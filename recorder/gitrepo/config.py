"""git's configuration: reading and writing ``git config`` (a repository's or one file's)."""

from __future__ import annotations

import re

from .. import config as cfgkeys
from ..errors import CommandError
from ._runner import PathLike, call_git, call_git_optional, run


def config_list(root: PathLike, file: str | None = None) -> list[tuple[str, str]]:
    """All (key, value) pairs of git's config (or of one config ``file``), in order."""
    args = ["config", "-f", file, "-z", "--list"] if file else ["config", "-z", "--list"]
    done = run(args, root, check=False)
    if done.returncode != 0:
        if file is not None:
            return []
        raise CommandError(["git", *args], done.returncode, done.stderr.decode(errors="replace"))
    pairs = []
    for item in done.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not item:
            continue
        key, _, value = item.partition("\n")
        pairs.append((key, value))
    return pairs


def config_file_list(root: PathLike, file: str) -> list[tuple[str, str]]:
    """:func:`config_list` of one config ``file``, without a git process when the file is
    plain (``[section]`` / ``[section "sub"]`` headers, ``name = value`` lines, comments):
    read in Python exactly as git reads it; any other form is git's to read."""
    try:
        with open(file, "rb") as fh:
            pairs = _plain_config(fh.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        pairs = None
    return pairs if pairs is not None else config_list(root, file)


_SECTION = re.compile(r'\[([A-Za-z0-9-]+)(?:[ \t]+"([^"\\]+)")?\]')
_VARIABLE = re.compile(r"([A-Za-z][A-Za-z0-9-]*)[ \t]*=[ \t]*([^\"\\#;\t]*)")


def _plain_config(text: str) -> list[tuple[str, str]] | None:
    """The (key, value) pairs of a config file in the plain form (no quotes, escapes,
    continuation lines, inline comments, tabs inside values, keys without '=', legacy
    ``[section.sub]`` headers): the pairs ``git config -f FILE -z --list`` gives; None for a
    file in any other form."""
    if text.startswith("\ufeff") or "\r" in text or "\0" in text or "\\" in text:
        return None
    pairs: list[tuple[str, str]] = []
    section = None
    for raw in text.split("\n"):
        line = raw.strip(" \t")
        if not line or line[0] in "#;":
            continue
        head = _SECTION.fullmatch(line)
        if head:
            sub = head.group(2)
            section = head.group(1).lower() + (f".{sub}" if sub is not None else "")
            continue
        var = _VARIABLE.fullmatch(line)
        if var is None or section is None:
            return None
        pairs.append((f"{section}.{var.group(1).lower()}", var.group(2).rstrip(" ")))
    return pairs


def config_parses(root: PathLike, file: str) -> bool:
    """Whether git can read the config ``file`` at all."""
    return call_git_optional(["config", "-f", file, "--list"], root) is not None


def config_get(root: PathLike, key: str) -> str | None:
    """The value of ``key`` in git's config (the last one), or None when it is not set."""
    out = call_git_optional(["config", key], root)
    return out.strip() if out is not None else None


def config_set(root: PathLike, key: str, value: str, *, file: str | None = None,
               add: bool = False) -> None:
    args = ["config"]
    if file:
        args += ["-f", file]
    if add:
        args.append("--add")
    call_git([*args, key, value], root)


def config_unset_all(root: PathLike, key: str, *, file: str | None = None) -> None:
    args = ["config"] + (["-f", file] if file else []) + ["--unset-all", key]
    run(args, root, check=False)


def config_remove_section(root: PathLike, section: str, *, file: str | None = None) -> bool:
    args = ["config"] + (["-f", file] if file else []) + ["--remove-section", section]
    return run(args, root, check=False).returncode == 0


def upstream(root: PathLike, branch: str) -> tuple[str | None, str | None]:
    """(remote, branch on that remote) that ``branch`` tracks, each None when not set."""
    remote = call_git_optional(["config", cfgkeys.branch_key(branch, "remote")], root)
    merge_ref = call_git_optional(["config", cfgkeys.branch_key(branch, "merge")], root)
    ref = merge_ref.strip() if merge_ref else ""
    return ((remote.strip() or None) if remote else None,
            ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None)
