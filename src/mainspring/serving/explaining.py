"""The explainer of a registered model version, for decisions and for its global importance.

Tree flavors (LightGBM, XGBoost) get exact TreeSHAP on their raw score and need nothing more.
Every other flavor (scikit-learn, ONNX, MLflow imports, trusted pickles) gets SHAP's
model-agnostic explainer over the version's own ``predict``. Either explains one output column:
the one the deployment's policy scores (``Policy.score_column``; the first unless the policy names
an ``output``). For a binary classifier that is the positive class's probability (the margin
before the sigmoid for tree models); for a multi-class model one class: its raw margin (before
the softmax) for tree models, its probability otherwise. The attributions plus the base value
equal that number. The model-agnostic explainer starts from a background sample: the small
Parquet sample stored with the version when its importance was computed (``mainspring models
importance NAME/V --data FILE``). A version without one is explained by nobody, and its decisions
carry no attributions or reasons; :func:`unexplained_arms` says so when a deployment is set.
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


def output_predict(loaded: LoadedVersion, output: int = 0) -> Any:
    """``loaded``'s scores as one number per row: its output column ``output`` (by default the
    first, the logged raw)."""

    def predict(rows: Matrix) -> Matrix:
        scores = np.asarray(loaded.model.predict(rows), dtype=np.float64)
        return scores.reshape(len(rows), -1)[:, output]

    return predict


def output_columns(loaded: LoadedVersion, rows: Matrix) -> int:
    """How many score columns ``loaded`` predicts per row (found by predicting ``rows``)."""
    scores = np.asarray(loaded.model.predict(rows), dtype=np.float64)
    return int(scores.reshape(len(rows), -1).shape[1])


def _check_output(loaded: LoadedVersion, output: int, columns: int) -> None:
    if isinstance(output, bool) or not isinstance(output, int) or not 0 <= output < columns:
        names = [f.name for f in loaded.signature.outputs or ()]
        listed = f" ({', '.join(names)})" if len(names) == columns else ""
        raise InvalidInputError(
            f"output {output!r} is out of range: {loaded.version.ref} predicts {columns} "
            f"column(s) per row{listed}; give an index from 0 to {columns - 1}",
            field="output",
        )


def version_explainer(
    loaded: LoadedVersion, background: Matrix | None, *, output: int = 0
) -> Explainer:
    """The explainer of ``loaded``'s output column ``output`` (the class of a multi-class
    model): exact TreeSHAP on that class's raw margin for tree flavors, else the model-agnostic
    explainer of that column over ``background`` (rows in signature order), which it then needs.
    An ``output`` the model does not predict is refused (field ``output``)."""
    from mainspring.explain import AgnosticExplainer, explainer_for

    names = loaded.signature.input_names
    if loaded.version.flavor in TREE_FLAVORS:
        columns = output_columns(loaded, np.zeros((1, len(names))))
        _check_output(loaded, output, columns)
        if columns > 1:  # one column per class (or target): that class's margin
            return explainer_for(loaded.model.native, names, class_index=output)
        try:
            return explainer_for(loaded.model.native, names)
        except InvalidInputError as exc:
            if exc.field != "class_index":
                raise
            raise InvalidInputError(
                f"{loaded.version.ref} predicts one column (a class label, as XGBoost's "
                "multi:softmax does) while its trees score each class: only a model that "
                "predicts one score per class can be explained (train it with multi:softprob)",
                field="model",
            ) from None
    if background is None:
        raise InvalidInputError(
            f"{loaded.version.ref} ({loaded.version.flavor}) has no background sample, which "
            "model-agnostic explanations start from: store one with `mainspring models "
            f"importance {loaded.version.ref} --data FILE`",
            field="background",
        )
    if len(background):
        _check_output(loaded, output, output_columns(loaded, background[:1]))
    return AgnosticExplainer(output_predict(loaded, output), background, names)


def method_of(explainer: Explainer) -> str:
    """How ``explainer`` computes attributions: ``treeshap``, ``exact`` or ``permutation``."""
    return str(getattr(explainer, "method", "treeshap"))


def decision_explainer(
    registry: Registry, runtime: ModelRuntime, output: int = 0
) -> Explainer | None:
    """The explainer of a deciding arm's version for its output column ``output`` (the one the
    policy scores), or None (logged) when it cannot have one."""
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
        return version_explainer(loaded, background, output=output)
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
