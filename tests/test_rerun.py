"""rr rerun: single commits, ranges, branches, report, script, failures and --continue."""

from __future__ import annotations

import json
import subprocess

import pytest

from recorder import record as records
from tests.conftest import commit_count, git, last_message, needs_datalad, rr


def rec(ds, rev="HEAD"):
    parsed = records.parse_message(last_message(ds, rev))
    assert parsed is not None, f"{rev} is not a run commit"
    return parsed.message, parsed.record


def sha(ds, rev="HEAD"):
    return git("rev-parse", rev, cwd=ds).strip()


@pytest.fixture
def counter(ds):
    """A dataset whose last commit appends to grows.txt (a run that always changes)."""
    rr("run", "-o", "grows.txt", "echo x >> grows.txt", cwd=ds)
    return ds


def test_rerun_head_extends_chain(counter):
    ds = counter
    first = sha(ds)
    rr("rerun", cwd=ds)
    assert (ds / "grows.txt").read_text() == "x\nx\n"
    msg, r = rec(ds)
    assert msg == "echo x >> grows.txt"
    assert r["chain"] == [first]
    second = sha(ds)
    rr("rerun", cwd=ds)
    assert rec(ds)[1]["chain"] == [first, second]


def test_unchanged_outputs_make_no_commit(ds):
    rr("run", "-o", "same.txt", "echo same > same.txt", cwd=ds)
    before = sha(ds)
    proc = rr("rerun", cwd=ds)
    assert sha(ds) == before
    assert "unchanged" in proc.stderr
    assert git("status", "--porcelain", cwd=ds) == ""


def test_rerun_message_override_and_json(counter):
    proc = rr("rerun", "--json", "-m", "again", cwd=counter)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["action"] for r in results] == ["run"]
    assert results[0]["new_commit"] == sha(counter)
    assert rec(counter)[0] == "again"


def test_range_replays_runs_in_order_and_skips_reachable_commits(ds):
    (ds / "code.txt").write_text("v1\n")
    rr("save", "-m", "code v1", "--version-tag", "start", cwd=ds)
    rr("run", "-m", "step one", "-o", "one.txt", "cat code.txt > one.txt", cwd=ds)
    rr("run", "-m", "step two", "-o", "two.txt", "cat one.txt one.txt > two.txt", cwd=ds)
    git("rm", "-q", "code.txt", cwd=ds)  # replace the annexed file by a text change
    (ds / "code.txt").write_text("v2\n")
    rr("save", "-m", "code v2", "--version-tag", "v2", cwd=ds)
    before = commit_count(ds)
    proc = rr("rerun", "-m", "Recompute", "start..v2", cwd=ds)
    assert commit_count(ds) == before + 2
    assert (ds / "two.txt").read_text() == "v2\nv2\n"
    subjects = git("log", "-2", "--format=%s", cwd=ds).splitlines()
    assert subjects == ["[DATALAD RUNCMD] Recompute", "[DATALAD RUNCMD] Recompute"]
    assert "skip" in proc.stderr


def test_since_empty_replays_all_history(counter):
    ds = counter
    rr("run", "-o", "other.txt", "echo y >> other.txt", cwd=ds)
    before = commit_count(ds)
    rr("rerun", "--since=", cwd=ds)
    assert commit_count(ds) == before + 2
    assert (ds / "grows.txt").read_text() == "x\nx\n"


def test_branch_replay_leaves_user_on_new_branch(ds):
    with open(ds / ".gitattributes", "a") as fh:
        fh.write("*.txt annex.largefiles=nothing\n")  # text in git, so diffs show content
    (ds / "param.txt").write_text("10\n")
    rr("save", "-m", "param", "--version-tag", "ready", cwd=ds)
    rr("run", "-m", "compute", "-o", "result.txt", "cat param.txt > result.txt", cwd=ds)
    rr("save", "--version-tag", "done", cwd=ds)
    (ds / "param.txt").write_text("100\n")
    rr("save", "-m", "param 100", cwd=ds)
    rr("rerun", "--branch", "more", "ready..done", cwd=ds)
    assert git("symbolic-ref", "--short", "HEAD", cwd=ds).strip() == "more"
    assert (ds / "result.txt").read_text() == "100\n"
    diff = git("diff", "master", "--", "result.txt", cwd=ds)
    assert "-10" in diff and "+100" in diff
    git("checkout", "-q", "master", cwd=ds)
    assert (ds / "result.txt").read_text() == "10\n"


def test_branch_that_exists_is_refused(counter):
    git("branch", "taken", cwd=counter)
    proc = rr("rerun", "--branch", "taken", cwd=counter, check=False)
    assert proc.returncode == 1
    assert "branch 'taken' already exists" in proc.stderr


def test_onto_empty_starts_at_parent_of_first_run(counter):
    ds = counter
    first = sha(ds)
    base = sha(ds, "HEAD~1")
    rr("rerun", "--onto=", "--branch", "fresh", cwd=ds)
    assert sha(ds, "fresh~1") == base
    assert (ds / "grows.txt").read_text() == "x\n"
    assert rec(ds)[1]["chain"] == [first]


def test_report_lists_plan_without_executing(counter):
    ds = counter
    (ds / "note.txt").write_text("n\n")
    rr("save", "-m", "note", cwd=ds)
    before = sha(ds)
    proc = rr("rerun", "--report", "--since=", cwd=ds)
    items = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [i["action"] for i in items] == ["run", "skip"]
    assert items[0]["record"]["cmd"] == "echo x >> grows.txt"
    assert sha(ds) == before


def test_script_cds_into_pwd_and_handles_tmpdir(ds, tmp_path):
    (ds / "sub").mkdir()
    (ds / "sub" / "keep").write_text("k\n")
    rr("save", cwd=ds)
    rr("run", "-o", "t.txt", "echo tmp > {tmpdir}/f; cat {tmpdir}/f > t.txt", cwd=ds / "sub")
    proc = rr("rerun", "--script", "-", cwd=ds)
    text = proc.stdout
    assert text.startswith("#!/bin/sh\n")
    assert f"cd {ds / 'sub'} || exit 1" in text
    git("rm", "-q", "sub/t.txt", cwd=ds)
    git("commit", "-qm", "drop", cwd=ds)
    script = tmp_path / "replay.sh"
    script.write_text(text)
    subprocess.run(["sh", str(script)], check=True, cwd=tmp_path)
    assert (ds / "sub" / "t.txt").read_text() == "tmp\n"


def test_script_expands_each_records_specs_in_its_own_directory(ds):
    """--script reads what a directory's specs match once for all the records that name
    them: records naming the same specs in another directory, or a glob, still get their own."""
    for d in ("a", "b"):
        (ds / d).mkdir()
        (ds / d / f"in-{d}.csv").write_text(d)
    (ds / "in-top.csv").write_text("top")
    rr("save", cwd=ds)
    where = ["a", "b", "a", "b", "."]
    for i, d in enumerate(where):
        rr("run", "-i", "in-*.csv", "-o", f"out{i}", f"cat {{inputs}} > out{i}", cwd=ds / d)
    git("rm", "-q", "in-top.csv", cwd=ds)  # the last record's input is gone: its spec stays
    git("commit", "-qm", "drop", cwd=ds)
    text = rr("rerun", "--script", "-", "--since=", cwd=ds).stdout
    commands = [line for line in text.splitlines() if line.startswith("cat ")]
    assert commands == ["cat in-a.csv > out0", "cat in-b.csv > out1", "cat in-a.csv > out2",
                        "cat in-b.csv > out3", "cat 'in-*.csv' > out4"]
    assert [line for line in text.splitlines() if line.startswith("cd ")] == [
        f"cd {ds / d if d != '.' else ds} || exit 1" for d in where]


def test_failing_replay_stops_and_continue_resumes(ds):
    (ds / "flag").write_text("ok\n")
    rr("save", "-m", "flag", "--version-tag", "base", cwd=ds)
    rr("run", "-m", "first", "-o", "a.txt", "cat flag > a.txt && date +%N >> a.txt", cwd=ds)
    rr("run", "-m", "second", "-o", "b.txt", "cat a.txt > b.txt", cwd=ds)
    # break the input the first step needs
    git("rm", "-q", "flag", cwd=ds)
    git("commit", "-qm", "remove flag", cwd=ds)
    before = commit_count(ds)
    proc = rr("rerun", "base..HEAD~1", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "replay stopped at" in proc.stderr and "'first'" in proc.stderr
    assert "rr rerun --continue" in proc.stderr
    assert commit_count(ds) == before  # nothing of the failed step committed
    # the user fixes the cause
    git("checkout", "-q", "-f", "HEAD", "--", ".", cwd=ds)
    git("clean", "-qfd", cwd=ds)
    (ds / "flag").write_text("fixed\n")
    rr("save", "-m", "restore flag", cwd=ds)
    rr("rerun", "--continue", cwd=ds)
    assert commit_count(ds) == before + 3
    assert (ds / "b.txt").read_text().startswith("fixed\n")
    assert not (ds / ".git" / "rr-rerun.json").exists()


def test_recorded_nonzero_exit_is_expected(ds):
    proc = rr("run", "echo out > out.txt; exit 3", cwd=ds, check=False)
    assert proc.returncode == 3
    rr("save", "-F", ".git/COMMIT_EDITMSG", cwd=ds)
    rr("rerun", cwd=ds)  # exit 3 again is what was recorded: fine
    assert rec(ds)[1]["exit"] == 3


def test_malformed_record_in_range_is_named_before_running(counter):
    ds = counter
    bad = ("[DATALAD RUNCMD] broken\n\n=== Do not change lines below ===\n{not json\n"
           "^^^ Do not change lines above ^^^\n")
    git("commit", "-q", "--allow-empty", "-m", bad, cwd=ds)
    rr("run", "-o", "late.txt", "echo late > late.txt", cwd=ds)
    before = commit_count(ds)
    proc = rr("rerun", "--since=", cwd=ds, check=False)
    assert proc.returncode == 1
    bad_sha = sha(ds, "HEAD~1")[:10]
    assert proc.stderr.splitlines()[0] == (
        f"rr: error: commit {bad_sha} has a malformed run record: run record is not valid JSON")
    assert commit_count(ds) == before


def test_no_run_commit_in_range(ds):
    proc = rr("rerun", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "no run commits found" in proc.stderr


def test_unknown_revision(counter):
    proc = rr("rerun", "nosuchref", cwd=counter, check=False)
    assert proc.returncode == 2
    assert "unknown revision: nosuchref" in proc.stderr


def test_explicit_run_is_replayed_explicitly_in_dirty_tree(ds):
    rr("run", "--explicit", "-o", "e.txt", "date +%N > e.txt", cwd=ds)
    (ds / "dirt.txt").write_text("dirt\n")
    rr("rerun", cwd=ds)
    assert git("show", "--name-only", "--format=", "HEAD", cwd=ds).split() == ["e.txt"]
    assert "?? dirt.txt" in git("status", "--porcelain", cwd=ds)


@pytest.mark.slow
@needs_datalad
def test_datalad_reruns_rr_records(ds):
    rr("run", "-m", "via rr", "-o", "n.txt", "echo x >> n.txt", cwd=ds)
    rr("run", "-m", "second", "-o", "m.txt", "cat n.txt n.txt > m.txt", cwd=ds)
    first = sha(ds, "HEAD~1")
    subprocess.run(["datalad", "rerun", "--since=HEAD~2"], cwd=ds, check=True,
                   capture_output=True)
    assert (ds / "n.txt").read_text() == "x\nx\n"
    assert (ds / "m.txt").read_text() == "x\nx\nx\nx\n"
    _, r = rec(ds, "HEAD~1")
    assert r["chain"] == [first]
    subprocess.run(["datalad", "rerun", "--branch", "dl", "--onto=", "--since=HEAD~4",
                    "HEAD~2"], cwd=ds, check=True, capture_output=True)
    assert git("symbolic-ref", "--short", "HEAD", cwd=ds).strip() == "dl"
    assert (ds / "m.txt").read_text() == "x\nx\n"


@needs_datalad
def test_rr_reruns_datalad_records(ds):
    subprocess.run(["datalad", "run", "-m", "dl one", "-o", "d.txt", "echo d >> d.txt"],
                   cwd=ds, check=True, capture_output=True)
    (ds / "sub").mkdir()
    subprocess.run(["datalad", "run", "-m", "dl two", "-i", "../d.txt", "-o", "e.txt",
                    "cat {inputs} {inputs} > e.txt"], cwd=ds / "sub", check=True,
                   capture_output=True)
    one = sha(ds, "HEAD~1")
    rr("rerun", "--since=HEAD~2", cwd=ds)
    assert (ds / "d.txt").read_text() == "d\nd\n"
    assert (ds / "sub" / "e.txt").read_text() == "d\nd\nd\nd\n"
    msg, r = rec(ds, "HEAD~1")
    assert msg == "dl one" and r["chain"] == [one]
    rr("rerun", "--branch", "rrbranch", "--onto=", "--since=HEAD~4", "HEAD~2", cwd=ds)
    assert (ds / "sub" / "e.txt").read_text() == "d\nd\n"


@needs_datalad
def test_rr_reads_datalad_sidecar_records(ds):
    subprocess.run(["datalad", "run", "--sidecar", "yes", "-o", "s.txt", "echo s >> s.txt"],
                   cwd=ds, check=True, capture_output=True)
    parsed = records.parse_message(last_message(ds))
    assert parsed.record_id is not None
    rr("rerun", cwd=ds)
    assert (ds / "s.txt").read_text() == "s\ns\n"


def test_cherry_pick_conflict_stops_and_continue_finishes(ds):
    with open(ds / ".gitattributes", "a") as fh:
        fh.write("*.txt annex.largefiles=nothing\n")
    rr("save", "-m", "text in git", "--version-tag", "base", cwd=ds)
    rr("run", "-m", "random", "-o", "c.txt", "date +%N > c.txt", cwd=ds)
    (ds / "c.txt").write_text("manual\n")
    rr("save", "-m", "manual edit", cwd=ds)
    proc = rr("rerun", "--branch", "again", "--onto=base", "base..HEAD", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "cherry-pick failed" in proc.stderr and "rr rerun --continue" in proc.stderr
    (ds / "c.txt").write_text("resolved\n")
    git("add", "c.txt", cwd=ds)
    git("-c", "core.editor=true", "cherry-pick", "--continue", cwd=ds)
    rr("rerun", "--continue", cwd=ds)
    assert git("symbolic-ref", "--short", "HEAD", cwd=ds).strip() == "again"
    assert (ds / "c.txt").read_text() == "resolved\n"
    assert git("log", "-1", "--format=%s", cwd=ds).strip() == "manual edit"
    assert rec(ds, "HEAD~1")[0] == "random"


def test_log_lists_run_commits(ds):
    rr("run", "-m", "first step", "-o", "a.txt", "echo a > a.txt", cwd=ds)
    (ds / "plain.txt").write_text("p\n")
    rr("save", "-m", "not a run", cwd=ds)
    proc = rr("run", "-m", "second step", "-o", "b.txt", "echo b > b.txt; exit 2", cwd=ds,
              check=False)
    assert proc.returncode == 2
    rr("save", "-F", ".git/COMMIT_EDITMSG", cwd=ds)
    rows = [json.loads(line) for line in rr("log", "--json", cwd=ds).stdout.splitlines()]
    assert [r["message"] for r in rows] == ["second step", "first step"]
    assert rows[0]["exit"] == 2 and rows[0]["outputs"] == ["b.txt"]
    assert rows[1]["command"] == "echo a > a.txt" and rows[1]["outputs"] == ["a.txt"]
    assert isinstance(rows[1]["duration"], float)  # kept in refs/notes/rr, not the record
    assert "duration" not in last_message(ds, "HEAD~2")
    text = rr("log", cwd=ds).stdout
    assert "$ echo a > a.txt" in text and "[exit 2]" in text
    csv_lines = rr("log", "--csv", "HEAD~1", cwd=ds).stdout.splitlines()
    assert csv_lines[0].startswith("commit,date,author,message,command")
    assert len(csv_lines) == 2
