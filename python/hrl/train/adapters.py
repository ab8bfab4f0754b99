"""Adapters: the data pipeline's tables (polars) -> the trainers' tensors (:mod:`hrl.train.datasets`).

The columns each adapter reads are listed in ONE place, :data:`MACRO_COLUMNS` and
:data:`MICRO_COLUMNS` (names follow ``hrl.data.schema`` version 1; docs/models.md repeats them).
Units after adaptation: quantities / ``n_lines``; unit prices / the trading price of the product
(``trading_price_in`` for buying, ``trading_price_out`` for selling, from the macro row of the
same world, agent and day); delivery days as offsets from today (``/ HORIZON`` as features);
rounds / ``MAX_ROUNDS``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch
from numpy.typing import NDArray

from hrl.config import L2Config, L3Config
from hrl.errors import ConfigError
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
    "baseline_quantity": "L1 baseline offer's quantity (required, non-null)",
    "baseline_delivery_day": "L1 baseline offer's delivery day, absolute (required, non-null)",
    "baseline_unit_price": "L1 baseline offer's unit price (required, non-null)",
}
"""Columns :func:`micro_tensors_from_frame` reads from ``micro.parquet`` (plus ``n_lines`` and the
trading prices joined from the macro table on world, actor = agent, day)."""

MICRO_L1_COLUMNS: dict[str, str] = {
    "l1_day_mask": "List/Array[Boolean, n_days]: delivery offsets L1 allows (default: all)",
    "l1_q_min": "L1's smallest safe quantity (default 1)",
    "l1_q_max": "L1's largest safe quantity (default 3 * n_lines, the issue's upper bound)",
    "l1_p_min": "L1's lowest safe unit price (default max(1, int(0.9 tp)))",
    "l1_p_max": "L1's highest safe unit price (default int(1.1 tp))",
}
"""Optional micro columns from the L1 layer; missing ones fall back to the game's issue ranges."""

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
    micro: pl.DataFrame, macro: pl.DataFrame, config: L3Config | None = None
) -> MicroTensors:
    """:class:`MicroTensors` from the micro table, scaled with the macro table's n_lines and prices.

    Histories longer than ``config.max_history`` keep their most recent offers. Raises
    ConfigError when columns are missing, a decision has no macro row, or a baseline is null.
    """
    cfg = config or L3Config()
    _require(micro, MICRO_COLUMNS, "micro")
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
            f"micro: {nulls} null baseline cells; the L3 residual needs the L1 baseline "
            "(schema version 1 leaves baseline_* null until the L1 layer is wired in)"
        )
    n = df.height
    seller = df["actor_is_seller"].to_numpy().astype(bool)
    lines = df["n_lines"].to_numpy().astype(np.float64)
    tp = np.where(seller, df["trading_price_out"].to_numpy(), df["trading_price_in"].to_numpy()).astype(
        np.float64
    )
    day = df["day"].to_numpy().astype(np.int64)
    history, history_mask, last_by_self = _histories(df, lines, tp, day, seller, cfg.max_history)

    kinds = df["action_kind"].cast(pl.String).to_numpy()
    unknown = set(kinds) - set(_KIND_CODES)
    if unknown:
        raise ConfigError(f"micro: unknown action_kind values {sorted(unknown)}")
    kind = np.array([_KIND_CODES[k] for k in kinds], dtype=np.int64)
    counter = kind == COUNTER
    bq, bd, bp = (df[c].to_numpy().astype(np.float64) for c in baseline_cols)
    aq, ad, ap = (
        df[c].fill_null(0).to_numpy().astype(np.float64)
        for c in ("action_quantity", "action_delivery_day", "action_unit_price")
    )
    residual = np.stack([_div(aq - bq, lines), _div(ap - bp, tp)], axis=1) * counter[:, None]
    label_day = np.where(counter, np.clip(ad - day, 0, cfg.n_days - 1), 0).astype(np.int64)

    if "l1_day_mask" in df.columns:
        day_mask = _matrix(df["l1_day_mask"], cfg.n_days).astype(bool)
    else:
        day_mask = np.ones((n, cfg.n_days), dtype=bool)
    default_bounds = {
        "l1_q_min": np.ones(n),
        "l1_q_max": 3.0 * lines,
        "l1_p_min": np.maximum(1.0, np.floor(0.9 * tp)),
        "l1_p_max": np.floor(1.1 * tp),
    }
    raw_bounds = [
        df[c].to_numpy().astype(np.float64) if c in df.columns else default
        for c, default in default_bounds.items()
    ]
    bounds = np.stack(
        [
            _div(raw_bounds[0], lines),
            _div(raw_bounds[1], lines),
            _div(raw_bounds[2], tp),
            _div(raw_bounds[3], tp),
        ],
        axis=1,
    )
    has_partner_offer = history_mask.any(1) & ~last_by_self
    kind_mask = np.stack([has_partner_offer, np.ones(n, bool), np.ones(n, bool)], axis=1)
    goal_raw = np.stack(
        [df[f"goal_{g}"].fill_null(0).to_numpy() for g in ("q_buy", "p_buy", "q_sell", "p_sell")], 1
    )
    tp_in, tp_out = df["trading_price_in"].to_numpy(), df["trading_price_out"].to_numpy()
    goal = _div(goal_raw, np.stack([lines, tp_in, lines, tp_out], axis=1))
    group = df.select(pl.struct("world", "actor", "day", "round").rank("dense")).to_series().to_numpy() - 1
    return MicroTensors(
        history=_f32(history),
        history_mask=torch.from_numpy(history_mask),
        goal=_f32(goal),
        baseline=_f32(np.stack([_div(bq, lines), (bd - day) / HORIZON, _div(bp, tp)], axis=1)),
        context=_f32(
            np.stack(
                [df["relative_time"].to_numpy(), df["relative_round"].to_numpy(), seller.astype(float)], 1
            )
        ),
        day_mask=torch.from_numpy(day_mask),
        kind_mask=torch.from_numpy(kind_mask),
        bounds=_f32(bounds),
        kind=torch.from_numpy(kind),
        day=torch.from_numpy(label_day),
        residual=_f32(residual),
        world_id=_world_ids(df["world"]),
        group_id=torch.from_numpy(group.astype(np.int64)),
    ).validate(E=cfg.context_dim, D=cfg.n_days)


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


def thread_tensors_from_micro(micro: MicroTensors, alpha_min: float = 0.05) -> ThreadTensors:
    """:class:`ThreadTensors` for L4 from L3's samples, with the residual-magnitude teacher.

    One row per ``group_id`` (an agent's concurrent decisions in one round of one day); its threads
    are the group's decisions (features: :func:`hrl.models.l4.thread_features`). Target: on
    counter-offer threads, ``alpha_k = alpha_min + (1 - alpha_min) * r_k / max_j r_j`` with
    ``r_k = |dq_k| + |dp_k|`` the expert's normalised residual over the L1 baseline: the thread
    where the expert departs furthest from the safe baseline gets alpha 1, one where it follows
    the baseline gets ``alpha_min`` (all ``alpha_min`` when no thread departs). Accept/end threads
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
    magnitude = torch.where(counter, micro.residual.abs().sum(-1), torch.zeros(len(micro)))
    mag = torch.zeros(g, k)
    mag[sorted_groups, slot] = magnitude[order]
    target_mask = torch.zeros(g, k, dtype=torch.bool)
    target_mask[sorted_groups, slot] = counter[order]
    peak = mag.amax(1, keepdim=True)
    share = torch.where(peak > 0, mag / peak.clamp(min=1e-12), torch.zeros_like(mag))
    target = torch.where(target_mask, alpha_min + (1 - alpha_min) * share, torch.full_like(mag, alpha_min))
    world = torch.zeros(g, dtype=torch.int64)
    world[inverse] = micro.world_id
    return ThreadTensors(threads, thread_mask, target, target_mask, world).validate()
