"""Plain NumPy versions of the Rust kernels: the test oracle.

They favour obviousness over speed (a Python loop over time, vectorised over environments) and
compute in float64. The semantics are those documented in :mod:`hrl.returns`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["compute_gae_reference", "discounted_returns_reference"]

F64 = NDArray[np.float64]


def compute_gae_reference(
    rewards: NDArray[np.floating],
    values: NDArray[np.floating],
    next_values: NDArray[np.floating],
    terminated: NDArray[np.bool_],
    truncated: NDArray[np.bool_],
    *,
    gamma: float,
    lam: float,
) -> tuple[F64, F64]:
    """GAE(lambda) on time-major ``[T, N]`` arrays; returns ``(advantages, returns)`` in float64."""
    rewards, values = np.asarray(rewards, np.float64), np.asarray(values, np.float64)
    next_values = np.asarray(next_values, np.float64)
    advantages = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        bootstrap = np.where(terminated[t], 0.0, next_values[t])
        delta = rewards[t] + gamma * bootstrap - values[t]
        keep = ~(terminated[t] | truncated[t])
        last = delta + gamma * lam * keep * last
        advantages[t] = last
    return advantages, advantages + values


def discounted_returns_reference(
    rewards: NDArray[np.floating],
    terminated: NDArray[np.bool_],
    truncated: NDArray[np.bool_],
    *,
    gamma: float,
    bootstrap: NDArray[np.floating] | None = None,
) -> F64:
    """Discounted returns on ``[T, N]``; ``bootstrap`` is ``[T, N]`` (used at cuts) or ``None``."""
    rewards = np.asarray(rewards, np.float64)
    boot = np.zeros_like(rewards) if bootstrap is None else np.asarray(bootstrap, np.float64)
    returns = np.zeros_like(rewards)
    following = np.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        cut = terminated[t] | truncated[t] | (t == rewards.shape[0] - 1)
        after = np.where(terminated[t], 0.0, np.where(cut, boot[t], following))
        following = rewards[t] + gamma * after
        returns[t] = following
    return returns
