"""Evaluation: official scoring, confidence intervals, tournaments, seat-swap comparisons, reports."""

from hrl.evaluate.compare import CompareConfig, ComparisonResult, plan_comparison, run_comparison
from hrl.evaluate.paired import PairedComparison, paired_comparison
from hrl.evaluate.scoring import AgentSummary, LevelSummary, official_score, summarise_worlds
from hrl.evaluate.stats import bootstrap_ci
from hrl.evaluate.tournament import EvaluateConfig, EvaluationResult, plan_evaluation, run_evaluation

__all__ = [
    "AgentSummary",
    "CompareConfig",
    "ComparisonResult",
    "EvaluateConfig",
    "EvaluationResult",
    "LevelSummary",
    "PairedComparison",
    "bootstrap_ci",
    "official_score",
    "paired_comparison",
    "plan_comparison",
    "plan_evaluation",
    "run_comparison",
    "run_evaluation",
    "summarise_worlds",
]
