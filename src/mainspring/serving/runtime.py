"""A loaded model version made servable: its signature turned into tensor validation and metadata.

Everything that can be worked out once is worked out at load time (feature positions, datatypes,
output names, the metadata answer); a request only decodes, checks and predicts.

Inputs arrive in one of two forms, both validated against the registered signature:

- **one tensor per feature** (what the model metadata lists): each named after a signature input,
  shape ``[N]`` or ``[N, 1]``, all with the same ``N``;
- **one matrix**: a single tensor of shape ``[N, F]`` whose name is not a feature name, with the
  ``F`` columns in signature order.

Outputs are one ``FP64`` tensor per signature output (``probability``, ``prediction`` or one column
per class), shape ``[N]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError
from mainspring.registry import LoadedVersion
from mainspring.serving.inference import ModelMetadata, RequestedOutput, TensorMetadata
from mainspring.serving.tensors import SIGNATURE_DATATYPES, Tensor

#: Flavors whose models treat NaN as a missing value; the others refuse NaN inputs.
NAN_TOLERANT_FLAVORS = frozenset({"lightgbm", "xgboost"})
#: Platform names reported in the model metadata, by flavor.
PLATFORMS = {
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "sklearn": "sklearn",
    "onnx": "onnxruntime_onnx",
    "pickle": "python_pickle",
}
_NUMERIC = frozenset("buif")


@dataclass(frozen=True, slots=True)
class Prediction:
    """Output tensors of one request and the number of rows scored."""

    outputs: list[Tensor]
    rows: int


class ModelRuntime:
    """Serves one loaded version: validates tensors against its signature and predicts."""

    def __init__(self, loaded: LoadedVersion) -> None:
        self.loaded = loaded
        version = loaded.version
        self.name = version.name
        self.version = str(version.version)
        self.flavor = version.flavor
        signature = loaded.signature
        self.feature_names = signature.input_names
        self.positions = {name: i for i, name in enumerate(self.feature_names)}
        self.input_datatypes = tuple(SIGNATURE_DATATYPES[f.dtype] for f in signature.inputs)
        outputs = signature.outputs or ()
        self.output_names = tuple(f.name for f in outputs) or ("prediction",)
        self.allow_nan = self.flavor in NAN_TOLERANT_FLAVORS
        self.inputs_metadata = tuple(
            TensorMetadata(name, datatype, (-1,))
            for name, datatype in zip(self.feature_names, self.input_datatypes, strict=True)
        )
        self.outputs_metadata = tuple(TensorMetadata(n, "FP64", (-1,)) for n in self.output_names)
        self.platform = PLATFORMS.get(self.flavor, self.flavor)

    def __repr__(self) -> str:
        return f"<ModelRuntime {self.name}/{self.version} {self.flavor}>"

    def metadata(self, versions: tuple[str, ...]) -> ModelMetadata:
        return ModelMetadata(
            name=self.name,
            versions=versions,
            platform=self.platform,
            inputs=self.inputs_metadata,
            outputs=self.outputs_metadata,
            parameters={"version": self.version, "digest": self.loaded.version.digest},
        )

    # ------------------------------------------------------------------ inputs

    def matrix(self, inputs: list[Tensor]) -> npt.NDArray[np.float64]:
        """The float64 ``[N, F]`` matrix the request's tensors describe, validated."""
        if not inputs:
            raise self._missing(self.feature_names)
        if len(inputs) == 1 and inputs[0].name not in self.positions:
            matrix = self._from_matrix(inputs[0])
        else:
            matrix = self._from_columns(inputs)
        if not len(matrix):  # libraries answer an empty batch with errors or shapeless arrays
            raise InvalidInputError(
                f"input {inputs[0].name!r} has no rows (shape {list(inputs[0].shape)}); send at "
                "least one row",
                field=f"{inputs[0].name}.shape",
            )
        self.check_finite(matrix)
        return matrix

    def _missing(self, names: tuple[str, ...] | list[str]) -> InvalidInputError:
        plural = "s" if len(names) > 1 else ""
        return InvalidInputError(
            f"input{plural} {', '.join(map(repr, names))} missing from the request; model "
            f"{self.name} needs: {', '.join(self.feature_names)} (one tensor each, shape [N]) or "
            f"one [N, {len(self.feature_names)}] tensor",
            field=names[0] if names else "inputs",
        )

    def _numeric(self, t: Tensor, expected: str) -> None:
        if t.data.dtype.kind not in _NUMERIC:
            raise InvalidInputError(
                f"input {t.name!r} has datatype {t.datatype}; model {self.name} expects "
                f"{expected} (numbers)",
                field=f"{t.name}.datatype",
            )

    def _from_matrix(self, t: Tensor) -> npt.NDArray[np.float64]:
        width = len(self.feature_names)
        if len(t.shape) != 2 or t.shape[1] != width:
            raise InvalidInputError(
                f"input {t.name!r} has shape {list(t.shape)}; model {self.name} takes either one "
                f"[N, {width}] tensor or one tensor per feature ({', '.join(self.feature_names)})",
                field=f"{t.name}.shape",
            )
        self._numeric(t, "FP64")
        return np.asarray(t.data, dtype=np.float64)

    def _from_columns(self, inputs: list[Tensor]) -> npt.NDArray[np.float64]:
        columns: list[npt.NDArray[np.float64] | None] = [None] * len(self.feature_names)
        rows: int | None = None
        for t in inputs:
            position = self.positions.get(t.name)
            if position is None:
                raise InvalidInputError(
                    f"input {t.name!r} is not an input of model {self.name}; it takes: "
                    f"{', '.join(self.feature_names)}",
                    field=t.name,
                )
            if columns[position] is not None:
                raise InvalidInputError(f"input {t.name!r} appears twice", field=t.name)
            if not (len(t.shape) == 1 or (len(t.shape) == 2 and t.shape[1] == 1)):
                raise InvalidInputError(
                    f"input {t.name!r} has shape {list(t.shape)}; a feature tensor has shape "
                    "[N] or [N, 1]",
                    field=f"{t.name}.shape",
                )
            if rows is not None and t.shape[0] != rows:
                raise InvalidInputError(
                    f"input {t.name!r} has {t.shape[0]} rows but the other inputs have {rows}",
                    field=f"{t.name}.shape",
                )
            rows = t.shape[0]
            self._numeric(t, self.input_datatypes[position])
            columns[position] = np.asarray(t.data, dtype=np.float64).reshape(-1)
        missing = [n for n, c in zip(self.feature_names, columns, strict=True) if c is None]
        if missing:
            raise self._missing(missing)
        return np.column_stack(columns)  # type: ignore[arg-type]

    def check_finite(self, matrix: npt.NDArray[np.float64]) -> None:
        """Refuse infinities, and NaN unless the flavor treats NaN as missing."""
        bad = ~np.isfinite(matrix)
        if not bad.any():
            return
        if self.allow_nan:
            bad &= ~np.isnan(matrix)
            if not bad.any():
                return
        row, column = (int(i[0]) for i in np.nonzero(bad))
        value = matrix[row, column]
        allowed = "NaN (missing) but not infinity" if self.allow_nan else "only finite numbers"
        raise InvalidInputError(
            f"input {self.feature_names[column]!r} holds {value} in row {row}; model "
            f"{self.name} ({self.flavor}) accepts {allowed}",
            field=self.feature_names[column],
        )

    # ------------------------------------------------------------------ prediction

    def predict_matrix(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Scores for a validated matrix, always 2-D ``[N, outputs]``."""
        try:
            scores = self.loaded.model.predict(matrix)
        except (ValueError, TypeError) as exc:  # the library refused this input
            raise InvalidInputError(f"model {self.name} refused the input: {exc}") from None
        scores = np.asarray(scores, dtype=np.float64)
        return scores.reshape(len(matrix), -1)

    def outputs(
        self, scores: npt.NDArray[np.float64], requested: list[RequestedOutput]
    ) -> list[Tensor]:
        """Output tensors from 2-D scores, restricted to ``requested`` when given."""
        names = self.output_names
        if scores.shape[1] != len(names):  # a signature that names fewer columns than predicted
            names = tuple(f"{self.output_names[0]}_{i}" for i in range(scores.shape[1]))
        rows = scores.shape[0]
        tensors = {
            name: Tensor(name, "FP64", (rows,), np.ascontiguousarray(scores[:, i]))
            for i, name in enumerate(names)
        }
        if not requested:
            return list(tensors.values())
        chosen = []
        for output in requested:
            found = tensors.get(output.name)
            if found is None:
                raise InvalidInputError(
                    f"output {output.name!r} is not an output of model {self.name}; it has: "
                    f"{', '.join(names)}",
                    field=output.name,
                )
            chosen.append(
                Tensor(found.name, "FP64", found.shape, found.data, dict(output.parameters))
            )
        return chosen

    def warm(self) -> None:
        """One prediction on a row of zeros, so the first request pays no lazy set-up."""
        self.predict_matrix(np.zeros((1, len(self.feature_names))))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "flavor": self.flavor}
