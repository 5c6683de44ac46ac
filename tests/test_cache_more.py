"""Loose ends of the run-cache: --dry-run says what the cache would do, array jobs say why
they missed with -v, rr status --stale names outputs it cannot judge, a replay records the
environment of its own run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import git, rr


def runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.fixture
def counted(ds, tmp_path):
    marker = tmp_path / "marker"
    (ds / "in.txt").write_text("one\n")
    rr("save", "-m", "input", cwd=ds)
    cmd = f"cat in.txt > out.txt; echo x >> {marker}"
    return ds, marker, cmd


def run(ds: Path, cmd: str, *args: str, check: bool = True):
    return rr("run", "-i", "in.txt", "-o", "out.txt", *args, cmd, cwd=ds, check=check)


@pytest.mark.slow
def test_dry_run_says_whether_the_cache_would_restore(counted):
    ds, marker, cmd = counted
    proc = run(ds, cmd, "--dry-run")
    assert "run-cache:\n  would execute" in proc.stdout
    proc = run(ds, cmd, "--dry-run", "-v")
    assert "would execute: no earlier run of this command" in proc.stdout
    run(ds, cmd)
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    (ds / "out.txt").unlink()
    git("commit", "-qam", "drop the output", cwd=ds)
    proc = run(ds, cmd, "--dry-run")
    assert f"would be restored from cache: {first[:7]}" in proc.stdout
    got = json.loads(run(ds, cmd, "--dry-run", "--json").stdout.splitlines()[-1])
    assert got["cache"] == {"cached_from": first, "reasons": []}
    assert runs(marker) == 1  # a dry run executes nothing
    # a changed input: a miss, and -v says which input
    (ds / "in.txt").unlink()
    (ds / "in.txt").write_text("two\n")
    rr("save", "-m", "new input", cwd=ds)
    proc = run(ds, cmd, "--dry-run", "-v")
    assert "would execute: since" in proc.stdout and "input in.txt changed" in proc.stdout
    assert "would execute (-v says why" in run(ds, cmd, "--dry-run").stdout
    assert "would execute: --no-cache" in run(ds, cmd, "--dry-run", "--no-cache", "-v").stdout
    assert runs(marker) == 1
