"""Docs and layering, tested like code."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from recorder.cli import app
from tests.conftest import rr, rr_in

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_names() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_has_help_and_a_readme_example():
    names = command_names()
    assert {"create", "save", "run", "rerun", "run-procedure"} <= set(names)
    for name in names:
        proc = rr_in(name, "--help")
        assert "Example:" in proc.stdout, f"rr {name} --help has no example"
        assert re.search(rf"^rr {re.escape(name)}\b", README, re.M), f"README lacks rr {name}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash tools/test.sh" in README
    assert "bash tools/test.sh" in ci


CLI = sorted((ROOT / "recorder" / "cli").glob("*.py"))


def test_cli_and_api_start_no_processes_themselves():
    assert len(CLI) > 3
    for path in [*CLI, *(ROOT / "recorder" / name for name in
                         ("api.py", "run.py", "jobs.py", "rerun/replay.py",
                          "rerun/batch.py", "rerun/steps.py", "save.py", "create.py"))]:
        assert "import subprocess" not in path.read_text(), path
    low_level = re.compile(r"^\s*(from \.+(gitrepo|annex|proc) import|"
                           r"from \.+ import .*\b(gitrepo|annex|proc)\b)", re.M)
    for path in [*CLI, ROOT / "recorder" / "api.py"]:
        assert not low_level.search(path.read_text()), f"{path.name} imports a process-level module"


def test_version():
    assert rr("--version").stdout.startswith("rr ")
