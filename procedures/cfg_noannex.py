"""A plain git dataset: git-annex is uninitialised and a .noannex file keeps it that way."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _helpers import dataset_root, save, write_if_missing  # noqa: E402

from recorder import proc  # noqa: E402 - every process rr starts goes through recorder.proc

root = dataset_root()
if (root / ".git" / "annex").exists() or proc.capture(
        ["git", "config", "annex.version"], cwd=root, check=False).returncode == 0:
    keys = proc.capture(["git", "annex", "find", "--include=*", "--format=${key}\\n"],
                        cwd=root, check=False)
    if keys.stdout.strip():
        sys.exit("cfg_noannex: the dataset already has annexed files; refusing to uninit")
    proc.capture(["git", "annex", "uninit"], cwd=root)
if write_if_missing(root / ".noannex", ""):
    save(root, "Prevent git-annex from being initialised", [".noannex"])
