"""``FeatureStore``: apply definitions, build training sets, materialize, serve online features.

Definitions are versioned in the metadata store; each change is an entry of the hash-chained
``features`` history. Serving reads use selections resolved once and cached (until the next
``apply``), so a read is key encoding, one online-store round trip, and decoding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mainspring.errors import (
    GovernanceError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
)
from mainspring.features import catalog, computed, ondemand
from mainspring.features.catalog import Materialization, Registered
from mainspring.features.computed import Context
from mainspring.features.definition_file import DEFAULT_FILE, load_definitions
from mainspring.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    StreamSource,
    transformation_digest,
    view_from_dict,
)
from mainspring.features.frames import TS, feature_table, to_arrow
from mainspring.features.metrics import FeatureMetrics
from mainspring.features.ondemand import OnDemandFeatureView
from mainspring.features.online import (
    OnlineFeatures,
    check_unique,
    encode_rows,
    read_online,
)
from mainspring.features.plans import (
    Plan,
    Selection,
    check_ondemand,
    make_plan,
    namespace_of,
    select,
)
from mainspring.features.progress import Steps
from mainspring.features.sources import (
    connect,
    fetch,
    quote,
    register_features,
    remote_schemes,
)
from mainspring.features.training import Output, TrainingSet, build_training_set
from mainspring.records import JSON, ChainEntry, check_name, utcnow
from mainspring.storage.base import MetadataStore, OnlineStore
from mainspring.storage.chain import HashChain, Verification

HISTORY_STREAM = "features"
#: Rows per atomic online write during materialization.
BATCH_ROWS = 10_000

Definition = Entity | FeatureView | FeatureService | OnDemandFeatureView
Features = str | FeatureService | Sequence[str]


def _add(target: dict[str, Any], item: Definition) -> None:
    if item.name in target and target[item.name] != item:
        raise InvalidInputError(
            f"two different definitions are named {item.name!r}", field=item.name
        )
    target[item.name] = item


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
        self._remote: dict[str, Any] = {}
        self.online = online
        self.base_dir = Path(base_dir)
        self.metrics = metrics
        self.history_log = HashChain(metadata, HISTORY_STREAM)
        self._loaded: dict[str, FeatureView] = {}
        self._loaded_ondemand: dict[str, OnDemandFeatureView] = {}
        self._selections: dict[Any, Selection] = {}
        self._plans: dict[Any, Plan] = {}
        # definitions applied by another process show up after at most refresh_seconds
        self.refresh_seconds = refresh_seconds
        self._checked = time.monotonic()
        self._marker: tuple[int, int] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ definitions

    def load(self, definitions: Iterable[Definition]) -> None:
        """Make the Python definitions (their transformations) known without applying them."""
        for item in definitions:
            if isinstance(item, FeatureView):
                self._loaded[item.name] = item
            elif isinstance(item, OnDemandFeatureView):
                self._loaded_ondemand[item.name] = item
        with self._lock:
            self._plans.clear()

    def apply(
        self, definitions: Iterable[Definition], *, actor: str, check_sources: bool = True
    ) -> list[Registered]:
        """Validate and register definitions; returns the new versions (unchanged ones are
        skipped). A breaking change to a view that registered model versions were trained on
        is refused, naming them. With ``check_sources`` each view is first tried on a sample of
        its source (columns, types, time zone, the transformation's output); a stream source is
        checked once it has offline rows."""
        check_name(actor, field="actor")
        items = list(definitions)
        entities: dict[str, Entity] = {}
        views: dict[str, FeatureView] = {}
        services: dict[str, FeatureService] = {}
        ondemands: dict[str, OnDemandFeatureView] = {}
        for item in items:
            if isinstance(item, FeatureView):
                entities.setdefault(item.entity.name, item.entity)
                if entities[item.entity.name] != item.entity:
                    raise InvalidInputError(
                        f"feature view {item.name!r} uses a different definition of entity "
                        f"{item.entity.name!r} than another definition applied with it",
                        field=f"{item.name}.entity",
                    )
                _add(views, item)
            elif isinstance(item, Entity):
                _add(entities, item)
            elif isinstance(item, FeatureService):
                _add(services, item)
            elif isinstance(item, OnDemandFeatureView):
                _add(ondemands, item)
            else:
                raise InvalidInputError(
                    f"{item!r} is not an Entity, FeatureView, OnDemandFeatureView or "
                    "FeatureService",
                    field="definitions",
                )
        if check_sources:
            for view in views.values():
                self.check_source(view)
        changed: list[Registered] = []
        with self.metadata.write() as conn:
            for entity in entities.values():
                changed += self._apply_one(
                    conn, "entity", entity.name, entity.to_dict(), None, actor
                )
            for view in views.values():
                if view.name in ondemands or catalog.latest(conn, ondemand.KIND, view.name):
                    raise InvalidInputError(
                        f"feature view {view.name!r} has the name of an on-demand feature view; "
                        "give it another name",
                        field=view.name,
                    )
                before = catalog.latest(conn, "view", view.name)
                definition = view.to_dict()
                if before is not None and before.digest != catalog.digest_of(definition):
                    breaks = view.breaking_changes(before.definition)
                    users = catalog.model_users(conn, view.name) if breaks else []
                    if users:
                        raise GovernanceError(
                            f"feature view {view.name!r} is used by model versions "
                            f"{', '.join(users)}; this change would break them: "
                            f"{'; '.join(breaks)}. Add the change as a new view (e.g. "
                            f"'{view.name}_v2') and retrain, or keep the old fields"
                        )
                changed += self._apply_one(
                    conn, "view", view.name, definition, view.schema_digest(), actor
                )
            known = {r.name for r in catalog.all_latest(conn, "view")}
            changed += self._apply_ondemand(conn, ondemands, views, known, actor, check_sources)
            computed_views = {r.name: r for r in catalog.all_latest(conn, ondemand.KIND)}
            for service in services.values():
                for ref in service.refs:
                    name, _, feature = ref.partition(":")
                    if name in computed_views:
                        fields = [f["name"] for f in computed_views[name].definition["fields"]]
                        if feature and feature not in fields:
                            raise InvalidInputError(
                                f"on-demand feature view {name!r} has no feature {feature!r}; "
                                f"it has: {', '.join(fields)}",
                                field=f"{name}:{feature}",
                            )
                        continue
                    used = views.get(name)
                    if used is None and name not in known:
                        raise InvalidInputError(
                            f"feature service {service.name!r} names feature view {name!r}, "
                            "which is not registered; apply it too",
                            field=f"{service.name}.features",
                        )
                    if used is None:
                        stored = catalog.latest(conn, "view", name)
                        assert stored is not None
                        used = view_from_dict(stored.definition)
                    if feature:
                        used.field(feature)
                changed += self._apply_one(
                    conn, "service", service.name, service.to_dict(), None, actor
                )
        with self._lock:
            self._loaded.update(views)
            self._loaded_ondemand.update(ondemands)
            self._selections.clear()
            self._plans.clear()
        return changed

    def _apply_ondemand(
        self,
        conn: Any,
        ondemands: Mapping[str, OnDemandFeatureView],
        views: Mapping[str, FeatureView],
        known: set[str],
        actor: str,
        check: bool,
    ) -> list[Registered]:
        """Validate (inputs, and with ``check`` the function on sample rows) and register
        on-demand views; a breaking change to one that model versions use is refused."""
        changed: list[Registered] = []
        if not ondemands:
            return changed
        available: dict[str, FeatureView] = dict(views)
        for name in known - set(views):
            stored = catalog.latest(conn, "view", name)
            assert stored is not None
            available[name] = view_from_dict(stored.definition)
        for od in ondemands.values():
            if od.name in available:
                raise InvalidInputError(
                    f"on-demand feature view {od.name!r} has the name of a feature view; give "
                    "it another name",
                    field=od.name,
                )
            check_ondemand(od, available, run=check)
            before = catalog.latest(conn, ondemand.KIND, od.name)
            definition = od.to_dict()
            if before is not None and before.digest != catalog.digest_of(definition):
                breaks = od.breaking_changes(before.definition)
                users = catalog.model_users(conn, od.name) if breaks else []
                if users:
                    raise GovernanceError(
                        f"on-demand feature view {od.name!r} is used by model versions "
                        f"{', '.join(users)}; this change would break them: "
                        f"{'; '.join(breaks)}. Add the change as a new view (e.g. "
                        f"'{od.name}_v2') and retrain"
                    )
            changed += self._apply_one(
                conn, ondemand.KIND, od.name, definition, ondemand.schema_digest(od), actor
            )
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

    def _apply_one(
        self,
        conn: Any,
        kind: str,
        name: str,
        definition: JSON,
        schema_digest: str | None,
        actor: str,
    ) -> list[Registered]:
        before = catalog.latest(conn, kind, name)
        if before is not None and before.digest == catalog.digest_of(definition):
            return []
        version = before.version + 1 if before else 1
        registered = catalog.insert(conn, kind, name, version, definition, schema_digest, actor)
        self.history_log.append(
            conn,
            actor=actor,
            action=f"{kind}.apply",
            subject=f"{kind}/{name}",
            details={"version": version, "digest": registered.digest},
        )
        return [registered]

    def definitions(self, kind: str) -> list[Registered]:
        """The newest version of every registered ``entity``, ``view`` or ``service``."""
        self._check_kind(kind)
        with self.metadata.read() as conn:
            return catalog.all_latest(conn, kind)

    def get(self, kind: str, name: str, version: int | None = None) -> Registered:
        """One registered definition (the newest version unless ``version`` is given)."""
        self._check_kind(kind)
        with self.metadata.read() as conn:
            found = catalog.versions(conn, kind, name)
        if version is not None:
            found = [r for r in found if r.version == version]
        if not found:
            label = {
                "view": "feature view",
                "service": "feature service",
                "ondemand": "on-demand feature view",
            }.get(kind, kind)
            raise NotFoundError(
                label,
                name if version is None else f"{name} version {version}",
                "see: mainspring features list",
            )
        return found[-1]

    def versions(self, kind: str, name: str) -> list[Registered]:
        self._check_kind(kind)
        with self.metadata.read() as conn:
            return catalog.versions(conn, kind, name)

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in catalog.KINDS:
            raise InvalidInputError(
                f"kind {kind!r} is not one of {', '.join(catalog.KINDS)}", field="kind"
            )

    def view(self, name: str) -> FeatureView:
        """The registered view ``name`` as an object (with its transformation when loaded)."""
        stored = self.get("view", name)
        return self._runnable(stored, need_code=False)

    def _runnable(self, stored: Registered, *, need_code: bool) -> FeatureView:
        wanted = (stored.definition.get("transformation") or {}).get("digest")
        loaded = self._loaded.get(stored.name)
        if loaded is not None and catalog.digest_of(loaded.to_dict()) == stored.digest:
            return loaded
        if wanted is not None and need_code:
            if loaded is not None and transformation_digest(loaded.transformation) == wanted:
                return view_from_dict(stored.definition, loaded.transformation)
            raise InvalidInputError(
                f"feature view {stored.name!r} has a transformation "
                f"({stored.definition['transformation']['name']}) whose code is not loaded; "
                "load the definitions first (project.features.load(...) or the CLI's --file)",
                field=stored.name,
            )
        return view_from_dict(stored.definition)

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

    def _refresh(self) -> None:
        """Forget cached selections when definitions changed (possibly in another process)."""
        self._checked = time.monotonic()
        with self.metadata.read() as conn:
            current = catalog.marker(conn)
        if current != self._marker:
            with self._lock:
                self._marker = current
                self._selections.clear()
                self._plans.clear()

    def selection(self, features: Features) -> Selection:
        """Resolve a feature service (object or name) or ``view[:feature]`` references; cached."""
        service: str | None = None
        refs: tuple[str, ...] = ()
        key: tuple[str, Any]
        if isinstance(features, FeatureService | str):
            service = features if isinstance(features, str) else features.name
            key = ("service", service)
        else:
            refs = tuple(features)
            key = ("refs", refs)
        cached = self._selections.get(key)
        if cached is not None:
            return cached
        with self.metadata.read() as conn:
            if service is not None:
                stored = catalog.latest(conn, "service", service)
                if stored is None:
                    raise NotFoundError(
                        "feature service", service, "apply it, or pass 'view:feature' references"
                    )
                refs = tuple(stored.definition["features"])
            views = {}
            for stored in catalog.all_latest(conn, "view"):
                assert stored.schema_digest is not None
                views[stored.name] = (
                    self._runnable(stored, need_code=False),
                    stored.version,
                    namespace_of(stored.name, stored.schema_digest),
                )
        selection = select(refs, views)
        with self._lock:
            self._selections[key] = selection
        return selection

    def ondemand_view(self, name: str) -> OnDemandFeatureView:
        """The registered on-demand view ``name`` with its function: loaded definitions first,
        then its module (if importable), then the project's definitions file."""
        stored = self.get(ondemand.KIND, name)
        wanted = ondemand.digest_of_function(stored.definition)
        for attempt in range(2):
            loaded = self._loaded_ondemand.get(name)
            if loaded is not None and transformation_digest(loaded.function) == wanted:
                if catalog.digest_of(loaded.to_dict()) == stored.digest:
                    return loaded
                return ondemand.view_from_dict(stored.definition, loaded.function)
            function = ondemand.import_function(stored.definition["function"])
            if function is not None:
                return ondemand.view_from_dict(stored.definition, function)
            file = self.base_dir / DEFAULT_FILE
            if attempt or not file.is_file():
                break
            self.load(load_definitions(file))
        raise InvalidInputError(
            f"on-demand feature view {name!r} has a function "
            f"({stored.definition['function']['name']}) whose code is not loaded; load the "
            f"definitions first (project.features.load(...), or keep them in {DEFAULT_FILE} of "
            "the project), and make sure they match the applied version",
            field=name,
        )

    def plan(self, features: Features) -> Plan:
        """What a request reads and computes: stored features plus on-demand ones; cached."""
        key: tuple[str, Any] = (
            ("service", features if isinstance(features, str) else features.name)
            if isinstance(features, FeatureService | str)
            else ("refs", tuple(features))
        )
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        with self.metadata.read() as conn:
            computed_names = {r.name for r in catalog.all_latest(conn, ondemand.KIND)}
            if key[0] == "service":
                stored = catalog.latest(conn, "service", key[1])
                refs = tuple(stored.definition["features"]) if stored is not None else ()
            else:
                refs = key[1]
        used = {r.partition(":")[0] for r in refs if isinstance(r, str)} & computed_names
        if not used:
            plan = Plan(self.selection(features))
        else:
            computed_views = {name: self.ondemand_view(name) for name in used}
            versions = {name: self.get(ondemand.KIND, name).version for name in used}
            plan = make_plan(refs, computed_views, versions, self._registered_views())
        with self._lock:
            self._plans[key] = plan
        return plan

    def _registered_views(self) -> dict[str, tuple[FeatureView, int, str]]:
        with self.metadata.read() as conn:
            views = {}
            for stored in catalog.all_latest(conn, "view"):
                assert stored.schema_digest is not None
                views[stored.name] = (
                    self._runnable(stored, need_code=False),
                    stored.version,
                    namespace_of(stored.name, stored.schema_digest),
                )
        return views

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
        """fsspec filesystems for the remote sources of ``views`` (created once, on first use)."""
        out = []
        for scheme in sorted(remote_schemes(views)):
            if scheme not in self._remote:
                if scheme not in ("s3", "s3a"):
                    raise InvalidInputError(
                        f"sources under {scheme}:// are not supported; use local paths or s3://",
                        field="source.path",
                    )
                try:
                    import s3fs
                except ImportError:
                    raise MissingDependencyError(
                        "s3fs", extra="s3", purpose="Feature sources on S3"
                    ) from None
                self._remote[scheme] = s3fs.S3FileSystem(**self.storage_options)
            out.append(self._remote[scheme])
        return out

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
        if time.monotonic() - self._checked >= self.refresh_seconds:
            self._refresh()
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
            namespace = namespace_of(name, stored.schema_digest)
            with self.metadata.read() as conn:
                last = catalog.last_materialization(conn, namespace)
            start = None if full or last is None else last.end
            con = connect(self.base_dir, self._filesystems([view]))
            try:
                register_features(con, view, self.base_dir, relation="__f", since=start, until=end)
                keys = ", ".join(quote(k) for k in view.entity.join_keys)
                latest = fetch(
                    con,
                    f"SELECT * FROM __f QUALIFY row_number() OVER "  # noqa: S608 (quoted identifiers, no user values)
                    f"(PARTITION BY {keys} ORDER BY {TS} DESC) = 1",
                )
            finally:
                con.close()
            rows = encode_rows(view, latest)
            batches = range(0, len(rows), BATCH_ROWS)
            with Steps(progress, total=len(batches), description=f"materializing {name}") as s:
                for i in batches:
                    self.online.write(namespace, rows[i : i + BATCH_ROWS])
                    s.advance(f"materializing {name}")
            run = Materialization(
                name, stored.version, namespace, start, end, len(rows), utcnow(), actor
            )
            with self.metadata.write() as conn:
                catalog.record_materialization(conn, run)
            if self.metrics is not None:
                self.metrics.written(name, len(rows), "materialize")
                self.metrics.materialized(name, end, self.online.count(namespace))
            runs.append(run)
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
