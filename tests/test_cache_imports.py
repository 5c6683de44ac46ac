"""The run-cache follows the dataset's Python modules a named script imports: changing
``code/helper.py`` that ``code/train.py`` imports (or a module ``python -m`` runs, or one a
package imports relatively) makes the next run execute instead of restoring stale outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import rr

pytestmark = pytest.mark.slow


def runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def write(ds: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = ds / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_text(text)


@pytest.fixture
def project(ds, tmp_path):
    """Python code kept in git (as the yoda procedure does for code/), an annexed input."""
    (ds / ".gitattributes").write_text((ds / ".gitattributes").read_text()
                                       + "*.py annex.largefiles=nothing\n")
    write(ds, {
        "in.txt": "data\n",
        "code/train.py": "import helper\nfrom lib import deep\n"
                         "print(helper.X, deep.Y, open('in.txt').read().strip())\n",
        "code/helper.py": "X = 1\n",
        "code/lib/__init__.py": "",
        "code/lib/deep.py": "from . import deeper\nY = deeper.Z\n",
        "code/lib/deeper.py": "Z = 3\n",
        "code/unrelated.py": "W = 0\n",
    })
    rr("save", "-m", "code", cwd=ds)
    marker = tmp_path / "marker"
    return ds, marker, f"python3 code/train.py > out.txt; echo x >> {marker}"


def run(ds: Path, cmd: str, *extra: str):
    return rr("run", *extra, "-i", "in.txt", "-o", "out.txt", cmd, cwd=ds)


@pytest.mark.parametrize("module, text, expected", [
    ("code/helper.py", "X = 10\n", "10 3 data"),           # imported by the named script
    ("code/lib/deeper.py", "Z = 30\n", "1 30 data"),       # two levels down, relatively
    ("code/lib/__init__.py", "print('init')\n", "init\n1 3 data"),  # a package on the way
])
def test_a_changed_imported_module_executes_again(project, module, text, expected):
    ds, marker, cmd = project
    run(ds, cmd)
    assert (ds / "out.txt").read_text() == "1 3 data\n"
    run(ds, cmd)
    assert runs(marker) == 1  # restored: nothing changed
    write(ds, {module: text})
    rr("save", "-m", "change a module", cwd=ds)
    proc = run(ds, cmd, "-v")
    assert runs(marker) == 2, proc.stderr
    assert f"a script it names imports {module}, which changed" in proc.stderr
    assert (ds / "out.txt").read_text() == expected + "\n"
    run(ds, cmd)
    assert runs(marker) == 2  # and that run is cached in turn


def test_a_module_nothing_imports_does_not_invalidate(project):
    ds, marker, cmd = project
    run(ds, cmd)
    write(ds, {"code/unrelated.py": "W = 1\n"})
    rr("save", "-m", "unrelated", cwd=ds)
    run(ds, cmd)
    assert runs(marker) == 1


def test_python_minus_m_and_an_annexed_module(ds, tmp_path):
    # pkg/main.py in git imports pkg.util, which is annexed (read from the object store)
    (ds / ".gitattributes").write_text((ds / ".gitattributes").read_text()
                                       + "pkg/main.py annex.largefiles=nothing\n"
                                       + "pkg/__init__.py annex.largefiles=nothing\n")
    write(ds, {"in.txt": "data\n", "pkg/__init__.py": "",
               "pkg/main.py": "from pkg.util import V\nprint(V)\n", "pkg/util.py": "V = 1\n"})
    rr("save", "-m", "code", cwd=ds)
    marker = tmp_path / "marker"
    cmd = f"python3 -m pkg.main > out.txt; echo x >> {marker}"
    run(ds, cmd)
    run(ds, cmd)
    assert runs(marker) == 1
    rr("unlock", "pkg/util.py", cwd=ds)
    write(ds, {"pkg/util.py": "V = 2\n"})
    rr("save", "-m", "util", cwd=ds)
    proc = run(ds, cmd, "-v")
    assert runs(marker) == 2, proc.stderr
    assert "imports pkg/util.py, which changed: MD5E-" in proc.stderr
    assert (ds / "out.txt").read_text() == "2\n"


def test_rerun_explain_names_the_imported_module(project):
    ds, marker, cmd = project
    run(ds, cmd)
    write(ds, {"code/helper.py": "X = 5\n"})
    rr("save", "-m", "helper", cwd=ds)
    lines = [json.loads(x) for x in rr("rerun", "--explain", "--json", "HEAD~1",
                                        cwd=ds).stdout.splitlines()]
    assert lines[0]["cached_from"] is None
    assert any(c.startswith("code code/helper.py (imported by a script the command names) "
                            "changed") for c in lines[0]["changes"]), lines
    assert runs(marker) == 1
