"""rr rerun you can trust: no branch moves, commands shown, subdataset outputs unlocked,
malformed records and state files are one-line errors, interrupts resume or abort cleanly,
and replay topology as DataLad's (compared with real ``datalad rerun``)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import RR, annex, commit_count, git, needs_datalad, rr

STATE = Path(".git") / "rr-rerun.json"


def sha(ds, rev="HEAD"):
    return git("rev-parse", rev, cwd=ds).strip()


def branches(ds) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", cwd=ds)
    return dict(line.split() for line in out.splitlines())


def on_branch(ds) -> str | None:
    proc = subprocess.run(["git", "symbolic-ref", "-q", "--short", "HEAD"], cwd=ds,
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def datalad(*args, cwd):
    return subprocess.run(["datalad", *args], cwd=cwd, check=True, capture_output=True,
                          text=True)


def record_commit(ds, record, subject="crafted") -> str:
    """A run commit with the given record (any JSON value), made without rr."""
    body = record if isinstance(record, str) else json.dumps(record, indent=1)
    msg = (f"[DATALAD RUNCMD] {subject}\n\n=== Do not change lines below ===\n{body}\n"
           "^^^ Do not change lines above ^^^\n")
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-F", "-"], cwd=ds, check=True,
                   input=msg, text=True)
    return sha(ds)


def good(cmd, **extra):
    rec = {"chain": [], "cmd": cmd, "exit": 0, "extra_inputs": [], "inputs": [],
           "outputs": [], "pwd": "."}
    rec.update(extra)
    return rec


@pytest.fixture
def static(ds):
    """static.txt made by a deterministic run (tag 'static'), then two more commits."""
    rr("run", "-o", "static.txt", "echo static > static.txt", cwd=ds)
    git("tag", "static", cwd=ds)
    rr("run", "-o", "grows.txt", "echo x >> grows.txt", cwd=ds)
    (ds / "later.txt").write_text("later\n")
    rr("save", "-m", "later", cwd=ds)
    return ds


# --- 1. no branch moves without --branch -------------------------------------------------


@pytest.mark.slow
@needs_datalad
def test_onto_without_branch_moves_no_branch_as_datalad(static, tmp_path):
    ds = static
    twin = tmp_path / "twin"
    shutil.copytree(ds, twin, symlinks=True)
    before = branches(ds)
    rr("rerun", "--onto", "static", "static", cwd=ds)
    datalad("rerun", "--onto", "static", "static", cwd=twin)
    for d in (ds, twin):
        assert branches(d) == before  # master still has all its commits
        assert on_branch(d) is None  # detached HEAD ...
        assert sha(d) == sha(d, "static")  # ... at the (unchanged) tip
    # a mutator onto an older commit: a new commit, still no branch moved
    rr("rerun", "--onto", "static", "master~1", cwd=ds)
    datalad("rerun", "--onto", "static", "master~1", cwd=twin)
    for d in (ds, twin):
        assert branches(d) == before and on_branch(d) is None
        assert sha(d, "HEAD~1") == sha(d, "static")
        assert (d / "grows.txt").read_text() == "x\n"


@pytest.mark.slow
def test_failed_onto_replay_aborts_back_to_where_the_user_was(static):
    ds = static
    rr("run", "-o", "f.txt", "test -e flag && echo ok > f.txt", cwd=ds, check=False)
    (ds / "flag").write_text("f\n")
    rr("save", "-m", "flag", cwd=ds)
    rr("run", "-o", "f.txt", "test -e flag && date +%N > f.txt", cwd=ds)
    git("rm", "-q", "flag", cwd=ds)
    git("commit", "-qm", "no flag", cwd=ds)
    before = branches(ds)
    proc = rr("rerun", "--onto", "HEAD", "HEAD~1", cwd=ds, check=False)
    assert proc.returncode == 1 and "rr rerun --abort" in proc.stderr
    assert on_branch(ds) is None and (ds / STATE).exists()
    rr("rerun", "--abort", cwd=ds)
    assert on_branch(ds) == "master" and branches(ds) == before
    assert git("status", "--porcelain", cwd=ds) == ""
    assert not (ds / STATE).exists()


# --- 2. outputs inside subdatasets -------------------------------------------------------


@pytest.fixture
def with_sub(tmp_path, ds):
    rr("create", str(tmp_path / "src"))
    rr("clone", "-d", ".", str(tmp_path / "src"), "sub", cwd=ds)
    return ds


def test_rerun_unlocks_outputs_inside_subdatasets(with_sub):
    ds = with_sub
    # undeclared output (known from the commit's diff into the subdataset) and a declared
    # output directory inside the subdataset
    rr("run", "-o", "sub/dir", "mkdir -p sub/dir && date +%N > sub/out.txt && "
       "date +%N > sub/dir/d.txt", cwd=ds)
    old = (ds / "sub/out.txt").read_text(), (ds / "sub/dir/d.txt").read_text()
    before = commit_count(ds / "sub")
    proc = rr("rerun", cwd=ds)
    assert "done" in proc.stderr
    new = (ds / "sub/out.txt").read_text(), (ds / "sub/dir/d.txt").read_text()
    assert new[0] != old[0] and new[1] != old[1]
    assert commit_count(ds / "sub") == before + 1
    annex("fsck", cwd=ds / "sub")  # no annexed object was overwritten in place
    # the old content is intact in the object store
    assert git("show", "HEAD~1:out.txt", cwd=ds / "sub") != git("show", "HEAD:out.txt",
                                                               cwd=ds / "sub")
    assert git("status", "--porcelain", cwd=ds) == ""


# --- 3. / 4. commands shown; pwd outside the dataset --------------------------------------


def test_every_command_is_shown_before_it_runs(ds):
    rr("run", "-m", "harmless subject", "-o", "a.txt", "date +%N > a.txt", cwd=ds)
    proc = rr("rerun", cwd=ds)
    assert "rr: running: date +%N > a.txt" in proc.stderr
    proc = rr("rerun", "--json", cwd=ds)
    assert "rr: running: date +%N > a.txt" in proc.stderr
    assert [json.loads(line)["action"] for line in proc.stdout.splitlines()] == ["run"]


def test_pwd_outside_the_dataset_is_warned_and_shown(ds, tmp_path):
    record_commit(ds, good("pwd > /dev/null", pwd=".."))
    proc = rr("rerun", cwd=ds)
    lines = proc.stderr.splitlines()
    warning = [i for i, line in enumerate(lines) if line.startswith("rr: warning:")]
    running = [i for i, line in enumerate(lines) if line.startswith("rr: running:")]
    assert len(warning) == 1 and warning[0] < running[0]
    assert str(tmp_path) in lines[warning[0]] and "outside the dataset" in lines[warning[0]]


def test_pwd_that_does_not_exist(ds):
    record_commit(ds, good("pwd > here.txt", pwd="newdir"))
    proc = rr("rerun", cwd=ds)
    assert "rr: warning:" in proc.stderr and "newdir" in proc.stderr
    assert (ds / "newdir" / "here.txt").exists()
    record_commit(ds, good("true", pwd="../no-such-dir"))
    before = sha(ds)
    proc = rr("rerun", cwd=ds, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("rr: error:") and "no-such-dir" in proc.stderr
    assert sha(ds) == before and not (ds / STATE).exists()


# --- 5. malformed records -----------------------------------------------------------------

BAD = {
    "cmd-number": (good(5), "field 'cmd' must be a string"),
    "inputs-string": (good("true", inputs="a.txt"), "field 'inputs' must be a list"),
    "outputs-items": (good("true", outputs=[1]), "field 'outputs' must be a list of strings"),
    "exit-string": (good("true", exit="0"), "field 'exit' must be a whole number"),
    "pwd-list": (good("true", pwd=["."]), "field 'pwd' must be a string"),
    "chain-items": (good("true", chain=[None]), "field 'chain' must be a list of strings"),
    "dsid-number": (good("true", dsid=7), "field 'dsid' must be a string"),
    "rr-list": (good("true", rr=[]), "field 'rr' must be an object"),
    "sidecar-path": ('"../../../../../etc/passwd"', "sidecar id is not a hex string"),
    "huge-command": (good("echo " + "x" * 2_000_000), "field 'cmd' is 2000005 bytes long"),
    "long-path": (good("true", outputs=["a" * 300 + ".txt"]), "a name of 304 bytes"),
    "no-pwd": ({"cmd": "true"}, "no 'pwd'"),
}


@pytest.mark.slow
def test_malformed_records_are_one_line_errors_and_notes(ds, tmp_path):
    shas = {name: record_commit(ds, rec, subject=name) for name, (rec, _) in BAD.items()}
    for name, (_, expected) in BAD.items():
        proc = rr("rerun", shas[name], cwd=ds, check=False)
        assert proc.returncode == 1, name
        first = proc.stderr.splitlines()[0]
        assert first.startswith(f"rr: error: commit {shas[name][:10]} has a malformed run "
                                "record: "), (name, proc.stderr)
        assert expected in first, (name, first)
        assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) <= 2
    # log, graph, report and script show them as notes and go on
    rows = [json.loads(line) for line in rr("log", "--json", cwd=ds).stdout.splitlines()]
    noted = {r["message"] for r in rows if "malformed run record" in (r["note"] or "")}
    assert len(rows) == len(BAD) and noted == set(BAD) - {"no-pwd"}  # log needs no pwd
    rr("graph", "-o", str(tmp_path / "g.dot"), cwd=ds)
    items = [json.loads(line) for line in
             rr("rerun", "--report", "--since=", cwd=ds).stdout.splitlines()]
    assert sum(1 for i in items if "malformed run record" in (i.get("note") or "")) == len(BAD)
    script = rr("rerun", "--script", "-", "--since=", cwd=ds).stdout
    assert script.count("not included:") == len(BAD)
    assert "Traceback" not in script


def test_sidecar_outside_the_dataset_is_never_read(ds, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("not a record\n")
    rid = "0123456789abcdef0123456789abcdef"
    (ds / ".datalad" / "runinfo").mkdir(parents=True)
    os.symlink(secret, ds / ".datalad" / "runinfo" / rid)
    record_commit(ds, f'"{rid}"')
    row = json.loads(rr("log", "--json", cwd=ds).stdout.splitlines()[0])
    assert "points outside the dataset" in row["note"]
    git("config", "datalad.run.record-directory", "../..", cwd=ds)
    row = json.loads(rr("log", "--json", cwd=ds).stdout.splitlines()[0])
    assert "outside the dataset" in row["note"]


def test_range_is_validated_before_anything_runs(ds):
    rr("run", "-o", "one.txt", "date +%N > one.txt", cwd=ds)
    first = sha(ds, "HEAD~1")
    record_commit(ds, good("true", inputs="not-a-list"))
    before = sha(ds)
    for extra in ([], ["--onto="]):
        proc = rr("rerun", *extra, "--since", first, cwd=ds, check=False)
        assert proc.returncode == 1 and "field 'inputs'" in proc.stderr
        assert "rr: running:" not in proc.stderr
        assert sha(ds) == before and on_branch(ds) == "master"
        assert not (ds / STATE).exists()


def test_metrics_skips_a_bad_record_with_a_note(ds):
    rr("run", "-o", "m.json", "echo '{{\"acc\": 1}}' > m.json", cwd=ds)
    bad = record_commit(ds, good("true", outputs=5))
    rows = [json.loads(line) for line in
            rr("metrics", "show", "--json", cwd=ds).stdout.splitlines()]
    assert rows[0]["acc"] == 1
    assert f"commit {bad[:8]}: malformed run record" in rows[0]["note"]


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"steps": 5}',
    ('{"steps": [], "mapping": {}, "start": "--orphan", "head": "x", "branch_name": null, '
     '"message": null, "explicit": false, "assume_ready": null, "total": 1, "done": 0, '
     '"pick_base": null}'),
])
def test_corrupt_state_file_is_a_one_line_error(static, content):
    ds = static
    (ds / STATE).write_text(content)
    before = sha(ds)
    proc = rr("rerun", "--continue", cwd=ds, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("rr: error: the stopped replay's state file")
    proc = rr("rerun", "--abort", cwd=ds)
    assert "damaged" in proc.stderr and not (ds / STATE).exists()
    assert sha(ds) == before and on_branch(ds) == "master"


# --- interrupts ---------------------------------------------------------------------------


def _interrupt_rerun(ds, *args) -> subprocess.CompletedProcess:
    """Start rr rerun, SIGTERM it while its command runs."""
    err = ds.parent / "rerun.err"
    with open(err, "w") as fh:
        p = subprocess.Popen([RR, "rerun", *args], cwd=ds, stdout=subprocess.DEVNULL,
                             stderr=fh, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while "rr: running:" not in err.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    return subprocess.CompletedProcess(p.args, p.returncode, "", err.read_text())


def test_interrupted_rerun_continues_or_aborts_cleanly(ds, tmp_path):
    flag = tmp_path / "go"
    flag.write_text("")
    cmd = f"date +%N > out.txt; test -e {flag} || sleep 30"
    rr("run", "-o", "out.txt", cmd, cwd=ds)
    flag.unlink()
    before = sha(ds)
    proc = _interrupt_rerun(ds)
    assert proc.returncode == 130, proc.stderr
    assert "rr rerun --continue" in proc.stderr and "Traceback" not in proc.stderr
    assert (ds / STATE).exists() and sha(ds) == before
    flag.write_text("")
    rr("rerun", "--continue", cwd=ds)  # the hint's command works as is
    assert sha(ds, "HEAD~1") == before and not (ds / STATE).exists()
    flag.unlink()
    before = sha(ds)
    proc = _interrupt_rerun(ds)
    assert proc.returncode == 130
    rr("rerun", "--abort", cwd=ds)
    assert sha(ds) == before and on_branch(ds) == "master"
    assert git("status", "--porcelain", cwd=ds) == ""  # no unlocked output left
    assert (ds / "out.txt").is_symlink()
    annex("fsck", "out.txt", cwd=ds)


# --- 6. topology as DataLad's -------------------------------------------------------------


def shape(ds, originals: set[str], rev="HEAD") -> str:
    """The history graph from ``rev``: original commits by sha, new ones by subject."""
    memo: dict[str, str] = {}
    lines = git("log", "--format=%H %P%x09%s", rev, cwd=ds).splitlines()
    info = {}
    for line in lines:
        ids, subject = line.split("\t", 1)
        h, *parents = ids.split()
        info[h] = (parents, subject)

    def walk(h: str) -> str:
        if h in originals:
            return h[:8]
        if h not in memo:
            parents, subject = info[h]
            memo[h] = f"{subject}({','.join(walk(p) for p in parents)})"
        return memo[h]
    return walk(sha(ds, rev))


def _left_right(ds, mutator: bool):
    git("checkout", "-q", "-b", "side", cwd=ds)
    rr("run", "echo foo >> foo" if mutator else "echo foo > foo", cwd=ds)
    git("checkout", "-q", "master", cwd=ds)
    rr("run", "echo bar >> bar" if mutator else "echo bar > bar", cwd=ds)
    git("merge", "-q", "--no-ff", "-m", "Merge side", "side", cwd=ds)


def _fastforwardable(ds, mutator: bool):
    git("checkout", "-q", "-b", "side", cwd=ds)
    rr("run", "echo foo >> foo" if mutator else "echo foo > foo", cwd=ds)
    git("checkout", "-q", "master", cwd=ds)
    git("merge", "-q", "--no-ff", "-m", "Merge side", "side", cwd=ds)


@pytest.mark.slow
@needs_datalad
@pytest.mark.parametrize("setup,mutator,args", [
    (_fastforwardable, False, ["--since=", "--onto="]),
    (_fastforwardable, True, ["--since="]),
    (_fastforwardable, True, ["--since=", "--onto=master^2"]),
    (_left_right, True, ["--since="]),
    (_left_right, True, ["--since=", "--onto="]),
])
def test_topology_as_datalad(ds, tmp_path, setup, mutator, args):
    setup(ds, mutator)
    originals = set(git("rev-list", "--all", cwd=ds).split())
    twin = tmp_path / "twin"
    shutil.copytree(ds, twin, symlinks=True)
    rr("rerun", *args, cwd=ds)
    datalad("rerun", *args, cwd=twin)
    assert shape(ds, originals) == shape(twin, originals)
    for name in ("master", "side"):
        assert shape(ds, originals, name) == shape(twin, originals, name)
    assert on_branch(ds) == on_branch(twin)


def test_script_names_full_commit_ids(ds):
    rr("run", "-o", "a.txt", "echo a > a.txt", cwd=ds)
    git("tag", "-a", "-m", "t", "v1", cwd=ds)  # describe would name the tag
    text = rr("rerun", "--script", "-", cwd=ds).stdout
    assert f"# (record: {sha(ds)})" in text


# --- 7. checkouts under the dataset lock ------------------------------------------------


@pytest.mark.slow
def test_rerun_checkout_waits_for_the_dataset_lock(static):
    ds = static
    fd = os.open(ds / ".git" / "rr.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        p = subprocess.Popen([RR, "rerun", "--onto", "static", "static"], cwd=ds,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.5)
        assert p.poll() is None and on_branch(ds) == "master"  # blocked before checking out
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert p.wait(timeout=30) == 0
    assert on_branch(ds) is None
