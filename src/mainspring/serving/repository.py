"""The served models: which versions of each model are loaded, and which alias points where.

Each model is held as an immutable :class:`ServedModel` snapshot. Loading, promotion and rollback
build a new snapshot (loading and warming any new version first, reusing loaded ones) and swap it
in with one assignment, so a request sees either the old or the new snapshot, never a mix; a
request already running keeps its runtime until it finishes (that is the drain).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from mainspring.errors import NotFoundError
from mainspring.registry import CHAMPION, Registry
from mainspring.serving.runtime import ModelRuntime


@dataclass(frozen=True, slots=True)
class ServedModel:
    """The loaded versions of one model and its aliases, at one moment."""

    name: str
    versions: Mapping[str, ModelRuntime]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def default(self) -> str:
        """The version answering when none is named: the champion, else the latest."""
        return self.aliases.get(CHAMPION) or max(self.versions, key=int)

    def version_list(self) -> tuple[str, ...]:
        return tuple(sorted(self.versions, key=int))

    def runtime(self, version: str | None) -> tuple[ModelRuntime, str]:
        """The runtime answering for ``version`` (a number, an alias or None) and the arm label."""
        if not version:
            return self.versions[self.default], "default"
        if version in self.versions:
            return self.versions[version], "version"
        number = self.aliases.get(version)
        if number is not None:
            return self.versions[number], version
        aliases = ", ".join(f"{a}->{v}" for a, v in sorted(self.aliases.items())) or "none"
        raise NotFoundError(
            "model version",
            f"{self.name}/{version}",
            f"served versions: {', '.join(self.version_list())}; aliases: {aliases}",
        )


class ModelRepository:
    """Loads models from the registry and holds their current :class:`ServedModel` snapshots."""

    def __init__(self, registry: Registry, *, trusted: bool = False) -> None:
        self.registry = registry
        self.trusted = trusted
        self._models: dict[str, ServedModel] = {}
        self._unloaded: set[str] = set()
        self._lock = threading.Lock()  # one loader at a time; readers never wait

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(list(self._models.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def get(self, name: str) -> ServedModel:
        served = self._models.get(name)
        if served is None:
            if name in self._unloaded:
                raise NotFoundError("model", name, "it is unloaded; load it through the repository")
            known = ", ".join(sorted(self._models)) or "none"
            raise NotFoundError("model", name, f"served models: {known}")
        return served

    def current(self, name: str) -> ServedModel | None:
        """The snapshot of ``name`` if it is loaded."""
        return self._models.get(name)

    def names(self) -> list[str]:
        """Every registered model name."""
        return [m.name for m in self.registry.list_models()]

    def unloaded(self) -> list[str]:
        return sorted(self._unloaded)

    def load(self, name: str) -> ServedModel:
        """Load (or refresh) ``name``: its latest version and every aliased one, warmed, then
        swapped in at once. Versions already loaded with the same digest are reused."""
        with self._lock:
            model = next((m for m in self.registry.list_models() if m.name == name), None)
            if model is None or model.latest_version == 0:
                raise NotFoundError("model", name, "it is not registered (or has no versions)")
            wanted = {model.latest_version, *model.aliases.values()}
            current = self._models.get(name)
            versions: dict[str, ModelRuntime] = {}
            for number in sorted(wanted):
                key = str(number)
                old = current.versions.get(key) if current else None
                if old is not None:
                    versions[key] = old
                    continue
                runtime = ModelRuntime(self.registry.load(f"{name}/{number}", trusted=self.trusted))
                runtime.warm()
                versions[key] = runtime
            served = ServedModel(
                name, versions, {alias: str(v) for alias, v in model.aliases.items()}
            )
            self._models[name] = served  # the atomic switch
            self._unloaded.discard(name)
            return served

    def unload(self, name: str) -> None:
        with self._lock:
            if self._models.pop(name, None) is None:
                raise NotFoundError("model", name, "it is not loaded")
            self._unloaded.add(name)

    def load_all(self) -> list[ServedModel]:
        """Load every registered model."""
        return [self.load(name) for name in self.names()]
