"""Byte-compare rr's history views between two checkouts of rr on a varied dataset.

    python benchmarks/compare_views.py --baseline DIR [--keep PATH]

Builds one dataset whose history holds what the views must read alike: rr runs (durations
in notes, annexed metrics), a DataLad run, sidecar records (one whose file is missing),
malformed records of every kind, verification notes and odd notes, a merge and an octopus
merge, subjects that are not UTF-8 (raw bytes, and a latin-1 message git re-encodes),
metrics in annexed and in git files (JSON, CSV, a file that does not parse), a branch of
its own.  Then runs every history view with this checkout's ``recorder`` and with DIR's
first on the import path and compares stdout, stderr, the exit code and the files written,
byte by byte.  Prints each case that differs (and exits 1), else ``all N cases identical``.
Speed work on the views must leave this silent (issue #22: nothing user-visible changes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RR

_BELOW = "=== Do not change lines below ==="
_ABOVE = "^^^ Do not change lines above ^^^"


def _sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
        input: bytes | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, env=env, input=input,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _commit(ds: Path, message: bytes, *extra: str) -> None:
    """An empty commit with ``message`` (bytes as given)."""
    _sh(["git", *extra, "commit", "-q", "--allow-empty", "--cleanup=verbatim", "-F", "-"],
        ds, input=message)


def _record_message(subject: str, body: str) -> bytes:
    return f"[DATALAD RUNCMD] {subject}\n\n{_BELOW}\n{body}\n{_ABOVE}\n".encode()


def build(ds: Path) -> None:
    env = dict(os.environ, GIT_AUTHOR_DATE="2026-01-01T00:00:00+00:00",
               GIT_COMMITTER_DATE="2026-01-01T00:00:00+00:00")
    os.environ.update(GIT_AUTHOR_DATE=env["GIT_AUTHOR_DATE"],
                      GIT_COMMITTER_DATE=env["GIT_COMMITTER_DATE"])
    _sh([RR, "create", str(ds)], ds.parent)
    (ds / "data.csv").write_text("x,y\n1,2\n")
    _sh([RR, "save", "-m", "data"], ds)
    # rr runs: annexed metrics, durations in notes
    for i in range(3):
        _sh([RR, "run", "-m", f"train {i}", "-i", "data.csv", "-o", "metrics.json",
             f"printf '{{{{\"accuracy\": 0.{i}5, \"loss\": {{{{\"train\": {i}, "
             f"\"test\": [1, 2]}}}}}}}}' > metrics.json"], ds)
    # a metrics file in git, a CSV one, one that does not parse
    _sh(["git", "config", "-f", ".datalad/config", "--add", "rr.metrics.file", "metrics.json"], ds)
    _sh(["git", "config", "-f", ".datalad/config", "--add", "rr.metrics.file", "git.json"], ds)
    _sh(["git", "config", "-f", ".datalad/config", "--add", "rr.metrics.file", "m.csv"], ds)
    (ds / "git.json").write_text('{"f1": 0.5, "nested": {"a": [1, {"b": null}]}}')
    (ds / "m.csv").write_text("step,score\n1,0.5\n2,abc\n")
    _sh(["git", "add", ".datalad/config", "git.json", "m.csv"], ds)
    _sh(["git", "commit", "-q", "-m", "metrics in git"], ds)
    (ds / "git.json").write_text("{not json")
    _sh(["git", "commit", "-q", "-am", "[DATALAD RUNCMD] bad git metrics\n\n" + _BELOW + "\n"
         + json.dumps({"cmd": "x", "pwd": ".", "outputs": ["git.json"], "exit": 3},
                      indent=1, sort_keys=True) + "\n" + _ABOVE + "\n"], ds)
    # a sidecar record, and a DataLad run
    _sh([RR, "run", "-m", "sidecar run", "-o", "side.txt", "echo side > side.txt"], ds,
        env=dict(env, DATALAD_RUN_RECORD__SIDECAR="1"))
    _sh(["datalad", "run", "-m", "datalad's own", "-o", "dl.txt", "echo dl > dl.txt"], ds)
    # malformed records, each kind
    bodies = ["{not json", "[1, 2]", '"nothex!"', '"abcdef0123"',  # a sidecar id, no file
              json.dumps({"pwd": "."}), json.dumps({"cmd": 5}),
              json.dumps({"cmd": "ok", "exit": True}), json.dumps({"cmd": "ok", "inputs": [1]}),
              json.dumps({"cmd": "ok", "inputs": ["a" * 300]}),
              json.dumps({"cmd": "ok", "outputs": "x"}), json.dumps({"cmd": "ok", "chain": [3]}),
              json.dumps({"cmd": "ok", "rr": {"duration": "x"}}),
              json.dumps({"cmd": "ok", "rr": {"container": {"name": 3}}}),
              json.dumps({"cmd": "ok", "dsid": 4}), json.dumps({"cmd": "a\u0000b"}),
              json.dumps({"cmd": "ok", "pwd": None}), "{}  trailing", "  {\"cmd\": \"sp\"}  \n",
              json.dumps({"cmd": "no pwd", "exit": None, "inputs": None, "chain": None})]
    for i, body in enumerate(bodies):
        _commit(ds, _record_message(f"malformed {i}", body))
    _commit(ds, b"[DATALAD RUNCMD] no markers at all\n")
    _commit(ds, b"[DATALAD RUNCMD] two records\n\n" + _BELOW.encode() + b'\n{"cmd": "one"}\n'
            + _ABOVE.encode() + b"\n\n" + _BELOW.encode() + b'\n{"cmd": "two", "pwd": "."}\n'
            + _ABOVE.encode() + b"\n")
    # a record with everything rr adds, and a rerun chain
    rec = {"chain": ["0" * 40], "cmd": "python3 \"q\\u\" 'x' {inputs}", "dsid": "other",
           "exit": 2, "extra_inputs": [], "inputs": ["in put.csv", "b\\c\"d"],
           "outputs": ["out.json"], "pwd": ".",
           "rr": {"container": {"name": "img", "image": "i.sif"}, "duration": 1.5,
                  "explicit": True, "env": {"os": "linux", "vars": {"A": None}}}}
    _commit(ds, _record_message("everything", json.dumps(rec, indent=1, sort_keys=True)))
    rec2 = dict(rec, rr={"container": "plain-name"}, exit=None, dsid=None)
    _commit(ds, _record_message("container string", json.dumps(rec2, indent=1)))
    # subjects that are not UTF-8: raw bytes, and latin-1 that git re-encodes
    _commit(ds, _record_message("x", json.dumps({"cmd": "c", "pwd": "."}))
            .replace(b"] x", b"] caf\xe9 \xff raw"))
    _commit(ds, "[DATALAD RUNCMD] latin é\n\n{}\n{}\n{}\n".format(
        _BELOW, json.dumps({"cmd": "é", "pwd": "."}), _ABOVE).encode("latin-1"),
        "-c", "i18n.commitEncoding=latin1")
    _commit(ds, b"plain commit \xfe\n\nbody\n")
    # notes: verdicts, odd durations, a note on a non-run commit
    head = subprocess.run(["git", "rev-parse", "HEAD~3", "HEAD~4", "HEAD~5", "HEAD"], cwd=ds,
                          capture_output=True, text=True, check=True).stdout.split()
    verdicts = [{"verdict": "identical", "date": "2026-01-02", "host": "a"},
                {"verdict": "differs", "date": "2026-01-01", "host": "b",
                 "files": [{"status": "differs"}, {"status": "same"}, "x"]}]
    _sh(["git", "notes", "--ref=rr-verify", "add", "-m",
         "\n".join(json.dumps(v) for v in verdicts) + "\nnot json", head[0]], ds)
    _sh(["git", "notes", "--ref=rr-verify", "add", "-m", '{"verdict": "failed"}', head[1]], ds)
    _sh(["git", "notes", "--ref=rr-verify", "add", "-m", '{"verdict": "odd"}', head[2]], ds)
    _sh(["git", "notes", "--ref=rr", "add", "-f", "-m", '{"duration": 1e999}\n{"duration": 2}',
         head[1]], ds)
    _sh(["git", "notes", "--ref=rr", "add", "-f", "-m", '[1]\n{"duration": -1}', head[2]], ds)
    _sh(["git", "notes", "--ref=rr", "add", "-f", "-m", '{"duration": 7}', head[3]], ds)
    # a branch with its own runs, merged back; an octopus merge
    _sh(["git", "checkout", "-q", "-b", "side"], ds)
    _sh([RR, "run", "-m", "on side", "-o", "metrics.json",
         "printf '{{\"accuracy\": 0.9}}' > metrics.json"], ds)
    _sh(["git", "checkout", "-q", "-"], ds)
    _sh(["git", "checkout", "-q", "-b", "other"], ds)
    _commit(ds, _record_message("on other", json.dumps({"cmd": "true", "pwd": "."})))
    _sh(["git", "checkout", "-q", "-"], ds)
    _sh(["git", "merge", "-q", "--no-ff", "-m", "merge side", "side"], ds)
    _sh(["git", "tag", "v1"], ds)
    _sh(["git", "checkout", "-q", "-b", "o1", "HEAD~1"], ds)
    _commit(ds, b"o1\n")
    _sh(["git", "checkout", "-q", "-b", "o2", "HEAD~1"], ds)
    _commit(ds, b"o2\n")
    _sh(["git", "checkout", "-q", "-"], ds)
    _sh(["git", "checkout", "-q", "master"], ds)
    _sh(["git", "merge", "-q", "--no-ff", "-m", "[DATALAD RUNCMD] octopus\n\n" + _BELOW
         + '\n{"cmd": "oct", "pwd": "."}\n' + _ABOVE + "\n", "o1", "o2"], ds)
    _sh([RR, "run", "-m", "last", "-o", "metrics.json",
         "printf '{{\"accuracy\": 1, \"loss\": {{\"train\": 0}}}}' > metrics.json"], ds)
    _sh(["git", "tag", "v2"], ds)


CASES: list[list[str]] = [
    ["log"], ["log", "--json"], ["log", "--csv"], ["log", "v1..HEAD"], ["log", "nosuch"],
    ["log", "HEAD~3..nosuch"], ["log", "side"],
    ["rerun", "--report", "--since="], ["rerun", "--report"], ["rerun", "--report", "v1"],
    ["rerun", "--report", "--since=v1"], ["rerun", "--report", "--since=", "side"],
    ["rerun", "--script", "-", "--since="], ["rerun", "--script", "-", "v1..HEAD"],
    ["metrics", "show", "-A"], ["metrics", "show", "-A", "--json"],
    ["metrics", "show", "-A", "metrics.json"], ["metrics", "show", "-A", "git.json", "--csv"],
    ["metrics", "show", "-T", "-a"], ["metrics", "show", "-A", "nosuch.json"],
    ["metrics", "show", "-A", "--per-file"], ["metrics", "show", "-r", "v1", "-r", "HEAD~2"],
    ["metrics", "show", "-A", "metrics.json", "git.json", "--md"],
    ["metrics", "show", "-A", "*.json", "--csv"], ["metrics", "show", "-A", "m.csv", "--json"],
    ["graph", "-o", "{out}/g.dot"], ["graph", "v1..HEAD", "-o", "{out}/g2.dot"],
    ["runs"], ["runs", "--json"], ["runs", "-a", "--csv"], ["lineage", "metrics.json"],
    ["lineage", "metrics.json", "--json"], ["lineage", "side.txt", "--forward"],
    ["report", "-o", "{out}/r.html"], ["report", "-a", "-o", "{out}/r2.html"],
]


def _run(ds: Path, args: list[str], rr_path: str, out: Path) -> tuple:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=rr_path, COLUMNS="100", NO_COLOR="1")
    done = subprocess.run([RR, *[a.format(out=out) for a in args]], cwd=ds,
                          capture_output=True, env=env)
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    # the paths of the two output directories differ only in their name
    return (done.returncode, done.stdout.replace(str(out).encode(), b"OUT"),
            done.stderr.replace(str(out).encode(), b"OUT"), files)


def _with_assets(baseline: Path, here: Path, tmp: Path) -> str:
    """The baseline to import: itself, or when it lacks the report's JavaScript (gitignored,
    recorder/assets/) and this checkout has it, a copy of its ``recorder`` with this one's
    (the report inlines them: without, it differs in more than what is compared)."""
    assets = here / "recorder" / "assets"
    if (baseline / "recorder" / "assets").exists() or not assets.exists():
        return str(baseline)
    copy = tmp / "baseline"
    shutil.copytree(baseline / "recorder", copy / "recorder",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(assets, copy / "recorder" / "assets")
    return str(copy)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", required=True, help="a checkout of rr (e.g. /work/base2)")
    ap.add_argument("--keep", help="build the dataset here and keep it")
    args = ap.parse_args()
    here = str(Path(__file__).resolve().parent.parent)
    tmp = Path(tempfile.mkdtemp(prefix="rr-compare-views-"))
    try:
        baseline = _with_assets(Path(args.baseline), Path(here), tmp)
        ds = Path(args.keep).absolute() if args.keep else tmp / "ds"
        if not ds.exists():
            build(ds)
        bad = 0
        for case in CASES:
            a = _run(ds, case, baseline, tmp / "out")
            b = _run(ds, case, here, tmp / "out")
            if a != b:
                bad += 1
                print(f"DIFFERS: rr {' '.join(case)}")
                for name, x, y in zip(("exit", "stdout", "stderr", "files"), a, b):
                    if x != y:
                        print(f"  {name}:\n    before {str(x)[:600]}\n    after  {str(y)[:600]}")
        print(f"{len(CASES) - bad} of {len(CASES)} cases identical")
        sys.exit(1 if bad else 0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
