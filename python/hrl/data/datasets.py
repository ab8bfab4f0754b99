"""Training samples from parsed logs: macro (one per agent-day) and micro (one per expert decision).

Macro state at the start of day ``t`` uses only what the agent knew then: balance and inventories
after day ``t - 1`` (day 0: the initial balance and empty inventories), trading prices after day
``t - 1`` (day 0: the catalog prices from ``info.json``, which is what the AWI reports before the
first trade; day 0's own logged price only when the catalog is missing), today's exogenous
contracts, and negotiated contracts signed *before* ``t`` that deliver on ``t .. t + 10``. The
feature vector is :func:`hrl.features.macro_features` of those numbers, the same function the live
agent calls.

Goal label g_t = [Q_buy, P_buy, Q_sell, P_sell]: the negotiated (non-exogenous) contracts the
agent signed on day ``t`` (``signed_at == t``): total quantity bought and sold, and their
volume-weighted unit prices (0 when nothing was traded). ``goal_mask`` is False for the sides an
agent cannot negotiate: first-level agents buy only exogenously, last-level agents sell only
exogenously. :func:`label_sparsity` reports how often the tradeable components are zero.

Micro samples: one per decision of an expert agent (by class name or import path): each offer it
made (a counter-offer also rejects the offer before it), each acceptance and each end. The
decision ``k`` of a negotiation sees ``history`` = the offers with ``seq < k`` only. Each row also
carries the L1 baseline action for that decision and L1's bounds (:func:`hrl.safety.replay.
micro_l1_columns`): :class:`~hrl.safety.baseline.PenguinStyleBaseline` plus the L1 mask, run on the
safety state rebuilt from the logs (:mod:`hrl.safety.from_logs`) with only what the expert had seen
before its call; ``residual_*`` = action - baseline; ``l1_caps`` / ``l1_accept_safe`` give L1's box.
Expert rows carry no goal (``goal_*`` null): the day's signed contracts, which the macro goal
label sums, include the outcome of the negotiation being labelled. L3 is trained on the goal L2
sets from the start-of-day state (:func:`hrl.train.goals.l2_goal_frame`), as in play.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hrl.data.collect import OFFICIAL_GENERATE_KWARGS
from hrl.data.logs import LogTables, load_logs
from hrl.data.schema import MACRO_SCHEMA, MICRO_SCHEMA, SCHEMA_VERSION, check_schema
from hrl.features import GOAL_FIELDS, HORIZON_BINS, macro_features
from hrl.io import atomic_write_json
from hrl.opponents import FINALISTS_2025, PENGUIN, agent_name
from hrl.safety.replay import micro_l1_columns

__all__ = [
    "DEFAULT_EXPERTS",
    "build_macro_dataset",
    "build_micro_dataset",
    "label_sparsity",
    "write_datasets",
]

DEFAULT_EXPERTS = tuple(agent_name(p) for p in (PENGUIN, *FINALISTS_2025[:3]))
"""PenguinAgent (2024 winner) and the three SCML 2025 Standard winners."""

MAX_ROUNDS = int(OFFICIAL_GENERATE_KWARGS["neg_n_steps"])

Logs = LogTables | str | os.PathLike[str]


def _tables(logs: Logs, skip_bad_rows: bool = False) -> LogTables:
    return logs if isinstance(logs, LogTables) else load_logs(logs, skip_bad_rows=skip_bad_rows)


def _side_totals(contracts: pl.DataFrame, agent_col: str, prefix: str, day_col: str) -> pl.DataFrame:
    """Quantity sum and volume-weighted unit price per (world, agent, day)."""
    return contracts.group_by("world", pl.col(agent_col).alias("agent"), pl.col(day_col).alias("day")).agg(
        pl.col("quantity").sum().cast(pl.Float64).alias(f"{prefix}_quantity"),
        ((pl.col("quantity") * pl.col("unit_price")).sum() / pl.col("quantity").sum()).alias(
            f"{prefix}_price"
        ),
    )


def build_macro_dataset(logs: Logs, *, skip_bad_rows: bool = False) -> pl.DataFrame:
    """One row per (world, agent, day): macro state, goal label and masks (see module docstring).

    Args:
        logs: :class:`LogTables` or a path for :func:`hrl.data.load_logs`.
        skip_bad_rows: passed to the loader when ``logs`` is a path.

    Returns:
        A DataFrame with the columns of :data:`hrl.data.schema.MACRO_SCHEMA` (``MacroSample`` rows:
        ``day``, ``state_macro``, ``goal`` plus identification and raw state columns).
    """
    t = _tables(logs, skip_bad_rows)
    agents = t.agents.select(
        "world",
        "agent",
        pl.col("short_type").alias("agent_type"),
        "level",
        "n_lines",
        "initial_balance",
        "is_first_level",
        "is_last_level",
        *(c for c in ("catalog_price_in", "catalog_price_out") if c in t.agents.columns),
    )
    days = t.agent_days
    grid_cols = set(agents.columns)
    previous = days.select(
        "world",
        "agent",
        (pl.col("day") + 1).alias("day"),
        "balance",
        pl.col("inventory_input").cast(pl.Float64),
        pl.col("inventory_output").cast(pl.Float64),
        "trading_price_in",
        "trading_price_out",
    )
    grid = (
        days.select(
            "world",
            "agent",
            "day",
            pl.col("trading_price_in").alias("tp_in0"),
            pl.col("trading_price_out").alias("tp_out0"),
        )
        .join(agents, on=["world", "agent"], how="inner")
        .join(t.worlds.select("world", "n_steps", "n_levels"), on="world", how="left")
        .join(previous, on=["world", "agent", "day"], how="left")
        .with_columns(
            pl.col("balance").fill_null(pl.col("initial_balance")),
            pl.col("inventory_input").fill_null(0.0),
            pl.col("inventory_output").fill_null(0.0),
            # day 0: the catalog prices (what the agent sees before any trade), else day 0's own
            pl.col("trading_price_in").fill_null(_first_present(grid_cols, "catalog_price_in", "tp_in0")),
            pl.col("trading_price_out").fill_null(_first_present(grid_cols, "catalog_price_out", "tp_out0")),
        )
        .drop("tp_in0", "tp_out0", *(c for c in ("catalog_price_in", "catalog_price_out") if c in grid_cols))
        .sort("world", "agent", "day")
    )
    contracts = t.contracts
    exo = contracts.filter(pl.col("exogenous"))
    negotiated = contracts.filter(~pl.col("exogenous"))
    for part in (
        _side_totals(exo.filter(pl.col("seller") == "SELLER"), "buyer", "exogenous_in", "delivery_day"),
        _side_totals(exo.filter(pl.col("buyer") == "BUYER"), "seller", "exogenous_out", "delivery_day"),
        _side_totals(negotiated, "buyer", "goal_buy", "signed_at"),
        _side_totals(negotiated, "seller", "goal_sell", "signed_at"),
    ):
        grid = grid.join(part, on=["world", "agent", "day"], how="left")
    grid = grid.with_columns(pl.col(pl.Float64).fill_null(0.0).fill_nan(0.0))
    supplies = _committed(grid, negotiated, "buyer")
    sales = _committed(grid, negotiated, "seller")
    grid = grid.with_columns(
        pl.Series("committed_supplies", supplies, dtype=pl.Array(pl.Float64, HORIZON_BINS)),
        pl.Series("committed_sales", sales, dtype=pl.Array(pl.Float64, HORIZON_BINS)),
    )
    state = macro_features(
        day=grid["day"].to_numpy(),
        n_steps=grid["n_steps"].to_numpy(),
        level=grid["level"].to_numpy(),
        n_levels=grid["n_levels"].to_numpy(),
        n_lines=grid["n_lines"].to_numpy(),
        balance=grid["balance"].to_numpy(),
        initial_balance=grid["initial_balance"].to_numpy(),
        inventory_input=grid["inventory_input"].to_numpy(),
        inventory_output=grid["inventory_output"].to_numpy(),
        trading_price_in=grid["trading_price_in"].to_numpy(),
        trading_price_out=grid["trading_price_out"].to_numpy(),
        exogenous_in_quantity=grid["exogenous_in_quantity"].to_numpy(),
        exogenous_in_price=grid["exogenous_in_price"].to_numpy(),
        exogenous_out_quantity=grid["exogenous_out_quantity"].to_numpy(),
        exogenous_out_price=grid["exogenous_out_price"].to_numpy(),
        committed_supplies=supplies,
        committed_sales=sales,
    )
    can_buy = ~grid["is_first_level"].to_numpy()
    can_sell = ~grid["is_last_level"].to_numpy()
    goal = np.stack(
        [
            grid[c].to_numpy()
            for c in ("goal_buy_quantity", "goal_buy_price", "goal_sell_quantity", "goal_sell_price")
        ],
        axis=1,
    )
    mask = np.stack([can_buy, can_buy, can_sell, can_sell], axis=1)
    grid = grid.with_columns(
        pl.lit(SCHEMA_VERSION, pl.Int32).alias("schema_version"),
        pl.Series("state_macro", state, dtype=pl.Array(pl.Float32, state.shape[1])),
        pl.Series("goal", goal.astype(np.float32), dtype=pl.Array(pl.Float32, len(GOAL_FIELDS))),
        pl.Series("goal_mask", mask, dtype=pl.Array(pl.Boolean, len(GOAL_FIELDS))),
        pl.col("goal_buy_quantity").alias("goal_q_buy"),
        pl.col("goal_buy_price").alias("goal_p_buy"),
        pl.col("goal_sell_quantity").alias("goal_q_sell"),
        pl.col("goal_sell_price").alias("goal_p_sell"),
        pl.Series("can_buy", can_buy),
        pl.Series("can_sell", can_sell),
    )
    return check_schema(grid, MACRO_SCHEMA, "macro")


def _first_present(columns: set[str], preferred: str, fallback: str) -> pl.Expr:
    """``preferred`` (where not null) else ``fallback``, when ``preferred`` is a column at all."""
    return pl.coalesce(preferred, fallback) if preferred in columns else pl.col(fallback)


def _committed(grid: pl.DataFrame, negotiated: pl.DataFrame, side: str) -> np.ndarray:
    """``[rows of grid, HORIZON_BINS]``: quantity signed before each day for delivery day + k."""
    out = np.zeros((grid.height, HORIZON_BINS), dtype=np.float64)
    if negotiated.height == 0 or grid.height == 0:
        return out
    spans = negotiated.select(
        "world",
        pl.col(side).alias("agent"),
        "quantity",
        "delivery_day",
        pl.int_ranges(
            pl.max_horizontal(pl.col("signed_at") + 1, pl.col("delivery_day") - HORIZON_BINS + 1),
            pl.col("delivery_day") + 1,
        ).alias("day"),
    ).explode("day")
    index = grid.select("world", "agent", "day").with_row_index("row")
    hits = spans.drop_nulls("day").join(index, on=["world", "agent", "day"], how="inner")
    rows = hits["row"].to_numpy().astype(np.int64)
    offsets = (hits["delivery_day"] - hits["day"]).to_numpy().astype(np.int64)
    np.add.at(out, (rows, offsets), hits["quantity"].to_numpy().astype(np.float64))
    return out


def build_micro_dataset(
    logs: Logs,
    *,
    experts: Sequence[str] | None = None,
    skip_bad_rows: bool = False,
    reference_replay: bool = False,
    timings: dict[str, float] | None = None,
) -> pl.DataFrame:
    """One row per decision of an expert (see module docstring).

    Args:
        logs: :class:`LogTables` or a path.
        experts: class names or import paths (default :data:`DEFAULT_EXPERTS`).
        skip_bad_rows: passed to the loader when ``logs`` is a path.
        reference_replay: fill the L1 columns with the Python replay (the oracle of the
            default batched Rust one; same rows, ~10x slower; see
            :func:`hrl.safety.replay.micro_l1_columns`).
        timings: if given, receives the seconds of the stages: ``micro_s`` (decisions and
            histories), ``l1_index_s`` (indexing the logs for the L1 states) and ``replay_s``
            (the L1 columns).

    Returns:
        A DataFrame with the columns of :data:`hrl.data.schema.MICRO_SCHEMA` (``MicroSample`` rows:
        ``negotiation_id``, ``history``, ``action_*``, ``baseline_*``).
    """
    t = _tables(logs, skip_bad_rows)
    started = time.perf_counter()
    wanted = list(experts) if experts is not None else list(DEFAULT_EXPERTS)
    expert_agents = t.agents.filter(pl.col("short_type").is_in(wanted) | pl.col("type").is_in(wanted)).select(
        "world", "agent", pl.col("short_type").alias("actor_type")
    )
    offers = t.offers
    proposals = offers.join(expert_agents, left_on=["world", "proposer"], right_on=["world", "agent"]).select(
        "world",
        "negotiation_id",
        "day",
        pl.col("proposer").alias("actor"),
        "actor_type",
        pl.col("receiver").alias("partner"),
        pl.col("proposer_is_seller").alias("actor_is_seller"),
        pl.col("seq").alias("decision_seq"),
        "round",
        pl.lit("propose").alias("action_kind"),
        pl.col("quantity").alias("action_quantity"),
        pl.col("delivery_day").alias("action_delivery_day"),
        pl.col("unit_price").alias("action_unit_price"),
    )
    answers = (
        offers.filter(pl.col("response").is_in(["accept", "end"]))
        .join(expert_agents, left_on=["world", "receiver"], right_on=["world", "agent"])
        .select(
            "world",
            "negotiation_id",
            "day",
            pl.col("receiver").alias("actor"),
            "actor_type",
            pl.col("proposer").alias("partner"),
            (~pl.col("proposer_is_seller")).alias("actor_is_seller"),
            (pl.col("seq") + 1).alias("decision_seq"),
            "round",
            pl.col("response").cast(pl.String).alias("action_kind"),
            *(
                pl.when(pl.col("response") == "accept").then(pl.col(c)).otherwise(None).alias(f"action_{c}")
                for c in ("quantity", "delivery_day", "unit_price")
            ),
        )
    )
    decisions = pl.concat([proposals, answers]).with_columns(pl.col("decision_seq").cast(pl.Int32))
    histories = offers.group_by("world", "negotiation_id", maintain_order=True).agg(
        pl.struct(
            pl.col("seq").cast(pl.Int32),
            pl.col("round").cast(pl.Int32),
            "proposer_is_seller",
            "quantity",
            "delivery_day",
            "unit_price",
        ).alias("all_offers")
    )
    micro = (
        decisions.join(histories, on=["world", "negotiation_id"], how="left")
        .with_columns(pl.col("all_offers").list.head(pl.col("decision_seq")).alias("history"))
        .drop("all_offers")
        .join(t.worlds.select("world", "n_steps"), on="world", how="left")
        .with_columns(
            # No goal for expert rows: the day's signed contracts include the outcome of the
            # labelled negotiation (leakage). L3's goal in training is L2's (hrl.train.goals).
            *(pl.lit(None, pl.Float64).alias(f"goal_{g}") for g in GOAL_FIELDS),
            pl.lit(SCHEMA_VERSION, pl.Int32).alias("schema_version"),
            (pl.col("day") / pl.col("n_steps")).alias("relative_time"),
            (pl.col("round") / MAX_ROUNDS).alias("relative_round"),
            pl.col("history").list.len().cast(pl.Int32).alias("history_len"),
            pl.col("action_kind").cast(pl.Enum(["propose", "accept", "end"])),
            pl.col("round").cast(pl.Int32),
        )
        .sort("world", "day", "negotiation_id", "decision_seq", "action_kind")
    )
    # The L1 baseline and bounds at each decision, from the state rebuilt from the logs (one
    # replay per call of the expert; see hrl.safety.replay).
    from hrl.safety.from_logs import LogSafety  # here: from_logs reads hrl.data's tables (a cycle)

    indexed = time.perf_counter()
    safety = LogSafety(t, agents=expert_agents.select("world", "agent").iter_rows())
    replayed = time.perf_counter()
    l1 = micro_l1_columns(micro, safety, n_days=HORIZON_BINS, reference=reference_replay)
    micro = pl.concat([micro, l1], how="horizontal")
    if timings is not None:
        timings.update(
            micro_s=indexed - started,
            l1_index_s=replayed - indexed,
            replay_s=time.perf_counter() - replayed,
        )
    return check_schema(micro, MICRO_SCHEMA, "micro")


def label_sparsity(macro: pl.DataFrame) -> dict[str, float]:
    """Share of zero goal components where the agent can trade (and share of all-zero goals)."""
    buy = macro.filter("can_buy")
    sell = macro.filter("can_sell")
    both = macro.filter(pl.col("can_buy") | pl.col("can_sell"))
    zero = (
        (~pl.col("can_buy") | (pl.col("goal_q_buy") == 0))
        & (~pl.col("can_sell") | (pl.col("goal_q_sell") == 0))
    ).mean()
    return {
        "q_buy_zero": float(np.mean(buy["goal_q_buy"].to_numpy() == 0)) if buy.height else float("nan"),
        "q_sell_zero": float(np.mean(sell["goal_q_sell"].to_numpy() == 0)) if sell.height else float("nan"),
        "all_zero": float(both.select(zero).item() or 0.0) if both.height else float("nan"),
    }


def write_datasets(
    logs: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    experts: Sequence[str] | None = None,
    skip_bad_rows: bool = False,
    reference_replay: bool = False,
) -> dict[str, Any]:
    """Parse ``logs``, build both tables and write ``macro.parquet``, ``micro.parquet`` and
    ``build.json`` (schema version, counts, label sparsity, parse report with the rows skipped
    by kind, in all and per file, seconds per stage) atomically to ``out``.
    ``reference_replay`` fills the L1 columns with the Python replay (see
    :func:`build_micro_dataset`). Returns the report."""
    start = time.perf_counter()
    tables = load_logs(logs, skip_bad_rows=skip_bad_rows)
    parsed_s = time.perf_counter() - start
    macro = build_macro_dataset(tables)
    stages = {"parse_s": parsed_s, "macro_s": time.perf_counter() - start - parsed_s}
    micro = build_micro_dataset(tables, experts=experts, reference_replay=reference_replay, timings=stages)
    writing = time.perf_counter()
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for name, frame in (("macro.parquet", macro), ("micro.parquet", micro)):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=target)
        os.close(fd)
        try:
            frame.write_parquet(tmp)
            os.replace(tmp, target / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    report = {
        "schema_version": SCHEMA_VERSION,
        "logs": str(logs),
        "experts": list(experts) if experts is not None else list(DEFAULT_EXPERTS),
        "n_worlds": tables.worlds.height,
        "n_negotiations": tables.negotiations.height,
        "n_offers": tables.offers.height,
        "macro_rows": macro.height,
        "micro_rows": micro.height,
        "micro_by_kind": {
            k: int(v) for k, v in micro["action_kind"].cast(pl.String).value_counts().iter_rows()
        },
        "label_sparsity": label_sparsity(macro),
        "parse": {k: tables.report[k] for k in ("n_bytes", "n_rows", "skipped", "skipped_by_kind")},
        "skipped_by_file": {
            f: r["skipped_by_kind"] for f, r in tables.report["files"].items() if r["skipped"]
        },
        "skipped_examples": [
            {"file": f, **e} for f, r in tables.report["files"].items() for e in r["skipped_examples"]
        ][:20],
        "parse_s": round(parsed_s, 3),
        "stages_s": {k: round(v, 3) for k, v in {**stages, "write_s": time.perf_counter() - writing}.items()},
        "total_s": round(time.perf_counter() - start, 3),
    }
    atomic_write_json(target / "build.json", json.loads(json.dumps(report, default=float)))
    return report
