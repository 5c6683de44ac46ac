"""One config layer: the key registry, DataLad's environment overrides, typed values."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

from recorder import config as cfgkeys
from recorder import record as records
from recorder.dataset import Config, Dataset
from recorder.errors import RecorderError
from tests.conftest import git, last_message, needs_datalad, rr

ROOT = Path(__file__).resolve().parent.parent


def test_readme_table_is_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- config-table:[^\n]*-->\n(.*?)<!-- /config-table -->", readme, re.S)
    assert match, "README lacks the generated configuration table"
    assert match.group(1) == cfgkeys.markdown_table(), \
        "README config table is stale: regenerate it from recorder/config.py"


# a string or f-string that starts like a config key rr reads, in any case
KEY_START = re.compile(r"^(datalad|rr|remote|annex|submodule)\.", re.I)
# strings of that shape that are no config key
NOT_KEYS = {"rr.lock": "lock.LOCK_FILE, a file name in .git/",
            "rr.container.image": "a field of the run record (record.py)",
            "rr.log": "a field of the run record (record.py)"}


def key_literals(source: str, rel: str) -> list[str]:
    """Config keys spelled in ``source`` (the module ``rel``): every string constant and the
    literal start of every f-string, docstrings included."""
    if rel == "recorder/config.py":
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        text = None
        if isinstance(node, ast.JoinedStr):
            first = node.values[0] if node.values else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                text = first.value
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        if text is not None and KEY_START.match(text) and text not in NOT_KEYS:
            found.append(f"{rel}:{node.lineno}: {text!r}")
    return found


def test_no_key_strings_outside_the_registry():
    """Keys rr reads are spelled once, in recorder/config.py."""
    offenders = []
    for path in sorted((ROOT / "recorder").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        offenders += key_literals(path.read_text(encoding="utf-8"), rel)
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("source", [
    'ds.config.get("datalad.run.record-sidecar")',
    'key = f"remote.{name}.datalad-publish-depends"',
    "cfg.get_all('rr.metrics.file')",
    'gitrepo.config_get(root, "annex.uuid")',
    'gitrepo.config_set(root, f"submodule.{rel}.url", url)',
    'if key.startswith("remote.") and key.endswith(".annex-rsyncurl"): pass',
    'PREFIX = "DataLad.containers."',
    'def f():\n    """datalad.x.y is read here."""',
])
def test_the_key_check_finds_a_planted_literal(source):
    assert key_literals(source, "recorder/x.py")


def test_the_key_check_lets_the_registry_and_prose_pass():
    assert not key_literals('X = _key("datalad.dataset.id", "str", None, "")',
                            "recorder/config.py")
    assert not key_literals('LOCK_FILE = "rr.lock"\nmsg = "see datalad.run.x"\n'
                            'k = cfgkeys.remote_key(name, "annex-ignore")', "recorder/x.py")


@pytest.mark.parametrize("var, key", [
    ("DATALAD_RUN_RECORD__SIDECAR", "datalad.run.record-sidecar"),
    ("DATALAD_LOCATIONS_EXTRA__PROCEDURES", "datalad.locations.extra-procedures"),
    ("DATALAD_PROCEDURES_PRINT_ARGS_CALL__FORMAT", "datalad.procedures.print.args.call-format"),
    ("DATALAD_DATASET_ID", "datalad.dataset.id"),
])
def test_env_names_map_as_datalad_maps_them(var, key):
    assert cfgkeys.key_from_env(var) == key
    assert cfgkeys.env_overrides({var: "v", "OTHER": "x"}) == {key: ["v"]}


@needs_datalad
def test_env_layer_matches_datalad(monkeypatch):
    """Compared with DataLad's own code, not with a reading of it."""
    from datalad.config import _update_from_env  # noqa: PLC0415  heavy, and optional

    env = {"DATALAD_RUN_RECORD__SIDECAR": "1", "DATALAD_X_Y__Z_W": "2",
           "DATALAD_CONFIG_OVERRIDES_JSON": json.dumps({"datalad.procedures.a_b.help": "h",
                                                        "datalad.run.record-sidecar": "0"})}
    for name in [k for k in os.environ if k.startswith("DATALAD_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    theirs: dict = {}
    _update_from_env(theirs)
    ours = cfgkeys.env_overrides()
    assert {k: v[-1] for k, v in ours.items()} == theirs
    for key in cfgkeys.REGISTRY:  # every variable the table names reaches its key
        var = cfgkeys.REGISTRY[key].env
        if var:
            assert cfgkeys.key_from_env(var) == key.lower()


def test_layers_committed_then_git_then_environment():
    flags = cfgkeys.named(cfgkeys.CONTAINER_RUNTIME_FLAGS, "img")
    committed = {"datalad.run.record-sidecar": ["true"], flags: ["--privileged"],
                 "datalad.run.dirty-committed": ["ok"]}
    scoped = {"datalad.run.record-sidecar": ["false"]}
    cfg = Config.layered(committed, scoped, env={})
    assert cfg.typed(cfgkeys.RUN_RECORD_SIDECAR) is False
    assert cfg.typed(cfgkeys.RUN_DIRTY_COMMITTED) == "ok"
    # machine-specific keys never come from the committed file...
    assert cfg.get_local(flags) is None and cfg.committed_only(flags)
    assert cfg.typed(flags) is None
    # ...but the environment is the user's own and applies
    env = cfgkeys.env_overrides({"DATALAD_RUN_RECORD__SIDECAR": "yes",
                                 "DATALAD_CONFIG_OVERRIDES_JSON": json.dumps({flags: "-v"})})
    cfg = Config.layered(committed, scoped, env=env)
    assert cfg.typed(cfgkeys.RUN_RECORD_SIDECAR) is True
    assert cfg.get_local(flags) == "-v" and not cfg.committed_only(flags)


def test_typed_defaults_and_errors():
    cfg = Config.layered({}, {}, env={})
    assert cfg.typed(cfgkeys.RUN_RECORD_SIDECAR) is False
    assert cfg.typed(cfgkeys.RUN_RECORD_DIRECTORY) == ".datalad/runinfo"
    assert cfg.typed(cfgkeys.DATASET_PROCEDURES) == [".datalad/procedures"]
    assert cfg.typed(cfgkeys.EXTRA_PROCEDURES) == []
    cfgkeys.REGISTRY["rr.test.int"] = cfgkeys.Key("rr.test.int", "int", 3, "test")
    try:
        assert Config.layered({}, {}, env={}).typed("rr.test.int") == 3
        bad = Config.layered({}, {"rr.test.int": ["many"]}, env={})
        with pytest.raises(RecorderError, match="whole number"):
            bad.typed("rr.test.int")
    finally:
        del cfgkeys.REGISTRY["rr.test.int"]


def test_dataset_config_reads_the_environment(ds, monkeypatch):
    git("config", "-f", ".datalad/config", "datalad.run.record-sidecar", "false", cwd=ds)
    monkeypatch.setenv("DATALAD_RUN_RECORD__SIDECAR", "1")
    assert Dataset(ds).config.typed(cfgkeys.RUN_RECORD_SIDECAR) is True
    monkeypatch.setenv("DATALAD_CONFIG_OVERRIDES_JSON", "{not json")
    assert Dataset(ds).config.get(cfgkeys.RUN_RECORD_SIDECAR) == "1"


def test_rr_run_honours_datalad_env_override(ds):
    git("config", "datalad.run.record-sidecar", "false", cwd=ds)
    rr("run", "-o", "s.txt", "echo side > s.txt", cwd=ds,
       env={"DATALAD_RUN_RECORD__SIDECAR": "1"})
    parsed = records.parse_message(last_message(ds))
    assert parsed.record is None  # the record went to a sidecar file
    assert (ds / ".datalad" / "runinfo" / parsed.record_id).exists()
    proc = rr("run", "echo x > t.txt", cwd=ds,
              env={"DATALAD_CONFIG_OVERRIDES_JSON": "[1"})
    assert "rr: warning: ignoring DATALAD_CONFIG_OVERRIDES_JSON" in proc.stderr
    assert records.parse_message(last_message(ds)).record is not None
