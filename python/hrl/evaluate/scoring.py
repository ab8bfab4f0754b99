"""Official SCML Standard scoring over many worlds, and per-agent summaries.

An agent's score in one world is ``world.scores()[agent_id]``: its final balance relative to its
initial balance (leftover inventory is worth nothing), as scml's ``balance_calculator_std``
computes it. Across worlds, the official ranking metric is negmas' ``truncated_mean`` with its
defaults (Tukey fences with ``top_limit=2``: scores above ``Q3 + 2 * IQR`` are dropped, low scores
are all kept), as ``scml.utils.anac2024_std`` uses it. Every instance of an agent type counts as
one sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from negmas.helpers.numeric import truncated_mean

from hrl.errors import InvalidArgumentError
from hrl.evaluate.stats import bootstrap_ci

__all__ = ["AgentSummary", "LevelSummary", "official_score", "summarise_levels", "summarise_worlds"]


def official_score(scores: Sequence[float] | np.ndarray) -> float:
    """The official tournament metric (truncated mean, see the module docstring) of ``scores``."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise InvalidArgumentError("scores: need at least one score")
    return float(truncated_mean(values))


@dataclass(frozen=True)
class AgentSummary:
    """One agent type's results over a set of worlds.

    Attributes:
        agent: the agent type (class name or import path, as given).
        n_scores: number of scores (instances x worlds it played).
        n_worlds: number of worlds it played.
        official: the official metric (truncated mean).
        mean, median: plain mean and median of the scores.
        ci_low, ci_high: 95% percentile-bootstrap confidence interval of the mean.
        win_rate: fraction of its worlds in which it had the best score of all types present
            (ties share the win).
        rank: 1 = highest official score among the summarised types.
    """

    agent: str
    n_scores: int
    n_worlds: int
    official: float
    mean: float
    median: float
    ci_low: float
    ci_high: float
    win_rate: float
    rank: int


def summarise_worlds(worlds: Sequence[Mapping[str, Sequence[float]]], *, seed: int = 0) -> list[AgentSummary]:
    """Summaries per agent type, best official score first.

    Args:
        worlds: one mapping per world from agent type to the scores of its instances there
            (e.g. ``WorldResult.scores_by_type()``).
        seed: seeds the bootstrap.
    """
    if not worlds:
        raise InvalidArgumentError("worlds: need at least one world")
    scores: dict[str, list[float]] = {}
    wins: dict[str, float] = {}
    played: dict[str, int] = {}
    for world in worlds:
        best = {agent: max(values) for agent, values in world.items() if values}
        top = max(best.values())
        winners = [agent for agent, value in best.items() if value == top]
        for agent, values in world.items():
            scores.setdefault(agent, []).extend(values)
            played[agent] = played.get(agent, 0) + 1
            wins[agent] = wins.get(agent, 0.0) + (1.0 / len(winners) if agent in winners else 0.0)
    unranked = []
    for agent, values in scores.items():
        low, high = bootstrap_ci(values, seed=seed)
        unranked.append(
            (
                agent,
                len(values),
                played[agent],
                official_score(values),
                float(np.mean(values)),
                float(np.median(values)),
                low,
                high,
                wins[agent] / played[agent],
            )
        )
    unranked.sort(key=lambda row: -row[3])
    return [AgentSummary(*row, rank=i + 1) for i, row in enumerate(unranked)]


@dataclass(frozen=True)
class LevelSummary:
    """One agent type's scores on one position of the chain (first, middle or last level).

    Attributes:
        n_scores: scores on that position (instances x worlds).
        mean: their mean (score = final balance / initial balance).
        ci_low, ci_high: 95% percentile-bootstrap interval of the mean.
    """

    n_scores: int
    mean: float
    ci_low: float
    ci_high: float


def summarise_levels(
    scores: Mapping[str, Mapping[str, Sequence[float]]], *, seed: int = 0
) -> dict[str, dict[str, LevelSummary]]:
    """Per agent type and position (``first``/``middle``/``last``), the mean score and its CI.

    Args:
        scores: agent type -> position -> its scores there; positions without scores are left out.
        seed: seeds the bootstraps.
    """
    return {
        agent: {
            label: LevelSummary(len(values), float(np.mean(values)), *bootstrap_ci(values, seed=seed))
            for label, values in by_label.items()
            if values
        }
        for agent, by_label in scores.items()
    }
