"""PLACEHOLDER execution engine (serial + a plain Dask LocalCluster), with the signature agreed
with the engine's owner (wt-cluster); replaced by the real engine at merge."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from .errors import RecorderError


class Event(NamedTuple):
    kind: str  # queued | started | done | failed
    index: int
    info: str = ""


class EngineError(RecorderError):
    pass


def execute_all(fn: Callable[[Any], Any], items: Sequence[Any], *, jobs: int | None = None,
                scheduler: str | None = None,
                on_event: Callable[[Event], None] | None = None) -> Iterator[tuple[int, Any]]:
    emit = on_event or (lambda _e: None)
    for i in range(len(items)):
        emit(Event("queued", i))
    if (jobs is None or jobs <= 1) and scheduler is None:
        for i, item in enumerate(items):
            emit(Event("started", i))
            try:
                result: Any = fn(item)
            except Exception as exc:  # noqa: BLE001 - yielded, as agreed
                result = exc
            emit(Event("failed" if isinstance(result, BaseException) else "done", i))
            yield i, result
        return
    if scheduler is not None:
        raise EngineError(f"the placeholder engine cannot use scheduler {scheduler!r}")
    import logging

    from distributed import Client, LocalCluster, as_completed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        futures = {}
        for i, item in enumerate(items):
            futures[client.submit(fn, item, pure=False)] = i
            emit(Event("started", i))
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001
                    result = exc
                emit(Event("failed" if isinstance(result, BaseException) else "done", i))
                yield i, result
        except BaseException:
            client.cancel(list(futures))
            raise
