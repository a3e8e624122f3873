"""Micro-batching: concurrent single-row requests merge into one predict call, same answers."""

from __future__ import annotations

import asyncio

import numpy as np

from mainspring.serving import DataPlane, InferenceRequest, tensor
from mainspring.serving.batching import MicroBatcher

FEATURES = ["income", "age", "debt_ratio"]


def request(i: int) -> InferenceRequest:
    return InferenceRequest([tensor(n, "FP64", [1], [0.1 * i - j]) for j, n in enumerate(FEATURES)])


def test_concurrent_requests_merge_and_answer_like_alone(plane: DataPlane) -> None:
    batcher = plane.batcher(max_batch_rows=8)
    sizes: list[int] = []
    count = batcher.on_batch
    assert count is not None

    def record(runtime: object, rows: int) -> None:
        sizes.append(rows)
        count(runtime, rows)  # type: ignore[arg-type]

    batcher.on_batch = record

    async def run() -> list:
        return await asyncio.gather(
            *(plane.infer_async("credit", None, request(i), protocol="rest", batcher=batcher)
              for i in range(20))
        )  # fmt: skip

    answers = asyncio.run(run())
    assert sizes == [8, 8, 4]  # merged up to max_batch_rows, the rest in one call
    for i, answer in enumerate(answers):
        alone = plane.infer("credit", None, request(i)).outputs[0].data
        np.testing.assert_allclose(answer.outputs[0].data, alone)
    assert b"mainspring_inference_merged_batch_rows_count" in plane.metrics.exposition()


def test_lone_requests_skip_the_batcher_between_probes(plane: DataPlane) -> None:
    batcher = MicroBatcher(max_batch_rows=64, max_request_rows=2, probe_every=3)
    sizes: list[int] = []
    batcher.on_batch = lambda runtime, rows: sizes.append(rows)
    big = InferenceRequest([tensor("x", "FP64", [5, 3], [0.0] * 15)])

    async def run() -> None:
        for i in range(9):  # one at a time: a probe, then three straight predictions, ...
            await plane.infer_async("credit", None, request(i), protocol="rest", batcher=batcher)
        await plane.infer_async("credit", None, big, protocol="rest", batcher=batcher)
        # concurrency again: the next probe merges, and batching stays on
        await asyncio.gather(
            *(plane.infer_async("credit", None, request(i), protocol="rest", batcher=batcher)
              for i in range(6))
        )  # fmt: skip

    asyncio.run(run())
    assert sizes[:3] == [1, 1, 1]  # probes of requests 0, 4 and 8
    assert sum(sizes[3:]) <= 6 and max(sizes[3:]) > 1


def test_with_a_wait_requests_that_come_later_join(plane: DataPlane) -> None:
    batcher = MicroBatcher(max_batch_rows=64, max_wait_s=0.05)
    sizes: list[int] = []
    batcher.on_batch = lambda runtime, rows: sizes.append(rows)

    async def later(i: int) -> object:
        await asyncio.sleep(0)
        return await plane.infer_async("credit", None, request(i), protocol="rest", batcher=batcher)

    async def run() -> None:
        await asyncio.gather(*(later(i) for i in range(5)))

    asyncio.run(run())
    assert sizes == [5]
