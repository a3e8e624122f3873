"""The feature store: one definition, the same values for training and serving.

See ``docs/features.md``. Offline work needs the ``features`` extra (DuckDB, PyArrow), imported
only when used.
"""

from mainspring.features.catalog import Materialization, Registered
from mainspring.features.datasources import FileSource, QuerySource, StreamSource
from mainspring.features.definitions import Entity, FeatureService, FeatureView, Field
from mainspring.features.ondemand import OnDemandFeatureView
from mainspring.features.online import OnlineFeatures
from mainspring.features.store import FeatureStore
from mainspring.features.training import TrainingSet

__all__ = [
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "Materialization",
    "OnDemandFeatureView",
    "OnlineFeatures",
    "QuerySource",
    "Registered",
    "StreamSource",
    "TrainingSet",
]
