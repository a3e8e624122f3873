"""Definitions written as plain Python in the project (``features.py`` by default).

The file is run as a script; every :class:`Entity`, :class:`FeatureView`,
:class:`OnDemandFeatureView` and :class:`FeatureService` bound to a top-level name (or listed in
``DEFINITIONS``) is collected.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.features.definitions import Entity, FeatureService, FeatureView
from mainspring.features.ondemand import OnDemandFeatureView

DEFAULT_FILE = "features.py"

Definition = Entity | FeatureView | FeatureService | OnDemandFeatureView


def load_definitions(path: str | Path) -> list[Definition]:
    """Run the definitions file at ``path`` and collect the definitions it makes."""
    file = Path(path)
    if not file.is_file():
        raise NotFoundError(
            "definitions file", str(file), "write your Entity/FeatureView/FeatureService there"
        )
    try:
        namespace = runpy.run_path(str(file), run_name="mainspring_features")
    except InvalidInputError:
        raise
    except Exception as exc:  # the user's code: say where it failed
        raise InvalidInputError(
            f"{file} failed to run: {type(exc).__name__}: {exc}", field=str(file)
        ) from exc
    listed = namespace.get("DEFINITIONS")
    values = list(listed) if listed is not None else list(namespace.values())
    found: dict[int, Definition] = {}
    for value in values:
        if isinstance(value, Entity | FeatureView | FeatureService | OnDemandFeatureView):
            found.setdefault(id(value), value)
    if not found:
        raise InvalidInputError(
            f"{file} defines no Entity, FeatureView or FeatureService", field=str(file)
        )
    return list(found.values())
