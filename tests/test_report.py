"""rr report: one self-contained HTML file, opened in a real headless browser (Chromium with
chromedriver, through selenium): no network request but the file itself, no console error,
one row per run, the differences-only toggle hides identical columns, charts and graph drawn."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from recorder import report as reportop
from tests.conftest import git, one_error_line, rr
from tests.test_runs import sweep  # noqa: F401  the sweep across two branches

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "report.png"  # the README's picture: RR_UPDATE_SCREENSHOT=1


def _chromedriver() -> str | None:
    return shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium; CI installs it (RR_WITH_BROWSER=1), so there a missing browser fails."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("selenium is not installed (pip install -e '.[test]')")
        pytest.skip("no selenium (pip install selenium)")
    driver_path = _chromedriver()
    if driver_path is None:
        if os.environ.get("CI"):
            pytest.fail("chromedriver is not installed (tools/setup.sh with RR_WITH_BROWSER=1)")
        pytest.skip("no chromedriver (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:  # Debian's browser, named: selenium looks for nothing on the network
        opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,2000", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    yield driver
    driver.quit()


def _open(driver, path: Path) -> list[str]:
    """Open the report; the URLs the page requested."""
    driver.get_log("performance")  # drop what came before
    driver.get_log("browser")
    driver.get(path.as_uri())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the charts are drawn asynchronously
        if driver.execute_script(
                "return document.querySelectorAll('#pc svg, #history svg').length") >= 2:
            break
        time.sleep(0.2)
    events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    return [e["params"]["request"]["url"] for e in events
            if e["method"] == "Network.requestWillBeSent"]


def _size(el) -> tuple[float, float]:
    s = el.size
    return s["width"], s["height"]


@pytest.mark.slow
def test_report_in_a_browser(sweep, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    out = tmp_path / "report.html"
    res = rr("report", "-a", "-o", str(out), cwd=sweep["path"])
    assert f"rr: wrote {out}" in res.stderr
    requests = _open(browser, out)
    assert requests == [out.as_uri()]  # the file itself, nothing else
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    n_runs = len(rr("runs", "-a", "--json", cwd=sweep["path"]).stdout.splitlines())
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert len(rows) == n_runs == 8 + (len(sweep["other"]) - 4)

    def shown() -> list[str]:
        return [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#runs thead th")
                if th.is_displayed()]

    before = shown()
    assert {"commit", "branch", "image", "lr", "seed", "accuracy", "loss"} <= set(before)
    browser.find_element(By.ID, "only-changed").click()
    after = shown()
    assert "image" not in after and "branch" in after  # no run has an image; two branches
    assert {"commit", "lr", "accuracy"} <= set(after) and len(after) < len(before)
    browser.find_element(By.ID, "only-changed").click()
    assert shown() == before
    # sorting by a column: click accuracy twice (descending), the best run first
    header = browser.find_element(By.CSS_SELECTOR, '#runs th[data-col="accuracy"]')
    header.click()
    header.click()
    col = before.index("accuracy")
    first = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")[0]
    assert first.find_elements(By.TAG_NAME, "td")[col].text == "0.55"
    for sel in ("#pc svg", "#history svg", "#graph svg"):
        el = browser.find_element(By.CSS_SELECTOR, sel)
        w, h = _size(el)
        assert w > 100 and h > 100, (sel, w, h)
    # the lines of the parallel coordinates: one path per run with numeric params and metric
    lines = browser.find_elements(By.CSS_SELECTOR, "#pc svg path[aria-roledescription='line mark']")
    assert len(lines) == 5
    assert browser.find_elements(By.CSS_SELECTOR, "#graph svg g.node")
    verdicts = browser.find_element(By.ID, "verification").text
    assert "verified identical" in verdicts and "differs (1 file)" in verdicts
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("RR_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def _history(path: Path, n: int) -> None:
    """``n`` array-job records (lr x seed) with their metrics files, written by fast-import."""
    rr("create", str(path))
    dsid = git("config", "-f", ".datalad/config", "datalad.dataset.id", cwd=path).strip()
    chunks = []
    for i in range(n):
        lr, seed = [0.1, 0.01, 0.001, 0.0001][i % 4], i // 4
        record = {"chain": [], "cmd": f"python3 train.py {lr} {seed}", "dsid": dsid,
                  "exit": 0, "extra_inputs": [], "inputs": ["data.csv"],
                  "outputs": [f"out/{i}/metrics.json"], "pwd": ".",
                  "rr": {"array": {"id": "a1", "index": i,
                                   "params": {"lr": str(lr), "seed": str(seed)}},
                         "duration": 1.5}}
        msg = (f"[DATALAD RUNCMD] train lr={lr} seed={seed}\n\n"
               "=== Do not change lines below ===\n"
               f"{json.dumps(record, indent=1, sort_keys=True)}\n"
               "^^^ Do not change lines above ^^^\n").encode()
        blob = json.dumps({"accuracy": 0.5 + (i % 97) / 200, "loss": 1 / (i + 1)}).encode()
        start = b"from refs/heads/master^0\n" if i == 0 else b""
        chunks.append(b"commit refs/heads/master\n"
                      + f"committer rr <rr@example.invalid> {1700000000 + i} +0000\n".encode()
                      + f"data {len(msg)}\n".encode() + msg + b"\n" + start
                      + f"M 100644 inline out/{i}/metrics.json\ndata {len(blob)}\n".encode()
                      + blob + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(chunks),
                   check=True)
    git("reset", "-q", "--hard", "master", cwd=path)


@pytest.mark.slow
def test_thousand_runs_under_five_megabytes(tmp_path):
    ds = tmp_path / "big"
    _history(ds, 1000)
    out = tmp_path / "big.html"
    rr("report", "-o", str(out), cwd=ds)
    size = out.stat().st_size
    assert 900_000 < size < 5_000_000, size
    text = out.read_text(encoding="utf-8")
    assert text.count('<tr data-commit="') == 1000


@pytest.mark.slow
def test_self_contained_and_safe(ds, tmp_path):
    """No src/href to anything outside the file; a commit message with markup is text."""
    rr("run", "-m", "<script>alert(1)</script> & {{table}}", "-o", "x.json",
       "echo '{{\"accuracy\": 1}}' > x.json", cwd=ds)
    git("commit", "-q", "--allow-empty", "-m",
        "[DATALAD RUNCMD] broken\n\n=== Do not change lines below ===\n[1]\n"
        "^^^ Do not change lines above ^^^\n", cwd=ds)
    out = tmp_path / "r.html"
    rr("report", "-o", str(out), cwd=ds)
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.I)
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; {{table}}" in text
    assert "default-src 'none'" in text  # the page may load nothing
    assert "malformed run record" in text  # the bad record is shown with what it has


def test_errors_are_one_line(ds, tmp_path, monkeypatch):
    res = rr("report", "-o", str(tmp_path / "r.txt"), cwd=ds, check=False)
    assert res.returncode == 2
    assert "the report file must end in .html" in one_error_line(res.stderr)
    res = rr("report", "-o", str(tmp_path / "no" / "r.html"), cwd=ds, check=False)
    assert "cannot write the report" in one_error_line(res.stderr)
    out = tmp_path / "empty.html"
    rr("report", "-o", str(out), cwd=ds)  # no run commits: a report that says so
    assert "No run commits." in out.read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_without_vega_in_a_browser(sweep, browser, tmp_path, monkeypatch):  # noqa: F811
    """rr installed by a plain pip install has no Vega JavaScript: the report is written all
    the same, its charts drawn by the page's own SVG renderer, and it says so."""
    from selenium.webdriver.common.by import By

    from recorder import api

    monkeypatch.setattr(reportop, "ASSETS", tmp_path / "none")
    assert not reportop.javascript_installed()
    out = api.report(str(tmp_path / "plain.html"), all=True, dataset=sweep["path"])
    text = out.read_text(encoding="utf-8")
    assert "vegaEmbed(" in text and "function vegaEmbed" not in text  # no Vega inlined
    assert len(text) < 200_000
    assert _open(browser, out) == [out.as_uri()]
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert "charts drawn by rr's built-in renderer" in browser.find_element(
        By.CSS_SELECTOR, "p.meta").text
    # one line per run with numeric parameters and a metric, as Vega draws them
    assert len(browser.find_elements(By.CSS_SELECTOR, "#pc svg polyline")) == 5
    charts = browser.find_elements(By.CSS_SELECTOR, "#history svg")
    assert len(charts) == 2  # accuracy and loss
    for el in [browser.find_element(By.CSS_SELECTOR, "#pc svg"), *charts]:
        w, h = _size(el)
        assert w > 100 and h > 100
    dots = browser.find_elements(By.CSS_SELECTOR, "#history svg circle")
    assert len(dots) >= 2 * 5
    assert "accuracy" in browser.find_element(By.ID, "history").text


def test_parallel_coordinates_with_text_parameters():
    """A parameter with text values (model=sgd,rf) is an axis of evenly spaced categories;
    numbers are scaled between their ends; rows without every parameter are left out."""
    from recorder import runs as runsop

    t = runsop.RunsTable(
        ["commit", "model", "lr", "acc"],
        [{"commit": "a" * 40, "model": "sgd", "lr": 0.1, "acc": 0.5},
         {"commit": "b" * 40, "model": "rf", "lr": 0.3, "acc": 0.9},
         {"commit": "c" * 40, "model": "svm", "lr": 0.2, "acc": 0.7},
         {"commit": "d" * 40, "model": None, "lr": 0.2, "acc": 0.6}],
        {"commit": "run", "model": "param", "lr": "param", "acc": "metric"})
    pc = reportop._parallel(t)
    assert pc["pc_axes"] == ["model", "lr", "acc"] and pc["pc_metrics"] == ["acc"]
    norms = {(r["commit"], r["key"]): r["norm"] for r in pc["pc_rows"]}
    assert len(pc["pc_rows"]) == 9  # three runs, three axes each; the run without a model out
    assert norms[("aaaaaaaa", "model")] == 0.5 and norms[("bbbbbbbb", "model")] == 0.0
    assert norms[("bbbbbbbb", "lr")] == 1.0 and norms[("aaaaaaaa", "lr")] == 0.0
    assert norms[("cccccccc", "acc")] == pytest.approx(0.5)
    assert {(x["key"], x["label"]) for x in pc["pc_labels"]} >= {
        ("model", "rf"), ("model", "sgd"), ("model", "svm"), ("lr", "0.3"), ("lr", "0.1")}
    assert all(r["m0"] == {"a": 0.5, "b": 0.9, "c": 0.7}[r["commit"][0]] for r in pc["pc_rows"])
