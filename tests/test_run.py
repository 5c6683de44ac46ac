"""rr run: records, inputs, outputs, placeholders, failures, signals, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from recorder import record as records
from tests.conftest import RR, annex, commit_count, git, last_message, needs_datalad, rr


def record_of(ds, rev="HEAD"):
    parsed = records.parse_message(last_message(ds, rev))
    assert parsed is not None, "not a run commit"
    return parsed.message, parsed.record


def dsid(ds):
    return git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=ds).strip()


def test_record_is_byte_compatible(ds_with_data):
    ds = ds_with_data
    # the record as DataLad writes it: without rr's measurements (rr.env, rr.resources)
    git("config", "rr.run.record-environment", "false", cwd=ds)
    rr("run", "-m", "concatenate", "-i", "data/*.txt", "-o", "out.txt",
       "cat {inputs} > {outputs}", cwd=ds)
    expected = (
        "[DATALAD RUNCMD] concatenate\n\n=== Do not change lines below ===\n{\n"
        ' "chain": [],\n "cmd": "cat {inputs} > {outputs}",\n'
        f' "dsid": "{dsid(ds)}",\n "exit": 0,\n "extra_inputs": [],\n'
        ' "inputs": [\n  "data/*.txt"\n ],\n "outputs": [\n  "out.txt"\n ],\n'
        ' "pwd": "."\n}\n^^^ Do not change lines above ^^^\n'
    )
    raw = subprocess.run(["git", "cat-file", "commit", "HEAD"], cwd=ds, check=True,
                         capture_output=True, text=True).stdout
    assert raw.split("\n\n", 1)[1] == expected
    assert (ds / "out.txt").read_text() == "alpha\nbeta\n"
    assert (ds / "out.txt").is_symlink()  # saved into the annex
    assert git("status", "--porcelain", cwd=ds) == ""


def test_subject_is_cut_at_40_characters(ds):
    rr("run", "echo 0123456789012345678901234567890123456789 > long.txt", cwd=ds)
    message, _ = record_of(ds)
    assert message == "echo 01234567890123456789012345678901234..."
    assert len(message) == 43
    rr("run", "echo short > s.txt", cwd=ds)
    assert record_of(ds)[0] == "echo short > s.txt"


def test_subject_uses_expanded_command(ds_with_data):
    rr("run", "-i", "data/a.txt", "cat {inputs} > x.txt", cwd=ds_with_data)
    assert record_of(ds_with_data)[0] == "cat data/a.txt > x.txt"


def test_pwd_relative_to_root_from_subdirectory(ds_with_data):
    ds = ds_with_data
    rr("run", "echo {pwd} {dspath} > where.txt", cwd=ds / "code")
    _, rec = record_of(ds)
    assert rec["pwd"] == "code"
    assert rec["cmd"] == "echo {pwd} {dspath} > where.txt"
    assert (ds / "code" / "where.txt").read_text().split() == [str(ds / "code"), str(ds)]


def test_list_form_command_is_shell_quoted(ds):
    rr("run", "--", "sh", "-c", "echo 'a b' > q.txt", cwd=ds)
    _, rec = record_of(ds)
    assert rec["cmd"] == "sh -c 'echo '\"'\"'a b'\"'\"' > q.txt'"
    assert (ds / "q.txt").read_text() == "a b\n"


def test_command_words_after_first_are_not_options(ds):
    rr("run", "-m", "ver", "sh", "-c", "echo --version > v.txt", cwd=ds)
    assert (ds / "v.txt").read_text() == "--version\n"


def test_input_glob_content_is_fetched(ds_with_data, tmp_path):
    subprocess.run(["git", "clone", "-q", str(ds_with_data), str(tmp_path / "clone")],
                   check=True)
    ds = tmp_path / "clone"
    annex("init", "-q", cwd=ds)
    assert not (ds / "data" / "a.txt").exists()  # no content in a fresh clone
    rr("run", "-i", "data/*.txt", "-o", "n.txt", "cat {inputs} | wc -l > {outputs}", cwd=ds)
    assert (ds / "n.txt").read_text().strip() == "2"
    assert (ds / "data" / "a.txt").read_text() == "alpha\n"


def test_unmatched_input_is_an_error_before_anything_runs(ds_with_data):
    ds = ds_with_data
    before = commit_count(ds)
    proc = rr("run", "-i", "data/*.csv", "-i", "missing.txt", "touch ran.txt", cwd=ds,
              check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == (
        "rr: error: input did not match any file: 'data/*.csv', 'missing.txt'")
    assert not (ds / "ran.txt").exists()
    assert commit_count(ds) == before


def test_existing_annexed_output_is_unlocked_and_resaved(ds):
    (ds / "model.bin").write_bytes(b"old")
    rr("save", "-m", "old model", cwd=ds)
    assert (ds / "model.bin").is_symlink()
    rr("run", "-o", "model.bin", "echo new > model.bin", cwd=ds)
    assert (ds / "model.bin").read_text() == "new\n"
    assert (ds / "model.bin").is_symlink()  # locked again after saving
    assert git("status", "--porcelain", cwd=ds) == ""


def test_output_with_absent_content_is_removed_before_the_command(ds):
    (ds / "gone.txt").write_text("was here\n")
    rr("save", cwd=ds)
    annex("drop", "--force", "gone.txt", cwd=ds)
    rr("run", "-o", "gone.txt", "test ! -e gone.txt && echo fresh > gone.txt", cwd=ds)
    assert (ds / "gone.txt").read_text() == "fresh\n"


def test_unknown_placeholder_touches_nothing(ds):
    (ds / "out.txt").write_text("keep\n")
    rr("save", cwd=ds)
    before = commit_count(ds)
    proc = rr("run", "-o", "out.txt", "echo {nope} > out.txt", cwd=ds, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == (
        "rr: error: command has an unrecognized placeholder: {nope}")
    assert (ds / "out.txt").is_symlink()  # not unlocked
    assert git("status", "--porcelain", cwd=ds) == ""
    assert commit_count(ds) == before


def test_placeholders_quoting_and_escapes(ds):
    (ds / "in dir").mkdir()
    (ds / "in dir" / "x y.txt").write_text("spaced\n")
    rr("save", cwd=ds)
    rr("run", "-i", "in dir/*.txt", "-o", "out file.txt",
       "cat {inputs[0]} > {outputs}; echo '{{literal}}' >> {outputs}", cwd=ds)
    assert (ds / "out file.txt").read_text() == "spaced\n{literal}\n"
    _, rec = record_of(ds)
    assert rec["cmd"] == "cat {inputs[0]} > {outputs}; echo '{{literal}}' >> {outputs}"


def test_tmpdir_is_created_and_removed(ds):
    rr("run", "-o", "t.txt", "test -d {tmpdir} && echo {tmpdir} > t.txt", cwd=ds)
    used = Path((ds / "t.txt").read_text().strip())
    assert used.name.startswith("rr-run-")
    assert not used.exists()


def test_custom_substitution_from_config(ds):
    git("config", "-f", ".datalad/config", "datalad.run.substitutions.greeting", "hello", cwd=ds)
    rr("save", "-m", "config", cwd=ds)
    rr("run", "echo {greeting} > g.txt", cwd=ds)
    assert (ds / "g.txt").read_text() == "hello\n"
    assert record_of(ds)[1]["cmd"] == "echo {greeting} > g.txt"


def test_dirty_dataset_refused_with_paths(ds):
    (ds / "stray.txt").write_text("x")
    proc = rr("run", "touch y", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "unsaved changes: stray.txt" in proc.stderr
    assert not (ds / "y").exists()


def test_explicit_saves_only_declared_outputs_and_is_recorded(ds):
    (ds / "stray.txt").write_text("untouched\n")
    rr("run", "--explicit", "-o", "result.txt", "echo r > result.txt; echo s > side.txt", cwd=ds)
    changed = git("show", "--name-only", "--format=", "HEAD", cwd=ds).split()
    assert changed == ["result.txt"]
    _, rec = record_of(ds)
    assert rec["rr"]["explicit"] is True
    status = git("status", "--porcelain", cwd=ds)
    assert "?? stray.txt" in status and "?? side.txt" in status


def test_explicit_without_outputs_commits_nothing(ds):
    before = commit_count(ds)
    rr("run", "--explicit", "echo x > x.txt", cwd=ds)
    assert commit_count(ds) == before


def test_explicit_records_deleted_output(ds):
    (ds / "old.txt").write_text("bye\n")
    rr("save", cwd=ds)
    rr("run", "--explicit", "-o", "old.txt", "rm old.txt", cwd=ds)
    assert git("show", "--name-status", "--format=", "HEAD", cwd=ds).strip() == "D\told.txt"


def test_failing_command_commits_nothing_and_keeps_message(ds):
    before = commit_count(ds)
    proc = rr("run", "-m", "fails", "echo partial > partial.txt; exit 3", cwd=ds, check=False)
    assert proc.returncode == 3
    assert commit_count(ds) == before
    assert (ds / "partial.txt").read_text() == "partial\n"
    editmsg = (ds / ".git" / "COMMIT_EDITMSG").read_text()
    parsed = records.parse_message(editmsg)
    assert parsed.message == "fails" and parsed.record["exit"] == 3
    assert "rr save" in proc.stderr and "COMMIT_EDITMSG" in proc.stderr
    assert "Traceback" not in proc.stderr
    # the hint works as printed
    rr("save", "-F", ".git/COMMIT_EDITMSG", cwd=ds)
    assert record_of(ds)[1]["exit"] == 3


def test_nothing_changed_makes_no_commit(ds):
    before = commit_count(ds)
    proc = rr("run", "true", cwd=ds)
    assert commit_count(ds) == before
    assert "changed nothing" in proc.stderr


def test_expand_stores_globbed_paths(ds_with_data):
    rr("run", "--expand", "both", "-i", "data/*.txt", "-o", "o*.txt",
       "cat {inputs} > o1.txt", cwd=ds_with_data)
    _, rec = record_of(ds_with_data)
    assert rec["inputs"] == ["data/a.txt", "data/b.txt"]
    assert rec["outputs"] == ["o1.txt"]


def test_sidecar_record(ds):
    rr("run", "--sidecar", "-o", "s.txt", "echo side > s.txt", cwd=ds)
    msg = last_message(ds)
    parsed = records.parse_message(msg)
    assert parsed.record is None and len(parsed.record_id) == 32
    side = ds / ".datalad" / "runinfo" / parsed.record_id
    assert side.exists()
    rec = records.read_sidecar(ds, ".datalad/runinfo", parsed.record_id)
    assert rec["cmd"] == "echo side > s.txt"
    assert records.record_id_of(rec) == parsed.record_id
    assert ".datalad/runinfo/" + parsed.record_id in git("show", "--name-only", "--format=",
                                                         "HEAD", cwd=ds)


def test_dry_run_changes_nothing(ds_with_data):
    ds = ds_with_data
    before = commit_count(ds)
    proc = rr("run", "--dry-run", "-i", "data/*.txt", "-o", "o.txt",
              "cat {inputs} > {outputs}", cwd=ds)
    assert "cat data/a.txt data/b.txt > o.txt" in proc.stdout
    assert "data/a.txt" in proc.stdout and "o.txt" in proc.stdout
    assert not (ds / "o.txt").exists()
    assert commit_count(ds) == before


def test_json_output(ds):
    proc = rr("run", "--json", "-o", "j.txt", "echo j > j.txt", cwd=ds)
    result = json.loads(proc.stdout)
    assert result["status"] == "ok"
    assert result["commit"] == git("rev-parse", "HEAD", cwd=ds).strip()
    assert result["record"]["outputs"] == ["j.txt"]


def test_output_streams_are_live(ds):
    proc = rr("run", "echo to-stdout; echo to-stderr >&2", cwd=ds)
    assert "to-stdout" in proc.stdout
    assert "to-stderr" in proc.stderr


def test_no_command_is_a_usage_error(ds):
    proc = rr("run", cwd=ds, check=False)
    assert proc.returncode == 2
    assert "no command given" in proc.stderr


def test_output_outside_dataset(ds, tmp_path):
    proc = rr("run", "-o", str(tmp_path / "x.txt"), "true", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "outside the dataset" in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_reaches_process_group_and_nothing_is_committed(ds, sig):
    before = commit_count(ds)
    pidfile = ds.parent / "grandchild.pid"
    cmd = f"sh -c 'sleep 60 & echo $! > {pidfile}; wait'; echo after > after.txt"
    errfile = ds.parent / "rr.err"
    with open(errfile, "w") as err_fh:
        p = subprocess.Popen([RR, "run", "-o", "after.txt", cmd], cwd=ds,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_fh)
    deadline = time.time() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.time() < deadline, "command did not start"
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    p.send_signal(sig)
    p.wait(timeout=20)
    err = errfile.read_text()
    assert p.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert _gone(grandchild), "the sleep in the command's process group survived"
    assert commit_count(ds) == before
    assert not (ds / "after.txt").exists()
    assert not (ds / ".git" / "index.lock").exists()


def _gone(pid: int, wait: float = 5.0) -> bool:
    """True once ``pid`` has exited (a zombie counts: nothing may reap it in a container)."""
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_concurrent_explicit_runs_each_commit_their_own_outputs(ds):
    procs = [subprocess.Popen([RR, "run", "--explicit", "-m", f"job {n}", "-o", f"out{n}.txt",
                               f"sleep 1; echo {n} > out{n}.txt"], cwd=ds,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    log = git("log", "-2", "--format=%H %s", cwd=ds).splitlines()
    seen = {}
    for line in log:
        sha, subject = line.split(" ", 1)
        files = git("show", "--name-only", "--format=", sha, cwd=ds).split()
        seen[subject] = files
        _, rec = record_of(ds, sha)
        assert rec["outputs"] == files
    assert seen == {"[DATALAD RUNCMD] job 1": ["out1.txt"],
                    "[DATALAD RUNCMD] job 2": ["out2.txt"]}
    assert git("status", "--porcelain", cwd=ds) == ""


# --- paths with -d (DataLad gh-3435) and --dry-run modes --------------------------------


def _run_both(tmp_path, where: str, args: list[str], prepare) -> dict:
    """Run the same `run -d` in an rr-made and a DataLad-made dataset from ``where``
    (relative to the dataset's parent); returns {tool: (record, files in the top)}."""
    out = {}
    for tool in ("rr", "datalad"):
        top = tmp_path / tool
        top.mkdir()
        ds = top / "ds"
        if tool == "rr":
            rr("create", str(ds))
        else:
            subprocess.run(["datalad", "create", str(ds)], check=True, capture_output=True)
        prepare(ds)
        subprocess.run([tool, "save", "-d", str(ds)], check=True, capture_output=True)
        cwd = top / where
        cwd.mkdir(parents=True, exist_ok=True)
        dsarg = os.path.relpath(ds, cwd)
        subprocess.run([tool, "run", "-d", dsarg, *args], cwd=cwd, check=True,
                       capture_output=True, text=True)
        _, rec = record_of(ds)
        rec.pop("dsid")
        rec.pop("rr", None)  # rr's own extension (the machine, resources), ignored by DataLad
        files = sorted(str(p.relative_to(top)) for p in top.rglob("*")
                       if ".git" not in p.parts and ".datalad" not in p.parts)
        out[tool] = (rec, files, git("status", "--porcelain", cwd=ds))
    return out


@pytest.mark.slow
@needs_datalad
def test_dataset_option_paths_from_outside_like_datalad(tmp_path):
    def prepare(ds):
        (ds / "in.txt").write_text("in\n")

    got = _run_both(tmp_path, ".", ["-i", "ds/in.txt", "-o", "ds/out.txt",
                                    "cat ds/in.txt > ds/out.txt; echo x > stray.txt"], prepare)
    rec, files, status = got["rr"]
    assert rec["pwd"] == ".." and rec["inputs"] == ["ds/in.txt"]
    assert rec["outputs"] == ["ds/out.txt"]
    assert "stray.txt" in files and "ds/out.txt" in files  # ran outside; stray not saved
    assert status == ""
    assert got["rr"] == got["datalad"]


@pytest.mark.slow
@needs_datalad
def test_dataset_option_paths_from_subdirectory_like_datalad(tmp_path):
    def prepare(ds):
        (ds / "sub").mkdir()
        (ds / "sub" / "in.txt").write_text("in\n")

    got = _run_both(tmp_path, "ds/sub", ["-i", "in.txt", "-o", "out.txt",
                                         "cat {inputs} > {outputs}"], prepare)
    rec, files, status = got["rr"]
    assert rec["pwd"] == "sub" and rec["outputs"] == ["out.txt"]
    assert "ds/sub/out.txt" in files and status == ""
    assert got["rr"] == got["datalad"]


def test_dataset_option_refuses_outputs_outside(ds, tmp_path):
    before = commit_count(ds)
    proc = rr("run", "-d", "ds", "-o", "elsewhere.txt", "echo x > elsewhere.txt",
              cwd=ds.parent, check=False)
    assert proc.returncode == 1 and "outside the dataset" in proc.stderr
    proc = rr("run", "-d", "ds", "-i", "elsewhere.txt", "true", cwd=ds.parent, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert not (ds.parent / "elsewhere.txt").exists()
    assert commit_count(ds) == before


def test_dataset_option_with_dotdot_from_subdirectory(ds):
    (ds / "code").mkdir()
    rr("run", "-d", "..", "-o", "o.txt", "echo {pwd} > o.txt", cwd=ds / "code")
    _, rec = record_of(ds)
    assert rec["pwd"] == "code" and rec["outputs"] == ["o.txt"]
    assert (ds / "code" / "o.txt").read_text().strip() == str(ds / "code")


@pytest.mark.parametrize("form", [["--dry-run"], ["--dry-run=basic"], ["--dry-run", "basic"]])
def test_dry_run_basic_forms(ds_with_data, form):
    ds = ds_with_data
    proc = rr("run", *form, "-i", "data/a.txt", "-o", "o.txt", "cat {inputs} > {outputs}",
              cwd=ds)
    assert proc.stdout.startswith("Dry run information\n")
    assert f" location: {ds}\n" in proc.stdout
    assert "['data/a.txt']" in proc.stdout and "['o.txt']" in proc.stdout
    assert "cat data/a.txt > o.txt" in proc.stdout
    assert not (ds / "o.txt").exists()


@pytest.mark.parametrize("form", [["--dry-run=command"], ["--dry-run", "command"]])
def test_dry_run_command_prints_only_the_command(ds_with_data, form):
    ds = ds_with_data
    before = commit_count(ds)
    proc = rr("run", *form, "-i", "data/*.txt", "-o", "o.txt", "cat {inputs} > {outputs}",
              cwd=ds)
    assert proc.stdout == "cat data/a.txt data/b.txt > o.txt\n"
    assert not (ds / "o.txt").exists() and commit_count(ds) == before


def test_dry_run_word_after_it_is_the_command(ds):
    proc = rr("run", "--dry-run", "echo", "hi", cwd=ds)
    assert "echo hi" in proc.stdout and "Dry run information" in proc.stdout
    # a --dry-run inside the command is the command's
    proc = rr("run", "--dry-run=command", "--", "echo", "--dry-run", cwd=ds)
    assert proc.stdout == "echo --dry-run\n"
    proc = rr("run", "--dry-run=absurd", "echo", cwd=ds, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("rr: error: --dry-run must be basic or command")


@needs_datalad
def test_dry_run_command_same_as_datalad(ds_with_data):
    ds = ds_with_data
    args = ["-i", "data/*.txt", "-o", "o.txt", "cat {inputs} > {outputs}"]
    mine = rr("run", "--dry-run=command", *args, cwd=ds).stdout
    theirs = subprocess.run(["datalad", "run", "--dry-run=command", *args], cwd=ds,
                            check=True, capture_output=True, text=True).stdout
    assert mine == theirs
