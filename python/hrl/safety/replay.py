"""The L1 baseline and L1 bounds at every logged decision: what ``hrl build`` puts in the micro table.

For one call of an agent (:class:`hrl.safety.from_logs.Call`), :func:`replay_call` runs
:class:`~hrl.safety.baseline.PenguinStyleBaseline` on the state rebuilt from the logs and on what
the agent had seen *before* the call (the partners' offers the call answers, the negotiations still
running, the contracts already signed), passes its decisions through the L1 mask
(:func:`hrl.safety.mask.mask_decisions`, one Rust round step), and reads the L1 bounds off the same
limits (:func:`l1_bounds`). Nothing decided in or after the call is used.

The baseline sees the logs through :class:`LogAgent`, a read-only stand-in for the ``scml`` agent
object it normally reads (``awi.total_supplies_at``, ``awi.my_suppliers``, ``get_nmi(p).issues``,
...), filled from the rebuilt state. Its random draws come from generators seeded by a CRC-32 of (world,
agent, day, call), so a build is reproducible.

Per partner the result is a :class:`BaselineAction`: ``propose`` (the masked counter-offer or
first proposal), ``accept`` (the partner's offer, found safe), or ``end`` (the baseline ends, or the
mask finds no safe offer). An ``end`` has no offer; its placeholder is ``(0, day, best safe price)``
(quantity 0: L1 allows nothing; the price the baseline opens with: the lowest safe buying price,
the highest safe selling price).

``hrl build`` does not loop over :func:`replay_call`: :func:`micro_l1_columns` hands every expert
agent-day to one batched Rust call (:func:`replay_micro`, ``rust/replay/``), a port of the same
steps that reproduces the baseline's random draws and Python's set order, and keeps the Python loop
as its oracle (``reference=True``; the two are tested equal row for row).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from hrl.safety import BUY, SELL, Limits, SafetyState, derive_limits
from hrl.safety.baseline import ACCEPT, L1_BASELINE_OPTIONS, OFFER, PenguinStyleBaseline
from hrl.safety.baseline import Decision as BaselineDecision
from hrl.safety.mask import Row, judging_key, mask_decisions

if TYPE_CHECKING:  # the log side only: play (l1_view) imports neither polars nor the log readers
    import polars as pl

    from hrl.safety.from_logs import Call, LogSafety

__all__ = [
    "BASELINE_KINDS",
    "BaselineAction",
    "L1Bounds",
    "L1View",
    "LogAgent",
    "accept_price",
    "accept_safety",
    "baseline_row",
    "end_placeholder",
    "l1_bounds",
    "l1_bounds_both",
    "l1_view",
    "micro_l1_columns",
    "replay_call",
    "replay_micro",
]


class _Issue(NamedTuple):
    min_value: int
    max_value: int


class _NMI(NamedTuple):
    issues: tuple[_Issue, _Issue, _Issue]


class _LogAWI:
    """The AWI fields :class:`PenguinStyleBaseline` reads, from a rebuilt call."""

    def __init__(self, safety: LogSafety, call: Call, suppliers: list[str], consumers: list[str]) -> None:
        state = call.state
        self.current_step = state.current_step
        self.n_steps = state.n_steps
        self.n_lines = state.n_lines
        self.current_inventory_input = state.inventory_input
        self.my_suppliers = suppliers
        self.my_consumers = consumers
        supplies, sales, _ = safety.signed(call.world, call.agent, call.day, call.call)
        self._supplies, self._sales = supplies, sales
        window = range(state.current_step, state.current_step + len(supplies))
        self._first, self._last = window.start, window.stop - 1
        self.current_input_issues = [
            _Issue(*state.buy_quantity),
            _Issue(state.current_step, self._last),
            _Issue(*state.buy_price),
        ]
        self.current_output_issues = [
            _Issue(*state.sell_quantity),
            _Issue(state.current_step, self._last),
            _Issue(*state.sell_price),
        ]

    def total_supplies_at(self, day: int) -> int:
        """Negotiated supplies signed for ``day`` (exogenous excluded, as the AWI)."""
        return self._supplies[day - self._first] if self._first <= day <= self._last else 0

    def total_sales_at(self, day: int) -> int:
        """Negotiated sales signed for ``day`` (exogenous excluded, as the AWI)."""
        return self._sales[day - self._first] if self._first <= day <= self._last else 0


class LogAgent:
    """The agent object :class:`PenguinStyleBaseline` reads (``awi``, ``negotiators``,
    ``get_nmi``), for one call rebuilt from logs."""

    def __init__(self, safety: LogSafety, call: Call, suppliers: list[str], consumers: list[str]) -> None:
        self.awi = _LogAWI(safety, call, suppliers, consumers)
        self.negotiators: dict[str, int] = dict(call.negotiators)

    def get_nmi(self, partner: str) -> _NMI | None:
        if partner not in self.negotiators:
            return None
        awi = self.awi
        issues = awi.current_input_issues if partner in awi.my_suppliers else awi.current_output_issues
        return _NMI((issues[0], issues[1], issues[2]))


class L1View(NamedTuple):
    """:func:`l1_view`'s result: the masked baseline action per partner, the bounds per side,
    and per partner with an offer whether accepting it is safe."""

    actions: dict[str, BaselineAction]
    bounds: dict[int, L1Bounds]
    accept_safe: dict[str, bool]


@dataclass(frozen=True)
class BaselineAction:
    """The L1 baseline's action towards one partner: ``kind`` is ``propose``, ``accept`` or
    ``end``; ``offer`` is ``(q, t, p)`` (the placeholder of the module docs for ``end``)."""

    kind: str
    offer: tuple[int, int, int]


@dataclass(frozen=True)
class L1Bounds:
    """What L1 allows on one side at a call (after reserving the open offers).

    Attributes:
        day_mask: per delivery offset ``0 .. n_days - 1`` from today: some safe quantity exists.
        caps: per offset, the largest safe quantity (0 where the offset is not allowed); for
            buying at the lowest safe price.
        q_min, q_max: smallest and largest safe quantity over the allowed days (0 and 0 when no
            day is allowed); for buying, ``q_max`` counts the cash at the lowest safe price.
        p_min, p_max: the safe unit-price interval (may be empty, ``p_min > p_max``: then no day
            is allowed).
    """

    day_mask: tuple[bool, ...]
    caps: tuple[int, ...]
    q_min: int
    q_max: int
    p_min: int
    p_max: int


def l1_bounds(limits: Limits, day: int, side: int, n_days: int) -> L1Bounds:
    """:class:`L1Bounds` of ``side`` from ``limits`` (one batched Rust clip over the offsets)."""
    p_lo, p_hi = limits.buy_price if side == BUY else limits.sell_price
    q_lo, q_hi = limits.buy_quantity if side == BUY else limits.sell_quantity
    rows = np.array([[max(q_hi, 0), day + k, p_lo, side] for k in range(n_days)], dtype=np.int64)
    clipped, ok = limits.clip_many(rows)
    allowed = tuple(bool(x) for x in ok)
    caps = tuple(int(q) if a else 0 for q, a in zip(clipped[:, 0], allowed, strict=True))
    if not any(allowed):
        return L1Bounds(allowed, caps, 0, 0, p_lo, p_hi)
    return L1Bounds(allowed, caps, max(1, q_lo), int(clipped[ok, 0].max()), p_lo, p_hi)


def l1_bounds_both(limits: Limits, day: int, n_days: int) -> dict[int, L1Bounds]:
    """:func:`l1_bounds` of both sides in one batched Rust call."""
    (b_lo, b_hi), (s_lo, s_hi) = limits.buy_price, limits.sell_price
    qb, qs = limits.buy_quantity, limits.sell_quantity
    days = np.arange(day, day + n_days, dtype=np.int64)
    rows = np.zeros((2 * n_days, 4), dtype=np.int64)
    rows[:n_days, 0], rows[:n_days, 2], rows[:n_days, 3] = max(qb[1], 0), b_lo, BUY
    rows[n_days:, 0], rows[n_days:, 2], rows[n_days:, 3] = max(qs[1], 0), s_lo, SELL
    rows[:n_days, 1] = rows[n_days:, 1] = days
    clipped, ok = limits.clip_many(rows)
    out = {}
    for side, part, (lo, hi), q_lo in (
        (BUY, slice(0, n_days), (b_lo, b_hi), qb[0]),
        (SELL, slice(n_days, None), (s_lo, s_hi), qs[0]),
    ):
        allowed = ok[part]
        mask = tuple(allowed.tolist())
        caps = tuple(np.where(allowed, clipped[part][:, 0], 0).tolist())
        if not allowed.any():
            out[side] = L1Bounds(mask, caps, 0, 0, lo, hi)
        else:
            q_max = int(clipped[part][allowed, 0].max())
            out[side] = L1Bounds(mask, caps, max(1, q_lo), q_max, lo, hi)
    return out


def replay_call(
    safety: LogSafety,
    call: Call,
    *,
    suppliers: list[str],
    consumers: list[str],
    n_days: int,
    baseline_kwargs: Mapping[str, Any] | None = None,
) -> L1View:
    """The masked baseline action per partner of the call, the L1 bounds per side and the
    acceptance safety of the partners' offers (:func:`l1_view`).

    Args:
        safety: the indexed logs.
        call: the call (from :meth:`LogSafety.calls` or :meth:`LogSafety.call`).
        suppliers, consumers: the agent's partners on each side (the AWI's ``my_suppliers`` /
            ``my_consumers``).
        n_days: delivery offsets of the day mask.
        baseline_kwargs: arguments of :class:`PenguinStyleBaseline` over
            :data:`~hrl.safety.baseline.L1_BASELINE_OPTIONS` (the live agent's).
    """
    seed = zlib.crc32(f"{call.world}|{call.agent}|{call.day}|{call.call}".encode())
    rng = random.Random(seed)
    np_rng: list[np.random.Generator] = []  # made on first use: most calls draw nothing from it

    def choice(n: int, size: int) -> Any:
        if not np_rng:
            np_rng.append(np.random.default_rng(seed))
        return np_rng[0].choice(n, size)

    options = {**L1_BASELINE_OPTIONS, **(baseline_kwargs or {})}
    baseline = PenguinStyleBaseline(shuffle=rng.shuffle, choice=choice, **options)
    agent = LogAgent(safety, call, suppliers, consumers)
    if call.call == 0:
        decisions = {p: BaselineDecision(OFFER, o) for p, o in baseline.first_proposals(agent).items()}
    else:
        decisions = baseline.counter_all(agent, call.partner_offers)
    sides = {p: (BUY if p in suppliers else SELL) for p in {*decisions, *call.partner_offers}}
    return l1_view(
        call.state, sides, decisions, call.open_offers, n_days=n_days, partner_offers=call.partner_offers
    )


def l1_view(
    state: SafetyState,
    sides: Mapping[str, int],
    decisions: Mapping[str, BaselineDecision],
    open_offers: Sequence[Row],
    *,
    n_days: int,
    partner_offers: Mapping[str, tuple[int, int, float] | None] | None = None,
) -> L1View:
    """What L3 is conditioned on, offline (:func:`replay_call`) and in play (``LitaAgentHRL``):
    the baseline's decisions after the L1 mask, per partner (partners the mask ends are absent),
    the L1 bounds per side with the standing ``open_offers`` reserved, and which partner offers
    are safe to accept (:func:`accept_safety`)."""
    masked = mask_decisions(state, sides, decisions, list(open_offers))
    limits = derive_limits(state)
    for row in open_offers:
        limits.reserve(*row)
    bounds = l1_bounds_both(limits, state.current_step, n_days)
    safe = accept_safety(limits, sides, partner_offers or {})
    actions: dict[str, BaselineAction] = {}
    for partner, decision in masked.decisions.items():
        if decision.kind == OFFER and decision.offer is not None:
            q, t, p = (int(x) for x in decision.offer)
            actions[partner] = BaselineAction("propose", (q, t, p))
        elif decision.kind == ACCEPT and decision.offer is not None:
            q, t, p = decision.offer
            side = sides[partner]
            price = int(np.ceil(p)) if side == BUY else int(np.floor(p))
            actions[partner] = BaselineAction("accept", (int(q), int(t), price))
    return L1View(actions, bounds, safe)


def accept_price(price: float, side: int) -> int:
    """The integer price an acceptance is checked at (rounded against the agent, as L1's mask)."""
    return int(np.ceil(price)) if side == BUY else int(np.floor(price))


def accept_safety(
    limits: Limits, sides: Mapping[str, int], offers: Mapping[str, tuple[int, int, float] | None]
) -> dict[str, bool]:
    """Per partner with an offer: L1 finds it safe to accept even if every partner before it (in
    the mask's judging order, :func:`hrl.safety.mask.judging_key`: delivery day, then partner)
    that is safe to accept is accepted too. Conservative, so acceptances L3 chooses among the safe
    ones are jointly safe whatever the others do (dropping an earlier day's purchase only leaves a
    later day more room). Reserves on ``limits``."""
    out: dict[str, bool] = {}
    for partner in sorted(
        (p for p, o in offers.items() if o is not None), key=lambda p: judging_key(p, offers[p])
    ):
        q, t, price = offers[partner]  # type: ignore[misc]
        side = sides[partner]
        row = (int(q), int(t), accept_price(price, side), side)
        out[partner] = bool(limits.is_safe_to_accept(*row))
        if out[partner]:
            limits.reserve(*row)
    return out


def baseline_row(
    action: BaselineAction | None, bounds: Mapping[int, L1Bounds], day: int, side: int
) -> tuple[str, tuple[int, int, int]]:
    """``(baseline_kind, (q, t, p))`` of one thread: the action, or ``end`` with its placeholder."""
    if action is None:
        return "end", end_placeholder(bounds[side], day, side)
    return action.kind, action.offer


def end_placeholder(bounds: L1Bounds, day: int, side: int) -> tuple[int, int, int]:
    """The ``(0, day, best safe price)`` offer of an ``end`` baseline action."""
    return (0, day, bounds.p_min if side == BUY else bounds.p_max)


def micro_l1_columns(
    micro: pl.DataFrame, safety: LogSafety, *, n_days: int, reference: bool = False
) -> pl.DataFrame:
    """The L1 columns of the micro rows, in their order (see ``hrl.data.schema`` version 2).

    ``micro`` needs ``world``, ``actor``, ``day``, ``decision_seq``, ``partner``,
    ``actor_is_seller`` and ``action_quantity/delivery_day/unit_price``. One replay per call
    (world, actor, day, call), shared by the call's rows. Returns ``baseline_kind``,
    ``baseline_quantity/delivery_day/unit_price``, ``residual_*`` (action - baseline; null for
    ``end`` actions), ``l1_day_mask``, ``l1_caps``, ``l1_accept_safe``, ``l1_q_min``, ``l1_q_max``,
    ``l1_p_min``, ``l1_p_max``.

    By default every agent-day is replayed in one batched Rust call (:func:`replay_micro`);
    ``reference=True`` runs the Python path (:func:`replay_call` per call), the oracle the Rust
    port is tested equal to (``tests/test_micro_l1.py``).
    """
    import polars as pl

    replay = _reference_rows if reference else replay_micro
    kind, base, mask, caps, accept_safe, bounds_out = replay(micro, safety, n_days=n_days)
    actions_taken = micro.select(
        pl.col("action_quantity").cast(pl.Float64),
        pl.col("action_delivery_day").cast(pl.Float64),
        pl.col("action_unit_price").cast(pl.Float64),
    ).to_numpy()
    residual = actions_taken - base
    names = ("quantity", "delivery_day", "unit_price")
    return pl.DataFrame(
        {
            "baseline_kind": pl.Series(np.asarray(BASELINE_KINDS)[kind], dtype=pl.Enum(list(BASELINE_KINDS))),
            **{f"baseline_{c}": base[:, k] for k, c in enumerate(names)},
            # NaN (an end action has no offer) becomes null.
            **{f"residual_{c}": pl.Series(residual[:, k]).fill_nan(None) for k, c in enumerate(names)},
            "l1_day_mask": pl.Series(mask, dtype=pl.Array(pl.Boolean, n_days)),
            "l1_caps": pl.Series(caps, dtype=pl.Array(pl.Float64, n_days)),
            "l1_accept_safe": pl.Series(accept_safe, dtype=pl.Boolean),
            **{f"l1_{c}": bounds_out[:, k] for k, c in enumerate(("q_min", "q_max", "p_min", "p_max"))},
        },
        schema_overrides={f"baseline_{c}": pl.Float64 for c in names},
    )


BASELINE_KINDS = ("propose", "accept", "end")
"""``baseline_kind`` values; :func:`replay_micro` returns their index."""

RowColumns = tuple[
    NDArray[np.intp],
    NDArray[np.float64],
    NDArray[np.bool_],
    NDArray[np.float64],
    NDArray[np.bool_],
    NDArray[np.float64],
]
"""Per micro row (``n`` rows, ``D = n_days``): baseline kind index into :data:`BASELINE_KINDS`
``[n]``, baseline offer ``(q, t, p)`` ``[n, 3]``, day mask ``[n, D]``, caps ``[n, D]`` (units),
acceptance safety ``[n]``, ``(q_min, q_max, p_min, p_max)`` ``[n, 4]`` (units, money per unit)."""

_ROW_KEYS = ("world", "actor", "day", "decision_seq", "partner", "actor_is_seller")


def replay_micro(micro: pl.DataFrame, safety: LogSafety, *, n_days: int) -> RowColumns:
    """:func:`micro_l1_columns`' per-row values from one batched Rust call
    (``hrl._core.replay_micro``: the calls rebuilt, the baseline, the mask and the bounds, per
    agent-day in parallel without the GIL), with the baseline options the live agent plays
    (:data:`~hrl.safety.baseline.L1_BASELINE_OPTIONS`).

    What crosses to Rust: per agent-day (``D`` of them) a tuple of its numbers
    (:meth:`LogSafety.replay_record`) and its partners; its negotiations (``V`` views, in the
    order :meth:`LogSafety.negotiations` gives them) and their offers (``O``) as NumPy columns
    with offsets; the rows (``R``: index, decision slot, partner, side) grouped by agent-day;
    every agent name once, with its Python ``hash()``, which orders the baseline's sets of
    partners as in Python.
    """
    import polars as pl

    from hrl import _core

    keys = ["world", "agent", "day"]
    rows = micro.select(
        pl.col("world"),
        pl.col("actor").alias("agent"),
        pl.col("day").cast(pl.Int64),
        pl.col("decision_seq").cast(pl.Int64).alias("seq"),
        "partner",
        pl.col("actor_is_seller").cast(pl.Int64).alias("side"),
    ).with_row_index("row")
    days = rows.select(keys).unique(maintain_order=True).with_row_index("d")
    rows = rows.join(days, on=keys, how="left", maintain_order="left").sort("d", maintain_order=True)
    views = safety.party_views(days).join(days, on=keys, how="left").sort("d", "view").drop("view")
    views = views.with_row_index("view")
    offers = safety.party_offers(views)
    names = sorted(
        {
            "SELLER",
            "BUYER",
            *safety.tables.agents["agent"],
            *views["partner"].unique(),
            *rows["partner"].unique(),
        }
    )
    ids = {name: k for k, name in enumerate(names)}
    ids_frame = pl.DataFrame({"name": names, "id": np.arange(len(names), dtype=np.int64)})
    partner_ids = rows.join(ids_frame, left_on="partner", right_on="name", how="left", maintain_order="left")
    n_days_rows = np.bincount(rows["d"].to_numpy(), minlength=days.height)
    n_day_views = np.bincount(views["d"].to_numpy(), minlength=days.height)
    n_view_offers = np.bincount(offers["view"].to_numpy(), minlength=views.height)

    def offsets(counts: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    partners: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    records = []
    for world, agent, day in days.select(keys).iter_rows():
        if (world, agent) not in partners:
            suppliers, consumers = safety.partners(world, agent)
            partners[(world, agent)] = ([ids[p] for p in suppliers], [ids[p] for p in consumers])
        records.append(
            (world, agent, day, *safety.replay_record(world, agent, day), *partners[(world, agent)])
        )
    baseline = PenguinStyleBaseline(**L1_BASELINE_OPTIONS)
    kind, base, mask, caps, accept_safe, bounds = _core.replay_micro(
        records,
        names,
        [hash(name) for name in names],
        (
            offsets(n_day_views),
            views.join(ids_frame, left_on="partner", right_on="name", how="left", maintain_order="left")[
                "id"
            ].to_numpy(),
            views["side"].to_numpy().astype(np.int64),
            offsets(n_view_offers),
        ),
        (
            offers["seq"].to_numpy().astype(np.int64),
            offers["by_agent"].to_numpy(),
            offers["quantity"].fill_null(0).to_numpy().astype(np.int64),
            offers["quantity"].is_not_null().to_numpy(),
            offers["delivery_day"].fill_null(0).to_numpy().astype(np.int64),
            offers["unit_price"].cast(pl.Float64).fill_null(0.0).to_numpy(),
        ),
        (
            offsets(n_days_rows),
            rows["row"].to_numpy().astype(np.int64),
            rows["seq"].to_numpy(),
            partner_ids["id"].fill_null(-1).to_numpy().astype(np.int64),
            rows["side"].to_numpy(),
        ),
        productivity=baseline.productivity,
        today_share=baseline.today_share,
        quirks=baseline.quirks,
        stock_target=baseline.stock_target,
        future_buy_divisor=baseline.future_buy_divisor,
        future_sell_divisor=baseline.future_sell_divisor,
        keep_selling=baseline.keep_selling,
        own_sell_days=baseline.own_sell_days,
        n_rows=micro.height,
        n_days=n_days,
    )
    return (
        kind.astype(np.intp),
        base.astype(np.float64),
        mask,
        caps.astype(np.float64),
        accept_safe,
        bounds.astype(np.float64),
    )


def _reference_rows(micro: pl.DataFrame, safety: LogSafety, *, n_days: int) -> RowColumns:
    """:func:`replay_micro` in Python: :func:`replay_call` once per call (the oracle)."""
    from hrl.safety.from_logs import call_of_slot

    cache: dict[tuple[str, str, int, int], L1View] = {}
    n = micro.height
    kind = np.zeros(n, dtype=np.intp)
    base = np.zeros((n, 3))
    mask = np.zeros((n, n_days), dtype=bool)
    caps = np.zeros((n, n_days))
    accept_safe = np.zeros(n, dtype=bool)
    bounds_out = np.zeros((n, 4))
    for i, (world, actor, day, seq, partner, is_seller) in enumerate(micro.select(_ROW_KEYS).iter_rows()):
        key = (world, actor, int(day), call_of_slot(int(seq)))
        found = cache.get(key)
        if found is None:
            suppliers, consumers = safety.partners(world, actor)
            found = replay_call(
                safety,
                safety.call(*key),
                suppliers=suppliers,
                consumers=consumers,
                n_days=n_days,
            )
            cache[key] = found
        actions, bounds, safe = found
        side = SELL if is_seller else BUY
        b = bounds[side]
        row_kind, base[i] = baseline_row(actions.get(partner), bounds, int(day), side)
        kind[i] = BASELINE_KINDS.index(row_kind)
        mask[i] = b.day_mask
        caps[i] = b.caps
        accept_safe[i] = safe.get(partner, False)
        bounds_out[i] = (b.q_min, b.q_max, b.p_min, b.p_max)
    return kind, base, mask, caps, accept_safe, bounds_out
