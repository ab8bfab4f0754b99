"""L1's stock model against the simulator: in real worlds (2 and 3 levels), for every agent-day,
the model's production, shortfall and end-of-day input stock equal the world's own stats.

If a future scml uses input stock up, the persistent model stops matching and this test fails;
the same data also shows that the consumed-stock model would *not* match scml 0.8.4, so the test
can tell the two apart."""

from __future__ import annotations

import pytest
import scml

from hrl.errors import InvalidArgumentError, ShapeError
from hrl.opponents import BUILTINS, PENGUIN
from hrl.safety import CONSUMED, PERSISTENT
from hrl.safety.world_model import (
    VERIFIED_SCML_VERSIONS,
    StockGuard,
    agent_days,
    expected_exogenous_supplies,
    installed_stock_model,
    model_mismatches,
    simulate_stock,
)
from hrl.worlds import WorldSpec, build_world

L1 = "hrl.agent.l1.LitaAgentL1"
AS0 = "scml_agents.scml2025.standard.team_atsunaga.as0.AS0"


@pytest.fixture(scope="module")
def played() -> list[dict[str, int]]:
    rows = []
    for levels, agents, seed in (
        (2, (PENGUIN, L1, AS0, *BUILTINS, PENGUIN, L1), 5),
        (3, (PENGUIN, L1, *BUILTINS, AS0, PENGUIN, L1, *BUILTINS), 6),
    ):
        world = build_world(WorldSpec(agents=agents, n_steps=25, n_processes=levels, seed=seed))
        while world.step():
            pass
        rows += agent_days(world)
    return rows


def test_persistent_model_matches_every_agent_day(played: list[dict[str, int]]) -> None:
    assert scml.__version__ in VERIFIED_SCML_VERSIONS
    assert len(played) > 300
    assert all(r["output_stock"] == 0 for r in played)  # output never piles up (module docs)
    bad = model_mismatches(played, PERSISTENT)
    assert bad == [], f"{len(bad)} of {len(played)} agent-days differ from the model, e.g. {bad[:3]}"


def test_the_data_tells_the_models_apart(played: list[dict[str, int]]) -> None:
    # Production drew on stock (more produced than arrived) on many days: a consumed-stock world
    # would have lowered the stock there, and the consumed model misses the world's stats.
    assert sum(r["production"] > r["arrivals"] for r in played) > 20
    assert len(model_mismatches(played, CONSUMED)) > 20


def test_version_check_and_guard() -> None:
    assert installed_stock_model() == PERSISTENT
    assert installed_stock_model("0.9.0") == CONSUMED
    guard = StockGuard(PERSISTENT)
    assert [guard.observe(s) for s in (0, 4, 4, 7)] == [PERSISTENT] * 4
    assert guard.observe(6) == CONSUMED
    assert guard.observe(9) == CONSUMED  # it never switches back


def test_expected_exogenous_supply() -> None:
    assert expected_exogenous_supplies([], 3) == (0, 0, 0)
    assert expected_exogenous_supplies([9, 2, 7, 8, 6, 5, 6], 4) == (0, 5, 5, 5)
    assert expected_exogenous_supplies([9, 8], 2, limit=3) == (0, 3)
    with pytest.raises(Exception, match="window"):
        expected_exogenous_supplies([1], 0)


def test_simulate_stock_bad_input_is_typed() -> None:
    with pytest.raises(InvalidArgumentError, match="stock"):
        simulate_stock(PERSISTENT, -1, [0], [0], 3)
    with pytest.raises(ShapeError, match="due"):
        simulate_stock(PERSISTENT, 0, [0, 1], [0], 3)
    with pytest.raises(InvalidArgumentError, match="model"):
        simulate_stock(5, 0, [0], [0], 3)
