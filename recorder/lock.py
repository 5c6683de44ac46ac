"""Serialising changes to one dataset across rr processes, and shielding critical sections."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def dataset_lock(git_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the dataset while the index and HEAD are being changed.

    Only preparation (get/unlock) and saving take the lock; the user's command runs without
    it, so two ``rr run --explicit`` with disjoint outputs execute side by side and each
    commit holds exactly its own outputs.
    """
    path = git_dir / "rr.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Postpone SIGINT/SIGTERM until the block is done, so a commit is never half-made."""
    received: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def remember(signum: int, _frame: object) -> None:
        received.append(signum)

    try:
        previous = {s: signal.signal(s, remember) for s in sigs}
    except ValueError:  # not in the main thread: nothing to shield
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            if received[0] == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), received[0])
