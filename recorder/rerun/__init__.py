"""Replaying run records: plan a revision range, then run, pick, skip or merge each commit.

The plan is DataLad's (spec §3): leading non-run commits are the base, run commits are
re-executed on top of the current head (or of ``--onto``/``--branch``), other commits are
skipped when already reachable and cherry-picked otherwise, merges are recreated.  A replay
that stops (a command fails differently than recorded, a cherry-pick conflicts) writes its
position to ``.git/rr-rerun.json`` so that ``rr rerun --continue`` resumes it.

- ``state``: steps, step results, the stopped replay's state file, the stop-and-resume hint;
- ``plan``: the plan, ``--report``, ``--script`` (read-only);
- ``steps``: the base a step is replayed on, the run it re-executes, the files it touches;
- ``replay``: the serial driver and the run/pick/merge steps, ``--continue``, ``--abort``;
- ``batch``: an array's consecutive records in parallel on ``recorder.jobs`` (``-J``);
- ``verify``: ``--verify``, each record re-executed as a job at its parent and compared.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .plan import build_plan, report, script, write_script
from .state import Plan, Step, has_stopped_replay, replay_totals, step_result

if TYPE_CHECKING:
    from . import verify
    from .replay import abort, rerun

# loaded when first used: --report and --script read the plan only (start-up time)
_LAZY = {"abort": "replay", "rerun": "replay", "verify": "verify"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
    return module if name == _LAZY[name] else getattr(module, name)

__all__ = ["Plan", "Step", "abort", "build_plan", "has_stopped_replay", "replay_totals",
           "report", "rerun", "script", "step_result", "verify", "write_script"]
