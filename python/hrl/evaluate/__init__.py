"""Evaluation: official scoring, confidence intervals, tournaments and reports."""

from hrl.evaluate.scoring import AgentSummary, official_score, summarise_worlds
from hrl.evaluate.stats import bootstrap_ci

__all__ = ["AgentSummary", "bootstrap_ci", "official_score", "summarise_worlds"]
