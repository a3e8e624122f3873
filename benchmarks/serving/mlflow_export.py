"""Save the benchmark's LightGBM model as an MLflow model (pyfunc) for ``mlflow models serve``.

Runs inside ``benchmarks/.venvs/mlflow``: ``python mlflow_export.py model.txt OUT_DIR``.
"""

from __future__ import annotations

import sys

import lightgbm as lgb
import mlflow.lightgbm


def main() -> None:
    model_file, out = sys.argv[1], sys.argv[2]
    mlflow.lightgbm.save_model(lgb.Booster(model_file=model_file), out)


if __name__ == "__main__":
    main()
