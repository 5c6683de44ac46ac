"""Result records: what an operation reports, one record per thing it looked at or acted on.

Operations that report on many things (status, diff, subdatasets, update, remove, array jobs)
yield ``Result``s; the CLI renders them in one place (``cli.render_results``: one line each on
a terminal, one JSON object per line with ``--json``), so a new command gets ``--json`` and
piping for free.  Statuses are DataLad's: ``ok``, ``notneeded``, ``impossible``, ``error``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

OK = "ok"
NOTNEEDED = "notneeded"
IMPOSSIBLE = "impossible"
ERROR = "error"


class Result(NamedTuple):  # a NamedTuple: cheap to create by the thousand
    action: str                 # the operation: "status", "diff", "update", "remove", ...
    path: str                   # relative to the dataset the command was given ('.' for it)
    status: str = OK            # ok | notneeded | impossible | error
    state: str = ""             # what was found: "modified", "untracked", "installed", ...
    type: str = ""              # file | symlink | directory | dataset
    message: str = ""           # one line for people
    extra: dict[str, Any] | None = None   # command-specific fields, kept in --json

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "path": self.path, "status": self.status}
        if self.state:
            out["state"] = self.state
        if self.type:
            out["type"] = self.type
        if self.message:
            out["message"] = self.message
        if self.extra:
            out.update(self.extra)
        return out

    @property
    def failed(self) -> bool:
        return self.status in (IMPOSSIBLE, ERROR)
