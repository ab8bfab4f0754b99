"""MAPPO for L3 (one actor per thread) and L4 (one joint actor per round), with a centralised
critic (:class:`hrl.models.critic.CentralCritic`); ``MAPPOConfig.centralised = False`` switches
to IPPO (each actor's own value head: ``L3Output.value`` per thread, ``L4Output.value`` per
round). Written for this project (no code copied).

Trajectories: an L3 thread's rows of one day (same partner, rounds in order) form an episode that
terminates at its last row (the negotiation is over); L4's rounds of one world form one
trajectory with the day's L2 reward on the day's last round, truncated at the world's last round.
Values for GAE are computed with the pre-update critic (or own heads) on the batch.
L4's surrogate is per thread (ratio of each thread's alpha density) with the round's advantage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hrl.agent.transitions import RoundTransition
from hrl.errors import ConfigError
from hrl.models.critic import CentralCritic, round_global_state
from hrl.models.l3 import L3Action, L3Executor
from hrl.models.l4 import L4Coordinator
from hrl.train.ppo import _normalised, clipped_surrogate, trajectory_gae

__all__ = [
    "L3Batch",
    "L4Batch",
    "MAPPOConfig",
    "MultiBatch",
    "build_multi_batch",
    "mappo_objective",
    "mappo_update",
]


@dataclass(frozen=True)
class MAPPOConfig:
    """L3/L4 hyper-parameters.

    Attributes:
        centralised: True: MAPPO (central critic); False: IPPO (own value heads).
        lr_l3: L3 learning rate (below L2's: protect pretrained skills); lr_l4: L4 (may be higher);
        lr_critic: central critic. gamma_l3, gamma_l4, lam: GAE per round; clip, value_coef,
        entropy_coef, epochs, minibatch (L3 rows; L4 takes rounds in as many minibatches),
        max_grad_norm, target_kl: as in :class:`hrl.train.ppo.PPOConfig`.
    """

    centralised: bool = True
    lr_l3: float = 1e-4
    lr_l4: float = 5e-4
    lr_critic: float = 1e-3
    gamma_l3: float = 0.95
    gamma_l4: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 1e-3
    epochs: int = 4
    minibatch: int = 256
    max_grad_norm: float = 0.5
    target_kl: float | None = 0.05

    def __post_init__(self) -> None:
        if self.clip <= 0 or self.epochs < 1 or self.minibatch < 1 or min(self.lr_l3, self.lr_l4) <= 0:
            raise ConfigError(f"MAPPOConfig: invalid values {self}")


@dataclass(frozen=True)
class L3Batch:
    """``N`` thread rows (padded histories)."""

    history: Tensor
    history_mask: Tensor
    goal: Tensor
    baseline: Tensor
    context: Tensor
    day_mask: Tensor
    kind_mask: Tensor
    kind: Tensor
    delivery: Tensor
    residual: Tensor
    old_log_prob: Tensor
    threads: Tensor
    global_state: Tensor
    advantages: Tensor
    returns: Tensor

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def select(self, index: Tensor) -> L3Batch:
        return L3Batch(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class L4Batch:
    """``R`` rounds of up to ``K`` threads (padded)."""

    threads: Tensor
    thread_mask: Tensor
    alpha: Tensor
    old_log_prob: Tensor
    global_state: Tensor
    advantages: Tensor
    returns: Tensor

    def __len__(self) -> int:
        return int(self.alpha.shape[0])

    def select(self, index: Tensor) -> L4Batch:
        return L4Batch(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class MultiBatch:
    """L3 and L4 batches of one update (``l4`` is None without an L4 model)."""

    l3: L3Batch
    l4: L4Batch | None


@dataclass(frozen=True)
class Episode:
    """One learner-world's L3/L4 inputs for :func:`build_multi_batch`.

    ``rounds``: the learner's round records; ``macro``: today's macro features ``[37]`` per day;
    ``l3_reward [N rows]``, ``thread_last [N]`` (from :func:`hrl.train.rewards.l3_rewards`),
    ``l4_reward [R]``, ``day_terminated``: days the world declared the agent bankrupt.
    """

    rounds: Sequence[RoundTransition]
    macro: dict[int, Tensor]
    l3_reward: NDArray[np.float64]
    thread_last: NDArray[np.bool_]
    l4_reward: NDArray[np.float64]
    day_terminated: frozenset[int] = frozenset()


def _pad(tensors: Sequence[Tensor], length: int) -> Tensor:
    """Right-pad the dim 1 of ``[K, T, ...]`` tensors to ``length`` and concatenate over dim 0."""
    out = []
    for t in tensors:
        if t.shape[1] < length:
            pad = t.new_zeros((t.shape[0], length - t.shape[1], *t.shape[2:]))
            t = torch.cat([t, pad], 1)
        out.append(t)
    return torch.cat(out, 0)


def _values(
    l3: L3Executor,
    l4: L4Coordinator | None,
    critic: CentralCritic | None,
    cfg: MAPPOConfig,
    batch: MultiBatch,
) -> tuple[Tensor, Tensor | None]:
    with torch.no_grad():
        if cfg.centralised:
            if critic is None:
                raise ConfigError("MAPPO with centralised=True needs a CentralCritic")
            v3 = critic.thread_value(batch.l3.global_state, batch.l3.threads)
            v4 = critic.round_value(batch.l4.global_state) if batch.l4 is not None else None
        else:
            b = batch.l3
            v3 = l3(b.history, b.history_mask, b.goal, b.baseline, b.context, b.day_mask, b.kind_mask).value
            v4 = (
                l4(batch.l4.threads, batch.l4.thread_mask).value
                if (l4 is not None and batch.l4 is not None)
                else None
            )
    return v3, v4


def build_multi_batch(
    episodes: Sequence[Episode],
    l3: L3Executor,
    l4: L4Coordinator | None,
    critic: CentralCritic | None,
    cfg: MAPPOConfig,
) -> MultiBatch:
    """Stack every episode's rows, compute values (pre-update) and GAE (Rust kernel)."""
    rounds = [r for ep in episodes for r in ep.rounds if len(r)]
    if not rounds:
        raise ConfigError("build_multi_batch: no L3 rows")
    length = max(r.history.shape[1] for r in rounds)
    globals_per_round = []
    for ep in episodes:
        for r in ep.rounds:
            if len(r):
                macro = ep.macro.get(r.day, torch.zeros(37))
                globals_per_round.append(round_global_state(macro, r.threads))
    g_round = torch.stack(globals_per_round)
    sizes = torch.tensor([len(r) for r in rounds])
    l3b = L3Batch(
        history=_pad([r.history for r in rounds], length),
        history_mask=_pad([r.history_mask for r in rounds], length),
        goal=torch.cat([r.goal for r in rounds]),
        baseline=torch.cat([r.baseline for r in rounds]),
        context=torch.cat([r.context for r in rounds]),
        day_mask=torch.cat([r.day_mask for r in rounds]),
        kind_mask=torch.cat([r.kind_mask for r in rounds]),
        kind=torch.cat([r.kind for r in rounds]),
        delivery=torch.cat([r.delivery for r in rounds]),
        residual=torch.cat([r.residual for r in rounds]),
        old_log_prob=torch.cat([r.l3_log_prob for r in rounds]),
        threads=torch.cat([r.threads for r in rounds]),
        global_state=g_round.repeat_interleave(sizes, 0),
        advantages=torch.zeros(int(sizes.sum())),
        returns=torch.zeros(int(sizes.sum())),
    )
    l4b = None
    if l4 is not None:
        k = int(sizes.max())
        n = len(rounds)
        threads = torch.zeros(n, k, rounds[0].threads.shape[1])
        mask = torch.zeros(n, k, dtype=torch.bool)
        alpha = torch.full((n, k), l4.config.alpha_min)
        old = torch.zeros(n, k)
        for i, r in enumerate(rounds):
            threads[i, : len(r)] = r.threads
            mask[i, : len(r)] = True
            alpha[i, : len(r)] = r.alpha
            old[i, : len(r)] = r.l4_log_prob_elements
        l4b = L4Batch(threads, mask, alpha, old, g_round, torch.zeros(n), torch.zeros(n))
    batch = MultiBatch(l3b, l4b)
    v3, v4 = _values(l3, l4, critic, cfg, batch)
    v3n = v3.double().numpy()
    adv3, ret3 = np.zeros(len(v3n), np.float32), np.zeros(len(v3n), np.float32)
    v4n = v4.double().numpy() if v4 is not None else None
    adv4 = np.zeros(len(rounds), np.float32)
    ret4 = np.zeros(len(rounds), np.float32)
    row0, round0 = 0, 0
    for ep in episodes:
        ep_rounds = [r for r in ep.rounds if len(r)]
        n_rows = sum(len(r) for r in ep_rounds)
        if n_rows != len(ep.l3_reward):
            raise ConfigError(f"episode: {len(ep.l3_reward)} L3 rewards for {n_rows} rows")
        # L3: reorder rows thread by thread (day, partner), rounds in order; each thread terminates
        keys = [(r.day, p, j) for r in ep_rounds for j, p in enumerate(r.partners)]
        order = sorted(range(n_rows), key=lambda i: (keys[i][0], keys[i][1], i))
        idx = np.array(order, dtype=np.int64) + row0
        last = np.zeros(n_rows, bool)
        for pos in range(n_rows):
            cur = keys[order[pos]][:2]
            last[pos] = pos + 1 == n_rows or keys[order[pos + 1]][:2] != cur
        a, r_ = trajectory_gae(ep.l3_reward[order], v3n[idx], last, gamma=cfg.gamma_l3, lam=cfg.lam, cut=last)
        adv3[idx], ret3[idx] = a, r_
        row0 += n_rows
        if v4n is not None:
            n_r = len(ep_rounds)
            all_r = [i for i, r in enumerate(ep.rounds) if len(r)]
            rew = ep.l4_reward[all_r]
            term = np.array(
                [
                    r.day in ep.day_terminated and (i + 1 == n_r or ep_rounds[i + 1].day != r.day)
                    for i, r in enumerate(ep_rounds)
                ]
            )
            a, r_ = trajectory_gae(rew, v4n[round0 : round0 + n_r], term, gamma=cfg.gamma_l4, lam=cfg.lam)
            adv4[round0 : round0 + n_r], ret4[round0 : round0 + n_r] = a, r_
            round0 += n_r
    l3b = L3Batch(**{**l3b.__dict__, "advantages": torch.from_numpy(adv3), "returns": torch.from_numpy(ret3)})
    if l4b is not None:
        l4b = L4Batch(
            **{**l4b.__dict__, "advantages": torch.from_numpy(adv4), "returns": torch.from_numpy(ret4)}
        )
    return MultiBatch(l3b, l4b)


def _l3_out(l3: L3Executor, b: L3Batch):  # type: ignore[no-untyped-def]
    return l3(b.history, b.history_mask, b.goal, b.baseline, b.context, b.day_mask, b.kind_mask)


def mappo_objective(
    l3: L3Executor, l4: L4Coordinator | None, batch: MultiBatch, cfg: MAPPOConfig
) -> dict[str, float]:
    """The clipped surrogates (normalised advantages) of L3 and L4 on the whole batch (no grad)."""
    out: dict[str, float] = {}
    with torch.no_grad():
        b = batch.l3
        o3 = _l3_out(l3, b)
        lp = o3.log_prob(L3Action(b.kind, b.delivery, b.residual))
        out["l3"] = float(clipped_surrogate(lp, b.old_log_prob, _normalised(b.advantages), cfg.clip)[0])
        if l4 is not None and batch.l4 is not None:
            c = batch.l4
            o4 = l4(c.threads, c.thread_mask)
            adv = _normalised(c.advantages)[:, None].expand_as(c.alpha)
            lp4 = o4.alpha.log_prob_elements(c.alpha)
            out["l4"] = float(clipped_surrogate(lp4, c.old_log_prob, adv, cfg.clip, c.thread_mask)[0])
    return out


def mappo_update(
    l3: L3Executor,
    l4: L4Coordinator | None,
    critic: CentralCritic | None,
    optimisers: dict[str, torch.optim.Optimizer],
    batch: MultiBatch,
    cfg: MAPPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """PPO epochs for L3, L4 and (MAPPO) the critic; returns ``l3/...``, ``l4/...``,
    ``critic/...`` mean stats. ``optimisers``: ``"l3"``, ``"l4"`` (with L4), ``"critic"`` (MAPPO).
    The critic's input normalisers are updated on the batch first."""
    if cfg.centralised:
        if critic is None:
            raise ConfigError("MAPPO with centralised=True needs a CentralCritic")
        critic.global_norm.update(batch.l3.global_state)
        critic.thread_norm.update(batch.l3.threads)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}

    def add(prefix: str, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            sums[f"{prefix}/{key}"] = sums.get(f"{prefix}/{key}", 0.0) + value
            counts[f"{prefix}/{key}"] = counts.get(f"{prefix}/{key}", 0) + 1

    l3.train()
    if l4 is not None:
        l4.train()
    b3, b4 = batch.l3, batch.l4
    adv3 = _normalised(b3.advantages)
    adv4 = _normalised(b4.advantages) if b4 is not None else None
    n_mb = max(1, -(-len(b3) // cfg.minibatch))
    epochs = 0
    for _ in range(cfg.epochs):
        kls = []
        perm3 = torch.randperm(len(b3), generator=generator)
        perm4 = torch.randperm(len(b4), generator=generator) if b4 is not None else None
        for m in range(n_mb):
            idx = perm3[m * cfg.minibatch : (m + 1) * cfg.minibatch]
            mb = b3.select(idx)
            o3 = _l3_out(l3, mb)
            lp = o3.log_prob(L3Action(mb.kind, mb.delivery, mb.residual))
            objective, stats = clipped_surrogate(lp, mb.old_log_prob, adv3[idx], cfg.clip)
            entropy = o3.entropy().mean()
            loss = -objective - cfg.entropy_coef * entropy
            if cfg.centralised:
                assert critic is not None
                v = critic.thread_value(mb.global_state, mb.threads)
                critic_loss = (v - mb.returns).square().mean()
                stats["value_loss"] = float(critic_loss.detach())
            else:
                critic_loss = (o3.value - mb.returns).square().mean()
                stats["value_loss"] = float(critic_loss.detach())
            loss = loss + cfg.value_coef * critic_loss
            stats.update(policy_loss=-float(objective.detach()), entropy=float(entropy.detach()))
            kls.append(stats["approx_kl"])
            add("l3", stats)
            if b4 is not None and l4 is not None and perm4 is not None and adv4 is not None:
                size4 = -(-len(b4) // n_mb)
                idx4 = perm4[m * size4 : (m + 1) * size4]
                if len(idx4):
                    c = b4.select(idx4)
                    o4 = l4(c.threads, c.thread_mask)
                    lp4 = o4.alpha.log_prob_elements(c.alpha)
                    a4 = adv4[idx4][:, None].expand_as(c.alpha)
                    obj4, st4 = clipped_surrogate(lp4, c.old_log_prob, a4, cfg.clip, c.thread_mask)
                    ent4 = (o4.alpha.entropy_elements().sum() / c.thread_mask.sum().clamp(min=1)).to(
                        obj4.dtype
                    )
                    v4 = (
                        critic.round_value(c.global_state)
                        if cfg.centralised and critic is not None
                        else o4.value
                    )
                    vl4 = (v4 - c.returns).square().mean()
                    loss = loss - obj4 - cfg.entropy_coef * ent4 + cfg.value_coef * vl4
                    st4.update(
                        policy_loss=-float(obj4.detach()),
                        entropy=float(ent4.detach()),
                        value_loss=float(vl4.detach()),
                    )
                    add("l4", st4)
            for opt in optimisers.values():
                opt.zero_grad()
            loss.backward()
            params = list(l3.parameters()) + (list(l4.parameters()) if l4 is not None else [])
            if critic is not None and cfg.centralised:
                params += list(critic.parameters())
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            for opt in optimisers.values():
                opt.step()
        epochs += 1
        if cfg.target_kl is not None and float(np.mean(kls)) > cfg.target_kl:
            break
    l3.eval()
    if l4 is not None:
        l4.eval()
    result = {key: value / counts[key] for key, value in sums.items()}
    result["epochs"] = float(epochs)
    return result
