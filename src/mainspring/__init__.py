"""Mainspring: models as first-class, audited parts of a system.

>>> import mainspring as ms
>>> ms.ModelRef.parse("credit@champion").alias
'champion'

``import mainspring`` loads no model library, engine client or web framework: those are imported
when first used (a test checks).
"""

from mainspring.errors import (
    AccessError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    GovernanceError,
    IntegrityError,
    InvalidInputError,
    MainspringError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
    StorageError,
    UnsupportedFormatError,
)
from mainspring.explain import ReasonCodes, explainer_for
from mainspring.features import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    OnlineFeatures,
    QuerySource,
    StreamSource,
    TrainingSet,
)
from mainspring.pipelines.importance import register_with_importance, store_importance
from mainspring.project import Project
from mainspring.records import (
    ApprovalState,
    ChainEntry,
    Event,
    FeatureSpec,
    Lineage,
    ModelRef,
    ModelVersion,
    Principal,
    RegisteredModel,
    Role,
    Signature,
    TrainingData,
    VersionImportance,
)
from mainspring.registry import CHAMPION, LoadedVersion, Registry

__version__ = "0.1.0"

__all__ = [
    "CHAMPION",
    "AccessError",
    "ApprovalState",
    "AuthenticationError",
    "ChainEntry",
    "ConfigError",
    "ConflictError",
    "Entity",
    "Event",
    "FeatureService",
    "FeatureSpec",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "GovernanceError",
    "IntegrityError",
    "InvalidInputError",
    "Lineage",
    "LoadedVersion",
    "MainspringError",
    "MissingDependencyError",
    "ModelRef",
    "ModelVersion",
    "NotFoundError",
    "OnDemandFeatureView",
    "OnlineFeatures",
    "PermissionDeniedError",
    "Principal",
    "Project",
    "QuerySource",
    "ReasonCodes",
    "RegisteredModel",
    "Registry",
    "Role",
    "Signature",
    "SignatureError",
    "StorageError",
    "StreamSource",
    "TrainingData",
    "TrainingSet",
    "UnsupportedFormatError",
    "VersionImportance",
    "__version__",
    "explainer_for",
    "register_with_importance",
    "store_importance",
]
