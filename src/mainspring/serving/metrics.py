"""Prometheus metrics of the data plane: requests, errors, latency and batch sizes.

Labels are ``model``, ``version``, ``arm`` (the alias that chose the version, ``version`` when
the caller named a version, ``default`` otherwise) and ``protocol`` (``rest`` or ``grpc``). Each
:class:`ServingMetrics` has its own collector registry, so several data planes (tests) never clash.
With several worker processes, the serving command sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start and passes the directory here; a scrape then merges the metrics of every worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

LABELS = ("model", "version", "arm", "protocol")
#: seconds, from 0.1 ms to 2.5 s
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Series:
    """The children of the labelled metrics for one (model, version, arm, protocol)."""

    latency: Histogram
    requests: Counter
    batch: Histogram


class ServingMetrics:
    """The serving metrics, registered on a registry of their own."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self._series: dict[tuple[str, str, str, str], Series] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mainspring_inference_requests",
            "Inference requests answered, by model, version, arm and protocol.",
            LABELS,
            registry=self.registry,
        )
        self.errors = Counter(
            "mainspring_inference_errors",
            "Inference requests refused, by model, protocol and kind of error.",
            ("model", "protocol", "kind"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "mainspring_inference_latency_seconds",
            "Time from a decoded request to its outputs (validation and prediction).",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch = Histogram(
            "mainspring_inference_batch_rows",
            "Rows per inference request.",
            LABELS,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.merged = Histogram(
            "mainspring_inference_merged_batch_rows",
            "Rows per predict call of the micro-batcher (concurrent requests merged).",
            ("model", "version"),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def series(self, model: str, version: str, arm: str, protocol: str) -> Series:
        """The latency, request and batch series of one label set (looked up once, then cached:
        ``labels()`` costs more than a prediction's bookkeeping should)."""
        key = (model, version, arm, protocol)
        found = self._series.get(key)
        if found is None:
            found = Series(
                self.latency.labels(*key), self.requests.labels(*key), self.batch.labels(*key)
            )
            self._series[key] = found
        return found

    def exposition(self) -> bytes:
        """The text exposition format (merged over worker processes in multi-process mode)."""
        if self.multiprocess_dir:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)
