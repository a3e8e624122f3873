"""The protocol-neutral data plane of the Open Inference Protocol.

REST and gRPC are thin adapters over one :class:`DataPlane`: health, server and model metadata,
model readiness, inference and the model repository extension (index, load, unload). Errors are
domain errors (:class:`~mainspring.errors.InvalidInputError`,
:class:`~mainspring.errors.NotFoundError`); only the adapters turn them into status codes.

Models are addressed by ``name`` (the ``champion`` alias when set, else the latest version), by
``name`` with a version (``"3"``), and by alias, either as the version (``versions/champion``) or
in the name (``credit@champion``, URL-encoded ``credit%40champion`` where needed). A deployment
(:mod:`mainspring.serving.deployments`) is addressed by its name, which takes precedence over a
model of the same name; its arms are chosen by weight (sticky with the ``routing_key`` request
parameter), and a version naming an arm (``versions/canary``) forces that arm.

:meth:`DataPlane.sync` picks up alias moves (promotion, rollback), new versions and deployment
changes: new versions are loaded and warmed before one atomic switch, so no request fails.

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

import asyncio
import dataclasses
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mainspring import __version__
from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.registry import Registry
from mainspring.serving.batching import MicroBatcher
from mainspring.serving.deployments import ROUTING_KEY, Arm, Deployment, DeploymentStore
from mainspring.serving.inference import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    RepositoryEntry,
    ServerMetadata,
)
from mainspring.serving.metrics import ServingMetrics
from mainspring.serving.repository import ModelRepository, ServedModel
from mainspring.serving.routed import Routed, with_decisions
from mainspring.serving.runtime import ModelRuntime

if TYPE_CHECKING:
    from mainspring.serving.decisions import DecisionService

SERVER_NAME = "mainspring"
shadow_log = logging.getLogger("mainspring.serving.shadow")
logger = logging.getLogger("mainspring.serving")
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
        deployments: DeploymentStore | None = None,
        metrics: ServingMetrics | None = None,
        trusted: bool = False,
    ) -> None:
        self.registry = registry
        self.repository = ModelRepository(registry, trusted=trusted)
        self.deployments = deployments
        self.metrics = metrics or ServingMetrics()
        self._routes: dict[str, Deployment] = {}
        self._ready = False
        self._sync_lock = threading.Lock()
        self._shadows = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mainspring-shadow")
        #: the decision flow over this plane, when the server makes decisions (set by its builder)
        self.decisions: DecisionService | None = None

    # ------------------------------------------------------------------ health and metadata

    def start(self) -> None:
        """Load and warm every registered model, and plan the decisions of every deployment with
        a policy; the server is ready afterwards."""
        self.repository.load_all()
        self._load_routes()
        self._ready = True

    def _load_routes(self) -> None:
        if self.deployments is None:
            return
        routes = {}
        for deployment in self.deployments.list():
            for arm in deployment.arms:  # every arm must resolve to a loaded, warmed version
                self._arm_runtime(deployment, arm)
            routes[deployment.name] = deployment
        self._routes = routes  # the atomic switch
        if self.decisions is not None:  # plan now, not on the first request (sync's thread)
            self.decisions.warm()

    def _arm_runtime(self, deployment: Deployment, arm: Arm) -> ModelRuntime:
        try:
            return self.repository.get(arm.model).runtime(arm.version)[0]
        except NotFoundError as exc:
            raise NotFoundError(
                "model version", f"{arm.model}/{arm.version}",
                f"arm {arm.name!r} of deployment {deployment.name!r} cannot be served: {exc}",
            ) from None  # fmt: skip

    def sync(self) -> bool:
        """Pick up registry and deployment changes; True when something was switched."""
        with self._sync_lock:
            changed = False
            unloaded = set(self.repository.unloaded())
            for model in self.registry.list_models():
                if model.name in unloaded or model.latest_version == 0:
                    continue
                served = self.repository.current(model.name)
                wanted = {str(v) for v in {model.latest_version, *model.aliases.values()}}
                aliases = {a: str(v) for a, v in model.aliases.items()}
                if served is None or set(served.versions) != wanted or served.aliases != aliases:
                    self.repository.load(model.name)
                    changed = True
            if self.deployments is not None:
                revisions = {n: d.revision for n, d in self._routes.items()}
                if self.deployments.revisions() != revisions:
                    self._load_routes()
                    changed = True
            return changed

    def close(self) -> None:
        """Finish pending shadow predictions."""
        self._shadows.shutdown(wait=True)

    def drain(self) -> None:
        """Report not ready from now on (shutting down); requests are still answered."""
        self._ready = False

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    def metadata(self) -> ServerMetadata:
        return ServerMetadata(SERVER_NAME, __version__, EXTENSIONS)

    def _served(
        self, name: str, version: str | None, key: str | None = None
    ) -> tuple[ServedModel, ModelRuntime, str, Deployment | None]:
        deployment = self._routes.get(name)
        if deployment is not None:
            arm = deployment.arm(version) if version else deployment.choose(key)
            runtime = self._arm_runtime(deployment, arm)
            return self.repository.get(arm.model), runtime, arm.name, deployment
        base, version = split_alias(name, version)
        served = self.repository.get(base)
        runtime, arm_name = served.runtime(version)
        return served, runtime, arm_name, None

    def served_deployments(self) -> list[Deployment]:
        """The deployments as currently served, by name."""
        return [self._routes[name] for name in sorted(self._routes)]

    def deployment(self, name: str) -> Deployment:
        """The deployment ``name`` as currently served."""
        deployment = self._routes.get(name)
        if deployment is None:
            known = ", ".join(sorted(self._routes)) or "none"
            raise NotFoundError("deployment", name, f"served deployments: {known}")
        return deployment

    def runtime_for(self, deployment: Deployment, arm: str) -> ModelRuntime:
        """The loaded runtime of ``deployment``'s arm ``arm``."""
        return self._arm_runtime(deployment, deployment.arm(arm))

    def runtime(
        self, name: str, version: str | None = None, key: str | None = None
    ) -> tuple[ModelRuntime, str]:
        """The runtime answering for a model or deployment ``name`` (a version, an alias or an
        arm in ``version``; ``key`` makes the arm choice sticky), and its arm label."""
        _, runtime, arm, _ = self._served(name, version, key)
        return runtime, arm

    def keyed(self, name: str, version: str | None = None) -> bool:
        """Whether the runtime answering for ``name`` depends on the routing key (a deployment
        choosing among weighted arms)."""
        return name in self._routes and not version

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        served, runtime, _, deployment = self._served(name, version)
        meta = runtime.metadata(served.version_list())
        if deployment is None:
            return meta
        parameters = {**meta.parameters, "model": runtime.name, "arms": list(deployment.arm_names)}
        return dataclasses.replace(
            meta, name=deployment.name, versions=deployment.arm_names, parameters=parameters
        )

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether the model (version) is loaded and warmed; unknown ones raise NotFoundError."""
        self._served(name, version, "ready")
        return self._ready

    # ------------------------------------------------------------------ inference

    def route(
        self,
        name: str,
        version: str | None,
        request: InferenceRequest,
        *,
        protocol: str = "python",
    ) -> Routed:
        """Choose the runtime (and arm) for ``request`` and validate its tensors into a matrix."""
        key = request.parameters.get(ROUTING_KEY)
        key = None if key is None else str(key)
        try:
            _, runtime, arm, deployment = self._served(name, version, key)
            started = time.perf_counter()
            matrix = runtime.matrix(request.inputs)
        except (InvalidInputError, NotFoundError) as exc:
            self.metrics.errors.labels(name, protocol, exc.code).inc()
            raise
        shadowed = deployment is not None and not version
        deciding = deployment if deployment is not None and deployment.decides else None
        return Routed(name, request, protocol, runtime, arm, deployment if shadowed else None,
                      key, matrix, started, deciding)  # fmt: skip

    def respond(self, routed: Routed, scores: npt.NDArray[np.float64]) -> InferenceResponse:
        """The response to a routed request from its scores; counts it and feeds the shadows."""
        runtime, request = routed.runtime, routed.request
        try:
            outputs = runtime.outputs(scores, request.outputs)
        except InvalidInputError as exc:
            self.metrics.errors.labels(routed.name, routed.protocol, exc.code).inc()
            raise
        series = self.metrics.series(runtime.name, runtime.version, routed.arm, routed.protocol)
        series.latency.observe(time.perf_counter() - routed.started)
        series.requests.inc()
        series.batch.observe(len(routed.matrix))
        if routed.deployment is not None:
            for shadow in routed.deployment.mirrored(routed.key):
                self._shadows.submit(
                    self._shadow, routed.deployment, shadow, routed.matrix, request.id,
                    routed.protocol,
                )  # fmt: skip
        return InferenceResponse(
            model_name=runtime.name,
            model_version=runtime.version,
            outputs=outputs,
            id=request.id,
            parameters={"arm": routed.arm},
        )

    def predict(self, routed: Routed) -> npt.NDArray[np.float64]:
        try:
            return routed.runtime.predict_matrix(routed.matrix)
        except InvalidInputError as exc:
            self.metrics.errors.labels(routed.name, routed.protocol, exc.code).inc()
            raise

    async def infer_async(
        self,
        name: str,
        version: str | None,
        request: InferenceRequest,
        *,
        protocol: str,
        batcher: MicroBatcher | None = None,
        thread_rows: int = 50_000,
    ) -> InferenceResponse:
        """:meth:`infer` for the event loop: small requests go through ``batcher``, large ones
        (over ``thread_rows`` values) predict on a worker thread."""
        routed = self.route(name, version, request, protocol=protocol)
        if routed.matrix.size > thread_rows:
            scores = await asyncio.to_thread(self.predict, routed)
        elif batcher is not None:
            try:
                scores = await batcher.predict(routed.runtime, routed.matrix)
            except InvalidInputError as exc:
                self.metrics.errors.labels(routed.name, routed.protocol, exc.code).inc()
                raise
        else:
            scores = self.predict(routed)
        response = self.respond(routed, scores)
        if routed.deciding is None or self.decisions is None:
            return response
        made = self.decisions.from_inference(routed, scores)
        # submitted together, the rows' decisions share one group commit of the log
        await asyncio.gather(*(self.decisions.log.append_async(d) for d in made))
        return with_decisions(response, made)

    def batcher(self, *, max_batch_rows: int = 64, max_wait_s: float = 0.0) -> MicroBatcher:
        """A micro-batcher whose merged calls are counted in this plane's metrics."""
        batcher = MicroBatcher(max_batch_rows=max_batch_rows, max_wait_s=max_wait_s)
        merged = self.metrics.merged

        def count(runtime: ModelRuntime, rows: int) -> None:
            merged.labels(runtime.name, runtime.version).observe(rows)

        batcher.on_batch = count
        return batcher

    def infer(
        self,
        name: str,
        version: str | None,
        request: InferenceRequest,
        *,
        protocol: str = "python",
    ) -> InferenceResponse:
        """Validate ``request`` against the model's signature, predict and build the outputs."""
        routed = self.route(name, version, request, protocol=protocol)
        scores = self.predict(routed)
        response = self.respond(routed, scores)
        if routed.deciding is None or self.decisions is None:
            return response
        made = self.decisions.from_inference(routed, scores)
        for decision in made:
            self.decisions.log.append(decision)
        return with_decisions(response, made)

    def _shadow(
        self,
        deployment: Deployment,
        arm: Arm,
        matrix: npt.NDArray[np.float64],
        request_id: str | None,
        protocol: str,
    ) -> None:
        """Score a copy of a request on a shadow arm; the answer is logged, never returned."""
        try:
            runtime = self._arm_runtime(deployment, arm)
            started = time.perf_counter()
            scores = runtime.predict_matrix(matrix)
        except Exception as exc:  # a shadow never affects the answer; log and count
            self.metrics.errors.labels(deployment.name, protocol, "shadow").inc()
            shadow_log.warning("shadow arm %s of %s failed: %s", arm.name, deployment.name, exc)
            return
        series = self.metrics.series(runtime.name, runtime.version, arm.name, protocol)
        series.latency.observe(time.perf_counter() - started)
        series.requests.inc()
        record = {
            "deployment": deployment.name,
            "arm": arm.name,
            "model": runtime.name,
            "version": runtime.version,
            "id": request_id,
            "outputs": dict(zip(runtime.output_names, scores.T.tolist(), strict=False)),
        }
        shadow_log.info(json.dumps(record))

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
