"""The fast path (recorder/cli/fast.py) against typer: the same parameters for every
command, the same values handed to the command function for many command lines, and
typer's turn for everything it does not certainly understand.  Plus: a daily command
starts without importing typer, and its output, errors and exit codes are typer's."""

import functools
import importlib
import os
import random
import subprocess
import sys

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from recorder import cli
from recorder.cli import fast, typed
from recorder.cli.params import Group

from .conftest import RR, rr


def _commands():
    """(name words, function, rr's settings) of every command and group command."""
    out = []
    for name, module, fn, settings in cli._COMMANDS:
        out.append(([name], getattr(importlib.import_module(f"recorder.cli.{module}"), fn),
                    settings))
    for name, module, attr in cli._GROUPS:
        group: Group = getattr(importlib.import_module(f"recorder.cli.{module}"), attr)
        for sub, fn, settings in group.commands:
            out.append(([name, sub], fn, settings))
    return out


COMMANDS = _commands()
IDS = [" ".join(words) for words, _, _ in COMMANDS]
# the daily commands stay on the fast path (a declaration it cannot read sends them to typer)
DAILY = {"create", "save", "run", "containers-run", "rerun", "status", "diff", "log", "graph",
         "runs", "report", "get", "drop", "push", "update", "clone", "unlock", "lineage",
         "metrics show", "metrics diff", "containers-list", "subdatasets", "remove"}


def _click_command(fn, settings):
    """typer's click command for ``fn`` (registered in an application of its own)."""
    app = typer.Typer()
    app.command("x", **typed.command_settings(settings))(typed.command(fn))

    @app.callback()
    def _group() -> None:
        pass

    return typer.main.get_command(app).commands["x"]


def _typer_kwargs(fn, settings, args):
    """What typer hands ``fn`` for ``args`` (None: typer refuses them)."""
    got = {}

    @functools.wraps(fn)
    def capture(**kwargs):
        got.update(kwargs)

    capture.__dict__.pop("__signature__", None)
    app = typer.Typer()
    app.command("x", **typed.command_settings(settings))(typed.command(capture))

    @app.callback()
    def _group() -> None:
        pass

    result = CliRunner().invoke(app, ["x", *args])
    return got if result.exit_code == 0 and got else None


@pytest.mark.parametrize("words,fn,settings", COMMANDS, ids=IDS)
def test_the_parameters_are_typers(words, fn, settings):
    """Names, secondary names, flags, repeatable options, arguments, types, choices and
    whether required: as typer builds them, for every command the fast path takes."""
    try:
        params = fast.params_of(fn)
    except fast.Unsure:
        assert " ".join(words) not in DAILY, f"{words} left the fast path"
        return
    click_params = {p.name: p for p in _click_command(fn, settings).params}
    assert [p.name for p in params] == list(click_params)
    for p in params:
        c = click_params[p.name]
        assert c.param_type_name == p.kind, p.name
        assert c.required == p.required, p.name
        if p.kind == "option":
            assert list(c.opts) == p.opts and list(c.secondary_opts) == p.secondary, p.name
            assert c.is_flag == p.flag and c.multiple == p.multiple, p.name
            assert not c.count and c.envvar is None and c.nargs == 1, p.name
        else:
            assert c.nargs == p.nargs, p.name
        assert c.callback is None and not c.is_eager, p.name
        choices = getattr(c.type, "choices", None)
        assert (list(choices) if choices is not None else None) == (
            list(p.choices) if p.choices is not None else None), p.name
        if p.choices is None and not p.flag:
            assert type(c.type).__name__ == {str: "StringParamType", int: "IntParamType",
                                           float: "FloatParamType"}[p.type], p.name


def _sample(p, rnd):
    if p.choices:
        return rnd.choice(p.choices)
    if p.type is int:
        return rnd.choice(["3", "0", "-2", "+7", " 5", "1_0"])
    if p.type is float:
        return rnd.choice(["1.5", "2", "-0.5", "1e3"])
    return rnd.choice(["x", "a b", "-m", "--", "-", "", "ü.txt", "--json", "{inputs}", "=x"])


def _argvs(params, rnd, n=60):
    opts = [p for p in params if p.kind == "option"]
    args = [p for p in params if p.kind == "argument"]
    out = [[]]
    for p in opts:
        for name in p.opts + p.secondary:
            out.append([name] if p.flag else [name, _sample(p, rnd)])
            if not p.flag:
                out.append([f"{name}={_sample(p, rnd)}"] if name.startswith("--") else
                           [name, _sample(p, rnd), name, _sample(p, rnd)])
    for _ in range(n):
        argv = []
        for _ in range(rnd.randint(0, 4)):
            if opts and rnd.random() < 0.7:
                p = rnd.choice(opts)
                name = rnd.choice(p.opts + p.secondary)
                argv += [name] if p.flag else [name, _sample(p, rnd)]
            else:
                argv.append(rnd.choice(["w1", "w 2", "-", "3"]))
        if args and rnd.random() < 0.5:
            argv += [rnd.choice(["w", "v"]) for _ in range(rnd.randint(0, 3))]
        if rnd.random() < 0.15:
            argv += ["--", rnd.choice(["-x", "y", "--json"])]
        if rnd.random() < 0.05:
            argv.insert(rnd.randint(0, len(argv)), rnd.choice(["--help", "--nope", "-Jx",
                                                               "-rv"]))
        out.append(argv)
    return out


@pytest.mark.parametrize("words,fn,settings", COMMANDS, ids=IDS)
def test_the_function_gets_what_typer_gives_it(words, fn, settings):
    """For many command lines (each option in each spelling, random mixes with arguments,
    '--', values that look like options, unknown options, --help): where the fast path
    takes the line, the function gets exactly the values typer gives it; where typer
    refuses the line, the fast path does not take it."""
    try:
        params = fast.params_of(fn)
    except fast.Unsure:
        return
    rnd = random.Random(" ".join(words))
    taken = 0
    for argv in _argvs(params, rnd):
        try:
            _fn, mine = fast.prepare([*words, *argv], cli._COMMANDS, cli._GROUPS)
        except fast.Unsure:
            continue
        except SystemExit:  # a usage error of rr's own (--annex=bad, --dry-run=bad)
            continue
        theirs = _typer_kwargs(fn, settings, argv)
        assert theirs is not None, f"typer refuses {argv} that the fast path took"
        assert mine == theirs, argv
        assert [type(v) for v in mine.values()] == [type(v) for v in theirs.values()], argv
        taken += 1
    assert taken >= 5, f"the fast path took only {taken} command lines"


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["run", "--nope", "x"],
                                  ["log", "-Jx"], ["metrics"], ["--debug", "log"],
                                  ["save", "-rv"], ["nonsense"], []])
def test_typer_takes_what_the_fast_path_does_not(argv):
    with pytest.raises(fast.Unsure):
        fast.prepare(argv, cli._COMMANDS, cli._GROUPS)


def _rr(args, cwd, env=None):
    return subprocess.run([sys.executable, "-c", "from recorder.cli import main; main()",
                           *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_daily_commands_start_without_typer(tmp_path):
    """`rr run`, `rr log`, `rr status`, `rr metrics show` end without typer loaded; an
    unknown option is typer's (its message and exit code)."""
    ds = tmp_path / "ds"
    rr("create", str(ds))
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: sys.stderr.write('TYPER ' + str('typer' in sys.modules)"
             " + '\\n'))\n"
             "sys.argv = ['rr', *sys.argv[1:]]\n"
             "from recorder.cli import main\nmain()\n")
    for argv in (["run", "-o", "a.txt", "echo hi > a.txt"], ["log"], ["status"],
                 ["metrics", "show", "-A"], ["save", "-m", "nothing"]):
        proc = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ds,
                              capture_output=True, text=True)
        assert "TYPER False" in proc.stderr, (argv, proc.stderr)
    proc = subprocess.run([sys.executable, "-c", probe, "log", "--nope"], cwd=ds,
                          capture_output=True, text=True)
    assert "TYPER True" in proc.stderr and proc.returncode == 2
    assert "No such option: --nope" in proc.stderr


def test_exit_codes_and_messages_are_typers(tmp_path):
    """The same end through both paths: success, rr's errors (1, 2), a usage error of the
    command class (--dry-run=bad), a broken pipe."""
    ds = tmp_path / "ds"
    rr("create", str(ds))
    (ds / "f.txt").write_text("x\n")
    slow = {"_RR_COMPLETE": ""}  # shell completion asked for: typer's turn (not completed)
    for argv in (["--version"], ["status"], ["run", "--dry-run=bad", "echo"],
                 ["run", "-i", "nope/*", "-o", "b", "cat {inputs} > b"], ["diff", "--json"],
                 ["log", "-n", "1"]):
        fast_ = _rr(argv, ds)
        typer_ = _rr(argv, ds, slow)
        assert (fast_.returncode, fast_.stdout, fast_.stderr) == \
            (typer_.returncode, typer_.stdout, typer_.stderr), argv


@pytest.mark.slow
def test_the_rr_script_ends_quickly_with_all_its_output(tmp_path):
    """The console script ends with os._exit after flushing: its whole output (a long
    `rr log --json` into a pipe and into a file) and exit codes are what typer's path gives."""
    ds = tmp_path / "ds"
    rr("create", str(ds))
    for i in range(12):
        rr("run", "-m", f"step {i}", "-o", f"o{i}.txt", f"echo {i} > o{i}.txt", cwd=ds)
    for argv in (["log", "--json"], ["log"], ["status", "--nope"], ["run", "false"]):
        fast_ = subprocess.run([RR, *argv], cwd=ds, capture_output=True)
        typer_ = subprocess.run([RR, *argv], cwd=ds, capture_output=True,
                                env={**os.environ, "_RR_COMPLETE": ""})
        assert (fast_.returncode, fast_.stdout, fast_.stderr) == \
            (typer_.returncode, typer_.stdout, typer_.stderr), argv
        if argv[0] == "log":
            assert fast_.stdout.count(b"step ") == 12
    out = tmp_path / "log.txt"
    with open(out, "wb") as fh:
        subprocess.run([RR, "log", "--json"], cwd=ds, stdout=fh, check=True)
    assert out.read_bytes() == subprocess.run([RR, "log", "--json"], cwd=ds,
                                              capture_output=True).stdout


def test_daily_commands_leave_openssl_and_tempfile_alone(tmp_path):
    """Start-up budget: `rr log`, `rr status` and a plain `rr run` (no inputs: the run-cache
    is not asked) load neither hashlib's OpenSSL (~2 ms) nor tempfile (~1 ms)."""
    ds = tmp_path / "ds"
    rr("create", str(ds))
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: sys.stderr.write('MODS ' + repr([m for m in "
             "('_hashlib', 'tempfile') if m in sys.modules]) + '\\n'))\n"
             "sys.argv = ['rr', *sys.argv[1:]]\n"
             "from recorder.cli import main\nmain()\n")
    for argv in (["log"], ["status"], ["run", "-o", "a.txt", "echo hi > a.txt"]):
        proc = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ds,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "MODS []" in proc.stderr, (argv, proc.stderr)
