"""A plain git dataset: git-annex is uninitialised and a .noannex file keeps it that way."""

from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _helpers import dataset_root, save, write_if_missing  # noqa: E402

root = dataset_root()
if (root / ".git" / "annex").exists() or subprocess.run(
        ["git", "config", "annex.version"], cwd=root, capture_output=True).returncode == 0:
    keys = subprocess.run(["git", "annex", "find", "--include=*", "--format=${key}\\n"],
                          cwd=root, capture_output=True, text=True)
    if keys.stdout.strip():
        sys.exit("cfg_noannex: the dataset already has annexed files; refusing to uninit")
    subprocess.run(["git", "annex", "uninit"], cwd=root, check=True, capture_output=True)
if write_if_missing(root / ".noannex", ""):
    save(root, "Prevent git-annex from being initialised", [".noannex"])
