"""Protocol-neutral inference requests and responses, and the metadata records of the data plane.

The REST and gRPC adapters decode their wire forms into these records and encode them back; the
data plane (:mod:`mainspring.serving.dataplane`) speaks nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mainspring.serving.tensors import Parameters, Tensor


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the caller asks for, with its parameters (``binary_data`` on REST)."""

    name: str
    parameters: Parameters = field(default_factory=dict)


@dataclass(slots=True)
class InferenceRequest:
    """Input tensors, optionally the outputs wanted, the caller's ``id`` and ``parameters``."""

    inputs: list[Tensor]
    outputs: list[RequestedOutput] = field(default_factory=list)
    id: str | None = None
    parameters: Parameters = field(default_factory=dict)


@dataclass(slots=True)
class InferenceResponse:
    """What the model answered: ``model_version`` is the version that actually predicted."""

    model_name: str
    model_version: str
    outputs: list[Tensor]
    id: str | None = None
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TensorMetadata:
    """Name, datatype and shape (``-1`` for a variable dimension) of a model input or output."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """The model metadata response of the protocol."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorMetadata, ...]
    outputs: tuple[TensorMetadata, ...]
    parameters: Parameters = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": list(self.versions),
            "platform": self.platform,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "parameters": self.parameters,
        }


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    name: str
    version: str
    extensions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "extensions": list(self.extensions)}


@dataclass(frozen=True, slots=True)
class RepositoryEntry:
    """One row of the model repository index."""

    name: str
    version: str
    state: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "state": self.state,
            "reason": self.reason,
        }
