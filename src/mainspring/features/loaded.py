"""The code of registered definitions: transformations and on-demand functions.

The metadata store holds definitions with the digests of their functions, not the functions.
:class:`LoadedCode` keeps the Python definitions a process has loaded (or applied) and turns a
registered definition back into a runnable one, refusing code that no longer matches what was
applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.features import catalog, ondemand
from mainspring.features.catalog import Registered
from mainspring.features.definition_file import DEFAULT_FILE, load_definitions
from mainspring.features.definitions import FeatureView, transformation_digest, view_from_dict
from mainspring.features.ondemand import OnDemandFeatureView


class LoadedCode:
    """Loaded feature views and on-demand views, by name."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.views: dict[str, FeatureView] = {}
        self.ondemands: dict[str, OnDemandFeatureView] = {}

    def load(self, definitions: Iterable[Any]) -> None:
        for item in definitions:
            if isinstance(item, FeatureView):
                self.views[item.name] = item
            elif isinstance(item, OnDemandFeatureView):
                self.ondemands[item.name] = item

    def view(self, stored: Registered, *, need_code: bool) -> FeatureView:
        """The registered view ``stored`` as an object; with ``need_code`` its transformation
        must be loaded (and match the applied digest)."""
        wanted = (stored.definition.get("transformation") or {}).get("digest")
        loaded = self.views.get(stored.name)
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

    def ondemand_view(
        self, stored: Registered, *, on_load: Callable[[], None] | None = None
    ) -> OnDemandFeatureView:
        """The registered on-demand view ``stored`` with its function: loaded definitions first,
        then its module (if importable), then the project's definitions file (after which
        ``on_load`` runs)."""
        name = stored.name
        wanted = ondemand.digest_of_function(stored.definition)
        for attempt in range(2):
            loaded = self.ondemands.get(name)
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
            if on_load is not None:
                on_load()
        raise InvalidInputError(
            f"on-demand feature view {name!r} has a function "
            f"({stored.definition['function']['name']}) whose code is not loaded; load the "
            f"definitions first (project.features.load(...), or keep them in {DEFAULT_FILE} of "
            "the project), and make sure they match the applied version",
            field=name,
        )
