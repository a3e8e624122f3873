"""Model serving: the Open Inference Protocol over REST and gRPC, on one protocol-neutral data
plane (:class:`DataPlane`) over the registry's models.

The transports live in :mod:`mainspring.serving.oip` (``rest``: Starlette, ``rpc``: grpc.aio);
importing this package imports neither.
"""

from mainspring.serving.dataplane import DataPlane
from mainspring.serving.inference import InferenceRequest, InferenceResponse, RequestedOutput
from mainspring.serving.tensors import Tensor, tensor

__all__ = [
    "DataPlane",
    "InferenceRequest",
    "InferenceResponse",
    "RequestedOutput",
    "Tensor",
    "tensor",
]
