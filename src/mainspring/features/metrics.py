"""Prometheus metrics of the feature store (prometheus-client, extra ``metrics``, imported lazily).

Per view: online read latency, rows written online, rows in the online store and the event-time
end of the last materialization; freshness is ``time()`` minus
``mainspring_feature_view_materialized_until_seconds``. Metrics go to a ``CollectorRegistry``
(the process's default one for :meth:`FeatureMetrics.default`), which whatever serves
``/metrics`` exposes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from mainspring.prometheus import MetricSet

#: Upper bounds (seconds) of the online read latency histogram.
READ_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)


class ReadLatency:
    """``mainspring_feature_online_read_seconds{view}``: a histogram kept as plain counts.

    Recording is a bisect and two additions (no lock, no label lookup in the client library),
    so that metering stays negligible beside a read of tens of microseconds; the cumulative
    buckets are built when Prometheus scrapes.
    """

    def __init__(self) -> None:
        self._views: dict[str, list[float]] = {}  # per view: counts per bucket, +Inf, then sum

    def observe(self, view: str, seconds: float) -> None:
        counts = self._views.get(view)
        if counts is None:
            counts = self._views.setdefault(view, [0.0] * (len(READ_BUCKETS) + 2))
        counts[bisect_left(READ_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(
            "mainspring_feature_online_read_seconds",
            "Latency of online feature reads, per feature view in the request.",
            labels=["view"],
        )
        for view, counts in sorted(self._views.items()):
            snapshot = list(counts)
            running = 0.0
            buckets = []
            for bound, count in zip((*map(str, READ_BUCKETS), "+Inf"), snapshot[:-1], strict=True):
                running += count
                buckets.append((bound, running))
            family.add_metric([view], buckets, sum_value=snapshot[-1])
        yield family


class FeatureMetrics(MetricSet):
    """The feature store's metrics; one instance per registry."""

    purpose = "Feature store metrics"

    def __init__(self, registry: Any = None) -> None:
        super().__init__(registry)
        prom, registry = self.prom, self.registry
        self.reads = ReadLatency()
        registry.register(self.reads)
        self.rows_written = prom.Counter(
            "mainspring_feature_online_rows_written",
            "Rows written to the online store, per feature view and path.",
            ["view", "path"],
            registry=registry,
        )
        self.online_rows = prom.Gauge(
            "mainspring_feature_view_online_rows",
            "Entities held in the online store, per feature view (after materialization).",
            ["view"],
            registry=registry,
        )
        self.materialized_until = prom.Gauge(
            "mainspring_feature_view_materialized_until_seconds",
            "Event-time end of the last materialization, as a Unix time, per feature view.",
            ["view"],
            registry=registry,
        )

    def observe_read(self, views: tuple[str, ...], seconds: float) -> None:
        observe = self.reads.observe
        for view in views:
            observe(view, seconds)

    def written(self, view: str, rows: int, path: str) -> None:
        self.rows_written.labels(view=view, path=path).inc(rows)

    def materialized(self, view: str, until: datetime, online_rows: int) -> None:
        self.materialized_until.labels(view=view).set(until.timestamp())
        self.online_rows.labels(view=view).set(online_rows)
