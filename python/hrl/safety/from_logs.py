"""Rebuild the L1 safety state of any agent at any decision from tournament logs.

:class:`LogSafety` indexes the tables of :func:`hrl.data.load_logs` and gives, for an
agent of a world on a day, at a given *call* (below): the :class:`~hrl.safety.SafetyState` the
agent saw (:meth:`LogSafety.state`), the offers it still had standing (:meth:`open_offers`), and
the decisions it took (:meth:`calls`). The caps themselves are never recomputed here: callers
pass these states to the Rust rules (:func:`hrl.safety.derive_limits`, :func:`round_step`,
:func:`audit_offers`). Tested against :func:`hrl.safety.state_from_awi` of a live
:class:`hrl.agent.l1.LitaAgentL1` in real worlds (``tests/test_from_logs.py``).

**Slots and calls.** negmas logs a negotiation as offers ``seq = 0, 1, 2, ...``; each offer's
answer (accept / end) takes the next slot, ``seq + 1``. Slot ``j`` belongs to round ``j // 2``:
the *first mover* (who made offer 0) acts on even slots, the other on odd slots. A synchronous
agent acts in *calls*: ``first_proposals`` (call 0: its slot-0 offers) and then one
``counter_all`` per round ``r`` (call ``2r + 1``), which answers the offers of the round: slot
``2r + 1`` where it moves second and slot ``2r`` (``r >= 1``) where it moves first. So an agent's
slot ``j`` is decided in call :func:`call_of_slot` ``(j)`` = 0 if ``j == 0``, ``j`` if ``j`` is odd,
``j + 1`` otherwise; asynchronous agents are grouped the same way. Before call ``c`` the agent
has seen every partner event at a slot ``< c`` and its own events of calls ``< c``.

**Reconstruction choices** (``s`` = the day; "stats" are negmas' per-day stats, taken *after*
each day, see ``LogTables.agent_days``):

- ``inventory_input``, ``balance``: the stats of day ``s - 1``; on day 0, 0 and the initial
  balance (``info.json``). Nothing changes them between the end of a day and the next day's
  negotiations.
- ``trading_price_in/out``: the stats of day ``s - 1`` (the world records, after day ``t``, the
  trading price of day ``t + 1``); on day 0 the catalog prices. With
  ``publish_trading_prices = False`` the catalog prices throughout (as the AWI).
- issue ranges, as scml ``_make_issues`` makes them from the day's trading price ``tp``:
  unit price ``(max(1, int(tp * (1 - f))), int((1 + f) * tp))`` with ``f`` the world's
  ``price_range_fraction``, quantity ``(1, max(1, int(max n_lines * quantity_multiplier + 0.5)))``;
  empty (:data:`~hrl.safety.EMPTY_RANGE`) for the side a first/last-level agent does not
  negotiate. Worlds with ``wide_price_range`` are refused (``LogParseError``).
- ``supplies`` / ``sales``: negotiated contracts delivering in the window ``s .. min(s + horizon,
  N - 1)`` signed before day ``s``, plus those signed on day ``s`` whose agreement the agent had
  seen before the call: the acceptance at slot ``a`` is seen at call ``c`` when ``a < c`` (the
  partner accepted) or ``call_of_slot(a) < c`` (the agent accepted); plus today's exogenous
  contract on index 0. Contracts later nullified by a bankruptcy stay counted, as the AWI keeps
  them. A day-``s`` contract whose acceptance is not in the offers table (none seen in scml 0.8.4
  logs) counts only from the next day (``LogSafety.report['unplaced_contracts']``).
- ``committed_payables``: total price of those negotiated supplies plus today's exogenous input
  (quantity x unit price of the exogenous contract: the AWI's total).
- ``production_cost``, ``n_lines``: the agent's profile (``info.json``).
- open offers at call ``c``: the agent's *logged* offers decided before ``c`` that the partner had
  not answered before ``c`` (slot ``j`` with ``call_of_slot(j) < c <= j + 1``): under negmas'
  lock-step rounds, the call-0 offers at call 1 and nothing later. **Logs lack** the offers an
  agent returns that negmas never delivers (to a negotiation that already ended, or a first
  proposal where the partner moved first); ``LitaAgentL1`` reserves those too, so its recorded
  open set contains the rebuilt one. Caps only shrink when more is reserved, so a decision safe
  against the agent's own (larger) set is safe against the rebuilt one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from hrl.data.logs import LogTables
from hrl.errors import LogParseError
from hrl.safety.state import BUY, EMPTY_RANGE, SELL, SafetyState
from hrl.safety.world_model import expected_exogenous_supplies, installed_stock_model

_STOCK_MODEL = installed_stock_model()
"""The stock model of the installed scml, which wrote the logs being read."""

__all__ = ["Call", "Decision", "LogSafety", "NegotiationView", "call_of_slot"]

Row = tuple[int, int, int, int]
PROPOSE, ACCEPT, END = "propose", "accept", "end"


def call_of_slot(slot: int) -> int:
    """The call (0 = first proposals, ``2r + 1`` = round ``r``'s responses) deciding ``slot``."""
    if slot <= 0:
        return 0
    return slot if slot % 2 else slot + 1


@dataclass(frozen=True)
class Decision:
    """One decision an agent took in a call, as logged.

    Attributes:
        negotiation_id, partner: where.
        side: :data:`~hrl.safety.BUY` or :data:`~hrl.safety.SELL` (the agent's side).
        slot: its slot (``decision_seq`` of the micro table).
        kind: ``"propose"``, ``"accept"`` or ``"end"``.
        offer: ``(q, t, p)``: the proposed or accepted offer (``None`` for ``end``); prices of
            accepted offers are rounded against the agent (up when buying, down when selling).
    """

    negotiation_id: str
    partner: str
    side: int
    slot: int
    kind: str
    offer: tuple[int, int, int] | None


@dataclass(frozen=True)
class Call:
    """Everything about one call of one agent on one day.

    Attributes:
        world, agent, day, call: where (``call`` as in :func:`call_of_slot`).
        state: the rebuilt safety state at the call.
        open_offers: ``(q, t, p, side)`` rows standing at the call (logged offers only).
        decisions: what the agent decided in the call (logged), in slot order.
        partner_offers: per partner, the offer it made that this call answers (``(q, t, p)``).
        negotiators: partners whose negotiation was still running at the call, with the side.
    """

    world: str
    agent: str
    day: int
    call: int
    state: SafetyState
    open_offers: tuple[Row, ...]
    decisions: tuple[Decision, ...]
    partner_offers: dict[str, tuple[int, int, float]]
    negotiators: dict[str, int]


@dataclass
class NegotiationView:
    """One negotiation of the day from one agent's side.

    Attributes:
        negotiation_id, partner, side: the negotiation and the agent's side in it.
        offers: ``(seq, by_agent, q, t, p, response)`` in order (``q`` is None when nothing was
            proposed).
        end_slot: slot of the final event (``last seq + 1``; 0 when no offer was logged).
        end_by_agent: whether the agent took the final event (accepted or ended).
    """

    negotiation_id: str
    partner: str
    side: int
    offers: list[tuple[int, bool, int | None, int | None, float | None, str]] = field(default_factory=list)
    end_slot: int = 0
    end_by_agent: bool = False

    def over_before(self, call: int) -> bool:
        """Whether the negotiation had ended before ``call`` (from the agent's view)."""
        if not self.offers:
            return call > 0
        if self.end_by_agent:
            return call_of_slot(self.end_slot) < call
        return self.end_slot < call


@dataclass(frozen=True)
class _Contract:
    delivery: int
    quantity: int
    price: float
    signed: int
    side: int
    seen_from: int
    """Call from which the agent saw it on its signing day (large: only from the next day)."""


@dataclass(frozen=True)
class _Day:
    n_steps: int
    last: int
    n_lines: int
    inventory_input: int
    balance: float
    cost: float
    tp_in: float
    tp_out: float
    buy_quantity: tuple[int, int]
    buy_price: tuple[int, int]
    sell_quantity: tuple[int, int]
    sell_price: tuple[int, int]
    exo_in_q: int
    exo_in_total: float
    exo_out_q: int
    expected_supplies: tuple[int, ...]


NEVER = 1 << 30


def _price_range(tp: float, fraction: float) -> tuple[int, int]:
    lo, hi = max(1, int(tp * (1.0 - fraction))), int((1.0 + fraction) * tp)
    return (hi, lo) if hi < lo else (lo, hi)


class LogSafety:
    """Index over :class:`~hrl.data.logs.LogTables` to rebuild safety states (module docs).

    Args:
        tables: the parsed logs of one or more worlds.
        agents: the ``(world, agent)`` pairs whose negotiations and contracts are indexed
            (default: all); states, calls and open offers are only rebuilt for these.

    Raises:
        LogParseError: a world uses ``wide_price_range`` (its issue ranges are not rebuilt).
    """

    def __init__(self, tables: LogTables, agents: Iterable[tuple[str, str]] | None = None) -> None:
        self.tables = tables
        self.report: dict[str, int] = {"unplaced_contracts": 0}
        self._worlds = {r["world"]: r for r in tables.worlds.iter_rows(named=True)}
        for name, w in self._worlds.items():
            if w.get("wide_price_range"):
                raise LogParseError(f"{name}: wide_price_range worlds are not supported", name, 0)
        self._agents = {(r["world"], r["agent"]): r for r in tables.agents.iter_rows(named=True)}
        self._indexed = set(self._agents) if agents is None else set(agents) & set(self._agents)
        self._max_lines = {
            w: max((a["n_lines"] for (aw, _), a in self._agents.items() if aw == w), default=10)
            for w in self._worlds
        }
        days = tables.agent_days
        self._stats: dict[tuple[str, str, int], tuple[int, float, float, float]] = {}
        if days.height:
            for w, a, d, inv, bal, tin, tout in days.select(
                "world", "agent", "day", "inventory_input", "balance", "trading_price_in", "trading_price_out"
            ).iter_rows():
                self._stats[(w, a, d)] = (inv, bal, tin, tout)
        self._negotiations: dict[tuple[str, str, int], list[NegotiationView]] | None = None
        self._contracts, self._exogenous = self._index_contracts()
        self._by_delivery: dict[tuple[str, str], dict[int, list[_Contract]]] = {}
        for key, items in self._contracts.items():
            grouped: dict[int, list[_Contract]] = defaultdict(list)
            for c in items:
                grouped[c.delivery].append(c)
            self._by_delivery[key] = dict(grouped)
        self._day_cache: dict[tuple[str, str, int], _Day] = {}
        self._base_cache: dict[tuple[str, str, int], tuple[list[int], list[int], float, list[_Contract]]] = {}
        self._calls_cache: dict[tuple[str, str, int], list[Call]] = {}
        levels: dict[tuple[str, int], list[str]] = defaultdict(list)
        for (w, a), row in sorted(self._agents.items()):
            levels[(w, int(row["level"]))].append(a)
        self._levels = dict(levels)

    # -- indexes ----------------------------------------------------------------------------
    def _views(self) -> dict[tuple[str, str, int], list[NegotiationView]]:
        """The :class:`NegotiationView` lists per (world, agent, day), built on first use."""
        if self._negotiations is None:
            self._negotiations = self._index_negotiations()
        return self._negotiations

    def _index_negotiations(self) -> dict[tuple[str, str, int], list[NegotiationView]]:
        out: dict[tuple[str, str, int], list[NegotiationView]] = defaultdict(list)
        parties = self.party_views()
        offers = (
            self.party_offers(parties)
            .group_by("view", maintain_order=True)
            .agg("seq", "by_agent", "quantity", "delivery_day", "unit_price", "response")
        )
        offers_of = {view: list(zip(*lists, strict=True)) for view, *lists in offers.iter_rows()}
        for view_id, w, nid, day, agent, partner, side in parties.select(
            "view", "world", "negotiation_id", "day", "agent", "partner", "side"
        ).iter_rows():
            view = NegotiationView(nid, partner, side)
            found = offers_of.get(view_id)
            if found is not None:
                view.offers = found
                view.end_slot = found[-1][0] + 1
                view.end_by_agent = not found[-1][1]
            out[(w, agent, day)].append(view)
        return out

    def party_views(self, days: pl.DataFrame | None = None) -> pl.DataFrame:
        """One row per negotiation and indexed party (of ``days``' ``world, agent, day`` rows
        when given), in the negotiations table's order, buyer before seller: ``view`` (its
        index), ``world``, ``negotiation_id``, ``day``, ``agent``, ``partner``, ``side``
        (:data:`BUY` for the buyer)."""
        neg = self.tables.negotiations.select("world", "negotiation_id", "day", "buyer", "seller")
        wanted = pl.DataFrame(
            sorted(self._indexed), schema={"world": pl.String, "agent": pl.String}, orient="row"
        )
        parties = pl.concat(
            [
                neg.with_row_index("order").select(
                    "order",
                    pl.lit(k, pl.UInt32).alias("party"),
                    "world",
                    "negotiation_id",
                    "day",
                    pl.col(agent).alias("agent"),
                    pl.col(partner).alias("partner"),
                    pl.lit(side, pl.Int64).alias("side"),
                )
                for k, (agent, partner, side) in enumerate(
                    (("buyer", "seller", BUY), ("seller", "buyer", SELL))
                )
            ]
        ).join(wanted, on=["world", "agent"], how="semi")
        if days is not None:
            parties = parties.join(
                days.select("world", "agent", "day"), on=["world", "agent", "day"], how="semi"
            )
        return parties.sort("order", "party").drop("order", "party").with_row_index("view")

    def party_offers(self, parties: pl.DataFrame) -> pl.DataFrame:
        """The logged offers of each row of :meth:`party_views` ``parties``, in ``view`` then
        ``seq`` order: ``view``, ``seq``, ``by_agent`` (the party proposed it), ``quantity``
        (null when nothing was proposed), ``delivery_day``, ``unit_price``, ``response``."""
        offers = self.tables.offers.select(
            "world",
            "negotiation_id",
            "seq",
            "proposer",
            "receiver",
            "quantity",
            "delivery_day",
            "unit_price",
            pl.col("response").cast(pl.String),
        )
        both = pl.concat(
            [
                offers.with_columns(pl.col(role).alias("agent"), pl.lit(role == "proposer").alias("by_agent"))
                for role in ("proposer", "receiver")
            ]
        )
        return (
            both.join(
                parties.select("view", "world", "negotiation_id", "agent"),
                on=["world", "negotiation_id", "agent"],
            )
            .sort("view", "seq", maintain_order=True)
            .select("view", "seq", "by_agent", "quantity", "delivery_day", "unit_price", "response")
        )

    def _index_contracts(
        self,
    ) -> tuple[dict[tuple[str, str], list[_Contract]], dict[tuple[str, str, int], tuple[int, float, int]]]:
        accepted: dict[tuple[str, str], tuple[int, str]] = {}
        offers = self.tables.offers
        if offers.height:
            for w, nid, seq, receiver in (
                offers.filter(pl.col("response") == "accept")
                .select("world", "negotiation_id", "seq", "receiver")
                .iter_rows()
            ):
                accepted[(w, nid)] = (seq + 1, receiver)
        contracts: dict[tuple[str, str], list[_Contract]] = defaultdict(list)
        exogenous: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        table = self.tables.contracts
        if table.height == 0:
            return contracts, {}
        for w, seller, buyer, q, p, t, signed, nid, exo in table.select(
            "world",
            "seller",
            "buyer",
            "quantity",
            "unit_price",
            "delivery_day",
            "signed_at",
            "negotiation_id",
            "exogenous",
        ).iter_rows():
            if exo:
                if seller == "SELLER":
                    e = exogenous[(w, buyer, t)]
                    e[0] += q
                    e[1] += q * p
                else:
                    exogenous[(w, seller, t)][2] += q
                continue
            where = accepted.get((w, nid))
            if where is None:
                self.report["unplaced_contracts"] += 1
            for agent, side in ((buyer, BUY), (seller, SELL)):
                if (w, agent) not in self._indexed:
                    continue
                if where is None:
                    seen = NEVER
                else:
                    slot, acceptor = where
                    seen = call_of_slot(slot) + 1 if acceptor == agent else slot + 1
                contracts[(w, agent)].append(_Contract(t, int(q), float(p), int(signed), side, seen))
        return contracts, {k: (int(v[0]), float(v[1]), int(v[2])) for k, v in exogenous.items()}

    # -- per day ----------------------------------------------------------------------------
    def _day(self, world: str, agent: str, day: int) -> _Day:
        key = (world, agent, day)
        cached = self._day_cache.get(key)
        if cached is not None:
            return cached
        w = self._worlds[world]
        a = self._agents[(world, agent)]
        n = int(w["n_steps"])
        prev = self._stats.get((world, agent, day - 1)) if day > 0 else None
        catalog = w.get("catalog_prices") or []
        level = int(a["level"])
        if prev is None:
            inventory, balance = 0, float(a["initial_balance"])
            tp_in, tp_out = float(catalog[level]), float(catalog[level + 1])
        else:
            inventory, balance, tp_in, tp_out = (
                int(prev[0] or 0),
                float(prev[1]),
                float(prev[2]),
                float(prev[3]),
            )
        if not w.get("publish_trading_prices", True):
            tp_in, tp_out = float(catalog[level]), float(catalog[level + 1])
        fraction = float(w["price_range_fraction"])
        q_hi = max(1, int(self._max_lines[world] * float(w["quantity_multiplier"]) + 0.5))
        exo_in_q, exo_in_total, _ = self._exogenous.get((world, agent, day), (0, 0.0, 0))
        exo_out_q = self._exogenous.get((world, agent, day), (0, 0.0, 0))[2]
        last = min(day + int(w["horizon"]), n - 1)
        expected: tuple[int, ...] = ()
        if a["is_first_level"]:
            # The same estimate LitaAgentL1 makes live, from the exogenous inputs seen so far.
            history = [self._exogenous.get((world, agent, t), (0, 0.0, 0))[0] for t in range(day + 1)]
            expected = expected_exogenous_supplies(history, last - day + 1)
        result = _Day(
            n_steps=n,
            last=last,
            n_lines=int(a["n_lines"]),
            inventory_input=inventory,
            balance=balance,
            cost=float(a["cost"]),
            tp_in=tp_in,
            tp_out=tp_out,
            buy_quantity=EMPTY_RANGE if a["is_first_level"] else (1, q_hi),
            buy_price=EMPTY_RANGE if a["is_first_level"] else _price_range(tp_in, fraction),
            sell_quantity=EMPTY_RANGE if a["is_last_level"] else (1, q_hi),
            sell_price=EMPTY_RANGE if a["is_last_level"] else _price_range(tp_out, fraction),
            exo_in_q=exo_in_q,
            exo_in_total=exo_in_total,
            exo_out_q=exo_out_q,
            expected_supplies=expected,
        )
        self._day_cache[key] = result
        return result

    def _base(self, world: str, agent: str, day: int) -> tuple[list[int], list[int], float, list[_Contract]]:
        """Negotiated supplies, sales, payables signed before ``day`` over its window, and the
        contracts signed on ``day`` that deliver in it (cached per agent-day)."""
        key = (world, agent, day)
        cached = self._base_cache.get(key)
        if cached is not None:
            return cached
        d = self._day(world, agent, day)
        width = d.last - day + 1
        supplies, sales = [0] * width, [0] * width
        payables = 0.0
        today: list[_Contract] = []
        by_delivery = self._by_delivery.get((world, agent), {})
        for t in range(day, d.last + 1):
            for c in by_delivery.get(t, ()):
                if c.signed > day:
                    continue
                if c.signed == day:
                    today.append(c)
                elif c.side == BUY:
                    supplies[t - day] += c.quantity
                    payables += c.quantity * c.price
                else:
                    sales[t - day] += c.quantity
        result = (supplies, sales, payables, today)
        self._base_cache[key] = result
        return result

    def signed(self, world: str, agent: str, day: int, call: int) -> tuple[list[int], list[int], float]:
        """Negotiated ``(supplies, sales, payables)`` over the day's window seen at ``call``
        (exogenous contracts not included)."""
        base_supplies, base_sales, payables, today = self._base(world, agent, day)
        supplies, sales = list(base_supplies), list(base_sales)
        for c in today:
            if c.seen_from > call:
                continue
            if c.side == BUY:
                supplies[c.delivery - day] += c.quantity
                payables += c.quantity * c.price
            else:
                sales[c.delivery - day] += c.quantity
        return supplies, sales, payables

    def state(self, world: str, agent: str, day: int, call: int = 0) -> SafetyState:
        """The :class:`SafetyState` of ``agent`` on ``day`` at ``call`` (module docs)."""
        d = self._day(world, agent, day)
        supplies, sales, payables = self.signed(world, agent, day, call)
        supplies[0] += d.exo_in_q
        sales[0] += d.exo_out_q
        return SafetyState(
            current_step=day,
            n_steps=d.n_steps,
            n_lines=d.n_lines,
            inventory_input=d.inventory_input,
            supplies=tuple(supplies),
            sales=tuple(sales),
            balance=d.balance,
            committed_payables=payables + d.exo_in_total,
            production_cost=d.cost,
            trading_price_in=d.tp_in,
            trading_price_out=d.tp_out,
            buy_quantity=d.buy_quantity,
            buy_price=d.buy_price,
            sell_quantity=d.sell_quantity,
            sell_price=d.sell_price,
            expected_supplies=d.expected_supplies,
            stock_model=_STOCK_MODEL,
        )

    def negotiations(self, world: str, agent: str, day: int) -> list[NegotiationView]:
        """The agent's negotiations of the day."""
        return self._views().get((world, agent, day), [])

    def open_offers(self, world: str, agent: str, day: int, call: int) -> list[Row]:
        """The agent's logged offers standing at ``call`` (module docs), as ``(q, t, p, side)``."""
        rows: list[Row] = []
        for view in self.negotiations(world, agent, day):
            for seq, by_agent, q, t, p, _ in view.offers:
                if by_agent and q is not None and call_of_slot(seq) < call <= seq + 1:
                    rows.append((int(q), int(t or 0), int(p or 0), view.side))
        return rows

    def days(self) -> Iterator[tuple[str, str, int]]:
        """Every (world, agent, day) with at least one negotiation, sorted."""
        yield from sorted(self._views())

    def calls(self, world: str, agent: str, day: int) -> list[Call]:
        """The agent's calls of the day that decided something, in order."""
        key = (world, agent, day)
        cached = self._calls_cache.get(key)
        if cached is None:
            cached = self._calls_cache[key] = self._build_calls(world, agent, day)
        return cached

    def _build_calls(self, world: str, agent: str, day: int) -> list[Call]:
        views = self.negotiations(world, agent, day)
        by_call: dict[int, list[tuple[NegotiationView, int, str, tuple[int, int, int] | None]]] = defaultdict(
            list
        )
        for view in views:
            for seq, by_agent, q, t, p, response in view.offers:
                if by_agent and q is not None:
                    by_call[call_of_slot(seq)].append(
                        (view, seq, PROPOSE, (int(q), int(t or 0), int(p or 0)))
                    )
                elif not by_agent and response in (ACCEPT, END):
                    offer = None
                    if response == ACCEPT and q is not None:
                        price = math.ceil(p or 0) if view.side == BUY else math.floor(p or 0)
                        offer = (int(q), int(t or 0), int(price))
                    by_call[call_of_slot(seq + 1)].append((view, seq + 1, response, offer))
        out = []
        for call in sorted(by_call):
            items = sorted(by_call[call], key=lambda x: x[1])
            out.append(self._make_call(world, agent, day, call, views, items))
        return out

    def call(self, world: str, agent: str, day: int, call: int) -> Call:
        """One call (also one that decided nothing)."""
        for c in self.calls(world, agent, day):
            if c.call == call:
                return c
        return self._make_call(world, agent, day, call, self.negotiations(world, agent, day), [])

    def _make_call(
        self,
        world: str,
        agent: str,
        day: int,
        call: int,
        views: list[NegotiationView],
        items: list[tuple[NegotiationView, int, str, tuple[int, int, int] | None]],
    ) -> Call:
        partner_offers: dict[str, tuple[int, int, float]] = {}
        negotiators: dict[str, int] = {}
        for view in views:
            if view.over_before(call):
                continue
            negotiators[view.partner] = view.side
            for seq, by_agent, q, t, p, _ in view.offers:
                if not by_agent and q is not None and seq < call and call_of_slot(seq + 1) == call:
                    partner_offers[view.partner] = (int(q), int(t or 0), float(p or 0.0))
        decisions = tuple(
            Decision(view.negotiation_id, view.partner, view.side, slot, kind, offer)
            for view, slot, kind, offer in items
        )
        return Call(
            world=world,
            agent=agent,
            day=day,
            call=call,
            state=self.state(world, agent, day, call),
            open_offers=tuple(self.open_offers(world, agent, day, call)),
            decisions=decisions,
            partner_offers=partner_offers,
            negotiators=negotiators,
        )

    def partners(self, world: str, agent: str) -> tuple[list[str], list[str]]:
        """``(suppliers, consumers)`` of the agent (the AWI's ``my_suppliers``/``my_consumers``:
        the factories one level up and down; ``SELLER``/``BUYER`` at the ends of the chain)."""
        row = self._agents[(world, agent)]
        level = int(row["level"])
        suppliers = ["SELLER"] if row["is_first_level"] else list(self._levels.get((world, level - 1), []))
        consumers = ["BUYER"] if row["is_last_level"] else list(self._levels.get((world, level + 1), []))
        return suppliers, consumers

    def agents(self) -> list[tuple[str, str]]:
        """Every (world, agent) of the logs (system agents excluded), sorted."""
        return sorted(self._agents)

    def agent_type(self, world: str, agent: str) -> str:
        """The agent's class name (``short_type``)."""
        return str(self._agents[(world, agent)]["short_type"])

    def replay_record(self, world: str, agent: str, day: int) -> tuple[Any, ...]:
        """The agent-day's numbers as ``hrl._core.replay_micro`` reads them (the inputs of
        :meth:`state` before any call): ``(facts, supplies, sales, payables, today)``.

        ``facts`` is :meth:`day_facts` without ``last``, in the Rust ``DayFacts`` order, with
        the stock model code; ``supplies``/``sales`` (units per window day) and ``payables``
        (money) are the negotiated contracts signed before ``day``; ``today`` holds
        ``(delivery day, quantity, unit price, side, first call seen)`` per negotiated contract
        signed on ``day``. The negotiations come as columns (:meth:`party_views`).
        """
        d = self._day(world, agent, day)
        supplies, sales, payables, today = self._base(world, agent, day)
        facts = (
            d.n_steps,
            d.n_lines,
            d.inventory_input,
            d.balance,
            d.cost,
            d.tp_in,
            d.tp_out,
            d.buy_quantity,
            d.buy_price,
            d.sell_quantity,
            d.sell_price,
            d.exo_in_q,
            d.exo_in_total,
            d.exo_out_q,
            d.expected_supplies,
            _STOCK_MODEL,
        )
        contracts = [(c.delivery, c.quantity, c.price, c.side, c.seen_from) for c in today]
        return facts, supplies, sales, payables, contracts

    def day_facts(self, world: str, agent: str, day: int) -> dict[str, Any]:
        """The per-day numbers behind :meth:`state` (for inspection and the baseline replay)."""
        d = self._day(world, agent, day)
        return {k: getattr(d, k) for k in d.__dataclass_fields__}
