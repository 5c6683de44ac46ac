"""History views stream (issue #22 items 3, 4 and 6): one reader, memory flat in the length
of the history, ``rr --help`` without typer.  Counts and sizes, never times."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recorder import cli, gitrepo

from .conftest import git, rr


def _history(ds: Path, n: int) -> None:
    """``n`` run commits, each with a metrics file, written with one git fast-import."""
    chunks = []
    for i in range(n):
        record = {"chain": [], "cmd": f"echo {i}", "exit": 0, "extra_inputs": [],
                  "inputs": ["in.csv"], "outputs": ["metrics.json"], "pwd": "."}
        msg = (f"[DATALAD RUNCMD] step {i}\n\n=== Do not change lines below ===\n"
               f"{json.dumps(record, indent=1, sort_keys=True)}\n"
               "^^^ Do not change lines above ^^^\n").encode()
        blob = json.dumps({"accuracy": i / n}).encode()
        start = b"from refs/heads/master^0\n" if i == 0 else b""
        chunks.append(b"commit refs/heads/master\n"
                      + f"committer rr <rr@example.invalid> {1700000000 + i} +0000\n".encode()
                      + f"data {len(msg)}\n".encode() + msg + b"\n" + start
                      + f"M 100644 inline metrics.json\ndata {len(blob)}\n".encode() + blob
                      + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=ds, input=b"".join(chunks),
                   check=True)
    git("reset", "-q", "--hard", "master", cwd=ds)


def test_one_reader_streams_commit_by_commit(ds):
    """read_log is a generator over one git log: the first commit comes before the rest is
    asked for, and the three older readers are lists of it."""
    _history(ds, 30)
    stream = gitrepo.read_log(ds, ["HEAD"])
    first = next(stream)
    assert first.message.startswith("[DATALAD RUNCMD] step 29")
    assert len(list(stream)) == 30  # 29 more and the dataset's first commit
    assert [e.sha for e in gitrepo.iter_log(ds, ["HEAD"])] == \
        [e.sha for e in gitrepo.read_log(ds, ["HEAD"], reverse=True, topo=True)]
    runs = gitrepo.iter_run_log(ds, ["HEAD"])
    assert len(runs) == 30 and {e.source for e in runs} == {"HEAD"}
    raw = gitrepo.iter_log_raw(ds, ["HEAD"])
    assert raw[0].changes[0][0] == "metrics.json" and raw[0].email == "rr@example.invalid"


def test_read_blobs_in_order_missing_as_none(ds):
    _history(ds, 5)
    specs = ["HEAD:metrics.json", "HEAD:nosuch", "HEAD~4:metrics.json"]
    got = list(gitrepo.read_blobs(ds, specs))
    assert got[0] == ("blob", b'{"accuracy": 0.8}') and got[1] is None
    assert got[2] == ("blob", b'{"accuracy": 0.0}')


_PEAK = ("import sys, tracemalloc\n"
         "tracemalloc.start()\n"
         "sys.argv = ['rr', *sys.argv[1:]]\n"
         "from recorder.cli import main\n"
         "try:\n"
         "    main()\n"
         "finally:\n"
         "    sys.stderr.write(f'PEAK {tracemalloc.get_traced_memory()[1]}\\n')\n")


def _peak(ds: Path, *args: str) -> int:
    """The most memory Python held at once running ``rr ARGS`` (tracemalloc: the
    allocations themselves, not the pages of the process that started it)."""
    done = subprocess.run([sys.executable, "-c", _PEAK, *args], cwd=ds, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.rsplit("PEAK ", 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize("args", [["log"], ["rerun", "--report", "--since="]])
def test_memory_is_flat_in_the_length_of_the_history(tmp_path, _template, args):
    """rr log and rr rerun --report hold a commit at a time: ten times the history, about
    the same peak (the whole history held costs ~2 kB a commit, 12 MB here)."""
    import shutil

    sizes = {}
    for n in (600, 6000):
        ds = tmp_path / f"ds{n}"
        shutil.copytree(_template, ds, symlinks=True)
        _history(ds, n)
        sizes[n] = _peak(ds, *args)
    assert sizes[6000] - sizes[600] < 3_000_000, sizes


def _cache_files() -> list[Path]:
    return sorted((Path(cli.__file__).parent / "__pycache__").glob("rr-help-*.txt"))


def test_rr_help_from_its_cached_text_loads_no_typer(tmp_path):
    """The second ``rr --help`` prints the text typer rendered the first time, without
    importing typer; a cache that no longer matches the sources is not used."""
    (Path(cli.__file__).parent / "__pycache__").mkdir(exist_ok=True)
    env = dict(os.environ, COLUMNS="100")
    first = rr("--help", env={"COLUMNS": "100"}).stdout
    code = ("import atexit, sys\n"
            "atexit.register(lambda: sys.stderr.write('TYPER ' + str('typer' in sys.modules)))\n"
            "sys.argv = ['rr', '--help']\n"
            "from recorder.cli import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0 and done.stdout == first
    assert done.stderr.endswith("TYPER False"), done.stderr
    # a stale text (other sources, another typer) is rendered anew
    for path in _cache_files():
        head, rest = path.read_text(encoding="utf-8").split("\n", 1)
        path.write_text("stale\n" + rest.replace("Commands:", "Stale:"), encoding="utf-8")
    again = rr("--help", env={"COLUMNS": "100"}).stdout
    assert again == first and "Stale:" not in again
