"""pytest-benchmark: the Rust GAE (through the public Python API) against the NumPy reference loop
and a numba-jitted loop, in the same run, on T=2048 x N=64 and T=1_000_000 x N=1.

Run with `make bench`. numba is compiled before timing (its JIT warm-up is not counted against
it). Throughput and ratios are printed at the end of the session and written to
runs/bench/gae_summary.json (see benches/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import pytest

import hrl
from hrl._reference import compute_gae_reference

SHAPES = [(2048, 64), (1_000_000, 1)]
GAMMA, LAM = 0.99, 0.95


@numba.njit(cache=False)
def gae_numba(rewards, values, next_values, terminated, truncated, gamma, lam):  # type: ignore[no-untyped-def]
    t_len, n = rewards.shape
    advantages = np.empty_like(rewards)
    last = np.zeros(n, dtype=rewards.dtype)
    for t in range(t_len - 1, -1, -1):
        for j in range(n):
            nxt = 0.0 if terminated[t, j] else next_values[t, j]
            delta = rewards[t, j] + gamma * nxt - values[t, j]
            keep = 0.0 if (terminated[t, j] or truncated[t, j]) else 1.0
            last[j] = delta + gamma * lam * keep * last[j]
            advantages[t, j] = last[j]
    return advantages, advantages + values


@numba.njit(cache=False)
def gae_numba_single(rewards, values, next_values, terminated, truncated, gamma, lam):  # type: ignore[no-untyped-def]
    """The same loop specialised for one column (a scalar carry instead of a row)."""
    t_len = rewards.shape[0]
    advantages = np.empty_like(rewards)
    last = np.float32(0.0)
    for t in range(t_len - 1, -1, -1):
        nxt = np.float32(0.0) if terminated[t] else next_values[t]
        delta = rewards[t] + gamma * nxt - values[t]
        keep = np.float32(0.0) if (terminated[t] or truncated[t]) else np.float32(1.0)
        last = delta + gamma * lam * keep * last
        advantages[t] = last
    return advantages, advantages + values


def batch(t: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "rewards": rng.normal(size=(t, n)).astype(np.float32),
        "values": rng.normal(size=(t, n)).astype(np.float32),
        "next_values": rng.normal(size=(t, n)).astype(np.float32),
        "terminated": rng.random((t, n)) < 0.01,
        "truncated": rng.random((t, n)) < 0.01,
    }


def rust(b: dict[str, np.ndarray]) -> Any:
    return hrl.compute_gae(**b, gamma=GAMMA, lam=LAM)


def numpy_loop(b: dict[str, np.ndarray]) -> Any:
    return compute_gae_reference(**b, gamma=GAMMA, lam=LAM)


def numba_loop(b: dict[str, np.ndarray]) -> Any:
    """The 2-D loop, or the single-column one (1-D views) when N = 1: numba at its best for each shape."""
    args = [b[k] for k in ("rewards", "values", "next_values", "terminated", "truncated")]
    if args[0].shape[1] == 1:
        advantages, returns = gae_numba_single(*(a[:, 0] for a in args), np.float32(GAMMA), np.float32(LAM))
        return advantages[:, None], returns[:, None]
    return gae_numba(*args, GAMMA, LAM)


IMPLEMENTATIONS: dict[str, Callable[[dict[str, np.ndarray]], Any]] = {
    "rust": rust,
    "numba": numba_loop,
    "numpy_loop": numpy_loop,
}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_gae_throughput(
    benchmark: Any, implementation: str, shape: tuple[int, int], gae_results: dict[str, Any]
) -> None:
    b = batch(*shape)
    function = IMPLEMENTATIONS[implementation]
    advantages, _ = function(b)  # warm-up (numba compiles here) and a correctness check
    want, _ = numpy_loop(b) if implementation != "numpy_loop" else (advantages, None)
    np.testing.assert_allclose(advantages, want, rtol=1e-3, atol=1e-3)
    benchmark.group = f"gae {shape[0]}x{shape[1]}"
    slow = implementation == "numpy_loop" and shape[1] == 1
    if slow:  # ~5 s per call: a few rounds are enough
        benchmark.pedantic(function, args=(b,), rounds=2, iterations=1)
    else:
        benchmark(function, b)
    elements = shape[0] * shape[1]
    median = benchmark.stats.stats.median
    benchmark.extra_info["elements_per_s"] = elements / median
    gae_results[f"{shape[0]}x{shape[1]}"][implementation] = elements / median
