"""Global importance of a model version: computed from a sample of its data, stored with it.

:func:`store_importance` loads a registered version, explains a sample of its training data
(exact TreeSHAP for LightGBM and XGBoost, SHAP's model-agnostic explainer for every other flavor)
and stores with the version the mean absolute attribution of each feature (summed over the classes
of a multi-class model) and a background sample of at most 100 rows, which model-agnostic
explanations start from at decision time.
:func:`register_with_importance` registers a version and does this in one call (the CLI's
``models register --data``). Data is a Parquet or CSV file, a data frame, a mapping of column to
values, or a matrix in signature order.

The model-agnostic explainer costs one prediction per background row and coalition for every row
it explains (and class it explains it for), so it explains at most ``rows`` (default 200) sampled
rows; TreeSHAP explains up to 10,000. A progress bar shows when asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError, MissingDependencyError
from mainspring.features.progress import Steps
from mainspring.records import ModelRef, ModelVersion
from mainspring.registry import LoadedVersion, Registry

Matrix = npt.NDArray[np.float64]

#: Rows explained by default: TreeSHAP is cheap, the model-agnostic explainer is not.
TREE_ROWS = 10_000
AGNOSTIC_ROWS = 200
BACKGROUND_ROWS = 100
_TREE_CHUNK = 1_000
_AGNOSTIC_CHUNK = 10


@dataclass(frozen=True, slots=True)
class Importance:
    """What :func:`compute_importance` found: mean ``|SHAP|`` per feature, largest first."""

    values: dict[str, float]
    method: str
    rows: int
    background: Matrix
    #: rows of the data left out because a model of this flavor cannot take NaN or infinity
    dropped: int = 0
    #: output columns explained (the classes of a multi-class model), whose values are summed
    outputs: int = 1


def read_data(data: Any, *, filename: str | None = None) -> Any:
    """``data`` as something a model's ``matrix`` takes: a path to a Parquet or CSV file (or the
    bytes of one, named by ``filename``) is read into a mapping of column to values; anything
    else is returned as it is."""
    if isinstance(data, bytes | bytearray | memoryview):
        return _read_table(bytes(data), filename or "data")
    if not isinstance(data, str | os.PathLike):
        return data
    path = Path(data)
    if not path.is_file():
        raise InvalidInputError(f"data file {str(path)!r} does not exist", field="data")
    return _read_table(path, path.name)


def _read_table(source: Path | bytes, name: str) -> dict[str, Any]:
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError("pyarrow", extra="explain", purpose="data files") from exc
    suffix = Path(name).suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise InvalidInputError(
            f"data file {name!r} must be Parquet (.parquet) or CSV (.csv)", field="data"
        )
    readable = pa.BufferReader(source) if isinstance(source, bytes) else source
    try:
        table = pq.read_table(readable) if suffix != ".csv" else pa_csv.read_csv(readable)
        return {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
    except (OSError, ValueError, TypeError, pa.lib.ArrowException) as exc:  # Arrow's errors
        raise InvalidInputError(f"data file {name!r} cannot be read: {exc}", field="data") from None


def _sample(matrix: Matrix, n: int, rng: np.random.Generator) -> Matrix:
    if len(matrix) <= n:
        return matrix
    return matrix[np.sort(rng.choice(len(matrix), size=n, replace=False))]


def compute_importance(
    loaded: LoadedVersion,
    data: Any,
    *,
    rows: int | None = None,
    background_rows: int = BACKGROUND_ROWS,
    seed: int = 0,
    progress: bool = False,
) -> Importance:
    """Explain a sample of ``data`` with ``loaded``'s explainer and average ``|SHAP|``.

    A model with several output columns (a multi-class classifier) is explained once per column
    (class) and a feature's importance is its mean ``|SHAP|`` summed over the classes, the
    ranking SHAP's summary plot uses for multi-output models.

    ``rows`` caps the rows explained (default 10,000 for tree models, 200 otherwise), sampled
    without replacement with ``seed``; the background sample (``background_rows``, at most 100)
    is drawn from the same data.
    """
    # imported here: mainspring.serving imports the package root, which exports this module
    from mainspring.serving.explaining import (
        TREE_FLAVORS,
        method_of,
        output_columns,
        version_explainer,
    )

    if not 1 <= background_rows <= BACKGROUND_ROWS:
        raise InvalidInputError(
            f"background_rows must be 1 to {BACKGROUND_ROWS}, not {background_rows}",
            field="background_rows",
        )
    try:
        matrix = np.asarray(loaded.model.matrix(read_data(data)), dtype=np.float64)
    except (ValueError, TypeError) as exc:  # columns that are not numbers
        raise InvalidInputError(
            f"the data must hold numbers in the model's input columns: {exc}", field="data"
        ) from None
    total = len(matrix)
    tree = loaded.version.flavor in TREE_FLAVORS
    if not tree:  # only the tree flavors take NaN as missing
        matrix = matrix[np.isfinite(matrix).all(axis=1)]
    else:
        matrix = matrix[~np.isinf(matrix).any(axis=1)]
    if not len(matrix):
        raise InvalidInputError(
            f"the data has no usable rows ({total} read; rows with NaN or infinite values are "
            f"left out for {loaded.version.flavor} models)",
            field="data",
        )
    rng = np.random.default_rng(seed)
    explained = _sample(matrix, rows or (TREE_ROWS if tree else AGNOSTIC_ROWS), rng)
    background = _sample(matrix, background_rows, rng)
    # one explainer per output column: a multi-class model's importance sums over its classes
    columns = output_columns(loaded, explained[:1])
    explainers = [version_explainer(loaded, background, output=k) for k in range(columns)]
    chunk = _TREE_CHUNK if tree else _AGNOSTIC_CHUNK
    starts = range(0, len(explained), chunk)
    sums = np.zeros(len(loaded.signature.input_names))
    total_rows = len(explained) * columns
    what = f"explaining {loaded.version.ref}" + (f" ({columns} classes)" if columns > 1 else "")
    with Steps(progress, total=total_rows, description=what) as s:
        for start in starts:
            part = explained[start : start + chunk]
            for explainer in explainers:
                sums += np.abs(explainer.shap_values(part)).sum(axis=0)
                s.advance(what, by=len(part))
    means = sums / len(explained)
    order = np.argsort(-means, kind="stable")
    names = loaded.signature.input_names
    return Importance(
        values={names[i]: float(means[i]) for i in order},
        method=method_of(explainers[0]),
        rows=len(explained),
        background=background,
        dropped=total - len(matrix),
        outputs=columns,
    )


def store_importance(
    registry: Registry,
    ref: ModelRef | str,
    data: Any,
    *,
    actor: str,
    rows: int | None = None,
    seed: int = 0,
    progress: bool = False,
    trusted: bool = False,
) -> ModelVersion:
    """Compute the global importance of version ``ref`` from ``data`` and store it, with a
    background sample, in the registry (see :func:`compute_importance`)."""
    from mainspring.serving.explaining import background_parquet

    loaded = registry.load(ref, trusted=trusted)
    found = compute_importance(loaded, data, rows=rows, seed=seed, progress=progress)
    return registry.set_importance(
        loaded.version.ref,
        found.values,
        method=found.method,
        rows=found.rows,
        actor=actor,
        background=background_parquet(found.background, loaded.signature.input_names),
        background_rows=len(found.background),
    )


def register_with_importance(
    registry: Registry,
    name: str,
    model: object,
    *,
    data: Any,
    actor: str,
    rows: int | None = None,
    seed: int = 0,
    progress: bool = False,
    **register: Any,
) -> ModelVersion:
    """Register ``model`` as a new version of ``name`` (``register`` holds the other arguments of
    :meth:`Registry.register`) and store its importance computed from ``data``.

    The two steps commit separately: if the importance cannot be computed, the version stays
    registered and the error says how to store its importance later.
    """
    data = read_data(data)  # a missing or unreadable file fails before anything is registered
    version = registry.register(name, model, actor=actor, **register)
    try:
        return store_importance(
            registry, version.ref, data, actor=actor, rows=rows, seed=seed, progress=progress,
            trusted=bool(register.get("trusted", False)),
        )  # fmt: skip
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"registered {version.ref}, but its importance was not stored: {exc}; fix the data "
            f"and run `mainspring models importance {version.ref} --data FILE`",
            field=exc.field or "data",
        ) from exc
