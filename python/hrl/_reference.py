"""Plain NumPy/Python versions of the Rust kernels: the test oracle.

They favour obviousness over speed (a Python loop over time, vectorised over environments) and
compute in float64. The semantics are those documented in :mod:`hrl.returns`. The L1 safety rules
have their pure-Python version in :mod:`hrl.safety.fallback` (a runtime path as well as the
oracle of the Rust rules); this module keeps the by-definition searches its persistent-stock
closed forms are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hrl.safety.fallback import stock_days

__all__ = [
    "buy_caps_by_search",
    "compute_gae_reference",
    "discounted_returns_reference",
    "sell_caps_by_search",
]

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


# --- L1 safety rules: the persistent-stock caps by definition ------------------------------------
# The L1 rules themselves run in pure Python in :mod:`hrl.safety.fallback` (the runtime fallback
# and the oracle the Rust path is tested against); these searches check its closed forms.


def _total_shortfall(stock: int, arrivals: Sequence[int], due: Sequence[int], lines: int) -> int:
    return sum(day[1] for day in stock_days(0, stock, arrivals, due, lines))


def sell_caps_by_search(stock: int, arrivals: Sequence[int], due: Sequence[int], lines: int) -> list[int]:
    """Persistent sell caps by definition: per day, the largest extra sale after which the model's
    total shortfall is unchanged (linear search; the oracle of the closed form)."""
    base = _total_shortfall(stock, arrivals, due, lines)
    caps = []
    for e in range(len(arrivals)):
        q = 0
        while q <= 4 * lines:
            more = list(due)
            more[e] += q + 1
            if _total_shortfall(stock, arrivals, more, lines) != base:
                break
            q += 1
        caps.append(q)
    return caps


def buy_caps_by_search(
    stock: int, arrivals: Sequence[int], lines: int, last_day_index: int | None
) -> list[int]:
    """Persistent buy caps by definition: per day, the last unit that, with every day producing all
    it can, raises that day's production or lifts a final stock still below the lines (the
    oracle of the closed form)."""
    w = len(arrivals)
    full = [lines] * w
    caps = []
    for e in range(w):
        best = 0
        for k in range(1, 4 * lines + 2):
            lo, hi = list(arrivals), list(arrivals)
            lo[e] += k - 1
            hi[e] += k
            before = stock_days(0, stock, lo, full, lines)
            after = stock_days(0, stock, hi, full, lines)
            stocked = after[-1][2] > before[-1][2] and after[-1][2] <= lines and e != last_day_index
            if after[e][0] > before[e][0] or stocked:
                best = k
        caps.append(best)
    return caps
