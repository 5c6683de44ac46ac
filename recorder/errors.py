"""The one error root of rr.

Every expected failure is a :class:`RecorderError`: a one-line message a user can act on,
an optional hint line, and an exit code.  Exit codes are few and have a meaning:
0 ok, 1 error, 2 usage, 3 does not reproduce (``rr rerun --verify``), 130 interrupted; a
failed user command passes its own status through.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_NOT_REPRODUCED = 3  # rr rerun --verify: a record did not come out the same
# (and rr diff-runs --fail-on-change: the outputs of the two runs differ)
EXIT_NOT_VERIFIED = 4  # rr rerun --verify: no record could be verified (every one skipped)


class RecorderError(Exception):
    """Base of all errors rr reports to a user."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RecorderError):
    """The request itself is malformed (bad option value, missing command)."""

    exit_code = EXIT_USAGE


class NoDatasetError(RecorderError):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"not inside a dataset: {path}",
            hint="create one with 'rr create PATH' or pass -d DATASET",
        )


class OutsideDatasetError(RecorderError):
    def __init__(self, path: str, root: str) -> None:
        super().__init__(f"path is outside the dataset {root}: {path}")


class DirtyDatasetError(RecorderError):
    def __init__(self, paths: Sequence[str]) -> None:
        shown = ", ".join(paths[:8]) + (f" (and {len(paths) - 8} more)" if len(paths) > 8 else "")
        super().__init__(
            f"the dataset has unsaved changes: {shown}",
            hint="save them with 'rr save', or declare outputs and use --explicit",
        )
        self.paths = list(paths)


class PlaceholderError(RecorderError):
    pass


class InputNotFoundError(RecorderError):
    def __init__(self, specs: Sequence[str]) -> None:
        quoted = ", ".join(repr(s) for s in specs)
        super().__init__(f"input did not match any file: {quoted}")
        self.specs = list(specs)


class RecordError(RecorderError):
    """A run record in a commit message or sidecar cannot be read."""


class ToolMissingError(RecorderError):
    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} is not installed or not on PATH", hint=hint)


class CommandError(RecorderError):
    """A git or git-annex call failed."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str = "") -> None:
        last = [line for line in stderr.strip().splitlines() if line.strip()]
        detail = last[-1].strip() if last else f"exit code {returncode}"
        name = " ".join(argv[:2]) if argv and argv[0] == "git" else (argv[0] if argv else "?")
        super().__init__(f"{name} failed: {detail}")
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


class CommandFailedError(RecorderError):
    """The user's command exited non-zero; rr exits with the same status."""

    def __init__(self, returncode: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode
        self.exit_code = returncode if 0 < returncode < 256 else EXIT_ERROR


class RunNotSavedError(RecorderError):
    """The command ran, but its results could not be committed (the message is kept)."""


class InterruptedError_(RecorderError):
    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str = "interrupted; nothing was saved") -> None:
        super().__init__(message)


Interrupted = InterruptedError_


class AnnexError(RecorderError):
    def __init__(self, action: str, failed: list[dict]) -> None:
        first = failed[0]
        where = first.get("file") or first.get("key") or "?"
        why = " ".join(m.strip() for m in first.get("error-messages", []) if m.strip())
        why = why or first.get("note", "").strip() or "failed"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        super().__init__(f"git annex {action} failed for {where}: {why}{more}")
        self.failed = failed


class UnsafePathError(OutsideDatasetError):
    """A path that would make rr read or write outside the dataset (or inside .git)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        RecorderError.__init__(self, message, hint=hint)


class UnsafeArchiveError(RecorderError):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"unsafe member in archive: {name!r} {why}; nothing was extracted",
                         hint="rr only extracts regular files, directories and links that "
                              "stay inside the extraction directory")


class EngineError(RecorderError):
    """The engine cannot run the tasks (the scheduler unreachable, the batch system refusing
    the worker jobs) or a worker died under a task; one line, with a hint where there is
    something to do.  Bad ``--jobs``/``--scheduler`` values are UsageErrors (engine.check)."""


class RerunStoppedError(RecorderError):
    """A replay stopped at a step; its hint says how to go on or give up."""

    def __init__(self, message: str, hint: str, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class ContainerRuntimeError(RecorderError):
    """A container runtime (docker, podman, singularity) is missing or failed."""
