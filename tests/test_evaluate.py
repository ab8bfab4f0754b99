"""Evaluation tournaments: planning (configurations x rotations), a tiny real run, report, resume,
results by position."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import OURS
from conftest import tiny_evaluate_config as tiny_config
from hrl.cli import main
from hrl.errors import ConfigError
from hrl.evaluate import EvaluateConfig, EvaluationResult, plan_evaluation, run_evaluation
from hrl.evaluate.report import training_curves, write_report
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN
from hrl.worlds import LEVEL_LABELS


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


def test_tiny_real_evaluation_report_and_resume(
    tiny_evaluation: tuple[EvaluateConfig, EvaluationResult],
) -> None:
    config, result = tiny_evaluation
    tmp_path = Path(result.out_dir)
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
    assert "## By position" in text

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


def test_evaluation_reports_every_agent_by_position(
    tiny_evaluation: tuple[EvaluateConfig, EvaluationResult],
) -> None:
    _, result = tiny_evaluation
    for world in result.worlds:  # two levels: every factory is on the first or the last one
        assert world["n_levels"] == 2 and set(world["levels"].values()) == {0, 1}
        for kind, scores in world["scores"].items():
            by_position = world["scores_by_level"][kind]
            assert set(by_position) <= {"first", "last"}
            assert sorted(x for values in by_position.values() for x in values) == sorted(scores)
    for s in result.summaries:
        levels = result.by_level[s.agent]
        assert set(levels) <= set(LEVEL_LABELS) and "middle" not in levels
        assert sum(level.n_scores for level in levels.values()) == s.n_scores
        for level in levels.values():
            assert level.ci_low <= level.mean <= level.ci_high
        everything = [x for w in result.worlds for x in w["scores"].get(s.agent, [])]
        pooled = sum(level.mean * level.n_scores for level in levels.values()) / s.n_scores
        assert pooled == pytest.approx(sum(everything) / len(everything))
    stored = json.loads((Path(result.out_dir) / "evaluation.json").read_text())
    assert set(stored["by_level"]) == set(result.by_level)


def test_training_curves_hold_bc_and_finetuning_monitoring(tmp_path: Path) -> None:
    """The report's training plot reads BC and fine-tuning event files alike and keeps the
    monitoring scalars (profit, breach rate, blow-ups, win rates, clip rate, reward terms)."""
    from torch.utils.tensorboard import SummaryWriter

    for folder, tags in {
        "pretrain/tensorboard/l3": ["train/loss", "val/loss"],
        "finetune/tensorboard": [
            "rollout/profit",
            "rollout/breach_rate",
            "rollout/inventory_blowups",
            "rollout/win_rate/PenguinAgent",
            "safety/clip_rate",
            "reward/l2/shortfall",
            "time/rollout_s",
            "rollout/level0",
        ],
    }.items():
        with SummaryWriter(str(tmp_path / folder)) as writer:
            for step in range(3):
                for i, tag in enumerate(tags):
                    writer.add_scalar(tag, float(step * i), step)
    curves = training_curves(tmp_path)
    assert set(curves) == {
        "pretrain/tensorboard/l3:train/loss",
        "pretrain/tensorboard/l3:val/loss",
        "finetune/tensorboard:rollout/profit",
        "finetune/tensorboard:rollout/breach_rate",
        "finetune/tensorboard:rollout/inventory_blowups",
        "finetune/tensorboard:rollout/win_rate/PenguinAgent",
        "finetune/tensorboard:safety/clip_rate",
        "finetune/tensorboard:reward/l2/shortfall",
    }
    assert curves["finetune/tensorboard:rollout/breach_rate"] == ([0, 1, 2], [0.0, 1.0, 2.0])
