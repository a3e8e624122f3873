"""Prometheus metrics of the feature store (prometheus-client, extra ``metrics``, imported lazily).

Per view: online read latency, rows written online, rows in the online store and the event-time
end of the last materialization; freshness is ``time()`` minus
``mainspring_feature_view_materialized_until_seconds``. Metrics go to a ``CollectorRegistry``
(the process's default one for :meth:`FeatureMetrics.default`), which whatever serves
``/metrics`` exposes.
"""

from __future__ import annotations

import importlib.util
import threading
from datetime import datetime
from typing import Any, ClassVar

from mainspring.errors import MissingDependencyError


class FeatureMetrics:
    """The feature store's metrics; one instance per registry."""

    _default: ClassVar[FeatureMetrics | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def default(cls) -> FeatureMetrics | None:
        """The process-wide metrics on the default registry, or ``None`` without the package."""
        if importlib.util.find_spec("prometheus_client") is None:
            return None
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def __init__(self, registry: Any = None) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise MissingDependencyError(
                "prometheus-client", extra="metrics", purpose="Feature store metrics"
            ) from None
        registry = registry if registry is not None else prom.REGISTRY
        self.registry = registry
        self.read_seconds = prom.Histogram(
            "mainspring_feature_online_read_seconds",
            "Latency of online feature reads, per feature view in the request.",
            ["view"],
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
            registry=registry,
        )
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
        self._read: dict[str, Any] = {}

    def observe_read(self, views: tuple[str, ...], seconds: float) -> None:
        for view in views:
            child = self._read.get(view)
            if child is None:
                child = self._read[view] = self.read_seconds.labels(view=view)
            child.observe(seconds)

    def written(self, view: str, rows: int, path: str) -> None:
        self.rows_written.labels(view=view, path=path).inc(rows)

    def materialized(self, view: str, until: datetime, online_rows: int) -> None:
        self.materialized_until.labels(view=view).set(until.timestamp())
        self.online_rows.labels(view=view).set(online_rows)
