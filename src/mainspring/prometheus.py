"""Process-wide sets of Prometheus metrics (prometheus-client, extra ``metrics``, imported lazily).

A service's metrics subclass :class:`MetricSet`: one instance per registry, and
:meth:`MetricSet.default` gives the process's own on the default registry (or ``None`` when
prometheus-client is not installed), so that every service in a process counts into one set.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any, ClassVar, Self

from mainspring.errors import MissingDependencyError


class MetricSet:
    """Base of a service's metrics; subclasses set ``purpose`` and create their families."""

    purpose: ClassVar[str] = "metrics"
    _defaults: ClassVar[dict[type, Any]] = {}
    _defaults_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def default(cls) -> Self | None:
        """The process-wide set on the default registry, or ``None`` without the package."""
        if importlib.util.find_spec("prometheus_client") is None:
            return None
        with cls._defaults_lock:
            found = cls._defaults.get(cls)
            if found is None:
                found = cls._defaults[cls] = cls()
            metrics: Self = found
            return metrics

    def __init__(self, registry: Any = None) -> None:
        try:
            import prometheus_client
        except ImportError:
            raise MissingDependencyError(
                "prometheus-client", extra="metrics", purpose=self.purpose
            ) from None
        self.prom: Any = prometheus_client
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
