"""The protection of annexed content without false alarms: a file that is both input and
output is the output's; --assume-ready outputs leaves outputs as they are; commands that
replace or unlock their inputs themselves are recorded (issue 20, item 6)."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import git, rr


def commits(ds) -> int:
    return int(git("rev-list", "--count", "HEAD", cwd=ds))


def fsck_ok(ds) -> bool:
    return subprocess.run(["git", "annex", "fsck", "--quiet"], cwd=ds,
                          capture_output=True).returncode == 0


def recorded(ds, before: int) -> None:
    assert commits(ds) == before + 1
    assert git("status", "--porcelain", cwd=ds) == ""
    assert fsck_ok(ds)
    assert not (ds / ".git" / "annex" / "bad").exists() or \
        not list((ds / ".git" / "annex" / "bad").iterdir())


@pytest.fixture
def placeholder_ds(ds):
    for name, text in (("a.in", "a"), ("b.in", "b"), ("c.out", "old")):
        (ds / name).write_text(text + "\n")
    rr("save", "-m", "data", cwd=ds)
    return ds


def test_datalad_placeholder_test_input_and_output_is_the_outputs(placeholder_ds):
    """DataLad's test_placeholders: -i . covers the output c.out, which is annexed."""
    ds = placeholder_ds
    before = commits(ds)
    proc = rr("run", "-i", ".", "-i", "*.in", "-o", "c.out", "echo {inputs}>{outputs}",
              cwd=ds, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (ds / "c.out").read_text() == ". a.in b.in\n"
    recorded(ds, before)


def test_an_output_matched_by_an_input_glob(placeholder_ds):
    ds = placeholder_ds
    before = commits(ds)
    rr("run", "-i", "*", "-o", "c.out", "cat a.in b.in > c.out", cwd=ds)
    assert (ds / "c.out").read_text() == "a\nb\n"
    recorded(ds, before)


def test_an_output_directory_holding_the_inputs(ds_with_data):
    ds = ds_with_data
    before = commits(ds)
    rr("run", "-i", "data/a.txt", "-o", "data",
       "cp data/a.txt data/c.txt && echo ALPHA > data/a.txt", cwd=ds)
    assert (ds / "data" / "a.txt").read_text() == "ALPHA\n"
    assert (ds / "data" / "c.txt").read_text() == "alpha\n"
    recorded(ds, before)


def test_the_same_file_as_input_and_output(ds_with_data):
    ds = ds_with_data
    before = commits(ds)
    rr("run", "-i", "data/a.txt", "-o", "data/a.txt", "tr a-z A-Z < {inputs} > tmp && "
       "mv tmp {outputs}", cwd=ds)
    assert (ds / "data" / "a.txt").read_text() == "ALPHA\n"
    recorded(ds, before)


def test_assume_ready_outputs_leaves_the_outputs_as_they_are(ds_with_data):
    """DataLad's test_run_assume_ready: no unlock; a command that removes the output first
    writes it anew and is recorded."""
    ds = ds_with_data
    before = commits(ds)
    rr("run", "--assume-ready", "outputs", "-o", "data/a.txt",
       "test -L data/a.txt && test ! -w data/a.txt && rm data/a.txt && echo new > data/a.txt",
       cwd=ds)
    assert (ds / "data" / "a.txt").read_text() == "new\n"
    recorded(ds, before)
    before = commits(ds)
    rr("run", "--assume-ready", "both", "-i", "data/b.txt", "-o", "data/b.txt",
       "test -L data/b.txt && rm data/b.txt && echo new > data/b.txt", cwd=ds)
    recorded(ds, before)


def test_a_command_replacing_its_input_link_by_a_file_is_recorded(ds_with_data):
    ds = ds_with_data
    before = commits(ds)
    rr("run", "-i", "data/a.txt", "rm data/a.txt && echo replaced > data/a.txt", cwd=ds)
    assert (ds / "data" / "a.txt").read_text() == "replaced\n"
    recorded(ds, before)


def test_a_command_unlocking_its_input_itself_is_recorded(ds_with_data):
    ds = ds_with_data
    before = commits(ds)
    rr("run", "-i", ".", "git annex unlock data/a.txt >/dev/null && echo more >> data/a.txt",
       cwd=ds)
    assert (ds / "data" / "a.txt").read_text() == "alpha\nmore\n"
    recorded(ds, before)


def test_a_real_write_through_an_input_link_is_still_caught(ds_with_data):
    ds = ds_with_data
    before = commits(ds)
    proc = rr("run", "-i", ".", "-o", "out.txt",
              "chmod u+w $(readlink -f data/b.txt); echo BETA > data/b.txt; echo x > out.txt",
              cwd=ds, check=False)
    assert proc.returncode != 0
    assert "overwrote annexed content in place: data/b.txt" in proc.stderr
    assert commits(ds) == before
