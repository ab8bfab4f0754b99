"""Column schemas of the training samples (``macro.parquet``, ``micro.parquet``).

Bump :data:`SCHEMA_VERSION` whenever a column is added, removed, renamed or changes meaning;
every sample table carries it in a ``schema_version`` column and in ``build.json``.

Version history:
    1: first version. Micro ``baseline_*`` and ``residual_*`` columns exist but are null: the L1
       baseline (issue 4) is not wired in yet.
    2: micro rows carry the L1 baseline action of the decision (``baseline_kind``,
       ``baseline_quantity/delivery_day/unit_price``, never null), the residual label
       ``residual_* = action_* - baseline_*`` (null for ``end`` actions) and L1's bounds
       (``l1_day_mask``, ``l1_q_min/max``, ``l1_p_min/max``), all from the safety state rebuilt from
       the logs before the decision (``hrl.safety.from_logs``, ``hrl.safety.replay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from hrl.errors import ConfigError
from hrl.features import GOAL_FIELDS, HORIZON_BINS, MACRO_FEATURES

__all__ = [
    "MACRO_SCHEMA",
    "MICRO_SCHEMA",
    "SCHEMA_VERSION",
    "MacroSample",
    "MicroSample",
    "check_schema",
    "check_version",
]

SCHEMA_VERSION = 4
"""3: the micro ``l1_*`` columns follow L1 v2 (persistent-stock caps, exposure, moved offers).
4: micro rows carry L1's box (``l1_caps`` per delivery offset, ``l1_accept_safe``); expert rows
carry no goal (``goal_*`` null: the day's signed contracts include the outcome being labelled;
L3's goal comes from L2, :func:`hrl.train.goals.l2_goal_frame`)."""

HISTORY_ITEM = pl.Struct(
    {
        "seq": pl.Int32,
        "round": pl.Int32,
        "proposer_is_seller": pl.Boolean,
        "quantity": pl.Int64,
        "delivery_day": pl.Int64,
        "unit_price": pl.Float64,
    }
)
"""One earlier offer of the negotiation (``by_self`` = ``proposer_is_seller == actor_is_seller``)."""

MACRO_SCHEMA: dict[str, Any] = {
    "schema_version": pl.Int32,
    "world": pl.String,
    "agent": pl.String,
    "agent_type": pl.String,
    "day": pl.Int64,
    "n_steps": pl.Int64,
    "level": pl.Int64,
    "n_levels": pl.Int64,
    "n_lines": pl.Int64,
    "initial_balance": pl.Float64,
    "balance": pl.Float64,
    "inventory_input": pl.Float64,
    "inventory_output": pl.Float64,
    "trading_price_in": pl.Float64,
    "trading_price_out": pl.Float64,
    "exogenous_in_quantity": pl.Float64,
    "exogenous_in_price": pl.Float64,
    "exogenous_out_quantity": pl.Float64,
    "exogenous_out_price": pl.Float64,
    "committed_supplies": pl.Array(pl.Float64, HORIZON_BINS),
    "committed_sales": pl.Array(pl.Float64, HORIZON_BINS),
    "state_macro": pl.Array(pl.Float32, len(MACRO_FEATURES)),
    "goal": pl.Array(pl.Float32, len(GOAL_FIELDS)),
    "goal_mask": pl.Array(pl.Boolean, len(GOAL_FIELDS)),
    **{f"goal_{name}": pl.Float64 for name in GOAL_FIELDS},
    "can_buy": pl.Boolean,
    "can_sell": pl.Boolean,
}
"""``macro.parquet``: one row per (world, agent, day). Raw state columns are in units/money as
logged; ``state_macro`` is :func:`hrl.features.macro_features` of them (names in
``hrl.features.MACRO_FEATURES``). ``goal`` = [Q_buy, P_buy, Q_sell, P_sell] of the contracts
the agent signed that day; ``goal_mask`` marks the components the agent can trade."""

MICRO_SCHEMA: dict[str, Any] = {
    "schema_version": pl.Int32,
    "world": pl.String,
    "negotiation_id": pl.String,
    "day": pl.Int64,
    "n_steps": pl.Int64,
    "relative_time": pl.Float64,
    "actor": pl.String,
    "actor_type": pl.String,
    "partner": pl.String,
    "actor_is_seller": pl.Boolean,
    "decision_seq": pl.Int32,
    "round": pl.Int32,
    "relative_round": pl.Float64,
    "history": pl.List(HISTORY_ITEM),
    "history_len": pl.Int32,
    **{f"goal_{name}": pl.Float64 for name in GOAL_FIELDS},
    "action_kind": pl.Enum(["propose", "accept", "end"]),
    "action_quantity": pl.Int64,
    "action_delivery_day": pl.Int64,
    "action_unit_price": pl.Float64,
    "baseline_kind": pl.Enum(["propose", "accept", "end"]),
    "baseline_quantity": pl.Float64,
    "baseline_delivery_day": pl.Float64,
    "baseline_unit_price": pl.Float64,
    "residual_quantity": pl.Float64,
    "residual_delivery_day": pl.Float64,
    "residual_unit_price": pl.Float64,
    "l1_day_mask": pl.Array(pl.Boolean, HORIZON_BINS),
    "l1_caps": pl.Array(pl.Float64, HORIZON_BINS),
    "l1_accept_safe": pl.Boolean,
    "l1_q_min": pl.Float64,
    "l1_q_max": pl.Float64,
    "l1_p_min": pl.Float64,
    "l1_p_max": pl.Float64,
}
"""``micro.parquet``: one row per decision of an expert: its proposals (each counter-offer, which
also rejects the offer before it), acceptances and ends. ``history`` holds the negotiation's
offers *strictly before* the decision (``seq < decision_seq``).

L1 columns (version 2; units as logged: quantities in units, unit prices in money, delivery days
absolute): ``baseline_kind`` is what the L1 baseline (Penguin-style baseline + L1 mask, on the state
rebuilt from the logs, seeing only what the expert had seen before its call) does towards this
partner: ``propose`` (baseline_* = its masked offer), ``accept`` (baseline_* = the partner's offer,
safe), or ``end`` (baseline_* = the placeholder ``(0, day, best safe price)``). ``residual_*`` =
``action_* - baseline_*`` (null for ``end`` actions). ``l1_day_mask[k]``: delivery day ``day + k``
has a safe quantity on the actor's side; ``l1_q_min/max`` the safe quantity range over those days
(0, 0 when none; buying counts cash at the lowest safe price); ``l1_p_min/max`` the safe unit-price
interval (``p_min > p_max`` when there is none). Version 4: ``l1_caps[k]`` the largest safe
quantity on offset ``k`` (0 where not allowed; buying at ``p_min``), ``l1_accept_safe`` whether L1
finds the partner's offer that the decision answers safe to accept (False without one; see
:func:`hrl.safety.replay.accept_safety`). ``goal_*``: the goal the actor had set for the day
(self-play rows: L2's), null for expert rows (their goal is not observed; the day's signed
contracts would leak the outcome of the labelled negotiation)."""


@dataclass(frozen=True)
class MacroSample:
    """One row of the macro table (the original design's name): ``(day, state_macro, goal)``."""

    day: int
    state_macro: list[float]
    goal: list[float]


@dataclass(frozen=True)
class MicroSample:
    """One row of the micro table: ``(negotiation_id, history, action, baseline)``."""

    negotiation_id: str
    history: list[dict[str, Any]]
    action: tuple[str, int | None, int | None, float | None]
    baseline: tuple[float | None, float | None, float | None]


def check_schema(frame: pl.DataFrame, schema: dict[str, Any], name: str) -> pl.DataFrame:
    """Select ``schema``'s columns in order, checking names and dtypes; raises ConfigError."""
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ConfigError(f"{name}: missing columns {missing}")
    wrong = {c: (str(frame.schema[c]), str(t)) for c, t in schema.items() if frame.schema[c] != t}
    if wrong:
        raise ConfigError(f"{name}: wrong dtypes (got, expected) {wrong}")
    return frame.select(list(schema))


def check_version(frame: pl.DataFrame, path: str) -> pl.DataFrame:
    """``frame`` if its ``schema_version`` column is :data:`SCHEMA_VERSION`; raises ConfigError
    naming ``path`` for samples built by another version (their L1 columns follow other rules)."""
    if "schema_version" not in frame.columns:
        raise ConfigError(f"{path}: no schema_version column; rebuild the samples with `hrl build`")
    found = sorted({int(v) for v in frame["schema_version"].unique().to_list()})
    if found and found != [SCHEMA_VERSION]:
        raise ConfigError(
            f"{path}: samples of schema version {found}, this hrl reads version {SCHEMA_VERSION}; "
            "rebuild them with `hrl build`"
        )
    return frame
