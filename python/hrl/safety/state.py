"""The plain-number safety state of one agent-day, and how to read it off a live SCML agent.

The rules that turn this state into caps and bounds are documented in ``rust/safety.rs`` and
``docs/l1.md``; :func:`hrl._reference.safety_limits_reference` is the same rules in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BUY", "CONSUMED", "EMPTY_RANGE", "PERSISTENT", "SELL", "SafetyState", "state_from_awi"]

BUY = 0
"""Side code of an offer to buy inputs (from a supplier)."""
SELL = 1
"""Side code of an offer to sell outputs (to a consumer)."""
EMPTY_RANGE = (1, 0)
"""An empty ``(lo, hi)`` issue range: the agent does not negotiate on that side."""
PERSISTENT = 0
"""Stock model code: input stock is never used up (scml 0.8.4; see ``rust/stock.rs``)."""
CONSUMED = 1
"""Stock model code: production uses input stock up (the guard's fallback)."""


@dataclass(frozen=True, slots=True)
class SafetyState:
    """One agent-day of plain numbers; day ``current_step + i`` is index ``i`` of the window.

    Attributes:
        current_step: today (``s``), ``0 <= s < n_steps``.
        n_steps: days in the world (``N``).
        n_lines: production lines (``L``): at most ``L`` units are produced a day.
        inventory_input: input units in stock now.
        supplies: input units signed to arrive on each day of the delivery window (negotiated and
            exogenous); its length ``W`` is the window ``s .. min(s + horizon, N - 1)``.
        sales: output units signed to be delivered on each day of the window (same length).
        balance: current money balance.
        committed_payables: money owed for signed supplies not yet delivered (total prices,
            today's exogenous input included).
        production_cost: cost of producing one unit.
        trading_price_in: trading price of the input product.
        trading_price_out: trading price of the output product.
        buy_quantity, buy_price: ``(lo, hi)`` quantity and unit-price issue ranges of the buy
            negotiations; :data:`EMPTY_RANGE` when the agent does not buy through negotiations.
        sell_quantity, sell_price: the same for the sell negotiations.
        expected_supplies: input units expected but not signed per window day (empty: none);
            sales they back are exposure, never counted as certain (see
            :func:`hrl.safety.world_model.expected_exogenous_supplies`).
        stock_model: :data:`PERSISTENT` (scml 0.8.4) or :data:`CONSUMED`.
    """

    current_step: int
    n_steps: int
    n_lines: int
    inventory_input: int
    supplies: tuple[int, ...]
    sales: tuple[int, ...]
    balance: float
    committed_payables: float
    production_cost: float
    trading_price_in: float
    trading_price_out: float
    buy_quantity: tuple[int, int]
    buy_price: tuple[int, int]
    sell_quantity: tuple[int, int]
    sell_price: tuple[int, int]
    expected_supplies: tuple[int, ...] = ()
    stock_model: int = PERSISTENT

    @property
    def window(self) -> range:
        """The delivery days covered by ``supplies`` and ``sales``."""
        return range(self.current_step, self.current_step + len(self.supplies))


def _issue_ranges(issues: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(quantity, unit price)`` ranges of SCML issues ``(quantity, time, unit_price)``."""
    if not issues:
        return EMPTY_RANGE, EMPTY_RANGE
    quantity, price = issues[0], issues[2]
    return (int(quantity.min_value), int(quantity.max_value)), (int(price.min_value), int(price.max_value))


def state_from_awi(
    awi: Any, *, expected_supplies: tuple[int, ...] = (), stock_model: int = PERSISTENT
) -> SafetyState:
    """Reads today's :class:`SafetyState` off an ``scml.std`` agent-world interface.

    Signed quantities come from ``awi.total_supplies_at``/``total_sales_at`` (negotiated contracts)
    plus today's exogenous contract; money owed from ``awi.supplies_cost``/``future_supplies_cost``
    plus today's exogenous input price (a total, not a unit price). ``expected_supplies`` and
    ``stock_model`` are passed through (the agent's estimate and guard). Issue ranges are today's
    input/output issues; a first-level agent gets an empty buy range, a last-level agent an empty
    sell range. Reading it costs a few dozen attribute look-ups: do it once per round.
    """
    s = int(awi.current_step)
    n = int(awi.n_steps)
    last = min(s + int(awi.horizon), n - 1)
    days = range(s, last + 1)
    supplies = [int(awi.total_supplies_at(d)) for d in days]
    sales = [int(awi.total_sales_at(d)) for d in days]
    supplies[0] += int(awi.current_exogenous_input_quantity)
    sales[0] += int(awi.current_exogenous_output_quantity)
    payables = float(sum(awi.supplies_cost.values()))
    payables += float(sum(sum(v.values()) for d, v in awi.future_supplies_cost.items() if d <= last))
    payables += float(awi.current_exogenous_input_price)
    buy_q, buy_p = (
        (EMPTY_RANGE, EMPTY_RANGE) if awi.is_first_level else _issue_ranges(awi.current_input_issues)
    )
    sell_q, sell_p = (
        (EMPTY_RANGE, EMPTY_RANGE) if awi.is_last_level else _issue_ranges(awi.current_output_issues)
    )
    prices = awi.trading_prices
    return SafetyState(
        current_step=s,
        n_steps=n,
        n_lines=int(awi.n_lines),
        inventory_input=int(awi.current_inventory_input),
        supplies=tuple(supplies),
        sales=tuple(sales),
        balance=float(awi.current_balance),
        committed_payables=payables,
        production_cost=float(awi.profile.cost),
        trading_price_in=float(prices[awi.my_input_product]),
        trading_price_out=float(prices[awi.my_output_product]),
        buy_quantity=buy_q,
        buy_price=buy_p,
        sell_quantity=sell_q,
        sell_price=sell_p,
        expected_supplies=expected_supplies,
        stock_model=stock_model,
    )
