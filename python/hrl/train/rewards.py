"""Rewards for online fine-tuning, computed from a learner's :class:`~hrl.train.rollout.LearnerRecord`.

Money is normalised by the learner's **initial balance** ``B0`` (so 0.01 = 1% of the starting
money; the final SCML score is ``balance / B0`` up to inventory valuation). Every term is returned
separately (arrays in a dict) so each can be logged; the reward is their weighted sum.

Day ``t``'s L2 decision (the goal set at the start of day ``t``) is judged on what happened
during day ``t``, read from the world's statistics at the end of day ``t`` (``days[t]``) and the
end of day ``t - 1`` (start state; ``B0`` and empty inventory before day 0):

- ``cash`` = (B_t - B_{t-1}) / B0
- ``potential`` = gamma * Phi_t - Phi_{t-1}, Phi = (inventory_input * trading_price_in +
  inventory_output * trading_price_out) / B0 (potential-based shaping: it does not change the
  optimal policy, it credits stock bought now and sold later)
- ``risk`` = - shortfall_penalty_t / B0 (the penalty the world charged for undelivered sales)
- ``liquidity`` = number of deals signed on day ``t`` (the weight ``eps`` is small)

L3 (per thread-round row; the reward sits on the thread's LAST row of the day, where the deal
is made or the thread ends):

- ``advantage`` = q / n_lines * (p - tp) / tp when selling, (tp - p) / tp when buying, for the
  deal signed with that partner that day (0 without a deal); tp = that day's trading price
- ``goal`` = -(|q_exec - Q_target| + |p_deal - P_target|) on the thread's side, shared equally by
  that side's threads of the day; q_exec = units signed that day on that side / n_lines,
  p_deal = their mean unit price / tp (the price term only on days with a deal)
- ``liquidity`` = 1 when the thread ended in a deal

L4 (per round): the shared global return: the day's L2 reward on the last round of the day.

Episode semantics (see :mod:`hrl.returns`): the last simulated day is a **truncation** (the
value bootstraps: leftover stock still has a value and worlds of other lengths exist); a day on
which the world declares the agent bankrupt is a **termination**. An L3 thread's last round of a
day terminates that thread's negotiation episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hrl.errors import ConfigError
from hrl.train.rollout import DayRecord, Deal, LearnerRecord

__all__ = ["RewardConfig", "l2_rewards", "l3_rewards", "l4_rewards"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms (each term is logged before weighting).

    Attributes:
        cash: weight of the day's balance change.
        potential: weight of the inventory-potential shaping term.
        gamma: discount used in the shaping term (the L2 PPO gamma).
        risk: weight of the shortfall penalty.
        liquidity: ``eps``, weight of the L2 deal count.
        l3_goal_q, l3_goal_p: weights of the L3 goal-alignment penalties.
        l3_advantage: weight of the L3 trade advantage vs the market price.
        l3_liquidity: weight of the L3 deal bonus.
    """

    cash: float = 1.0
    potential: float = 1.0
    gamma: float = 0.99
    risk: float = 1.0
    liquidity: float = 0.001
    l3_goal_q: float = 0.05
    l3_goal_p: float = 0.05
    l3_advantage: float = 1.0
    l3_liquidity: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma: must be in [0, 1], got {self.gamma}")


def _scale(rec: LearnerRecord) -> float:
    if not rec.initial_balance > 0:
        raise ConfigError(f"agent {rec.agent_id}: initial balance must be > 0, got {rec.initial_balance}")
    return rec.initial_balance


def l2_rewards(rec: LearnerRecord, cfg: RewardConfig) -> tuple[F64, dict[str, F64], NDArray[np.bool_]]:
    """Per-day rewards for the days the learner's L2 acted.

    Returns:
        ``(reward [D], terms, terminated [D])`` over ``rec.transitions.l2`` (in order); ``terms``
        maps ``cash``, ``potential``, ``risk``, ``liquidity`` to unweighted ``[D]`` arrays.
    """
    b0 = _scale(rec)
    by_day = {d.day: d for d in rec.days}
    deals_per_day: dict[int, int] = {}
    for deal in rec.deals:
        deals_per_day[deal.day] = deals_per_day.get(deal.day, 0) + 1
    steps = rec.transitions.l2
    terms = {k: np.zeros(len(steps)) for k in ("cash", "potential", "risk", "liquidity")}
    terminated = np.zeros(len(steps), bool)
    for i, tr in enumerate(steps):
        end = by_day.get(tr.day)
        if end is None:
            raise ConfigError(f"agent {rec.agent_id}: no world state for day {tr.day}")
        start = by_day.get(tr.day - 1)
        b_prev = start.balance if start is not None else b0
        phi_prev = _phi(start) / b0 if start is not None else 0.0
        terms["cash"][i] = (end.balance - b_prev) / b0
        terms["potential"][i] = cfg.gamma * _phi(end) / b0 - phi_prev
        terms["risk"][i] = -end.shortfall_penalty / b0
        terms["liquidity"][i] = deals_per_day.get(tr.day, 0)
        terminated[i] = end.bankrupt
    reward = (
        cfg.cash * terms["cash"]
        + cfg.potential * terms["potential"]
        + cfg.risk * terms["risk"]
        + cfg.liquidity * terms["liquidity"]
    )
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
    reward = (
        terms["goal"]  # weights already applied per component (q and p weighted separately)
        + cfg.l3_advantage * terms["advantage"]
        + cfg.l3_liquidity * terms["liquidity"]
    )
    return reward, terms, last


def l4_rewards(rec: LearnerRecord, l2_reward: F64) -> F64:
    """Per-round L4 reward: the day's L2 reward (the shared global return) on the day's last
    round, 0 on the others. ``l2_reward`` is aligned with ``rec.transitions.l2``."""
    per_day = {tr.day: float(l2_reward[i]) for i, tr in enumerate(rec.transitions.l2)}
    rounds = rec.transitions.rounds
    out = np.zeros(len(rounds))
    for i, r in enumerate(rounds):
        if i + 1 == len(rounds) or rounds[i + 1].day != r.day:
            out[i] = per_day.get(r.day, 0.0)
    return out
