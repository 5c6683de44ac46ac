"""proc starts a bare tool name from the binary its PATH search finds, resolved once."""

import os
import stat

from recorder import proc


def _tool(d, name="tool", text="#!/bin/sh\necho {where}\n"):
    d.mkdir(exist_ok=True)
    script = d / name
    script.write_text(text.format(where=d.name))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_first_on_path_runs_as_a_search_would(tmp_path, monkeypatch):
    _tool(tmp_path / "a")
    _tool(tmp_path / "b")
    (tmp_path / "empty").mkdir()
    path = os.pathsep.join(str(tmp_path / d) for d in ("empty", "a", "b")) + os.pathsep + \
        os.environ["PATH"]
    monkeypatch.setenv("PATH", path)
    monkeypatch.setattr(proc, "_BASE_ENV", None)
    assert proc._resolved("tool", path) == str(tmp_path / "a" / "tool")
    out = proc.capture(["tool"], cwd=tmp_path).stdout
    assert out == b"a\n"  # argv[0] is still the bare name: the script sees what it always saw


def test_no_resolution_where_the_child_would_search_elsewhere(tmp_path):
    _tool(tmp_path / "a")
    rel = os.pathsep.join(["a", "/usr/bin"])
    assert proc._resolved("tool", rel) is None  # relative entries: the child's cwd decides
    assert proc._resolved("./tool", str(tmp_path / "a")) is None
    assert proc._resolved("no-such-tool-here", str(tmp_path / "a")) is None
    assert proc._resolved("tool", os.pathsep + str(tmp_path / "a")) is None  # "" is the cwd
