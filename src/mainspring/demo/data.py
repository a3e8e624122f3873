"""Synthetic credit-risk data for the demo and the examples (no download needed)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FEATURES = (
    "income",
    "age",
    "debt_ratio",
    "credit_lines",
    "late_payments",
    "utilization",
)


def credit_data(
    rows: int, *, seed: int = 7, drift: float = 0.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Applicants and whether they defaulted; ``drift`` shifts incomes down and debt up.

    >>> x, y = credit_data(100)
    >>> x.shape, set(y.tolist()) <= {0, 1}
    ((100, 6), True)
    """
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.6 - drift * 0.3, 0.5, rows)
    age = rng.uniform(21, 75, rows)
    debt_ratio = np.clip(rng.beta(2, 5, rows) + drift * 0.1, 0, 1.5)
    credit_lines = rng.poisson(4, rows).astype(np.float64)
    late = rng.poisson(0.4 + drift * 0.3, rows).astype(np.float64)
    utilization = np.clip(rng.beta(2, 3, rows), 0, 1)
    logit = (
        -1.5
        - 0.6 * (np.log(income) - 10.6)
        + 2.8 * (debt_ratio - 0.3)
        + 0.9 * late
        + 1.6 * (utilization - 0.4)
        - 0.01 * (age - 45)
    )
    default = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    x = np.column_stack([income, age, debt_ratio, credit_lines, late, utilization])
    return x, default
