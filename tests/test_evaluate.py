"""Evaluation tournaments: planning (configurations x rotations), a tiny real run, report, resume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hrl.cli import main
from hrl.errors import ConfigError
from hrl.evaluate import EvaluateConfig, plan_evaluation, run_evaluation
from hrl.evaluate.report import write_report
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN

OURS = "hrl.agent.l1.LitaAgentL1"


def tiny_config(**overrides: object) -> EvaluateConfig:
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


def test_plans_rotate_competitors_over_the_same_world() -> None:
    config = tiny_config(n_configs=3, n_rotations=3, agents_per_level=(2, 4))
    plans = plan_evaluation(config)
    assert [p.name for p in plans][:4] == ["c000r00", "c000r01", "c000r02", "c001r00"]
    for c in range(3):
        rotations = plans[3 * c : 3 * c + 3]
        assert len({(p.seed, p.n_steps, p.n_levels, p.agent_processes) for p in rotations}) == 1
        slots_of_ours = {p.agents.index(OURS) for p in rotations}
        assert len(slots_of_ours) == 3  # every rotation moves our agent to another factory
        for plan in rotations:
            counts = Counter(plan.agents)
            assert all(counts[a] == 1 for a in config.competitors)
            assert set(plan.agents) - set(config.competitors) <= set(BUILTINS)
            assert set(plan.agent_processes) == set(range(plan.n_levels))
    assert plan_evaluation(config) == plans  # reproducible


def test_config_rejects_impossible_tournaments() -> None:
    with pytest.raises(ConfigError, match="cannot hold"):
        tiny_config(opponents=(PENGUIN, *FINALISTS_2025), agents_per_level=(1, 2))
    with pytest.raises(ConfigError, match="n_rotations"):
        tiny_config(n_rotations=4)
    with pytest.raises(ConfigError, match="twice"):
        tiny_config(opponents=(PENGUIN, OURS))


def test_tiny_real_evaluation_report_and_resume(tmp_path: Path) -> None:
    config = tiny_config()
    result = run_evaluation(config, tmp_path, progress=False)
    assert not result.failed and result.n_exceptions == 0
    assert len(result.worlds) == 4
    ranked = {s.agent for s in result.summaries}
    assert ranked == {"LitaAgentL1", "PenguinAgent", "PriceTrendStdAgent"}
    assert sorted(s.rank for s in result.summaries) == [1, 2, 3]
    for s in result.summaries:
        assert s.n_worlds == 4 and s.ci_low <= s.mean <= s.ci_high
        assert result.agents[s.agent]["seconds_per_day"] > 0
    stored = json.loads((tmp_path / "evaluation.json").read_text())
    assert stored["status"] == "done" and len(stored["summaries"]) == 3

    report = write_report(result, ours=config.agents)
    text = report.read_text()
    assert "LitaAgentL1 **(ours)**" in text and "PenguinAgent" in text
    for plot in ("scores.png", "trajectory.png"):
        assert (tmp_path / plot).stat().st_size > 1000

    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("c*/world.json")}
    again = run_evaluation(config, tmp_path, progress=False)  # resume: nothing left to run
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("c*/world.json")} == mtimes
    assert [s.official for s in again.summaries] == [s.official for s in result.summaries]
    with pytest.raises(ConfigError, match="different config"):
        run_evaluation(tiny_config(seed=6), tmp_path, progress=False)

    code = main(
        [
            "evaluate",
            "--agent",
            OURS,
            "--opponents",
            ",".join(config.opponents),
            "--configs",
            "2",
            "--rotations",
            "2",
            "--n-steps",
            "5,6",
            "--levels",
            "2",
            "--agents-per-level",
            "2,3",
            "--workers",
            "2",
            "--seed",
            "5",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
