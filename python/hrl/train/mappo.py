"""MAPPO for L3 (one actor per thread) and L4 (one joint actor per round), with a centralised
critic (:class:`hrl.models.critic.CentralCritic`) that sees the round AND the world (the other
learners, the partners, every product's market; :mod:`hrl.train.world_view`);
``MAPPOConfig.centralised = False`` switches to IPPO (each actor's own value head:
``L3Output.value`` per thread, ``L4Output.value`` per round). Written for this project (no code
copied).

Batches, trajectories and GAE: :mod:`hrl.train.mappo_batch`. Values for GAE are computed with the
pre-update critic (or own heads) on the batch. L4's surrogate is per thread (ratio of each
thread's alpha density) with the round's advantage.

Per minibatch: one loss (L3 + L4 surrogates, entropies, value losses), every term checked for
NaN/inf (:class:`~hrl.errors.NonFiniteError` naming it, e.g. ``l4/value_loss``); the actor's
(L3, L4) and the critic's gradients are clipped SEPARATELY (``max_grad_norm`` and
``critic_max_grad_norm``; in IPPO the critic is the actors' value heads). Each epoch ends with the
KL stop over EVERY layer: the epochs stop when the mean approximate KL of L3 or of L4 exceeds
``target_kl``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hrl.errors import ConfigError
from hrl.models.critic import CentralCritic
from hrl.models.l3 import L3Executor
from hrl.models.l4 import L4Coordinator
from hrl.train.mappo_batch import (
    Episode,
    L3Batch,
    L4Batch,
    MultiBatch,
    build_multi_batch,
    l3_action,
    l3_forward,
    thread_order,
)
from hrl.train.ppo import _normalised, clip_grads, clipped_surrogate, explained_variance, ppo_loss

__all__ = [
    "Episode",
    "L3Batch",
    "L4Batch",
    "MAPPOConfig",
    "MultiBatch",
    "build_multi_batch",
    "mappo_objective",
    "mappo_update",
    "thread_order",
]


@dataclass(frozen=True)
class MAPPOConfig:
    """L3/L4 hyper-parameters.

    Attributes:
        centralised: True: MAPPO (central critic); False: IPPO (own value heads).
        lr_l3: L3 learning rate (below L2's: protect pretrained skills); lr_l4: L4 (may be higher);
        lr_gate: the learning rate of L3's follow-L1 gate head (``L3Config.follow_gate``) when it
        should learn faster than the rest of L3; None: ``lr_l3`` like every other L3 weight.
        gate_credit: what the follow gate's choice is credited with. ``"thread"``: the thread's
        L3 advantage, like the rest of L3's action (L3's shaped reward: goal alignment, trade
        edge, deals); ``"round"``: its round's L4 advantage, the GAE of the day rewards that sum to
        the score (every thread of a round shares it), while L3's own action keeps the thread's.
        l3_credit: what L3's own action (kind, day, quantity, price) is credited with, the same
        two choices: ``"thread"`` (default) its thread's shaped L3 advantage; ``"round"`` its
        round's L4 advantage (score-aligned; needs L4). The gate follows ``gate_credit``.
        lr_critic: central critic. gamma_l3, gamma_l4, lam: GAE per round; clip, value_coef,
        entropy_coef, epochs, minibatch (L3 rows; L4 takes rounds in as many minibatches),
        target_kl: as in :class:`hrl.train.ppo.PPOConfig` (the KL stop looks at L3 AND L4);
        max_grad_norm: gradient-norm clip of the actors (L3 + L4); critic_max_grad_norm: that of
        the critic (the central critic, or in IPPO the actors' value heads), clipped separately.
    """

    centralised: bool = True
    lr_l3: float = 1e-4
    lr_l4: float = 5e-4
    lr_gate: float | None = None
    gate_credit: str = "thread"
    l3_credit: str = "thread"
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
    critic_max_grad_norm: float = 1.0
    target_kl: float | None = 0.05

    def __post_init__(self) -> None:
        if self.clip <= 0 or self.epochs < 1 or self.minibatch < 1 or min(self.lr_l3, self.lr_l4) <= 0:
            raise ConfigError(f"MAPPOConfig: invalid values {self}")
        for name in ("gate_credit", "l3_credit"):
            if getattr(self, name) not in ("thread", "round"):
                raise ConfigError(
                    f"MAPPOConfig: {name} must be 'thread' or 'round', got {getattr(self, name)!r}"
                )
        if self.lr_gate is not None and not (math.isfinite(self.lr_gate) and self.lr_gate > 0):
            raise ConfigError(f"MAPPOConfig: lr_gate must be a finite rate > 0 or None, got {self.lr_gate!r}")
        if min(self.max_grad_norm, self.critic_max_grad_norm) <= 0:
            raise ConfigError(f"MAPPOConfig: gradient clips must be > 0, got {self}")


def mappo_objective(
    l3: L3Executor, l4: L4Coordinator | None, batch: MultiBatch, cfg: MAPPOConfig
) -> dict[str, float]:
    """The clipped surrogates (normalised advantages) of L3 and L4 on the whole batch (no grad)."""
    out: dict[str, float] = {}
    with torch.no_grad():
        b = batch.l3
        lp = l3_forward(l3, b).log_prob(l3_action(b))
        adv3 = _normalised(_l3_advantages(b, batch.l4 is not None, cfg))
        out["l3"] = float(clipped_surrogate(lp, b.old_log_prob, adv3, cfg.clip)[0])
        if l4 is not None and batch.l4 is not None:
            c = batch.l4
            o4 = l4(c.threads, c.thread_mask)
            adv = _normalised(c.advantages)[:, None].expand_as(c.alpha)
            lp4 = o4.alpha.log_prob_elements(c.alpha)
            out["l4"] = float(clipped_surrogate(lp4, c.old_log_prob, adv, cfg.clip, c.thread_mask)[0])
    return out


def _l3_advantages(b3: L3Batch, has_l4: bool, cfg: MAPPOConfig) -> Tensor:
    """The advantages L3's own action is credited with (``[N]``, not normalised): the thread's
    (``l3_credit = "thread"``) or its round's L4 advantage (``"round"``, which needs L4)."""
    if cfg.l3_credit == "thread":
        return b3.advantages
    if not has_l4:
        raise ConfigError("MAPPOConfig.l3_credit='round' needs L4's round advantages (an L4 model)")
    return b3.round_advantages


def _split(
    l3: L3Executor, l4: L4Coordinator | None, critic: CentralCritic | None, cfg: MAPPOConfig
) -> tuple[list[Tensor], list[Tensor]]:
    """(actor, critic) parameters: MAPPO's critic is the central critic; IPPO's the value heads."""
    models: list[torch.nn.Module] = [l3] if l4 is None else [l3, l4]
    named: list[tuple[str, Tensor]] = [(n, p) for m in models for n, p in m.named_parameters()]
    if cfg.centralised:
        central: list[Tensor] = list(critic.parameters()) if critic is not None else []
        return [p for _, p in named], central
    heads = [p for n, p in named if n.startswith("value_head.")]
    return [p for n, p in named if not n.startswith("value_head.")], heads


def _l3_loss(
    l3: L3Executor,
    critic: CentralCritic | None,
    mb: L3Batch,
    adv: Tensor,
    cfg: MAPPOConfig,
    gate_adv: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """L3's PPO loss on a minibatch; with ``gate_adv`` (``gate_credit = "round"``) the gate's
    choice is a surrogate of its own on those advantages and L3's own action one on ``adv``
    over the rows that played it (scaled by their share, so the two add up like one action)."""
    o3 = l3_forward(l3, mb)
    lp = o3.log_prob(l3_action(mb))
    objective, stats = clipped_surrogate(lp, mb.old_log_prob, adv, cfg.clip)
    if gate_adv is not None and o3.follow is not None:
        lp_gate = o3.follow.log_prob(mb.follow)
        own = mb.follow == 0
        gate_objective, _ = clipped_surrogate(lp_gate, mb.old_gate_log_prob, gate_adv, cfg.clip)
        own_objective, _ = clipped_surrogate(
            lp - lp_gate, mb.old_log_prob - mb.old_gate_log_prob, adv, cfg.clip, own
        )
        objective = gate_objective + own_objective * own.float().mean()
    entropy = o3.entropy().mean()
    if cfg.centralised:
        if critic is None:
            raise ConfigError("MAPPO with centralised=True needs a CentralCritic")
        value = critic.thread_value(mb.global_state, mb.threads)
    else:
        value = o3.value
    value_loss = (value - mb.returns).square().mean()
    coefs = {"value_coef": cfg.value_coef, "entropy_coef": cfg.entropy_coef}
    return ppo_loss("l3", objective, value_loss, entropy, stats, **coefs), stats


def _l4_loss(
    l4: L4Coordinator, critic: CentralCritic | None, c: L4Batch, adv: Tensor, cfg: MAPPOConfig
) -> tuple[Tensor, dict[str, float]]:
    o4 = l4(c.threads, c.thread_mask)
    lp4 = o4.alpha.log_prob_elements(c.alpha)
    objective, stats = clipped_surrogate(
        lp4, c.old_log_prob, adv[:, None].expand_as(c.alpha), cfg.clip, c.thread_mask
    )
    entropy = (o4.alpha.entropy_elements().sum() / c.thread_mask.sum().clamp(min=1)).to(objective.dtype)
    value = critic.round_value(c.global_state) if cfg.centralised and critic is not None else o4.value
    value_loss = (value - c.returns).square().mean()
    coefs = {"value_coef": cfg.value_coef, "entropy_coef": cfg.entropy_coef}
    return ppo_loss("l4", objective, value_loss, entropy, stats, **coefs), stats


def mappo_update(
    l3: L3Executor,
    l4: L4Coordinator | None,
    critic: CentralCritic | None,
    optimisers: dict[str, torch.optim.Optimizer],
    batch: MultiBatch,
    cfg: MAPPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """PPO epochs for L3, L4 and (MAPPO) the critic; returns ``l3/...``, ``l4/...`` mean stats
    (surrogate stats, losses, ``explained_variance`` of the pre-update values), ``grad_norm/actor``,
    ``grad_norm/critic``, ``epochs`` and ``kl_stop`` (1 when the KL stop skipped epochs).
    ``optimisers``: ``"l3"``, ``"l4"`` (with L4), ``"critic"`` (MAPPO). The critic's input
    normalisers are updated on the batch first."""
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
    actor_params, critic_params = _split(l3, l4, critic, cfg)
    b3, b4 = batch.l3, batch.l4
    use_l4 = b4 is not None and l4 is not None
    adv3 = _normalised(_l3_advantages(b3, b4 is not None, cfg))
    adv4 = _normalised(b4.advantages) if b4 is not None else None
    adv_gate = None
    if cfg.gate_credit == "round" and l3.follow_head is not None:
        if b4 is None:
            raise ConfigError("MAPPOConfig.gate_credit='round' needs L4's round advantages (an L4 model)")
        adv_gate = _normalised(b3.round_advantages)
    n_mb = max(1, -(-len(b3) // cfg.minibatch))
    epochs, kl_stop = 0, 0.0
    for epoch in range(cfg.epochs):
        kls: dict[str, list[float]] = {"l3": [], "l4": []}
        perm3 = torch.randperm(len(b3), generator=generator)
        perm4 = torch.randperm(len(b4), generator=generator) if b4 is not None else None
        for m in range(n_mb):
            idx = perm3[m * cfg.minibatch : (m + 1) * cfg.minibatch]
            gate = adv_gate[idx] if adv_gate is not None else None
            loss, stats = _l3_loss(l3, critic, b3.select(idx), adv3[idx], cfg, gate)
            kls["l3"].append(stats["approx_kl"])
            add("l3", stats)
            if use_l4 and l4 is not None and b4 is not None and perm4 is not None and adv4 is not None:
                size4 = -(-len(b4) // n_mb)
                idx4 = perm4[m * size4 : (m + 1) * size4]
                if len(idx4):
                    loss4, st4 = _l4_loss(l4, critic, b4.select(idx4), adv4[idx4], cfg)
                    loss = loss + loss4
                    kls["l4"].append(st4["approx_kl"])
                    add("l4", st4)
            for opt in optimisers.values():
                opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            norm_a, norm_c = clip_grads(
                actor_params, critic_params, cfg.max_grad_norm, cfg.critic_max_grad_norm
            )
            add("grad_norm", {"actor": norm_a, "critic": norm_c})
            for opt in optimisers.values():
                opt.step()
        epochs += 1
        worst = max(float(np.mean(v)) for v in kls.values() if v)
        if cfg.target_kl is not None and worst > cfg.target_kl and epoch + 1 < cfg.epochs:
            kl_stop = 1.0  # epochs were skipped
            break
    l3.eval()
    if l4 is not None:
        l4.eval()
    result = {key: value / counts[key] for key, value in sums.items()}
    result["epochs"] = float(epochs)
    result["kl_stop"] = kl_stop
    result["l3/explained_variance"] = explained_variance(b3.values, b3.returns)
    if b4 is not None:
        result["l4/explained_variance"] = explained_variance(b4.values, b4.returns)
    return result
