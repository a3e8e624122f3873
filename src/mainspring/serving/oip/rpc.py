"""The Open Inference Protocol over gRPC: a thin ``grpc.aio`` adapter over the data plane.

The messages and the service base class are generated at build time from the kept
``open_inference_grpc.proto`` (package ``mainspring.serving.oip.generated``). Domain errors become
status codes here: ``INVALID_ARGUMENT`` for bad input, ``NOT_FOUND`` for an unknown model or
version. Needs the ``grpc`` extra: ``pip install 'mainspring[grpc]'``.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np

from mainspring.errors import (
    ConflictError,
    InvalidInputError,
    MainspringError,
    NotFoundError,
)
from mainspring.serving.batching import MicroBatcher
from mainspring.serving.dataplane import DataPlane
from mainspring.serving.inference import InferenceRequest, RequestedOutput
from mainspring.serving.oip.generated import open_inference_grpc_pb2 as pb
from mainspring.serving.oip.generated import open_inference_grpc_pb2_grpc as pb_grpc
from mainspring.serving.tensors import Parameters, Tensor, from_raw, tensor, to_raw

#: InferTensorContents field holding each datatype's typed values
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
#: default: 64 MiB messages, like the REST body limit
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _status(exc: MainspringError) -> grpc.StatusCode:
    if isinstance(exc, NotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, ConflictError):
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INVALID_ARGUMENT


def parameters_from(message: Any) -> Parameters:
    out: Parameters = {}
    for key, value in message.items():
        choice = value.WhichOneof("parameter_choice")
        if choice is not None:
            out[key] = getattr(value, choice)
    return out


def parameters_into(target: Any, values: Parameters) -> None:
    for key, value in values.items():
        param = target[key]
        if isinstance(value, bool):
            param.bool_param = value
        elif isinstance(value, int):
            param.int64_param = value
        elif isinstance(value, float):
            param.double_param = value
        else:
            param.string_param = str(value)


def decode_request(message: Any) -> InferenceRequest:
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise InvalidInputError(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs",
            field="raw_input_contents",
        )
    tensors: list[Tensor] = []
    for i, item in enumerate(message.inputs):
        params = parameters_from(item.parameters)
        shape = list(item.shape)
        if raw:
            tensors.append(from_raw(item.name, item.datatype, shape, raw[i], params))
            continue
        fieldname = CONTENTS_FIELD.get(item.datatype)
        if fieldname is None:  # FP16 and unknown datatypes have no typed contents
            if item.datatype == "FP16":
                raise InvalidInputError(
                    f"tensor {item.name!r} is FP16, which gRPC carries only in raw_input_contents",
                    field=f"{item.name}.contents",
                )
            values: Any = []
        else:
            values = getattr(item.contents, fieldname)
        data = list(values) if item.datatype == "BYTES" else np.asarray(values)
        tensors.append(tensor(item.name, item.datatype, shape, data, params))
    outputs = [RequestedOutput(o.name, parameters_from(o.parameters)) for o in message.outputs]
    return InferenceRequest(
        tensors, outputs, message.id or None, parameters_from(message.parameters)
    )


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The generated service, answered by a :class:`DataPlane`."""

    def __init__(self, plane: DataPlane, batcher: MicroBatcher | None = None) -> None:
        self.plane = plane
        self.batcher = batcher

    async def _fail(self, context: Any, exc: MainspringError) -> None:
        await context.abort(_status(exc), exc.message)

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=self.plane.live())

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.plane.ready())

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:
            ready = self.plane.model_ready(request.name, request.version or None)
        except NotFoundError:  # an unknown model is not ready (REST answers 404 likewise)
            ready = False
        except MainspringError as exc:
            await self._fail(context, exc)
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        meta = self.plane.metadata()
        return pb.ServerMetadataResponse(
            name=meta.name, version=meta.version, extensions=list(meta.extensions)
        )

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            meta = self.plane.model_metadata(request.name, request.version or None)
        except MainspringError as exc:
            await self._fail(context, exc)
        tensor_meta = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta.name,
            versions=list(meta.versions),
            platform=meta.platform,
            inputs=[
                tensor_meta(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.inputs
            ],
            outputs=[
                tensor_meta(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.outputs
            ],
        )

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        try:
            decoded = decode_request(request)
            answer = await self.plane.infer_async(
                request.model_name, request.model_version or None, decoded, protocol="grpc",
                batcher=self.batcher,
            )  # fmt: skip
        except MainspringError as exc:
            await self._fail(context, exc)
        response = pb.ModelInferResponse(
            model_name=answer.model_name, model_version=answer.model_version, id=answer.id or ""
        )
        parameters_into(response.parameters, answer.parameters)
        for t in answer.outputs:
            out = response.outputs.add(name=t.name, datatype=t.datatype, shape=list(t.shape))
            parameters_into(out.parameters, t.parameters)
            response.raw_output_contents.append(to_raw(t))
        return response


def create_server(
    plane: DataPlane,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    batcher: MicroBatcher | None = None,
) -> grpc.aio.Server:
    """A ``grpc.aio`` server answering the protocol; the caller adds a port and starts it."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 1),
        ]
    )
    register: Any = pb_grpc.add_GRPCInferenceServiceServicer_to_server
    register(InferenceService(plane, batcher), server)
    return server
