"""rr commits a run with write-tree, commit-tree and update-ref when git commit would do
nothing more (no hooks, no signing, no clean-up mode): the same commit, message and reflog.
Whatever git's config or hooks ask of a commit is still done by git commit."""

from __future__ import annotations

import subprocess

from recorder.gitrepo import stripspace
from tests.conftest import git, last_message, rr


def test_message_cleanup_is_gits_own():
    samples = ["", "\n\n", "subject", "  subject  \n\n\n\nbody \t\n\n", "a\r\n\r\nb\r",
               "x\x0b\n\x0cy\u00a0\n", "\tindented\n\n\n# not a comment here\n  \n",
               "trailing\n\n\n", "\n\nleading", "é \u2028\n\n\n\nz"]
    for text in samples:
        want = subprocess.run(["git", "stripspace"], input=text.encode(),
                              capture_output=True, check=True).stdout.decode()
        assert stripspace(text) == want, repr(text)


def test_run_commit_has_gits_reflog_and_message(ds):
    branch = git("branch", "--show-current", cwd=ds).strip()
    rr("run", "-m", "make  \n\n\nit  ", "-o", "out.txt", "echo 1 > out.txt", cwd=ds)
    assert last_message(ds).startswith("[DATALAD RUNCMD] make\n\nit\n\n=== Do not change lines below")
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    for ref in ("HEAD", branch):
        line = git("reflog", "show", "-1", "--format=%H %gs", ref, cwd=ds).strip()
        assert line == f"{head} commit: [DATALAD RUNCMD] make"
    assert git("status", "--porcelain", cwd=ds) == ""
    git("fsck", "--no-progress", cwd=ds)


def test_hooks_that_git_commit_runs_still_run(ds):
    hooks = ds / ".git" / "hooks"
    (hooks / "post-commit").write_text("#!/bin/sh\necho ran > \"$(git rev-parse --git-dir)/post-commit-ran\"\n")
    (hooks / "prepare-commit-msg").write_text("#!/bin/sh\necho 'Prepared-by: hook' >> \"$1\"\n")
    for name in ("post-commit", "prepare-commit-msg"):
        (hooks / name).chmod(0o755)
    rr("run", "-o", "out.txt", "echo 1 > out.txt", cwd=ds)
    assert (ds / ".git" / "post-commit-ran").exists()
    assert "Prepared-by: hook" in last_message(ds)


def test_signing_asked_for_is_never_skipped(ds):
    """commit.gpgSign with a signer that fails: git commit refuses, so must rr (no unsigned
    commit), keeping the record for rr save."""
    git("config", "commit.gpgSign", "true", cwd=ds)
    git("config", "gpg.program", "false", cwd=ds)
    head = git("rev-parse", "HEAD", cwd=ds)
    proc = rr("run", "-o", "out.txt", "echo 1 > out.txt", cwd=ds, check=False)
    assert proc.returncode != 0
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert "=== Do not change lines below ===" in (ds / ".git" / "COMMIT_EDITMSG").read_text()
    assert "rr save -F .git/COMMIT_EDITMSG" in proc.stderr


def test_cleanup_mode_from_config_is_honoured(ds):
    git("config", "commit.cleanup", "strip", cwd=ds)
    rr("run", "-m", "subject\n# a comment git strips", "-o", "out.txt", "echo 1 > out.txt",
       cwd=ds)
    assert "# a comment" not in last_message(ds)
