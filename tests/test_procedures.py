"""Procedures: shipped cfg_* side by side with DataLad, discovery order, failures."""

from __future__ import annotations

import os
import subprocess


from recorder import record as records
from tests.conftest import commit_count, git, last_message, needs_datalad, rr


def tree_files(path):
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for f in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, f), path))
    return sorted(out)


@needs_datalad
def test_yoda_text2git_like_datalad(tmp_path):
    rr("create", "-c", "yoda", "-c", "text2git", str(tmp_path / "rr"))
    subprocess.run(["datalad", "create", "-c", "yoda", "-c", "text2git", str(tmp_path / "dl")],
                   check=True, capture_output=True)
    assert tree_files(tmp_path / "rr") == tree_files(tmp_path / "dl")
    for name in (".gitattributes", "code/.gitattributes", ".datalad/.gitattributes"):
        assert (tmp_path / "rr" / name).read_text() == (tmp_path / "dl" / name).read_text()
    subjects = lambda p: git("log", "--format=%s", cwd=p).splitlines()  # noqa: E731
    assert subjects(tmp_path / "rr") == subjects(tmp_path / "dl")
    # same effect: text into git, binary into the annex, code/ always in git
    for ds in (tmp_path / "rr", tmp_path / "dl"):
        (ds / "notes.txt").write_text("text\n")
        (ds / "blob.bin").write_bytes(bytes(range(256)) * 8)
        (ds / "code" / "tool.bin").write_bytes(bytes(range(256)))
    rr("save", "-m", "files", cwd=tmp_path / "rr")
    subprocess.run(["datalad", "save", "-m", "files"], cwd=tmp_path / "dl", check=True,
                   capture_output=True)
    for ds in (tmp_path / "rr", tmp_path / "dl"):
        assert not (ds / "notes.txt").is_symlink()
        assert (ds / "blob.bin").is_symlink()
        assert not (ds / "code" / "tool.bin").is_symlink()


def test_each_procedure_is_its_own_commit(tmp_path):
    rr("create", "-c", "yoda", "-c", "text2git", str(tmp_path / "x"))
    assert git("log", "--format=%s", cwd=tmp_path / "x").splitlines() == [
        "Instruct annex to add text files to Git", "Apply YODA dataset setup",
        "[DATALAD] new dataset"]
    assert git("status", "--porcelain", cwd=tmp_path / "x") == ""


def test_noannex(tmp_path):
    rr("create", "-c", "noannex", str(tmp_path / "plain"))
    ds = tmp_path / "plain"
    assert (ds / ".noannex").exists()
    assert subprocess.run(["git", "config", "annex.version"], cwd=ds).returncode != 0
    (ds / "big.bin").write_bytes(os.urandom(2048))
    rr("save", "-m", "in git", cwd=ds)
    assert not (ds / "big.bin").is_symlink()


def test_unknown_procedure_lists_available(ds, tmp_path):
    proc = rr("run-procedure", "cfg_nope", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "unknown procedure: cfg_nope" in proc.stderr
    assert "cfg_yoda" in proc.stderr
    proc = rr("create", "-c", "nope", str(tmp_path / "never"), check=False)
    assert proc.returncode == 1
    assert not (tmp_path / "never").exists()  # checked before anything is created


def test_dataset_procedure_overrides_shipped_and_gets_args(ds):
    pdir = ds / ".datalad" / "procedures"
    pdir.mkdir()
    (pdir / "cfg_yoda.sh").write_text('echo "local $2" > "$1/local.txt"\n')
    rr("save", "-m", "add procedure", cwd=ds)
    listing = rr("run-procedure", "--discover", cwd=ds).stdout
    assert "cfg_yoda (dataset:" in listing
    rr("run-procedure", "cfg_yoda", "arg1", cwd=ds)
    assert (ds / "local.txt").read_text() == "local arg1\n"
    assert git("status", "--porcelain", cwd=ds) == ""  # rr saved what it left


def test_run_procedure_is_recorded_and_replayable(ds):
    rr("run-procedure", "cfg_text2git", cwd=ds)
    parsed = records.parse_message(last_message(ds))
    assert parsed.message == "Apply procedure cfg_text2git"
    assert parsed.record["cmd"] == "rr run-procedure cfg_text2git"
    assert "mimeencoding=binary" in (ds / ".gitattributes").read_text()
    # replay it on a branch from before the procedure ran
    rr("rerun", "--onto=", "--branch", "again", cwd=ds)
    assert "mimeencoding=binary" in (ds / ".gitattributes").read_text()
    assert git("status", "--porcelain", cwd=ds) == ""


def test_procedure_precedence_user_over_system_over_dataset_over_shipped(ds, tmp_path):
    """DataLad's order (run-procedure docs): user > system > dataset > extensions/shipped.
    A cloned dataset must not override the user's own procedures."""
    user = tmp_path / "user-procs"
    system = tmp_path / "system-procs"
    dataset = ds / ".datalad" / "procedures"
    for d, text in ((user, "user"), (system, "system"), (dataset, "dataset")):
        d.mkdir()
        (d / "cfg_text2git.sh").write_text(f'echo {text} > "$1/who.txt"\n')
        (d / f"only_{text}.sh").write_text("true\n")
    (system / "cfg_both.sh").write_text("true\n")
    (dataset / "cfg_both.sh").write_text("true\n")
    (dataset / "cfg_yoda.sh").write_text("true\n")
    rr("save", "-m", "dataset procedures", cwd=ds)
    git("config", "datalad.locations.user-procedures", str(user), cwd=ds)
    git("config", "datalad.locations.system-procedures", str(system), cwd=ds)
    listing = rr("run-procedure", "--discover", cwd=ds).stdout.splitlines()
    winners = [line for line in listing if not line.startswith("[overridden")]
    sources = {line.split()[0]: line.split()[1].strip("(:") for line in winners}
    assert sources["cfg_text2git"] == "user"
    assert sources["only_system"] == "system" and sources["only_user"] == "user"
    assert sources["only_dataset"] == "dataset"
    assert sources["cfg_both"] == "system"
    assert sources["cfg_yoda"] == "dataset"  # a dataset still overrides what rr ships
    overridden = [line for line in listing if line.startswith("[overridden")]
    assert f"[overridden by user] cfg_text2git (dataset: {dataset}/cfg_text2git.sh)" in overridden
    assert f"[overridden by user] cfg_text2git (system: {system}/cfg_text2git.sh)" in overridden
    assert any(line.startswith("[overridden by dataset] cfg_yoda (shipped:") for line in overridden)
    rr("run-procedure", "cfg_text2git", cwd=ds)
    assert (ds / "who.txt").read_text() == "user\n"
    import json

    records_ = [json.loads(line) for line in
                rr("run-procedure", "--discover", "--json", cwd=ds).stdout.splitlines()]
    states = {(r["name"], r["source"]): r["state"] for r in records_}
    assert states[("cfg_text2git", "user")] == "executable"
    assert states[("cfg_text2git", "dataset")] == "overridden"


def test_call_format_from_config(ds):
    pdir = ds / ".datalad" / "procedures"
    pdir.mkdir()
    (pdir / "hello.sh").write_text('echo "$@" > "$RR_DATASET/hello.txt"\n')
    git("config", "-f", ".datalad/config", "datalad.procedures.hello.call-format",
        "sh {script} fmt {args}", cwd=ds)
    rr("save", "-m", "proc", cwd=ds)
    rr("run-procedure", "hello", "x", cwd=ds)
    assert (ds / "hello.txt").read_text() == "fmt x\n"


def test_failing_procedure_leaves_dataset_as_before(ds):
    pdir = ds / ".datalad" / "procedures"
    pdir.mkdir()
    (pdir / "breaks.sh").write_text('echo half > "$1/half.txt"; git -C "$1" add half.txt; '
                                    'git -C "$1" commit -qm half; echo more > "$1/m.txt"; '
                                    'exit 4\n')
    rr("save", "-m", "proc", cwd=ds)
    before = commit_count(ds)
    proc = rr("run-procedure", "breaks", cwd=ds, check=False)
    assert proc.returncode == 1
    assert "failed with exit code 4" in proc.stderr
    assert commit_count(ds) == before
    assert not (ds / "half.txt").exists() and not (ds / "m.txt").exists()
    assert git("status", "--porcelain", cwd=ds) == ""
