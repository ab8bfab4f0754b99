"""Which experts behaviour cloning imitates: score-filtered cloning.

The collected experts are not equally good (in a typical collection the mean world score of one
finalist is 0.1 above another's, and every one of them loses money in some worlds), and cloning
all of them imitates their average. :func:`select_experts` keeps, per world, only the agents
whose final score (final balance / initial balance, as the official score, read from the macro
table's last day) is at least ``min_score``, in both tables: L2 clones the goals of those agents'
days, L3/L4 their decisions.

:func:`expert_scores` gives the per agent-world scores themselves, with the agent's type and
level (for reports).
"""

from __future__ import annotations

import polars as pl

from hrl.errors import ConfigError

__all__ = ["expert_scores", "select_experts"]


def expert_scores(macro: pl.DataFrame) -> pl.DataFrame:
    """One row per (world, agent): ``agent_type``, ``level``, ``score`` (the last day's balance
    over the initial balance)."""
    missing = {"world", "agent", "agent_type", "level", "day", "balance", "initial_balance"} - set(
        macro.columns
    )
    if missing:
        raise ConfigError(f"macro table lacks {sorted(missing)}")
    return (
        macro.sort("day")
        .group_by(["world", "agent"], maintain_order=True)
        .agg(
            pl.col("agent_type").first(),
            pl.col("level").first(),
            (pl.col("balance").last() / pl.col("initial_balance").first()).alias("score"),
        )
        .sort(["world", "agent"])
    )


def select_experts(
    macro: pl.DataFrame, micro: pl.DataFrame | None, min_score: float
) -> tuple[pl.DataFrame, pl.DataFrame | None, dict[str, object]]:
    """``macro`` and ``micro`` restricted to the agent-worlds scoring at least ``min_score``.

    Returns the two tables and a summary: agent-worlds kept and dropped, and per agent type how
    many it kept (and their mean score). Raises :class:`~hrl.errors.ConfigError` when nothing is
    left, or ``min_score`` is not finite.
    """
    if not min_score == min_score or min_score in (float("inf"), float("-inf")):
        raise ConfigError(f"min_expert_score must be finite, got {min_score}")
    scores = expert_scores(macro)
    kept = scores.filter(pl.col("score") >= min_score)
    if kept.is_empty():
        best = scores["score"].to_numpy().max(initial=float("nan"))
        raise ConfigError(
            f"min_expert_score={min_score}: no agent-world scores that high "
            f"(best {best:.3f} over {len(scores)} agent-worlds)"
        )
    keys = kept.select("world", "agent")
    macro_kept = macro.join(keys, on=["world", "agent"], how="semi")
    micro_kept = (
        None
        if micro is None
        else micro.join(keys.rename({"agent": "actor"}), on=["world", "actor"], how="semi")
    )
    by_type = (
        kept.group_by("agent_type")
        .agg(pl.len().alias("kept"), pl.col("score").mean().alias("mean_score"))
        .sort("agent_type")
    )
    summary: dict[str, object] = {
        "min_score": min_score,
        "agent_worlds": len(scores),
        "kept": len(kept),
        "by_type": {
            r["agent_type"]: {"kept": r["kept"], "mean_score": r["mean_score"]}
            for r in by_type.iter_rows(named=True)
        },
        "macro_rows": len(macro_kept),
        "micro_rows": None if micro_kept is None else len(micro_kept),
    }
    return macro_kept, micro_kept, summary
