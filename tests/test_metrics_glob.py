"""Metrics globs (``sweep/*/accuracy.json``) matched against many revisions' trees: the same
files as a ``git ls-tree -r`` of each revision would give, in a few processes however many
revisions there are (issue #22: no process per commit)."""

import fnmatch
import json
import shutil
import pytest

from recorder import gitrepo, proc

from .conftest import git, rr


def _ls_tree_way(ds, revs, parts):
    """What metrics did before: ls-tree -r of each revision under the fixed part."""
    wild = [i for i, p in enumerate(parts) if any(c in p for c in "*?[")]
    under = "/".join(parts[:wild[0]]) if wild else "/".join(parts[:-1])
    found = set()
    for rev in revs:
        for path in gitrepo.tree_files(ds, rev, under):
            names = path.split("/")
            if len(names) == len(parts) and all(fnmatch.fnmatchcase(n, p)
                                                for n, p in zip(names, parts)):
                found.add(path)
    return found


@pytest.fixture(scope="module")
def sweep(_template, tmp_path_factory):
    """Revisions whose trees share subtrees, with files, annexed links, directories where
    the pattern wants files, dotfiles, odd names and a subdataset (a gitlink)."""
    ds = tmp_path_factory.mktemp("glob") / "ds"
    shutil.copytree(_template, ds, symlinks=True)
    revs = []
    for i in range(6):
        for j in range(i % 3 + 1):
            d = ds / "sweep" / f"lr-{j}" / ("deep" if j == 2 else "")
            d.mkdir(parents=True, exist_ok=True)
            (d / "accuracy.json").write_text(json.dumps({"acc": i + j / 10}))
        (ds / "sweep" / "a b ü").mkdir(exist_ok=True)
        (ds / "sweep" / "a b ü" / "accuracy.json").write_text("{}")
        (ds / "sweep" / ".hidden").mkdir(exist_ok=True)
        (ds / "sweep" / ".hidden" / "accuracy.json").write_text("{}")
        (ds / "sweep" / "lr-0" / "accuracy.json.d").mkdir(exist_ok=True)
        (ds / "sweep" / "lr-0" / "accuracy.json.d" / "x").write_text(str(i))
        (ds / f"top-{i}.json").write_text(str(i))
        rr("save", "-m", f"step {i}", cwd=ds)
        revs.append(git("rev-parse", "HEAD", cwd=ds).strip())
    sub = ds / "sweep" / "lr-9"
    rr("create", "-d", str(ds), str(sub))
    revs.append(git("rev-parse", "HEAD", cwd=ds).strip())
    return ds, revs


@pytest.mark.parametrize("pattern", [
    "sweep/*/accuracy.json", "sweep/lr-?/accuracy.json", "sweep/lr-[01]/accuracy.json",
    "sweep/*/accuracy.json*", "sweep/*", "sweep/*/*", "sweep/*/deep/accuracy.json",
    "*/lr-1/accuracy.json", "top-*.json", "*", "sweep/lr-0/accuracy.json.d/*",
    "nothing/*/here.json", "sweep/*/deep"])
def test_the_same_files_as_ls_tree_of_each_revision(sweep, pattern):
    ds, revs = sweep
    parts = pattern.split("/")
    assert gitrepo.glob_files(ds, revs, parts) == _ls_tree_way(ds, revs, parts)


def test_a_few_processes_for_many_revisions(sweep, tmp_path, monkeypatch):
    ds, revs = sweep
    trace = tmp_path / "trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    monkeypatch.setattr(proc, "_BASE_ENV", None)
    got = gitrepo.glob_files(ds, revs * 10, "sweep/*/accuracy.json".split("/"))
    assert "sweep/lr-1/accuracy.json" in got and "sweep/a b ü/accuracy.json" in got
    started = [line for line in trace.read_text().splitlines() if "built-in: git" in line]
    assert len(started) <= 3, started
