"""Evaluation: official scoring, confidence intervals, tournaments and reports."""

from hrl.evaluate.scoring import AgentSummary, official_score, summarise_worlds
from hrl.evaluate.stats import bootstrap_ci
from hrl.evaluate.tournament import EvaluateConfig, EvaluationResult, plan_evaluation, run_evaluation

__all__ = [
    "AgentSummary",
    "EvaluateConfig",
    "EvaluationResult",
    "bootstrap_ci",
    "official_score",
    "plan_evaluation",
    "run_evaluation",
    "summarise_worlds",
]
