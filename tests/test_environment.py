"""The environment and resources in the record: declared variables only (rr run
--env-record, rr.run.env-record), the machine's facts (rr.env), the command's wall/CPU time
and peak memory (rr.resources), kept again by a rerun; DataLad still replays such records."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from recorder import record as records
from recorder.errors import RecordError

from .conftest import git, last_message, needs_datalad, one_error_line, rr


def rr_field(ds: Path, rev: str = "HEAD") -> dict:
    parsed = records.parse_message(last_message(ds, rev))
    assert parsed is not None and parsed.record is not None
    return parsed.record.get("rr") or {}


def test_only_declared_variables_are_recorded(ds):
    git("config", "rr.run.env-record", "OMP_NUM_THREADS, UNSET_ONE", cwd=ds)
    rr("run", "--env-record", "SEED", "-m", "t", "echo $SECRET_TOKEN | wc -c > n.txt", cwd=ds,
       env={"OMP_NUM_THREADS": "8", "SEED": "42", "SECRET_TOKEN": "hunter2-s3cr3t"})
    assert rr_field(ds)["env"]["vars"] == {"OMP_NUM_THREADS": "8", "SEED": "42",
                                           "UNSET_ONE": None}
    # no other variable's value is anywhere in the commit (message, tree, notes)
    everything = git("log", "-p", "--all", "--format=%B", cwd=ds) + \
        git("notes", "--ref=rr", "show", "HEAD", cwd=ds)
    assert "hunter2-s3cr3t" not in everything


def test_bad_variable_name_is_one_line(ds):
    proc = rr("run", "--env-record", "1NO", "true", cwd=ds, check=False)
    assert proc.returncode == 2
    assert one_error_line(proc.stderr) == \
        "rr: error: --env-record: not an environment variable name: '1NO'"


def test_machine_facts_and_resources(ds):
    rr("run", "-m", "t", "echo hi > a.txt", cwd=ds)
    info = rr_field(ds)
    env = info["env"]
    assert env["os"] == f"{os.uname().sysname} {os.uname().release}"
    assert env["arch"] == os.uname().machine
    assert env["python"].count(".") == 2 and env["rr"]
    assert env["git_annex"] == git("annex", "version", "--raw", cwd=ds).strip()
    assert "vars" not in env and "gpu" not in env  # nothing declared; no nvidia-smi here
    res = info["resources"]
    assert set(res) == {"wall_seconds", "cpu_seconds", "max_rss_bytes"}
    assert 0 <= res["cpu_seconds"] <= res["wall_seconds"] + 1 and res["max_rss_bytes"] > 0


def test_git_annex_version_is_cached_under_git(ds):
    rr("run", "-m", "one", "echo 1 > a.txt", cwd=ds)
    cache = ds / ".git" / "rr" / "annex-version"
    kept = json.loads(cache.read_text())
    assert kept["version"] == rr_field(ds)["env"]["git_annex"]
    # the next run reads it (no git-annex process): a planted value shows up
    cache.write_text(json.dumps({**kept, "version": "cached-0"}))
    rr("run", "-m", "two", "echo 2 > b.txt", cwd=ds)
    assert rr_field(ds)["env"]["git_annex"] == "cached-0"
    # another binary (its path, size or mtime) asks git-annex again
    cache.write_text(json.dumps({"binary": ["/elsewhere", 1, 1], "version": "cached-0"}))
    rr("run", "-m", "three", "echo 3 > c.txt", cwd=ds)
    assert rr_field(ds)["env"]["git_annex"] == kept["version"]


def test_gpu_from_nvidia_smi_when_on_path(ds, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "nvidia-smi"  # no GPU here: a stand-in that answers the query
    fake.write_text("#!/bin/sh\necho \"$@\" > %s\n"
                    "printf 'NVIDIA A100-SXM4-40GB, 535.104.05\\nTesla T4, 535.104.05\\n'\n"
                    % (tmp_path / "args"))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    rr("run", "-m", "t", "echo 1 > a.txt", cwd=ds,
       env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert rr_field(ds)["env"]["gpu"] == [
        {"name": "NVIDIA A100-SXM4-40GB", "driver": "535.104.05"},
        {"name": "Tesla T4", "driver": "535.104.05"}]
    assert (tmp_path / "args").read_text().split() == [
        "--query-gpu=name,driver_version", "--format=csv,noheader"]


ALLOC = "python3 -c \"b = b'x' * (80 * 2**20); open('m.txt', 'w').write(str(len(b)))\""
BURN = ("python3 -c \"import time\nt = time.process_time()\n"
        "while time.process_time() - t < 0.6: pass\nopen('c.txt', 'w').write('1')\"")


@pytest.mark.slow
def test_peak_memory_and_cpu_time_of_the_command_tree(ds):
    rr("run", "-m", "small", "echo 1 > s.txt", cwd=ds)
    small = rr_field(ds)["resources"]
    # the allocating and the burning process are the shell's children: the whole tree counts
    rr("run", "-m", "alloc", f"sleep 0 && {ALLOC} && true", cwd=ds)
    big = rr_field(ds)["resources"]
    assert small["max_rss_bytes"] < 50 * 2**20 <= big["max_rss_bytes"]
    rr("run", "-m", "burn", f"sleep 0 && {BURN} && true", cwd=ds)
    burn = rr_field(ds)["resources"]
    assert burn["cpu_seconds"] >= 0.5 > small["cpu_seconds"]
    assert burn["wall_seconds"] >= burn["cpu_seconds"] - 0.05


def test_capture_can_be_switched_off(ds):
    git("config", "rr.run.record-environment", "false", cwd=ds)
    rr("run", "--env-record", "SEED", "-m", "t", "echo 1 > a.txt", cwd=ds, env={"SEED": "7"})
    assert rr_field(ds) == {"env": {"vars": {"SEED": "7"}}}  # declared variables stay


def test_dry_run_measures_nothing(ds):
    out = rr("run", "--dry-run", "--json", "--env-record", "SEED", "echo 1 > a.txt", cwd=ds,
             env={"SEED": "3"}).stdout
    assert json.loads(out)["record"]["rr"] == {"env": {"vars": {"SEED": "3"}}}


@pytest.mark.slow
def test_rerun_records_the_same_names_again(ds):
    rr("run", "--env-record", "SEED", "-m", "t", "echo $SEED > a.txt", cwd=ds,
       env={"SEED": "1"})
    git("config", "rr.run.env-record", "EXTRA", cwd=ds)
    rr("rerun", cwd=ds, env={"SEED": "2", "EXTRA": "x"})
    again = rr_field(ds)
    assert (ds / "a.txt").read_text() == "2\n"
    assert again["env"]["vars"] == {"SEED": "2", "EXTRA": "x"}
    assert set(again) == {"env", "resources"}


@pytest.mark.slow
def test_array_jobs_record_declared_variables(ds):
    rr("run", "--param", "k=1,2", "--env-record", "SEED", "-m", "k {k}",
       "-o", "out{k}.txt", "echo {k} > out{k}.txt", cwd=ds, env={"SEED": "5"})
    for rev in ("HEAD", "HEAD~1"):
        info = rr_field(ds, rev)
        assert info["env"]["vars"] == {"SEED": "5"} and "resources" in info


@pytest.mark.parametrize("rr_obj, message", [
    ({"env": []}, "field 'rr.env' must be an object, not a list ([])"),
    ({"env": {"vars": {"A": 1}}}, "field 'rr.env.vars.A' must be a string or null, not a "
                                  "number (1)"),
    ({"env": {"os": 3}}, "field 'rr.env.os' must be a string, not a number (3)"),
    ({"env": {"gpu": [{"name": "x"}]}}, "field 'rr.env.gpu' must be a list of {name, driver} "
                                        "objects, not an object ({\"name\": \"x\"})"),
    ({"resources": {"cpu_seconds": "1"}}, "field 'rr.resources.cpu_seconds' must be a "
                                          "number, not a string ('1')"),
    ({"log": "../x.log"}, "field 'rr.log' is outside the dataset: '../x.log'"),
    ({"log": 5}, "field 'rr.log' must be a string, not a number (5)"),
])
def test_wrong_types_are_one_line(rr_obj, message):
    with pytest.raises(RecordError, match=None) as exc:
        records.validate({"cmd": "true", "rr": rr_obj})
    assert exc.value.message == message


def test_valid_measured_fields_pass():
    rec = {"cmd": "true", "rr": {"env": {"os": "Linux 6", "arch": "x86_64", "vars": {"A": None},
                                         "gpu": [{"name": "T4", "driver": "1"}]},
                                 "resources": {"wall_seconds": 1.5, "cpu_seconds": 0,
                                               "max_rss_bytes": 10},
                                 "log": ".rr/logs/x.log"}}
    assert records.validate(rec) is rec


@pytest.mark.slow
@needs_datalad
def test_datalad_reruns_a_record_with_environment(ds):
    import subprocess

    rr("run", "--env-record", "SEED", "-m", "t", "echo $SEED > a.txt", cwd=ds,
       env={"SEED": "1"})
    subprocess.run(["datalad", "rerun"], cwd=ds, check=True, capture_output=True,
                   env={**os.environ, "SEED": "9"})
    assert (ds / "a.txt").read_text() == "9\n"
    assert "[DATALAD RUNCMD] t" in last_message(ds)
