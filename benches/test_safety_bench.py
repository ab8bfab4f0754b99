"""pytest-benchmark of the L1 safety step: Rust (one call per round) against the pure-Python
fallback of the same rules (``hrl.safety.fallback``, what a submission without the compiled
extension runs), a single-offer call and batched clipping.

Run with ``make bench``; ``python benches/safety_ratios.py runs/bench/gae.json`` prints the ratios.
Groups: ``round-H<horizon>-O<offers>`` (rust vs python), ``single-offer``, ``batched-<m>``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from hrl import _core
from hrl.safety import BUY, SELL, SafetyState, fallback, round_step


def make_day(horizon: int, n_offers: int, seed: int) -> tuple[SafetyState, list[Any], list[Any]]:
    rng = random.Random(seed)
    w = horizon + 1
    state = SafetyState(
        current_step=10,
        n_steps=200,
        n_lines=10,
        inventory_input=4,
        supplies=tuple(rng.randrange(8) for _ in range(w)),
        sales=tuple(rng.randrange(6) for _ in range(w)),
        balance=5000.0,
        committed_payables=300.0,
        production_cost=3.0,
        trading_price_in=10.0,
        trading_price_out=22.0,
        buy_quantity=(1, 30),
        buy_price=(9, 11),
        sell_quantity=(1, 30),
        sell_price=(19, 24),
    )

    def offer() -> tuple[int, int, int, int]:
        side = rng.choice((BUY, SELL))
        return (
            1 + rng.randrange(8),
            10 + rng.randrange(w),
            (8 if side == BUY else 18) + rng.randrange(6),
            side,
        )

    open_offers = [offer() for _ in range(5)]
    items = [(*offer(), k % 3 == 0) for k in range(n_offers)]
    return state, open_offers, [(*i[:4], int(i[4])) for i in items]


SIZES = [(10, 5), (10, 30), (40, 5), (40, 30)]


@pytest.mark.parametrize(("horizon", "n_offers"), SIZES)
def test_round_step_rust(benchmark: Any, horizon: int, n_offers: int) -> None:
    state, open_offers, items = make_day(horizon, n_offers, seed=horizon * 100 + n_offers)
    open_arr = np.array(open_offers, dtype=np.int64)
    items_arr = np.array(items, dtype=np.int64)
    benchmark.group = f"round-H{horizon}-O{n_offers}"
    out = benchmark(_core.round_step, state, open_arr, items_arr)
    assert out.tolist() == fallback.round_step(state, open_arr, items_arr).tolist()


@pytest.mark.parametrize(("horizon", "n_offers"), SIZES)
def test_round_step_rust_from_lists(benchmark: Any, horizon: int, n_offers: int) -> None:
    state, open_offers, items = make_day(horizon, n_offers, seed=horizon * 100 + n_offers)
    benchmark.group = f"round-H{horizon}-O{n_offers}"
    benchmark(round_step, state, open_offers, items)


@pytest.mark.parametrize(("horizon", "n_offers"), SIZES)
def test_round_step_python(benchmark: Any, horizon: int, n_offers: int) -> None:
    state, open_offers, items = make_day(horizon, n_offers, seed=horizon * 100 + n_offers)
    benchmark.group = f"round-H{horizon}-O{n_offers}"
    open_arr = np.array(open_offers, dtype=np.int64)
    items_arr = np.array(items, dtype=np.int64)
    benchmark(fallback.round_step, state, open_arr, items_arr)


def test_single_offer_rust(benchmark: Any) -> None:
    state, _, _ = make_day(10, 1, seed=1)
    limits = _core.derive_limits(state)
    benchmark.group = "single-offer"
    assert benchmark(limits.clip, 5, 12, 10, BUY) == (5, 12, 10)


def test_single_offer_python(benchmark: Any) -> None:
    state, _, _ = make_day(10, 1, seed=1)
    limits = fallback.derive_limits(state)
    benchmark.group = "single-offer"
    assert benchmark(limits.clip, 5, 12, 10, BUY) == (5, 12, 10)


@pytest.mark.parametrize("m", [256, 4096, 65536])
def test_batched_clip_rust(benchmark: Any, m: int) -> None:
    state, _, _ = make_day(10, 1, seed=2)
    limits = _core.derive_limits(state)
    rng = np.random.default_rng(m)
    offers = np.column_stack(
        [rng.integers(1, 9, m), 10 + rng.integers(0, 11, m), rng.integers(8, 24, m), rng.integers(0, 2, m)]
    ).astype(np.int64)
    benchmark.group = f"batched-{m}"
    out, ok = benchmark(limits.clip_many, offers)
    assert out.shape == (m, 3) and ok.shape == (m,)
