"""Every configuration key rr reads, in one registry, and the one way values are layered.

Layers, lowest first, as DataLad's ConfigManager merges them:

1. the committed ``.datalad/config`` (DataLad's "branch" scope),
2. git's own scopes (system, global, local, worktree, ``git -c`` / ``GIT_CONFIG_*``),
3. the environment: ``DATALAD_CONFIG_OVERRIDES_JSON`` (a JSON object ``{key: value or
   [values]}``), then every ``DATALAD_*`` variable, named as DataLad names them: ``__``
   becomes ``-``, then ``_`` becomes ``.``, all lower case
   (``DATALAD_RUN_RECORD__SIDECAR=1`` -> ``datalad.run.record-sidecar``).  A key whose
   subsection holds ``_`` (``datalad.procedures.my_proc.help``) cannot be reached by a
   variable name; ``DATALAD_CONFIG_OVERRIDES_JSON`` can set it.

The environment is the user's own, like git's scopes: values that must never come from a
cloned dataset (``scope="git"`` below) are read from layers 2 and 3 only.  Reading the
environment costs no process: ``rr run`` starts exactly the git processes it did before.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import RecorderError

ENV_PREFIX = "DATALAD_"
OVERRIDES_JSON = "DATALAD_CONFIG_OVERRIDES_JSON"

_TRUE = ("1", "true", "yes", "on", "enable", "")
_FALSE = ("0", "false", "no", "off", "disable")


class Key(NamedTuple):  # a NamedTuple: cheaper than a dataclass at start-up
    name: str      # "<NAME>" stands for a part the user chooses
    type: str      # bool | int | str | list
    default: Any
    doc: str
    scope: str = "any"  # any: committed .datalad/config too; git: git scopes + environment only

    @property
    def env(self) -> str | None:
        """The DATALAD_* variable that sets this key, if one can (see :func:`env_var`)."""
        return env_var(self.name) if "<" not in self.name else None


REGISTRY: dict[str, Key] = {}


def _key(name: str, type_: str, default: Any, doc: str, scope: str = "any") -> str:
    REGISTRY[name] = Key(name, type_, default, doc, scope)
    return name


# --- dataset -----------------------------------------------------------------------------
DATASET_ID = _key("datalad.dataset.id", "str", None,
                  "The dataset's UUID, committed in .datalad/config by rr create.")
ANNEX_VERSION = _key("annex.version", "str", None,
                     "Set by git-annex; its presence marks an annexed dataset.")
CORE_HOOKSPATH = _key("core.hooksPath", "str", None,
                      "git's hook directory, honoured when rr commits.")
COMMIT_GPGSIGN = _key("commit.gpgSign", "bool", False,
                      "git's commit signing: when set, rr commits through git commit.", "git")
COMMIT_CLEANUP = _key("commit.cleanup", "str", None,
                      "git's message clean-up mode: when set (other than whitespace/default), "
                      "rr commits through git commit.", "git")
COMMIT_ENCODING = _key("i18n.commitEncoding", "str", None,
                       "git's message encoding: when set, rr commits through git commit.", "git")
# sections of git's housekeeping settings: with none set, rr's plumbing commit asks for git's
# automatic maintenance only when git's default thresholds may be reached (gitrepo/commit.py)
MAINTENANCE_SECTIONS = ("gc.", "maintenance.")
MAINTENANCE_AUTO = "maintenance.auto"  # git's: false, and git commit starts no maintenance
# --- run ---------------------------------------------------------------------------------
RUN_RECORD_DIRECTORY = _key("datalad.run.record-directory", "str", ".datalad/runinfo",
                            "Where sidecar run records are written (inside the dataset).")
RUN_RECORD_SIDECAR = _key("datalad.run.record-sidecar", "bool", False,
                          "Write run records to a sidecar file instead of the message.")
RUN_DIRTY_COMMITTED = _key("datalad.run.dirty-committed", "str", "error",
                           "An --explicit run whose command committed undeclared files: "
                           "'error' refuses, anything else allows.")
RUN_ENV_RECORD = _key("rr.run.env-record", "list", None,
                      "Environment variables whose values every run records (names, "
                      "whitespace- or comma-separated; repeatable); also rr run --env-record.")
RUN_RECORD_ENVIRONMENT = _key("rr.run.record-environment", "bool", True,
                              "Runs record the machine (OS, arch, Python, rr, git-annex, GPU) "
                              "under rr.env and the command's wall/CPU time and peak memory "
                              "under rr.resources.")
RUN_LOG = _key("rr.run.log", "bool", False,
               "Every rr run keeps its command's output as a log file, as with --log.")
RUN_CACHE = _key("rr.run.cache", "bool", True,
                 "The run-cache: rr run and rr rerun restore the outputs of an earlier run with "
                 "the same key instead of executing (false: always execute).")
RUN_CACHE_CODE = _key("rr.run.cache-code", "list", None,
                      "Code paths every run reads (dataset-relative, whitespace- or comma-"
                      "separated; repeatable): part of the run-cache key, and what makes a run "
                      "without declared inputs cacheable.")
RUN_SUBSTITUTIONS = _key("datalad.run.substitutions.<NAME>", "list", None,
                         "A custom {NAME} placeholder for run commands, inputs, outputs.")
# --- procedures --------------------------------------------------------------------------
USER_PROCEDURES = _key("datalad.locations.user-procedures", "str",
                       "$XDG_CONFIG_HOME/datalad/procedures",
                       "The user's procedure directory.", scope="git")
SYSTEM_PROCEDURES = _key("datalad.locations.system-procedures", "str",
                         "/etc/xdg/datalad/procedures",
                         "The system's procedure directory.", scope="git")
EXTRA_PROCEDURES = _key("datalad.locations.extra-procedures", "list", None,
                        "More procedure directories (after system, before the dataset).",
                        scope="git")
DATASET_PROCEDURES = _key("datalad.locations.dataset-procedures", "list",
                          ".datalad/procedures",
                          "Procedure directories inside a dataset (also used when it is an "
                          "installed subdataset).")
PROCEDURE_CALL_FORMAT = _key("datalad.procedures.<NAME>.call-format", "str", None,
                             "How procedure NAME is called: {script}, {ds}, {args}; "
                             "{{ and }} for braces.")
PROCEDURE_HELP = _key("datalad.procedures.<NAME>.help", "str", None,
                      "Help text shown by rr run-procedure --help-proc NAME.")
# --- containers --------------------------------------------------------------------------
CONTAINERS_SECTION = "datalad.containers"  # datalad.containers.<NAME>.*: one section a container
CONTAINERS_LOCATION = _key("datalad.containers.location", "str", ".datalad/environments",
                           "Where containers-add puts images (inside the dataset).")
CONTAINER_IMAGE = _key("datalad.containers.<NAME>.image", "str", None,
                       "Image path of container NAME, relative to the dataset.")
CONTAINER_CMDEXEC = _key("datalad.containers.<NAME>.cmdexec", "str", None,
                         "Call format of container NAME ({img}, {cmd}, {img_dspath}...).")
CONTAINER_EXTRA_INPUT = _key("datalad.containers.<NAME>.extra-input", "list", None,
                             "Extra inputs fetched before container NAME runs.")
CONTAINER_RUNTIME_FLAGS = _key("datalad.containers.<NAME>.runtime-flags", "str", None,
                               "Machine-specific engine flags for container NAME.",
                               scope="git")
# --- sharing, metrics --------------------------------------------------------------------
REMOTE_PUBLISH_DEPENDS = _key("remote.<NAME>.datalad-publish-depends", "list", None,
                              "Siblings pushed before sibling NAME.", scope="git")
REMOTE_ANNEX_IGNORE = _key("remote.<NAME>.annex-ignore", "bool", False,
                           "git-annex does not use sibling NAME.", scope="git")
CLONE_RECKLESS = _key("datalad.clone.reckless", "str", None,
                      "How this dataset was cloned (rr clone --reckless auto|ephemeral|"
                      "shared-MODE), set in .git/config; subdatasets installed in it later "
                      "are set up the same way (as DataLad).", scope="git")
METRICS_FILE = _key("rr.metrics.file", "list", None,
                    "Metrics files rr metrics reads (committed in .datalad/config).")

# --- export ro-crate ------------------------------------------------------------------------
EXPORT_PUBLISHER = _key("rr.export.publisher", "str", None,
                        "The organisation named as publisher of rr export ro-crate's crate "
                        "(default: the dataset).")
EXPORT_PUBLISHER_URL = _key("rr.export.publisher-url", "str", None,
                            "Its web address (default: the dataset's urn:uuid).")
EXPORT_LICENSE = _key("rr.export.license", "str", None,
                      "The crate's license, a URL (e.g. https://spdx.org/licenses/CC-BY-4.0); "
                      "default: an entity saying it is not recorded.")

# --- keys rr writes or passes on (not read through the registry) ---------------------------
ANNEX_UUID = "annex.uuid"  # present once git-annex is initialised in a repository
ANNEX_DOTFILES_ON = "annex.dotfiles=true"  # a `git annex -c` setting: dotfiles are annexed too
ANNEX_QUEUE_EACH_FILE = "annex.queuesize=1"  # `git annex -c`: index updated per file (batch)
ANNEX_ALWAYSCOMMIT = "annex.alwayscommit"  # set to false for a job's git-annex (the driver commits)
ANNEX_HARDLINK = "annex.hardlink"  # clone --reckless auto: content hardlinked from a local origin
ANNEX_PRIVATE = "annex.private"  # clone --reckless ephemeral: this repository never recorded
RR_ARCHIVES_REMOTE = "rr-archives"  # the special remote that serves files from archives


def remote_key(name: str, var: str) -> str:
    """``remote.NAME.VAR``: ``remote_key("origin", "datalad-publish-depends")``."""
    return f"remote.{name}.{var}"


def submodule_key(name: str, var: str) -> str:
    """``submodule.NAME.VAR`` (in .gitmodules or .git/config)."""
    return f"submodule.{name}.{var}"


def submodule_section(name: str) -> str:
    return f"submodule.{name}"


def branch_key(branch: str, var: str) -> str:
    """``branch.BRANCH.VAR`` (``remote``, ``merge``: what a branch tracks)."""
    return f"branch.{branch}.{var}"


def key_parts(key: str, section: str) -> tuple[str, str] | None:
    """(NAME, VAR) of a ``SECTION.NAME.VAR`` key (``section`` one of remote, submodule,
    branch), or None when ``key`` is not in that section."""
    head = f"{section}."
    if not key.startswith(head):
        return None
    name, dot, var = key[len(head):].rpartition(".")
    return (name, var) if dot else None


def prefix(template: str) -> str:
    """The part of a templated key before ``<NAME>``: ``datalad.run.substitutions.``."""
    return template.split("<NAME>", 1)[0]


def named(template: str, name: str) -> str:
    """A templated key for one NAME: ``named(PROCEDURE_HELP, "x")`` -> ``...procedures.x.help``."""
    return template.replace("<NAME>", name)


def env_var(key: str) -> str | None:
    """The DATALAD_* variable DataLad maps to ``key``, or None when no name maps to it."""
    if not key.lower().startswith("datalad.") or "_" in key:
        return None
    name = key.upper().replace("-", "__").replace(".", "_")
    return name if key_from_env(name) == key.lower() else None


def key_from_env(name: str) -> str:
    """DataLad's mapping of an environment variable name to a key."""
    return name.replace("__", "-").replace("_", ".").lower()


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The environment layer: DATALAD_CONFIG_OVERRIDES_JSON, then DATALAD_* variables."""
    environ = os.environ if environ is None else environ
    result: dict[str, list[str]] = {}
    raw = environ.get(OVERRIDES_JSON)
    if raw:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            sys.stderr.write(f"rr: warning: ignoring {OVERRIDES_JSON}: {exc}\n")
            data = {}
        for key, value in data.items():
            values = value if isinstance(value, list) else [value]
            result[normalize(str(key))] = ["" if v is None else _text(v) for v in values]
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and name != OVERRIDES_JSON:
            result[key_from_env(name)] = [value]
    return result


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalize(key: str) -> str:
    """git config keys: section and variable are case-insensitive, a subsection is not."""
    first, _, rest = key.partition(".")
    if not rest:
        return key.lower()
    middle, _, last = rest.rpartition(".")
    if not middle:
        return f"{first.lower()}.{last.lower()}"
    return f"{first.lower()}.{middle}.{last.lower()}"


def to_bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return default


def lookup(key: str) -> Key | None:
    """The registry entry for ``key`` (templated entries match any NAME)."""
    entry = REGISTRY.get(key)
    if entry is not None:
        return entry
    norm = normalize(key)
    for candidate in REGISTRY.values():
        if "<NAME>" not in candidate.name:
            continue
        head, _, tail = candidate.name.partition("<NAME>")
        if norm.startswith(normalize(head + "x")[:-1]) and norm.endswith(tail.lower()) and \
                len(norm) > len(head) + len(tail):
            return candidate
    return None


def typed(key: str, values: list[str] | None) -> Any:
    """``values`` (as stored, last one wins) as the registry's type for ``key``, or its
    default when unset."""
    entry = lookup(key)
    kind = entry.type if entry else "str"
    default = entry.default if entry else None
    if not values:
        if kind == "list":
            return [default] if isinstance(default, str) else list(default or [])
        return default
    if kind == "list":
        return list(values)
    last = values[-1]
    if kind == "bool":
        return to_bool(last, bool(default))
    if kind == "int":
        try:
            return int(last)
        except ValueError:
            raise RecorderError(f"{key} must be a whole number, not {last!r}") from None
    return last


def markdown_table() -> str:
    """The README's configuration table, generated from the registry."""
    lines = ["| Key | Type | Default | Environment | Meaning |",
             "| --- | --- | --- | --- | --- |"]
    for k in REGISTRY.values():
        default = "" if k.default is None else f"`{k.default}`"
        env = f"`{k.env}`" if k.env else ""
        scope = " Not read from the committed .datalad/config." if k.scope == "git" else ""
        lines.append(f"| `{k.name}` | {k.type} | {default} | {env} | {k.doc}{scope} |")
    return "\n".join(lines) + "\n"
