"""Official scoring and confidence intervals, each checked against an independent computation.

A world's score is recomputed from what the world recorded, never from ``world.scores()`` (which
``scml.utils.balance_calculator_std`` itself calls): the last day's ``balance_<id>`` statistic
over the agent's initial balance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from hrl.errors import InvalidArgumentError, NonFiniteError
from hrl.evaluate import EvaluateConfig, EvaluationResult, bootstrap_ci, official_score, summarise_worlds
from hrl.evaluate.compare import CompareConfig, plan_comparison, play_seat
from hrl.opponents import BUILTINS, PENGUIN, agent_name
from hrl.worlds import FLOW_NAMES, build_world, money_flows, summarize_world


def scores_from_stats(balances: dict[str, list[float]], initial: dict[str, float]) -> dict[str, float]:
    """Final balance over initial balance, per agent id (the Standard score, computed by hand)."""
    return {agent: balances[agent][-1] / initial[agent] for agent in initial}


def test_world_scores_are_the_final_balance_over_the_initial_balance() -> None:
    config = CompareConfig(
        agents=(PENGUIN, BUILTINS[0]),
        n_worlds=1,
        opponents=(PENGUIN, *BUILTINS),
        n_steps=(6, 6),
        n_levels=(2, 2),
        agents_per_level=(3, 3),
        seed=3,
    )
    (plan,) = plan_comparison(config)
    spec = plan.spec(BUILTINS[0])
    world = build_world(spec)
    while world.step():
        pass
    ids = [a for a in world.agents if a not in ("SELLER", "BUYER")]
    expected = scores_from_stats(
        {a: list(world.stats[f"balance_{a}"]) for a in ids}, {a: world.initial_balances[a] for a in ids}
    )
    assert len(world.stats[f"balance_{ids[0]}"]) == spec.n_steps
    assert summarize_world(spec, world, 0.0).scores == pytest.approx(expected, rel=1e-12)
    assert len(set(expected.values())) > 1  # not a degenerate world where every score is equal
    # The comparison's play of the same world (built again) reports the same scores.
    play = play_seat(plan, BUILTINS[0])
    assert play.scores == pytest.approx(expected, rel=1e-12)
    assert play.score == pytest.approx(expected[play.seat_id], rel=1e-12)


def test_money_flows_add_up_to_every_solvent_agents_score() -> None:
    # A world long enough for stock, storage and shortfalls, with agents that over-buy (built-ins).
    config = CompareConfig(
        agents=("hrl.agent.l1.LitaAgentL1", PENGUIN),
        n_worlds=1,
        opponents=(PENGUIN, *BUILTINS),
        n_steps=(25, 25),
        n_levels=(3, 3),
        agents_per_level=(3, 3),
        seed=11,
    )
    (plan,) = plan_comparison(config)
    spec = plan.spec("hrl.agent.l1.LitaAgentL1")
    world = build_world(spec)
    while world.step():
        pass
    ids = [a for a in world.agents if a not in ("SELLER", "BUYER")]
    scores = world.scores()
    checked = 0
    for agent in ids:
        flows = money_flows(world, agent)
        assert flows["initial_balance"] == world.initial_balances[agent]
        assert flows["stock"] == world.stats[f"inventory_input_{agent}"][-1]
        if any(world.stats[f"bankrupt_{agent}"]):
            continue
        net = flows["sales"] - sum(flows[t] for t in FLOW_NAMES[1:])
        assert 1 + net / flows["initial_balance"] == pytest.approx(scores[agent], abs=1e-9), agent
        checked += 1
    assert checked >= len(ids) - 2
    # The terms are not all trivially zero in this world.
    totals = {t: sum(money_flows(world, a)[t] for a in ids) for t in FLOW_NAMES}
    assert all(totals[t] > 0 for t in ("sales", "purchases", "production", "storage"))
    assert summarize_world(spec, world, 0.0).flows[ids[0]] == money_flows(world, ids[0])


def test_evaluation_scores_match_the_balances_the_worlds_saved(
    tiny_evaluation: tuple[EvaluateConfig, EvaluationResult],
) -> None:
    _, result = tiny_evaluation
    pooled: dict[str, list[float]] = {}
    for world in result.worlds:
        folder = Path(result.out_dir) / world["name"]
        (stats_file,) = folder.glob("stats.*")
        table = pl.read_parquet(stats_file) if stats_file.suffix == ".parquet" else pl.read_csv(stats_file)
        info = json.loads((folder / "info.json").read_text())
        types = json.loads((folder / "world.json").read_text())["agent_types"]
        initial = {a: float(info["agent_initial_balances"][a]) for a in types}
        expected = scores_from_stats({a: table[f"balance_{a}"].to_list() for a in types}, initial)
        by_type: dict[str, list[float]] = {}
        for agent_id, score in expected.items():
            by_type.setdefault(agent_name(types[agent_id]), []).append(score)
        assert set(by_type) == set(world["scores"])
        for kind, scores in by_type.items():
            assert sorted(world["scores"][kind]) == pytest.approx(sorted(scores), rel=1e-12)
            pooled.setdefault(kind, []).extend(scores)
    for s in result.summaries:  # the ranking's numbers come from those scores
        assert s.mean == pytest.approx(np.mean(pooled[s.agent]), rel=1e-12)
        assert s.n_scores == len(pooled[s.agent])


def test_official_score_is_the_mean_without_high_outliers() -> None:
    # Q1 = 0.925, Q3 = 1.075, IQR = 0.15: 9.0 is above Q3 + 2 IQR = 1.375 and dropped; the low
    # outlier -3.0 is kept (negmas' truncated_mean has no lower fence by default).
    scores = np.array([0.9, 1.0, 1.1, 1.05, 0.95, 9.0, -3.0])
    assert official_score(scores) == pytest.approx((0.9 + 1.0 + 1.1 + 1.05 + 0.95 - 3.0) / 6)
    assert official_score([1.0, 1.1, 0.9]) == pytest.approx(1.0)  # no outlier: the plain mean


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap() -> None:
    samples = np.random.default_rng(4).normal(1.0, 0.3, size=60)
    ours = bootstrap_ci(samples, n_resamples=20_000, seed=1)
    reference = stats.bootstrap((samples,), np.mean, n_resamples=20_000, method="percentile", random_state=2)
    assert ours[0] == pytest.approx(reference.confidence_interval.low, abs=0.01)
    assert ours[1] == pytest.approx(reference.confidence_interval.high, abs=0.01)
    assert ours[0] < samples.mean() < ours[1]


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    trials = 300
    for trial in range(trials):
        low, high = bootstrap_ci(rng.exponential(1.0, size=40), n_resamples=2000, seed=trial)
        covered += low <= 1.0 <= high
    assert 0.88 <= covered / trials <= 0.99


def test_bootstrap_ci_errors_and_degenerate_case() -> None:
    assert bootstrap_ci([2.5]) == (2.5, 2.5)
    with pytest.raises(InvalidArgumentError):
        bootstrap_ci([])
    with pytest.raises(InvalidArgumentError):
        bootstrap_ci([1.0, 2.0], confidence=1.0)
    with pytest.raises(NonFiniteError) as info:
        bootstrap_ci([1.0, float("nan")])
    assert info.value.index == (1,)


def test_summaries_rank_by_official_score_and_count_wins() -> None:
    worlds = [
        {"A": [1.2], "B": [1.0], "C": [0.5, 0.7]},
        {"A": [1.1], "B": [1.3]},
        {"A": [1.0], "C": [1.0]},
    ]
    summaries = summarise_worlds(worlds)
    by_agent = {s.agent: s for s in summaries}
    assert [(s.agent, s.rank) for s in summaries] == [("B", 1), ("A", 2), ("C", 3)]
    assert [s.official for s in summaries] == pytest.approx([1.15, 1.1, (0.5 + 0.7 + 1.0) / 3])
    assert by_agent["A"].win_rate == pytest.approx((1 + 0 + 0.5) / 3)
    assert by_agent["C"].n_scores == 3 and by_agent["C"].n_worlds == 2
    assert by_agent["B"].ci_low <= by_agent["B"].mean <= by_agent["B"].ci_high
