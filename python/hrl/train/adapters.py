"""Adapters: the data pipeline's tables (polars) -> the trainers' tensors (:mod:`hrl.train.datasets`).

The columns each adapter reads are listed in ONE place, :data:`MACRO_COLUMNS` and
:data:`MICRO_COLUMNS` (names follow ``hrl.data.schema`` version 1; docs/models.md repeats them).
Units after adaptation: quantities / ``n_lines``; unit prices / the trading price of the product
(``trading_price_in`` for buying, ``trading_price_out`` for selling, from the macro row of the
same world, agent and day); delivery days as offsets from today (``/ HORIZON`` as features);
rounds / ``MAX_ROUNDS``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import polars as pl
import torch
from numpy.typing import NDArray

from hrl.config import L2Config, L3Config
from hrl.errors import ConfigError
from hrl.models.box import encode, thread_caps
from hrl.models.l3 import ACCEPT, COUNTER, END
from hrl.models.l4 import thread_features
from hrl.train.datasets import MacroTensors, MicroTensors, ThreadTensors

__all__ = [
    "HORIZON",
    "MACRO_COLUMNS",
    "MAX_ROUNDS",
    "MICRO_COLUMNS",
    "MICRO_L1_COLUMNS",
    "macro_tensors_from_frame",
    "micro_tensors_from_frame",
    "project_expert_actions",
    "thread_tensors_from_micro",
]

HORIZON = 10
"""Delivery offsets are divided by the Standard game's horizon when used as features."""
MAX_ROUNDS = 20
"""Rounds are divided by the tournament round limit."""

MACRO_COLUMNS: dict[str, str] = {
    "world": "world identifier (string); the validation split holds out whole worlds",
    "agent": "agent id (string)",
    "day": "simulated day (int)",
    "n_lines": "the agent's production lines (quantity unit)",
    "trading_price_in": "trading price of the input product (unit of buying prices)",
    "trading_price_out": "trading price of the output product (unit of selling prices)",
    "state_macro": "Array[Float32, state_dim]: hrl.features.macro_features of the day",
    "committed_supplies": "Array[Float64, horizon_bins]: contracted supplies per delivery offset, units",
    "committed_sales": "Array[Float64, horizon_bins]: contracted sales per delivery offset, units",
    "goal": "Array[Float32, 4]: [Q_buy, P_buy, Q_sell, P_sell] signed that day, units and money",
    "goal_mask": "Array[Boolean, 4]: goal components the agent can trade",
}
"""Columns :func:`macro_tensors_from_frame` reads from ``macro.parquet``."""

MICRO_COLUMNS: dict[str, str] = {
    "world": "world identifier (string)",
    "actor": "the expert agent's id; joins macro.agent (with world, day)",
    "day": "simulated day (int)",
    "round": "negotiation round of the decision (int)",
    "relative_time": "day / n_steps",
    "relative_round": "round / 20",
    "actor_is_seller": "bool: the expert sells in this negotiation",
    "history": "List[Struct{round, proposer_is_seller, quantity, delivery_day, unit_price}]: the "
    "negotiation's offers strictly before the decision, oldest first",
    **{
        f"goal_{g}": f"the day's goal component {g} (units and money)"
        for g in ("q_buy", "p_buy", "q_sell", "p_sell")
    },
    "action_kind": "'propose' | 'accept' | 'end'",
    "action_quantity": "proposed quantity (propose rows)",
    "action_delivery_day": "proposed delivery day, absolute (propose rows)",
    "action_unit_price": "proposed unit price (propose rows)",
    "baseline_kind": "L1 baseline's kind: 'propose' | 'accept' | 'end'",
    "baseline_quantity": "L1 baseline offer's quantity (required, non-null)",
    "baseline_delivery_day": "L1 baseline offer's delivery day, absolute (required, non-null)",
    "baseline_unit_price": "L1 baseline offer's unit price (required, non-null)",
}
"""Columns :func:`micro_tensors_from_frame` reads from ``micro.parquet`` (plus ``n_lines`` and the
trading prices joined from the macro table on world, actor = agent, day)."""

MICRO_L1_COLUMNS: dict[str, str] = {
    "l1_day_mask": "Array[Boolean, n_days]: delivery offsets L1 allows",
    "l1_caps": "Array[Float64, n_days]: L1's largest safe quantity per offset (units)",
    "l1_accept_safe": "bool: L1 finds the partner's offer safe to accept",
    "l1_q_min": "L1's smallest safe quantity",
    "l1_p_min": "L1's lowest safe unit price",
    "l1_p_max": "L1's highest safe unit price",
}
"""Micro columns from the L1 layer (schema version 4): L1's box at the decision."""

_KIND_CODES = {"accept": ACCEPT, "propose": COUNTER, "end": END}


def _require(frame: pl.DataFrame, columns: dict[str, str] | list[str], table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{table}: missing columns {missing} (see hrl.train.adapters)")


def _matrix(series: pl.Series, width: int | None = None) -> NDArray[np.float64]:
    """A fixed-width Array/List column as a 2-D float64 array."""
    arr = series.to_numpy()
    if arr.dtype == object:
        arr = (
            np.stack([np.asarray(v, dtype=np.float64) for v in arr])
            if len(arr)
            else np.zeros((0, width or 0))
        )
    arr = np.asarray(arr, dtype=np.float64)
    if width is not None and arr.shape[1] != width:
        raise ConfigError(f"column {series.name!r}: expected width {width}, got {arr.shape[1]}")
    return arr


def _div(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float64]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out: NDArray[np.float64] = np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)
    return out


def _f32(a: NDArray[Any]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _world_ids(worlds: pl.Series) -> torch.Tensor:
    return torch.from_numpy((worlds.rank("dense").to_numpy() - 1).astype(np.int64))


def macro_tensors_from_frame(macro: pl.DataFrame, config: L2Config | None = None) -> MacroTensors:
    """:class:`MacroTensors` from the macro table (one row per world, agent, day).

    The window of each row holds the same agent's rows of the ``history_days`` previous days
    (padding where a day is absent). Rows come out sorted by world, agent, day.
    """
    cfg = config or L2Config()
    _require(macro, MACRO_COLUMNS, "macro")
    df = macro.sort(["world", "agent", "day"])
    n, k = df.height, cfg.history_days
    state = _matrix(df["state_macro"], cfg.state_dim)
    key = df.select(pl.struct("world", "agent").rank("dense")).to_series().to_numpy()
    day = df["day"].to_numpy()
    window = np.zeros((n, k + 1, cfg.state_dim))
    window_mask = np.zeros((n, k + 1), dtype=bool)
    window[:, k], window_mask[:, k] = state, True
    rows = np.arange(n)
    for lag in range(1, k + 1):
        j = rows - lag
        ok = j >= 0
        ok[ok] = (key[j[ok]] == key[ok]) & (day[j[ok]] == day[ok] - lag)
        window[ok, k - lag] = state[j[ok]]
        window_mask[ok, k - lag] = True
    lines = df["n_lines"].to_numpy().astype(np.float64)[:, None]
    profile = np.stack(
        [
            _div(_matrix(df["committed_supplies"], cfg.horizon_bins), lines),
            _div(_matrix(df["committed_sales"], cfg.horizon_bins), lines),
        ],
        axis=-1,
    )
    goal = _matrix(df["goal"], 4)
    tp_in, tp_out = df["trading_price_in"].to_numpy(), df["trading_price_out"].to_numpy()
    scales = np.stack([lines[:, 0], tp_in, lines[:, 0], tp_out], axis=1)
    return MacroTensors(
        state=_f32(window),
        state_mask=torch.from_numpy(window_mask),
        profile=_f32(profile),
        side_mask=torch.from_numpy(_matrix(df["goal_mask"], 4).astype(bool)),
        goal=_f32(_div(goal, scales)),
        world_id=_world_ids(df["world"]),
    ).validate(W=k + 1, F=cfg.state_dim, H=cfg.horizon_bins)


def micro_tensors_from_frame(
    micro: pl.DataFrame,
    macro: pl.DataFrame,
    config: L3Config | None = None,
    *,
    goals: pl.DataFrame | None = None,
    alpha_min: float = 0.05,
) -> MicroTensors:
    """:class:`MicroTensors` from the micro table, scaled with the macro table's n_lines and prices.

    The goal input is ``goals`` (:func:`hrl.train.goals.l2_goal_frame`: L2's goal for the day,
    from the start-of-day state, as in play) or, without it, the rows' own ``goal_*`` columns
    (self-play rows carry the goal the agent played with; expert rows carry none). Labels are the
    expert's action projected into L1's box (:func:`project_expert_actions`), as fractions.
    Histories longer than ``config.max_history`` keep their most recent offers. Raises
    ConfigError when columns are missing, a decision has no macro row or goal, or a baseline is
    null.
    """
    cfg = config or L3Config()
    _require(micro, MICRO_COLUMNS, "micro")
    _require(micro, MICRO_L1_COLUMNS, "micro")
    _require(macro, ["world", "agent", "day", "n_lines", "trading_price_in", "trading_price_out"], "macro")
    scales = macro.select(
        "world", pl.col("agent").alias("actor"), "day", "n_lines", "trading_price_in", "trading_price_out"
    ).unique(["world", "actor", "day"], keep="first")
    df = micro.join(scales, on=["world", "actor", "day"], how="left", maintain_order="left")
    if df["n_lines"].null_count():
        raise ConfigError(
            f"micro: {df['n_lines'].null_count()} decisions have no macro row (world, actor, day)"
        )
    baseline_cols = ["baseline_quantity", "baseline_delivery_day", "baseline_unit_price"]
    nulls = sum(df[c].null_count() for c in baseline_cols)
    if nulls:
        raise ConfigError(
            f"micro: {nulls} null baseline cells; L3 needs the L1 baseline (rebuild with hrl build)"
        )
    seller = df["actor_is_seller"].to_numpy().astype(bool)
    lines = df["n_lines"].to_numpy().astype(np.float64)
    tp = np.where(seller, df["trading_price_out"].to_numpy(), df["trading_price_in"].to_numpy()).astype(
        np.float64
    )
    day = df["day"].to_numpy().astype(np.int64)
    history, history_mask, last_by_self = _histories(df, lines, tp, day, seller, cfg.max_history)
    proj = _project(df, cfg.n_days, alpha_min)
    bq, bd, bp = (df[c].to_numpy().astype(np.float64) for c in baseline_cols)
    has_partner_offer = history_mask.any(1) & ~last_by_self
    kind_mask = np.stack(
        [has_partner_offer & proj.accept_safe, np.ones(len(df), bool), np.ones(len(df), bool)], 1
    )
    group = df.select(pl.struct("world", "actor", "day", "round").rank("dense")).to_series().to_numpy() - 1
    box = np.stack([lines, tp, proj.q_lo, proj.p_lo, proj.p_hi], 1)
    return MicroTensors(
        history=_f32(history),
        history_mask=torch.from_numpy(history_mask),
        goal=_f32(_goal_inputs(df, goals, lines)),
        baseline=_f32(np.stack([_div(bq, lines), (bd - day) / HORIZON, _div(bp, tp)], axis=1)),
        context=_f32(
            np.stack(
                [df["relative_time"].to_numpy(), df["relative_round"].to_numpy(), seller.astype(float)], 1
            )
        ),
        caps=_f32(_div(proj.caps, lines[:, None])),
        prices=_f32(np.stack([_div(proj.p_lo, tp), _div(proj.p_hi, tp)], 1)),
        day_mask=torch.from_numpy(proj.day_mask),
        kind_mask=torch.from_numpy(kind_mask),
        kind=torch.from_numpy(proj.kind),
        delivery=torch.from_numpy(proj.offset),
        fraction=_f32(proj.fraction),
        fraction_mask=torch.from_numpy(proj.fraction_mask),
        alpha=_f32(proj.alpha),
        offer=_f32(proj.offer),
        box=_f32(box),
        baseline_kind=torch.from_numpy(_kind_codes(df["baseline_kind"], "baseline_kind")),
        world_id=_world_ids(df["world"]),
        group_id=torch.from_numpy(group.astype(np.int64)),
    ).validate(E=cfg.context_dim, D=cfg.n_days)


def _goal_inputs(
    df: pl.DataFrame, goals: pl.DataFrame | None, lines: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``[N, 4]`` normalised goal per row: from ``goals`` (L2's) or the rows' ``goal_*`` columns."""
    if goals is not None:
        _require(goals, ["world", "agent", "day", "goal"], "goals")
        joined = df.select("world", "actor", "day").join(
            goals.select("world", pl.col("agent").alias("actor"), "day", "goal"),
            on=["world", "actor", "day"],
            how="left",
            maintain_order="left",
        )
        if joined["goal"].null_count():
            raise ConfigError(
                f"goals: {joined['goal'].null_count()} decisions have no goal (world, actor, day)"
            )
        return _matrix(joined["goal"], 4)
    names = [f"goal_{g}" for g in ("q_buy", "p_buy", "q_sell", "p_sell")]
    missing = sum(df[c].null_count() for c in names)
    if missing:
        raise ConfigError(
            f"micro: {missing} null goal cells (expert rows carry no goal: the day's signed contracts "
            "would leak the outcome); pass goals=hrl.train.goals.l2_goal_frame(l2, macro)"
        )
    raw = np.stack([df[c].to_numpy() for c in names], 1)
    tp_in, tp_out = df["trading_price_in"].to_numpy(), df["trading_price_out"].to_numpy()
    return _div(raw, np.stack([lines, tp_in, lines, tp_out], axis=1))


class Projection(NamedTuple):
    """The experts' actions projected into L1's box (units: quantities, money, offsets).

    ``kind`` (accept 0, counter 1, end 2) and ``offset`` int64 ``[N]``; ``offer [N, 3]`` the
    projected (q, offset, p) (accept: the partner's offer; end: zeros); ``fraction [N, 2]`` and
    ``fraction_mask [N, 2]`` (:func:`hrl.models.box.encode`); ``alpha [N]`` the teacher's share
    weight; ``caps [N, D]``, ``day_mask [N, D]``, ``q_lo``, ``p_lo``, ``p_hi``, ``accept_safe``
    from L1; ``raw [N, 3]`` the expert's own (q, offset, p) and ``raw_kind [N]``.
    """

    kind: NDArray[np.int64]
    offset: NDArray[np.int64]
    offer: NDArray[np.float64]
    fraction: NDArray[np.float64]
    fraction_mask: NDArray[np.bool_]
    alpha: NDArray[np.float64]
    caps: NDArray[np.float64]
    day_mask: NDArray[np.bool_]
    q_lo: NDArray[np.float64]
    p_lo: NDArray[np.float64]
    p_hi: NDArray[np.float64]
    accept_safe: NDArray[np.bool_]
    raw: NDArray[np.float64]
    raw_kind: NDArray[np.int64]


def _kind_codes(kinds: pl.Series, name: str) -> NDArray[np.int64]:
    """int64 ``[N]`` L3 kind codes (accept 0, counter 1, end 2) of a ``propose/accept/end`` column."""
    values = kinds.cast(pl.String).to_numpy()
    unknown = set(values) - set(_KIND_CODES)
    if unknown:
        raise ConfigError(f"micro: unknown {name} values {sorted(unknown)}")
    return np.array([_KIND_CODES[k] for k in values], dtype=np.int64)


def _nearest_allowed(offset: NDArray[np.int64], mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Per row, the allowed offset nearest to ``offset`` (the later one on ties, as L1's
    ``clip_nearest_day``); -1 where none is allowed."""
    d = mask.shape[1]
    dist = np.abs(np.arange(d)[None, :] - offset[:, None]) * 2 - (np.arange(d)[None, :] > offset[:, None])
    dist = np.where(mask, dist, np.iinfo(np.int64).max)
    best = dist.argmin(1)
    return np.where(mask.any(1), best, -1).astype(np.int64)


def _project(df: pl.DataFrame, n_days: int, alpha_min: float) -> Projection:
    """L1's projection of each expert action (see :func:`project_expert_actions`)."""
    n = df.height
    day = df["day"].to_numpy().astype(np.int64)
    side = df["actor_is_seller"].to_numpy().astype(np.int64)
    raw_kind = _kind_codes(df["action_kind"], "action_kind")
    aq, ad, ap = (
        df[c].fill_null(0).to_numpy().astype(np.float64)
        for c in ("action_quantity", "action_delivery_day", "action_unit_price")
    )
    raw = np.stack([aq, ad - day, ap], 1) * (raw_kind != END)[:, None]
    mask = _matrix(df["l1_day_mask"], n_days).astype(bool)
    caps = _matrix(df["l1_caps"], n_days)
    safe = df["l1_accept_safe"].to_numpy().astype(bool)
    q_lo = np.maximum(df["l1_q_min"].to_numpy().astype(np.float64), 1.0)
    p_lo, p_hi = df["l1_p_min"].to_numpy().astype(np.float64), df["l1_p_max"].to_numpy().astype(np.float64)
    kind = raw_kind.copy()
    kind[(raw_kind == ACCEPT) & ~safe] = COUNTER  # L1 turns an unsafe acceptance into a counter-offer
    wanted = np.clip(raw[:, 1], 0, n_days - 1).astype(np.int64)
    offset = np.where(kind == COUNTER, _nearest_allowed(wanted, mask), np.where(kind == ACCEPT, wanted, 0))
    kind[(kind == COUNTER) & (offset < 0)] = END  # no allowed day: L1 drops it
    offset = np.where(kind == END, 0, np.maximum(offset, 0))
    counter, accept = kind == COUNTER, kind == ACCEPT
    rows = np.arange(n)
    day_cap = caps[rows, offset]
    group = df.select(pl.struct("world", "actor", "day", "round").rank("dense")).to_series().to_numpy()
    accepted = np.where(accept, raw[:, 0], 0.0)
    # the teacher's share weights: the expert's quantities (clipped to the day's room) relative to
    # the largest on the same side and day of the round
    room = np.maximum(day_cap - _group_sum(group, side, offset, accepted), 0.0)
    q_want = np.clip(raw[:, 0], q_lo, np.maximum(room, q_lo))
    peak = _group_max(group, side, offset, np.where(counter, q_want, 0.0))
    alpha = np.where(counter, np.clip(_div(q_want, peak), alpha_min, 1.0), 1.0)
    cap = thread_caps(group, side, offset, counter, alpha, day_cap, accepted, q_lo)
    kind[counter & (cap < q_lo)] = END  # no room left on that day: nothing safe to offer (as in play)
    counter = kind == COUNTER
    price = np.clip(raw[:, 2], p_lo, np.maximum(p_hi, p_lo))
    quantity = np.clip(raw[:, 0], q_lo, np.maximum(cap, q_lo))
    fraction, fmask = encode(quantity, price, cap, q_lo, p_lo, p_hi)
    offer = np.where(
        counter[:, None],
        np.stack([quantity, offset, price], 1),
        np.where(accept[:, None], raw, 0.0),
    )
    return Projection(
        kind=kind,
        offset=np.where(kind == COUNTER, offset, 0).astype(np.int64),
        offer=offer,
        fraction=fraction * counter[:, None],
        fraction_mask=fmask & counter[:, None],
        alpha=alpha,
        caps=caps,
        day_mask=mask,
        q_lo=q_lo,
        p_lo=p_lo,
        p_hi=p_hi,
        accept_safe=safe,
        raw=raw,
        raw_kind=raw_kind,
    )


def _group_key(group: NDArray[Any], side: NDArray[Any], offset: NDArray[Any]) -> NDArray[np.int64]:
    _, key = np.unique(np.stack([group, side, offset], 1), axis=0, return_inverse=True)
    return key.reshape(-1).astype(np.int64)


def _group_sum(
    group: NDArray[Any], side: NDArray[Any], offset: NDArray[Any], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    if len(x) == 0:
        return x
    key = _group_key(group, side, offset)
    out: NDArray[np.float64] = np.bincount(key, weights=x).astype(np.float64)[key]
    return out


def _group_max(
    group: NDArray[Any], side: NDArray[Any], offset: NDArray[Any], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    if len(x) == 0:
        return x
    key = _group_key(group, side, offset)
    out = np.zeros(key.max() + 1)
    np.maximum.at(out, key, x)
    return out[key]


def project_expert_actions(micro: pl.DataFrame, macro: pl.DataFrame, n_days: int = 11) -> dict[str, float]:
    """How far L1's projection moves the experts' actions (the BC labels): shares of decisions
    whose kind changes (unsafe accept -> counter, counter -> end), whose delivery day moves, whose
    quantity or price changes, and the mean absolute change of quantity (/ n_lines) and price
    (/ trading price) over counter-offers kept as counter-offers."""
    _require(micro, MICRO_L1_COLUMNS, "micro")
    df = micro.join(
        macro.select(
            "world", pl.col("agent").alias("actor"), "day", "n_lines", "trading_price_in", "trading_price_out"
        ).unique(["world", "actor", "day"], keep="first"),
        on=["world", "actor", "day"],
        how="left",
        maintain_order="left",
    )
    pr = _project(df, n_days, 0.05)
    seller = df["actor_is_seller"].to_numpy().astype(bool)
    lines = df["n_lines"].to_numpy().astype(np.float64)
    tp = np.where(seller, df["trading_price_out"].to_numpy(), df["trading_price_in"].to_numpy()).astype(float)
    both = (pr.raw_kind == COUNTER) & (pr.kind == COUNTER)
    dq = np.abs(pr.offer[:, 0] - pr.raw[:, 0])
    dp = np.abs(pr.offer[:, 2] - pr.raw[:, 2])
    moved = pr.offer[:, 1] != np.clip(pr.raw[:, 1], 0, n_days - 1)

    def share(x: NDArray[np.bool_], over: NDArray[np.bool_]) -> float:
        return float(x[over].mean()) if over.any() else float("nan")

    return {
        "n": float(len(df)),
        "n_counter": float((pr.raw_kind == COUNTER).sum()),
        "n_accept": float((pr.raw_kind == ACCEPT).sum()),
        "accept_to_counter": share(pr.kind == COUNTER, pr.raw_kind == ACCEPT),
        "counter_to_end": share(pr.kind == END, pr.raw_kind == COUNTER),
        "day_moved": share(moved, both),
        "quantity_changed": share(dq > 0, both),
        "price_changed": share(dp > 0, both),
        "quantity_mae": float(_div(dq, lines)[both].mean()) if both.any() else float("nan"),
        "price_mae": float(_div(dp, tp)[both].mean()) if both.any() else float("nan"),
    }


def _histories(
    df: pl.DataFrame,
    lines: NDArray[np.float64],
    tp: NDArray[np.float64],
    day: NDArray[np.int64],
    seller: NDArray[np.bool_],
    max_history: int,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Right-padded ``[N, T, OFFER_DIM]`` histories, their mask, and whether each row's last
    offer was the actor's own."""
    n = df.height
    items = (
        df.select(pl.int_range(pl.len()).alias("row"), "history")
        .explode("history")
        .drop_nulls("history")
        .unnest("history")
    )
    if items.height == 0:
        return np.zeros((n, 0, 5)), np.zeros((n, 0), bool), np.zeros(n, bool)
    row = items["row"].to_numpy()
    counts = np.bincount(row, minlength=n)
    pos = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    drop = np.maximum(counts - max_history, 0)[row]
    keep = pos >= drop
    row, slot = row[keep], (pos - drop)[keep]
    width = int(min(counts.max(), max_history))
    q = items["quantity"].to_numpy().astype(np.float64)[keep]
    d = items["delivery_day"].to_numpy().astype(np.float64)[keep]
    p = items["unit_price"].to_numpy().astype(np.float64)[keep]
    r = items["round"].to_numpy().astype(np.float64)[keep]
    by_self = items["proposer_is_seller"].to_numpy().astype(bool)[keep] == seller[row]
    history = np.zeros((n, width, 5))
    history[row, slot] = np.stack(
        [_div(q, lines[row]), (d - day[row]) / HORIZON, _div(p, tp[row]), r / MAX_ROUNDS, by_self], axis=1
    )
    mask = np.zeros((n, width), bool)
    mask[row, slot] = True
    lengths = mask.sum(1)
    last_by_self = np.zeros(n, bool)
    has = lengths > 0
    last_by_self[has] = history[has, lengths[has] - 1, 4] > 0.5
    return history, mask, last_by_self


def thread_tensors_from_micro(micro: MicroTensors) -> ThreadTensors:
    """:class:`ThreadTensors` for L4 from L3's samples, with the cap-sharing teacher.

    One row per ``group_id`` (an agent's concurrent decisions in one round of one day); its threads
    are the group's decisions (features: :func:`hrl.models.l4.thread_features`). Target: on
    counter-offer threads, the teacher's share weight ``micro.alpha`` (the projected expert
    quantity over the largest one on the same side and day of the round, at least ``alpha_min``):
    with these weights :func:`hrl.models.box.thread_caps` gives each thread room for the expert's
    quantity, and L3's quantity labels are fractions of exactly those caps. Accept/end threads
    have no target (``target_mask`` False) but are still attended to.
    """
    groups, inverse = torch.unique(micro.group_id, return_inverse=True)
    g = len(groups)
    order = torch.argsort(inverse, stable=True)
    sorted_groups = inverse[order]
    counts = torch.bincount(inverse, minlength=g)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(order)) - starts[sorted_groups]
    k = int(counts.max()) if g else 0
    feats = thread_features(micro.goal, micro.baseline, micro.context, micro.history, micro.history_mask)
    threads = feats.new_zeros(g, k, feats.shape[-1])
    threads[sorted_groups, slot] = feats[order]
    thread_mask = torch.zeros(g, k, dtype=torch.bool)
    thread_mask[sorted_groups, slot] = True
    counter = micro.kind == COUNTER
    target = torch.ones(g, k)
    target[sorted_groups, slot] = micro.alpha[order]
    target_mask = torch.zeros(g, k, dtype=torch.bool)
    target_mask[sorted_groups, slot] = counter[order]
    world = torch.zeros(g, dtype=torch.int64)
    world[inverse] = micro.world_id
    return ThreadTensors(threads, thread_mask, target, target_mask, world).validate()
