"""A Penguin-style baseline: our own implementation of PenguinAgent's negotiation decisions.

PenguinAgent (SCML 2024 Standard winner, ``scml_agents.scml2024.standard.team_penguin``) is the
expert L1 is distilled from. This module re-implements the decisions it makes from the same
inputs (the AWI, the negotiation issues and the partners' offers), as plain functions of those
inputs plus two random sources. It does not mask anything: :mod:`hrl.safety.mask` does, and
:class:`hrl.agent.l1.LitaAgentL1` plays baseline + mask.

The decision rules (``P = productivity * n_lines`` with productivity 0.7, ``I`` the input
inventory, ``S(t)``/``B(t)`` the signed supplies/sales for day ``t``, ``s`` today):

- **Needs.** To buy for day ``t``: ``int(P - I - S(t))``; to sell for day ``t``:
  ``int(max(0, min(L, P + I) - B(t)))``.
- **First proposals.** Today's buy need is spread over a random 70% (at least one) of the
  suppliers, today's sell need (only while ``B(s) <= L``) over 70% of the consumers: each unit
  goes to a random partner, every chosen partner getting at least one when the need allows, at
  the partner's best price (lowest for buying, highest for selling), for delivery today. Partners
  left without a quantity get offers for the next days: the first half of them for ``s + 1``,
  the next 30% for ``s + 2``, the rest for ``s + 3``, spreading a third of that day's need (the
  ``future_*_divisor`` knobs change the third; sell offers only while that day's sales are
  ``<= L``; PenguinAgent tests day ``s + 2`` for ``s + 3``). With ``own_sell_days`` each
  partner left out of today's sales gets its own later day instead (``s + 1``, ``s + 2``, ... up
  to the last day of the delivery window, skipping days without a sell need), offered that
  day's whole sell need.
- **Responses.** Per side: offers with an acceptable price (not above the issue's maximum when
  buying, not below the minimum when selling) are split into today's and future ones. A future
  offer is accepted while it fits that day's need minus what was accepted for that day already.
  Among today's offers, the subset whose total is closest to today's need is accepted: the
  closest at-or-above-need subset if within the threshold (1 unit on day 0, ``0.1 L`` after),
  else the closest below-need subset -- and, as in PenguinAgent, *all* of today's offers when no
  non-empty subset lies below the need. The other partners then get future offers. Without an
  acceptable subset, today's need is spread again over the partners not answered yet, at a
  conceding price (``max(0.7 p_max, p_min)`` selling, ``min(1.2 p_min, p_max)`` buying), and
  the rest get future offers. Partners without a response see the negotiation end (with
  ``keep_selling``, consumers that would see it end get future sell offers instead, so buyers
  that accept whatever they are offered keep being offered).
- **PenguinAgent's quirks, kept by default.** Its sell-side need during responses is computed
  only when ``B(int(B(s) <= L)) > 0`` -- it passes a boolean as a day, so unless it sold for day
  0 or 1 it never accepts today's sell offers -- and its sell offers for ``s + 3`` test the sales
  of ``s + 2``. We reproduce both by default, because agreement with the expert is what we
  measure; ``quirks=False`` fixes them (the sell need is computed while today's sales are
  ``<= L``; each day's own sales are tested).

Random draws (shuffles with ``random``, multinomial spreads with NumPy) follow the same order as
the expert's, so with the same random state both make the same random choices (see
:mod:`hrl.safety.shadow`).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, combinations
from typing import Any, NamedTuple

import numpy as np

from hrl.errors import ConfigError

__all__ = ["ACCEPT", "END", "L1_BASELINE_OPTIONS", "OFFER", "Decision", "PenguinStyleBaseline"]

ACCEPT, OFFER, END = "accept", "offer", "end"

L1_BASELINE_OPTIONS: dict[str, Any] = {
    "quirks": False,
    "stock_target": 1.0,
    "keep_selling": True,
    "own_sell_days": True,
}
"""The options ``LitaAgentL1`` plays its baseline with (and ``hrl build`` replays it with): the
quirks fixed, stock bought up to the lines (it persists in scml 0.8.4), and buyers kept on offer
(``keep_selling``, each on its own later day with the whole need: ``own_sell_days``), which all
measured better in the same seats (``docs/l1.md``; the last two +0.041 [+0.023, +0.062] over 60
fresh worlds). ``LitaAgentL1`` falls back to PenguinAgent's 0.7 when
its stock model is the consumed one."""

Outcome = tuple[int, int, float]


class Decision(NamedTuple):
    """A response in one negotiation: accept the partner's ``offer``, counter with ``offer``, or end."""

    kind: str
    offer: tuple[Any, ...] | None


class PenguinStyleBaseline:
    """PenguinAgent's decisions, re-implemented (see the module docs).

    Args:
        productivity: fraction of the lines the agent plans to fill (0.7 in PenguinAgent).
        today_share: fraction of partners that get today's need (0.7 in PenguinAgent).
        shuffle: in-place list shuffle (default: the global ``random.shuffle``).
        choice: ``choice(n, size)`` drawing partner indices (default: ``numpy.random.choice``).
        quirks: reproduce PenguinAgent's two quirks (module docs); ``False`` fixes them.
        stock_target: fraction of the lines that the buy need fills stock plus a day's signed
            supplies up to (default ``productivity``, as PenguinAgent). In scml 0.8.4 input
            stock is never used up (``hrl.safety.world_model``), so stock of ``n_lines`` units
            feeds full production on every later day: 1.0 buys up to that once.
        future_buy_divisor: a future day's buy offers spread ``int(need / divisor)`` units
            (3 in PenguinAgent: a third of that day's need; 1 offers all of it).
        future_sell_divisor: the same for a future day's sell offers.
        keep_selling: in :meth:`counter_all`, consumers whose offer got no response (their
            negotiation would end) get future sell offers (:meth:`future_offers`) instead.
            PenguinAgent ends them (False).
        own_sell_days: future sell offers give each partner its own later day with that day's
            whole need (module docs) instead of PenguinAgent's 50/30/20 split of ``s + 1 ..
            s + 3`` (False).
    """

    def __init__(
        self,
        *,
        productivity: float = 0.7,
        today_share: float = 0.7,
        shuffle: Callable[[list[Any]], None] | None = None,
        choice: Callable[[int, int], Any] | None = None,
        quirks: bool = True,
        stock_target: float | None = None,
        future_buy_divisor: float = 3.0,
        future_sell_divisor: float = 3.0,
        keep_selling: bool = False,
        own_sell_days: bool = False,
    ) -> None:
        for name, divisor in (
            ("future_buy_divisor", future_buy_divisor),
            ("future_sell_divisor", future_sell_divisor),
        ):
            if not divisor >= 1.0:
                raise ConfigError(f"PenguinStyleBaseline {name} must be >= 1 (got {divisor!r})")
        self.quirks = quirks
        self.keep_selling = keep_selling
        self.own_sell_days = own_sell_days
        self.future_buy_divisor = float(future_buy_divisor)
        self.future_sell_divisor = float(future_sell_divisor)
        self.stock_target = productivity if stock_target is None else stock_target
        self.productivity = productivity
        self.today_share = today_share
        self._shuffle = shuffle if shuffle is not None else random.shuffle
        self._choice = choice if choice is not None else np.random.choice

    # -- quantities ------------------------------------------------------------------------
    def _plan(self, awi: Any) -> float:
        return float(awi.n_lines) * self.productivity

    def _buy_plan(self, awi: Any) -> float:
        return float(awi.n_lines) * self.stock_target

    def buy_need(self, awi: Any, day: int) -> int:
        return int(self._buy_plan(awi) - awi.current_inventory_input - awi.total_supplies_at(day))

    def sell_need(self, awi: Any, day: int) -> int:
        ceiling = min(awi.n_lines, self._plan(awi) + awi.current_inventory_input)
        return int(max(0, ceiling - awi.total_sales_at(day)))

    def _spread(self, total: int, n: int) -> list[int]:
        """``total`` units over ``n`` partners, each >= 1 when ``total >= n``."""
        if total < n:
            ones = [0] * (n - total) + [1] * total
            self._shuffle(ones)
            return ones
        if total == n:
            return [1] * n
        extra = Counter(self._choice(n, total - n))
        return [extra.get(k, 0) + 1 for k in range(n)]

    def _today_split(self, partners: list[str], need: int) -> dict[str, int]:
        self._shuffle(partners)
        chosen = partners[: max(1, int(self.today_share * len(partners)))]
        return dict(zip(chosen, self._spread(need, len(chosen)), strict=True))

    def spread_today(self, agent: Any, partners: Iterable[str]) -> dict[str, int]:
        """Today's buy and sell needs spread over ``partners`` (0 for those left out)."""
        awi = agent.awi
        partners = list(partners)
        quantities = dict.fromkeys(partners, 0)
        suppliers = [p for p in partners if p in awi.my_suppliers]
        consumers = [p for p in partners if p not in awi.my_suppliers and p in awi.my_consumers]
        s = awi.current_step
        buy, sell = self.buy_need(awi, s), self.sell_need(awi, s)
        if suppliers and buy > 0:
            quantities.update(self._today_split(suppliers, buy))
        if consumers and sell > 0 and awi.total_sales_at(s) <= awi.n_lines:
            quantities.update(self._today_split(consumers, sell))
        return quantities

    def future_offers(self, agent: Any, partners: Sequence[str], buying: bool) -> dict[str, Outcome]:
        """Offers for days ``s + 1 .. s + 3`` to ``partners`` (split 50% / 30% / 20%), each day
        spreading its need divided by ``future_buy_divisor`` / ``future_sell_divisor`` (selling
        with ``own_sell_days``: :meth:`own_day_sell_offers`)."""
        if self.own_sell_days and not buying:
            return self.own_day_sell_offers(agent, partners)
        awi = agent.awi
        s, n = awi.current_step, len(partners)
        groups = (partners[: int(n * 0.5)], partners[int(n * 0.5) : int(n * 0.8)], partners[int(n * 0.8) :])
        offers: dict[str, Outcome] = {}
        for ahead, group in enumerate(groups, start=1):
            day = s + ahead
            if day >= awi.n_steps:
                continue
            if buying:
                need = int(self.buy_need(awi, day) / self.future_buy_divisor)
            else:
                if awi.total_sales_at(min(day, s + 2) if self.quirks else day) > awi.n_lines:
                    continue
                ceiling = min(awi.n_lines, self._plan(awi) + awi.current_inventory_input)
                need = int(max(0, ceiling - awi.total_sales_at(day)) / self.future_sell_divisor)
            if need <= 0 or not group:
                continue
            for partner, q in zip(group, self._spread(need, len(group)), strict=True):
                if q > 0:
                    offers[partner] = (q, day, self.best_price(agent, partner))
        return offers

    def own_day_sell_offers(self, agent: Any, partners: Sequence[str]) -> dict[str, Outcome]:
        """Sell offers to ``partners`` in order, each for its own later day (the next day after
        the previous partner's with a sell need, up to the delivery window's last day), each
        offering that day's whole sell need at the best price; partners past the window get none."""
        awi = agent.awi
        last = min(int(awi.current_output_issues[1].max_value), awi.n_steps - 1)
        offers: dict[str, Outcome] = {}
        day = awi.current_step + 1
        for partner in partners:
            while day <= last and self.sell_need(awi, day) <= 0:
                day += 1
            if day > last:
                break
            offers[partner] = (self.sell_need(awi, day), day, self.best_price(agent, partner))
            day += 1
        return offers

    # -- prices ----------------------------------------------------------------------------
    @staticmethod
    def _price_range(agent: Any, partner: str) -> tuple[float, float]:
        nmi = agent.get_nmi(partner)
        awi = agent.awi
        if nmi is not None:
            issue = nmi.issues[2]
        elif partner in awi.my_consumers:
            issue = awi.current_output_issues[2]
        else:
            issue = awi.current_input_issues[2]
        return issue.min_value, issue.max_value

    def best_price(self, agent: Any, partner: str) -> float:
        lo, hi = self._price_range(agent, partner)
        return lo if partner in agent.awi.my_suppliers else hi

    def conceding_price(self, agent: Any, partner: str) -> float:
        lo, hi = self._price_range(agent, partner)
        if partner in agent.awi.my_consumers:
            return max(hi * 0.7, lo)
        return min(lo * 1.2, hi)

    def acceptable_price(self, agent: Any, partner: str, price: float) -> bool:
        lo, hi = self._price_range(agent, partner)
        if partner in agent.awi.my_consumers:
            return price >= lo
        return partner in agent.awi.my_suppliers and price <= hi

    # -- decisions -------------------------------------------------------------------------
    def first_proposals(self, agent: Any) -> dict[str, Outcome]:
        """Opening offers per partner (partners missing get none)."""
        awi = agent.awi
        s = awi.current_step
        proposals: dict[str, Outcome] = {}
        later_suppliers: list[str] = []
        later_consumers: list[str] = []
        for partner, q in self.spread_today(agent, agent.negotiators.keys()).items():
            if q > 0:
                proposals[partner] = (q, s, self.best_price(agent, partner))
            elif partner in awi.my_suppliers:
                later_suppliers.append(partner)
            elif partner in awi.my_consumers:
                later_consumers.append(partner)
        proposals.update(self.future_offers(agent, later_suppliers, buying=True))
        proposals.update(self.future_offers(agent, later_consumers, buying=False))
        return proposals

    def threshold(self, awi: Any) -> float:
        return 1.0 if awi.current_step == 0 else 0.1 * awi.n_lines

    def counter_all(self, agent: Any, offers: Mapping[str, Any]) -> dict[str, Decision]:
        """Responses per partner; partners missing see their negotiation end."""
        awi = agent.awi
        s = awi.current_step
        responses: dict[str, Decision] = {}
        for everyone in (awi.my_suppliers, awi.my_consumers):
            if not everyone:
                continue
            if everyone[0] in awi.my_suppliers:
                needs = self.buy_need(awi, s)
            elif self._sells_today(awi):
                needs = self.sell_need(awi, s)
            else:
                needs = 0
            partners = {p for p in everyone if p in offers}
            today: dict[str, Any] = {}
            later: dict[str, Any] = {}
            for p in partners:
                offer = offers[p]
                if offer is None or not self.acceptable_price(agent, p, offer[2]):
                    continue
                (today if offer[1] == s else later)[p] = offer
            today_partners = {p for p in partners if p in today}
            taken: defaultdict[int, int] = defaultdict(int)
            for p, offer in later.items():
                day = offer[1]
                need = self.buy_need(awi, day) if p in awi.my_suppliers else self.sell_need(awi, day)
                if offer[0] + taken[day] <= need:
                    responses[p] = Decision(ACCEPT, offer)
                    taken[day] += offer[0]
            chosen = self._choose_subset(today_partners, today, needs, self.threshold(awi))
            if chosen is not None and needs > 0:
                for p in chosen:
                    responses[p] = Decision(ACCEPT, today[p])
                rest = list(set(today_partners.difference(chosen)) - set(responses))
                suppliers = [p for p in rest if p in awi.my_suppliers]
                consumers = [p for p in rest if p in awi.my_consumers]
                for p, o in self.future_offers(agent, suppliers, buying=True).items():
                    responses[p] = Decision(OFFER, o)
                for p, o in self.future_offers(agent, consumers, buying=False).items():
                    responses[p] = Decision(OFFER, o)
                continue
            waiting = {p for p in everyone if p not in responses and p in agent.negotiators}
            later_suppliers: list[str] = []
            later_consumers: list[str] = []
            for p, q in self.spread_today(agent, waiting).items():
                if q > 0:
                    responses[p] = Decision(OFFER, (q, s, self.conceding_price(agent, p)))
                elif p in awi.my_suppliers:
                    later_suppliers.append(p)
                elif p in awi.my_consumers:
                    later_consumers.append(p)
            for p, o in self.future_offers(agent, later_suppliers, buying=True).items():
                responses[p] = Decision(OFFER, o)
            for p, o in self.future_offers(agent, later_consumers, buying=False).items():
                responses[p] = Decision(OFFER, o)
        if self.keep_selling:
            unanswered = [
                p for p in offers if p not in responses and p in awi.my_consumers and p in agent.negotiators
            ]
            for p, o in self.future_offers(agent, unanswered, buying=False).items():
                responses[p] = Decision(OFFER, o)
        return responses

    def _sells_today(self, awi: Any) -> bool:
        """Whether today's sell offers are answered against a need (module docs, quirks)."""
        today_open = awi.total_sales_at(awi.current_step) <= awi.n_lines
        if self.quirks:
            return bool(awi.total_sales_at(int(today_open)))
        return bool(today_open)

    @staticmethod
    def _choose_subset(
        partners: set[str], today: Mapping[str, Any], needs: int, threshold: float
    ) -> tuple[str, ...] | None:
        """The subset of today's offers to accept (see the module docs), or None."""
        subsets = list(chain.from_iterable(combinations(list(partners), r) for r in range(len(partners) + 1)))
        above, above_diff = -1, float("inf")
        below, below_diff = -1, float("inf")
        for k, subset in enumerate(subsets):
            offered = sum(today[p][0] for p in subset)
            diff = abs(offered - needs)
            if offered >= needs:
                if diff < above_diff and needs > 0:
                    above, above_diff = k, diff
            elif diff < below_diff and offered > 0:
                below, below_diff = k, diff
        # Index -1 (nothing found) is the full set, as in PenguinAgent.
        if above_diff <= threshold and subsets[above]:
            return subsets[above]
        if subsets[below]:
            return subsets[below]
        return None
