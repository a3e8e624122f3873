"""Resolving names to what a request reads: registered definitions, selections and plans.

A :class:`Resolver` looks definitions up in the catalog, pairs them with their loaded code
(:class:`~mainspring.features.loaded.LoadedCode`) and caches the :class:`Selection` or
:class:`Plan` of each feature service or reference list, until definitions change (an ``apply``
here, or one in another process, noticed within ``refresh_seconds``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.features import catalog, ondemand
from mainspring.features.catalog import Registered
from mainspring.features.definitions import FeatureService, FeatureView
from mainspring.features.loaded import LoadedCode
from mainspring.features.ondemand import OnDemandFeatureView
from mainspring.features.plans import (
    Plan,
    Selection,
    closure,
    make_plan,
    namespace_of,
    select,
)
from mainspring.storage.base import MetadataStore

Features = str | FeatureService | Sequence[str]

_LABELS = {
    "view": "feature view",
    "service": "feature service",
    "ondemand": "on-demand feature view",
}


def cache_key(features: Features) -> tuple[str, Any]:
    if isinstance(features, FeatureService | str):
        return ("service", features if isinstance(features, str) else features.name)
    return ("refs", tuple(features))


class Resolver:
    """Registered definitions with their code, and cached selections and plans."""

    def __init__(self, metadata: MetadataStore, code: LoadedCode, refresh_seconds: float) -> None:
        self.metadata = metadata
        self.code = code
        self.selections: dict[Any, Selection] = {}
        #: Plans by :func:`cache_key`; read without the lock on the serving path.
        self.plans: dict[Any, Plan] = {}
        self.refresh_seconds = refresh_seconds
        self.checked = time.monotonic()
        self._marker: tuple[int, int] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the catalog

    @staticmethod
    def check_kind(kind: str) -> None:
        if kind not in catalog.KINDS:
            raise InvalidInputError(
                f"kind {kind!r} is not one of {', '.join(catalog.KINDS)}", field="kind"
            )

    def get(self, kind: str, name: str, version: int | None = None) -> Registered:
        """One registered definition (the newest version unless ``version`` is given)."""
        self.check_kind(kind)
        with self.metadata.read() as conn:
            found = catalog.versions(conn, kind, name)
        if version is not None:
            found = [r for r in found if r.version == version]
        if not found:
            raise NotFoundError(
                _LABELS.get(kind, kind),
                name if version is None else f"{name} version {version}",
                "see: mainspring features list",
            )
        return found[-1]

    # ------------------------------------------------------------------ code and caches

    def load(self, definitions: Iterable[Any]) -> None:
        self.code.load(definitions)
        self.forget()

    def forget(self) -> None:
        with self._lock:
            self.selections.clear()
            self.plans.clear()

    def refresh(self) -> None:
        """Forget cached selections when definitions changed (possibly in another process)."""
        self.checked = time.monotonic()
        with self.metadata.read() as conn:
            current = catalog.marker(conn)
        if current != self._marker:
            with self._lock:
                self._marker = current
                self.selections.clear()
                self.plans.clear()

    def ondemand_view(self, name: str) -> OnDemandFeatureView:
        return self.code.ondemand_view(self.get(ondemand.KIND, name), on_load=self.forget)

    def registered_views(self) -> dict[str, tuple[FeatureView, int, str]]:
        """Every registered view: name → (definition, version, online namespace)."""
        with self.metadata.read() as conn:
            views = {}
            for stored in catalog.all_latest(conn, "view"):
                assert stored.schema_digest is not None
                views[stored.name] = (
                    self.code.view(stored, need_code=False),
                    stored.version,
                    namespace_of(stored.name, stored.schema_digest),
                )
        return views

    # ------------------------------------------------------------------ selections and plans

    def selection(self, features: Features) -> Selection:
        """Resolve a feature service (object or name) or ``view[:feature]`` references; cached."""
        key = cache_key(features)
        cached = self.selections.get(key)
        if cached is not None:
            return cached
        refs: tuple[str, ...] = key[1] if key[0] == "refs" else ()
        if key[0] == "service":
            with self.metadata.read() as conn:
                stored = catalog.latest(conn, "service", key[1])
            if stored is None:
                raise NotFoundError(
                    "feature service", key[1], "apply it, or pass 'view:feature' references"
                )
            refs = tuple(stored.definition["features"])
        selection = select(refs, self.registered_views())
        with self._lock:
            self.selections[key] = selection
        return selection

    def plan(self, features: Features) -> Plan:
        """What a request reads and computes: stored features plus on-demand ones; cached."""
        key = cache_key(features)
        cached = self.plans.get(key)
        if cached is not None:
            return cached
        with self.metadata.read() as conn:
            reads = {
                r.name: [ref.partition(":")[0] for ref in r.definition["inputs"]]
                for r in catalog.all_latest(conn, ondemand.KIND)
            }
            if key[0] == "service":
                stored = catalog.latest(conn, "service", key[1])
                refs = tuple(stored.definition["features"]) if stored is not None else ()
            else:
                refs = key[1]
        named = {r.partition(":")[0] for r in refs if isinstance(r, str)}
        used = closure(sorted(named & set(reads)), reads)
        if not used:
            plan = Plan(self.selection(features))
        else:
            computed_views = {name: self.ondemand_view(name) for name in used}
            versions = {name: self.get(ondemand.KIND, name).version for name in used}
            plan = make_plan(refs, computed_views, versions, self.registered_views())
        with self._lock:
            self.plans[key] = plan
        return plan
