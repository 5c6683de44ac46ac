"""rr rerun --verify: each run record re-executed in a scratch worktree at its own parent and
compared with its commit; nothing of the user's dataset changes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from recorder.errors import EXIT_NOT_REPRODUCED
from recorder.rerun.verify import ignored, short_diff

from .conftest import RR, git, needs_datalad, one_error_line, rr, rr_in

NONDET = "date +%N > out.txt"
# made b.txt when recorded (V=1); makes c.txt instead without V
SWITCH = "echo a > a.txt; if [ \"$V\" = 1 ]; then echo b > b.txt; else echo c > c.txt; fi"


def snapshot(ds: Path) -> dict:
    """Everything verify must leave as it was: refs (refs/rr/* too), HEAD, the index, the
    registered worktrees, every file of the work tree (content or link target).  Not
    refs/annex/last-index: git-annex's own record of the index its keys database last
    scanned (shared by all worktrees), which any git-annex command may move; nor
    refs/notes/rr-verify, where verify notes its verdicts (see ``verdict_notes``)."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(ds):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(ds) and d == ".git")]
        for name in filenames:
            p = Path(dirpath) / name
            files[str(p.relative_to(ds))] = os.readlink(p) if p.is_symlink() else \
                hashlib.sha1(p.read_bytes()).hexdigest()
    refs = [line for line in git("for-each-ref", cwd=ds).splitlines()
            if not line.endswith(("\trefs/annex/last-index", "\trefs/notes/rr-verify"))]
    return {"refs": refs, "head": git("symbolic-ref", "HEAD", cwd=ds),
            "head_sha": git("rev-parse", "HEAD", cwd=ds),
            "index": hashlib.sha1((ds / ".git" / "index").read_bytes()).hexdigest(),
            "worktrees": git("worktree", "list", "--porcelain", cwd=ds),
            "status": git("--no-optional-locks", "status", "--porcelain", "-uall", cwd=ds),
            "files": files, "git_dir": sorted(os.listdir(ds / ".git"))}


def verdict_notes(ds: Path) -> dict[str, list[dict]]:
    """The verdicts noted in refs/notes/rr-verify: commit -> its lines, parsed."""
    out = git("notes", "--ref=rr-verify", "list", cwd=ds)
    return {line.split()[1]: [json.loads(x) for x in git(
        "notes", "--ref=rr-verify", "show", line.split()[1], cwd=ds).splitlines()]
        for line in out.splitlines()}


def verify(ds: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return rr("rerun", "--verify", *args, cwd=ds, check=False, env=env)


def verdicts(ds: Path, *args: str, env: dict | None = None) -> list[dict]:
    proc = verify(ds, "--json", *args, env=env)
    assert proc.returncode in (0, EXIT_NOT_REPRODUCED), proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def in_git(ds: Path, *names: str) -> None:
    """These files are kept in git (small text), not in the annex."""
    (ds / ".gitattributes").write_text(
        "".join(f"{n} annex.largefiles=nothing\n" for n in names), encoding="utf-8")
    rr("save", "-m", "small files in git", cwd=ds)


def test_identical_record_changes_nothing(ds_with_data):
    ds = ds_with_data
    # reads an undeclared tracked (annexed) file, declares its input and output
    rr("run", "-i", "data/a.txt", "-o", "n.txt", "cat data/a.txt code/count.sh > n.txt",
       cwd=ds)
    (ds / "data" / "b.txt").unlink()  # a dirty worktree is fine
    (ds / "data" / "b.txt").write_text("changed by the user\n")
    (ds / "untracked.txt").write_text("mine\n")
    before = snapshot(ds)
    proc = verify(ds)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2  # only non-identical files are listed: none
    assert lines[0].endswith(": identical")
    assert "rr: verified 1 record(s): 1 identical, 0 differ, 0 failed" in proc.stdout
    assert "rr: running: cat data/a.txt code/count.sh > n.txt" in proc.stderr
    assert snapshot(ds) == before
    # the one ref that moved: the verdict noted on the record's commit, one line
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    (line,) = verdict_notes(ds)[head]
    assert line["verdict"] == "identical" and line["files"] == []


def test_nondeterministic_record_differs(ds):
    in_git(ds, "out.txt")
    rr("run", "-o", "out.txt", NONDET, cwd=ds)
    mine = (ds / "out.txt").read_text()
    before = snapshot(ds)
    proc = verify(ds)
    assert proc.returncode == EXIT_NOT_REPRODUCED, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(f"{NONDET}: differs")
    assert lines[1].split()[:2] == ["differs", "out.txt"]
    assert any(x.strip().startswith("-" + mine.strip()) for x in lines)  # the short diff
    assert "0 identical, 1 differ" in lines[-1]
    assert (ds / "out.txt").read_text() == mine
    assert snapshot(ds) == before
    # --ignore leaves it out of the verdict
    (one,) = verdicts(ds, "--ignore", "out.*")
    assert one["verdict"] == "identical" and one["status"] == "ok"
    assert [(f["path"], f["status"]) for f in one["files"]] == [("out.txt", "ignored")]
    assert verify(ds, "--ignore", "out.txt").returncode == 0


def test_json_shape_and_annexed_diff(ds):
    rr("run", "-o", "out.txt", NONDET, cwd=ds)
    (one,) = verdicts(ds)
    assert list(one)[:5] == ["action", "status", "commit", "subject", "verdict"]
    assert one["action"] == "verify" and one["status"] == "error"
    assert one["verdict"] == "differs" and "path" not in one
    assert one["commit"] == git("rev-parse", "HEAD", cwd=ds).strip()
    assert one["subject"] == NONDET
    (f,) = one["files"]
    assert f["path"] == "out.txt" and f["status"] == "differs"
    assert f["old"].startswith("MD5E-s") and f["new"].startswith("MD5E-s")  # annex keys
    assert f["old"] != f["new"]
    assert f["diff"].startswith("@@")  # annexed text present here: diffed too


def test_missing_and_extra_files(ds):
    rr("run", "-o", "a.txt", "-o", "b.txt", SWITCH, cwd=ds, env={"V": "1"})
    proc = verify(ds, env={"V": ""})
    assert proc.returncode == EXIT_NOT_REPRODUCED, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(": differs")
    listed = [x.split()[:2] for x in lines[1:-1]]
    assert listed == [["missing", "b.txt"], ["extra", "c.txt"]]
    (one,) = verdicts(ds, env={"V": ""})
    by_path = {f["path"]: f for f in one["files"]}
    assert by_path["a.txt"]["status"] == "identical"
    assert by_path["b.txt"]["new"] is None and by_path["c.txt"]["old"] is None


def test_failed_reexecution_is_a_verdict(ds):
    rr("run", "-o", "x.txt", "echo x > x.txt; [ -z \"$FAILNOW\" ] || exit 5", cwd=ds)
    before = snapshot(ds)
    proc = verify(ds, env={"FAILNOW": "1"})
    assert proc.returncode == EXIT_NOT_REPRODUCED, proc.stderr  # not the command's 5
    assert proc.stdout.splitlines()[0].endswith(
        ": failed (command exited with code 5, recorded 0)")
    (one,) = verdicts(ds, env={"FAILNOW": "1"})
    assert one["verdict"] == "failed" and one["exit"] == 5
    assert snapshot(ds) == before  # the failed job's worktree is gone too


def test_recorded_exit_code_is_expected(ds):
    cmd = "echo f > e.txt; exit $CODE"
    assert rr("run", "-o", "e.txt", cmd, cwd=ds, check=False, env={"CODE": "3"}).returncode == 3
    rr("save", "-F", ".git/COMMIT_EDITMSG", "e.txt", cwd=ds)  # the record says exit 3
    assert verify(ds, env={"CODE": "3"}).returncode == 0
    (one,) = verdicts(ds, env={"CODE": "0"})  # 0 is not what was recorded either
    assert (one["verdict"], one["exit"]) == ("failed", 0)
    assert one["message"] == "command exited with code 0, recorded 3"


@pytest.mark.slow
def test_range_of_records(ds):
    in_git(ds, "out.txt")
    rr("run", "-o", "a.txt", "echo a > a.txt", cwd=ds)
    (ds / "plain.txt").write_text("not a run\n")
    rr("save", "-m", "not a run commit", cwd=ds)
    rr("run", "-o", "out.txt", NONDET, cwd=ds)
    rr("run", "-i", "a.txt", "-o", "b.txt", "cat a.txt a.txt > b.txt", cwd=ds)
    got = verdicts(ds, "HEAD~4..HEAD")
    assert [(r["subject"], r["verdict"]) for r in got] == [
        ("echo a > a.txt", "identical"), (NONDET, "differs"),
        ("cat a.txt a.txt > b.txt", "identical")]
    proc = verify(ds, "--since=HEAD~4")
    assert "rr: verified 3 record(s): 2 identical, 1 differ, 0 failed" in proc.stdout


@pytest.mark.slow
def test_parallel_gives_the_serial_verdicts(ds):
    for k in range(3):
        rr("run", "-o", f"s{k}.txt", f"echo {k} > s{k}.txt", cwd=ds)
    rr("run", "-o", "out.txt", NONDET, cwd=ds)
    before = snapshot(ds)
    serial = verdicts(ds, "--since=HEAD~4")
    parallel = verdicts(ds, "--since=HEAD~4", "-J", "2")
    assert [(r["commit"], r["verdict"]) for r in parallel] == \
        [(r["commit"], r["verdict"]) for r in serial]
    assert [r["verdict"] for r in serial] == ["identical"] * 3 + ["differs"]
    assert snapshot(ds) == before


def interrupted(ds: Path, sig: int, *args: str) -> None:
    """Verify a record whose command sleeps, stopped by ``sig`` while it runs."""
    rr("run", "-o", "s.txt", "sleep $SLEEPS; echo s > s.txt", cwd=ds)
    before = snapshot(ds)
    proc = subprocess.Popen([RR, "rerun", "--verify", *args], cwd=ds, env={
        **os.environ, "SLEEPS": "30"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 60
    while git("worktree", "list", "--porcelain", cwd=ds).count("worktree ") < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(1)  # the command is sleeping
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "rr: interrupted" in err and "Traceback" not in err
    assert snapshot(ds) == before
    assert verdict_notes(ds) == {}  # noted only at the end of a whole verify


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_removes_the_scratch_worktrees(ds, sig):
    interrupted(ds, sig)


@pytest.mark.slow
def test_interrupt_of_parallel_jobs_removes_the_scratch_worktrees(ds):
    interrupted(ds, signal.SIGINT, "-J", "2")


def test_errors_are_one_line(ds):
    rr("run", "-o", "a.txt", "echo a > a.txt", cwd=ds)
    proc = verify(ds, "no-such-rev")
    assert proc.returncode == 2
    assert "unknown revision: no-such-rev" in one_error_line(proc.stderr)
    proc = verify(ds, "-J", "0")
    assert proc.returncode == 2
    one_error_line(proc.stderr)
    proc = verify(ds, "--onto=")
    assert proc.returncode == 2
    assert "takes no --onto" in one_error_line(proc.stderr)
    proc = rr("rerun", "--ignore", "x", cwd=ds, check=False)
    assert proc.returncode == 2
    assert "--ignore goes with --verify" in one_error_line(proc.stderr)
    assert git("rev-list", "--count", "HEAD", cwd=ds).strip() == "2"


@pytest.mark.parametrize("option", ["--branch=b", "--report", "--continue", "--abort",
                                    "--script=-", "-m=x", "--explicit"])
def test_verify_takes_no_replay_option(ds, option):
    got = rr_in("rerun", "--verify", option, cwd=ds)
    assert got.exit_code == 2
    name = option.split("=")[0].replace("-m", "--message")
    assert one_error_line(got.stderr) == f"rr: error: --verify changes nothing and takes no {name}"


@needs_datalad
def test_datalad_record_verifies(ds):
    subprocess.run(["datalad", "run", "-m", "dl one", "-o", "d.txt", "echo d >> d.txt"],
                   cwd=ds, check=True, capture_output=True)
    (ds / "sub").mkdir()  # a record run in a subdirectory, its input above it
    subprocess.run(["datalad", "run", "-m", "dl two", "-i", "../d.txt", "-o", "e.txt",
                    "cat {inputs} {inputs} > e.txt"], cwd=ds / "sub", check=True,
                   capture_output=True)
    before = snapshot(ds)
    got = verdicts(ds, "--since=HEAD~2")
    assert [(r["subject"], r["verdict"]) for r in got] == [("dl one", "identical"),
                                                          ("dl two", "identical")]
    assert [f["path"] for f in got[1]["files"]] == ["sub/e.txt"]
    assert snapshot(ds) == before


@pytest.mark.slow
def test_container_record_verifies(ds, busybox_image):
    rr("containers-add", "bb", "--url", f"dhub://{busybox_image}", cwd=ds)
    rr("containers-run", "-n", "bb", "-o", "n.txt", "ls /etc | wc -l > n.txt", cwd=ds)
    before = snapshot(ds)
    proc = verify(ds)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].endswith(": identical")
    assert snapshot(ds) == before
    # the verdict notes the digest of the image the record ran in
    (line,) = verdict_notes(ds)[git("rev-parse", "HEAD", cwd=ds).strip()]
    assert line["image"].startswith("sha256:") and line["verdict"] == "identical"


@pytest.mark.slow
def test_record_that_changed_a_subdataset_is_skipped(ds):
    rr("create", "-d", ".", "sub", cwd=ds)
    rr("run", "-o", "sub/x.txt", "echo x > sub/x.txt", cwd=ds)
    rr("run", "-o", "y.txt", "echo y > y.txt", cwd=ds)
    proc = verify(ds, "--since=HEAD~2")
    assert proc.returncode == 0, proc.stderr  # nothing verified differs
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("echo x > sub/x.txt: skipped (it changed a subdataset, which a "
                             "scratch worktree does not have; not verified)")
    assert lines[1].endswith("echo y > y.txt: identical")
    assert lines[2] == "rr: verified 1 record(s): 1 identical, 0 differ, 0 failed, 1 skipped"


def test_ignore_globs_and_short_diffs():
    assert ignored("logs/2024/a.txt", ["logs"])  # a leading directory
    assert ignored("x/y/run.log", ["*.log"])  # a name in any directory
    assert ignored("a/b/c.txt", ["a/*/c.txt"])
    assert not ignored("a/b/c.txt", ["b/c.txt"])  # a path glob is anchored at the top
    assert not ignored("result.txt", ["*.log", "logs"])
    diff = short_diff("".join(f"{k}\n" for k in range(20)), "".join(f"{k}!\n" for k in range(20)))
    lines = diff.splitlines()
    assert lines[0].startswith("@@") and lines[1] == "-0"
    assert len(lines) == 9 and lines[-1] == "... (33 more lines)"
