"""The composition root: ``Project.open`` reads settings once and wires the services.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     with Project.open(d) as project:
...         print(project.registry.list_models(), project.tokens.enabled())
[] False
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

from mainspring.access import TokenStore
from mainspring.audit import AuditMetrics, DecisionLog, PersonalData
from mainspring.audit.outbox import MIRROR_ONLY_REST_S, Mirror
from mainspring.config import AUDIT_KEY_FILE, STATE_DIR, Settings, load_settings
from mainspring.errors import ConfigError
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
from mainspring.storage.sql import SqlMetadataStore


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


def audit_key(path: Path) -> bytes:
    """The HMAC key of hashed personal fields, from ``path`` (hex); created on first use with 32
    random bytes, readable by the owner only. Keep it (and back it up) with the metadata: with
    another key the same value gets another pseudonym, so old and new records stop joining."""
    if not path.exists():
        # write a temporary file, then link it into place: a concurrent opener sees no key file or
        # a complete one, and the first link wins
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        except OSError as exc:
            raise ConfigError(
                f"audit key file {path} cannot be created: {exc}", key="audit.key_file"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"audit key file {path} must hold a hex key (at least 16 bytes): {exc}",
            key="audit.key_file",
        ) from None
    if len(key) < 16:
        raise ConfigError(
            f"audit key file {path} holds {len(key)} bytes; use at least 16", key="audit.key_file"
        )
    return key


MIRROR_LOCK = "decision-mirror.lock"


class MirrorClaim:
    """Elects one process of a project to mirror the decision log to the event log: the one
    holding an exclusive lock on a file of the state directory. When it exits, the kernel frees
    the lock and another process's next pass takes it over."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __call__(self) -> bool:
        if self._fd is not None:
            return True
        try:
            import fcntl
        except ImportError:  # no flock (Windows): every process publishes; consumers dedupe
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor frees the lock


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
        self._decisions: DecisionLog | None = None
        self._decisions_lock = threading.Lock()  # one log (one writer thread) per project
        self._mirror_claim = MirrorClaim(settings.project_dir / STATE_DIR / MIRROR_LOCK)

    @property
    def events(self) -> EventLog:
        """The event log of ``settings.events``, opened on first use."""
        if self._events is None:
            self._events = open_event_log(self.settings.events)
        return self._events

    @property
    def decisions(self) -> DecisionLog:
        """The decision log on the metadata store, mirrored to :attr:`events`, opened on first
        use with the ``audit`` settings (personal fields, durability, key file, segments)."""
        with self._decisions_lock:
            if self._decisions is None:
                self._decisions = self._open_decisions()
            return self._decisions

    def mirror_decisions(self, interval_s: float = 0.2) -> Mirror | None:
        """Publish the decision log to the event log from this process, polling every
        ``interval_s``: for a process that appends nothing itself, such as the supervisor of
        ``mainspring serve``'s workers, which then never spend their own time (or their GIL) on
        it. None when another process of the project already mirrors; ``Mirror.stop`` ends it.
        """
        if not isinstance(self.metadata, SqlMetadataStore) or not self._mirror_claim():
            return None
        mirror = Mirror(self.metadata, self.events, claim=self._mirror_claim)
        mirror.start(interval_s, rest_s=MIRROR_ONLY_REST_S)
        mirror.wake()
        return mirror

    def _open_decisions(self) -> DecisionLog:
        audit = self.settings.audit
        key = None
        if "hash" in audit.personal.values():
            path = audit.key_file or self.settings.project_dir / STATE_DIR / AUDIT_KEY_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            key = audit_key(path)
        return DecisionLog(
            self.metadata,
            personal=PersonalData(audit.personal, key=key),
            durability=audit.durability,
            events=self.events,
            segments=audit.segments,
            metrics=AuditMetrics.default(),
            mirror_claim=self._mirror_claim,
        )

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
        if self._decisions is not None:
            self._decisions.close()
        self._mirror_claim.release()
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
