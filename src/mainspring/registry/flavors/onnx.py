"""ONNX models, run by ONNX Runtime on the CPU.

The artifact is the serialised ``onnx.ModelProto``. Two input layouts are understood:

* one 2-D tensor ``[N, n_features]``: the features by position (``named=False``, inputs ``f0``...).
  When the feature dimension is dynamic the model does not say how many features it takes:
  ``Prepared.n_features`` is 0 and the signature has no inputs, so the registry must be given the
  caller's signature; loading without one raises :class:`SignatureError`.
* several 1-column tensors ``[N, 1]`` (or ``[N]``), one per feature, named by the feature
  (``named=True``).

The prediction is the output called ``probabilities`` or ``output_probability`` when there is one
(skl2onnx classifiers converted with ``options={"zipmap": False}``; the probability of class 1 for
binary ones), else the first output, flattened when it has one column. Outputs must be tensors:
convert classifiers without ZipMap.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mainspring.errors import SignatureError, UnsupportedFormatError
from mainspring.records import FeatureSpec, Signature
from mainspring.registry.flavors import _library as lib
from mainspring.registry.flavors.base import Flavor, LoadedModel, Prepared

_PROBABILITY_OUTPUTS = ("probabilities", "output_probability")
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


class OnnxModel(LoadedModel):
    """An ONNX Runtime session ready to predict."""

    def __init__(
        self,
        signature: Signature,
        session: Any,
        feeds: list[tuple[str, int | None, np.dtype[Any], int]],
        output: str,
        probabilities: bool,
    ) -> None:
        super().__init__("onnx", signature, session)
        #: (input name, signature column or None for the whole matrix, dtype, rank)
        self._feeds = feeds
        self._outputs = [output]
        self._probabilities = probabilities

    def _predict(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        inputs: dict[str, Any] = {}
        for name, column, dtype, rank in self._feeds:
            if column is None:
                inputs[name] = matrix.astype(dtype, copy=False)
            else:
                values = matrix[:, column : column + 1] if rank == 2 else matrix[:, column]
                inputs[name] = values.astype(dtype)
        out = np.asarray(self.native.run(self._outputs, inputs)[0], dtype=np.float64)
        if out.ndim == 2 and out.shape[1] == 2 and self._probabilities:
            return out[:, 1]
        if out.ndim == 2 and out.shape[1] == 1:
            return out.reshape(-1)
        return out


class OnnxFlavor(Flavor):
    """ONNX models (``onnx.ModelProto``) run with ONNX Runtime."""

    name: ClassVar[str] = "onnx"
    extra: ClassVar[str] = "onnx"

    def available(self) -> bool:
        return lib.installed("onnx") and lib.installed("onnxruntime")

    def accepts(self, obj: object) -> bool:
        kind = type(obj)
        return kind.__module__.startswith("onnx") and kind.__name__ == "ModelProto"

    def sniff(self, data: bytes, filename: str) -> bool:
        if not data.startswith(b"\x08"):  # protobuf field 1 (ir_version) as a varint
            return False
        if filename.lower().endswith(".onnx"):
            return True
        if not lib.installed("onnx"):
            return False
        try:
            model = self._onnx().load_model_from_string(data)
            return bool(model.HasField("graph") and len(model.graph.node) > 0)
        except Exception:  # not protobuf, or not a model
            return False

    def prepare(self, obj: object) -> Prepared:
        self._onnx()
        model: Any = obj
        return self._inspect(bytes(model.SerializeToString()), "the serialised model")

    def prepare_file(self, data: bytes, filename: str, *, trusted: bool = False) -> Prepared:
        return self._inspect(data, lib.file_label(filename))

    def load(self, data: bytes, signature: Signature, *, trusted: bool = False) -> LoadedModel:
        session = self._session(data, "the stored artifact")
        specs, named, _ = _inputs(session, "the stored artifact")
        names = tuple(spec.name for spec in specs)
        if not names and not signature.input_names:
            raise SignatureError(
                "the ONNX model's number of features is dynamic: register it with a signature "
                "that lists its inputs",
                field="signature.inputs",
            )
        order = lib.column_order(
            signature, names or signature.input_names, named=named, flavor="onnx"
        )
        feeds: list[tuple[str, int | None, np.dtype[Any], int]] = []
        for i, node in enumerate(session.get_inputs()):
            dtype = np.dtype(_DTYPES[node.type])
            if named:
                column = order[i] if order is not None else i
                feeds.append((node.name, column, dtype, len(node.shape)))
            else:
                feeds.append((node.name, None, dtype, 2))
        output, probabilities = _output(session, "the stored artifact")
        return OnnxModel(signature, session, feeds, output.name, probabilities)

    def library_versions(self) -> dict[str, str]:
        return lib.versions("onnx", "onnxruntime", "numpy")

    def _onnx(self) -> Any:
        return lib.require("onnx", package="onnx", extra=self.extra, purpose="ONNX models")

    def _session(self, data: bytes, what: str) -> Any:
        ort = lib.require(
            "onnxruntime", package="onnxruntime", extra=self.extra, purpose="ONNX models"
        )
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the exception below carries the message
        try:
            return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # InvalidProtobuf, InvalidGraph, Fail...
            raise lib.bad_file(what, lib.first_line(exc)) from exc

    def _inspect(self, data: bytes, what: str) -> Prepared:
        onnx = self._onnx()
        try:
            model = onnx.load_model_from_string(data)
        except Exception as exc:  # protobuf DecodeError
            raise lib.bad_file(what, f"it is not an ONNX model ({lib.first_line(exc)})") from exc
        if not model.HasField("graph") or not model.graph.node:
            raise lib.bad_file(what, "it is not an ONNX model (no graph)")
        session = self._session(data, what)
        specs, named, n_features = _inputs(session, what)
        output, probabilities = _output(session, what)
        columns = output.shape[1] if len(output.shape) == 2 else 1
        n_outputs = columns if isinstance(columns, int) else 2 if probabilities else 1
        params: dict[str, Any] = {
            "producer_name": model.producer_name,
            "producer_version": model.producer_version,
            "ir_version": model.ir_version,
            "model_version": model.model_version,
            "domain": model.domain,
        }
        params.update({f"opset.{o.domain or 'ai.onnx'}": o.version for o in model.opset_import})
        return Prepared(
            data=data,
            n_features=n_features,
            signature=Signature(specs, lib.output_specs(n_outputs, probabilities=probabilities)),
            library_versions=self.library_versions(),
            params=lib.json_safe(params),
            named=named,
        )


def _inputs(session: Any, what: str) -> tuple[tuple[FeatureSpec, ...], bool, int]:
    """The input columns (empty when the feature count is dynamic), whether they are named, and
    the number of features (0 when dynamic)."""
    nodes = session.get_inputs()
    for node in nodes:
        if node.type not in _DTYPES:
            raise UnsupportedFormatError(
                f"{what} has input {node.name!r} of type {node.type}; Mainspring feeds "
                f"tensors of {', '.join(sorted(_DTYPES))}",
                field="file",
            )
    if len(nodes) == 1 and len(nodes[0].shape) == 2:
        width = nodes[0].shape[1]
        if not isinstance(width, int):
            return (), False, 0
        dtype = _DTYPES[nodes[0].type]
        return tuple(FeatureSpec(n, dtype) for n in lib.generic_names(width)), False, width
    if all(len(n.shape) == 1 or (len(n.shape) == 2 and n.shape[1] == 1) for n in nodes):
        return tuple(FeatureSpec(n.name, _DTYPES[n.type]) for n in nodes), True, len(nodes)
    shapes = ", ".join(f"{n.name} {list(n.shape)}" for n in nodes)
    raise UnsupportedFormatError(
        f"{what} takes inputs {shapes}; Mainspring feeds one 2-D tensor [N, n_features] or one "
        "[N, 1] tensor per feature",
        field="file",
    )


def _output(session: Any, what: str) -> tuple[Any, bool]:
    """The output to predict with, and whether it holds class probabilities."""
    outputs = session.get_outputs()
    chosen = next((o for o in outputs if o.name in _PROBABILITY_OUTPUTS), outputs[0])
    if not str(chosen.type).startswith("tensor("):
        raise UnsupportedFormatError(
            f"{what} gives {chosen.name!r} as {chosen.type}, not a tensor; convert classifiers "
            'with skl2onnx options={id(model): {"zipmap": False}}',
            field="file",
        )
    return chosen, chosen.name in _PROBABILITY_OUTPUTS
