"""The fast tier: rr's arguments, usage errors and error lines, in this process (CliRunner).

Every assertion is on the exact line the user sees and the exit code: 2 for usage, 1 for an
error, never a traceback.  Subprocess ``rr`` (tests/conftest.rr) stays for signals, locks,
concurrency and round trips."""

from __future__ import annotations

import json

import pytest

from recorder.cli import app
from recorder.cli.base import call
from recorder.errors import RecorderError, UsageError
from tests.conftest import one_error_line, rr, rr_in

# every command and subcommand, in the order rr --help lists them
COMMANDS = ["create", "save", "run", "containers-run", "rerun", "run-procedure",
            "containers-add", "containers-list", "containers-remove", "containers-exec",
            "clone", "get", "drop", "push", "graph", "lineage", "download-url", "log", "runs",
            "report", "status", "update", "diff", "diff-runs", "unlock", "subdatasets", "remove",
            "siblings", "metrics", "export"]
SUBCOMMANDS = [["siblings", "add"], ["siblings", "list"], ["metrics", "show"],
               ["metrics", "diff"], ["metrics", "plot"], ["metrics", "add"],
               ["export", "ro-crate"]]
# commands whose command line follows their options: an unknown option is rr's own error
AFTER_OPTIONS = {"run", "containers-run", "run-procedure", "containers-exec"}
LEAVES = [[c] for c in COMMANDS if c not in ("siblings", "metrics", "export")] + SUBCOMMANDS


def usage_error(result) -> str:
    """click's usage error: its last line, after 'Usage: ...' and 'Try ... for help.'"""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr.rstrip("\n").splitlines()[-1]


# --- the application -----------------------------------------------------------------------


def test_help_lists_every_command_in_order():
    result = rr_in("--help")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")]
    assert listed == COMMANDS


def test_version():
    result = rr_in("--version")
    assert result.exit_code == 0 and result.stdout.startswith("rr ")


def test_no_arguments_shows_help():
    result = rr_in()
    assert result.exit_code == 2
    assert "Usage: rr [OPTIONS] COMMAND [ARGS]..." in result.stdout + result.stderr


def test_extra_argument():
    assert usage_error(rr_in("clone", "a", "b", "c")) == \
        "Error: Got unexpected extra argument(s) (c)"


def test_unknown_command():
    assert usage_error(rr_in("nosuchcmd")) == "Error: No such command 'nosuchcmd'."


@pytest.mark.parametrize("words", LEAVES, ids=" ".join)
def test_every_command_has_help_with_an_example(words):
    result = rr_in(*words, "--help")
    assert result.exit_code == 0
    assert f"Usage: rr {' '.join(words)} [OPTIONS]" in result.stdout
    assert "Example:" in result.stdout


@pytest.mark.parametrize("words", LEAVES, ids=" ".join)
def test_unknown_option(words):
    result = rr_in(*words, "--zzz")
    if words[0] in AFTER_OPTIONS:
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            "rr: error: no such option: --zzz",
            "rr: hint: options go before the command; put '--' before a command that starts "
            f"with '-' (rr {words[0]} [OPTIONS] -- CMD)"]
    else:
        assert usage_error(result) == "Error: No such option: --zzz"


@pytest.mark.parametrize("words, missing", [
    (["remove"], "Missing argument 'paths'."),
    (["containers-add"], "Missing argument 'name'."),
    (["containers-remove"], "Missing argument 'name'."),
    (["containers-exec"], "Missing argument 'image'."),
    (["clone"], "Missing argument 'source'."),
    (["download-url"], "Missing argument 'urls'."),
    (["siblings", "add"], "Missing argument 'name'."),
    (["siblings", "add", "origin"], "Missing argument 'url'."),
    (["metrics", "plot", "-o", "x.png"], "Missing argument 'key'."),
    (["metrics", "add"], "Missing argument 'path'."),
    (["graph"], "Missing option '-o' / '--output'."),
    (["metrics", "plot", "accuracy"], "Missing option '-o' / '--output'."),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_missing_argument(words, missing):
    assert usage_error(rr_in(*words)) == f"Error: {missing}"


@pytest.mark.parametrize("words, option, value, choices", [
    (["update"], "--how", "bogus", "'fetch', 'merge', 'ff-only', 'reset'"),
    (["update"], "--how-subds", "bogus", "'fetch', 'merge', 'ff-only', 'reset'"),
    (["update"], "--follow", "bogus", "'sibling', 'parentds'"),
    (["run"], "--expand", "bogus", "'inputs', 'outputs', 'both'"),
    (["run"], "--assume-ready", "bogus", "'inputs', 'outputs', 'both'"),
    (["containers-run"], "--expand", "bogus", "'inputs', 'outputs', 'both'"),
    (["containers-run"], "--assume-ready", "bogus", "'inputs', 'outputs', 'both'"),
    (["rerun"], "--assume-ready", "bogus", "'inputs', 'outputs', 'both'"),
    (["push"], "--data", "bogus", "'auto', 'anything', 'nothing'"),
    (["remove"], "--reckless", "bogus", "'kill'"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_bad_choice(words, option, value, choices):
    extra = ["echo"] if words[0] in AFTER_OPTIONS else ["x"] if words == ["remove"] else []
    result = rr_in(*words, option, value, *extra)
    assert usage_error(result) == \
        f"Error: Invalid value for '{option}': '{value}' is not one of {choices}."


@pytest.mark.parametrize("option", ["-J", "--jobs"])
@pytest.mark.parametrize("words", [["get"], ["push"], ["rerun"], ["run", "--param", "a=1"]],
                         ids=" ".join)
def test_jobs_must_be_a_number(words, option):
    result = rr_in(*words, option, "many", *(["echo {a}"] if words[0] == "run" else []))
    assert usage_error(result) == \
        "Error: Invalid value for '-J' / '--jobs': 'many' is not a valid int."


def test_dry_run_mode():
    result = rr_in("run", "--dry-run=foo", "echo")
    assert result.exit_code == 2
    assert result.stderr == "rr: error: --dry-run must be basic or command, not 'foo'\n"


# --- errors from the library, through the one error printer ---------------------------------


NOT_A_DATASET = [
    ["status"], ["diff"], ["save"], ["unlock"], ["subdatasets"], ["remove", "x"],
    ["run", "echo", "hi"], ["containers-run", "echo"], ["rerun"], ["run-procedure", "cfg_yoda"],
    ["log"], ["graph", "-o", "x.svg"], ["metrics", "show"], ["metrics", "diff"],
    ["metrics", "add", "x.json"], ["metrics", "plot", "acc", "-o", "x.png"],
    ["get"], ["drop"], ["push"], ["update"], ["siblings", "list"], ["siblings", "add", "o", "x"],
    ["containers-list"], ["containers-add", "c", "--url", "dhub://x"],
    ["containers-remove", "c"], ["download-url", "file:///dev/null"],
    ["run", "--param", "a=1", "echo {a}"], ["runs"], ["report", "-o", "r.html"],
]


@pytest.mark.parametrize("words", NOT_A_DATASET, ids=" ".join)
def test_not_a_dataset(words, tmp_path):
    result = rr_in(*words, cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"rr: error: not inside a dataset: {tmp_path}",
        "rr: hint: create one with 'rr create PATH' or pass -d DATASET"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("words", [["status"], ["log"], ["rerun"]], ids=" ".join)
def test_dataset_option_names_the_dataset(words, tmp_path):
    result = rr_in(*words, "-d", str(tmp_path))
    assert one_error_line(result.stderr) == f"rr: error: not inside a dataset: {tmp_path}"
    assert result.exit_code == 1


@pytest.mark.parametrize("words, code, lines", [
    (["rerun", "nope"], 2, ["rr: error: unknown revision: nope"]),
    (["rerun", "HEAD~5..nope"], 2, ["rr: error: unknown revision: nope"]),
    (["log", "nope"], 2, ["rr: error: unknown revision: nope"]),
    (["log", "nope..HEAD"], 2, ["rr: error: unknown revision: nope"]),
    (["graph", "nope", "-o", "x.svg"], 2, ["rr: error: unknown revision: nope"]),
    (["metrics", "diff", "nope", "-f", "m.json"], 2, ["rr: error: unknown revision: nope"]),
    (["metrics", "show", "-r", "nope", "m.json"], 2, ["rr: error: unknown revision: nope"]),
    (["diff", "--from", "nope"], 1, ["rr: error: unknown revision: nope",
                                     "rr: hint: name a commit, branch or tag (see git log)"]),
    (["diff", "--to", "nope"], 1, ["rr: error: unknown revision: nope",
                                   "rr: hint: name a commit, branch or tag (see git log)"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and isinstance(v[0], str) and
    not v[0].startswith("rr:") else "")
def test_bad_revision(ds, words, code, lines):
    result = rr_in(*words, cwd=ds)
    assert (result.exit_code, result.stderr.splitlines()) == (code, lines)


@pytest.mark.parametrize("words, code, lines", [
    (["run"], 2, ["rr: error: no command given", "rr: hint: rr run [OPTIONS] COMMAND..."]),
    (["run", "--dry-run", "--explicit"], 2,
     ["rr: error: no command given", "rr: hint: rr run [OPTIONS] COMMAND..."]),
    (["run", "--continue", "a", "b"], 2,
     ["rr: error: --continue takes at most one array ID (no command)"]),
    (["run", "--param", "bad", "echo"], 2,
     ["rr: error: --param 'bad' is not NAME=VALUE[,VALUE...]",
      "rr: hint: e.g. --param subject=01,02,03"]),
    (["run", "--array", "nofile.csv", "echo"], 2,
     ["rr: error: cannot read the --array table nofile.csv: No such file or directory"]),
    (["run", "--continue"], 1, ["rr: error: there is no unfinished array job in this dataset"]),
    (["run", "--continue", "--param", "a=1"], 2,
     ["rr: error: --continue runs an array as it was started: it takes no --param, --array, "
      "-i, -o, -m or --dry-run"]),
    (["run", "--param", "a=1,1", "-o", "o{a}", "echo"], 2,
     ["rr: error: jobs 0 and 1 have the same parameters (a=1)", "rr: hint: every row must differ"]),
    (["rerun", "--since", "HEAD", "--onto", "HEAD", "x..y"], 2,
     ["rr: error: give either a range A..B or --since, not both"]),
    (["save", "-m", "a", "-F", "f"], 1,
     ["rr: error: give either a message or a message file, not both"]),
    (["run-procedure"], 2, ["rr: error: give a procedure name, or --discover"]),
    (["run-procedure", "--help-proc"], 2, ["rr: error: --help-proc needs a procedure name"]),
    (["run-procedure", "nosuch"], 1,
     ["rr: error: unknown procedure: nosuch",
      "rr: hint: available: cfg_noannex, cfg_text2git, cfg_yoda"]),
    (["rerun", "--continue"], 1, ["rr: error: no stopped replay to continue in this dataset"]),
    (["rerun", "--abort"], 1, ["rr: error: no stopped replay to abort in this dataset"]),
    (["rerun"], 1, ["rr: error: no run commits found in HEAD",
                    "rr: hint: give a range (A..B) or --since to replay more history"]),
    (["save", "-F", "nofile"], 1, ["rr: error: message file not found: nofile"]),
    (["remove", "nonexist"], 1, ["rr: error: path does not exist: nonexist"]),
    (["get", "nope"], 1, ["rr: error: path does not exist: nope"]),
    (["drop", "nope"], 1, ["rr: error: path does not exist: nope"]),
    (["subdatasets", "nope"], 1, ["rr: error: path does not exist: nope"]),
    (["status", "nonexist"], 1, ["rr: impossible: nonexist: path does not exist"]),
    (["unlock", "nonexist"], 1, ["rr: impossible: nonexist: path does not exist"]),
    (["push", "--to", "nosuch"], 1,
     ["rr: error: unknown sibling: nosuch", "rr: hint: add it with 'rr siblings add'"]),
    (["update", "-s", "nosuch"], 1,
     ["rr: error: unknown sibling: nosuch",
      "rr: hint: siblings here: none (add one with 'rr siblings add NAME URL')"]),
    (["containers-remove", "nosuch"], 1, ["rr: error: unknown container: nosuch"]),
    (["containers-run", "echo"], 1,
     ["rr: error: no containers are registered in this dataset",
      "rr: hint: add one with 'rr containers-add NAME --url dhub://IMAGE'"]),
    (["metrics", "show"], 1,
     ["rr: error: no metrics files: none registered and no run wrote a .json output",
      "rr: hint: register one with 'rr metrics add FILE'"]),
    (["clone", "/nonexistent/x"], 1, ["rr: error: clone source does not exist: /nonexistent/x"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and isinstance(v[0], str) and
    not v[0].startswith("rr:") else "")
def test_error_lines(ds, words, code, lines):
    head = (ds / ".git" / "HEAD").read_text()
    result = rr_in(*words, cwd=ds)
    assert (result.exit_code, result.stderr.splitlines()) == (code, lines)
    assert result.stdout == ""
    assert (ds / ".git" / "HEAD").read_text() == head


def test_create_where_a_dataset_is(ds):
    result = rr_in("create", ".", cwd=ds)
    assert (result.exit_code, result.stderr) == \
        (1, f"rr: error: there is already a dataset (git repository) at {ds}\n")
    result = rr_in("create", "-d", ".", "/elsewhere", cwd=ds)
    assert (result.exit_code, result.stderr.splitlines()) == \
        (1, [f"rr: error: /elsewhere is not underneath the dataset {ds}",
             "rr: hint: give a PATH inside the dataset named with -d"])
    assert not (ds / "elsewhere").exists()


def test_debug_shows_the_traceback(ds):
    with pytest.raises(UsageError, match="unknown revision: nope"):
        rr_in("--debug", "rerun", "nope", cwd=ds)
    # and the next call is not in debug mode
    assert rr_in("rerun", "nope", cwd=ds).exit_code == 2


def test_in_process_calls_leave_no_state(ds, tmp_path):
    import os

    cwd, env = os.getcwd(), dict(os.environ)
    rr_in("--debug", "status", cwd=ds)
    assert os.getcwd() == cwd and dict(os.environ) == env


# --- the error printer itself ---------------------------------------------------------------


def test_call_prints_error_and_hint_and_exits_with_its_code(capsys):
    def fail() -> None:
        raise RecorderError("it broke", hint="fix it")

    def misused() -> None:
        raise UsageError("no such thing")

    with pytest.raises(SystemExit) as exc:
        call(fail)
    assert exc.value.code == 1
    assert capsys.readouterr().err == "rr: error: it broke\nrr: hint: fix it\n"
    with pytest.raises(SystemExit) as exc:
        call(misused)
    assert exc.value.code == 2
    assert capsys.readouterr().err == "rr: error: no such thing\n"


def test_call_turns_ctrl_c_into_130(capsys):
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exc:
        call(interrupted)
    assert exc.value.code == 130
    assert capsys.readouterr().err == "rr: interrupted\n"


# --- -J and --scheduler: one message, exit code 2, checked by the library -------------------

J0 = "rr: error: --jobs must be a whole number of at least 1, not 0"


@pytest.mark.parametrize("words", [
    ["run", "--param", "a=1,2", "-J", "0", "echo {a}"],
    ["containers-run", "--param", "a=1,2", "-J", "0", "echo {a}"],
    ["rerun", "-J", "0"],
    ["get", "-J", "0"],
    ["push", "-J", "0"],
], ids=lambda w: " ".join(w[:2]))
def test_jobs_zero_is_one_usage_error(ds, words):
    head = (ds / ".git" / "HEAD").read_text()
    result = rr_in(*words, cwd=ds)
    assert (result.exit_code, result.stderr.splitlines()) == (2, [J0])
    assert (ds / ".git" / "HEAD").read_text() == head


@pytest.mark.parametrize("extra", [["-J", "2"], ["--scheduler", "slurm"]], ids=" ".join)
@pytest.mark.parametrize("command", ["run", "containers-run"])
def test_jobs_without_an_array_is_a_usage_error(ds, command, extra):
    result = rr_in(command, *extra, "echo hi", cwd=ds)
    assert (result.exit_code, result.stderr.splitlines()) == \
        (2, ["rr: error: --jobs and --scheduler run array jobs: give --param or --array"])
    assert not (ds / "hi").exists()


# --- rendering: records and JSON lines stay byte-identical -----------------------------------


def test_status_of_a_clean_dataset(ds):
    result = rr_in("status", cwd=ds)
    assert (result.exit_code, result.stdout) == (0, "nothing to save, working tree clean\n")


def test_status_json_lines(ds):
    (ds / "new.txt").write_text("x\n")
    result = rr_in("status", "--json", cwd=ds)
    assert result.exit_code == 0
    assert result.stdout == json.dumps({"action": "status", "path": "new.txt", "status": "ok",
                                        "state": "untracked", "type": "file"}) + "\n"


def test_app_is_the_entry_points_app():
    from recorder import cli

    assert cli.app is app and callable(cli.main)


# --- results and events ---------------------------------------------------------------------


def test_status_enum_is_datalads_strings():
    from recorder.results import ERROR, IMPOSSIBLE, NOTNEEDED, OK, Result, Status

    assert [OK, NOTNEEDED, IMPOSSIBLE, ERROR] == ["ok", "notneeded", "impossible", "error"]
    assert f"{Status.IMPOSSIBLE}" == "impossible"
    r = Result("status", "a.txt", Status.ERROR, message="gone")
    assert r.failed and not Result("status", "a.txt", "ok").failed
    assert json.dumps(r.to_dict()) == \
        '{"action": "status", "path": "a.txt", "status": "error", "message": "gone"}'


def test_result_fields_read_by_name_and_keep_rrs_json():
    from recorder.results import SKIPPED, Result, Status

    r = Result("run", None, Status.DRY_RUN, extra={"commit": None, "exit": 3, "index": 2})
    assert (r.commit, r.exit_code, r.index) == (None, 3, 2)
    assert json.dumps(r.to_dict()) == \
        '{"action": "run", "status": "dry-run", "commit": null, "exit": 3, "index": 2}'
    assert not r.failed and Status.DRY_RUN.datalad == "ok" and SKIPPED.datalad == "notneeded"
    with pytest.raises(AttributeError, match="run result has no field 'nope'"):
        r.nope  # noqa: B018
    step = Result("skip", None, SKIPPED, extra={"index": 1, "total": 2},
                  key_order=("index", "total"))
    assert list(step.to_dict()) == ["index", "total", "action", "status"]


def test_api_run_announces_before_the_command_runs(ds):
    from recorder import api

    seen = []
    r = api.run("echo hi > out.txt", dataset=ds, outputs=["out.txt"],
                on_event=lambda e: seen.append((e.kind, e.text, (ds / "out.txt").exists())))
    assert seen == [("announce", "echo hi > out.txt", False)]
    assert (r.status, r.exit_code, r.saved, len(r.commit)) == ("ok", 0, ["out.txt"], 40)


@pytest.mark.parametrize("kind, text, line", [
    ("announce", "echo hi", "rr: running: echo hi"),
    ("warn", "careful", "rr: warning: careful"),
    ("note", "the image changed", "rr: note: the image changed"),
    ("step", "[1/2] run 0123abcd x", "rr: [1/2] run 0123abcd x"),
])
def test_events_render_on_stderr(capsys, kind, text, line):
    from recorder.cli.render import render_event
    from recorder.results import Event, EventKind

    render_event(Event(EventKind(kind), text))
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", line + "\n")


def test_the_cli_event_handler(capsys):
    from recorder.cli.render import event_handler
    from recorder.results import Event, EventKind, announce, job_event

    event_handler(as_json=True)(announce("echo hi"))  # rr run --json: not shown
    event_handler(as_json=True, announce_json=True)(announce("echo ho"))  # rr rerun --json
    event_handler()(announce("2 job(s) of array A: x", array="A", jobs=2))
    event_handler()(Event(EventKind.STEP, "[1/2] run 0123abcd x"))  # not a terminal: quiet
    event_handler()(job_event(0, "queued"))  # no Progress: nothing
    event_handler(as_json=True)(Event(EventKind.WARN, "careful"))
    assert capsys.readouterr() == ("", "rr: running: echo ho\nrr: running 2 job(s) of array "
                                       "A: x\nrr: warning: careful\n")


def test_status_totals_and_annex_line(ds):
    from recorder import api
    from recorder.cli.render import annex_totals

    (ds / "big.bin").write_bytes(b"x" * 2500)
    assert rr_in("save", "-m", "big", cwd=ds).exit_code == 0
    (ds / "new.txt").write_text("x\n")
    results = api.status(dataset=ds, annex=True)
    records = list(results)
    assert [r.path for r in records if r.state == "untracked"] == ["new.txt"]
    t = results.totals
    assert (t.changed, t.files, t.present, t.bytes, t.here, t.unknown) == (1, 1, 1, 2500,
                                                                          2500, 0)
    assert not t.clean
    assert annex_totals(t) == "1 of 1 annexed files present, 2.5 kB of 2.5 kB"


def test_metrics_table_is_data_and_the_cli_renders_it(ds):
    from recorder import api
    from recorder.cli.render import render_table

    (ds / "m.json").write_text('{"acc": 0.5, "f1": {"macro": 0.25}}')
    assert rr_in("save", "-m", "m", cwd=ds).exit_code == 0
    table = api.metrics_table(["m.json"], dataset=ds, revisions=["HEAD"])
    assert table.columns == ["revision", "commit", "acc", "f1.macro"]
    assert [r["acc"] for r in table.rows] == [0.5]
    assert render_table(table, "csv").splitlines()[0] == "revision,commit,acc,f1.macro"
    result = rr_in("metrics", "show", "-r", "HEAD", "--md", "m.json", cwd=ds)
    assert result.stdout == render_table(table, "md")


def test_rr_help_loads_no_operation():
    """`rr --help` and the command table import typer and the CLI, not recorder.api or the
    operations (each command imports the API when it runs)."""
    import subprocess
    import sys

    code = ("import sys; from recorder import cli; "
            "print(sorted(m for m in sys.modules if m.startswith('recorder.') "
            "and not m.startswith('recorder.cli')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "['recorder.errors', 'recorder.results']"


HEAVY = ("rich", "pandas", "matplotlib", "numpy", "dask", "distributed", "dask_jobqueue",
         "docker", "yaml", "psutil", "recorder.containers", "recorder.engine")


@pytest.mark.parametrize("argv", [["--help"], ["log"], ["status"], ["run", "--help"],
                                  ["metrics", "show", "-A"],
                                  pytest.param(["containers-list"], marks=pytest.mark.xfail(
                                      strict=True, reason="the check can fail"))])
def test_daily_commands_import_nothing_heavy(argv, tmp_path):
    """The speed issue's start-up rule: `rr --help`, `rr log`, `rr status` import none of
    rich, pandas, matplotlib, Dask, the docker SDK, YAML, psutil or rr's container and
    engine modules (checked in the real process, at its exit)."""
    import subprocess
    import sys

    ds = tmp_path / "ds"
    rr("create", str(ds))
    code = ("import atexit, sys\n"
            f"heavy = {HEAVY!r}\n"
            "atexit.register(lambda: sys.stderr.write('LOADED ' + repr(sorted(m for m in "
            "sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))) + '\\n'))\n"
            f"sys.argv = ['rr', *{argv!r}]\n"
            "from recorder.cli import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ds, capture_output=True,
                          text=True)
    loaded = [line for line in proc.stderr.splitlines() if line.startswith("LOADED ")]
    assert loaded == ["LOADED []"], (argv, proc.stderr[-500:])
