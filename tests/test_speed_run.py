"""rr run starts few processes: counts, not times (issue #22 rows 1-2, items 1-2).

Processes are counted by wrappers first on PATH that log each start of ``git`` and
``git-annex`` (rr finds both through PATH, and so does git-annex for the git it starts), so
the counts include the git processes git-annex starts for rr.
"""

import os
import shutil
import stat

import pytest

from .conftest import git, rr


def _wrappers(tmp_path):
    """A directory of logging ``git`` and ``git-annex`` wrappers, and the log."""
    bindir = tmp_path / "wrap-bin"
    bindir.mkdir()
    log = tmp_path / "starts.log"
    for name in ("git", "git-annex"):
        real = shutil.which(name)
        assert real, name
        script = bindir / name
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\n'
                          f'exec "{real}" "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bindir, log


def _counted(ds, tmp_path, *args):
    """(git starts, git-annex starts, the started command lines) of ``rr ARGS``."""
    bindir, log = tmp_path / "wrap-bin", tmp_path / "starts.log"
    if not bindir.exists():
        _wrappers(tmp_path)
    log.unlink(missing_ok=True)
    rr(*args, cwd=ds, env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    lines = log.read_text().splitlines() if log.exists() else []
    # `git annex X` is a git process that starts git-annex: counted as git and git-annex
    gits = [line for line in lines if line.startswith("git ")]
    annexes = [line for line in lines if line.startswith("git-annex ")]
    return len(gits), len(annexes), lines


TEN = "mkdir -p out && for i in 1 2 3 4 5 6 7 8 9 10; do echo $i > out/$i; done"


@pytest.fixture
def warm(ds, tmp_path):
    """A dataset after one run (git-annex's first-use work and rr's caches done, with the
    wrappers: rr keeps git-annex's version keyed by the binary it finds)."""
    _counted(ds, tmp_path, "run", "-o", "first", "echo 1 > first")
    return ds


def test_run_of_ten_files_starts_few_processes(warm, tmp_path):
    gits, annexes, lines = _counted(warm, tmp_path, "run", "-o", "out", TEN)
    assert git("ls-files", "out", cwd=warm).split() == [f"out/{i}" for i in
                                                        sorted(map(str, range(1, 11)))]
    # rr reads config with -z (git-annex with --null)
    rr_config = [line for line in lines if line.startswith("git config") and " -z " in line]
    # one git-annex (add), started directly (no `git annex` wrapper process)
    assert annexes == 1, lines
    assert not any(line.startswith("git annex") for line in lines), lines
    # git's config read once (the committed .datalad/config parsed in Python)
    assert len(rr_config) <= 1, lines
    # all git processes: rr's status (2), staging check, the plumbing commit (3),
    # maintenance, the duration note; git-annex's own (about 14)
    assert gits <= 24, "\n".join(lines)


def test_run_with_nothing_to_save_starts_no_git_annex(warm, tmp_path):
    gits, annexes, lines = _counted(warm, tmp_path, "run", "true")
    assert annexes == 0, lines
    assert gits <= 3, lines  # config, status before and after


PLAIN_CONFIGS = [
    '[datalad "dataset"]\n\tid = 5a1b-c\n',
    '[datalad "dataset"]\n\tid = x\n[datalad "run"]\n\trecord-directory = .rr/records\n'
    '\trecord-directory = again\n# a comment\n; another\n\n[Annex]\n  LargeFiles =  a b  c  \n'
    '[x "Sub Section"]\n\tEmpty =\n\tk-2 = v=w\n',
    "",
    "[a]\n",
]
OTHER_CONFIGS = [
    '[a]\n\tk = "quoted # value"\n',
    "[a]\n\tk = v # comment\n",
    "[a]\n\tk = v\\\n  continued\n",
    "[a]\n\tflag\n",
    "[a.b]\n\tk = v\n",
    "k = v\n",
    '[a "x\\"y"]\n\tk = v\n',
    "[a]\r\n\tk = v\r\n",
    "[a] k = v\n",
    "\ufeff[a]\n\tk = v\n",
    "[a]\n\tk = tab\there\n",
    "[a\n",
    "[include]\n\tpath = /etc/passwd\n",
]


@pytest.mark.parametrize("text", PLAIN_CONFIGS + OTHER_CONFIGS)
def test_committed_config_reads_as_git_reads_it(tmp_path, text):
    """.datalad/config is read in Python when plain (no git process), else by git: the
    same pairs as ``git config -f FILE -z --list`` either way."""
    from recorder import gitrepo
    from recorder.gitrepo.config import _plain_config

    git("init", "-q", str(tmp_path / "r"), cwd=tmp_path)
    cfg = tmp_path / "r" / "cfg"
    cfg.write_text(text, encoding="utf-8")
    assert gitrepo.config_file_list(tmp_path / "r", str(cfg)) == \
        gitrepo.config_list(tmp_path / "r", str(cfg))
    if text in PLAIN_CONFIGS:
        assert _plain_config(text) is not None
