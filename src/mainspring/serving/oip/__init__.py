"""The Open Inference Protocol (v2) transports: ``rest`` (Starlette) and ``rpc`` (grpc.aio).

The gRPC stubs in ``generated`` are produced at build time from ``open_inference_grpc.proto``.
"""
