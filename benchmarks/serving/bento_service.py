"""The BentoML peer: the benchmark's LightGBM booster behind an OIP-shaped JSON endpoint.

Runs inside ``benchmarks/.venvs/bentoml`` (``peers.py`` starts it with ``bentoml serve
bento_service:Bench``); ``MODEL_FILE`` names the model, ``BENCH_WORKERS`` the worker count (when
unset, the service sets none and BentoML's default applies). The request body is the same OIP body
the other servers get (``{"inputs": [...]}``, which BentoML maps to the ``inputs`` argument), and
the answer has the OIP response's shape.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import lightgbm as lgb
import numpy as np

# BENCH_WORKERS unset: no workers setting at all, so `bentoml serve` runs BentoML's default
_WORKERS = os.environ.get("BENCH_WORKERS")


@bentoml.service(**({"workers": int(_WORKERS)} if _WORKERS else {}))
class Bench:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ["MODEL_FILE"])

    @bentoml.api(route="/v2/models/bench/infer")
    def infer(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        tensor = inputs[0]
        matrix = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        scores = self.booster.predict(matrix)
        return {
            "model_name": "bench",
            "outputs": [{"name": "probability", "datatype": "FP64", "shape": [len(scores)],
                         "data": scores.tolist()}],
        }  # fmt: skip
