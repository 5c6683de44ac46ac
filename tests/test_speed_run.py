"""rr run starts few processes: counts, not times (issue #22 rows 1-2, items 1-2).

Processes are counted by wrappers first on PATH that log each start of ``git`` and
``git-annex`` (rr finds both through PATH, and so does git-annex for the git it starts), so
the counts include the git processes git-annex starts for rr.
"""

import os
import shutil
import stat
import time

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
    # files written in the second the index was: git checks them through git-annex's filter
    # until the index is rewritten later (racy git), a first-use cost measured elsewhere
    time.sleep(1.1)
    git("update-index", "-q", "--refresh", cwd=ds)
    return ds


@pytest.mark.slow
def test_run_of_ten_files_starts_few_processes(warm, tmp_path):
    gits, annexes, lines = _counted(warm, tmp_path, "run", "-o", "out", TEN)
    assert git("ls-files", "out", cwd=warm).split() == [f"out/{i}" for i in
                                                        sorted(map(str, range(1, 11)))]
    # rr reads config with -z (git-annex with --null)
    rr_config = [line for line in lines if line.startswith("git config") and " -z " in line]
    # git-annex starts its git with --git-dir (and `git config --null --list`)
    rr_git = [line for line in lines if line.startswith("git ") and "--git-dir=" not in line
              and not line.startswith("git config --null")]
    # one git-annex (add), started directly (no `git annex` wrapper process)
    assert annexes == 1, lines
    assert not any(line.startswith("git annex") for line in lines), lines
    # git's config read once (the committed .datalad/config parsed in Python)
    assert len(rr_config) <= 1, lines
    # rr's own git: config, status before and after, the staging check, the plumbing commit
    # (write-tree, commit-tree, update-ref; no maintenance run with nothing due), the note
    assert len(rr_git) <= 8, "\n".join(rr_git)
    assert gits - len(rr_git) <= 27, "\n".join(lines)  # git-annex's own


@pytest.mark.slow
def test_run_with_nothing_to_save_starts_no_git_annex(warm, tmp_path):
    gits, annexes, lines = _counted(warm, tmp_path, "run", "true")
    assert annexes == 0, lines
    # config, status before and after; with nothing else changed, the annexed files are
    # listed (one ls-files) to look for content written through its link
    assert gits <= 4, lines


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


@pytest.mark.slow
def test_run_asks_for_git_maintenance_only_when_it_may_be_due(warm, tmp_path):
    """The plumbing commit starts ``git maintenance run --auto`` (what git commit does) only
    when a gc.*/maintenance.* setting is made or git's default thresholds may be reached."""
    _, _, lines = _counted(warm, tmp_path, "run", "-o", "a", "echo a > a")
    assert not any(line.startswith("git maintenance") for line in lines), lines
    # a setting of the user's own: git decides
    env_cfg = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "gc.auto",
               "GIT_CONFIG_VALUE_0": "0"}
    bindir = tmp_path / "wrap-bin"
    log = tmp_path / "starts.log"
    log.unlink()
    rr("run", "-o", "b", "echo b > b", cwd=warm,
       env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", **env_cfg})
    assert any(line.startswith("git maintenance") for line in log.read_text().splitlines())
    # maintenance.auto false: git commit starts no maintenance, nor does rr
    log.unlink()
    rr("run", "-o", "c", "echo c > c", cwd=warm,
       env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "1",
            "GIT_CONFIG_KEY_1": "maintenance.auto", "GIT_CONFIG_VALUE_1": "false"})
    assert not any(line.startswith("git maintenance")
                   for line in log.read_text().splitlines())


def test_maintenance_may_be_due_past_a_margin_below_gits_thresholds(ds):
    import hashlib

    from recorder.gitrepo.commit import maintenance_may_be_due

    assert not maintenance_may_be_due(ds)
    blobs = []
    n = 0
    while len(blobs) < 20:  # real objects named 17...: git's sample of loose objects
        data = f"loose {n}\n".encode()
        n += 1
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().startswith("17"):
            blobs.append(data)
    for i, data in enumerate(blobs):
        (ds / f"blob{i}").write_bytes(data)
    git("hash-object", "-w", *[f"blob{i}" for i in range(len(blobs))], cwd=ds)
    assert maintenance_may_be_due(ds)


def test_maintenance_is_gits_to_decide_where_its_default_is_not_gc(ds):
    """From the git release whose default maintenance is not gc alone, rr does not guess:
    ``git maintenance run --auto`` runs after each plumbing commit."""
    import json

    from recorder import proc
    from recorder.gitrepo.commit import maintenance_may_be_due

    assert not maintenance_may_be_due(ds)  # this machine's git: 2.39, gc by default
    kept = ds / ".git" / "rr" / "git-version"
    binary = shutil.which("git", path=proc.tool_path())
    st = os.stat(binary)
    kept.write_text(json.dumps({"binary": [os.path.realpath(binary), st.st_size,
                                           st.st_mtime_ns], "version": "2.53.0"}))
    assert maintenance_may_be_due(ds)
