"""Confidence intervals for tournament scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from hrl.errors import InvalidArgumentError, NonFiniteError

__all__ = ["bootstrap_ci"]


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    statistic: Literal["mean", "median"] = "mean",
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (or median) of ``samples``.

    Args:
        samples: one value per independent unit (e.g. one score per world), any length >= 1.
        confidence: coverage of the interval, in (0, 1).
        n_resamples: bootstrap resamples (with replacement, same size as ``samples``).
        statistic: ``"mean"`` or ``"median"``.
        seed: seeds the resampling, so the interval is reproducible.

    Returns:
        ``(low, high)``; both equal the statistic when there is a single sample.

    Raises:
        InvalidArgumentError: empty ``samples``, ``confidence`` outside (0, 1), ``n_resamples < 1``,
            or an unknown ``statistic``.
        NonFiniteError: a NaN or infinite sample (names its index).
    """
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InvalidArgumentError(f"samples: need a non-empty 1-D sequence, got shape {values.shape}")
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence: must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise InvalidArgumentError(f"n_resamples: must be >= 1, got {n_resamples}")
    if statistic not in ("mean", "median"):
        raise InvalidArgumentError(f"statistic: 'mean' or 'median', got {statistic!r}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise NonFiniteError(f"samples: non-finite value at index {bad[0]}", "samples", (int(bad[0]),))
    rng = np.random.default_rng(seed)
    resampled = values[rng.integers(0, values.size, size=(n_resamples, values.size))]
    estimates = resampled.mean(axis=1) if statistic == "mean" else np.median(resampled, axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [tail, 1.0 - tail])
    return float(low), float(high)
