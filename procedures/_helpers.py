"""Small helpers shared by rr's shipped procedures (run as scripts: python PROC.py DATASET)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def dataset_root() -> Path:
    if len(sys.argv) < 2:
        sys.exit("usage: PROCEDURE DATASET [ARGS...]")
    return Path(sys.argv[1]).absolute()


def add_attributes(path: Path, lines: list[str]) -> bool:
    """Append gitattributes lines that are not there yet; returns whether the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    new = [line for line in lines if line not in existing]
    if not new:
        return False
    text = "\n".join(existing + new) + "\n"
    path.write_text(text, encoding="utf-8")
    return True


def write_if_missing(path: Path, text: str) -> bool:
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def save(root: Path, message: str, paths: list[str]) -> None:
    if os.environ.get("RR_PROCEDURE_NO_SAVE"):
        return  # run by `rr run-procedure`: rr saves the changes with a run record
    from recorder import api  # noqa: PLC0415  only when run by hand (rr saves itself)

    api.save(paths, dataset=root, message=message)
