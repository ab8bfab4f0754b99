"""Official scoring and confidence intervals, checked against scml/negmas/scipy on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from negmas.helpers.numeric import truncated_mean
from scipy import stats

from hrl.errors import InvalidArgumentError, NonFiniteError
from hrl.evaluate import bootstrap_ci, official_score, summarise_worlds
from hrl.opponents import BUILTINS, PENGUIN
from hrl.worlds import WorldSpec, build_world, run_world


def test_world_scores_equal_scml_balance_calculator_on_the_same_world() -> None:
    from scml.utils import balance_calculator_std

    spec = WorldSpec(agents=(PENGUIN, *BUILTINS), n_steps=5, seed=3)
    ours = run_world(spec)
    world = build_world(spec)
    world.info["is_default"] = [False] * len(ours.scores)
    world.run()
    official = balance_calculator_std([world], {}, dry_run=False)
    assert dict(zip(official.ids, official.scores, strict=True)) == pytest.approx(ours.scores)


def test_official_score_is_negmas_truncated_mean_and_drops_only_high_outliers() -> None:
    scores = np.array([0.9, 1.0, 1.1, 1.05, 0.95, 9.0, -3.0])
    assert official_score(scores) == pytest.approx(truncated_mean(scores))
    assert official_score(scores) == pytest.approx(np.mean([0.9, 1.0, 1.1, 1.05, 0.95, -3.0]))


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
    assert [s.rank for s in summaries] == [1, 2, 3]
    assert summaries[0].official >= summaries[1].official >= summaries[2].official
    assert by_agent["A"].win_rate == pytest.approx((1 + 0 + 0.5) / 3)
    assert by_agent["C"].n_scores == 3 and by_agent["C"].n_worlds == 2
    assert by_agent["B"].ci_low <= by_agent["B"].mean <= by_agent["B"].ci_high
