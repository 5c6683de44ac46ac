"""rr status --stale: outputs out of date because a declared input, declared code or a file
the command names changed since the run commit that wrote them."""

from __future__ import annotations

import json

import pytest

from .conftest import git, rr


def replace(path, text: str) -> None:
    """A new version of a (possibly annexed) file: a new file, never a write through a link."""
    path.unlink()
    path.write_text(text)


@pytest.fixture
def two_runs(ds):
    (ds / "in.txt").write_text("one\n")
    (ds / "other.txt").write_text("other\n")
    (ds / "code").mkdir()
    (ds / "code" / "count.sh").write_text("wc -l \"$@\"\n")
    rr("save", "-m", "inputs and code", cwd=ds)
    rr("run", "-i", "in.txt", "-o", "n.txt", "sh code/count.sh in.txt > n.txt", cwd=ds)
    rr("run", "-i", "other.txt", "-o", "o.txt", "cat other.txt > o.txt", cwd=ds)
    return ds


@pytest.mark.slow
def test_nothing_stale_after_the_runs(two_runs):
    proc = rr("status", "--stale", cwd=two_runs)
    assert proc.stdout == "no stale outputs\n"
    assert rr("status", "--stale", "--json", cwd=two_runs).stdout == ""


@pytest.mark.slow
def test_stale_after_an_input_change(two_runs):
    ds = two_runs
    first = git("rev-parse", "HEAD~1", cwd=ds).strip()
    replace(ds / "in.txt", "one\ntwo\n")
    rr("save", "-m", "more input", cwd=ds)
    lines = rr("status", "--stale", cwd=ds).stdout.splitlines()
    assert len(lines) == 1  # o.txt's input did not change
    assert lines[0].startswith(f"n.txt: out of date since {first[:7]}: input in.txt changed: ")
    assert lines[0].endswith(f"update with: rr rerun {first[:10]}")
    rec = json.loads(rr("status", "--stale", "--json", cwd=ds).stdout)
    assert rec["path"] == "n.txt" and rec["state"] == "stale" and rec["commit"] == first
    assert rec["update"] == f"rr rerun {first[:10]}"
    # the command it names brings it up to date
    rr("rerun", first[:10], cwd=ds)
    assert (ds / "n.txt").read_text().split()[0] == "2"
    assert rr("status", "--stale", cwd=ds).stdout == "no stale outputs\n"


@pytest.mark.slow
def test_stale_after_a_code_change(two_runs):
    ds = two_runs
    first = git("rev-parse", "HEAD~1", cwd=ds).strip()
    # the script the command names is implicit code
    replace(ds / "code" / "count.sh", "wc -c \"$@\"\n")
    rr("save", "-m", "count bytes", cwd=ds)
    lines = rr("status", "--stale", cwd=ds).stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"n.txt: out of date since {first[:7]}: "
                                                   "code code/count.sh (named in the "
                                                   "command) changed: ")
    # declared code (rr.run.cache-code) counts for every run: its change makes both stale
    (ds / "lib").mkdir()
    (ds / "lib" / "x.py").write_text("x = 1\n")
    rr("save", "-m", "lib", cwd=ds)
    git("config", "rr.run.cache-code", "lib", cwd=ds)
    assert rr("status", "--stale", cwd=ds).stdout.count("code lib changed: (absent) -> tree ") == 2
    # limited to paths
    lines = rr("status", "--stale", "o.txt", cwd=ds).stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("o.txt: ")


@pytest.mark.slow
def test_an_output_saved_over_is_not_the_runs_any_more(two_runs):
    ds = two_runs
    replace(ds / "in.txt", "changed\n")
    replace(ds / "n.txt", "by hand\n")
    rr("save", "-m", "by hand", cwd=ds)
    assert rr("status", "--stale", cwd=ds).stdout == "no stale outputs\n"


def test_stale_usage_errors(ds):
    proc = rr("status", "--stale", "--annex", cwd=ds, check=False)
    assert proc.returncode == 2 and "--stale takes no -r, -R or --annex" in proc.stderr
