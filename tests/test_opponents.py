"""The Standard-track opponents import with scml-agents installed without its declared
dependencies, and all of them play one tiny real SCML 2025 Standard world without an exception."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest

from hrl.errors import ConfigError
from hrl.opponents import BUILTINS, FINALISTS_2024, FINALISTS_2025, PENGUIN, QUALIFIED_2025, load_agent_class
from hrl.worlds import WorldSpec, run_world

ALL_OPPONENTS = (*FINALISTS_2024, *FINALISTS_2025, *QUALIFIED_2025, *BUILTINS)
HEAVY_DECLARED_DEPENDENCIES = ("tensorflow", "xgboost", "stable_baselines3")


@pytest.mark.parametrize("path", ALL_OPPONENTS)
def test_each_opponent_imports_as_a_std_agent(path: str) -> None:
    cls = load_agent_class(path)
    assert cls.__name__ == path.rpartition(".")[2]


def test_scml_agents_declared_ml_dependencies_are_not_needed() -> None:
    for path in ALL_OPPONENTS:
        load_agent_class(path)
    for name in HEAVY_DECLARED_DEPENDENCIES:
        assert name not in sys.modules, f"{name} was imported by an opponent"
        assert importlib.util.find_spec(name) is None, f"{name} is installed; the test would prove nothing"


def test_all_opponents_play_one_tiny_standard_world() -> None:
    spec = WorldSpec(agents=ALL_OPPONENTS, n_steps=4, n_processes=2, seed=7, name="opponents")
    result = run_world(spec)
    assert result.n_exceptions == 0
    assert result.n_contracts_signed > 0
    assert sorted(result.agent_types.values()) == sorted(ALL_OPPONENTS)
    assert all(math.isfinite(score) for score in result.scores.values())
    assert len(result.scores_by_type()["PenguinAgent"]) == 1


def test_same_seed_gives_the_same_world() -> None:
    spec = WorldSpec(agents=(PENGUIN, *BUILTINS), n_steps=3, seed=11)
    assert run_world(spec).scores == run_world(spec).scores


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("NoDots", "import path"),
        ("scml.std.agents.nothere.Agent", "cannot import"),
        ("scml.std.agents.greedy.NotAClass", "not an SCML agent"),
        ("hrl.errors.HrlError", "not an SCML agent"),
    ],
)
def test_bad_agent_paths_are_config_errors(path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_agent_class(path)


def test_world_spec_rejects_impossible_worlds() -> None:
    with pytest.raises(ConfigError, match="n_processes"):
        WorldSpec(agents=BUILTINS, n_processes=1)
    with pytest.raises(ConfigError, match="one per level"):
        WorldSpec(agents=BUILTINS[:1], n_processes=2)
