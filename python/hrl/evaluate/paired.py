"""Statistics of seat-swap comparisons: paired differences, their intervals, and stopping.

A seat swap plays the same generated world once per candidate with the candidate in the same
factory, so the difference of two candidates' scores in one world cancels the world's luck (its
profiles, exogenous contracts and neighbours). The worlds are independent, so the per-world
differences are an i.i.d. sample and their mean estimates how much better A plays than B.

Intervals (all of the mean difference, in score units: final balance / initial balance):

- **bootstrap**: seeded percentile bootstrap (:func:`hrl.evaluate.stats.bootstrap_ci`);
- **t**: ``mean +- t_{n-1} * sd / sqrt(n)`` (Student's t; needs ``n >= 2``).

**Sequential stopping** (``hrl compare --until-separated``) looks at the data after every batch
of worlds and stops once every pair's interval excludes 0. Looking repeatedly at a 95% interval
and stopping at the first exclusion would make a false "separated" far likelier than 5%, so the
looks share the error budget: the looks are planned in advance (after ``batch``, ``2 * batch``,
... worlds, up to ``max_worlds``; ``K`` looks) and each look uses a t-interval at confidence
``1 - alpha / K`` (alpha spending with equal shares, i.e. Bonferroni over the planned looks).
By the union bound, the probability that *any* look's interval misses the true mean is at most
``alpha`` whatever the dependence between looks, so the interval at the stopping time keeps its
95% coverage. Stopping early (separation, or the time budget) only leaves budget unspent.
``tests/test_compare.py`` checks the coverage by simulation (normal, heavy-tailed and moderately
skewed differences, six looks from 10 to 60 worlds: at most 5% + noise), and that naive 95% looks
lose it (11-17% misses). The union bound adds no assumption, but each look's t-interval assumes
the mean difference is close to normal: strongly skewed differences (skewness 1.7) make even one
95% t-interval at 10 worlds miss 8.7% of the time (7.4% over six spent looks, 5.7% with batches of
30), so keep batches large (the default is 30 worlds) when the differences are lopsided.

The number of worlds an interval of half-width ``h`` needs is ``ceil((z * sd / h) ** 2)`` for
paired differences of standard deviation ``sd``; two independent samples of ``n`` worlds each
(agents in different factories, "unpaired") need ``ceil(z**2 * (sd_a**2 + sd_b**2) / h**2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from hrl.errors import InvalidArgumentError
from hrl.evaluate.stats import bootstrap_ci
from hrl.worlds import LEVEL_LABELS

__all__ = [
    "LevelDifference",
    "PairedComparison",
    "look_confidence",
    "paired_comparison",
    "planned_looks",
    "t_interval",
    "worlds_needed",
]


@dataclass(frozen=True)
class LevelDifference:
    """Paired differences of the seats on one position (first, middle or last level).

    Attributes:
        n: seats (worlds) on that position.
        mean_difference: mean of ``score_a - score_b`` there (``None`` when ``n == 0``).
        ci_low, ci_high: bootstrap interval of that mean (``None`` when ``n == 0``).
    """

    n: int
    mean_difference: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class PairedComparison:
    """Candidate ``a`` against candidate ``b`` over the worlds both finished.

    Differences are ``score_a - score_b`` per world (scores: final balance / initial balance).

    Attributes:
        a, b: the candidates' labels.
        n_pairs: worlds in which both played the seat.
        mean_difference: mean difference.
        sd_difference: sample standard deviation of the differences (``ddof=1``; ``None`` when
            ``n_pairs < 2``).
        ci_low, ci_high: percentile-bootstrap interval of the mean difference.
        t_ci_low, t_ci_high: Student-t interval of the mean difference (``None`` when
            ``n_pairs < 2``).
        wins: share of worlds with ``score_a > score_b``; ``ties``: share with equal scores.
        by_level: the same per position of the seat (keys ``first``, ``middle``, ``last``).
        sd_a, sd_b: standard deviation of each candidate's own score across these worlds
            (what an unpaired comparison has to overcome; ``None`` when ``n_pairs < 2``).
        half_width: the interval half-width the two counts below are for.
        worlds_needed: worlds a paired comparison needs for an interval of ``+-half_width``.
        worlds_needed_unpaired: worlds *per agent* two independent samples need for the same
            half-width (from ``sd_a`` and ``sd_b``).
    """

    a: str
    b: str
    n_pairs: int
    mean_difference: float
    sd_difference: float | None
    ci_low: float
    ci_high: float
    t_ci_low: float | None
    t_ci_high: float | None
    wins: float
    ties: float
    by_level: dict[str, LevelDifference]
    sd_a: float | None
    sd_b: float | None
    half_width: float
    worlds_needed: int | None
    worlds_needed_unpaired: int | None


def t_interval(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval ``mean +- t_{n-1} * sd / sqrt(n)`` of the mean; ``None`` for ``n < 2``.

    Raises:
        InvalidArgumentError: ``confidence`` outside (0, 1).
    """
    _check_confidence(confidence)
    values = np.asarray(samples, dtype=np.float64)
    if values.size < 2:
        return None
    mean = float(values.mean())
    half = (
        float(scipy_stats.t.ppf(0.5 + confidence / 2.0, values.size - 1))
        * _sd(values)
        / math.sqrt(values.size)
    )
    return mean - half, mean + half


def worlds_needed(sd: float, half_width: float, confidence: float = 0.95) -> int:
    """Worlds for an interval of ``+-half_width`` around a mean of samples with SD ``sd``.

    Normal approximation: ``ceil((z * sd / half_width) ** 2)`` with ``z`` the two-sided quantile
    (1.96 at 95%); at least 1. For two independent samples pass ``sqrt(sd_a**2 + sd_b**2)``.

    Raises:
        InvalidArgumentError: ``sd < 0``, ``half_width <= 0`` or ``confidence`` outside (0, 1).
    """
    _check_confidence(confidence)
    if sd < 0 or not half_width > 0:
        raise InvalidArgumentError(f"sd, half_width: need sd >= 0 and half_width > 0, got {sd}, {half_width}")
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    return max(1, math.ceil((z * sd / half_width) ** 2))


def planned_looks(batch: int, max_worlds: int) -> list[int]:
    """World counts at which a sequential comparison looks: ``batch, 2 * batch, ...``, ``max_worlds``.

    Raises:
        InvalidArgumentError: ``batch < 1`` or ``max_worlds < batch``.
    """
    if batch < 1 or max_worlds < batch:
        raise InvalidArgumentError(
            f"batch, max_worlds: need 1 <= batch <= max_worlds, got {batch}, {max_worlds}"
        )
    looks = list(range(batch, max_worlds + 1, batch))
    return looks if looks[-1] == max_worlds else [*looks, max_worlds]


def look_confidence(confidence: float, n_looks: int) -> float:
    """Confidence of each of ``n_looks`` planned looks so that all together keep ``confidence``.

    Equal alpha spending (Bonferroni): ``1 - (1 - confidence) / n_looks``.

    Raises:
        InvalidArgumentError: ``confidence`` outside (0, 1) or ``n_looks < 1``.
    """
    _check_confidence(confidence)
    if n_looks < 1:
        raise InvalidArgumentError(f"n_looks: must be >= 1, got {n_looks}")
    return 1.0 - (1.0 - confidence) / n_looks


def paired_comparison(
    a: str,
    b: str,
    scores_a: Sequence[float] | np.ndarray,
    scores_b: Sequence[float] | np.ndarray,
    levels: Sequence[str],
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    half_width: float = 0.03,
) -> PairedComparison:
    """Summarise the paired differences ``scores_a - scores_b`` (one entry per world).

    Args:
        a, b: labels of the two candidates.
        scores_a, scores_b: each candidate's score on the seat of the same worlds, in the same
            order.
        levels: the seat's position in each world (``first``, ``middle`` or ``last``).
        confidence: coverage of every interval.
        n_resamples: bootstrap resamples.
        seed: seeds the bootstrap (the per-level bootstraps use ``seed + 1 + level index``).
        half_width: the target half-width for :attr:`PairedComparison.worlds_needed`.

    Raises:
        InvalidArgumentError: no worlds, different lengths, or an unknown level label.
        NonFiniteError: a NaN or infinite score.
    """
    xa, xb = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != xb.shape or xa.size != len(levels) or xa.size == 0:
        raise InvalidArgumentError(
            "scores_a, scores_b, levels: need equal non-zero lengths, "
            f"got {xa.shape}, {xb.shape}, {len(levels)}"
        )
    unknown = set(levels) - set(LEVEL_LABELS)
    if unknown:
        raise InvalidArgumentError(f"levels: unknown labels {sorted(unknown)} (known: {LEVEL_LABELS})")
    diff = xa - xb
    low, high = bootstrap_ci(diff, confidence=confidence, n_resamples=n_resamples, seed=seed)
    t_ci = t_interval(diff, confidence)
    by_level = {}
    for i, label in enumerate(LEVEL_LABELS):
        here = diff[[level == label for level in levels]]
        if here.size == 0:
            by_level[label] = LevelDifference(0, None, None, None)
            continue
        lo, hi = bootstrap_ci(here, confidence=confidence, n_resamples=n_resamples, seed=seed + 1 + i)
        by_level[label] = LevelDifference(int(here.size), float(here.mean()), lo, hi)
    paired = diff.size >= 2
    sd_a, sd_b, sd_d = (_sd(x) if paired else None for x in (xa, xb, diff))
    return PairedComparison(
        a=a,
        b=b,
        n_pairs=int(diff.size),
        mean_difference=float(diff.mean()),
        sd_difference=sd_d,
        ci_low=low,
        ci_high=high,
        t_ci_low=None if t_ci is None else t_ci[0],
        t_ci_high=None if t_ci is None else t_ci[1],
        wins=float(np.mean(diff > 0)),
        ties=float(np.mean(diff == 0)),
        by_level=by_level,
        sd_a=sd_a,
        sd_b=sd_b,
        half_width=half_width,
        worlds_needed=None if sd_d is None else worlds_needed(sd_d, half_width, confidence),
        worlds_needed_unpaired=(
            None
            if sd_a is None or sd_b is None
            else worlds_needed(math.hypot(sd_a, sd_b), half_width, confidence)
        ),
    )


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1))


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence: must be in (0, 1), got {confidence}")
