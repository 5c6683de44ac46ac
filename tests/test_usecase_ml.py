"""The machine-learning usecase end to end (slow: builds the software image once)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from recorder import record as records
from tests.conftest import docker_engine, git, last_message, rr

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "usecases" / "ml-image-classification" / "run.sh"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    if not docker_engine():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine in CI")
        pytest.skip("no Docker engine on this machine")
    work = tmp_path_factory.mktemp("usecase") / "work"
    env = dict(os.environ, RR_USECASE_IMAGES="40")
    proc = subprocess.run(["bash", str(SCRIPT), str(work)], env=env, capture_output=True,
                          text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, proc.stdout + proc.stderr


@pytest.mark.slow
def test_branches_tags_and_records(finished):
    work, _ = finished
    ds = work / "ml-project"
    branches = set(git("branch", "--format=%(refname:short)", cwd=ds).split())
    assert {"master", "randomforest"} <= branches
    assert {"ready4analysis", "SGD-100", "random-forest"} <= set(git("tag", cwd=ds).split())
    train = records.parse_message(last_message(ds, "randomforest~1"))
    assert train.message == "Recompute classification with random forest classifier"
    rec = train.record
    assert rec["rr"]["container"]["name"] == "software"
    assert rec["extra_inputs"] == [".datalad/environments/software/image"]
    assert "data/train.csv" in rec["inputs"] and rec["outputs"] == ["model.joblib"]
    assert len(rec["chain"]) == 1
    evaluate = records.parse_message(last_message(ds, "randomforest")).record
    assert evaluate["outputs"] == ["accuracy.json"]


@pytest.mark.slow
def test_accuracy_on_both_branches(finished):
    work, output = finished
    ds = work / "ml-project"
    sgd = json.loads(git("show", "master:accuracy.json", cwd=ds))
    rf = json.loads(git("show", "randomforest:accuracy.json", cwd=ds))
    assert sgd["model"] == "SGDClassifier" and rf["model"] == "RandomForestClassifier"
    assert 0.5 <= sgd["accuracy"] <= 1 and 0.5 <= rf["accuracy"] <= 1
    assert "revision" in output and "randomforest" in output  # the metrics table was shown


@pytest.mark.slow
def test_collaborator_reproduces_identically(finished):
    work, output = finished
    clone = work / "collaborator"
    assert "reproduced: accuracy.json is identical" in output
    assert git("diff", "origin/randomforest", "--", "accuracy.json", "model.joblib",
               cwd=clone) == ""
    # the collaborator got only what the rerun needed: the validation images are here,
    # nothing was fetched for the prepare step's outputs beyond the tree
    assert (clone / "data" / "raw" / ".git").exists()


@pytest.mark.slow
def test_input_downloaded_from_its_source(finished):
    work, output = finished
    # printed so that it can be copied, quotes kept
    assert "$ rr download-url --archive -m 'Download Imagenette dataset' " \
           "http://127.0.0.1:" in output
    source = work / "imagenette"
    assert last_message(source).startswith("Download Imagenette dataset")
    assert not (source / "imagenette2-160.tgz").exists()  # dropped: the URL is the source
    raw = work / "ml-project" / "data" / "raw"
    assert (raw / "imagenette2-160.tgz").read_bytes()[:2] == b"\x1f\x8b"  # got from the web
    assert any((raw / "imagenette2-160" / "train").glob("*/*.png"))


@pytest.mark.slow
def test_sweep_one_record_per_job_and_one_job_replays(finished):
    work, output = finished
    ds = work / "ml-project"
    jobs = git("log", "--reverse", "--format=%H", "--grep=with max_iter=", "master",
               cwd=ds).split()
    assert len(jobs) == 3  # one record per job, committed in value order
    accuracies = {}
    for value, sha in zip(("1", "5", "20"), jobs):
        parsed = records.parse_message(last_message(ds, sha))
        rec = parsed.record
        assert parsed.message == f"Train and evaluate SGD with max_iter={value}"
        assert rec["rr"]["array"]["params"] == {"max_iter": value}
        assert rec["rr"]["container"]["name"] == "software"
        assert rec["outputs"] == [f"sweep/max_iter-{value}/model.joblib",
                                  f"sweep/max_iter-{value}/accuracy.json"]
        assert f"--max-iter {value} " in rec["cmd"]
        accuracies[value] = json.loads(git("show", f"{sha}:sweep/max_iter-{value}/accuracy.json",
                                           cwd=ds))["accuracy"]
    assert len(set(accuracies.values())) > 1  # the sweep shows a difference
    # compared side by side, one row per file, as the demo prints it
    assert "$ rr metrics show --per-file 'sweep/*/accuracy.json'" in output
    table = output.split("rr metrics show --per-file", 1)[1]
    for value in accuracies:
        assert f"sweep/max_iter-{value}/accuracy.json" in table
    # one job replays alone (on its parent, on a branch of its own): the same accuracy
    job = jobs[1]
    try:
        # executed (the run-cache would restore it from the job's own commit)
        proc = rr("rerun", "--no-cache", "--branch", "sweep-replay", "--onto", f"{job}^", job,
                  cwd=ds, env={"RR_OFFLINE": "1"})
        assert "sweep/max_iter-5/model.joblib" in proc.stderr  # shown before it ran
        replayed = json.loads((ds / "sweep" / "max_iter-5" / "accuracy.json").read_text())
        assert replayed["accuracy"] == accuracies["5"]
        assert git("rev-parse", "HEAD^", cwd=ds).strip() == git("rev-parse", f"{job}^",
                                                                cwd=ds).strip()
        # model and accuracy identical to the recorded job's (content keys compared)
        assert git("diff", job, "HEAD", "--", "sweep/max_iter-5", cwd=ds) == ""
    finally:
        git("checkout", "-q", "master", cwd=ds)


@pytest.mark.slow
def test_runs_table_and_report(finished):
    work, output = finished
    assert "max_iter" in output  # rr runs showed the sweep's parameter as a column
    report = work / "report.html"
    text = report.read_text(encoding="utf-8")
    assert 800_000 < len(text) < 5_000_000 and text.count('<tr data-commit="') >= 8
