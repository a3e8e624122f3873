"""Prometheus metrics of the decision log (prometheus-client, extra ``metrics``, imported lazily).

- ``mainspring_decision_log_records_total{kind}``: records committed (decision, outcome, review).
- ``mainspring_decision_log_batch_records``: records per group commit (a histogram).
- ``mainspring_decision_log_unpublished_records``: committed records not yet on the event log.
- ``mainspring_decision_reviews_total{deployment,model,version,action}`` and
  ``mainspring_decision_segment_reviews_total{deployment,segment,value,action}`` (for the
  configured segment fields): the override rate per model version is
  ``reviews_total{action="override"} / ignoring(action) sum without(action)(reviews_total)``.
"""

from __future__ import annotations

from typing import Any

from mainspring.prometheus import MetricSet

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class AuditMetrics(MetricSet):
    """The decision log's metrics; one instance per Prometheus registry."""

    purpose = "Decision log metrics"

    def __init__(self, registry: Any = None) -> None:
        super().__init__(registry)
        prom, registry = self.prom, self.registry
        self.records = prom.Counter(
            "mainspring_decision_log_records",
            "Records committed to the decision log, per kind (decision, outcome, review).",
            ["kind"],
            registry=registry,
        )
        self._records: dict[str, Any] = {}
        self.batch = prom.Histogram(
            "mainspring_decision_log_batch_records",
            "Records per group commit of the decision log.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.unpublished = prom.Gauge(
            "mainspring_decision_log_unpublished_records",
            "Committed decision-log records not yet published to the event log.",
            registry=registry,
        )
        self.reviews = prom.Counter(
            "mainspring_decision_reviews",
            "Human reviews of decisions, per deployment, model version and action.",
            ["deployment", "model", "version", "action"],
            registry=registry,
        )
        self.segment_reviews = prom.Counter(
            "mainspring_decision_segment_reviews",
            "Human reviews of decisions per segment (a configured entity/context field).",
            ["deployment", "segment", "value", "action"],
            registry=registry,
        )

    def committed(self, kinds: dict[str, int], batch: int) -> None:
        for kind, n in kinds.items():
            child = self._records.get(kind)
            if child is None:  # a labelled child is looked up under a lock: keep the three
                child = self._records[kind] = self.records.labels(kind=kind)
            child.inc(n)
        self.batch.observe(batch)

    def reviewed(
        self,
        deployment: str,
        model: str | None,
        version: int | None,
        action: str,
        segments: dict[str, str],
    ) -> None:
        self.reviews.labels(
            deployment=deployment,
            model=model or "",
            version="" if version is None else str(version),
            action=action,
        ).inc()
        for segment, value in segments.items():
            self.segment_reviews.labels(
                deployment=deployment, segment=segment, value=value, action=action
            ).inc()
