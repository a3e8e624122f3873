"""``mainspring serve``: every registered model of the project over the Open Inference Protocol."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.errors import MissingDependencyError

if TYPE_CHECKING:
    from mainspring.serving import DataPlane


@dataclass(frozen=True)
class PlaneFactory:
    """Builds a worker's data plane from the project directory (picklable for worker processes)."""

    directory: Path
    multiprocess_dir: str | None = None

    def __call__(self) -> DataPlane:
        from mainspring.project import Project
        from mainspring.serving import DataPlane
        from mainspring.serving.decisions import DecisionService
        from mainspring.serving.deployments import DeploymentStore
        from mainspring.serving.metrics import ServingMetrics

        project = Project.open(self.directory)  # lives as long as the worker
        plane = DataPlane(
            project.registry,
            deployments=DeploymentStore(project.metadata),
            metrics=ServingMetrics(self.multiprocess_dir),
        )
        # deployments with a policy decide (POST /v1/decide/NAME), logging to the decision log
        plane.decisions = DecisionService(plane, project.decisions, project.features)
        return plane


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8080, show_default=True, help="REST (OIP) port.")
@click.option(
    "--grpc-port", type=int, default=8081, show_default=True, help="gRPC (OIP) port; 0 disables."
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Worker processes [one per core]."
)
@click.option(
    "--max-body-mb", type=click.IntRange(min=1), default=64, show_default=True,
    help="Largest accepted request body.",
)  # fmt: skip
@click.option(
    "--drain-delay", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="Seconds between SIGTERM (readiness turns false) and no longer accepting connections.",
)  # fmt: skip
@pass_cli
def serve(
    cli: Cli,
    host: str,
    port: int,
    grpc_port: int,
    workers: int | None,
    max_body_mb: int,
    drain_delay: float,
) -> None:
    """Serve every registered model over the Open Inference Protocol (REST and gRPC)."""
    from mainspring.serving.server import ServeOptions, default_workers, run

    with handled():
        if grpc_port:
            try:
                import grpc  # noqa: F401
            except ImportError:
                raise MissingDependencyError(
                    "grpcio", extra="grpc", purpose="gRPC serving"
                ) from None
        count = workers or default_workers()
        # the worker processes are the parallelism: one OpenMP thread each (LightGBM, XGBoost,
        # ONNX Runtime would otherwise spin a thread per core in every worker)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        options = ServeOptions(
            host, port, grpc_port or None, count, max_body_mb * 1024 * 1024,
            drain_delay_s=drain_delay,
        )  # fmt: skip
        metrics_dir = None
        if count > 1:
            metrics_dir = tempfile.mkdtemp(prefix="mainspring-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        directory = cli.directory.resolve()
        click.echo(
            f"serving {directory} on http://{host}:{port}"
            + (f" and grpc {host}:{grpc_port}" if grpc_port else "")
            + f" with {count} worker{'s' if count > 1 else ''}"
        )
        with contextlib.ExitStack() as cleanup:
            if count > 1:
                # the supervisor mirrors the decision log: the workers' GIL is for requests
                from mainspring.project import Project

                project = cleanup.enter_context(Project.open(directory))
                mirror = project.mirror_decisions()
                if mirror is not None:
                    cleanup.callback(mirror.stop)
            try:
                code = run(PlaneFactory(directory, metrics_dir), options)
            finally:
                if metrics_dir:
                    shutil.rmtree(metrics_dir, ignore_errors=True)
        raise SystemExit(code)
