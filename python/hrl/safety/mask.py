"""Pass one round of negotiation decisions through the L1 step (Rust, one call per round).

Used by :class:`hrl.agent.l1.LitaAgentL1` (to act) and :mod:`hrl.safety.shadow` (to measure).
Prices become integers the way an integer issue casts them (``int()``) for proposals; a partner's
offer is checked at the price the agent would pay or receive rounded against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hrl.safety import ACCEPT as ACCEPT_KIND
from hrl.safety import BUY, DROPPED, KEPT, PROPOSE, SELL, SafetyState, round_step, state_from_awi
from hrl.safety.baseline import ACCEPT, END, OFFER, Decision

__all__ = ["MaskedRound", "judging_key", "mask_decisions", "mask_round", "side_of"]

Row = tuple[int, int, int, int]


@dataclass(frozen=True)
class MaskedRound:
    """Everything one masked round saw and decided (enough to re-check it later).

    Attributes:
        state: the safety state at decision time.
        open_offers: ``(q, t, p, side)`` rows reserved first (offers still standing).
        partners: the partner of each item, in order.
        items: ``(q, t, p, side, kind)`` rows given to the L1 step (acceptances first, each
            kind in :func:`judging_key` order).
        results: ``(q, t, p, verdict)`` rows it returned.
        decisions: the masked decision per partner.
    """

    state: SafetyState
    open_offers: tuple[Row, ...]
    partners: tuple[str, ...]
    items: tuple[tuple[int, int, int, int, int], ...]
    results: tuple[Row, ...]
    decisions: dict[str, Decision]


def judging_key(partner: str, offer: Sequence[Any] | None) -> tuple[int, str]:
    """Where an acceptance or offer goes among its kind in a round: by delivery day, then partner.

    The buy caps are not monotone (a purchase for an earlier day can make one for a later day
    useless, never the reverse once earlier days are in place), so a round is judged from its
    earliest delivery day on; :mod:`hrl.safety.audit` judges logged rounds in the same order.
    """
    return (int(offer[1]) if offer is not None else -1, partner)


def side_of(awi: Any, partner: str) -> int:
    """:data:`BUY` for a supplier, :data:`SELL` for a consumer."""
    return BUY if partner in awi.my_suppliers else SELL


def _accept_price(price: float, side: int) -> int:
    return math.ceil(price) if side == BUY else math.floor(price)


def mask_round(
    awi: Any,
    decisions: Mapping[str, Decision],
    open_offers: Sequence[Row] = (),
    *,
    state: SafetyState | None = None,
) -> MaskedRound:
    """Keeps, clips or drops every decision: safe acceptances stay, unsafe ones become the clipped
    counter-offer (or end), offers are clipped (or end); ``END`` decisions pass through.

    ``state`` is today's state when the caller already read it this round (default: read it off
    ``awi`` now)."""
    sides = {p: side_of(awi, p) for p in decisions}
    return mask_decisions(state_from_awi(awi) if state is None else state, sides, decisions, open_offers)


def mask_decisions(
    state: SafetyState,
    sides: Mapping[str, int],
    decisions: Mapping[str, Decision],
    open_offers: Sequence[Row] = (),
) -> MaskedRound:
    """:func:`mask_round` on a given state (the live agent's or one rebuilt from logs by
    :mod:`hrl.safety.from_logs`); ``sides[p]`` is :data:`BUY` or :data:`SELL` for partner ``p``."""
    order = [p for p, d in decisions.items() if d.kind == ACCEPT] + [
        p for p, d in decisions.items() if d.kind == OFFER
    ]
    order.sort(key=lambda p: (decisions[p].kind != ACCEPT, *judging_key(p, decisions[p].offer)))
    items = []
    for p in list(order):
        kind, offer = decisions[p]
        if offer is None:  # malformed: nothing to accept or offer, end it
            order.remove(p)
            continue
        side = sides[p]
        q, t = int(offer[0]), int(offer[1])
        if kind == ACCEPT:
            items.append((q, t, _accept_price(offer[2], side), side, ACCEPT_KIND))
        else:
            items.append((q, t, int(offer[2]), side, PROPOSE))
    rows = round_step(state, list(open_offers), items).tolist() if items else []
    masked: dict[str, Decision] = {p: Decision(END, None) for p in decisions if p not in order}
    for p, item, (q, t, price, verdict) in zip(order, items, rows, strict=True):
        if verdict == DROPPED:
            masked[p] = Decision(END, None)
        elif item[4] == ACCEPT_KIND and verdict == KEPT:
            masked[p] = decisions[p]
        else:
            masked[p] = Decision(OFFER, (q, t, price))
    return MaskedRound(
        state=state,
        open_offers=tuple(tuple(o) for o in open_offers),  # type: ignore[misc]
        partners=tuple(order),
        items=tuple(items),
        results=tuple(tuple(r) for r in rows),
        decisions=masked,
    )
