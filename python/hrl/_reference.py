"""Plain NumPy/Python versions of the Rust kernels: the test oracle.

They favour obviousness over speed (a Python loop over time, vectorised over environments) and
compute in float64. The semantics are those documented in :mod:`hrl.returns` and, for the L1
safety rules (``safety_*`` below), in ``rust/safety.rs``. The safety reference is also the
"pure Python, same logic" side of the L1 benchmark, so it is written plainly but not wastefully.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SafetyLimitsReference",
    "compute_gae_reference",
    "discounted_returns_reference",
    "safety_audit_reference",
    "safety_limits_reference",
    "safety_round_step_reference",
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


# --- L1 safety rules (rust/safety.rs) ---------------------------------------------------------

_MAX_VALUE = 1 << 40


def _floor_int(x: float) -> int:
    if math.isinf(x):
        return _MAX_VALUE if x > 0 else -_MAX_VALUE
    return int(max(-_MAX_VALUE, min(_MAX_VALUE, math.floor(x))))


def _ceil_int(x: float) -> int:
    return int(max(-_MAX_VALUE, min(_MAX_VALUE, math.ceil(x))))


def simulate_stock_reference(
    model: int, stock: int, arrivals: Sequence[int], due: Sequence[int], n_lines: int
) -> list[tuple[int, int, int]]:
    """``rust/stock.rs::simulate``: ``(production, shortfall, stock at the end)`` per day; model
    0 keeps stock forever (scml 0.8.4), 1 uses it up."""
    out = []
    for a, d in zip(arrivals, due, strict=True):
        p = min(stock + a, n_lines, d)
        stock = stock + max(0, a - p) if model == 0 else stock + a - p
        out.append((p, d - p, stock))
    return out


def _total_shortfall(model: int, stock: int, arrivals: Sequence[int], due: Sequence[int], lines: int) -> int:
    return sum(day[1] for day in simulate_stock_reference(model, stock, arrivals, due, lines))


def persistent_sell_caps_reference(
    stock: int, arrivals: Sequence[int], due: Sequence[int], lines: int
) -> list[int]:
    """``rust/stock.rs::persistent_sell_caps`` in plain Python (the same closed form)."""
    starts, s = [], stock
    for a, d in zip(arrivals, due, strict=True):
        starts.append(s)
        s += max(0, a - min(s + a, lines, d))
    caps = [0] * len(starts)
    later: float = math.inf
    for i in range(len(starts) - 1, -1, -1):
        a, d = arrivals[i], due[i]
        on_hand = starts[i] + a
        carry = max(0, a - min(on_hand, lines, d))
        room = max(0, min(on_hand, lines) - d)
        caps[i] = int(min(room, later)) if carry > later else room
        later = min(later, max(0, on_hand - min(lines, d)))
    return caps


def persistent_buy_caps_reference(
    stock: int, arrivals: Sequence[int], lines: int, last_day_index: int | None
) -> list[int]:
    """``rust/stock.rs::persistent_buy_caps`` in plain Python (the same closed form)."""
    lowest, s = [], stock
    for a in arrivals:
        lowest.append(s)
        s += max(0, a - lines)
    room = max(0, lines - s)
    return [
        max(0, lines - a) + room if room > 0 and i != last_day_index else max(0, lines - low - a)
        for i, (a, low) in enumerate(zip(arrivals, lowest, strict=True))
    ]


def sell_caps_by_search(stock: int, arrivals: Sequence[int], due: Sequence[int], lines: int) -> list[int]:
    """Persistent sell caps by definition: per day, the largest extra sale after which the model's
    total shortfall is unchanged (linear search; the oracle of the closed form)."""
    base = _total_shortfall(0, stock, arrivals, due, lines)
    caps = []
    for e in range(len(arrivals)):
        q = 0
        while q <= 4 * lines:
            more = list(due)
            more[e] += q + 1
            if _total_shortfall(0, stock, arrivals, more, lines) != base:
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
            before = simulate_stock_reference(0, stock, lo, full, lines)
            after = simulate_stock_reference(0, stock, hi, full, lines)
            stocked = after[-1][2] > before[-1][2] and after[-1][2] <= lines and e != last_day_index
            if after[e][0] > before[e][0] or stocked:
                best = k
        caps.append(best)
    return caps


@dataclass
class SafetyLimitsReference:
    """The same caps, bounds and budget as ``hrl.safety.Limits``, as plain Python values (the
    persistent-stock caps by the closed forms, themselves checked against
    :func:`sell_caps_by_search` / :func:`buy_caps_by_search` in the tests)."""

    first_day: int
    n_steps: int
    n_lines: int
    inventory_input: int
    stock_model: int
    signed_inputs: list[int]
    expected_inputs: list[int]
    arrivals: list[int]
    due: list[int]
    buy_caps: list[int]
    sell_caps: list[int]
    hard_sell_caps: list[int]
    buy_quantity: tuple[int, int]
    sell_quantity: tuple[int, int]
    buy_price: tuple[int, int]
    sell_price: tuple[int, int]
    production_cost: float
    money_left: float
    free_cash: float = 0.0

    def _sell_caps(self, inputs: list[int]) -> list[int]:
        w, lines = len(inputs), self.n_lines
        if self.stock_model == 0:
            return persistent_sell_caps_reference(self.inventory_input, inputs, self.due, lines)
        stock = [0] * w
        a, b = self.inventory_input, 0
        for i in range(w):
            a += inputs[i]
            b += self.due[i]
            stock[i] = a - b
        caps = [0] * w
        running = stock[w - 1]
        for i in range(w - 1, -1, -1):
            running = min(running, stock[i])
            caps[i] = max(0, min(running, lines - self.due[i]))
        return caps

    def _buy_caps(self) -> list[int]:
        w, lines = len(self.arrivals), self.n_lines
        if self.stock_model == 0:
            last = self.n_steps - 1 - self.first_day
            return persistent_buy_caps_reference(self.inventory_input, self.arrivals, lines, last)
        slack = [0] * w
        suffix = 0
        for i in range(w - 1, -1, -1):
            suffix += self.arrivals[i]
            inventory = self.inventory_input if i == 0 else 0
            slack[i] = lines * (self.n_steps - self.first_day - i) - inventory - suffix
        caps, running = [], slack[0]
        for i in range(w):
            running = min(running, slack[i])
            caps.append(max(0, running))
        return caps

    def refresh(self) -> None:
        """Caps and free cash from the signed, expected and reserved quantities."""
        self.buy_caps = self._buy_caps()
        bought, sold = sum(self.arrivals), sum(self.due)
        self.free_cash = self.money_left - self.production_cost * max(bought, sold)
        budget = None
        if self.production_cost > 0:
            budget = max(0, bought - sold) + _floor_int(max(0.0, self.free_cash) / self.production_cost)
        self.sell_caps = self._sell_caps(self.expected_inputs)
        self.hard_sell_caps = self._sell_caps(self.signed_inputs)
        if budget is not None:
            self.sell_caps = [min(c, budget) for c in self.sell_caps]
            self.hard_sell_caps = [min(c, budget) for c in self.hard_sell_caps]

    def clip(self, q: int, t: int, p: int, side: int) -> tuple[int, int, int] | None:
        """Rule 6: the safe version of an offer, or ``None``."""
        i = t - self.first_day
        if i < 0 or i >= len(self.buy_caps):
            return None
        if side == 0:
            (plo, phi), (qlo, qhi), cap = self.buy_price, self.buy_quantity, self.buy_caps[i]
        else:
            (plo, phi), (qlo, qhi), cap = self.sell_price, self.sell_quantity, self.sell_caps[i]
        if plo > phi:
            return None
        price = min(max(p, plo), phi)
        quantity = min(q, qhi, cap)
        if side == 0 and quantity >= qlo:
            unit = price + self.production_cost
            while quantity > 0 and quantity * unit > self.free_cash:
                quantity -= 1
        if quantity < qlo:
            return None
        return (quantity, t, price)

    def clip_nearest_day(self, q: int, t: int, p: int, side: int) -> tuple[int, int, int] | None:
        """:meth:`clip`, else the same offer on the nearest window day with room (later first)."""
        clipped = self.clip(q, t, p, side)
        i = t - self.first_day
        if clipped is not None or not 0 <= i < len(self.buy_caps):
            return clipped
        w = len(self.buy_caps)
        for k in range(1, w):
            for j in (i + k, i - k):
                if 0 <= j < w and (moved := self.clip(q, self.first_day + j, p, side)) is not None:
                    return moved
        return None

    def violations(self, q: int, t: int, p: int, side: int) -> dict[str, bool]:
        """Rule 8: which rules an offer breaks (``exposure`` is counted, not a violation)."""
        (plo, phi), (qlo, qhi) = (
            (self.buy_price, self.buy_quantity) if side == 0 else (self.sell_price, self.sell_quantity)
        )
        i = t - self.first_day
        in_window = 0 <= i < len(self.buy_caps)
        over_sell = in_window and side == 1 and q > self.sell_caps[i]
        return {
            "over_buy": in_window and side == 0 and q > self.buy_caps[i],
            "over_sell": over_sell,
            "over_spend": in_window and side == 0 and q * (p + self.production_cost) > self.free_cash,
            "price_out_of_range": not plo <= p <= phi,
            "quantity_out_of_range": not qlo <= q <= qhi,
            "day_out_of_window": not in_window,
            "exposure": in_window and side == 1 and not over_sell and q > self.hard_sell_caps[i],
        }

    def is_safe_to_accept(self, q: int, t: int, p: int, side: int) -> bool:
        broken = self.violations(q, t, p, side)
        broken.pop("exposure")
        return not any(broken.values())

    def reserve(self, q: int, t: int, p: int, side: int) -> None:
        """Rule 5: charge an offer as if signed."""
        i = t - self.first_day
        if i < 0 or i >= len(self.buy_caps) or q <= 0:
            return
        if side == 0:
            self.arrivals[i] += q
            self.money_left -= q * p
        else:
            self.due[i] += q
        self.refresh()


def safety_limits_reference(state: Any) -> SafetyLimitsReference:
    """Rules 1-4 of ``rust/safety.rs`` on a state with ``hrl.safety.SafetyState``'s attributes."""
    cost = float(state.production_cost)
    sell_ref = max(float(state.sell_price[1]), float(state.trading_price_out))
    buy_lo = state.buy_price[0]
    buy_ref = (
        min(float(buy_lo), float(state.trading_price_in)) if buy_lo >= 1 else float(state.trading_price_in)
    )
    supplies = list(state.supplies)
    expected = list(state.expected_supplies) or [0] * len(supplies)
    w = len(supplies)
    limits = SafetyLimitsReference(
        first_day=state.current_step,
        n_steps=state.n_steps,
        n_lines=state.n_lines,
        inventory_input=state.inventory_input,
        stock_model=state.stock_model,
        signed_inputs=supplies,
        expected_inputs=[a + e for a, e in zip(supplies, expected, strict=True)],
        arrivals=list(supplies),
        due=list(state.sales),
        buy_caps=[0] * w,
        sell_caps=[0] * w,
        hard_sell_caps=[0] * w,
        buy_quantity=(max(state.buy_quantity[0], 1), state.buy_quantity[1]),
        sell_quantity=(max(state.sell_quantity[0], 1), state.sell_quantity[1]),
        buy_price=(max(buy_lo, 1), min(state.buy_price[1], _floor_int(sell_ref - cost))),
        sell_price=(max(state.sell_price[0], 1, _ceil_int(buy_ref + cost)), state.sell_price[1]),
        production_cost=cost,
        money_left=float(state.balance) - float(state.committed_payables),
    )
    limits.refresh()
    return limits


def safety_round_step_reference(
    state: Any, open_offers: Sequence[Sequence[int]], items: Sequence[Sequence[int]]
) -> list[tuple[int, int, int, int]]:
    """Rule 7: derive, reserve ``open_offers`` ``(q, t, p, side)``, then keep (0) / clip (1) /
    drop (2) each item ``(q, t, p, side, kind)`` in order, reserving what is kept."""
    limits = safety_limits_reference(state)
    for q, t, p, side in open_offers:
        limits.reserve(q, t, p, side)
    out: list[tuple[int, int, int, int]] = []
    for q, t, p, side, _kind in items:
        clipped = limits.clip_nearest_day(q, t, p, side)
        if clipped is None:
            out.append((0, 0, 0, 2))
            continue
        out.append((*clipped, 0 if clipped == (q, t, p) else 1))
        limits.reserve(*clipped, side)
    return out


def safety_audit_reference(
    state: Any, offers: Sequence[Sequence[int]], *, sequential: bool = False
) -> dict[str, int]:
    """Rule 8: counts of broken rules over ``offers`` ``(q, t, p, side)``."""
    limits = safety_limits_reference(state)
    counts = dict.fromkeys(
        (
            "n_offers",
            "n_unsafe",
            "over_buy",
            "over_sell",
            "over_spend",
            "price_out_of_range",
            "quantity_out_of_range",
            "day_out_of_window",
            "exposure",
        ),
        0,
    )
    for q, t, p, side in offers:
        broken = limits.violations(q, t, p, side)
        counts["n_offers"] += 1
        counts["n_unsafe"] += any(hit for kind, hit in broken.items() if kind != "exposure")
        for kind, hit in broken.items():
            counts[kind] += hit
        if sequential:
            limits.reserve(q, t, p, side)
    return counts
