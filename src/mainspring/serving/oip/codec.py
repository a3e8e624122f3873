"""The JSON form of OIP requests and responses (REST), with the binary tensor data extension.

A request body is a JSON object, optionally followed by binary tensor data; the
``Inference-Header-Content-Length`` header then gives the length of the JSON part, and each input
carried in binary has a ``binary_data_size`` parameter instead of ``data``, in order. Responses
use binary data for the outputs that ask for it (``binary_data`` output parameter, or the
``binary_data_output`` request parameter).
"""

from __future__ import annotations

from typing import Any

import orjson

from mainspring.errors import InvalidInputError
from mainspring.serving.inference import InferenceRequest, InferenceResponse, RequestedOutput
from mainspring.serving.tensors import Parameters, Tensor, from_raw, tensor, to_list, to_raw

HEADER_LENGTH = "inference-header-content-length"


def _parameters(value: object, where: str) -> Parameters:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be an object", field=where)
    return value


def decode_request(body: bytes, header_length: int | None = None) -> InferenceRequest:
    """Decode a REST inference request (JSON, or JSON followed by binary tensor data)."""
    if header_length is not None and not 0 < header_length <= len(body):
        raise InvalidInputError(
            f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} "
            "bytes",
            field="Inference-Header-Content-Length",
        )
    head = body if header_length is None else body[:header_length]
    try:
        document = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(document, dict):
        raise InvalidInputError("the body must be a JSON object with 'inputs'", field="body")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError("'inputs' must be a non-empty list of tensors", field="inputs")
    binary = memoryview(body)[header_length:] if header_length is not None else memoryview(b"")
    offset = 0
    tensors: list[Tensor] = []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInputError(
                f"inputs[{i}] must be an object with a string 'name'", field=f"inputs[{i}]"
            )
        name = item["name"]
        params = _parameters(item.get("parameters"), f"{name}.parameters")
        if "datatype" not in item or "shape" not in item:
            raise InvalidInputError(f"tensor {name!r} needs 'datatype' and 'shape'", field=name)
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidInputError(
                    f"tensor {name!r}: binary_data_size must be a non-negative integer",
                    field=f"{name}.parameters.binary_data_size",
                )
            if offset + size > len(binary):
                raise InvalidInputError(
                    f"tensor {name!r}: binary_data_size {size} runs past the {len(binary)} bytes "
                    "of binary data",
                    field=f"{name}.parameters.binary_data_size",
                )
            chunk = binary[offset : offset + size]
            offset += size
            params = {k: v for k, v in params.items() if k != "binary_data_size"}
            tensors.append(from_raw(name, item["datatype"], item["shape"], chunk, params))
        elif "data" in item:
            tensors.append(tensor(name, item["datatype"], item["shape"], item["data"], params))
        else:
            raise InvalidInputError(
                f"tensor {name!r} has neither 'data' nor a binary_data_size parameter",
                field=f"{name}.data",
            )
    if offset != len(binary):
        raise InvalidInputError(
            f"{len(binary) - offset} bytes of binary data are not claimed by any input",
            field="body",
        )
    outputs = document.get("outputs") or []
    if not isinstance(outputs, list):
        raise InvalidInputError("'outputs' must be a list", field="outputs")
    requested = []
    for i, item in enumerate(outputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInputError(
                f"outputs[{i}] must be an object with a string 'name'", field=f"outputs[{i}]"
            )
        requested.append(
            RequestedOutput(item["name"], _parameters(item.get("parameters"), f"outputs[{i}]"))
        )
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError("'id' must be a string", field="id")
    return InferenceRequest(
        tensors, requested, request_id, _parameters(document.get("parameters"), "parameters")
    )


def encode_response(
    response: InferenceResponse, binary_default: bool = False
) -> tuple[bytes, int | None]:
    """The body of a REST inference response and, with binary outputs, the JSON part's length."""
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for t in response.outputs:
        params = dict(t.parameters)
        binary = bool(params.pop("binary_data", binary_default))
        entry: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        if binary:
            raw = to_raw(t)
            chunks.append(raw)
            params["binary_data_size"] = len(raw)
        elif t.datatype == "BYTES":
            entry["data"] = to_list(t)
        else:
            entry["data"] = t.data.reshape(-1)
        if params:
            entry["parameters"] = params
        outputs.append(entry)
    document: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id is not None:
        document["id"] = response.id
    if response.parameters:
        document["parameters"] = response.parameters
    head = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
