"""State features: ONE definition for the offline pipeline and the live agent.

Every function here is a pure function of plain numbers (Python scalars or NumPy arrays that
broadcast together), with no SCML or polars import. The offline builder
(:mod:`hrl.data.datasets`) calls them on whole columns; the live agent calls them with the
numbers it reads from its AWI (see the ``awi`` notes per argument). A feature computed
differently in training and in play is a bug, so neither caller may re-derive what is here.

Units: quantities are divided by the agent's ``n_lines`` (daily production capacity), prices by
the trading price of the product they refer to, money by the agent's initial balance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GOAL_FIELDS",
    "HORIZON",
    "HORIZON_BINS",
    "MACRO_FEATURES",
    "MAX_ROUNDS",
    "OFFER_FEATURES",
    "baseline_features",
    "goal_from_contracts",
    "macro_features",
    "micro_context",
    "needed_quantities",
    "offer_features",
]

HORIZON_BINS = 11
"""Delivery offsets 0..10 (today .. today + horizon) of committed future trade."""

GOAL_FIELDS = ("q_buy", "p_buy", "q_sell", "p_sell")
"""The L2 goal g_t = [Q_buy, P_buy, Q_sell, P_sell]."""

MACRO_FEATURES: tuple[str, ...] = (
    "relative_time",
    "level",
    "is_first_level",
    "is_last_level",
    "balance",
    "inventory_input",
    "inventory_output",
    "trading_price_in",
    "trading_price_out",
    "exogenous_in_quantity",
    "exogenous_in_price",
    "exogenous_out_quantity",
    "exogenous_out_price",
    "needed_supplies",
    "needed_sales",
    *(f"committed_supplies_{k}" for k in range(HORIZON_BINS)),
    *(f"committed_sales_{k}" for k in range(HORIZON_BINS)),
)
"""Names of the columns of :func:`macro_features`, in order."""

F32 = NDArray[np.float32]


def _safe_div(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    num, den = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def needed_quantities(
    *,
    inventory_input: ArrayLike,
    inventory_output: ArrayLike,
    exogenous_in_quantity: ArrayLike,
    exogenous_out_quantity: ArrayLike,
    committed_supplies_today: ArrayLike,
    committed_sales_today: ArrayLike,
    n_lines: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(needed_supplies, needed_sales)`` for today, in units (not normalised).

    needed_sales = inputs on hand or arriving today (capped by production capacity) plus finished
    goods, minus what is already sold for today; needed_supplies = what is sold for today minus
    what can be delivered from stock and today's inputs. Both are clipped at 0.
    """
    inputs = np.asarray(inventory_input, np.float64) + np.asarray(exogenous_in_quantity, np.float64)
    inputs = inputs + np.asarray(committed_supplies_today, np.float64)
    producible = np.minimum(inputs, np.asarray(n_lines, np.float64))
    available = producible + np.asarray(inventory_output, np.float64)
    sold = np.asarray(exogenous_out_quantity, np.float64) + np.asarray(committed_sales_today, np.float64)
    return np.maximum(sold - available, 0.0), np.maximum(available - sold, 0.0)


def macro_features(
    *,
    day: ArrayLike,
    n_steps: ArrayLike,
    level: ArrayLike,
    n_levels: ArrayLike,
    n_lines: ArrayLike,
    balance: ArrayLike,
    initial_balance: ArrayLike,
    inventory_input: ArrayLike,
    inventory_output: ArrayLike,
    trading_price_in: ArrayLike,
    trading_price_out: ArrayLike,
    exogenous_in_quantity: ArrayLike,
    exogenous_in_price: ArrayLike,
    exogenous_out_quantity: ArrayLike,
    exogenous_out_price: ArrayLike,
    committed_supplies: ArrayLike,
    committed_sales: ArrayLike,
) -> F32:
    """The macro state at the start of ``day``: float32 ``[N, len(MACRO_FEATURES)]``.

    Args (scalars or ``[N]`` arrays; ``awi`` = where the live agent reads them):
        day, n_steps: ``awi.current_step``, ``awi.n_steps``.
        level, n_levels: ``awi.level``, ``awi.n_processes``.
        n_lines: ``awi.n_lines``.
        balance, initial_balance: ``awi.current_balance`` and the balance on day 0.
        inventory_input, inventory_output: ``awi.current_inventory_input/output``.
        trading_price_in, trading_price_out: ``awi.trading_prices`` of the input/output product.
        exogenous_in_quantity, exogenous_out_quantity: ``awi.current_exogenous_input/output_quantity``.
        exogenous_in_price, exogenous_out_price: *unit* prices (the AWI gives totals: divide by the
            quantity; 0 when the quantity is 0).
        committed_supplies, committed_sales: ``[N, HORIZON_BINS]`` (or ``[HORIZON_BINS]``)
            quantities already contracted for delivery ``day + k`` (``awi.future_supplies`` /
            ``awi.future_sales`` summed over partners), negotiated contracts signed before ``day``.
    """
    day_a = np.atleast_1d(np.asarray(day, np.float64))
    supplies = np.atleast_2d(np.asarray(committed_supplies, np.float64))
    sales = np.atleast_2d(np.asarray(committed_sales, np.float64))
    if supplies.shape[-1] != HORIZON_BINS or sales.shape[-1] != HORIZON_BINS:
        raise ValueError(f"committed_supplies/sales: expected {HORIZON_BINS} delivery offsets per row")
    lines = np.asarray(n_lines, np.float64)
    needed_supplies, needed_sales = needed_quantities(
        inventory_input=inventory_input,
        inventory_output=inventory_output,
        exogenous_in_quantity=exogenous_in_quantity,
        exogenous_out_quantity=exogenous_out_quantity,
        committed_supplies_today=supplies[:, 0],
        committed_sales_today=sales[:, 0],
        n_lines=lines,
    )
    level_a = np.asarray(level, np.float64)
    last = np.asarray(n_levels, np.float64) - 1
    columns = [
        _safe_div(day_a, n_steps),
        _safe_div(level_a, last),
        (level_a == 0).astype(np.float64),
        (level_a == last).astype(np.float64),
        _safe_div(balance, initial_balance),
        _safe_div(inventory_input, lines),
        _safe_div(inventory_output, lines),
        np.log1p(np.maximum(np.asarray(trading_price_in, np.float64), 0.0)),
        np.log1p(np.maximum(np.asarray(trading_price_out, np.float64), 0.0)),
        _safe_div(exogenous_in_quantity, lines),
        _safe_div(exogenous_in_price, trading_price_in),
        _safe_div(exogenous_out_quantity, lines),
        _safe_div(exogenous_out_price, trading_price_out),
        _safe_div(needed_supplies, lines),
        _safe_div(needed_sales, lines),
    ]
    n = max(np.broadcast(*[np.atleast_1d(c) for c in columns]).shape[0], supplies.shape[0])
    flat = [np.broadcast_to(np.atleast_1d(c), (n,)) for c in columns]
    lines_col = np.broadcast_to(np.atleast_1d(lines), (n,))[:, None]
    out = np.concatenate(
        [
            np.stack(flat, axis=1),
            np.broadcast_to(_safe_div(supplies, lines_col), (n, HORIZON_BINS)),
            np.broadcast_to(_safe_div(sales, lines_col), (n, HORIZON_BINS)),
        ],
        axis=1,
    )
    return np.ascontiguousarray(out, dtype=np.float32)


def goal_from_contracts(
    quantities: Sequence[float] | NDArray[np.float64],
    unit_prices: Sequence[float] | NDArray[np.float64],
) -> tuple[float, float]:
    """``(Q, P)`` of one side of one day: total quantity and volume-weighted unit price (0, 0 if
    nothing was traded). The live agent uses it to report which goal it reached."""
    q = np.asarray(quantities, np.float64)
    p = np.asarray(unit_prices, np.float64)
    total = float(q.sum())
    return total, float((q * p).sum() / total) if total > 0 else 0.0


# -- micro (per negotiation thread) features: the L3/L4 inputs ---------------------------------

HORIZON = 10
"""Delivery offsets are divided by the Standard game's horizon (10 days) when used as features."""
MAX_ROUNDS = 20
"""Rounds are divided by the tournament's round limit (20)."""

OFFER_FEATURES = ("quantity", "offset", "price", "round", "by_self")
"""Per offer of an L3 history: q / n_lines, (delivery - today) / HORIZON, price / trading price,
round / MAX_ROUNDS, 1 if the agent itself proposed it."""


def offer_features(
    *,
    quantity: ArrayLike,
    delivery_day: ArrayLike,
    unit_price: ArrayLike,
    round: ArrayLike,
    by_self: ArrayLike,
    day: ArrayLike,
    n_lines: ArrayLike,
    trading_price: ArrayLike,
) -> NDArray[np.float64]:
    """``[N, 5]`` offer features (:data:`OFFER_FEATURES`) of ``N`` offers made on ``day``.

    ``trading_price`` is that of the product the offer trades (input product when the agent buys,
    output product when it sells). The offline adapter (:mod:`hrl.train.adapters`) computes the
    same numbers column-wise; a test compares both on the same decisions.
    """
    return np.stack(
        [
            _safe_div(quantity, n_lines),
            (np.asarray(delivery_day, np.float64) - np.asarray(day, np.float64)) / HORIZON,
            _safe_div(unit_price, trading_price),
            np.asarray(round, np.float64) / MAX_ROUNDS,
            np.asarray(by_self, np.float64),
        ],
        axis=-1,
    )


def baseline_features(
    *,
    quantity: ArrayLike,
    delivery_day: ArrayLike,
    unit_price: ArrayLike,
    day: ArrayLike,
    n_lines: ArrayLike,
    trading_price: ArrayLike,
) -> NDArray[np.float64]:
    """``[N, 3]`` the L1 baseline offer as L3 sees it: q / n_lines, offset / HORIZON, price / tp."""
    return np.stack(
        [
            _safe_div(quantity, n_lines),
            (np.asarray(delivery_day, np.float64) - np.asarray(day, np.float64)) / HORIZON,
            _safe_div(unit_price, trading_price),
        ],
        axis=-1,
    )


def micro_context(
    *, day: ArrayLike, n_steps: ArrayLike, round: ArrayLike, is_seller: ArrayLike
) -> NDArray[np.float64]:
    """``[N, 3]`` L3's context: relative time (day / n_steps), relative round (round / MAX_ROUNDS),
    1 if the agent sells in the negotiation."""
    return np.stack(
        np.broadcast_arrays(
            _safe_div(day, n_steps),
            np.asarray(round, np.float64) / MAX_ROUNDS,
            np.asarray(is_seller, np.float64),
        ),
        axis=-1,
    )
