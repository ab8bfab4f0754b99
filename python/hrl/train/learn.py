"""One learning step of ``hrl finetune``: rollout results -> rewards -> GAE -> PPO (L2) + MAPPO
(L3/L4), with every reward term and the score identity logged.

Logged per update (means over the learners unless said otherwise): ``rollout/...`` (score,
profit, shortfall, deals, fallbacks, win rates per opponent class; ``breach_rate`` and
``inventory_blowups`` from :func:`day_health`), ``rollout/level<k>`` (the
number of learners that sat on level ``k``, read from the built world), ``rollout/follow_rate``
(the share of L3's thread-rounds that played LitaAgentL1's own decision: L3's follow-L1 gate;
0 without it), ``safety/clip_rate``,
``reward/l2/<term>`` (each :data:`hrl.train.rewards.SCORE_TERMS` term summed over the world),
``reward/l2/total`` (the summed reward), ``reward/l2/score_gap_max`` (the largest
``|sum of L2 rewards - (score - 1)|`` over the learners, ``score - paired_score`` in paired
rollouts: 0 up to float rounding), ``rollout/paired_difference`` (paired rollouts: the mean of
``score - paired_score``, the learners' seat-swap difference against LitaAgentL1),
``reward/l4/score_gap_max`` (the same for L4), ``reward/l3/<term>``, ``train/l2/...`` and
``train/l3|l4|grad_norm/...``.

:func:`learner_rows` gives one plain row per learner-world (level, score, reward sums) for the
run's ``learners.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hrl.models.critic import CentralCritic
from hrl.opponents import agent_name
from hrl.train.bundle import Bundle
from hrl.train.mappo import Episode, MAPPOConfig, build_multi_batch, mappo_update
from hrl.train.ppo import PPOConfig, l2_batch, ppo_update_l2, trajectory_gae
from hrl.train.rewards import RewardConfig, l2_rewards, l3_rewards, l4_rewards
from hrl.train.rollout import LearnerRecord, RolloutResult

__all__ = ["day_health", "learn", "learner_rows"]


def learner_rows(
    results: Sequence[RolloutResult], rewards: RewardConfig, update: int
) -> list[dict[str, Any]]:
    """One row per learner-world: world, agent, level, n_levels, score (and ``paired_score``,
    LitaAgentL1's in the seat, in paired rollouts), the summed L2 reward and each summed term,
    the summed L4 reward."""
    rows = []
    for res in results:
        for rec in res.learners.values():
            row: dict[str, Any] = {
                "update": update,
                "world": res.name,
                "agent": rec.agent_id,
                "level": rec.level,
                "n_levels": rec.n_levels,
                "n_steps": rec.n_steps,
                "score": rec.final_score,
            }
            if rec.paired_score is not None:
                row["paired_score"] = rec.paired_score
            if rec.transitions.l2:
                r2, terms, _ = l2_rewards(rec, rewards)
                row["l2_reward_sum"] = float(r2.sum())
                row |= {f"l2_{k}_sum": float(v.sum()) for k, v in terms.items()}
            if rec.transitions.rounds:
                row["l4_reward_sum"] = float(l4_rewards(rec, rewards).sum())
            rows.append(row)
    return rows


def day_health(rec: LearnerRecord) -> tuple[float, float]:
    """``(breach_rate, inventory_blowups)`` of one learner-world.

    ``breach_rate``: the share of its days with a shortfall (sales it could not deliver).
    ``inventory_blowups``: the days that ended with more input stock than the lines can still
    process before the world ends (``n_lines`` units a day over days ``day + 1 .. n_steps - 1``;
    stock persists in scml 0.8.4, so that excess is bought for nothing)."""
    if not rec.days:
        return 0.0, 0.0
    n_steps = rec.n_steps or rec.days[-1].day + 1
    breaches = sum(d.shortfall_quantity > 0 for d in rec.days)
    blowups = sum(d.inventory_input > rec.n_lines * (n_steps - d.day - 1) for d in rec.days)
    return breaches / len(rec.days), float(blowups)


def _episode(rec: LearnerRecord, cfg: RewardConfig) -> Episode:
    r3, _, last = l3_rewards(rec, cfg)
    return Episode(
        rounds=rec.transitions.rounds,
        macro={t.day: t.state[-1] for t in rec.transitions.l2},
        l3_reward=r3,
        thread_last=last,
        l4_reward=l4_rewards(rec, cfg),
        day_terminated=frozenset(d.day for d in rec.days if d.bankrupt),
        world=rec.world_views,
    )


def learn(
    bundle: Bundle,
    critic: CentralCritic,
    optimisers: dict[str, torch.optim.Optimizer],
    generator: torch.Generator,
    results: Sequence[RolloutResult],
    *,
    ppo: PPOConfig,
    mappo: MAPPOConfig,
    rewards: RewardConfig,
) -> dict[str, float]:
    """Rewards -> GAE -> PPO (L2) + MAPPO (L3/L4) on ``bundle`` (updated in place). Returns the
    scalars to log (see the module docs)."""
    l3, l4 = bundle.l3, bundle.l4
    l2_steps, l2_adv, l2_ret = [], [], []
    episodes: list[Episode] = []
    logs: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        logs.setdefault(key, []).append(float(value))

    wins: dict[str, list[float]] = {}
    levels: dict[int, int] = {}
    gaps = {"l2": 0.0, "l4": 0.0}
    for res in results:
        for rec in res.learners.values():
            levels[rec.level] = levels.get(rec.level, 0) + 1
            note("rollout/mean_score", rec.final_score)
            note("rollout/profit", rec.final_score - 1.0)
            if rec.paired_score is not None:
                note("rollout/paired_difference", rec.final_score - rec.paired_score)
            note("rollout/shortfall", sum(d.shortfall_quantity for d in rec.days))
            note("rollout/fallback", float(rec.fallback_reason is not None))
            note("rollout/deals", float(len(rec.deals)))
            breach_rate, blowups = day_health(rec)
            note("rollout/breach_rate", breach_rate)
            note("rollout/inventory_blowups", blowups)
            changed = []
            for r in rec.transitions.rounds:
                own = r.follow == 0  # L3's own decisions, not L1's
                if own.any():
                    changed.append(r.changed_by_l1[own].float().mean().item())
            note("safety/clip_rate", float(np.mean(changed)) if changed else 0.0)
            follows = [int(r.follow.sum()) for r in rec.transitions.rounds]
            rows = rec.transitions.n_thread_rounds
            note("rollout/follow_rate", sum(follows) / rows if rows else 0.0)
            for other, score in res.scores.items():
                if other not in res.learners:
                    wins.setdefault(agent_name(res.agent_types[other]), []).append(
                        float(rec.final_score > score)
                    )
            if not rec.transitions.l2:
                continue
            r2, terms2, term2 = l2_rewards(rec, rewards)
            for k, v in terms2.items():
                note(f"reward/l2/{k}", float(v.sum()))
            note("reward/l2/total", float(r2.sum()))
            gaps["l2"] = max(gaps["l2"], abs(float(r2.sum()) - rec.reward_total))
            values = np.array([t.value for t in rec.transitions.l2])
            adv, ret = trajectory_gae(r2, values, term2, gamma=ppo.gamma, lam=ppo.lam)
            l2_steps += rec.transitions.l2
            l2_adv.append(adv)
            l2_ret.append(ret)
            if rec.transitions.n_thread_rounds and l3 is not None:
                ep = _episode(rec, rewards)
                gaps["l4"] = max(gaps["l4"], abs(float(ep.l4_reward.sum()) - rec.reward_total))
                for k, v in l3_rewards(rec, rewards)[1].items():
                    note(f"reward/l3/{k}", float(v.sum()))
                episodes.append(ep)
    scalars = {k: float(np.mean(v)) for k, v in logs.items()}
    scalars |= {f"rollout/win_rate/{kind}": float(np.mean(w)) for kind, w in wins.items()}
    scalars |= {f"rollout/level{k}": float(n) for k, n in sorted(levels.items())}
    scalars["reward/l2/score_gap_max"] = gaps["l2"]
    if episodes:
        scalars["reward/l4/score_gap_max"] = gaps["l4"]
    if l2_steps:
        batch = l2_batch(l2_steps, np.concatenate(l2_adv), np.concatenate(l2_ret))
        for key, val in ppo_update_l2(bundle.l2, optimisers["l2"], batch, ppo, generator).items():
            scalars[f"train/l2/{key}"] = val
    if episodes and l3 is not None:
        multi = build_multi_batch(episodes, l3, l4, critic, mappo)
        opts: dict[str, torch.optim.Optimizer] = {
            k: optimisers[k] for k in ("l3", "l4", "critic") if k in optimisers
        }
        for key, val in mappo_update(l3, l4, critic, opts, multi, mappo, generator).items():
            scalars[f"train/{key}"] = val
    return scalars
