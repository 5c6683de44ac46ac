"""rr metrics: values across tags, branches and commits, read from git objects."""

from __future__ import annotations

import json

import pytest

from recorder import api
from tests.conftest import git, rr

WRITE = "import json,sys; json.dump({'accuracy': float(sys.argv[1]), 'scores': {'f1': 0.5}}, " \
        "open('accuracy.json', 'w'))"


@pytest.fixture
def history(tmp_path):
    """Tags v1, v2 on master, a branch 'other' with a different result; text in git."""
    ds = tmp_path / "m"
    rr("create", "-c", "text2git", str(ds))
    (ds / "w.py").write_text(WRITE + "\n")
    rr("save", "-m", "script", "--version-tag", "start", cwd=ds)
    rr("run", "-m", "first", "-o", "accuracy.json", "python3 w.py 0.5", cwd=ds)
    rr("save", "--version-tag", "v1", cwd=ds)
    rr("run", "-m", "second", "-o", "accuracy.json", "python3 w.py 0.75", cwd=ds)
    rr("save", "--version-tag", "v2-ü", cwd=ds)  # a non-ASCII tag name
    git("checkout", "-q", "-b", "other", "v1", cwd=ds)
    rr("run", "-m", "third", "-o", "accuracy.json", "python3 w.py 0.9", cwd=ds)
    git("checkout", "-q", "master", cwd=ds)
    return ds


@pytest.mark.slow
def test_show_all_tags_with_missing_file(history):
    rows = [json.loads(x) for x in rr("metrics", "show", "-T", "--json",
                                      cwd=history).stdout.splitlines()]
    by = {r["revision"]: r for r in rows}
    assert by["v1"]["accuracy"] == 0.5 and by["v2-ü"]["accuracy"] == 0.75
    assert by["v1"]["scores.f1"] == 0.5
    assert by["start"]["note"] == "accuracy.json: missing"


@pytest.mark.slow
def test_show_all_branches_table_and_csv(history):
    text = rr("metrics", "show", "-a", cwd=history).stdout
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["revision", "commit", "accuracy"]
    assert any(line.startswith("other") and "0.9" in line for line in lines)
    assert not any(line.startswith("git-annex") for line in lines)
    csv_text = rr("metrics", "show", "-a", "--csv", cwd=history).stdout
    assert csv_text.splitlines()[0].startswith("revision,commit,accuracy")


@pytest.mark.slow
def test_all_commits_and_registered_file(history):
    rr("metrics", "add", "accuracy.json", cwd=history)
    assert "rr.metrics.file" in git("config", "-f", ".datalad/config", "--list", cwd=history) \
        .replace("rr.metrics.file=accuracy.json", "rr.metrics.file")
    rows = api.metrics(dataset=history, all_commits=True, as_frame=False)
    values = [r.values.get("accuracy") for r in rows]
    assert 0.5 in values and 0.75 in values and 0.9 in values


@pytest.mark.slow
def test_malformed_metrics_file_is_a_note_not_a_crash(history):
    (history / "accuracy.json").write_text("{not json")
    rr("save", "-m", "broken", "--version-tag", "broken", cwd=history)
    rows = [json.loads(x) for x in rr("metrics", "show", "-T", "--json",
                                      cwd=history).stdout.splitlines()]
    broken = [r for r in rows if r["revision"] == "broken"][0]
    assert broken["note"].startswith("accuracy.json: cannot parse")


@pytest.mark.slow
def test_diff_between_revisions_and_worktree(history):
    rows = [json.loads(x) for x in rr("metrics", "diff", "v1", "other", "--json",
                                      cwd=history).stdout.splitlines()]
    acc = [r for r in rows if r["key"] == "accuracy"][0]
    assert acc["old"] == 0.5 and acc["new"] == 0.9 and acc["change"] == pytest.approx(0.4)
    (history / "accuracy.json").write_text('{"accuracy": 1.0}')
    text = rr("metrics", "diff", cwd=history).stdout
    assert "accuracy" in text and "0.25" in text


@pytest.mark.slow
def test_dataframe_api(history):
    pd = pytest.importorskip("pandas")
    frame = api.metrics(dataset=history, all_tags=True)
    assert isinstance(frame, pd.DataFrame)
    best = frame.dropna(subset=["accuracy"]).sort_values("accuracy").iloc[-1]
    assert best["revision"] == "v2-ü"
    log = api.log(dataset=history)
    assert list(log["message"])[:2] == ["second", "first"]


def test_annexed_metrics_are_read(tmp_path):
    ds = tmp_path / "annexed"
    rr("create", str(ds))
    (ds / "m.json").write_text('{"loss": 0.25}')
    rr("save", "-m", "m", "--version-tag", "t1", cwd=ds)
    assert (ds / "m.json").is_symlink()
    rows = api.metrics(["m.json"], dataset=ds, all_tags=True, as_frame=False)
    assert rows[0].values == {"loss": 0.25}


@pytest.mark.slow
def test_plot_png_svg_html(history, tmp_path):
    pytest.importorskip("matplotlib")
    for suffix in ("png", "svg", "html"):
        out = tmp_path / f"acc.{suffix}"
        rr("metrics", "plot", "accuracy", "-T", "-o", str(out), cwd=history)
        data = out.read_bytes()
        assert len(data) > 1000
    assert (tmp_path / "acc.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "acc.html").read_bytes()
    proc = rr("metrics", "plot", "nokey", "-o", str(tmp_path / "x.png"), cwd=history,
              check=False)
    assert proc.returncode == 1 and "keys seen: accuracy" in proc.stderr


def test_yaml_and_csv_metrics(tmp_path):
    pytest.importorskip("yaml")
    ds = tmp_path / "y"
    rr("create", "-c", "text2git", str(ds))
    (ds / "m.yaml").write_text("train:\n  loss: 0.5\n")
    (ds / "m.csv").write_text("epoch,loss\n1,0.9\n2,0.4\n")
    rr("save", "--version-tag", "t", cwd=ds)
    rows = api.metrics(["m.yaml", "m.csv"], dataset=ds, all_tags=True, as_frame=False)
    assert rows[0].values == {"m.yaml:train.loss": 0.5, "m.csv:epoch": 2, "m.csv:loss": 0.4}


@pytest.mark.slow
def test_graph_links_inputs_commands_outputs_and_reruns(history, tmp_path):
    rr("rerun", "--onto=v1", "--branch", "again", "master", cwd=history)  # a new result
    out = tmp_path / "g.dot"
    rr("graph", "-o", str(out), cwd=history)
    dot = out.read_text()
    assert dot.startswith("digraph provenance {")
    assert '-> "f:accuracy.json";' in dot
    assert '[style=dashed, label="rerun"]' in dot
    import shutil

    if shutil.which("dot"):
        rr("graph", "-o", str(tmp_path / "g.svg"), cwd=history)
        assert b"<svg" in (tmp_path / "g.svg").read_bytes()
