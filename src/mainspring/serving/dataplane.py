"""The protocol-neutral data plane of the Open Inference Protocol.

REST and gRPC are thin adapters over one :class:`DataPlane`: health, server and model metadata,
model readiness, inference and the model repository extension (index, load, unload). Errors are
domain errors (:class:`~mainspring.errors.InvalidInputError`,
:class:`~mainspring.errors.NotFoundError`); only the adapters turn them into status codes.

Models are addressed by ``name`` (the ``champion`` alias when set, else the latest version), by
``name`` with a version (``"3"``), and by alias, either as the version (``versions/champion``) or
in the name (``credit@champion``, URL-encoded ``credit%40champion`` where needed).

>>> import tempfile, numpy as np
>>> from mainspring.storage.memory import MemoryBlobStore, memory_metadata
>>> from mainspring.registry import Registry
>>> registry = Registry(memory_metadata(), MemoryBlobStore())
>>> plane = DataPlane(registry)
>>> plane.start()
>>> plane.ready(), plane.repository_index()
(True, [])
"""

from __future__ import annotations

import time

from mainspring import __version__
from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.registry import Registry
from mainspring.serving.inference import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    RepositoryEntry,
    ServerMetadata,
)
from mainspring.serving.metrics import ServingMetrics
from mainspring.serving.repository import ModelRepository, ServedModel
from mainspring.serving.runtime import ModelRuntime

SERVER_NAME = "mainspring"
EXTENSIONS = ("binary_tensor_data", "model_repository", "metrics")


def split_alias(name: str, version: str | None) -> tuple[str, str | None]:
    """``("credit@champion", None)`` -> ``("credit", "champion")``.

    >>> split_alias("credit@champion", None), split_alias("credit", "2")
    (('credit', 'champion'), ('credit', '2'))
    """
    if "@" in name:
        base, alias = name.split("@", 1)
        if version and version != alias:
            raise InvalidInputError(
                f"model {name!r} names alias {alias!r} but the request asks for version "
                f"{version!r}; give one of them",
                field="model_version",
            )
        return base, alias
    return name, version or None


class DataPlane:
    """Inference over the registry's models, independent of any wire protocol."""

    def __init__(
        self,
        registry: Registry,
        *,
        metrics: ServingMetrics | None = None,
        trusted: bool = False,
    ) -> None:
        self.repository = ModelRepository(registry, trusted=trusted)
        self.metrics = metrics or ServingMetrics()
        self._ready = False

    # ------------------------------------------------------------------ health and metadata

    def start(self) -> None:
        """Load and warm every registered model; the server is ready afterwards."""
        self.repository.load_all()
        self._ready = True

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    def metadata(self) -> ServerMetadata:
        return ServerMetadata(SERVER_NAME, __version__, EXTENSIONS)

    def _served(self, name: str, version: str | None) -> tuple[ServedModel, ModelRuntime, str]:
        base, version = split_alias(name, version)
        served = self.repository.get(base)
        runtime, arm = served.runtime(version)
        return served, runtime, arm

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        served, runtime, _ = self._served(name, version)
        return runtime.metadata(served.version_list())

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether the model (version) is loaded and warmed; unknown ones raise NotFoundError."""
        self._served(name, version)
        return self._ready

    # ------------------------------------------------------------------ inference

    def infer(
        self,
        name: str,
        version: str | None,
        request: InferenceRequest,
        *,
        protocol: str = "python",
    ) -> InferenceResponse:
        """Validate ``request`` against the model's signature, predict and build the outputs."""
        try:
            _, runtime, arm = self._served(name, version)
            started = time.perf_counter()
            matrix = runtime.matrix(request.inputs)
            scores = runtime.predict_matrix(matrix)
            outputs = runtime.outputs(scores, request.outputs)
        except (InvalidInputError, NotFoundError) as exc:
            self.metrics.errors.labels(name, protocol, exc.code).inc()
            raise
        labels = (runtime.name, runtime.version, arm, protocol)
        self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
        self.metrics.requests.labels(*labels).inc()
        self.metrics.batch.labels(*labels).observe(len(matrix))
        return InferenceResponse(
            model_name=runtime.name,
            model_version=runtime.version,
            outputs=outputs,
            id=request.id,
            parameters={"arm": arm},
        )

    # ------------------------------------------------------------------ repository extension

    def repository_index(self) -> list[RepositoryEntry]:
        entries = [
            RepositoryEntry(served.name, version, "READY")
            for served in self.repository
            for version in served.version_list()
        ]
        entries += [
            RepositoryEntry(n, "", "UNAVAILABLE", "unloaded") for n in self.repository.unloaded()
        ]
        return sorted(entries, key=lambda e: (e.name, e.version))

    def load(self, name: str) -> ServedModel:
        """Load ``name`` or refresh it (new aliases, new versions) without a failed request."""
        return self.repository.load(name)

    def unload(self, name: str) -> None:
        if name not in self.repository and name not in self.repository.unloaded():
            raise NotFoundError("model", name, "it is not loaded")
        self.repository.unload(name)
