"""The explainer of a registered model version, for decisions and for its global importance.

Tree flavors (LightGBM, XGBoost) get exact TreeSHAP on their raw score and need nothing more.
Every other flavor (scikit-learn, ONNX, MLflow imports, trusted pickles) gets SHAP's
model-agnostic explainer over the version's own ``predict``: it explains the first output column,
the raw score a decision logs (the positive class's probability for a binary classifier), so that
the attributions plus the base value equal it. That explainer starts from a background sample: the
small Parquet sample stored with the version when its importance was computed
(``mainspring models importance NAME/V --data FILE``). A version without one is explained by
nobody, and its decisions carry no attributions or reasons; :func:`unexplained_arms` says so when
a deployment is set.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError, MainspringError, MissingDependencyError
from mainspring.records import ModelRef
from mainspring.registry import LoadedVersion, Registry

if TYPE_CHECKING:
    from mainspring.explain import Explainer
    from mainspring.serving.deployments import Deployment
    from mainspring.serving.runtime import ModelRuntime

logger = logging.getLogger("mainspring.serving.explaining")

Matrix = npt.NDArray[np.float64]

#: Flavors explained by exact TreeSHAP on their raw score, without a background sample.
TREE_FLAVORS = frozenset({"lightgbm", "xgboost"})


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(
            "pyarrow", extra="explain", purpose="background samples (Parquet)"
        ) from exc
    return pa, pq


def background_parquet(matrix: Matrix, names: Sequence[str]) -> bytes:
    """``matrix`` (rows in ``names`` order) as the bytes of a Parquet file."""
    pa, pq = _pyarrow()
    table = pa.table({name: matrix[:, i] for i, name in enumerate(names)})
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def background_matrix(data: bytes, names: Sequence[str]) -> Matrix:
    """A stored background sample read back as a float64 matrix in ``names`` order."""
    pa, pq = _pyarrow()
    table = pq.read_table(pa.BufferReader(data))
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"the background sample lacks column(s) {', '.join(missing)}; store it again with "
            "`mainspring models importance`",
            field="background",
        )
    columns = [np.asarray(table.column(n).to_numpy(), dtype=np.float64) for n in names]
    return np.column_stack(columns) if columns else np.empty((table.num_rows, 0))


def output_predict(loaded: LoadedVersion) -> Any:
    """``loaded``'s scores as one number per row: its first output column (the logged raw)."""

    def predict(rows: Matrix) -> Matrix:
        scores = np.asarray(loaded.model.predict(rows), dtype=np.float64)
        return scores.reshape(len(rows), -1)[:, 0]

    return predict


def version_explainer(loaded: LoadedVersion, background: Matrix | None) -> Explainer:
    """The explainer of ``loaded``: exact TreeSHAP for tree flavors, else the model-agnostic
    explainer over ``background`` (rows in signature order), which it then needs."""
    from mainspring.explain import AgnosticExplainer, explainer_for

    names = loaded.signature.input_names
    if loaded.version.flavor in TREE_FLAVORS:
        return explainer_for(loaded.model.native, names)
    if background is None:
        raise InvalidInputError(
            f"{loaded.version.ref} ({loaded.version.flavor}) has no background sample, which "
            "model-agnostic explanations start from: store one with `mainspring models "
            f"importance {loaded.version.ref} --data FILE`",
            field="background",
        )
    return AgnosticExplainer(output_predict(loaded), background, names)


def method_of(explainer: Explainer) -> str:
    """How ``explainer`` computes attributions: ``treeshap``, ``exact`` or ``permutation``."""
    return str(getattr(explainer, "method", "treeshap"))


def decision_explainer(registry: Registry, runtime: ModelRuntime) -> Explainer | None:
    """The explainer of a deciding arm's version, or None (logged) when it cannot have one."""
    loaded = runtime.loaded
    background = None
    try:
        if loaded.version.flavor not in TREE_FLAVORS:
            stored = registry.background(loaded.version.ref)
            if stored is None:
                logger.warning(
                    "no explanations for %s (%s): it has no background sample; store one with "
                    "`mainspring models importance %s --data FILE`",
                    loaded.version.ref, loaded.version.flavor, loaded.version.ref,
                )  # fmt: skip
                return None
            background = background_matrix(stored, runtime.feature_names)
        return version_explainer(loaded, background)
    except (ImportError, MainspringError) as exc:
        logger.warning("no explanations for %s: %s", loaded.version.ref, exc)
        return None


def unexplained_arms(registry: Registry, deployment: Deployment) -> list[str]:
    """Warnings for the arms of a deciding ``deployment`` whose decisions would carry no
    attributions: a flavor explained model-agnostically whose version has no background sample.
    Empty when the deployment does not decide or its policy turns explanations off."""
    policy = deployment.policy
    if policy is None or not policy.explain:
        return []
    warnings = []
    for arm in deployment.arms:
        sep = "/" if arm.version.isdigit() else "@"
        version = registry.get(ModelRef.parse(f"{arm.model}{sep}{arm.version}", field="arm"))
        if version.flavor in TREE_FLAVORS:
            continue
        importance = version.importance
        if importance is None or importance.background_digest is None:
            warnings.append(
                f"arm {arm.name} ({version.ref}, {version.flavor}) has no background sample: its "
                "decisions will carry no attributions or reasons; store one with `mainspring "
                f"models importance {version.ref} --data FILE`"
            )
    return warnings
