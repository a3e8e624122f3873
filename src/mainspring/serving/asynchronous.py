"""Asynchronous inference: a request topic → a served model → a prediction topic.

:class:`AsyncInference` is a :class:`~mainspring.events.Processor`. A request event's payload is
``{"id": "r-1", "inputs": {"feature": value, ...}}`` (or ``inputs`` as a list in the model's
signature order); ``id`` is optional (the event's idempotency key, else its id, stands in). Each
polled batch becomes one matrix and one ``predict`` call per model runtime; each request gets one
prediction event carrying its request id, keyed like the request, with the request id as its
idempotency key: a batch that is delivered again after a crash produces the same predictions
again, and consumers dedupe them by that key. An invalid request goes to ``<requests>.dlq`` with
the reason, in the same produce call as the predictions, and never holds up the others.

Prediction payload: ``{"request_id", "model", "version", "arm", "outputs": {name: value}}``. The
data plane is synced every ``sync_seconds``, so a promotion or rollback reaches the next batches.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.events.deadletter import dead_letter
from mainspring.records import IDEMPOTENCY_KEY, TRACE_ID, Event
from mainspring.serving.dataplane import DataPlane
from mainspring.serving.runtime import ModelRuntime
from mainspring.storage.base import EventLog

PROTOCOL = "events"
#: Characters of a model reference (``credit@champion``) that a consumer group name may not hold.
_GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Input types taken as they are (bool, a subclass of int, is refused).
_NUMBERS = frozenset({float, int})


def request_id(event: Event) -> str:
    """The request id of a request event: its payload's ``id``, else its idempotency key."""
    given = event.payload.get("id")
    return str(given) if given is not None else event.idempotency_key


class AsyncInference:
    """Scores request events with ``model`` (a model or deployment name of ``plane``; a version,
    alias or arm in ``version``) and produces the predictions to ``predictions``.

    >>> import tempfile
    >>> from mainspring.storage.memory import MemoryBlobStore, memory_event_log, memory_metadata
    >>> from mainspring.registry import Registry
    >>> plane = DataPlane(Registry(memory_metadata(), MemoryBlobStore()))
    >>> plane.start()
    >>> log = memory_event_log()
    >>> AsyncInference(plane, log, "credit", requests="requests", predictions="predictions")
    Traceback (most recent call last):
    ...
    mainspring.errors.NotFoundError: model 'credit' does not exist; served models: none
    """

    def __init__(
        self,
        plane: DataPlane,
        log: EventLog,
        model: str,
        *,
        requests: str,
        predictions: str,
        version: str | None = None,
        name: str | None = None,
        sync_seconds: float | None = 5.0,
    ) -> None:
        self.plane = plane
        #: How often the plane picks up promotions, rollbacks and new versions (None: never).
        self.sync_seconds = sync_seconds
        self._synced = time.monotonic()
        self.log = log
        self.model = model
        self.version = version
        self.requests = requests
        self.predictions = predictions
        self.topics = [requests]
        self.name = name or "predict-" + _GROUP_UNSAFE.sub(".", model)
        plane.runtime(model, version)  # fails now, naming what is served, if unknown

    def process(self, events: Sequence[Event]) -> None:
        if self.sync_seconds is not None and time.monotonic() - self._synced >= self.sync_seconds:
            self.plane.sync()  # a promotion reaches the next batch, loaded and warmed first
            self._synced = time.monotonic()
        groups: dict[int, tuple[ModelRuntime, str, list[Event], list[list[float]]]] = {}
        outgoing: list[Event] = []
        keyed = self.plane.keyed(self.model, self.version)
        fixed = None if keyed else self.plane.runtime(self.model, self.version)
        for event in events:
            try:
                runtime, arm = fixed or self.plane.runtime(self.model, self.version, event.key)
                row = self._row(runtime, event.payload)
            except (InvalidInputError, NotFoundError) as exc:
                outgoing.append(dead_letter(event, str(exc), "process"))
                continue
            group = groups.get(id(runtime))
            if group is None:
                group = groups[id(runtime)] = (runtime, arm, [], [])
            group[2].append(event)
            group[3].append(row)
        for runtime, arm, requests, rows in groups.values():
            outgoing.extend(self._predict(runtime, arm, requests, rows))
        if outgoing:
            self.log.produce(outgoing)

    def _row(self, runtime: ModelRuntime, payload: dict[str, Any]) -> list[float]:
        inputs = payload.get("inputs")
        names = runtime.feature_names
        if isinstance(inputs, dict):
            try:
                values = [inputs[n] for n in names]
            except KeyError:
                missing = [n for n in names if n not in inputs]
                raise InvalidInputError(
                    f"request lacks input{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(map(repr, missing))}; model {runtime.name} needs: "
                    f"{', '.join(names)}",
                    field=f"inputs.{missing[0]}",
                ) from None
        elif isinstance(inputs, list):
            if len(inputs) != len(names):
                raise InvalidInputError(
                    f"request has {len(inputs)} inputs; model {runtime.name} needs "
                    f"{len(names)}: {', '.join(names)}",
                    field="inputs",
                )
            values = inputs
        else:
            raise InvalidInputError(
                f"request needs 'inputs': an object of {', '.join(names)} (or a list of "
                f"{len(names)} numbers)",
                field="inputs",
            )
        if set(map(type, values)) <= _NUMBERS:
            return values
        for name, value in zip(names, values, strict=True):
            if value is None:
                if runtime.allow_nan:
                    continue
            elif type(value) in (float, int):
                continue
            raise InvalidInputError(
                f"input {name!r} is {value!r}; model {runtime.name} takes numbers"
                + (" (null for missing)" if runtime.allow_nan else ""),
                field=f"inputs.{name}",
            )
        return values

    def _predict(
        self, runtime: ModelRuntime, arm: str, requests: list[Event], rows: list[list[float]]
    ) -> list[Event]:
        started = time.perf_counter()
        matrix = np.array(rows, dtype=np.float64)
        bad = ~np.isfinite(matrix)
        if runtime.allow_nan:
            bad &= ~np.isnan(matrix)
        rejected: list[Event] = []
        if bad.any():  # infinities: refuse those requests, score the others
            keep: npt.NDArray[np.bool_] = ~np.any(bad, axis=1)
            flags = [bool(k) for k in keep]
            for i in np.flatnonzero(~keep).tolist():
                rejected.append(
                    dead_letter(
                        requests[i],
                        f"request holds a non-finite input; model {runtime.name} accepts "
                        "finite numbers" + (" or null" if runtime.allow_nan else ""),
                        "process",
                    )
                )
            requests = [r for r, k in zip(requests, flags, strict=True) if k]
            matrix = matrix[keep]
        if not requests:
            return rejected
        scores = runtime.predict_matrix(matrix)
        names = runtime.output_names
        if scores.shape[1] != len(names):
            names = tuple(f"{names[0]}_{i}" for i in range(scores.shape[1]))
        out = []
        for event, values in zip(requests, scores.tolist(), strict=True):
            rid = request_id(event)
            headers = {IDEMPOTENCY_KEY: rid}
            if TRACE_ID in event.headers:
                headers[TRACE_ID] = event.headers[TRACE_ID]
            out.append(
                Event(
                    self.predictions,
                    {
                        "request_id": rid,
                        "model": runtime.name,
                        "version": runtime.version,
                        "arm": arm,
                        "outputs": dict(zip(names, values, strict=True)),
                    },
                    key=event.key,
                    headers=headers,
                )
            )
        series = self.plane.metrics.series(runtime.name, runtime.version, arm, PROTOCOL)
        series.requests.inc(len(requests))
        series.batch.observe(len(requests))
        series.latency.observe(time.perf_counter() - started)
        return rejected + out

    def close(self) -> None:
        """The plane and the log belong to the caller."""
