"""Rewards for online fine-tuning, computed from a learner's :class:`~hrl.train.rollout.LearnerRecord`.

**The L2 rewards of a world add up to its score minus 1.** The Standard score is
``balance_end / B0`` (``B0`` = the world's initial balance of the agent; leftover stock is worth
0), so money is measured in units of ``B0`` and every world day ``t`` (``days[t]``, the world's
statistics at the END of day ``t``; ``B_{-1} = B0``) contributes:

- ``cash`` = (B_t - B_{t-1}) / B0 -- the whole change of the score that day; split (logged, not
  added again) into ``trade`` (sales - purchases - production), ``shortfall`` (- the shortfall
  penalty) and ``storage`` (- storage and disposal costs): ``cash = trade + shortfall + storage``.
- ``shaping`` = Phi_t - Phi_{t-1}, Phi = market value of the stock / B0
  (inventory_input * trading_price_in + inventory_output * trading_price_out), with
  ``Phi_{-1} = 0`` and ``Phi = 0`` on the world's LAST day and from a bankruptcy on (the score
  values stock at 0). The shaping is undiscounted, so it telescopes to ``Phi_end - Phi_{-1} = 0``
  for EVERY trajectory: it moves credit in time (stock bought now is paid back when sold or
  written off at the end) and changes no policy's total.

``reward = cash - paired + shaping_weight * shaping``; its sum over the world's days is
``score - 1`` exactly (any shaping weight). In a paired rollout (:mod:`hrl.train.rollout`)
``paired`` = (B'_t - B'_{t-1}) / B0' is the same seat's day change of the score with
LitaAgentL1 playing it (B' its balances, ``B'_{-1} = B0'``), which no action of the learner
changes: a control variate that takes the world's luck out of the return, so the sum is
``score - paired_score`` (the seat-swap difference); without pairing ``paired`` is 0.
Each day's reward goes to the decision that was in force: the last
decision made on or before that day (days before the first decision go to the first one); so
days without an L2 decision (e.g. after a fallback) and without rounds (L4) lose nothing.

Episode semantics (:func:`hrl.train.ppo.trajectory_gae`): the world's last day is a
**termination** (nothing is left to earn: the score is final); a bankruptcy day too.

L3 (per thread-round row; the reward sits on the thread's LAST row of the day, where the deal
is made or the thread ends) -- local negotiation rewards, not score terms:

- ``advantage`` = q / n_lines * (p - tp) / tp when selling, (tp - p) / tp when buying, for the
  deal signed with that partner that day (0 without a deal); tp = that day's trading price
- ``goal`` = -(|q_exec - Q_target| + |p_deal - P_target|) on the thread's side, shared equally by
  that side's threads of the day; q_exec = units signed that day on that side / n_lines,
  p_deal = their mean unit price / tp (the price term only on days with a deal)
- ``liquidity`` = 1 when the thread ended in a deal

L4 (per round): the L2 day rewards, each on the round in force (the day's last round), so L4's
rewards of a world also add up to its score minus 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hrl.errors import ConfigError, NonFiniteError
from hrl.train.rollout import DayRecord, Deal, LearnerRecord

__all__ = [
    "SCORE_TERMS",
    "RewardConfig",
    "attribute",
    "day_terms",
    "l2_rewards",
    "l3_rewards",
    "l4_rewards",
]

F64 = NDArray[np.float64]

SCORE_TERMS = ("cash", "trade", "shortfall", "storage", "shaping", "paired")
"""The per-day L2 terms (``cash = trade + shortfall + storage``; reward = cash - paired + w * shaping)."""


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms (each term is logged before weighting).

    Attributes:
        shaping: weight of the telescoping stock-value term (any value keeps the L2 sum equal
            to score - 1).
        l3_goal_q, l3_goal_p: weights of the L3 goal-alignment penalties.
        l3_advantage: weight of the L3 trade advantage vs the market price.
        l3_liquidity: weight of the L3 deal bonus.
    """

    shaping: float = 1.0
    l3_goal_q: float = 0.05
    l3_goal_p: float = 0.05
    l3_advantage: float = 1.0
    l3_liquidity: float = 0.01


def _scale(rec: LearnerRecord) -> float:
    if not rec.initial_balance > 0:
        raise ConfigError(f"agent {rec.agent_id}: initial balance must be > 0, got {rec.initial_balance}")
    return rec.initial_balance


def _finite(prefix: str, terms: dict[str, F64]) -> None:
    for key, value in terms.items():
        bad = np.flatnonzero(~np.isfinite(value))
        if bad.size:
            name = f"{prefix}/{key}"
            raise NonFiniteError(
                f"{name}: non-finite value {value[bad[0]]} at {bad[0]}", name, (int(bad[0]),)
            )


def day_terms(rec: LearnerRecord) -> dict[str, F64]:
    """Unweighted per-WORLD-day terms ``[T]`` (``T = len(rec.days)``, day order): ``cash``,
    ``trade``, ``shortfall``, ``storage``, ``shaping``, ``paired`` (see the module docs).

    Raises:
        ConfigError: the paired balances do not cover the world's days, or B0' is not > 0.
    """
    b0 = _scale(rec)
    days = sorted(rec.days, key=lambda d: d.day)
    if [d.day for d in days] != list(range(len(days))):
        raise ConfigError(f"agent {rec.agent_id}: world days {[d.day for d in days]} are not 0..T-1")
    last = (rec.n_steps or len(days)) - 1
    n = len(days)
    terms = {k: np.zeros(n) for k in SCORE_TERMS}
    b_prev, phi_prev, broke = b0, 0.0, False
    for i, d in enumerate(days):
        broke = broke or d.bankrupt
        phi = 0.0 if (d.day >= last or broke) else _phi(d) / b0
        terms["cash"][i] = (d.balance - b_prev) / b0
        terms["shortfall"][i] = -d.shortfall_penalty / b0
        terms["storage"][i] = -d.storage_cost / b0
        terms["shaping"][i] = phi - phi_prev
        b_prev, phi_prev = d.balance, phi
    if rec.paired_score is not None:
        terms["paired"] = _paired_cash(rec, n)
    _finite("reward/l2", {k: v for k, v in terms.items() if k != "trade"})  # the measured terms first
    terms["trade"] = terms["cash"] - terms["shortfall"] - terms["storage"]
    return terms


def _paired_cash(rec: LearnerRecord, n: int) -> F64:
    """The paired seat's day changes of the score ``[n]`` (module docs)."""
    b0 = rec.paired_initial_balance
    if not b0 > 0:
        raise ConfigError(f"agent {rec.agent_id}: paired initial balance must be > 0, got {b0}")
    if len(rec.paired_balances) != n:
        raise ConfigError(
            f"agent {rec.agent_id}: {len(rec.paired_balances)} paired balances for {n} world days"
        )
    return np.diff(np.asarray(rec.paired_balances, dtype=np.float64), prepend=b0) / b0


def _daily(per_day: dict[str, F64], cfg: RewardConfig) -> F64:
    """The per-day L2 reward ``[T]``: cash - paired + shaping weight * shaping."""
    return per_day["cash"] - per_day["paired"] + cfg.shaping * per_day["shaping"]


def attribute(values: F64, decision_days: Sequence[int]) -> F64:
    """Sum per-world-day ``values [T]`` onto decisions ``[D]`` (``decision_days``: the day of
    each decision, non-decreasing): day ``t`` goes to the LAST decision made on or before ``t``
    (days before the first decision to the first one). The total is kept exactly."""
    days = np.asarray(decision_days, dtype=np.int64)
    if days.size == 0:
        return np.zeros(0)
    if np.any(np.diff(days) < 0):
        raise ConfigError(f"decision_days: must be non-decreasing, got {days.tolist()}")
    target = np.searchsorted(days, np.arange(len(values)), side="right") - 1
    out = np.zeros(len(days))
    np.add.at(out, np.maximum(target, 0), values)
    return out


def l2_rewards(rec: LearnerRecord, cfg: RewardConfig) -> tuple[F64, dict[str, F64], NDArray[np.bool_]]:
    """Per-decision rewards for the days the learner's L2 acted.

    Returns:
        ``(reward [D], terms, terminated [D])`` over ``rec.transitions.l2`` (in order); ``terms``
        maps :data:`SCORE_TERMS` to unweighted ``[D]`` arrays (each world day on the decision in
        force); ``terminated``: the last decision (the world ended: the score is final) and
        bankruptcy days. ``reward.sum() == rec.reward_total`` (``final_score - 1``, or
        ``final_score - paired_score`` when paired) up to float rounding.
    """
    steps = rec.transitions.l2
    per_day = day_terms(rec)
    decision_days = [tr.day for tr in steps]
    terms = {k: attribute(v, decision_days) for k, v in per_day.items()}
    reward = _daily(terms, cfg)
    bankrupt = {d.day for d in rec.days if d.bankrupt}
    terminated = np.array([tr.day in bankrupt for tr in steps], bool)
    if len(steps):
        terminated[-1] = True
    return reward, terms, terminated


def _phi(d: DayRecord) -> float:
    return float(d.inventory_input * d.trading_price_in + d.inventory_output * d.trading_price_out)


def l3_rewards(rec: LearnerRecord, cfg: RewardConfig) -> tuple[F64, dict[str, F64], NDArray[np.bool_]]:
    """Per thread-round rewards, rows in the order of ``rec.transitions.rounds`` (round by round,
    thread by thread).

    Returns:
        ``(reward [N], terms, last [N])``: ``last`` marks each (day, partner) thread's last row
        (the end of that negotiation episode); ``terms``: ``goal``, ``advantage``, ``liquidity``.
    """
    by_day = {d.day: d for d in rec.days}
    rounds = rec.transitions.rounds
    rows = [(r.day, p, i, k) for i, r in enumerate(rounds) for k, p in enumerate(r.partners)]
    n = len(rows)
    terms = {k: np.zeros(n) for k in ("goal", "advantage", "liquidity")}
    last = np.zeros(n, bool)
    last_row: dict[tuple[int, str], int] = {}
    for j, (day, partner, _, _) in enumerate(rows):
        last_row[(day, partner)] = j
    for j in last_row.values():
        last[j] = True
    deals: dict[tuple[int, str], list[Deal]] = {}
    for deal in rec.deals:
        deals.setdefault((deal.day, deal.partner), []).append(deal)
    goals = {tr.day: tr.goal.numpy() for tr in rec.transitions.l2}
    lines = max(rec.n_lines, 1)
    # per (day, side): executed quantity / n_lines and mean price / tp
    executed: dict[tuple[int, bool], tuple[float, float]] = {}
    for deal in rec.deals:
        rec_day = by_day.get(deal.day)
        if rec_day is None:
            continue
        tp = rec_day.trading_price_out if deal.selling else rec_day.trading_price_in
        q, pq = executed.get((deal.day, deal.selling), (0.0, 0.0))
        executed[(deal.day, deal.selling)] = (q + deal.quantity, pq + deal.quantity * deal.unit_price / tp)
    side_threads: dict[tuple[int, bool], list[int]] = {}
    for (day, partner), j in last_row.items():
        r = rounds[rows[j][2]]
        selling = bool(r.context[rows[j][3], 2] > 0.5)
        side_threads.setdefault((day, selling), []).append(j)
        for deal in deals.get((day, partner), []):
            rec_day = by_day.get(day)
            if rec_day is None:
                continue
            tp = rec_day.trading_price_out if deal.selling else rec_day.trading_price_in
            edge = (deal.unit_price - tp) / tp if deal.selling else (tp - deal.unit_price) / tp
            terms["advantage"][j] += deal.quantity / lines * edge
            terms["liquidity"][j] = 1.0
    for (day, selling), idx in side_threads.items():
        goal = goals.get(day)
        if goal is None:
            continue
        q_target, p_target = (goal[2], goal[3]) if selling else (goal[0], goal[1])
        q_exec, pq = executed.get((day, selling), (0.0, 0.0))
        penalty = cfg.l3_goal_q * abs(q_exec / lines - q_target)
        if q_exec > 0:
            penalty += cfg.l3_goal_p * abs(pq / q_exec - p_target)
        for j in idx:
            terms["goal"][j] = -penalty / len(idx)
    _finite("reward/l3", terms)
    reward = (
        terms["goal"]  # weights already applied per component (q and p weighted separately)
        + cfg.l3_advantage * terms["advantage"]
        + cfg.l3_liquidity * terms["liquidity"]
    )
    return reward, terms, last


def l4_rewards(rec: LearnerRecord, cfg: RewardConfig) -> F64:
    """Per-round L4 reward ``[R]`` (rounds of ``rec.transitions.rounds``): every world day's L2
    reward on the round in force (the day's last round with threads; see :func:`attribute`), so
    the sum is :attr:`~hrl.train.rollout.LearnerRecord.reward_total` whenever the learner
    played at least one round."""
    daily = _daily(day_terms(rec), cfg)
    rounds = rec.transitions.rounds
    acted = [i for i, r in enumerate(rounds) if len(r)]  # the rounds MAPPO trains on
    out = np.zeros(len(rounds))
    out[acted] = attribute(daily, [rounds[i].day for i in acted])
    return out
