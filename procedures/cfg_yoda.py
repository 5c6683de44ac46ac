"""YODA layout: code/ with a README, a top-level README and CHANGELOG, all kept in git."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _helpers import add_attributes, dataset_root, save, write_if_missing  # noqa: E402

README = """\
# Project <insert name>

## Dataset structure

- All inputs (i.e. building blocks from other sources) are located in
  `inputs/`.
- All custom code is located in `code/`.
"""

CODE_README = """\
All custom code goes into this directory. All scripts should be written such
that they can be executed from the root of the dataset, and are only using
relative paths for portability.
"""

root = dataset_root()
changed = []
if write_if_missing(root / "code" / "README.md", CODE_README):
    changed.append("code/README.md")
if add_attributes(root / "code" / ".gitattributes", ["* annex.largefiles=nothing"]):
    changed.append("code/.gitattributes")
if write_if_missing(root / "README.md", README):
    changed.append("README.md")
if write_if_missing(root / "CHANGELOG.md", ""):
    changed.append("CHANGELOG.md")
if add_attributes(root / ".gitattributes", ["CHANGELOG.md annex.largefiles=nothing",
                                            "README.md annex.largefiles=nothing"]):
    changed.append(".gitattributes")
if changed:
    save(root, "Apply YODA dataset setup", changed)
