"""rr rerun at the cost of the work it must do (issue #22 row 3): process counts, never times;
the duration notes as one notes commit, their tree as ``git notes add`` leaves it; any stop of
a replay leaves a state that ``--continue`` and ``--abort`` handle."""

import json
import subprocess

import pytest

from recorder import gitrepo
from recorder.dataset import Dataset
from recorder.rerun import rerun

from .conftest import git, rr

STATE = ".git/rr-rerun.json"


def _records(ds, n: int) -> None:
    """``n`` trivial run records (each writes its own file), committed without running."""
    for i in range(n):
        record = {"chain": [], "cmd": f"echo {i} > r{i}", "exit": 0, "extra_inputs": [],
                  "inputs": [], "outputs": [f"r{i}"], "pwd": "."}
        git("commit", "-q", "--allow-empty", "-m",
            f"[DATALAD RUNCMD] step {i}\n\n=== Do not change lines below ===\n"
            f"{json.dumps(record)}\n^^^ Do not change lines above ^^^", cwd=ds)


def _processes(ds, tmp_path, *args: str) -> tuple[dict[str, int], int]:
    """The git processes ``rr ARGS`` started itself (by subcommand; git's trace2 events: a
    process started by git or git-annex has its parent's session id in its own), and the
    git-annex processes started through git."""
    trace = tmp_path / "trace2"
    trace.unlink(missing_ok=True)
    rr(*args, cwd=ds, env={"GIT_TRACE2_EVENT": str(trace)})
    own: dict[str, int] = {}
    annexes = 0
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        argv = event.get("argv") or []
        # (git-annex started by rr directly calls git with --git-dir=: those are its own)
        if event["event"] == "start" and "/" not in event["sid"] and argv[1:2] != ["annex"] \
                and not argv[1].startswith("--git-dir"):
            own[argv[1]] = own.get(argv[1], 0) + 1
        if event["event"] == "child_start" and argv and argv[0].startswith("git-annex"):
            annexes += 1
    return own, annexes


@pytest.mark.slow
def test_rerun_of_20_records_starts_few_processes(ds, tmp_path):
    _records(ds, 20)
    before = git("rev-parse", "HEAD", cwd=ds).strip()
    own, annexes = _processes(ds, tmp_path, "rerun", "--since=HEAD~20")
    assert git("rev-list", "--count", f"{before}..HEAD", cwd=ds).strip() == "20"
    # per record: the save's status, staged check, write-tree, commit-tree, update-ref (main
    # had 10: and a status before, a clean check, a diff-tree, a notes add, a maintenance);
    # per replay: the plan (rev-parse, log, config), one clean check, one diff-tree --stdin,
    # the notes commit (fast-import, notes merge, commit-tree, update-ref), one maintenance
    assert sum(own.values()) <= 6 * 20, own
    assert own.get("status", 0) <= 20 + 2, own
    assert own.get("notes", 0) <= 1 and own.get("maintenance", 0) <= 1, own
    # one git annex add per record at most (a long-lived batch session: fewer)
    assert annexes <= 20 + 2, annexes
    # the durations: one notes commit for the whole replay, one note per replayed record
    assert git("rev-list", "--count", "refs/notes/rr", cwd=ds).strip() == "1"
    for sha in git("rev-list", f"{before}..HEAD", cwd=ds).split():
        note = json.loads(git("notes", "--ref=rr", "show", sha, cwd=ds))
        assert set(note) == {"duration"} and isinstance(note["duration"], float)
    assert git("status", "--porcelain", cwd=ds) == ""


def _sequential_notes(root, ref: str, notes: dict[str, str]) -> None:
    for sha, text in notes.items():
        git("notes", f"--ref={ref}", "add", "-f", "-m", text, sha, cwd=root)


@pytest.mark.parametrize("existing,new", [
    (0, 30), pytest.param(0, 300, marks=pytest.mark.slow),
    pytest.param(60, 60, marks=pytest.mark.slow), pytest.param(150, 200, marks=pytest.mark.slow)])
def test_add_notes_writes_the_tree_git_notes_add_writes(tmp_path, existing, new):
    """Byte for byte, also where git's notes code fans the tree out (its heuristic is not
    fast-import's), with notes already there and a note replaced (add -f)."""
    root = tmp_path / "repo"
    root.mkdir()
    gitrepo.init(root)
    git("commit", "-q", "--allow-empty", "-m", "root", cwd=root)
    tree = git("rev-parse", "HEAD^{tree}", cwd=root).strip()
    head = git("rev-parse", "HEAD", cwd=root).strip()
    shas = []
    for i in range(existing + new):
        head = subprocess.run(["git", "commit-tree", tree, "-p", head, "-m", f"c{i}"], cwd=root,
                              check=True, capture_output=True, text=True).stdout.strip()
        shas.append(head)
    old = {s: json.dumps({"duration": i / 7}) for i, s in enumerate(shas[:existing])}
    _sequential_notes(root, "rr", old)
    if existing:
        git("update-ref", "refs/notes/check", "refs/notes/rr", cwd=root)
    notes = {s: json.dumps({"duration": round(i / 3, 3)}) for i, s in enumerate(shas[existing:])}
    if existing:
        notes[shas[0]] = json.dumps({"duration": 9.5})
    _sequential_notes(root, "check", notes)
    tip = git("rev-parse", "-q", "--verify", "refs/notes/rr", cwd=root).strip() \
        if existing else None
    new_tip = gitrepo.add_notes(root, notes)
    assert git("rev-parse", "refs/notes/rr", cwd=root).strip() == new_tip
    assert git("rev-parse", "refs/notes/rr^{tree}", cwd=root) == \
        git("rev-parse", "refs/notes/check^{tree}", cwd=root)
    # one commit on the old tip, with git notes add's message; no temporary ref left
    assert git("log", "-1", "--format=%P%n%B", "refs/notes/rr", cwd=root) == \
        f"{tip or ''}\nNotes added by 'git notes add'\n\n"
    refs = git("for-each-ref", "--format=%(refname)", cwd=root).split()
    assert sorted(refs) == ["refs/heads/" + git("branch", "--show-current", cwd=root).strip(),
                            "refs/notes/check", "refs/notes/rr"]


def _annexed_record(ds) -> str:
    rr("run", "-o", "out.txt", "date +%N > out.txt", cwd=ds)
    assert (ds / "out.txt").is_symlink()
    return git("rev-parse", "HEAD", cwd=ds).strip()


class Boom(Exception):
    pass


def _raise_at_announce(event) -> None:
    if event.kind.name == "ANNOUNCE":  # the outputs are unlocked: the step changed files
        raise Boom("unexpected")


@pytest.mark.parametrize("then", ["--abort", "--continue"])
def test_an_unexpected_error_in_a_step_leaves_a_state_continue_and_abort_handle(ds, then):
    before = _annexed_record(ds)
    with pytest.raises(Boom):
        list(rerun(Dataset(ds), on_event=_raise_at_announce))
    assert (ds / STATE).exists()
    assert git("status", "--porcelain", cwd=ds) != ""  # the unlocked output
    rr("rerun", then, cwd=ds)
    assert not (ds / STATE).exists()
    assert git("status", "--porcelain", cwd=ds) == ""
    assert (ds / "out.txt").is_symlink()
    if then == "--abort":
        assert git("rev-parse", "HEAD", cwd=ds).strip() == before
    else:
        assert git("rev-parse", "HEAD~1", cwd=ds).strip() == before
        assert "duration" in git("notes", "--ref=rr", "show", "HEAD", cwd=ds)


def test_a_caller_that_stops_reading_leaves_a_state_continue_finishes(ds):
    _records(ds, 3)
    before = git("rev-parse", "HEAD", cwd=ds).strip()
    steps = rerun(Dataset(ds), since="HEAD~3")
    first = next(steps)
    steps.close()
    assert first.extra["index"] == 1 and (ds / STATE).exists()
    done = git("rev-parse", "HEAD", cwd=ds).strip()
    # the note of the step done is written when the replay stops
    assert "duration" in git("notes", "--ref=rr", "show", done, cwd=ds)
    out = rr("rerun", "--continue", cwd=ds)
    assert "replayed 2 run(s)" in out.stderr, out.stderr
    assert not (ds / STATE).exists()
    assert git("rev-list", "--count", f"{before}..HEAD", cwd=ds).strip() == "3"
    assert git("status", "--porcelain", cwd=ds) == ""


@pytest.mark.slow
def test_notes_of_the_records_done_survive_a_stopped_replay(ds, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("")
    rr("run", "-o", "a", "echo a > a", cwd=ds)
    rr("run", "-o", "b", f"test -e {flag} && echo b > b", cwd=ds)
    flag.unlink()
    proc = rr("rerun", "--since=HEAD~2", cwd=ds, check=False)
    assert proc.returncode != 0 and (ds / STATE).exists()
    assert "duration" in git("notes", "--ref=rr", "show", "HEAD", cwd=ds)  # the first, replayed
    rr("rerun", "--abort", cwd=ds)
