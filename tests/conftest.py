"""Shared fixtures: tiny real collections (real SCML worlds, real negmas logs) in both formats, and
one tiny real evaluation tournament."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrl.data.collect import CollectConfig, collect_worlds
from hrl.evaluate import EvaluateConfig, EvaluationResult, run_evaluation
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN

TINY_AGENTS = (PENGUIN, FINALISTS_2025[0], *BUILTINS)
OURS = "hrl.agent.l1.LitaAgentL1"


def tiny_config(storage_format: str, **overrides: object) -> CollectConfig:
    fields: dict[str, object] = {
        "n_worlds": 2,
        "agents": TINY_AGENTS,
        "n_steps": (6, 8),
        "n_levels": (2, 2),
        "agents_per_level": (3, 3),
        "seed": 5,
        "storage_format": storage_format,
        "n_workers": 2,
        "world_timeout_s": 300.0,
    }
    fields.update(overrides)
    return CollectConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def parquet_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collect") / "parquet"
    collect_worlds(tiny_config("parquet"), out, progress=False)
    return out


@pytest.fixture(scope="session")
def csv_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collect") / "csv"
    collect_worlds(tiny_config("csv"), out, progress=False)
    return out


def tiny_evaluate_config(**overrides: object) -> EvaluateConfig:
    fields: dict[str, object] = {
        "agents": (OURS,),
        "opponents": (PENGUIN, FINALISTS_2025[3]),
        "n_configs": 2,
        "n_rotations": 2,
        "n_steps": (5, 6),
        "n_levels": (2, 2),
        "agents_per_level": (2, 3),
        "n_workers": 2,
        "seed": 5,
    }
    return EvaluateConfig(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_evaluation(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvaluateConfig, EvaluationResult]:
    """A finished 4-world evaluation (2 configurations x 2 rotations, 5-6 days, 2 levels)."""
    config = tiny_evaluate_config()
    return config, run_evaluation(config, tmp_path_factory.mktemp("evaluate"), progress=False)
