"""rr run --param/--array: array jobs, each its own record, written in row order."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recorder import array
from recorder.errors import RecorderError, UsageError

from .conftest import RR, annex, git, last_message, needs_datalad, one_error_line, rr

COUNT = "mkdir -p out && wc -c {inputs} > {outputs}"


@pytest.fixture
def subjects(ds) -> Path:
    (ds / "raw").mkdir()
    for s in ("01", "02", "03"):
        (ds / "raw" / f"{s}.txt").write_text(f"subject {s}\n" * int(s))
    rr("save", "-m", "raw data", cwd=ds)
    return ds


def records(ds: Path, n: int) -> list[dict]:
    """The run records of the last n commits, oldest first."""
    out = []
    for k in range(n - 1, -1, -1):
        msg = last_message(ds, f"HEAD~{k}")
        body = msg.split("=== Do not change lines below ===\n", 1)[1]
        out.append(json.loads(body.split("\n^^^ Do not change lines above ^^^", 1)[0]))
    return out


def no_leftovers(ds: Path) -> None:
    assert git("worktree", "list", "--porcelain", cwd=ds).count("worktree ") == 1
    assert git("for-each-ref", "refs/rr", cwd=ds) == ""
    assert not list((ds / ".git").glob("rr-arrays/*.json"))
    assert git("status", "--porcelain", cwd=ds) == ""


# --- expansion and validation ---------------------------------------------------------------


def test_params_form_their_product_in_order():
    rows = array.expand_rows(["a=1,2", "b=x,y,z"])
    assert [tuple(r.values()) for r in rows] == [
        ("1", "x"), ("1", "y"), ("1", "z"), ("2", "x"), ("2", "y"), ("2", "z")]


def test_table_csv_tsv_and_sniffed(tmp_path):
    (tmp_path / "t.csv").write_text("subject,lr\n01,0.1\n02,0.01\n")
    (tmp_path / "t.tsv").write_text("subject\tlr\n01\t0.1\n02\t0.01\n")
    (tmp_path / "t.txt").write_text("subject\tlr\n01\t0.1\n02\t0.01\n")
    for name in ("t.csv", "t.tsv", "t.txt"):
        rows = array.expand_rows(table=str(tmp_path / name))
        assert rows == [{"subject": "01", "lr": "0.1"}, {"subject": "02", "lr": "0.01"}]
    rows = array.expand_rows(["seed=1,2"], str(tmp_path / "t.csv"))  # table x params
    assert [r["seed"] + r["subject"] for r in rows] == ["101", "201", "102", "202"]


@pytest.mark.parametrize("params,table,match", [
    (["inputs=a,b"], None, "name of a placeholder rr fills in"),
    (["img=a,b"], None, "name of a placeholder"),
    (["tmpdir=a"], None, "name of a placeholder"),
    (["1x=a,b"], None, "not an identifier"),
    (["a-b=1"], None, "not an identifier"),
    (["a=1", "a=2"], None, "given twice"),
    (["a"], None, "is not NAME=VALUE"),
    (["a=1,1"], None, "have the same parameters"),
    ([], "empty", "has no rows"),
    ([], "header-only", "has no rows"),
    ([], "missing", "line 3 .* has no value for 'lr'"),
    ([], "extra", "line 2 .* 3 values for 2 columns"),
    ([], "dupes", "jobs 0 and 1 have the same parameters"),
])
def test_expansion_errors(tmp_path, params, table, match):
    tables = {"empty": "", "header-only": "subject,lr\n", "missing": "subject,lr\n1,2\n3,\n",
              "extra": "subject,lr\n1,2,3\n", "dupes": "s\n1\n1\n"}
    path = None
    if table:
        path = tmp_path / f"{table}.csv"
        path.write_text(tables[table])
    with pytest.raises(UsageError, match=match):
        array.expand_rows(params, None if path is None else str(path))


def job(i, outputs, **params):
    return array.Job(i, params or {"k": str(i)}, "true", [], outputs, None)


@pytest.mark.parametrize("a,b", [
    ("out/1.txt", "out/1.txt"),            # the same path
    ("out", "out/1.txt"),                  # one inside the other
    ("out/1.txt", "out"),
    ("out/*.txt", "out/2.txt"),            # a glob matching the other's path
    ("out/2.txt", "out/*.txt"),
    ("out/*", "out/x/y.txt"),
    ("out/a*", "out/*b"),                  # globs matching each other's
])
def test_overlapping_outputs_are_refused(a, b):
    with pytest.raises(UsageError, match="outputs of job 0 .* and job 1 .* overlap"):
        array.check_overlaps([job(0, [a]), job(1, [b])], ".")


def test_disjoint_outputs_pass():
    array.check_overlaps([job(0, ["out/1.txt", "log/1"]), job(1, ["out/2.txt", "log/2"]),
                          job(2, ["out/1.txt.bak"])], ".")
    array.check_overlaps([job(0, ["a/x*"]), job(1, ["b/x*"])], ".")


def test_substitution_keeps_runs_placeholders_and_quotes_values():
    assert array.substitute("cat {inputs} {x} > {outputs} {{lit}}", {"x": "a b"},
                            quote=True, what="command") == \
        "cat {inputs} 'a b' > {outputs} {{lit}}"
    assert array.substitute("out/{x}.txt", {"x": "a{b}"}, quote=False, what="o") == \
        "out/a{{b}}.txt"


def test_cli_errors_before_anything_runs(subjects):
    ds = subjects
    head = git("rev-parse", "HEAD", cwd=ds)
    cases = [
        (["--param", "outputs=1,2", "-o", "x{outputs}", "true"], "name of a placeholder"),
        (["--param", "s=01,02", "-o", "out/all.txt", "touch out/all.txt"],
         "output 'out/all.txt' has no parameter in it"),
        (["--param", "s=01,02", "-i", "raw/{s}.txt", "-i", "raw/missing-{s}", "-o", "o{s}",
          "true"], "job 0 \\(s=01\\):"),
        (["--param", "s=1,2", "-o", "o{s}", "echo {nope}"], "unrecognized placeholder"),
        (["--array", "no-such.csv", "-o", "o{s}", "true"], "cannot read the --array table"),
        (["--jobs", "2", "true"], "--jobs and --scheduler run array jobs"),
        (["--continue"], "no unfinished array"),
        (["--continue", "--param", "a=1"], "--continue runs an array as it was started"),
        (["--continue", "a", "b"], "--continue takes at most one array ID"),
    ]
    for args, match in cases:
        proc = rr("run", *args, cwd=ds, check=False)
        assert proc.returncode != 0, args
        assert re.search(match, one_error_line(proc.stderr)), (args, proc.stderr)
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert not (ds / "out").exists()
    no_leftovers(ds)
    proc = rr("run", "-d", str(ds / "nowhere"), "--param", "a=1", "true", cwd=ds, check=False)
    assert proc.returncode != 0 and "rr: error:" in proc.stderr


def test_dry_run_lists_the_jobs_and_runs_nothing(subjects):
    ds = subjects
    proc = rr("run", "--dry-run", "--param", "subject=01,02", "--param", "n=1,2",
              "-i", "raw/{subject}.txt", "-o", "out/{subject}-{n}.txt", COUNT, cwd=ds)
    lines = proc.stdout.splitlines()
    assert lines[0] == ("job 0: subject=01 n=1: " + COUNT + " <- raw/01.txt -> out/01-1.txt")
    assert lines[3].startswith("job 3: subject=02 n=2:")
    assert len(lines) == 4
    as_json = [json.loads(x) for x in rr("run", "--dry-run", "--json", "--param", "s=01,02",
                                          "-o", "o/{s}", "touch {outputs}", cwd=ds)
               .stdout.splitlines()]
    assert [r["outputs"] for r in as_json] == [["o/01"], ["o/02"]]
    assert not (ds / "out").exists() and not (ds / "o").exists()
    no_leftovers(ds)


# --- running --------------------------------------------------------------------------------


@pytest.mark.slow
@needs_datalad
def test_serial_array_one_record_per_job_in_row_order_replayable_alone(subjects):
    ds = subjects
    base = git("rev-parse", "HEAD", cwd=ds).strip()
    proc = rr("run", "-m", "count {subject}", "--param", "subject=01,02,03",
              "-i", "raw/{subject}.txt", "-o", "out/{subject}.txt", COUNT, cwd=ds)
    assert "3 job(s) committed on master" in proc.stdout
    # shown before it runs; no progress display when stderr is not a terminal
    assert re.fullmatch(r"rr: running 3 job\(s\) of array [-0-9a-f]+: " + re.escape(COUNT) + "\n",
                        proc.stderr)
    assert git("rev-list", "--count", f"{base}..HEAD", cwd=ds).strip() == "3"
    assert git("rev-list", "--merges", f"{base}..HEAD", cwd=ds) == ""  # linear
    recs = records(ds, 3)
    for i, (rec, s) in enumerate(zip(recs, ("01", "02", "03"))):
        assert rec["cmd"] == COUNT
        assert rec["inputs"] == [f"raw/{s}.txt"] and rec["outputs"] == [f"out/{s}.txt"]
        assert rec["rr"]["array"]["index"] == i and rec["rr"]["array"]["params"] == {"subject": s}
        assert last_message(ds, f"HEAD~{2 - i}").startswith(f"[DATALAD RUNCMD] count {s}\n")
        # each commit holds exactly its own output
        assert git("diff-tree", "--no-commit-id", "--name-only", "-r", f"HEAD~{2 - i}",
                   cwd=ds).split() == [f"out/{s}.txt"]
    assert (ds / "out" / "02.txt").read_text().split()[0] == "22"
    no_leftovers(ds)
    annex("fsck", "--fast", "-q", cwd=ds)
    assert "here" in annex("whereis", "out/03.txt", cwd=ds)
    # one job replayed alone, by rr and by DataLad
    (ds / "out" / "02.txt").unlink()
    rr("save", "-m", "remove", cwd=ds)
    rr("rerun", "HEAD~2", cwd=ds)
    assert (ds / "out" / "02.txt").read_text().split()[0] == "22"
    assert json.loads(last_message(ds).split("below ===\n")[1].split("\n^^^")[0])[
        "rr"]["array"]["params"] == {"subject": "02"}
    subprocess.run(["datalad", "rerun", "HEAD~4"], cwd=ds, check=True, capture_output=True)
    assert (ds / "out" / "01.txt").read_text().split()[0] == "11"
    assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.slow
def test_parallel_array_on_a_local_cluster(subjects):
    ds = subjects
    proc = rr("run", "--json", "-J", "2", "--param", "subject=01,02,03", "--param", "k=a,b",
              "-i", "raw/{subject}.txt", "-o", "out/{subject}{k}.txt",
              "sleep 0.$((RANDOM % 3)); " + COUNT, cwd=ds)
    results = [json.loads(x) for x in proc.stdout.splitlines()]
    jobs = [r for r in results if r["action"] == "run"]
    assert sorted(r["index"] for r in jobs) == list(range(6))
    assert all(r["status"] == "ok" for r in jobs)
    assert results[-1]["action"] == "run-array" and results[-1]["committed"] == 6
    recs = records(ds, 6)
    assert [r["rr"]["array"]["index"] for r in recs] == list(range(6))  # row order
    assert [r["outputs"][0] for r in recs] == [f"out/{s}{k}.txt" for s in ("01", "02", "03")
                                               for k in "ab"]
    no_leftovers(ds)
    # the git-annex branch knows every output's content, and fsck agrees
    fsck = annex("fsck", "--json", "out", cwd=ds)
    assert len([x for x in fsck.splitlines() if json.loads(x)["success"]]) == 6
    assert not list((ds / ".git" / "annex" / "journal").glob("*"))


def test_no_dask_on_the_plain_path(ds):
    code = ("import sys; from recorder import cli, api, array; "
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "from recorder.cli import main; import sys; sys.argv=['rr','run',"
                           "'--param','a=1,2','-o','o{a}','touch o{a}']; main()"],
                          cwd=ds, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert " distributed" not in proc.stderr and "| dask" not in proc.stderr


# --- failures -------------------------------------------------------------------------------


@pytest.mark.slow
def test_failing_job_is_reported_kept_and_continued(subjects):
    ds = subjects
    marker = ds.parent / "fail-02"
    marker.write_text("")
    cmd = f"test {{subject}} != 02 || ! test -e {marker}; " + COUNT + \
        f"; test {{subject}} != 02 || ! test -e {marker}"
    proc = rr("run", "--param", "subject=01,02,03", "-i", "raw/{subject}.txt",
              "-o", "out/{subject}.txt", cmd, cwd=ds, check=False)
    assert proc.returncode == 1
    errors = [x for x in proc.stderr.splitlines() if x.startswith("rr: error:")]
    assert len(errors) == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "job 1: subject=02: command exited with code 1" in errors[0]
    assert "1 failed: rr run --continue" in errors[1]
    assert "done      job 2: subject=03" in proc.stdout
    # the others are committed in order, with a gap for the failed row
    recs = records(ds, 2)
    assert [r["rr"]["array"]["index"] for r in recs] == [0, 2]
    array_id = recs[0]["rr"]["array"]["id"]
    state = json.loads((ds / ".git" / "rr-arrays" / f"{array_id}.json").read_text())
    kept = Path(state["jobs"][1]["worktree"])
    assert (kept / "out" / "02.txt").exists()  # its outputs
    assert "[DATALAD RUNCMD]" in (Path(git("rev-parse", "--absolute-git-dir", cwd=kept).strip())
                                  / "COMMIT_EDITMSG").read_text()  # and its message
    assert not (ds / "out" / "02.txt").exists()
    marker.unlink()
    rr("run", "--continue", cwd=ds)
    recs = records(ds, 3)
    assert [r["rr"]["array"]["index"] for r in recs] == [0, 2, 1]
    assert (ds / "out" / "02.txt").read_text().split()[0] == "22"
    no_leftovers(ds)


def test_driver_killed_then_continued_reruns_no_finished_job(subjects):
    ds = subjects
    log = ds.parent / "ran.log"
    gate = ds.parent / "gate"
    # job 1 waits for the gate; the driver is killed while it waits
    cmd = (f"echo {{subject}} >> {log}; if test {{subject}} = 02; then "
           f"while ! test -e {gate}; do sleep 0.05; done; fi; " + COUNT)
    child = subprocess.Popen([RR, "run", "--param", "subject=01,02,03",
                              "-i", "raw/{subject}.txt", "-o", "out/{subject}.txt", cmd], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (log.exists() and "02" in log.read_text()):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.kill()
    child.wait()
    head = git("rev-parse", "HEAD", cwd=ds)
    assert git("for-each-ref", "--format=%(refname)", "refs/rr", cwd=ds).strip().endswith("/0")
    gate.write_text("")
    rr("run", "--continue", cwd=ds)
    assert log.read_text().split() == ["01", "02", "02", "03"]  # job 0 did not run again
    assert git("rev-list", "--count", f"{head.strip()}..HEAD", cwd=ds).strip() == "3"
    assert [r["rr"]["array"]["index"] for r in records(ds, 3)] == [0, 1, 2]
    no_leftovers(ds)
    annex("fsck", "--fast", "-q", cwd=ds)


def test_main_worktree_untouched_while_jobs_run(subjects):
    ds = subjects
    gate = ds.parent / "gate"
    started = ds.parent / "started"
    watched = [ds / ".git" / "index", ds / "raw" / "01.txt", ds / ".git" / "HEAD",
               ds / ".git" / "refs" / "heads" / "master"]
    head = git("rev-parse", "HEAD", cwd=ds)
    git("status", cwd=ds)  # index refreshed before
    cmd = (f"touch {started}; while ! test -e {gate}; do sleep 0.05; done; " + COUNT)
    child = subprocess.Popen([RR, "run", "--param", "subject=01,02", "-i", "raw/{subject}.txt",
                              "-o", "out/{subject}.txt", cmd], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    # rr's own clean check may refresh the index before the jobs start: watch from here
    before = {p: os.lstat(p).st_mtime_ns for p in watched if p.exists()}
    time.sleep(0.3)
    assert {p: os.lstat(p).st_mtime_ns for p in before} == before
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert not (ds / "out").exists()
    assert git("log", "-1", "--format=%H", "git-annex", cwd=ds)  # unchanged below
    annex_tip = git("rev-parse", "git-annex", cwd=ds)
    gate.write_text("")
    assert child.wait(timeout=60) == 0, child.communicate()
    assert git("rev-parse", "HEAD~2", cwd=ds) == head
    assert git("rev-parse", "git-annex", cwd=ds) != annex_tip  # written once, by the driver
    assert (ds / "out" / "01.txt").exists()
    no_leftovers(ds)


def test_branch_moved_meanwhile_is_refused_then_continued(subjects):
    ds = subjects
    gate = ds.parent / "gate"
    started = ds.parent / "started"
    cmd = (f"touch {started}; while ! test -e {gate}; do sleep 0.05; done; " + COUNT)
    child = subprocess.Popen([RR, "run", "--param", "subject=01,02", "-i", "raw/{subject}.txt",
                              "-o", "out/{subject}.txt", cmd], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    rr("run", "-m", "meanwhile", "echo x > other.txt", cwd=ds)
    gate.write_text("")
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "master moved while the jobs ran" in one_error_line(err)
    assert "rr run --continue" in err
    assert last_message(ds).startswith("[DATALAD RUNCMD] meanwhile")
    rr("run", "--continue", cwd=ds)
    assert [r["rr"]["array"]["index"] for r in records(ds, 2)] == [0, 1]
    assert last_message(ds, "HEAD~2").startswith("[DATALAD RUNCMD] meanwhile")
    no_leftovers(ds)


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [[], ["-J", "2"]], ids=["serial", "dask"])
def test_ctrl_c_cancels_and_leaves_the_dataset_consistent(subjects, parallel):
    """Ctrl-C to the driver: the commands are stopped (also in Dask workers), no traceback,
    nothing written to the branch; --continue finishes the array."""
    ds = subjects
    started = ds.parent / "started"
    block = ds.parent / "block"
    block.write_text("")
    # `started` appears once `sleep 30` runs in the foreground: a signal that reached the shell
    # while an earlier command was ending would let it go on (as sh does), not test rr
    cmd = (f"if test {{subject}} != 01 && test -e {block}; then "
           f"(sleep 0.3; touch {started}) & sleep 30; fi; " + COUNT)
    head = git("rev-parse", "HEAD", cwd=ds)
    child = subprocess.Popen([RR, "run", *parallel, "--param", "subject=01,02,03",
                              "-i", "raw/{subject}.txt", "-o", "out/{subject}.txt", cmd], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGINT)  # as the terminal does: the whole group, workers too
    _out, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "interrupted" in one_error_line(err) and "rr run --continue" in err
    assert "Traceback" not in err, err
    left = subprocess.run(["pgrep", "-f", str(block)], capture_output=True, text=True).stdout
    assert left == "", f"commands still running: {left}"
    assert git("rev-parse", "HEAD", cwd=ds) == head  # no half-written branch
    assert git("status", "--porcelain", cwd=ds) == ""
    assert git("worktree", "list", cwd=ds).count("\n") == 1  # worktrees cleaned
    block.unlink()
    rr("run", "--continue", cwd=ds)
    assert [r["rr"]["array"]["index"] for r in records(ds, 3)] == [0, 1, 2]
    no_leftovers(ds)


def test_api_refuses_an_array_without_rows(ds):
    from recorder import api

    with pytest.raises(RecorderError, match="needs --param"):
        api.run_array("true", dataset=ds)


def test_containers_run_array_in_worktrees(ds, tmp_path):
    """An annexed image is reached from a job's worktree (the shared annex) and recorded."""
    runner = tmp_path / "runner.sh"
    runner.write_text('#!/bin/sh\nexec sh -c "$*"\n')
    rr("containers-add", "fake", "--url", f"file://{runner}", "--call-fmt", "sh {img} {cmd}",
       cwd=ds)
    rr("containers-run", "-n", "fake", "--param", "s=a,b", "-o", "o/{s}.txt",
       "mkdir -p o && echo {s} > o/{s}.txt", cwd=ds)
    recs = records(ds, 2)
    assert [r["rr"]["container"]["name"] for r in recs] == ["fake", "fake"]
    assert recs[1]["cmd"] == "sh .datalad/environments/fake/image mkdir -p o && echo b > o/b.txt"
    assert (ds / "o" / "b.txt").read_text() == "b\n"
    no_leftovers(ds)


def test_progress_display_on_a_terminal(monkeypatch):
    import io

    from recorder import cli
    from recorder.results import job_event

    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    progress = cli._Progress()
    for e in [job_event(0, "queued"), job_event(1, "queued"), job_event(0, "started"),
              job_event(0, "done"), job_event(1, "started"), job_event(1, "failed")]:
        progress.event(e)
    last = err.getvalue().split("\r\x1b[K")[-1]
    assert last.startswith("rr: jobs: 0 queued, 0 running, 1 done, 1 failed (")
    list(progress.around(iter([1])))
    assert err.getvalue().endswith("\r\x1b[K")  # cleared before results and at the end


def test_work_tree_changed_meanwhile_is_refused_then_continued(subjects):
    ds = subjects
    gate = ds.parent / "gate"
    started = ds.parent / "started"
    cmd = (f"touch {started}; while ! test -e {gate}; do sleep 0.05; done; " + COUNT)
    child = subprocess.Popen([RR, "run", "--param", "subject=01,02", "-i", "raw/{subject}.txt",
                              "-o", "out/{subject}.txt", cmd], cwd=ds,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    (ds / "out").mkdir()
    (ds / "out" / "02.txt").write_text("mine\n")  # where a job's output will go
    head = git("rev-parse", "HEAD", cwd=ds)
    gate.write_text("")
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "the work tree changed while the jobs ran" in one_error_line(err)
    assert git("rev-parse", "HEAD", cwd=ds) == head
    assert (ds / "out" / "02.txt").read_text() == "mine\n"  # never overwritten
    (ds / "out" / "02.txt").unlink()
    rr("run", "--continue", cwd=ds)
    assert [r["rr"]["array"]["index"] for r in records(ds, 2)] == [0, 1]
    no_leftovers(ds)
