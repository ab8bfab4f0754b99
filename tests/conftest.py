"""Shared fixtures: tiny real collections (real SCML worlds, real negmas logs) in both formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrl.data.collect import CollectConfig, collect_worlds
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN

TINY_AGENTS = (PENGUIN, FINALISTS_2025[0], *BUILTINS)


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
