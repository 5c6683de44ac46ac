"""Array jobs stage through one ``git annex add --batch`` per worker slot (issue #22 item 5).

The session's process lives across the jobs of a slot while the worktree is reset between
them: a job that follows one that added, changed and removed annexed files (and left junk)
gets exactly its own record and content.  The session ends with its slot: when the jobs end,
when a job fails, on an interrupt; no git-annex process is left behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from recorder import annex, jobs, proc
from recorder.engine import Target

from .conftest import RR, git, one_commit_repo, rr


def _key(content: bytes, ext: str = ".dat") -> str:
    """git-annex's MD5E key (a dataset's backend, as DataLad's) of ``content`` in *ext."""
    return f"MD5E-s{len(content)}--{hashlib.md5(content).hexdigest()}{ext}"


def _tree(ds: Path, commit: str) -> dict[str, str]:
    """path -> the annex key a symlink points to, or the blob's text for a file in git (the
    dataset's own files under .datalad/ and .gitattributes left out)."""
    out = {}
    for line in git("ls-tree", "-r", "-z", commit, cwd=ds).split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        if path.startswith((".datalad/", ".gitattributes")):
            continue
        mode, _kind, blob = meta.split()
        text = git("cat-file", "blob", blob, cwd=ds)
        out[path] = os.path.basename(text) if mode == "120000" else "git:" + text
    return out


def _annexed_right(ds: Path, key: str, content: bytes) -> None:
    """The key's content is in the annex (exactly), git-annex's location log says here."""
    where = git("annex", "contentlocation", key, cwd=ds).strip()
    assert where and (ds / where).read_bytes() == content, key
    git("annex", "fsck", "--key", key, "--quiet", cwd=ds)  # checksum and location log
    info = json.loads(git("annex", "whereis", "--key", key, "--json", cwd=ds))
    assert info["success"] and [w["here"] for w in info["whereis"]] == [True], info


def _base(ds: Path) -> str:
    (ds / ".gitignore").write_text("*.junk\n")
    (ds / "a.dat").write_bytes(b"A base\n")
    (ds / "b.dat").write_bytes(b"B base\n")
    rr("save", "-m", "base", cwd=ds)
    return git("rev-parse", "HEAD", cwd=ds).strip()


# job 0: changes an annexed file, removes one, adds two, leaves ignored junk and an empty dir;
# job 1 (the same worktree, reset): the same paths with other content, one path job 0 added
# with job 0's content again, a new path with content job 0 added (its key already here);
# job 2: job 0 again (every key is here, the paths are not in the reset index)
JOB0 = ("rm a.dat; printf 'A zero\\n' > a.dat; rm b.dat; printf 'C zero\\n' > c.dat; "
        "mkdir -p sub; printf 'D zero\\n' > sub/d.dat; echo junk > x.junk; mkdir -p e/mpty")
JOB1 = ("set -e; test ! -e c.dat; test ! -e x.junk; test ! -e e; test -L b.dat; "
        "rm a.dat; printf 'A one\\n' > a.dat; printf 'C one\\n' > c.dat; "
        "mkdir -p sub; printf 'D zero\\n' > sub/d.dat; printf 'A zero\\n' > n.dat")
EXPECTED = [
    {"a.dat": b"A zero\n", "c.dat": b"C zero\n", "sub/d.dat": b"D zero\n"},
    {"a.dat": b"A one\n", "b.dat": b"B base\n", "c.dat": b"C one\n", "sub/d.dat": b"D zero\n",
     "n.dat": b"A zero\n"},
]


@pytest.mark.slow
def test_a_job_after_one_that_changed_annexed_files_gets_exactly_its_own(ds, tmp_path,
                                                                          started):
    """Three jobs on one slot (the serial engine: one worktree, one add session): each job's
    commit has exactly its files, each annexed under the key of what the job wrote, with
    that content in the annex (fsck clean, whereis here); one git-annex add for all."""
    base = _base(ds)
    before = len(started())
    wtdir = str(tmp_path / "wts")
    tasks = [jobs.JobTask(str(ds), wtdir, base, i, ".", cmd, message=f"job {i}")
             for i, cmd in enumerate([JOB0, JOB1, JOB0])]
    outcomes = dict(jobs.run_all(tasks, Target("serial")))
    assert sorted(outcomes) == [0, 1, 2]
    worktrees = set()
    for i, want in enumerate([*EXPECTED, EXPECTED[0]]):
        outcome = outcomes[i]
        assert isinstance(outcome, jobs.JobOutcome) and outcome.commit, outcome
        worktrees.add(outcome.worktree)
        assert git("rev-parse", f"{outcome.commit}^", cwd=ds).strip() == base
        tree = _tree(ds, outcome.commit)
        assert tree.pop(".gitignore") == "git:*.junk\n"
        assert tree == {path: _key(content) for path, content in want.items()}, (i, tree)
        for content in want.values():
            _annexed_right(ds, _key(content), content)
        record = git("log", "-1", "--format=%B", outcome.commit, cwd=ds)
        assert f"job {i}" in record
    assert len(worktrees) == 1, worktrees  # one slot, reset between the jobs
    adds = started()[before:]
    assert len(adds) == 1 and "--batch" in adds[0], adds
    assert not jobs._SLOTS and not annex._ADD_SESSIONS
    assert _annex_processes(tmp_path) == []


def _annex_processes(where: Path) -> list[psutil.Process]:
    """git-annex processes working in a directory under ``where``."""
    found = []
    for p in psutil.process_iter(["name", "cwd"]):
        with contextlib.suppress(psutil.Error):
            if (p.info["name"] or "").startswith("git-annex") and p.info["cwd"] and \
                    Path(p.info["cwd"]).is_relative_to(where):
                found.append(p)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [None, 2])
def test_array_results_are_fsck_clean_and_whereis_here(ds, tmp_path, started, parallel):
    """The same litter on every worker's slot, end to end through rr run: the branch's
    history has every job's file annexed with its content, fsck is clean and whereis says
    here (the driver committed the jobs' location log); one git-annex add per worker."""
    _base(ds)
    before = len(started())
    n = 8
    cmd = ("set -e; test ! -e x.junk; test ! -e e; printf 'A {i}\\n' > a{i}.dat; "
           "echo junk > x.junk; mkdir -p e/mpty; printf 'A zero\\n' > z{i}.dat; "
           "printf 'X {i}\\n' > x{i}.dat")
    values = ",".join(str(i) for i in range(n))
    rr("run", *(["-J", str(parallel)] if parallel else []), "--param", f"i={values}", cmd,
       cwd=ds)
    assert git("status", "--porcelain", cwd=ds) == ""
    git("annex", "fsck", "--quiet", cwd=ds)
    for i in range(n):
        for name, content in ((f"a{i}.dat", f"A {i}\n"), (f"x{i}.dat", f"X {i}\n"),
                              (f"z{i}.dat", "A zero\n")):
            assert (ds / name).read_text() == content
            assert os.path.basename(os.readlink(ds / name)) == _key(content.encode())
            _annexed_right(ds, _key(content.encode()), content.encode())
    assert len(started()[before:]) <= (parallel or 1) + 1, started()  # per worker (a restart: +1)
    assert _annex_processes(tmp_path) == []


@pytest.mark.slow
def test_a_failed_job_stops_its_slots_session_at_once(ds, tmp_path, started):
    """A failed job's worktree is kept and its slot dropped: its add session ends then, not
    when the jobs end; the next job starts a new one in a new worktree."""
    base = _base(ds)
    before = len(started())
    wtdir = str(tmp_path / "wts")
    cmds = ["echo 0 > o0.dat", "echo 1 > o1.dat; exit 3", "echo 2 > o2.dat"]
    tasks = [jobs.JobTask(str(ds), wtdir, base, i, ".", cmd) for i, cmd in enumerate(cmds)]
    runs = jobs.run_all(tasks, Target("serial"))
    seen = {}
    with contextlib.closing(runs):
        for index, outcome in runs:
            seen[index] = outcome
            if index == 1:
                assert isinstance(outcome, jobs.JobOutcome)
                assert outcome.status == jobs.JobStatus.FAILED, outcome
                assert _annex_processes(Path(outcome.worktree)) == []
    assert [seen[i].status for i in range(3)] == ["ok", "failed", "ok"]
    assert seen[0].worktree == seen[1].worktree != seen[2].worktree
    assert len(started()[before:]) == 2, started()
    assert _annex_processes(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [None, 2])
def test_ctrl_c_in_an_array_leaves_no_git_annex_behind(ds, tmp_path, parallel):
    """SIGINT once jobs have committed (the add sessions are running): rr ends with 130 and
    no git-annex process of the dataset is left."""
    _base(ds)
    values = ",".join(str(i) for i in range(40))
    child = subprocess.Popen([RR, "run", "--json", *(["-J", str(parallel)] if parallel else []),
                              "--param", f"i={values}", "-o", "o{i}.dat",
                              "echo {i} > o{i}.dat; sleep 0.2"], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    done = 0
    deadline = time.monotonic() + 120
    while done < 3:
        line = child.stdout.readline()
        assert line and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
        done += '"status": "ok"' in line
    assert _annex_processes(ds)  # the sessions are running
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    left = _annex_processes(ds)
    for _ in range(20):  # a git-annex ending on its own at EOF of its stdin: a moment
        if not left:
            break
        time.sleep(0.25)
        left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [p.cmdline() for p in left]
    assert git("status", "--porcelain", cwd=ds) == ""


CHATTY = ("while read -r line; do head -c 300000 /dev/zero | tr '\\0' e >&2; "
          "echo \"got $line\"; done; echo 'the last words' >&2; exit 3")


def _answer(child: subprocess.Popen, timeout: float = 30.0) -> bytes:
    """The tool's next line, or b"" if none came in ``timeout`` (it blocked)."""
    import selectors

    assert child.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(child.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return b""
    return child.stdout.readline()


@pytest.mark.slow
def test_a_batch_tool_writing_much_to_stderr_keeps_answering():
    """A batch tool that writes far more to stderr than a pipe holds between its answers
    (main's popen_batch piped stderr and never read it: the tool blocked, no answer came);
    its error text is there once it ended."""
    with proc.popen_batch(["sh", "-c", CHATTY]) as child:
        assert child.stdin is not None and child.stderr is not None
        for i in range(3):
            child.stdin.write(f"request {i}\n".encode())
            child.stdin.flush()
            assert _answer(child) == f"got request {i}\n".encode()
        child.stdin.close()
        assert child.wait(timeout=30) == 3
        errors = child.stderr.read()
        assert len(errors) == 3 * 300000 + len("the last words\n")
        assert errors.endswith(b"eethe last words\n")


def test_a_refused_ref_transaction_says_what_git_said(tmp_path):
    """git's own error text (read from the batch process's stderr) is in the error."""
    from recorder import gitrepo
    from recorder.errors import CommandError

    repo, head = one_commit_repo(tmp_path)
    with gitrepo.RefTransactions(repo) as refs:
        refs.update([f"update refs/rr/jobs/x/0 {head}"])
        with pytest.raises(CommandError) as failed:
            refs.update([f"update refs/rr/jobs/x/0 {head} {'1' * 40}"])
        assert "refs/rr/jobs/x/0" in str(failed.value) and "1" * 40 in str(failed.value)
        refs.update(["delete refs/rr/jobs/x/0"])  # a new process after the refusal
    assert git("for-each-ref", "refs/rr/", cwd=repo) == ""


@pytest.mark.slow
def test_a_worker_of_two_threads_keeps_a_slot_per_thread_and_closes_them_all(ds, tmp_path):
    """An existing Dask cluster whose worker runs two tasks at once (two threads of one
    process): each thread's job takes a slot of its own and puts it back (two worktrees in
    all), every slot is closed when the jobs end; the records and the annex are right.
    main's slots were one per process: a thread's slot replaced the other's when put back,
    and the next job made a new worktree (and add session)."""
    from distributed import LocalCluster  # noqa: PLC0415  heavy (Dask)

    _base(ds)
    n = 12
    values = ",".join(str(i) for i in range(n))
    cmd = 'echo {i} > o{i}.dat; basename "$PWD" > w{i}.txt; sleep 0.2'
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=":0") as cluster:
        rr("run", "--scheduler", cluster.scheduler_address, "-J", "2", "--param",
           f"i={values}", cmd, cwd=ds)
        time.sleep(0.5)
        left = _annex_processes(ds)
        assert left == [], [p.cmdline() for p in left]
    git("annex", "fsck", "--quiet", cwd=ds)
    for i in range(n):
        _annexed_right(ds, _key(f"{i}\n".encode()), f"{i}\n".encode())
    assert git("status", "--porcelain", cwd=ds) == ""
    worktrees = {(ds / f"w{i}.txt").read_text() for i in range(n)}
    assert len(worktrees) <= 2, worktrees  # one per thread


@pytest.mark.slow
def test_jobs_side_by_side_in_threads_of_one_process(ds, tmp_path):
    """Two threads of one process run jobs at the same time, twice (each pair waits for
    both to be running): the first pair's two slots are both kept and serve the second pair
    (two worktrees, two add sessions in all); the jobs' environment (no git-annex branch
    commits from jobs) holds in each thread for the whole of its job and leaves nothing
    behind; every slot's session ends with close_slots.  main kept one slot per process
    (the other's worktree and session were dropped) and one process-wide environment that
    the first thread to finish took away from the other."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    base = _base(ds)
    annex_tip = git("rev-parse", "git-annex", cwd=ds)
    gate = tmp_path / "gate"
    gate.mkdir()
    wtdir = str(tmp_path / "wts")

    def task(i: int) -> jobs.JobTask:
        partner = i ^ 1
        cmd = (f"touch {gate}/{i}; n=0; while ! test -e {gate}/{partner}; do "
               f"n=$((n+1)); test $n -lt 600 || exit 9; sleep 0.05; done; "
               f"echo {i} > o{i}.dat")
        return jobs.JobTask(str(ds), wtdir, base, i, ".", cmd)

    outcomes = []
    try:
        with ThreadPoolExecutor(2) as pool:
            for pair in ((0, 1), (2, 3)):
                outcomes += list(pool.map(jobs.run_job, [task(i) for i in pair]))
                assert len(jobs._SLOTS.get(wtdir, [])) == 2
        assert len(_annex_processes(tmp_path)) == 2  # a session per slot, still running
    finally:
        jobs.close_slots(wtdir)
    assert [o.status for o in outcomes] == ["ok"] * 4, outcomes
    assert len({o.worktree for o in outcomes}) == 2
    assert git("rev-parse", "git-annex", cwd=ds) == annex_tip  # the driver's to commit
    for i, outcome in enumerate(outcomes):
        assert _tree(ds, outcome.commit or "") == {".gitignore": "git:*.junk\n",
                                                   "a.dat": _key(b"A base\n"),
                                                   "b.dat": _key(b"B base\n"),
                                                   f"o{i}.dat": _key(f"{i}\n".encode())}
        _annexed_right(ds, _key(f"{i}\n".encode()), f"{i}\n".encode())
    assert "GIT_CONFIG_COUNT" not in proc.tool_env()
    assert _annex_processes(tmp_path) == []


def test_jobs_keep_the_users_own_git_config_from_the_environment(ds):
    """A user's GIT_CONFIG_COUNT/KEY/VALUE settings stay in force in array jobs and in the
    commands they run: the jobs' own settings (gc off, git-annex's journal) come after them."""
    user = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "rr.test.mark",
            "GIT_CONFIG_VALUE_0": "kept"}
    assert jobs.job_env(user) == {
        "GIT_CONFIG_COUNT": "3", "GIT_CONFIG_KEY_1": "annex.alwayscommit",
        "GIT_CONFIG_VALUE_1": "false", "GIT_CONFIG_KEY_2": "gc.auto", "GIT_CONFIG_VALUE_2": "0"}
    assert jobs.job_env({}) == jobs.JOB_ENV and jobs.JOB_ENV["GIT_CONFIG_COUNT"] == "2"
    rr("run", "--param", "s=1,2", "-o", "o{s}",
       "git config --get rr.test.mark > o{s}; git config --get gc.auto >> o{s}",
       cwd=ds, env=user)
    for s in ("1", "2"):
        assert (ds / f"o{s}").read_text() == "kept\n0\n"
