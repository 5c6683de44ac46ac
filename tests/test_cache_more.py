"""Loose ends of the run-cache: --dry-run says what the cache would do, array jobs say why
they missed with -v, rr status --stale names outputs it cannot judge, a replay records the
environment of its own run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import git, rr
from .test_cache import run, runs


@pytest.mark.slow
def test_dry_run_says_whether_the_cache_would_restore(counted):
    ds, marker, cmd = counted
    proc = run(ds, cmd, "--dry-run")
    assert "run-cache:\n  would execute" in proc.stdout
    proc = run(ds, cmd, "--dry-run", "-v")
    assert "would execute: no earlier run of this command" in proc.stdout
    run(ds, cmd)
    first = git("rev-parse", "HEAD", cwd=ds).strip()
    (ds / "out.txt").unlink()
    git("commit", "-qam", "drop the output", cwd=ds)
    proc = run(ds, cmd, "--dry-run")
    assert f"would be restored from cache: {first[:7]}" in proc.stdout
    got = json.loads(run(ds, cmd, "--dry-run", "--json").stdout.splitlines()[-1])
    assert got["cache"] == {"cached_from": first, "reasons": []}
    assert runs(marker) == 1  # a dry run executes nothing
    # a changed input: a miss, and -v says which input
    (ds / "in.txt").unlink()
    (ds / "in.txt").write_text("two\n")
    rr("save", "-m", "new input", cwd=ds)
    proc = run(ds, cmd, "--dry-run", "-v")
    assert "would execute: since" in proc.stdout and "input in.txt changed" in proc.stdout
    assert "would execute (-v says why" in run(ds, cmd, "--dry-run").stdout
    assert "would execute: --no-cache" in run(ds, cmd, "--dry-run", "--no-cache", "-v").stdout
    assert runs(marker) == 1


@pytest.mark.slow
def test_array_jobs_say_why_the_cache_missed_with_minus_v(ds, tmp_path):
    marker = tmp_path / "marker"
    (ds / "raw").mkdir()
    for s in ("01", "02"):
        (ds / "raw" / f"{s}.txt").write_text(f"subject {s}\n")
    table = tmp_path / "rows.csv"
    table.write_text("s\n01\n02\n")
    rr("save", "-m", "raw", cwd=ds)
    cmd = f"mkdir -p out; cat {{inputs}} > {{outputs}}; echo {{s}} >> {marker}"
    args = ("--array", str(table), "-i", "raw/{s}.txt", "-o", "out/{s}.txt", cmd)
    proc = rr("run", "-v", *args, cwd=ds)
    assert "rr: note: job 0 (s=01): cache miss: no earlier run of this command" in proc.stderr
    assert "job 1 (s=02): cache miss" in proc.stderr
    (ds / "raw" / "02.txt").unlink()
    (ds / "raw" / "02.txt").write_text("subject 02, again\n")
    rr("save", "-m", "raw 02 changed", cwd=ds)
    quiet = rr("run", *args, cwd=ds)
    assert "cache miss" not in quiet.stderr and "restored from cache" not in quiet.stderr
    assert marker.read_text().split() == ["01", "02", "02"]
    (ds / "raw" / "02.txt").unlink()
    (ds / "raw" / "02.txt").write_text("subject 02, once more\n")
    rr("save", "-m", "raw 02 changed again", cwd=ds)
    proc = rr("run", "-v", *args, cwd=ds)
    assert "job 0 (s=01): restored from cache" in proc.stderr
    assert "job 1 (s=02): cache miss: since" in proc.stderr
    assert "input raw/02.txt changed" in proc.stderr
    assert marker.read_text().split() == ["01", "02", "02", "02"]
    got = [json.loads(line) for line in rr("run", "--no-cache", "--json", *args, cwd=ds)
           .stdout.splitlines()]
    assert all("cache" not in r for r in got)  # --no-cache: the cache says nothing


@pytest.mark.slow
def test_stale_names_an_output_it_cannot_judge(ds):
    (ds / "in.txt").write_text("one\n")
    rr("save", "-m", "input", cwd=ds)
    rr("run", "-o", "gen.txt", "echo hi > gen.txt", cwd=ds)
    gen = git("rev-parse", "HEAD", cwd=ds).strip()
    rr("run", "-i", "in.txt", "-o", "n.txt", "wc -l in.txt > n.txt", cwd=ds)
    # not named: left out as before; named: said
    assert rr("status", "--stale", cwd=ds).stdout == "no stale outputs\n"
    lines = rr("status", "--stale", "gen.txt", "n.txt", cwd=ds).stdout.splitlines()
    assert lines == [f"gen.txt: cannot tell: its run {gen[:7]} is not cacheable: it declares "
                     "no inputs (declare them with -i, or the code it reads with "
                     "rr.run.cache-code)"]
    got = json.loads(rr("status", "--stale", "--json", "gen.txt", cwd=ds).stdout)
    assert got["state"] == "unknown" and got["commit"] == gen and "no inputs" in got["why"]
    # a path named through its directory, from a subdirectory
    (ds / "sub").mkdir()
    rr("run", "-o", "sub/x.txt", "echo x > sub/x.txt", cwd=ds)
    out = rr("status", "--stale", ".", cwd=ds / "sub").stdout
    assert out.startswith("sub/x.txt: cannot tell: its run ")


def rr_field(ds: Path, rev: str = "HEAD") -> dict:
    from recorder import record as records

    parsed = records.parse_message(git("log", "-1", "--format=%B", rev, cwd=ds))
    assert parsed is not None and parsed.record is not None
    return parsed.record.get("rr") or {}


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_replay_records_the_variables_and_machine_of_its_own_run(ds, jobs):
    rr("run", "--env-record", "SEED", "-o", "a.txt", "echo $SEED > a.txt", cwd=ds,
       env={"SEED": "1"})
    rr("run", "--env-record", "SEED", "-o", "b.txt", "echo $SEED > b.txt", cwd=ds,
       env={"SEED": "1"})
    # the records say they ran elsewhere (another OS, a GPU): a replay keeps none of that
    message = git("log", "-1", "--format=%B", cwd=ds)
    forged = message.replace('"arch": ', '"gpu": [{"name": "X", "driver": "1"}], "arch": ')
    forged = forged.replace('"os": "', '"os": "Plan9 ')
    assert forged != message
    git("commit", "-q", "--amend", "-m", forged, cwd=ds)
    assert rr_field(ds)["env"]["os"].startswith("Plan9")
    git("config", "rr.run.env-record", "EXTRA", cwd=ds)
    rr("rerun", "-J", jobs, "--since=HEAD~2", cwd=ds, env={"SEED": "2", "EXTRA": "x"})
    for rev in ("HEAD", "HEAD~1"):
        info = rr_field(ds, rev)
        assert info["env"]["vars"] == {"SEED": "2", "EXTRA": "x"}
        assert not info["env"]["os"].startswith("Plan9") and "gpu" not in info["env"]
        assert "resources" in info
    assert (ds / "a.txt").read_text() == "2\n" and (ds / "b.txt").read_text() == "2\n"
