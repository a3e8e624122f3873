"""Adaptive micro-batching: concurrent small requests to one model share one predict call.

A request that finds nothing else waiting is not delayed: its flush is scheduled with
``call_soon``, so it runs as soon as the requests that are already decoded in this event-loop
iteration have joined it. When a flush finds a lone request (no concurrency), the next
``probe_every`` requests skip the batcher and predict at once, then one request probes again:
a server at concurrency 1 pays almost nothing for batching. Under load many requests arrive
together and merge (up to ``max_batch_rows``). ``max_wait_s`` > 0 additionally
holds a batch that is not full for up to that long, trading latency for larger batches. Requests
with more than ``max_request_rows`` rows are predicted on their own.

If a merged prediction fails, each request is predicted alone so that one bad request fails only
itself.

>>> MicroBatcher(max_batch_rows=64).max_batch_rows
64
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mainspring.serving.runtime import ModelRuntime

Matrix = npt.NDArray[np.float64]


@dataclass(slots=True)
class _Pending:
    matrices: list[Matrix] = field(default_factory=list)
    futures: list[asyncio.Future[Matrix]] = field(default_factory=list)
    rows: int = 0
    handle: asyncio.Handle | asyncio.TimerHandle | None = None


class MicroBatcher:
    """Merges concurrent predictions per runtime within one event loop."""

    def __init__(
        self,
        *,
        max_batch_rows: int = 64,
        max_wait_s: float = 0.0,
        max_request_rows: int = 8,
        probe_every: int = 16,
    ) -> None:
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_s
        self.max_request_rows = max_request_rows
        self.probe_every = probe_every
        self._bypass = 0
        self._pending: dict[int, tuple[ModelRuntime, _Pending]] = {}
        #: called with the rows of each merged predict call (for metrics and tests)
        self.on_batch: Callable[[ModelRuntime, int], None] | None = None

    async def predict(self, runtime: ModelRuntime, matrix: Matrix) -> Matrix:
        """The scores of ``matrix``, possibly computed together with other requests."""
        if len(matrix) > self.max_request_rows or self.max_batch_rows <= 1:
            return runtime.predict_matrix(matrix)
        key = id(runtime)
        entry = self._pending.get(key)
        if entry is None and self._bypass > 0:  # no concurrency seen lately
            self._bypass -= 1
            return runtime.predict_matrix(matrix)
        loop = asyncio.get_running_loop()
        if entry is None or entry[0] is not runtime:
            pending = _Pending()
            self._pending[key] = (runtime, pending)
            if self.max_wait_s > 0:
                pending.handle = loop.call_later(self.max_wait_s, self._flush, key)
            else:
                pending.handle = loop.call_soon(self._flush, key)
        else:
            pending = entry[1]
        future: asyncio.Future[Matrix] = loop.create_future()
        pending.matrices.append(matrix)
        pending.futures.append(future)
        pending.rows += len(matrix)
        if pending.rows >= self.max_batch_rows:
            if pending.handle is not None:
                pending.handle.cancel()
            self._flush(key)
        return await future

    def _flush(self, key: int) -> None:
        entry = self._pending.pop(key, None)
        if entry is None:
            return
        runtime, pending = entry
        if self.on_batch is not None:
            self.on_batch(runtime, pending.rows)
        if len(pending.matrices) == 1:
            self._bypass = self.probe_every if self.max_wait_s == 0 else 0
            self._settle(runtime, pending.matrices[0], pending.futures[0])
            return
        self._bypass = 0
        try:
            scores = runtime.predict_matrix(np.concatenate(pending.matrices))
        except Exception:  # one request spoilt the batch: answer each on its own
            for matrix, future in zip(pending.matrices, pending.futures, strict=True):
                self._settle(runtime, matrix, future)
            return
        start = 0
        for matrix, future in zip(pending.matrices, pending.futures, strict=True):
            if not future.done():
                future.set_result(scores[start : start + len(matrix)])
            start += len(matrix)

    @staticmethod
    def _settle(runtime: ModelRuntime, matrix: Matrix, future: asyncio.Future[Matrix]) -> None:
        if future.done():
            return
        try:
            future.set_result(runtime.predict_matrix(matrix))
        except Exception as exc:  # delivered to the request that caused it
            future.set_exception(exc)
