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
    return int(max(-_MAX_VALUE, min(_MAX_VALUE, math.floor(x))))


def _ceil_int(x: float) -> int:
    return int(max(-_MAX_VALUE, min(_MAX_VALUE, math.ceil(x))))


@dataclass
class SafetyLimitsReference:
    """The same caps, bounds and budget as ``hrl.safety.Limits``, as plain Python values."""

    first_day: int
    n_steps: int
    n_lines: int
    inventory_input: int
    signed_inputs: list[int]
    arrivals: list[int]
    due: list[int]
    buy_caps: list[int]
    sell_caps: list[int]
    buy_quantity: tuple[int, int]
    sell_quantity: tuple[int, int]
    buy_price: tuple[int, int]
    sell_price: tuple[int, int]
    production_cost: float
    free_cash: float

    def refresh(self) -> None:
        """Rules 1 and 2: caps from the signed and reserved quantities."""
        w, lines = len(self.arrivals), self.n_lines
        slack = [0] * w
        suffix = 0
        for i in range(w - 1, -1, -1):
            suffix += self.arrivals[i]
            inventory = self.inventory_input if i == 0 else 0
            slack[i] = lines * (self.n_steps - self.first_day - i) - inventory - suffix
        running = slack[0]
        for i in range(w):
            if slack[i] < running:
                running = slack[i]
            self.buy_caps[i] = running if running > 0 else 0
        stock = [0] * w
        a, b = self.inventory_input, 0
        for i in range(w):
            a += self.signed_inputs[i]
            b += self.due[i]
            stock[i] = a - b
        running = stock[w - 1]
        for i in range(w - 1, -1, -1):
            if stock[i] < running:
                running = stock[i]
            cap = lines - self.due[i]
            if running < cap:
                cap = running
            self.sell_caps[i] = cap if cap > 0 else 0

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
        price = plo if p < plo else phi if p > phi else p
        quantity = q
        if qhi < quantity:
            quantity = qhi
        if cap < quantity:
            quantity = cap
        if side == 0 and quantity >= qlo:
            unit = price + self.production_cost
            if quantity * unit > self.free_cash:
                if self.free_cash < 0:
                    quantity = 0
                else:
                    quantity = min(_floor_int(self.free_cash / unit), quantity)
                    while quantity > 0 and quantity * unit > self.free_cash:
                        quantity -= 1
        if quantity < qlo:
            return None
        return (quantity, t, price)

    def violations(self, q: int, t: int, p: int, side: int) -> dict[str, bool]:
        """Rule 8: which rules an offer breaks."""
        (plo, phi), (qlo, qhi) = (
            (self.buy_price, self.buy_quantity) if side == 0 else (self.sell_price, self.sell_quantity)
        )
        i = t - self.first_day
        in_window = 0 <= i < len(self.buy_caps)
        return {
            "over_buy": in_window and side == 0 and q > self.buy_caps[i],
            "over_sell": in_window and side == 1 and q > self.sell_caps[i],
            "over_spend": in_window and side == 0 and q * (p + self.production_cost) > self.free_cash,
            "price_out_of_range": not plo <= p <= phi,
            "quantity_out_of_range": not qlo <= q <= qhi,
            "day_out_of_window": not in_window,
        }

    def is_safe_to_accept(self, q: int, t: int, p: int, side: int) -> bool:
        return not any(self.violations(q, t, p, side).values())

    def reserve(self, q: int, t: int, p: int, side: int) -> None:
        """Rule 5: charge an offer as if signed."""
        i = t - self.first_day
        if i < 0 or i >= len(self.buy_caps) or q <= 0:
            return
        if side == 0:
            self.arrivals[i] += q
            self.free_cash -= q * (p + self.production_cost)
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
    w = len(supplies)
    limits = SafetyLimitsReference(
        first_day=state.current_step,
        n_steps=state.n_steps,
        n_lines=state.n_lines,
        inventory_input=state.inventory_input,
        signed_inputs=supplies,
        arrivals=list(supplies),
        due=list(state.sales),
        buy_caps=[0] * w,
        sell_caps=[0] * w,
        buy_quantity=(max(state.buy_quantity[0], 1), state.buy_quantity[1]),
        sell_quantity=(max(state.sell_quantity[0], 1), state.sell_quantity[1]),
        buy_price=(max(buy_lo, 1), min(state.buy_price[1], _floor_int(sell_ref - cost))),
        sell_price=(max(state.sell_price[0], 1, _ceil_int(buy_ref + cost)), state.sell_price[1]),
        production_cost=cost,
        free_cash=float(state.balance) - float(state.committed_payables) - cost * float(sum(supplies)),
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
        clipped = limits.clip(q, t, p, side)
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
        ),
        0,
    )
    for q, t, p, side in offers:
        broken = limits.violations(q, t, p, side)
        counts["n_offers"] += 1
        counts["n_unsafe"] += any(broken.values())
        for kind, hit in broken.items():
            counts[kind] += hit
        if sequential:
            limits.reserve(q, t, p, side)
    return counts
