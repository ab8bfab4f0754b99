"""L1: the safety floor under every action (caps, price bounds, cash budget, clipping).

A day's :class:`SafetyState` (plain numbers, read off the AWI with :func:`state_from_awi`) gives
:class:`Limits` (Rust): buy/sell caps per delivery day, safe price intervals and free cash. Offers
are ``(quantity, day, unit_price)`` with a side code (:data:`BUY` = 0, :data:`SELL` = 1).

- :func:`derive_limits` -> :class:`Limits` with ``clip``, ``is_safe_to_accept``, ``reserve`` (one
  offer each) and ``clip_many``/``accept_many`` (int64 ``[m, 4]`` rows ``(q, t, p, side)``).
- :func:`round_step`: the whole per-round step in one call (derive, reserve open offers,
  keep/clip/drop every decision of the round in order, reserving what is kept).
- :func:`audit_offers`: count the rules a batch of offers breaks (over-buy, over-sell,
  over-spend, price/quantity out of range, day out of window).

The rules and their sources are documented in ``rust/safety.rs`` and ``docs/l1.md``. They run
in Rust (``hrl._core``) or, when the extension cannot be imported (or ``HRL_FORCE_PURE_L1=1``), in
pure Python (:mod:`hrl.safety.fallback`, the same rules, kept equal by the tests); see
:mod:`hrl.safety.backend`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from hrl.safety import backend
from hrl.safety.fallback import VIOLATION_KINDS
from hrl.safety.state import BUY, CONSUMED, EMPTY_RANGE, PERSISTENT, SELL, SafetyState, state_from_awi

__all__ = [
    "ACCEPT",
    "BUY",
    "CLIPPED",
    "CONSUMED",
    "DROPPED",
    "EMPTY_RANGE",
    "KEPT",
    "PERSISTENT",
    "PROPOSE",
    "SELL",
    "VIOLATION_KINDS",
    "Limits",
    "SafetyState",
    "audit_offers",
    "derive_limits",
    "round_step",
    "state_from_awi",
]

PROPOSE = 0
"""Round item kind: the agent proposes this offer (it is clipped)."""
ACCEPT = 1
"""Round item kind: the agent wants to accept this partner offer (it is checked)."""
KEPT, CLIPPED, DROPPED = 0, 1, 2
"""Round verdicts: kept as given, replaced by its clipped version, no safe version."""

I64 = NDArray[np.int64]
Limits = backend.kernels.Limits
"""The day's caps, bounds and budget (``hrl._core.Limits`` or :class:`hrl.safety.fallback.Limits`)."""


def _rows(rows: I64 | Sequence[Sequence[int]], width: int) -> I64:
    array = np.asarray(rows, dtype=np.int64)
    if array.size == 0:
        return np.zeros((0, width), dtype=np.int64)
    return np.ascontiguousarray(array)


def derive_limits(state: SafetyState) -> Limits:
    """The day's caps, bounds and budget. Raises ``hrl.errors`` on invalid states."""
    return backend.kernels.derive_limits(state)


def round_step(
    state: SafetyState,
    open_offers: I64 | Sequence[Sequence[int]],
    items: I64 | Sequence[Sequence[int]],
) -> I64:
    """The per-round L1 step in one call (one Rust call on the Rust path).

    Args:
        state: today's state.
        open_offers: ``[k, 4]`` rows ``(q, t, p, side)``: the agent's offers still standing in
            other negotiations; reserved first.
        items: ``[m, 5]`` rows ``(q, t, p, side, kind)`` with kind :data:`PROPOSE` or
            :data:`ACCEPT`, processed in order.

    Returns:
        int64 ``[m, 4]`` rows ``(q, t, p, verdict)``: verdict :data:`KEPT` (a safe acceptance or an
        unchanged proposal), :data:`CLIPPED` (the row is the clipped offer; for an acceptance, the
        counter-offer to send instead) or :data:`DROPPED` (zeros: no safe offer; end or reject).
    """
    return backend.kernels.round_step(state, _rows(open_offers, 4), _rows(items, 5))


def audit_offers(
    state: SafetyState, offers: I64 | Iterable[Sequence[int]], *, sequential: bool = False
) -> dict[str, int]:
    """Counts the rules broken by ``offers`` (``[m, 4]`` rows ``(q, t, p, side)``) on ``state``.

    With ``sequential=True`` each offer is reserved (as it was) after it is checked, so the day's
    offers are judged together; otherwise each alone. Returns ``n_offers``, ``n_unsafe`` and one
    count per kind in :data:`VIOLATION_KINDS` (an offer may break several rules).
    """
    return backend.kernels.audit_offers(
        state, _rows(list(offers) if not isinstance(offers, np.ndarray) else offers, 4), sequential=sequential
    )
