"""L1 v2 in pure Python: the runtime fallback when the Rust extension ``hrl._core`` is missing.

The same functions and :class:`Limits` API as the extension's L1 part (``rust/safety.rs``,
``rust/stock.rs``, bindings ``rust/py/safety.rs``): :func:`derive_limits`, :func:`round_step`,
:func:`audit_offers`, :func:`simulate_stock`, with the same typed errors (:mod:`hrl.errors`) on
invalid input. :mod:`hrl.safety.backend` picks it when the extension cannot be imported (a
submission ships no compiled code) or when ``HRL_FORCE_PURE_L1=1``.

It is also the L1 test oracle: ``tests/test_safety.py`` checks it against the Rust path on
hypothesis-generated states (caps, bounds, budget, clipping, the round step, the audit, the stock
model), and its persistent-stock closed forms against the by-definition searches of
:mod:`hrl._reference`. Both stock models are here: :data:`~hrl.safety.state.PERSISTENT` (scml
0.8.4) and the consumed-stock fallback model :data:`~hrl.safety.state.CONSUMED`.

Floats: the budget is computed with the same float64 operations in the same order as Rust, so the
results are equal, not merely close. The one documented difference: Rust saturates sums of
quantities at ``2^40 * 64`` units on reservations; Python integers do not overflow, so the two
could differ only past ``MAX_VALUE``-sized quantities, which validation refuses on the state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hrl.errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError

__all__ = [
    "MAX_VALUE",
    "Limits",
    "audit_offers",
    "derive_limits",
    "persistent_buy_caps",
    "persistent_sell_caps",
    "round_step",
    "simulate_stock",
    "stock_days",
]

MAX_VALUE = 1 << 40
"""The largest quantity, price or day a state may hold (as ``rust/safety.rs``)."""

I64 = NDArray[np.int64]
VIOLATION_KINDS = (
    "over_buy",
    "over_sell",
    "over_spend",
    "price_out_of_range",
    "quantity_out_of_range",
    "day_out_of_window",
)
"""The kinds of rule breaks ``audit_offers`` counts (besides ``n_offers`` and ``n_unsafe``)."""
_COUNT_KINDS = ("n_offers", "n_unsafe", *VIOLATION_KINDS, "exposure")


def _floor_int(x: float) -> int:
    if math.isinf(x):
        return MAX_VALUE if x > 0 else -MAX_VALUE
    return int(max(-MAX_VALUE, min(MAX_VALUE, math.floor(x))))


def _ceil_int(x: float) -> int:
    if math.isinf(x):
        return MAX_VALUE if x > 0 else -MAX_VALUE
    return int(max(-MAX_VALUE, min(MAX_VALUE, math.ceil(x))))


# --- the stock model (rust/stock.rs) ------------------------------------------------------------


def stock_days(
    model: int, stock: int, arrivals: Sequence[int], due: Sequence[int], n_lines: int
) -> list[tuple[int, int, int]]:
    """The day-by-day stock model on checked inputs: ``(production, shortfall, stock at the end)``
    per day; model 0 keeps stock forever (scml 0.8.4), 1 uses it up. :func:`simulate_stock` is
    the checked NumPy face."""
    out = []
    for a, d in zip(arrivals, due, strict=True):
        p = min(stock + a, n_lines, d)
        stock = stock + max(0, a - p) if model == 0 else stock + a - p
        out.append((p, d - p, stock))
    return out


def _check_model(model: int, arg: str) -> int:
    if model not in (0, 1):
        raise InvalidArgumentError(f"{arg}: stock model must be 0 (persistent) or 1 (consumed), got {model}")
    return model


def simulate_stock(model: int, stock: int, arrivals: Sequence[int], due: Sequence[int], n_lines: int) -> I64:
    """``hrl._core.simulate_stock``: int64 ``[W, 3]`` rows ``(production, shortfall, stock at the
    end)``. Raises :class:`~hrl.errors.ShapeError` / :class:`~hrl.errors.InvalidArgumentError`."""
    model = _check_model(int(model), "model")
    arrivals, due = [int(x) for x in arrivals], [int(x) for x in due]
    if len(due) != len(arrivals):
        raise ShapeError(f"due: expected {len(arrivals)} days (as arrivals), got {len(due)} days")
    if stock < 0:
        raise InvalidArgumentError(f"stock: must be >= 0, got {stock}")
    if n_lines < 1:
        raise InvalidArgumentError(f"n_lines: must be >= 1, got {n_lines}")
    for name, values in (("arrivals", arrivals), ("due", due)):
        for i, x in enumerate(values):
            if x < 0:
                raise InvalidArgumentError(f"{name}[{i}]: must be >= 0, got {x}")
    days = stock_days(model, int(stock), arrivals, due, int(n_lines))
    return np.array(days, dtype=np.int64).reshape(len(days), 3)


def persistent_sell_caps(stock: int, arrivals: Sequence[int], due: Sequence[int], lines: int) -> list[int]:
    """``rust/stock.rs::persistent_sell_caps``: per window day, the largest extra sale that adds
    no modelled shortfall on any day (the closed form documented there)."""
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


def persistent_buy_caps(
    stock: int, arrivals: Sequence[int], lines: int, last_day_index: int | None
) -> list[int]:
    """``rust/stock.rs::persistent_buy_caps``: per window day, the largest extra purchase whose
    last unit is not certainly useless; ``last_day_index`` is the world's last day in the window."""
    lowest, s = [], stock
    for a in arrivals:
        lowest.append(s)
        s += max(0, a - lines)
    room = max(0, lines - s)
    return [
        max(0, lines - a) + room if room > 0 and i != last_day_index else max(0, lines - low - a)
        for i, (a, low) in enumerate(zip(arrivals, lowest, strict=True))
    ]


# --- the day's limits (rust/safety.rs) ----------------------------------------------------------


def _int(state: Any, name: str, lo: int) -> int:
    try:
        x = int(getattr(state, name))
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name}: expected an int attribute: {exc}") from exc
    if not lo <= x <= MAX_VALUE:
        raise InvalidArgumentError(f"{name}: must be in [{lo}, 2^40], got {x}")
    return x


def _float(state: Any, name: str) -> float:
    try:
        x = float(getattr(state, name))
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name}: expected a float attribute: {exc}") from exc
    if not math.isfinite(x):
        raise NonFiniteError(f"{name}: non-finite value {x}")
    return x


def _ints(state: Any, name: str, default: Sequence[int] | None = None) -> list[int]:
    if default is not None and not hasattr(state, name):
        return list(default)
    try:
        values = [int(x) for x in getattr(state, name)]
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name}: expected a sequence of ints: {exc}") from exc
    for i, x in enumerate(values):
        if not 0 <= x <= MAX_VALUE:
            raise InvalidArgumentError(f"{name}[{i}]: must be in [0, 2^40], got {x}")
    return values


def _range(state: Any, name: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in getattr(state, name))
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name}: expected an (int, int) pair: {exc}") from exc
    if abs(lo) > MAX_VALUE or abs(hi) > MAX_VALUE:
        raise InvalidArgumentError(f"{name}: bounds must be within +-2^40, got ({lo}, {hi})")
    return lo, hi


class Limits:
    """The day's caps, price bounds and cash budget (``hrl._core.Limits``): made by
    :func:`derive_limits`; :meth:`reserve` charges an outstanding offer against them. Caps are
    per day of the delivery window (index 0 = :attr:`first_day`)."""

    __slots__ = (
        "_due",
        "_expected_inputs",
        "_money_left",
        "_signed_inputs",
        "arrivals",
        "buy_caps",
        "buy_price",
        "buy_quantity",
        "first_day",
        "free_cash",
        "hard_sell_caps",
        "inventory_input",
        "n_lines",
        "n_steps",
        "production_cost",
        "sell_caps",
        "sell_price",
        "sell_quantity",
        "stock_model",
    )

    def __init__(self, state: Any) -> None:
        n_steps = _int(state, "n_steps", 1)
        n_lines = _int(state, "n_lines", 1)
        s = _int(state, "current_step", 0)
        if s >= n_steps:
            raise InvalidArgumentError(f"current_step: must be < n_steps = {n_steps}, got {s}")
        stock = _int(state, "inventory_input", 0)
        supplies, sales = _ints(state, "supplies"), _ints(state, "sales")
        w = len(supplies)
        if w == 0 or w > n_steps - s:
            raise ShapeError(
                f"supplies: expected 1 ..= n_steps - current_step = {n_steps - s} days, got {w} days"
            )
        if len(sales) != w:
            raise ShapeError(f"sales: expected {w} days (as supplies), got {len(sales)} days")
        expected = _ints(state, "expected_supplies", default=())
        if expected and len(expected) != w:
            raise ShapeError(
                f"expected_supplies: expected 0 or {w} days (as supplies), got {len(expected)} days"
            )
        balance, payables = _float(state, "balance"), _float(state, "committed_payables")
        cost = _float(state, "production_cost")
        tp_in, tp_out = _float(state, "trading_price_in"), _float(state, "trading_price_out")
        if cost < 0:
            raise InvalidArgumentError(f"production_cost: must be >= 0, got {cost}")
        buy_q, buy_p = _range(state, "buy_quantity"), _range(state, "buy_price")
        sell_q, sell_p = _range(state, "sell_quantity"), _range(state, "sell_price")
        model = _check_model(int(getattr(state, "stock_model", 0)), "stock_model")
        # Rule 3: price bounds inside the issue ranges.
        sell_ref = max(float(sell_p[1]), tp_out)
        buy_ref = min(float(buy_p[0]), tp_in) if buy_p[0] >= 1 else tp_in
        self.first_day, self.n_steps, self.n_lines = s, n_steps, n_lines
        self.inventory_input, self.stock_model = stock, model
        self._signed_inputs = supplies
        self._expected_inputs = (
            [a + e for a, e in zip(supplies, expected, strict=True)] if expected else supplies
        )
        self.arrivals, self._due = list(supplies), sales
        self.buy_quantity = (max(buy_q[0], 1), buy_q[1])
        self.sell_quantity = (max(sell_q[0], 1), sell_q[1])
        self.buy_price = (max(buy_p[0], 1), min(buy_p[1], _floor_int(sell_ref - cost)))
        self.sell_price = (max(sell_p[0], 1, _ceil_int(buy_ref + cost)), sell_p[1])
        self.production_cost = cost
        self._money_left = balance - payables
        self._refresh()

    def __repr__(self) -> str:
        return (
            f"Limits(first_day={self.first_day}, buy_caps={self.buy_caps}, sell_caps={self.sell_caps}, "
            f"buy_price={self.buy_price}, sell_price={self.sell_price}, free_cash={self.free_cash})"
        )

    def _sell_caps(self, inputs: list[int]) -> list[int]:
        lines, due = self.n_lines, self._due
        if self.stock_model == 0:
            return persistent_sell_caps(self.inventory_input, inputs, due, lines)
        on_hand, a, b = [], self.inventory_input, 0
        for x, d in zip(inputs, due, strict=True):
            a += x
            b += d
            on_hand.append(a - b)
        caps = [0] * len(inputs)
        running = on_hand[-1]
        for i in range(len(inputs) - 1, -1, -1):
            running = min(running, on_hand[i])
            caps[i] = max(0, min(running, lines - due[i]))
        return caps

    def _buy_caps(self) -> list[int]:
        lines, arrivals = self.n_lines, self.arrivals
        if self.stock_model == 0:
            last = self.n_steps - 1 - self.first_day
            return persistent_buy_caps(self.inventory_input, arrivals, lines, last)
        w = len(arrivals)
        slack, suffix = [0] * w, 0
        for i in range(w - 1, -1, -1):
            suffix += arrivals[i]
            stock = self.inventory_input if i == 0 else 0
            slack[i] = lines * (self.n_steps - self.first_day - i) - stock - suffix
        caps, running = [], slack[0]
        for x in slack:
            running = min(running, x)
            caps.append(max(0, running))
        return caps

    def _refresh(self) -> None:
        """Rules 1, 2 and 4 from the signed, expected and reserved quantities."""
        self.buy_caps = self._buy_caps()
        bought, sold = sum(self.arrivals), sum(self._due)
        self.free_cash = self._money_left - self.production_cost * max(bought, sold)
        self.sell_caps = self._sell_caps(self._expected_inputs)
        self.hard_sell_caps = (
            list(self.sell_caps)
            if self._expected_inputs is self._signed_inputs
            else self._sell_caps(self._signed_inputs)
        )
        if self.production_cost > 0:
            budget = max(0, bought - sold) + _floor_int(max(0.0, self.free_cash) / self.production_cost)
            self.sell_caps = [min(c, budget) for c in self.sell_caps]
            self.hard_sell_caps = [min(c, budget) for c in self.hard_sell_caps]

    def _cash_quantity(self, price: int, wanted: int) -> int:
        unit = price + self.production_cost
        if wanted * unit <= self.free_cash:
            return wanted
        if self.free_cash < 0:
            return 0
        q = min(_floor_int(self.free_cash / unit), wanted)
        while q > 0 and q * unit > self.free_cash:
            q -= 1
        return q

    def _clip(self, q: int, t: int, p: int, side: int) -> tuple[int, int, int] | None:
        i = t - self.first_day
        if not 0 <= i < len(self.buy_caps):
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
            quantity = self._cash_quantity(price, quantity)
        if quantity < qlo:
            return None
        return (quantity, t, price)

    def clip(self, quantity: int, day: int, price: int, side: int) -> tuple[int, int, int] | None:
        """The safe version of offer ``(quantity, day, price)`` on ``side`` (0 buy, 1 sell), or None."""
        return self._clip(quantity, day, price, _side(side, "side"))

    def clip_nearest_day(self, q: int, t: int, p: int, side: int) -> tuple[int, int, int] | None:
        """:meth:`clip`, else the same offer on the nearest window day with room (later first)."""
        clipped = self._clip(q, t, p, side)
        i = t - self.first_day
        w = len(self.buy_caps)
        if clipped is not None or not 0 <= i < w:
            return clipped
        for k in range(1, w):
            for j in (i + k, i - k):
                if 0 <= j < w and (moved := self._clip(q, self.first_day + j, p, side)) is not None:
                    return moved
        return None

    def violations(self, q: int, t: int, p: int, side: int) -> dict[str, bool]:
        """Rule 8: which rules an offer breaks (``exposure`` is counted, not a violation)."""
        (plo, phi), (qlo, qhi) = (
            (self.buy_price, self.buy_quantity) if side == 0 else (self.sell_price, self.sell_quantity)
        )
        i = t - self.first_day
        inside = 0 <= i < len(self.buy_caps)
        over_sell = inside and side == 1 and q > self.sell_caps[i]
        return {
            "over_buy": inside and side == 0 and q > self.buy_caps[i],
            "over_sell": over_sell,
            "over_spend": inside and side == 0 and q * (p + self.production_cost) > self.free_cash,
            "price_out_of_range": not plo <= p <= phi,
            "quantity_out_of_range": not qlo <= q <= qhi,
            "day_out_of_window": not inside,
            "exposure": inside and side == 1 and not over_sell and q > self.hard_sell_caps[i],
        }

    def _safe(self, q: int, t: int, p: int, side: int) -> bool:
        broken = self.violations(q, t, p, side)
        return not any(hit for kind, hit in broken.items() if kind != "exposure")

    def is_safe_to_accept(self, quantity: int, day: int, price: int, side: int) -> bool:
        """True iff accepting ``(quantity, day, price)`` on ``side`` breaks no rule."""
        return self._safe(quantity, day, price, _side(side, "side"))

    def reserve(self, quantity: int, day: int, price: int, side: int) -> None:
        """Charges ``(quantity, day, price)`` on ``side`` as if signed (caps and budget shrink)."""
        side = _side(side, "side")
        i = day - self.first_day
        q = min(max(quantity, 0), MAX_VALUE)
        if not 0 <= i < len(self.buy_caps) or q == 0:
            return
        if side == 0:
            self.arrivals[i] += q
            self._money_left -= q * float(min(max(price, -MAX_VALUE), MAX_VALUE))
        else:
            self._due[i] += q
        self._refresh()

    def clip_many(self, offers: I64) -> tuple[I64, NDArray[np.bool_]]:
        """Clips int64 ``[m, 4]`` rows ``(quantity, day, price, side)`` independently: ``(int64
        [m, 3] clipped rows, zeros where dropped; bool [m] kept)``."""
        rows = _offer_rows(offers, "offers", 4)
        out = np.zeros((len(rows), 3), dtype=np.int64)
        ok = np.zeros(len(rows), dtype=np.bool_)
        for k, (q, t, p, side) in enumerate(rows):
            clipped = self._clip(q, t, p, _side(side, f"offers[{k}, 3]"))
            if clipped is not None:
                out[k], ok[k] = clipped, True
        return out, ok

    def accept_many(self, offers: I64) -> NDArray[np.bool_]:
        """:meth:`is_safe_to_accept` over int64 ``[m, 4]`` rows ``(quantity, day, price, side)``."""
        rows = _offer_rows(offers, "offers", 4)
        return np.array(
            [self._safe(q, t, p, _side(side, f"offers[{k}, 3]")) for k, (q, t, p, side) in enumerate(rows)],
            dtype=np.bool_,
        )


def _side(code: int, arg: str) -> int:
    if code not in (0, 1):
        raise InvalidArgumentError(f"{arg}: side must be 0 (buy) or 1 (sell), got {code}")
    return int(code)


def _offer_rows(array: Any, arg: str, width: int) -> list[list[int]]:
    """Rows of an int64 ``[m, width]`` array as plain ints (the binding's checks, same errors)."""
    if not isinstance(array, np.ndarray) or array.dtype != np.int64:
        got = getattr(array, "dtype", type(array).__name__)
        raise DTypeError(f"{arg}: expected an int64 array, got {got}")
    if array.ndim != 2 or array.shape[1] != width:
        raise ShapeError(f"{arg}: expected [m, {width}], got {list(array.shape)}")
    rows: list[list[int]] = array.tolist()
    return rows


def derive_limits(state: Any) -> Limits:
    """The day's :class:`Limits` from a state object (attributes as :class:`hrl.safety.SafetyState`)."""
    return Limits(state)


def round_step(state: Any, open_offers: I64, items: I64) -> I64:
    """``hrl._core.round_step``: derive, reserve ``open_offers`` (int64 ``[k, 4]``), then keep (0)
    / clip (1) / drop (2) each row of ``items`` (int64 ``[m, 5]``, kind 0 propose / 1 accept) in
    order, reserving what is kept. Returns int64 ``[m, 4]`` ``(q, t, p, verdict)``."""
    limits = Limits(state)
    opened = _offer_rows(open_offers, "open_offers", 4)
    for k, row in enumerate(opened):
        _side(row[3], f"open_offers[{k}, 3]")
    round_items = _offer_rows(items, "items", 5)
    for k, row in enumerate(round_items):
        _side(row[3], f"items[{k}, 3]")
        if row[4] not in (0, 1):
            raise InvalidArgumentError(f"items[{k}, 4]: kind must be 0 (propose) or 1 (accept), got {row[4]}")
    for q, t, p, side in opened:
        limits.reserve(q, t, p, side)
    out = np.zeros((len(round_items), 4), dtype=np.int64)
    for k, (q, t, p, side, _kind) in enumerate(round_items):
        clipped = limits.clip_nearest_day(q, t, p, side)
        if clipped is None:
            out[k, 3] = 2
            continue
        out[k] = (*clipped, 0 if clipped == (q, t, p) else 1)
        limits.reserve(*clipped, side)
    return out


def audit_offers(state: Any, offers: I64, *, sequential: bool = False) -> dict[str, int]:
    """``hrl._core.audit_offers``: counts of the rules broken by int64 ``[m, 4]`` rows ``(q, t, p,
    side)``; with ``sequential`` each offer is reserved (as it was) after it is checked."""
    limits = Limits(state)
    rows = _offer_rows(offers, "offers", 4)
    for k, row in enumerate(rows):
        _side(row[3], f"offers[{k}, 3]")
    counts = dict.fromkeys(_COUNT_KINDS, 0)
    for q, t, p, side in rows:
        broken = limits.violations(q, t, p, side)
        counts["n_offers"] += 1
        counts["n_unsafe"] += any(hit for kind, hit in broken.items() if kind != "exposure")
        for kind, hit in broken.items():
            counts[kind] += hit
        if sequential:
            limits.reserve(q, t, p, side)
    return counts
