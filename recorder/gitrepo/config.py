"""git's configuration: reading and writing ``git config`` (a repository's or one file's)."""

from __future__ import annotations

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
