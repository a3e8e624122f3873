"""The composition root: ``Project.open`` reads settings once and wires the services.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     with Project.open(d) as project:
...         print(project.registry.list_models(), project.tokens.enabled())
[] False
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from mainspring.access import TokenStore
from mainspring.config import Settings, load_settings
from mainspring.features import FeatureStore
from mainspring.features.metrics import FeatureMetrics
from mainspring.registry import Registry
from mainspring.storage import (
    open_blob_store,
    open_event_log,
    open_metadata_store,
    open_online_store,
)
from mainspring.storage.base import BlobStore, EventLog, MetadataStore, OnlineStore


def git_commit(directory: Path) -> str | None:
    """The git commit checked out in ``directory`` (with ``+dirty`` if changed), if any."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def s3_options(settings: Settings) -> dict[str, object]:
    """fsspec options that reach the S3 of the settings (artifacts and feature sources)."""
    s3 = settings.s3
    options: dict[str, object] = {}
    if s3.endpoint_url:
        options["endpoint_url"] = s3.endpoint_url
    if s3.access_key_id:
        options["key"] = s3.access_key_id
    if s3.secret_access_key:
        options["secret"] = s3.secret_access_key
    if s3.region:
        options["client_kwargs"] = {"region_name": s3.region}
    return options


class Project:
    """A Mainspring project: its settings and the services built from them."""

    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        blobs: BlobStore,
        online: OnlineStore | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.blobs = blobs
        self.registry = Registry(
            metadata, blobs, code_version=lambda: git_commit(settings.project_dir)
        )
        self.tokens = TokenStore(metadata)
        self.online = online or open_online_store(settings.online or "memory://")
        self.features = FeatureStore(
            metadata,
            self.online,
            base_dir=settings.project_dir,
            metrics=FeatureMetrics.default(),
            storage_options=s3_options(settings),
        )
        self._events: EventLog | None = None

    @property
    def events(self) -> EventLog:
        """The event log of ``settings.events``, opened on first use."""
        if self._events is None:
            self._events = open_event_log(self.settings.events)
        return self._events

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str] = ".", *, settings: Settings | None = None
    ) -> Project:
        """Open the project in ``directory`` (creating its embedded stores on first use)."""
        settings = settings or load_settings(directory)
        s3 = settings.artifacts.startswith(("s3://", "s3a://"))
        options = s3_options(settings) if s3 else {}
        metadata = open_metadata_store(settings.metadata)
        blobs = open_blob_store(settings.artifacts, options)
        return cls(settings, metadata, blobs)

    def close(self) -> None:
        self.online.close()
        self.metadata.close()
        if self._events is not None:
            self._events.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
