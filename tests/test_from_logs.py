"""L1 states rebuilt from real logs equal the live agent's, and the audit built on them.

A tiny real world runs in this process with three recording ``LitaAgentL1`` (it keeps the state
``state_from_awi`` gave it at every call); the same world's negmas logs are then parsed and every
recorded state is rebuilt from them and compared field by field.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from negmas.situated.save import save_stats

from conftest import tiny_config
from hrl.agent.l1 import LitaAgentL1
from hrl.cli import main
from hrl.data import load_logs
from hrl.data.collect import OFFICIAL_GENERATE_KWARGS, collect_worlds
from hrl.data.logs import LogTables
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN
from hrl.safety import VIOLATION_KINDS
from hrl.safety.audit import audit_logs
from hrl.safety.from_logs import LogSafety, call_of_slot
from hrl.worlds import WorldSpec, build_world

L1 = "hrl.agent.l1.LitaAgentL1"


def run_logged(out: Path, seed: int, n_processes: int, storage_format: str) -> list[LitaAgentL1]:
    """A real world with recording LitaAgentL1s whose logs are saved as ``hrl collect`` saves them."""
    agents = (L1, PENGUIN, L1, *BUILTINS, L1, FINALISTS_2025[0])
    spec = WorldSpec(
        agents=agents,
        n_steps=10,
        n_processes=n_processes,
        seed=seed,
        name="w",
        world_kwargs={"log_folder": str(out), "storage_format": storage_format},
        generate_kwargs=OFFICIAL_GENERATE_KWARGS,
    )
    world = build_world(spec)
    recorders = [a._obj for a in world.agents.values() if isinstance(getattr(a, "_obj", None), LitaAgentL1)]
    for agent in recorders:
        agent.record = True
    while world.step():
        pass
    world._save_extra()
    save_stats(world, str(out), storage_format=storage_format)
    return recorders


@pytest.fixture(
    scope="module", params=[(3, 2, "csv"), (7, 3, "parquet")], ids=["2-levels-csv", "3-levels-parquet"]
)
def logged(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[LitaAgentL1], LogTables]:
    seed, levels, fmt = request.param
    out = tmp_path_factory.mktemp("l1logs") / "w"
    agents = run_logged(out, seed, levels, fmt)
    return agents, load_logs(out)


def call_index(call: str, steps: dict[str, int]) -> int:
    """The call of a recorded round (0 = first proposals, 2r + 1 = round r's responses)."""
    if call == "first_proposals":
        return 0
    assert len(set(steps.values())) == 1, steps  # one call answers one round
    return 2 * next(iter(steps.values())) + 1


def test_rebuilt_states_equal_the_live_agents_states(logged: tuple[list[LitaAgentL1], LogTables]) -> None:
    agents, tables = logged
    safety = LogSafety(tables)
    world = tables.worlds["world"][0]
    compared = Counter[str]()
    for agent in agents:
        assert agent.errors == []
        assert len(agent.round_steps) == len(agent.rounds)
        for (call, masked, _), steps in zip(agent.rounds, agent.round_steps, strict=True):
            live = masked.state
            rebuilt = safety.state(world, agent.id, live.current_step, call_index(call, steps))
            for name in live.__dataclass_fields__:
                assert getattr(rebuilt, name) == pytest.approx(getattr(live, name), rel=1e-12, abs=1e-9), (
                    agent.id,
                    live.current_step,
                    call,
                    name,
                )
            compared[call] += 1
    assert compared["first_proposals"] >= 10 and compared["counter_all"] >= 10, compared
    assert safety.report["unplaced_contracts"] == 0


def test_rebuilt_states_see_the_days_contracts_as_the_agent_did(
    logged: tuple[list[LitaAgentL1], LogTables],
) -> None:
    """Contracts signed during a day change the state between calls, and the rebuild follows."""
    agents, tables = logged
    safety = LogSafety(tables)
    world = tables.worlds["world"][0]
    changed = 0
    for agent in agents:
        first: dict[int, Any] = {}
        for (call, masked, _), _steps in zip(agent.rounds, agent.round_steps, strict=True):
            day = masked.state.current_step
            if call == "first_proposals":
                first[day] = masked.state
            elif day in first and masked.state != first[day]:
                changed += 1
        for day in first:
            assert safety.state(world, agent.id, day, 0) == first[day]
    assert changed > 0, "no call saw a contract signed earlier the same day: the test lost its teeth"


def test_rebuilt_open_offers_are_what_the_agent_reserved_minus_undelivered(
    logged: tuple[list[LitaAgentL1], LogTables],
) -> None:
    """Logs hold only delivered offers; the agent also reserves offers negmas never delivered."""
    agents, tables = logged
    safety = LogSafety(tables)
    world = tables.worlds["world"][0]
    equal = 0
    for agent in agents:
        for (call, masked, _), steps in zip(agent.rounds, agent.round_steps, strict=True):
            rebuilt = Counter(
                safety.open_offers(world, agent.id, masked.state.current_step, call_index(call, steps))
            )
            recorded = Counter(masked.open_offers)
            assert not rebuilt - recorded, (agent.id, masked.state.current_step, call, rebuilt, recorded)
            equal += rebuilt == recorded
    assert equal > 0


def test_the_agents_logged_actions_pass_the_audit(logged: tuple[list[LitaAgentL1], LogTables]) -> None:
    agents, tables = logged
    report = audit_logs(tables)
    ids = {a.id for a in agents}
    l1 = [c for (_, agent), c in report.by_agent.items() if agent in ids]
    assert len(l1) == 3
    assert sum(c["n_checked"] for c in l1) > 20
    assert sum(c["n_unsafe"] for c in l1) == 0


def test_the_audit_catches_an_unsafe_action_in_real_logs(logged: tuple[list[LitaAgentL1], LogTables]) -> None:
    """Blow up one of LitaAgentL1's logged proposals to 1000 units: the audit must flag it."""
    agents, tables = logged
    ids = [a.id for a in agents]
    offers = tables.offers.with_row_index("row")
    target = offers.filter(pl.col("proposer").is_in(ids) & pl.col("quantity").is_not_null())["row"][0]
    tampered = offers.with_columns(
        pl.when(pl.col("row") == target).then(1000).otherwise(pl.col("quantity")).alias("quantity")
    ).drop("row")
    proposer = offers.filter(pl.col("row") == target)["proposer"][0]
    report = audit_logs(LogTables(**{**tables.__dict__, "offers": tampered}))
    flagged = next(c for (_, a), c in report.by_agent.items() if a == proposer)
    assert flagged["n_unsafe"] >= 1
    assert flagged["quantity_out_of_range"] >= 1


def test_call_of_slot() -> None:
    assert [call_of_slot(j) for j in range(7)] == [0, 1, 3, 3, 5, 5, 7]


@pytest.fixture(scope="module")
def l1_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collect") / "l1"
    config = tiny_config("parquet", n_worlds=1, agents=(L1, PENGUIN, *BUILTINS), n_steps=(8, 8), seed=11)
    manifest = collect_worlds(config, out, progress=False)
    assert manifest["summary"]["done"] == 1
    return out


def test_hrl_audit_reports_every_agent_and_zero_for_lita_agent_l1(
    l1_collection: Path, tmp_path: Path
) -> None:
    out = tmp_path / "audit.json"
    assert main(["audit", str(l1_collection), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    tables = load_logs(l1_collection)
    assert report["n_worlds"] == 1
    assert {r["agent"] for r in report["by_agent"]} == set(tables.agents["agent"].to_list())
    for row in report["by_agent"]:
        assert row["n_decisions"] == row["n_proposals"] + row["n_accepts"] + row["n_ends"]
        assert row["n_checked"] == row["n_proposals"] + row["n_accepts"]
        assert 0 <= row["n_unsafe"] <= row["n_checked"]
        assert row["unsafe_proposals"] + row["unsafe_accepts"] == row["n_unsafe"]
        assert all(0 <= row[k] <= row["n_unsafe"] for k in VIOLATION_KINDS)
    by_type = report["by_type"]
    assert {"LitaAgentL1", "PenguinAgent"} <= set(by_type)
    assert by_type["LitaAgentL1"]["n_checked"] > 0
    assert by_type["LitaAgentL1"]["n_unsafe"] == 0
    assert by_type["PenguinAgent"]["n_checked"] > 0
    for t in by_type.values():
        assert 0.0 <= t["rate"] <= 1.0


@pytest.mark.parametrize("module", ["hrl.safety.from_logs", "hrl.safety.replay", "hrl.data.datasets"])
def test_the_log_modules_import_first_in_a_fresh_interpreter(module: str) -> None:
    """No import cycle between hrl.data and hrl.safety.from_logs, whichever is imported first."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
