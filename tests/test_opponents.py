"""The Standard-track opponents import with scml-agents installed without its declared
dependencies, and all of them play one tiny real SCML 2025 Standard world without an exception."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest

from hrl.data.collect import split_agents
from hrl.errors import ConfigError
from hrl.opponents import (
    BUILTINS,
    FINALISTS_2024,
    FINALISTS_2025,
    PENGUIN,
    QUALIFIED_2025,
    agent_name,
    load_agent_class,
    split_agent_spec,
)
from hrl.worlds import WorldSpec, build_world, run_world

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


def test_an_agent_spec_carries_constructor_keyword_arguments() -> None:
    spec = 'hrl.agent.l1.LitaAgentL1{"baseline_options": {"productivity": 0.9}}'
    assert split_agent_spec(spec) == ("hrl.agent.l1.LitaAgentL1", {"baseline_options": {"productivity": 0.9}})
    assert split_agent_spec(PENGUIN) == (PENGUIN, {})
    assert agent_name(spec) == "LitaAgentL1"
    assert load_agent_class(spec).__name__ == "LitaAgentL1"


@pytest.mark.parametrize(("spec", "message"), [("a.b.C{nope}", "not JSON"), ("a.b.C{}x", "not JSON")])
def test_bad_agent_spec_arguments_are_config_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        split_agent_spec(spec)


def test_agent_spec_arguments_reach_the_agent_and_leave_the_world_as_it_was() -> None:
    """The variant plays with its knob; a spec whose knob equals the default plays the default's
    world exactly (the keyword arguments change the agent, not the generated world)."""
    plain = "hrl.agent.l1.LitaAgentL1"
    same = 'hrl.agent.l1.LitaAgentL1{"baseline_options": {"stock_target": 1.0}}'
    other = 'hrl.agent.l1.LitaAgentL1{"baseline_options": {"productivity": 0.9, "today_share": 0.5}}'
    results = {}
    for name, seat in (("plain", plain), ("same", same), ("other", other)):
        world = build_world(WorldSpec(agents=(seat, PENGUIN, *BUILTINS), n_steps=8, seed=13, name=name))
        l1 = next(
            a._obj for a in world.agents.values() if type(getattr(a, "_obj", None)).__name__ == "LitaAgentL1"
        )
        results[name] = (l1.baseline.productivity, l1.baseline.today_share, l1.baseline.stock_target)
        while world.step():
            pass
        results[name] += (tuple(sorted(world.scores().items())),)
    assert results["plain"][:3] == (0.7, 0.7, 1.0)
    assert results["other"][:3] == (0.9, 0.5, 1.0)
    assert results["same"] == results["plain"]


def test_agent_lists_split_on_commas_outside_a_specs_arguments() -> None:
    spec = 'hrl.agent.l1.LitaAgentL1{"baseline_options": {"productivity": 0.9, "today_share": 0.5}}'
    assert split_agents(f"{PENGUIN}, {spec},{BUILTINS[0]}") == (PENGUIN, spec, BUILTINS[0])
    assert split_agents(" a.B ,, c.D ") == ("a.B", "c.D")
