"""rr export ro-crate: a Workflow Run RO-Crate (Process Run Crate 0.5) that the RO-Crate
validator (roc-validator, in its own environment .venv-roc: tools/setup.sh with
RR_WITH_ROC=1) accepts with no REQUIRED and no RECOMMENDED failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from recorder import record as records
from recorder import rocrate
from tests.conftest import git, needs_datalad, one_error_line, rr, rr_in

REPO = Path(__file__).resolve().parent.parent
ROC_VENV = Path(os.environ.get("RR_ROC_VENV", REPO / ".venv-roc"))
PROFILE = "process-run-crate-0.5"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="session")
def validator(tmp_path_factory):
    """A function validating a crate directory: the validator's JSON report."""
    exe = ROC_VENV / "bin" / "rocrate-validator"
    if not exe.exists():
        if os.environ.get("CI"):
            pytest.fail("no roc-validator in CI: tools/setup.sh with RR_WITH_ROC=1 makes it")
        pytest.skip("roc-validator is not installed (tools/setup.sh with RR_WITH_ROC=1)")
    cache = tmp_path_factory.mktemp("roc-cache") / "http"
    subprocess.run([str(ROC_VENV / "bin" / "python"), str(REPO / "tools" / "roc_cache.py"),
                    str(cache)], check=True)

    def validate(crate: Path) -> dict:
        report = crate.parent / f"{crate.name}-report.json"
        subprocess.run([str(exe), "validate", "--offline", "--cache-path", str(cache),
                        "-p", PROFILE, "-l", "recommended", "-f", "json", "-o", str(report),
                        str(crate)], capture_output=True, env={**os.environ, "COLUMNS": "200"})
        return json.loads(report.read_text())

    return validate


def _issues(report: dict) -> list[str]:
    return [f"{i.get('severity')}: {i.get('message')}" for i in report.get("issues", [])]


def _graph(crate: Path) -> dict[str, dict]:
    data = json.loads((crate / "ro-crate-metadata.json").read_text())
    return {e["@id"]: e for e in data["@graph"]}


def _hand_record(ds: Path, message: str, rec: dict, files: dict[str, str]) -> str:
    for path, text in files.items():
        (ds / path).parent.mkdir(parents=True, exist_ok=True)
        (ds / path).write_text(text)
        git("add", path, cwd=ds)
    git("commit", "-q", "--allow-empty", "-m", records.format_message(message, rec), cwd=ds)
    return git("rev-parse", "HEAD", cwd=ds).strip()


@pytest.fixture(scope="module")
def usecase(tmp_path_factory):
    """A usecase-like history: raw data as a subdataset, code, a prepare step, a training
    step in a container (its record as containers-run writes it), a failed run, metrics in
    git, a DataLad record without rr's fields, a malformed record."""
    base = tmp_path_factory.mktemp("crate")
    raw = base / "raw"
    rr("create", str(raw))
    (raw / "train.csv").write_text("x,y\n1,2\n3,4\n")
    rr("save", "-m", "raw data", cwd=raw)
    ds = base / "ml"
    rr("create", "-c", "text2git", str(ds))
    rr("clone", "-d", ".", "../raw", "data/raw", cwd=ds)
    (ds / "code").mkdir()
    (ds / "code" / "prepare.py").write_text("import sys\nprint(open(sys.argv[1]).read())\n")
    rr("save", "-m", "Add code", cwd=ds)
    rr("run", "-m", "Prepare data", "-i", "data/raw/train.csv", "-i", "code/prepare.py",
       "-o", "data/prepared.csv", "python3 code/prepare.py data/raw/train.csv > "
       "data/prepared.csv", cwd=ds)
    (ds / "model.bin").write_bytes(b"\0\1binary model")
    git("annex", "add", "model.bin", cwd=ds)
    train = records.new_record(
        cmd="sh -c 'docker run ... python3 code/train.py'", dsid=None, exit_code=0,
        inputs=["data/prepared.csv"], extra_inputs=[".datalad/environments/software/image"],
        outputs=["model.bin", "accuracy.json"], pwd=".",
        rr={"container": {"name": "software", "image": ".datalad/environments/software/image",
                          "digest": DIGEST}, "duration": 12.5})
    _hand_record(ds, "Train", train, {"accuracy.json": '{"accuracy": 0.9}\n'})
    failed = records.new_record(cmd="false", dsid=None, exit_code=1, inputs=[],
                                extra_inputs=[], outputs=["log.txt"], pwd=".")
    _hand_record(ds, "A failed run", failed, {"log.txt": "it failed\n"})
    datalad = {"chain": [], "cmd": "wc -l accuracy.json > lines.txt", "exit": 0,
               "extra_inputs": [], "inputs": ["accuracy.json"], "outputs": ["lines.txt"],
               "pwd": "."}
    _hand_record(ds, "wc", datalad, {"lines.txt": "1 accuracy.json\n"})
    git("commit", "-q", "--allow-empty", "-m",
        f"{records.TAG}broken\n\n{records.BELOW}\n{{nope\n{records.ABOVE}\n", cwd=ds)
    return ds


@pytest.mark.slow
def test_usecase_crate_validates(usecase, validator, tmp_path):
    crate = tmp_path / "crate"
    rr("export", "ro-crate", "-o", str(crate), cwd=usecase)
    report = validator(crate)
    assert report["passed"], _issues(report)
    assert _issues(report) == []
    g = _graph(crate)
    actions = [e for e in g.values() if e["@type"] == "CreateAction"]
    assert sorted(a["name"] for a in actions) == ["A failed run", "Prepare data", "Train", "wc"]
    by = {a["name"]: a for a in actions}
    train = by["Train"]
    image = g[train["containerImage"]["@id"]]
    assert image["@type"] == "ContainerImage" and image["sha256"] == "ab" * 32
    assert train["instrument"]["@id"] == rocrate.SHELL_ID
    assert train["startTime"] < train["endTime"]
    assert train["actionStatus"] == rocrate.COMPLETED
    assert by["A failed run"]["actionStatus"] == rocrate.FAILED
    assert by["A failed run"]["exitCode"] == 1
    head = git("rev-parse", "HEAD~1", cwd=usecase).strip()
    assert by["wc"]["identifier"] == f"git commit {head}"
    # checksums: an annex key's (MD5E here: given as its identifier) or the git blob's sha256
    results = {g[r["@id"]]["name"]: g[r["@id"]] for r in train["result"]}
    assert results["model.bin"]["identifier"].startswith("annex key MD5E-s14--")
    assert results["model.bin"]["contentSize"] == "14"
    import hashlib  # noqa: PLC0415
    assert results["accuracy.json"]["sha256"] == hashlib.sha256(
        b'{"accuracy": 0.9}\n').hexdigest()
    prepare = by["Prepare data"]
    objects = prepare["object"] if isinstance(prepare["object"], list) else [prepare["object"]]
    kinds = {g[o["@id"]]["@type"] for o in objects}
    assert kinds == {"Dataset", "File"}  # the subdataset input, and the code
    root = g["./"]
    dsid = git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=usecase).strip()
    assert f"urn:uuid:{dsid}" in root["identifier"]
    assert "broken" not in json.dumps(actions) and "malformed" in root["description"]


@pytest.mark.slow
def test_with_content_zip_and_a_tampered_crate(usecase, validator, tmp_path):
    out = tmp_path / "crate.zip"
    rr("export", "ro-crate", "-o", str(out), "--with-content", cwd=usecase)
    crate = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(crate)
    assert (crate / "model.bin").read_bytes() == b"\0\1binary model"
    assert (crate / "data" / "prepared.csv").exists()
    report = validator(crate)
    assert report["passed"], _issues(report)
    assert _issues(report) == []
    (crate / "model.bin").unlink()  # a result file missing: the validator must say so
    report = validator(crate)
    assert not report["passed"]
    assert any("model.bin" in m and m.startswith("REQUIRED") for m in _issues(report))


def _array_history(ds: Path, n: int) -> None:
    """``n`` array jobs as rr's array driver writes them (a commit per job, in row order,
    its record with ``rr.array``), written with one git fast-import (cheap)."""
    head = git("rev-parse", "HEAD", cwd=ds).strip()
    stamp = int(time.time())
    chunks = []
    for i in range(n):
        rec = records.new_record(cmd="echo {i} > {outputs}".replace("{i}", str(i)), dsid=None,
                                 exit_code=0, inputs=[], extra_inputs=[],
                                 outputs=[f"out/{i}.txt"], pwd=".",
                                 rr={"array": {"id": "a1", "index": i, "params": {"i": str(i)}},
                                     "duration": 0.01})
        msg = records.format_message(f"job {i}", rec).encode()
        body = f"{i}\n".encode()
        chunks.append(b"commit refs/heads/master\n" +
                      f"committer A U Thor <a@example.org> {stamp + i} +0000\n".encode() +
                      f"data {len(msg)}\n".encode() + msg + b"\n" +
                      (f"from {head}\n".encode() if i == 0 else b"") +
                      f"M 100644 inline out/{i}.txt\ndata {len(body)}\n".encode() + body + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=ds, check=True,
                   input=b"".join(chunks) + b"done\n")
    git("reset", "-q", "--hard", "master", cwd=ds)


@pytest.mark.slow
def test_a_thousand_job_array_validates(ds, validator, tmp_path):
    _array_history(ds, 1000)
    crate = tmp_path / "crate"
    res = rr_in("export", "ro-crate", "-o", str(crate), cwd=ds)
    assert res.exit_code == 0, res.stderr
    g = _graph(crate)
    assert sum(1 for e in g.values() if e["@type"] == "CreateAction") == 1000
    report = validator(crate)
    assert report["passed"], _issues(report)[:5]
    assert _issues(report) == []


def test_range_and_bad_output(usecase_small, tmp_path):
    ds = usecase_small
    first = git("rev-parse", "HEAD~1", cwd=ds).strip()
    crate = tmp_path / "c"
    res = rr_in("export", "ro-crate", f"{first}..HEAD", "-o", str(crate), cwd=ds)
    assert res.exit_code == 0, res.stderr
    names = [e["name"] for e in _graph(crate).values() if e["@type"] == "CreateAction"]
    assert names == ["second"]
    res = rr_in("export", "ro-crate", "-o", str(crate), cwd=ds)
    assert "exists: give a new directory or .zip file" in one_error_line(res.stderr)
    res = rr_in("export", "ro-crate", "nosuch..HEAD", "-o", str(tmp_path / "d"), cwd=ds)
    assert one_error_line(res.stderr) == "rr: error: unknown revision: nosuch"
    assert res.exit_code == 2 and not (tmp_path / "d").exists()


@pytest.fixture
def usecase_small(ds):
    for name in ("first", "second"):
        rec = records.new_record(cmd=f"echo {name} > {name}.txt", dsid=None, exit_code=0,
                                 inputs=[], extra_inputs=[], outputs=[f"{name}.txt"], pwd=".")
        _hand_record(ds, name, rec, {f"{name}.txt": f"{name}\n"})
    return ds


def test_key_checksums():
    assert rocrate.key_checksum("SHA256E-s3--" + "a" * 64 + ".txt") == ("sha256", "a" * 64)
    assert rocrate.key_checksum("MD5E-s3--" + "b" * 32) == ("md5", "b" * 32)
    assert rocrate.key_checksum("WORM-s3-m1--name") is None
    assert rocrate.key_checksum("URL--http&c%%example.org") is None
    assert rocrate.key_size("SHA256E-s1234--" + "a" * 64) == 1234


def test_export_api_writes_a_crate(usecase_small, tmp_path):
    from recorder import api  # noqa: PLC0415

    path = api.export_ro_crate(tmp_path / "c", dataset=usecase_small, with_content=True)
    assert (path / "ro-crate-metadata.json").exists() and (path / "second.txt").exists()
    shutil.rmtree(path)
    # a file changed since its commit is not the recorded content: not copied
    (usecase_small / "second.txt").write_text("changed\n")
    path = api.export_ro_crate(tmp_path / "c", dataset=usecase_small, with_content=True)
    assert (path / "first.txt").exists() and not (path / "second.txt").exists()
    assert any(i.startswith("#file-second.txt@") for i in _graph(path))


@needs_datalad
@pytest.mark.slow
def test_datalads_own_records_validate(ds, validator, tmp_path):
    for args in (["-m", "make", "-o", "a.txt", "echo hi > a.txt"],
                 ["-m", "copy", "-i", "a.txt", "-o", "b.txt", "cat a.txt a.txt > b.txt"]):
        subprocess.run(["datalad", "run", *args], cwd=ds, check=True, capture_output=True)
    crate = tmp_path / "crate"
    rr("export", "ro-crate", "-o", str(crate), "--with-content", cwd=ds)
    assert (crate / "b.txt").read_text() == "hi\nhi\n"
    g = _graph(crate)
    copy = next(e for e in g.values() if e.get("name") == "copy")
    assert copy["object"] == {"@id": "a.txt"} and copy["result"] == {"@id": "b.txt"}
    assert copy["agent"]["@id"].startswith("#person-")
    report = validator(crate)
    assert report["passed"], _issues(report)
    assert _issues(report) == []


def test_publisher_and_license_from_config(usecase_small, tmp_path):
    ds = usecase_small
    git("config", "rr.export.license", "https://spdx.org/licenses/CC-BY-4.0", cwd=ds)
    git("config", "rr.export.publisher", "Example Lab", cwd=ds)
    git("config", "rr.export.publisher-url", "https://lab.example.org", cwd=ds)
    crate = tmp_path / "c"
    assert rr_in("export", "ro-crate", "-o", str(crate), cwd=ds).exit_code == 0
    g = _graph(crate)
    assert g["./"]["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert g["https://spdx.org/licenses/CC-BY-4.0"]["name"] == "CC-BY-4.0"
    assert g["#publisher"]["name"] == "Example Lab"
    assert g["#publisher"]["url"] == "https://lab.example.org"


def test_with_content_reads_nothing_outside_the_dataset(ds, tmp_path):
    """A committed link that looks like an annexed file whose key is here, but leads out of
    the dataset: its target is not copied into the crate."""
    (ds / "real.txt").write_text("public\n")
    git("annex", "add", "real.txt", cwd=ds)
    key = os.readlink(ds / "real.txt").rsplit("/", 1)[-1]
    outside = tmp_path / "outside" / ".git" / "annex" / "objects" / "xx" / "yy" / key
    outside.mkdir(parents=True)
    (outside / key).write_text("secret\n")
    os.symlink(outside / key, ds / "leak.txt")
    git("add", "leak.txt", cwd=ds)
    rec = records.new_record(cmd="true", dsid=None, exit_code=0, inputs=[], extra_inputs=[],
                             outputs=["leak.txt", "real.txt"], pwd=".")
    # --no-verify: git-annex's pre-commit hook would point the link back into the dataset
    git("commit", "-q", "--no-verify", "-m", records.format_message("leak", rec), cwd=ds)
    assert os.readlink(ds / "leak.txt").startswith(str(tmp_path / "outside"))
    crate = tmp_path / "c"
    assert rr_in("export", "ro-crate", "-o", str(crate), "--with-content", cwd=ds).exit_code == 0
    assert (crate / "real.txt").read_text() == "public\n"
    assert not (crate / "leak.txt").exists()
