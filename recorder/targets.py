"""Where an array's or a replay's tasks run (:class:`Target`, read by ``engine.check`` from
``--jobs`` and ``--scheduler``): a module of its own, so that what only names a target (a
replay's state, ``rr rerun --report``) does not load the engine's Dask-facing modules."""

from __future__ import annotations

from dataclasses import dataclass

# the batch systems dask-jobqueue drives: --scheduler NAME -> its cluster class
JOBQUEUE = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
    "lsf": "LSFCluster",
    "oar": "OARCluster",
    "moab": "MoabCluster",
}


@dataclass(frozen=True)
class Target:
    """Where tasks run, as :func:`check` read it from ``--jobs`` and ``--scheduler``."""

    kind: str               # serial | local | address | jobqueue
    jobs: int | None = None  # local: the workers; address/jobqueue: the tasks/worker jobs
    address: str = ""       # address: the scheduler's address
    name: str = ""          # jobqueue: the batch system (a key of JOBQUEUE)

    @property
    def parallel(self) -> bool:
        return self.kind != "serial"

    def describe(self) -> str:
        if self.kind == "local":
            return f"a local Dask cluster of {self.jobs} workers"
        if self.kind == "address":
            return f"the Dask scheduler at {self.address}"
        if self.kind == "jobqueue":
            return f"{self.name} (dask-jobqueue {JOBQUEUE[self.name]})"
        return "this process, one task after the other"


SERIAL = Target("serial")
