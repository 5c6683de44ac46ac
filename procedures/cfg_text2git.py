"""Text files go to git, binary files to the annex (git-annex decides by MIME encoding)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _helpers import add_attributes, dataset_root, save  # noqa: E402

RULE = "* annex.largefiles=((mimeencoding=binary)and(largerthan=0))"

root = dataset_root()
if add_attributes(root / ".gitattributes", [RULE]):
    save(root, "Instruct annex to add text files to Git", [".gitattributes"])
