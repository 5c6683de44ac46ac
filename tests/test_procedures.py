"""Procedures: shipped cfg_* side by side with DataLad, discovery order, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys


import pytest

from recorder import record as records
from tests.conftest import commit_count, git, last_message, needs_datalad, rr


def tree_files(path):
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for f in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, f), path))
    return sorted(out)


@pytest.mark.slow
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
    user_rec = next(r for r in records_ if r["path"] == f"{user}/cfg_text2git.sh")
    assert user_rec["procedure_name"] == "cfg_text2git"  # DataLad's field names too
    assert user_rec["procedure_type"] == "bash_script"
    assert user_rec["procedure_callfmt"] == "bash {script} {ds} {args}"


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


def test_extra_procedures_several_locations_after_system_before_dataset(ds, tmp_path):
    """datalad.locations.extra-procedures: every value is searched, after the user's and the
    system's directories and before the dataset's; a dataset cannot set it for itself."""
    one, two = tmp_path / "extra1", tmp_path / "extra2"
    for d in (one, two):
        d.mkdir()
    (one / "from_one.py").write_text('"""first extra"""\n')
    (two / "from_two.sh").write_text("true\n")
    (two / "from_one.sh").write_text("true\n")  # shadowed by the first location
    dataset = ds / ".datalad" / "procedures"
    dataset.mkdir()
    (dataset / "from_two.sh").write_text("true\n")
    rr("save", "-m", "procs", cwd=ds)
    git("config", "-f", ".datalad/config", "datalad.locations.extra-procedures",
        str(tmp_path / "committed"), cwd=ds)
    (tmp_path / "committed").mkdir()
    (tmp_path / "committed" / "sneaky.sh").write_text("true\n")
    git("config", "--add", "datalad.locations.extra-procedures", str(one), cwd=ds)
    git("config", "--add", "datalad.locations.extra-procedures", str(two), cwd=ds)
    listing = rr("run-procedure", "--discover", cwd=ds).stdout.splitlines()
    assert f"from_one (extra: {one}/from_one.py)  first extra" in listing
    assert f"from_two (extra: {two}/from_two.sh)" in listing
    assert f"[overridden by extra] from_one (extra: {two}/from_one.sh)" in listing
    assert f"[overridden by extra] from_two (dataset: {dataset}/from_two.sh)" in listing
    assert not any("sneaky" in line for line in listing)
    # the environment is the user's own: DATALAD_LOCATIONS_EXTRA__PROCEDURES applies
    listing = rr("run-procedure", "--discover", cwd=ds,
                 env={"DATALAD_LOCATIONS_EXTRA__PROCEDURES": str(tmp_path / "committed")}
                 ).stdout
    assert "sneaky (extra:" in listing and "from_one (extra:" not in listing


@pytest.mark.slow
def test_installed_subdataset_procedures_follow_the_dataset(ds, tmp_path):
    """DataLad: a dataset's procedures, then those of its installed subdatasets (under their
    own name), the superdataset winning a conflict; the subdataset's config (and the
    environment) says how they are called; a non-executable file without suffix is a
    procedure once a call format names it."""
    rr("create", "-d", ".", "sub", cwd=ds)
    sub = ds / "sub"
    code = sub / "code"
    code.mkdir()
    (code / "subproc.sh").write_text('echo "sub $2" > "$1/fromsub.txt"\n')
    (code / "both.sh").write_text("exit 3\n")
    (code / "plain").write_text('import sys; open(sys.argv[1] + "/plain.txt", "w").write('
                                'str(len(sys.argv)))\n')
    git("config", "-f", ".datalad/config", "datalad.locations.dataset-procedures", "code",
        cwd=sub)
    rr("save", "-m", "sub procedures", cwd=sub)
    own = ds / ".datalad" / "procedures"
    own.mkdir(parents=True)
    (own / "both.sh").write_text("true\n")
    rr("save", "-m", "procedures", cwd=ds)
    listing = rr("run-procedure", "--discover", cwd=ds).stdout.splitlines()
    assert f"subproc (subdataset: {code}/subproc.sh)" in listing
    assert f"[overridden by dataset] both (subdataset: {code}/both.sh)" in listing
    assert not any(line.startswith("plain ") for line in listing)  # not executable
    rr("run-procedure", "subproc", "x", cwd=ds)
    assert (ds / "fromsub.txt").read_text() == "sub x\n"
    rr("run-procedure", "both", cwd=ds)  # the superdataset's own one: exits 0
    env = {"DATALAD_PROCEDURES_PLAIN_CALL__FORMAT": f"{sys.executable} {{script}} {{ds}}"}
    rr("run-procedure", "plain", cwd=ds, env=env)
    assert (ds / "plain.txt").read_text() == "2"
    # a subdataset's procedure directory stays inside the subdataset
    git("config", "-f", ".datalad/config", "datalad.locations.dataset-procedures", "..",
        cwd=sub)
    proc = rr("run-procedure", "--discover", cwd=ds, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "rr: error: datalad.locations.dataset-procedures is not a path inside the " \
        "dataset" in proc.stderr


def test_call_format_placeholders_escapes_and_help(ds):
    """DataLad's test_configs: {script} {ds} {args} filled in, {{name}} left for run's
    substitutions, a local call format beats the committed one, --help-proc."""
    pdir = ds / ".datalad" / "procedures"
    pdir.mkdir()
    (pdir / "echoer.sh").write_text('shift; rm -f "$RR_DATASET/echo.txt"; '
                                     'echo "$@" > "$RR_DATASET/echo.txt"\n')
    git("config", "-f", ".datalad/config", "datalad.procedures.echoer.call-format",
        "bash {script} {ds} {{mysub}} {args}", cwd=ds)
    git("config", "-f", ".datalad/config", "datalad.run.substitutions.mysub", "from-config",
        cwd=ds)
    rr("save", "-m", "proc", cwd=ds)
    proc = rr("run-procedure", "--help-proc", "echoer", cwd=ds, check=False)
    assert proc.returncode == 1 and "no help available for procedure echoer" in proc.stderr
    rr("run-procedure", "echoer", "a b", cwd=ds)
    assert (ds / "echo.txt").read_text() == "from-config a b\n"
    git("config", "datalad.procedures.echoer.call-format", "bash {script} {ds} local {args}",
        cwd=ds)
    rr("run-procedure", "echoer", "z", cwd=ds)
    assert (ds / "echo.txt").read_text() == "local z\n"
    git("config", "-f", ".datalad/config", "datalad.procedures.echoer.help",
        "This is a help message", cwd=ds)
    out = rr("run-procedure", "--help-proc", "echoer", cwd=ds).stdout
    assert out == f"echoer ({pdir}/echoer.sh)\nThis is a help message\n"
    git("config", "datalad.procedures.echoer.call-format", "bash {script} {nope}", cwd=ds)
    head = git("rev-parse", "HEAD", cwd=ds)
    proc = rr("run-procedure", "echoer", cwd=ds, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "rr: error: the call format of procedure echoer has an unknown placeholder: {nope}" \
        in proc.stderr
    assert git("rev-parse", "HEAD", cwd=ds) == head


def test_underscore_name_call_format_from_overrides_json(ds):
    """DataLad's test_name_with_underscore: DATALAD_PROCEDURES_PRINT_ARGS_CALL__FORMAT names
    another key; DATALAD_CONFIG_OVERRIDES_JSON reaches it."""
    pdir = ds / ".datalad" / "procedures"
    pdir.mkdir()
    (pdir / "print_args").write_text('import sys; open("args.txt", "w").write(str(sys.argv[1:]))\n')
    rr("save", "-m", "proc", cwd=ds)
    fmt = f"{sys.executable} {{script}}"
    proc = rr("run-procedure", "print_args", cwd=ds, check=False,
              env={"DATALAD_PROCEDURES_PRINT_ARGS_CALL__FORMAT": fmt})
    assert proc.returncode == 1 and "unknown procedure: print_args" in proc.stderr
    rr("run-procedure", "print_args", cwd=ds,
       env={"DATALAD_CONFIG_OVERRIDES_JSON": json.dumps(
           {"datalad.procedures.print_args.call-format": fmt})})
    assert (ds / "args.txt").read_text() == "[]"
