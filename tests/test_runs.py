"""rr runs: one row per run commit, parameters and metrics as columns, against hand-computed
expectations on a sweep across two branches (with a verified, a differing, a cached, a
malformed, a metrics-less and a DataLad record among them)."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from recorder import api, proc
from recorder import runs as runsop
from recorder.errors import UsageError
from tests.conftest import git, has_datalad, one_error_line, rr, rr_in

TRAIN = ("import json,sys\nlr=float(sys.argv[1]); s=int(sys.argv[2])\n"
         "json.dump({'accuracy': round(0.5+lr*s/10, 3), 'loss': 1-lr}, open(sys.argv[3], 'w'))\n")


def accuracy(lr: float, seed: int) -> float:
    return round(0.5 + lr * seed / 10, 3)


def _record_message(subject: str, record: dict) -> str:
    return (f"[DATALAD RUNCMD] {subject}\n\n=== Do not change lines below ===\n"
            f"{json.dumps(record, indent=1, sort_keys=True)}\n^^^ Do not change lines above ^^^\n")


def _verdict(ds, commit: str, verdict: str, files=()) -> None:
    line = json.dumps({"date": "2026-12-01T10:00:00+00:00", "host": "h1", "verdict": verdict,
                       "files": [{"path": f, "status": "differs"} for f in files],
                       "python": "3.11.2", "rr": "0.1.0"}, sort_keys=True)
    git("notes", "--ref", "rr-verify", "add", "-m", line, commit, cwd=ds)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """master: a 2x2 sweep (lr x seed); branch other (from the script's commit): one job
    lr=0.5 seed=1, a run without metrics, a record rr took from its cache, a malformed
    record, and DataLad's own record.  The second master job is verified identical, the
    third differs; the sweep's last job is tagged best."""
    ds = tmp_path_factory.mktemp("runs") / "sweep"
    rr("create", str(ds))
    (ds / "train.py").write_text(TRAIN)
    rr("save", "-m", "training script", cwd=ds)
    base = git("rev-parse", "HEAD", cwd=ds).strip()
    rr("run", "--param", "lr=0.1,0.01", "--param", "seed=1,2", "-o", "m-{lr}-{seed}.json",
       "python3 train.py {lr} {seed} m-{lr}-{seed}.json", cwd=ds)
    master = git("rev-list", "--reverse", f"{base}..master", cwd=ds).split()
    git("tag", "best", master[3], cwd=ds)
    _verdict(ds, master[1], "identical")
    _verdict(ds, master[2], "differs", ["m-0.01-1.json"])
    git("checkout", "-q", "-b", "other", base, cwd=ds)
    rr("run", "--param", "lr=0.5", "--param", "seed=1", "-o", "m-{lr}-{seed}.json",
       "python3 train.py {lr} {seed} m-{lr}-{seed}.json", cwd=ds)
    rr("run", "-m", "no metrics", "-o", "notes.txt", "echo hi > notes.txt", cwd=ds)
    dsid = git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=ds).strip()
    cached = {"chain": [], "cmd": "echo hi > notes.txt", "dsid": dsid, "exit": 0,
              "extra_inputs": [], "inputs": [], "outputs": ["notes.txt"], "pwd": ".",
              "rr": {"cached_from": "0" * 40}}
    git("commit", "-q", "--allow-empty", "-m", _record_message("from the cache", cached),
        cwd=ds)
    git("commit", "-q", "--allow-empty", "-m",
        "[DATALAD RUNCMD] broken\n\n=== Do not change lines below ===\n{not json\n"
        "^^^ Do not change lines above ^^^\n", cwd=ds)
    if has_datalad():
        subprocess.run(["datalad", "run", "-m", "datalad's own", "-o", "dl.txt",
                        "echo dl > dl.txt"], cwd=ds, check=True, capture_output=True)
    other = git("rev-list", "--reverse", f"{base}..other", cwd=ds).split()
    git("checkout", "-q", "master", cwd=ds)
    return {"path": ds, "master": master, "other": other}


def _by_commit(table: runsop.RunsTable) -> dict[str, dict]:
    return {d["commit"]: d for d in table.rows}


@pytest.mark.slow
def test_columns_values_and_status(sweep):
    t = api.runs_table(dataset=sweep["path"], all=True)
    assert t.columns == [*runsop.FIXED, "lr", "seed", "accuracy", "loss", "note"]
    assert t.kinds["lr"] == "param" and t.kinds["accuracy"] == "metric"
    master, other = sweep["master"], sweep["other"]
    n_datalad = 1 if has_datalad() else 0
    assert len(t.rows) == 4 + 4 + n_datalad
    rows = _by_commit(t)
    for sha, (lr, seed) in zip(master, [(0.1, 1), (0.1, 2), (0.01, 1), (0.01, 2)]):
        row = rows[sha]
        assert (row["lr"], row["seed"]) == (lr, seed)
        assert row["accuracy"] == accuracy(lr, seed) and row["loss"] == pytest.approx(1 - lr)
        assert row["branch"] == "master" and isinstance(row["duration"], float)
        assert row["note"] is None
    assert [rows[s]["status"] for s in master] == ["ran", "verified", "differs", "ran"]
    assert rows[master[3]]["tags"] == "best"
    job, plain, cached, broken = other[:4]
    assert (rows[job]["branch"], rows[job]["lr"], rows[job]["accuracy"]) == ("other", 0.5, 0.55)
    assert rows[plain]["subject"] == "no metrics" and rows[plain]["accuracy"] is None
    assert rows[plain]["status"] == "ran" and rows[plain]["note"] is None
    assert rows[cached]["status"] == "cached"
    assert rows[broken]["status"] == "malformed" and rows[broken]["subject"] == "broken"
    assert rows[broken]["note"].startswith("malformed run record")
    if n_datalad:
        assert rows[other[4]]["subject"] == "datalad's own"
        assert rows[other[4]]["status"] == "ran" and rows[other[4]]["duration"] is None
    # newest first, as git log
    dates = [d["date"] for d in t.rows]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.slow
def test_head_only_changed_filter_sort(sweep):
    ds = sweep["path"]
    out = rr("runs", "--only-changed", "--json", cwd=ds).stdout
    rows = [json.loads(x) for x in out.splitlines()]
    assert len(rows) == 4  # HEAD is master: the sweep only
    # branch and image are the same in every row; status (verdicts) and tags (best) differ;
    # dates and durations may or may not
    assert set(rows[0]) - {"duration", "date"} == {"commit", "subject", "tags", "status", "lr",
                                                   "seed", "accuracy", "loss"}
    out = rr("runs", "-a", "--filter", "accuracy>0.505", "--sort-by", "accuracy", "--desc",
             "--json", cwd=ds).stdout
    assert [json.loads(x)["accuracy"] for x in out.splitlines()] == [0.55, 0.52, 0.51]
    out = rr("runs", "-a", "--filter", "lr=0.01 or status==cached", "--sort-by", "seed",
             "--json", cwd=ds).stdout
    got = [(json.loads(x)["seed"], json.loads(x)["status"]) for x in out.splitlines()]
    assert got == [(1, "differs"), (2, "ran"), (None, "cached")]  # empty cells last
    out = rr("runs", "-a", "--filter", "subject~metrics", "--json", cwd=ds).stdout
    assert [json.loads(x)["subject"] for x in out.splitlines()] == ["no metrics"]


@pytest.mark.slow
def test_csv_json_md_round_trip_and_frame(sweep):
    ds = sweep["path"]
    as_json = [json.loads(x) for x in rr("runs", "-a", "--json", cwd=ds).stdout.splitlines()]
    as_csv = list(csv.DictReader(io.StringIO(rr("runs", "-a", "--csv", cwd=ds).stdout)))
    assert len(as_csv) == len(as_json)
    for c, j in zip(as_csv, as_json):
        assert set(c) == set(j)
        for k, v in j.items():
            assert c[k] == ("" if v is None else str(v)), k
    md = rr("runs", "-a", "--md", cwd=ds).stdout.splitlines()
    assert md[0].startswith("| commit | subject |") and len(md) == len(as_json) + 2
    table = rr("runs", cwd=ds).stdout.splitlines()
    assert table[0].split()[:3] == ["commit", "subject", "branch"] and len(table) == 5
    df = api.runs(dataset=ds, all=True)
    assert list(df.columns) == [*runsop.FIXED, "lr", "seed", "accuracy", "loss", "note"]
    assert len(df) == len(as_json)
    assert df["accuracy"].max() == 0.55 and df["accuracy"].dtype.kind == "f"
    only = api.runs(dataset=ds, only_changed=True, filter="lr=0.1")
    assert len(only) == 2 and "lr" not in only.columns and "seed" in only.columns


@pytest.mark.slow
def test_one_git_log_one_cat_file(sweep, monkeypatch):
    """The history is read in one stream: one git log, one cat-file, whatever the count."""
    calls: list[list[str]] = []
    real = proc._spawn  # every process rr starts (captured or streamed)

    def counting(argv, *a, **kw):
        calls.append(list(argv))
        return real(argv, *a, **kw)

    monkeypatch.setattr(proc, "_spawn", counting)
    api.runs_table(dataset=sweep["path"], all=True)
    git_calls = [c[1] for c in calls if c[0] == "git"]
    assert git_calls.count("log") == 1 and git_calls.count("cat-file") == 1, calls


def test_bad_input_is_one_line(ds):
    res = rr_in("runs", "--filter", "accuracy >", cwd=ds)
    assert res.exit_code == 2
    assert "a filter condition is COLUMN OP VALUE" in one_error_line(res.stderr)
    res = rr_in("runs", "nope..HEAD", cwd=ds)
    assert "unknown revision: nope..HEAD" in one_error_line(res.stderr)
    res = rr_in("runs", "-a", "HEAD", cwd=ds)
    assert "give a revision range or --all, not both" in one_error_line(res.stderr)
    res = rr_in("runs", "--json", cwd=ds)
    assert res.exit_code == 0 and res.stdout == ""  # no run commits: no rows
    res = rr_in("runs", "--sort-by", "accuracy", cwd=ds)
    assert "no column 'accuracy'" in one_error_line(res.stderr)


def test_filter_grammar():
    parse = runsop.parse_filter
    assert parse("accuracy>0.9") == [[runsop.Condition("accuracy", ">", 0.9)]]
    assert parse("a=1 and b!='x y', c~z or d<=2") == [
        [runsop.Condition("a", "=", 1), runsop.Condition("b", "!=", "x y"),
         runsop.Condition("c", "~", "z")], [runsop.Condition("d", "<=", 2)]]
    for bad in ("", "accuracy", "accuracy >", "a=1 and", "a=1 b=2", "__import__('os')",
                "a=1 or or b=2"):
        with pytest.raises(UsageError):
            parse(bad)
    t = runsop.RunsTable(["commit", "x", "s"], [
        {"commit": "1", "x": 1, "s": "abc"}, {"commit": "2", "x": 10, "s": "b"},
        {"commit": "3", "x": None, "s": None}], {"commit": "run", "x": "metric", "s": "param"})
    keep = lambda e: [d["commit"] for d in runsop.filter_rows(t, [e]).rows]  # noqa: E731
    assert keep("x>2") == ["2"]  # numbers compare as numbers, not as text ("10" < "2")
    assert keep("x!=1") == ["2"]  # an empty cell never matches
    assert keep("s>=b") == ["2"] and keep("s~b") == ["1", "2"]
    assert [d["commit"] for d in runsop.sort_rows(t, "x", descending=True).rows] == \
        ["2", "1", "3"]
    assert runsop.only_changed(runsop.RunsTable(
        ["commit", "same", "diff"], [{"commit": "1", "same": 1, "diff": 1},
                                     {"commit": "2", "same": 1, "diff": 2}],
        {"commit": "run", "same": "param", "diff": "param"})).columns == ["commit", "diff"]


def test_which_outputs_are_metrics_files():
    files = runsop._metrics_files
    # none registered: the run's .json outputs, relative to its pwd, never outside the dataset
    assert files(["a.json", "b.txt", "../c.json", "/abs.json"], ".", []) == ["a.json"]
    assert files(["a.json"], "sub", []) == ["sub/a.json"]
    # registered: outputs matching a file or a glob, registered files under an output directory
    registered = ["acc.json", "sweep/*/a.json"]
    assert files(["sweep/1/a.json", "x.json"], ".", registered) == ["sweep/1/a.json"]
    assert files(["out"], ".", ["out/a.json"]) == ["out/a.json"]
    assert files(["."], ".", registered) == ["acc.json"]  # DataLad's -o . : the whole dataset


@pytest.mark.slow
def test_odd_records_and_metrics_are_shown_never_a_traceback(ds, tmp_path):
    """Records rr did not write (odd rr fields, metrics that do not parse, a metrics file that
    is a list or is missing): each row shows what it has; runs and report both finish."""
    dsid = git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=ds).strip()

    def commit(subject: str, files: dict[str, str], **rr_fields) -> None:
        for name, text in files.items():
            (ds / name).write_text(text)
            git("add", name, cwd=ds)
        record = {"chain": [], "cmd": "true", "dsid": dsid, "exit": 0, "extra_inputs": [],
                  "inputs": [], "outputs": sorted(files) or ["gone.json"], "pwd": "."}
        if rr_fields:
            record["rr"] = rr_fields
        git("commit", "-q", "--allow-empty", "-m", _record_message(subject, record), cwd=ds)

    commit("bad json", {"a.json": "{not json"})
    commit("a list", {"b.json": "[1, 2, {\"x\": 3}]"})
    commit("missing", {})
    commit("odd rr", {"c.json": '{"acc": NaN, "ok": true, "deep": {"k": [1, 2]}}'},
           array={"params": {"nested": {"a": 1}, "lr": "1e-3"}}, cached_from=True)
    commit("array not an object", {}, array="x")
    rows = {json.loads(x)["subject"]: json.loads(x)
            for x in rr("runs", "--json", cwd=ds).stdout.splitlines()}
    assert rows["bad json"]["note"].startswith("a.json: cannot parse")
    assert rows["a list"]["note"] is None  # a list is no metrics: no columns, no complaint
    assert rows["missing"]["note"] == "gone.json: missing"
    odd = rows["odd rr"]
    assert odd["status"] == "cached" and odd["lr"] == 0.001 and odd["nested"] == {"a": 1}
    assert odd["ok"] is True and odd["deep.k.0"] == 1
    assert rows["array not an object"]["note"] == "gone.json: missing"
    for args in (["--csv"], ["--md"], [], ["--only-changed", "--sort-by", "nested"],
                 ["--filter", "acc>0"]):
        rr("runs", *args, cwd=ds)
    out = tmp_path / "odd.html"
    rr("report", "-o", str(out), cwd=ds)
    assert out.read_text(encoding="utf-8").count('<tr data-commit="') == 5


@pytest.mark.slow
def test_all_includes_the_siblings_branches(tmp_path):
    """-a lists the runs on remote-tracking branches too (a collaborator's, after rr update),
    as rr metrics show -a does; git-annex's branches never."""
    a, b = tmp_path / "a", tmp_path / "b"
    rr("create", str(a))
    rr("run", "-o", "x", "echo 1 > x", cwd=a)
    rr("clone", str(a), str(b))
    rr("run", "-o", "y", "echo 2 > y", cwd=a)
    rr("update", cwd=b)
    rows = list(csv.DictReader(io.StringIO(rr("runs", "-a", "--csv", cwd=b).stdout)))
    branches = {r["subject"]: r["branch"] for r in rows}
    assert set(branches) == {"echo 2 > y", "echo 1 > x"}  # (same second: any order)
    assert branches["echo 2 > y"].startswith("origin/")
    assert [r["subject"] for r in csv.DictReader(io.StringIO(
        rr("runs", "--csv", cwd=b).stdout))] == ["echo 1 > x"]
