"""``FeatureStore``: apply definitions, build training sets, materialize, serve online features.

Definitions are versioned in the metadata store; each change is an entry of the hash-chained
``features`` history. Serving reads use selections resolved once and cached (until the next
``apply``), so a read is key encoding, one online-store round trip, and decoding.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.features import applying, catalog, computed
from mainspring.features.applying import Definition
from mainspring.features.catalog import Materialization, Registered
from mainspring.features.computed import Context
from mainspring.features.datasources import StreamSource
from mainspring.features.definitions import FeatureView
from mainspring.features.frames import feature_table, to_arrow
from mainspring.features.loaded import LoadedCode
from mainspring.features.materializing import materialize_view
from mainspring.features.metrics import FeatureMetrics
from mainspring.features.ondemand import OnDemandFeatureView
from mainspring.features.online import OnlineFeatures, check_unique, encode_rows, read_online
from mainspring.features.plans import Plan, Selection, namespace_of
from mainspring.features.resolving import Features, Resolver
from mainspring.features.sources import RemoteFilesystems, connect, register_features
from mainspring.features.training import Output, TrainingSet, build_training_set
from mainspring.records import JSON, ChainEntry, check_name, utcnow
from mainspring.storage.base import MetadataStore, OnlineStore
from mainspring.storage.chain import HashChain, Verification

__all__ = ["HISTORY_STREAM", "Definition", "FeatureStore", "Features"]

HISTORY_STREAM = "features"


class FeatureStore:
    """The feature store of a project.

    >>> from mainspring.storage.memory import MemoryOnlineStore, memory_metadata
    >>> store = FeatureStore(memory_metadata(), MemoryOnlineStore(), base_dir=Path("."))
    >>> store.definitions("view")
    []
    """

    def __init__(
        self,
        metadata: MetadataStore,
        online: OnlineStore,
        *,
        base_dir: Path,
        metrics: FeatureMetrics | None = None,
        storage_options: Mapping[str, Any] | None = None,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.metadata = metadata
        #: fsspec options for remote sources (``s3://``): endpoint_url, key, secret...
        self.storage_options = dict(storage_options or {})
        self._remote = RemoteFilesystems(self.storage_options)
        self.online = online
        self.base_dir = Path(base_dir)
        self.metrics = metrics
        self.history_log = HashChain(metadata, HISTORY_STREAM)
        # definitions applied by another process show up after at most refresh_seconds
        self._resolver = Resolver(metadata, LoadedCode(self.base_dir), refresh_seconds)
        self._plans = self._resolver.plans

    # ------------------------------------------------------------------ definitions

    def load(self, definitions: Iterable[Definition]) -> None:
        """Make the Python definitions (their transformations) known without applying them."""
        self._resolver.load(definitions)

    def apply(
        self, definitions: Iterable[Definition], *, actor: str, check_sources: bool = True
    ) -> list[Registered]:
        """Validate and register definitions; returns the new versions (unchanged ones are
        skipped). A breaking change to a view that registered model versions were trained on
        is refused, naming them. With ``check_sources`` each view is first tried on a sample of
        its source (columns, types, time zone, the transformation's output); a stream source is
        checked once it has offline rows."""
        check_name(actor, field="actor")
        batch = applying.group(definitions)
        if check_sources:
            for view in batch.views.values():
                self.check_source(view)
        with self.metadata.write() as conn:
            changed = applying.register(
                conn, self.history_log, batch, actor=actor, check=check_sources
            )
        self._resolver.load([*batch.views.values(), *batch.ondemands.values()])
        return changed

    def check_source(self, view: FeatureView, *, rows: int = 1000) -> None:
        """Read the first ``rows`` rows of the view's source through its definition; raises an
        error naming the view and the field at the first mismatch."""
        if isinstance(view.source, StreamSource):
            glob = view.source.offline_glob
            if glob is None or not list((self.base_dir / glob).parent.glob("*.parquet")):
                return  # nothing streamed yet: the events are checked as they come
        con = connect(self.base_dir, self._filesystems([view]))
        try:
            register_features(con, view, self.base_dir, relation="__check", sample=rows)
        finally:
            con.close()

    def definitions(self, kind: str) -> list[Registered]:
        """The newest version of every registered ``entity``, ``view`` or ``service``."""
        self._resolver.check_kind(kind)
        with self.metadata.read() as conn:
            return catalog.all_latest(conn, kind)

    def get(self, kind: str, name: str, version: int | None = None) -> Registered:
        """One registered definition (the newest version unless ``version`` is given)."""
        return self._resolver.get(kind, name, version)

    def versions(self, kind: str, name: str) -> list[Registered]:
        self._resolver.check_kind(kind)
        with self.metadata.read() as conn:
            return catalog.versions(conn, kind, name)

    def view(self, name: str) -> FeatureView:
        """The registered view ``name`` as an object (with its transformation when loaded)."""
        stored = self.get("view", name)
        return self._runnable(stored, need_code=False)

    def _runnable(self, stored: Registered, *, need_code: bool) -> FeatureView:
        return self._resolver.code.view(stored, need_code=need_code)

    def runnable(self, name: str) -> tuple[FeatureView, str]:
        """The registered view ``name`` with its transformation's code, and its online
        namespace (what a stream processor writes to)."""
        stored = self.get("view", name)
        assert stored.schema_digest is not None
        return self._runnable(stored, need_code=True), namespace_of(name, stored.schema_digest)

    def history(self) -> list[ChainEntry]:
        return list(self.history_log.entries())

    def verify(self) -> Verification:
        return self.history_log.verify()

    # ------------------------------------------------------------------ selections

    @property
    def refresh_seconds(self) -> float:
        return self._resolver.refresh_seconds

    @refresh_seconds.setter
    def refresh_seconds(self, seconds: float) -> None:
        self._resolver.refresh_seconds = seconds

    def selection(self, features: Features) -> Selection:
        """Resolve a feature service (object or name) or ``view[:feature]`` references; cached."""
        return self._resolver.selection(features)

    def ondemand_view(self, name: str) -> OnDemandFeatureView:
        """The registered on-demand view ``name`` with its function: loaded definitions first,
        then its module (if importable), then the project's definitions file."""
        return self._resolver.ondemand_view(name)

    def plan(self, features: Features) -> Plan:
        """What a request reads and computes: stored features plus on-demand ones; cached."""
        return self._resolver.plan(features)

    # ------------------------------------------------------------------ offline

    def get_historical_features(
        self,
        entities: Any,
        features: Features,
        *,
        timestamp_column: str = "event_timestamp",
        output: Output = "pandas",
        progress: bool = False,
    ) -> TrainingSet:
        """A point-in-time-correct training set for ``entities`` (join keys + event times).

        On-demand features are computed from the context columns of ``entities`` and the
        point-in-time values of their inputs."""
        plan = self.plan(features)
        selection = self._with_code(plan.selection)
        if plan.ondemand:
            entities = to_arrow(entities, "entities")
            computed.check_context_columns(plan, entities)
        return build_training_set(
            entities,
            selection,
            self.base_dir,
            timestamp_column=timestamp_column,
            output=output,
            progress=progress,
            filesystems=self._filesystems(p.view for p in selection.parts),
            extend=(lambda table: computed.with_offline(plan, table)) if plan.ondemand else None,
            extra_refs=plan.refs,
        )

    def _filesystems(self, views: Iterable[FeatureView]) -> list[Any]:
        return self._remote.of(views)

    def _with_code(self, selection: Selection) -> Selection:
        parts = []
        for part in selection.parts:
            if part.view.transformation is None:
                stored = self.get("view", part.view.name, part.version)
                if stored.definition.get("transformation") is not None:
                    part = replace(part, view=self._runnable(stored, need_code=True))
            parts.append(part)
        return Selection(tuple(parts))

    # ------------------------------------------------------------------ online

    def get_online_features(
        self,
        features: Features,
        entities: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        context: Context | None = None,
        *,
        now: datetime | None = None,
    ) -> OnlineFeatures:
        """The latest values (with event times) for ``entities``, in one online-store read.

        A missing entity, or one whose row is older than the view's TTL, gets ``None`` values
        and ``found = False``. On-demand features are computed from ``context``: one mapping of
        context fields for every entity, a mapping of one value list per field, or one mapping
        per entity. Context fields that no requested view needs are ignored (a request without
        on-demand features ignores the context).
        """
        resolver = self._resolver
        if time.monotonic() - resolver.checked >= resolver.refresh_seconds:
            resolver.refresh()
        key = features if isinstance(features, str) else None
        plan = self._plans.get(("service", key)) if key is not None else None
        if plan is None:
            plan = self.plan(features)
        selection = plan.selection
        started = time.perf_counter()
        if not plan.ondemand:
            result = read_online(self.online, selection, entities, now=now)
        elif selection.parts:
            stored = read_online(self.online, selection, entities, now=now)
            result = computed.with_online(plan, stored, context)
        else:
            result = computed.with_online(plan, computed.entities_only(entities), context)
        if self.metrics is not None:
            self.metrics.observe_read(selection.view_names, time.perf_counter() - started)
        return result

    def write_online(self, view: str | FeatureView, rows: Any) -> int:
        """Write event rows (source columns: join keys, timestamp, inputs) to the online store,
        through the view's transformation, as one atomic batch."""
        name = view if isinstance(view, str) else view.name
        stored = self.get("view", name)
        runnable = self._runnable(stored, need_code=True)
        table = feature_table(runnable, to_arrow(rows, "rows"), f"feature view {name!r}: rows")
        encoded = encode_rows(runnable, table)
        check_unique(runnable, encoded)
        assert stored.schema_digest is not None
        written = self.online.write(namespace_of(name, stored.schema_digest), encoded)
        if self.metrics is not None:
            self.metrics.written(name, written, "stream")
        return written

    def materialize(
        self,
        views: Sequence[str] | None = None,
        *,
        end: datetime | None = None,
        full: bool = False,
        actor: str = "system",
        progress: bool = False,
    ) -> list[Materialization]:
        """Copy the latest row per entity from the offline sources to the online store.

        Incremental by default: only rows with event times after the previous run's end (and up
        to ``end``, default now). ``full`` reads everything again. Without ``views``, every view
        with a batch source; a stream-sourced view is materialized (from its offline rows) only
        when named.
        """
        end = end or utcnow()
        if end.tzinfo is None:
            raise InvalidInputError("end must be timezone-aware (UTC)", field="end")
        names = (
            list(views)
            if views
            else [  # stream views are kept fresh by their stream; name one to rebuild it
                r.name
                for r in self.definitions("view")
                if r.definition["source"]["kind"] != "stream"
            ]
        )
        runs = []
        for name in names:
            stored = self.get("view", name)
            view = self._runnable(stored, need_code=True)
            assert stored.schema_digest is not None
            runs.append(
                materialize_view(
                    view,
                    stored.version,
                    namespace_of(name, stored.schema_digest),
                    metadata=self.metadata,
                    online=self.online,
                    base_dir=self.base_dir,
                    filesystems=self._filesystems([view]),
                    end=end,
                    full=full,
                    actor=actor,
                    progress=progress,
                    metrics=self.metrics,
                )
            )
        return runs

    def statistics(self, name: str) -> JSON:
        """Online row count, last materialization and freshness of view ``name``."""
        stored = self.get("view", name)
        assert stored.schema_digest is not None
        namespace = namespace_of(name, stored.schema_digest)
        with self.metadata.read() as conn:
            last = catalog.last_materialization(conn, namespace)
        now = utcnow()
        return {
            "view": name,
            "version": stored.version,
            "online_rows": self.online.count(namespace),
            "last_materialization": last.to_dict() if last else None,
            "freshness_seconds": (now - last.end).total_seconds() if last else None,
        }
