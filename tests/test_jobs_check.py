"""-J / --scheduler checked once (engine.check): one message, exit code 2, before anything
happens, for every command that takes them; Dask is not imported for the check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recorder import api, engine
from recorder.engine import Target
from recorder.errors import EXIT_USAGE, UsageError

from .conftest import git, rr

MESSAGE = "--jobs must be a whole number of at least 1, not 0"


def test_check_names_the_target():
    assert engine.check() == Target("serial")
    assert engine.check(1) == Target("serial")
    assert engine.check(1, "  ") == Target("serial")
    assert engine.check(3) == Target("local", 3)
    assert engine.check(None, "tcp://127.0.0.1:8786") == \
        Target("address", None, address="tcp://127.0.0.1:8786")
    assert engine.check(2).parallel and not engine.check().parallel
    for bad in (0, -1, True, 1.5):
        with pytest.raises(UsageError) as err:
            engine.check(bad)
        assert err.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError, match="unknown scheduler 'x y'"):
        engine.check(None, "x y")


def test_check_imports_no_dask():
    code = ("import sys; from recorder import engine; engine.check(4); "
            "engine.check(2, 'tcp://127.0.0.1:1'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'dask_jobqueue')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_every_api_function_checks_jobs_before_anything(ds):
    head = git("rev-parse", "HEAD", cwd=ds)
    calls = [
        lambda: api.run("touch x", dataset=ds, outputs=["x"], jobs=0),
        lambda: api.run_array("touch {a}", dataset=ds, params=["a=1,2"], outputs=["{a}"],
                              jobs=0),
        lambda: api.rerun(dataset=ds, jobs=0),
        lambda: api.get(["."], dataset=ds, jobs=0),
        lambda: api.push(dataset=ds, jobs=0),
    ]
    for call in calls:
        with pytest.raises(UsageError) as err:
            call()
        assert err.value.message == MESSAGE
        assert err.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError, match="^--jobs and --scheduler run array jobs: give --param "
                                         "or --array$"):
        api.run("touch x", dataset=ds, outputs=["x"], jobs=2)
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert not (ds / "x").exists() and not (ds / "1").exists()


@pytest.mark.parametrize("args", [
    ["run", "--param", "a=1,2", "-o", "{a}", "-J", "0", "touch {a}"],
    ["rerun", "-J", "0"],
])
def test_cli_one_line_exit_2(ds, args):
    proc = rr(*args, cwd=ds, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == f"rr: error: {MESSAGE}"


@pytest.mark.parametrize("args", [
    ["run", "--param", "a=1,2", "-o", "{a}", "--scheduler", "nonsense", "touch {a}"],
    ["rerun", "-J", "2", "--scheduler", "nonsense"],
])
def test_cli_scheduler_usage_error_exit_2(ds, args):
    proc = rr(*args, cwd=ds, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == "rr: error: unknown scheduler 'nonsense'"
