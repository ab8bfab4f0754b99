"""PPO for L2 (the daily goal): clipped surrogate, value loss, entropy bonus, minibatches; GAE
from the Rust kernel (:func:`hrl.compute_gae`). Written for this project (no code copied).

Each learner-world is one trajectory of days. Its last decision is a termination (the world is
over and its score final: nothing is left to bootstrap, see :mod:`hrl.train.rewards`); a
bankruptcy day terminates too. :func:`trajectory_gae` also serves truncated traces (a cut that
bootstraps from the value of its own state).

Guards shared with MAPPO: every input tensor of a batch and every loss is checked for NaN/inf
(:class:`~hrl.errors.NonFiniteError` naming the tensor, e.g. ``l2.advantages`` or
``l2/value_loss``); actor and critic (value head) parameters are clipped separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hrl.agent.transitions import L2Transition
from hrl.errors import ConfigError
from hrl.models.checks import ensure_finite
from hrl.models.l2 import L2Manager
from hrl.returns import compute_gae

__all__ = [
    "L2Batch",
    "PPOConfig",
    "Rows",
    "check_batch",
    "check_losses",
    "clip_grads",
    "clipped_surrogate",
    "explained_variance",
    "l2_batch",
    "l2_objective",
    "ppo_loss",
    "ppo_update_l2",
    "trajectory_gae",
]


@dataclass(frozen=True)
class PPOConfig:
    """L2 PPO hyper-parameters.

    Attributes:
        lr: Adam learning rate (L2); gamma, lam: GAE discount and lambda per day;
        clip: ratio clip epsilon; value_coef, entropy_coef: loss weights; epochs: passes over a
        batch; minibatch: samples per gradient step; max_grad_norm: gradient-norm clip of the
        policy parameters; value_max_grad_norm: that of the value head (clipped separately);
        target_kl: stop the epochs early when the approximate KL exceeds it (None: never).
    """

    lr: float = 3e-4
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 1e-3
    epochs: int = 4
    minibatch: int = 64
    max_grad_norm: float = 0.5
    value_max_grad_norm: float = 1.0
    target_kl: float | None = 0.05

    def __post_init__(self) -> None:
        if self.clip <= 0 or self.epochs < 1 or self.minibatch < 1 or self.lr <= 0:
            raise ConfigError(f"PPOConfig: invalid values {self}")
        if min(self.max_grad_norm, self.value_max_grad_norm) <= 0:
            raise ConfigError(f"PPOConfig: gradient clips must be > 0, got {self}")


def trajectory_gae(
    rewards: NDArray[np.float64],
    values: NDArray[np.float64],
    terminated: NDArray[np.bool_],
    *,
    gamma: float,
    lam: float,
    cut: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """GAE over one trajectory ``[T]`` (time order).

    ``next_values[t] = values[t + 1]`` inside a trace. ``terminated[t]`` ends the trace with no
    bootstrap (``A_t = r_t - V_t`` + nothing from later rows). A cut (``cut[t]``, and always the
    last row) that is not a termination is a truncation: the trace ends and bootstraps from
    ``values[t]`` (``A_t = r_t + gamma V_t - V_t``). Returns ``(advantages, lambda-returns)``.
    """
    t = len(rewards)
    truncated = np.zeros(t, bool) if cut is None else cut.copy()
    if t:
        truncated[-1] = True
    truncated &= ~terminated
    next_values = np.append(values[1:], values[-1:]) if t else values
    next_values = np.where(truncated, values, next_values)
    return compute_gae(rewards, values, next_values, terminated, truncated, gamma=gamma, lam=lam)


class Rows:
    """Mixin for batch dataclasses whose tensor fields all have one row per sample in dim 0."""

    def __len__(self) -> int:
        return int(getattr(self, fields(self)[0].name).shape[0])  # type: ignore[arg-type]

    def select(self, index: Tensor) -> Self:
        """The rows ``index`` of every field."""
        return type(self)(*(getattr(self, f.name)[index] for f in fields(self)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class L2Batch(Rows):
    """Stacked L2 samples (``N`` agent-days): inputs ``state [N, K+1, 37]``, ``state_mask``,
    ``profile [N, 11, 2]``, ``side_mask [N, 4]``; action ``goal [N, 4]``; ``old_log_prob``,
    ``advantages``, ``returns`` and the rollout's value estimates ``values`` (all ``[N]``)."""

    state: Tensor
    state_mask: Tensor
    profile: Tensor
    side_mask: Tensor
    goal: Tensor
    old_log_prob: Tensor
    advantages: Tensor
    returns: Tensor
    values: Tensor


def l2_batch(
    steps: Sequence[L2Transition], advantages: NDArray[np.float32], returns: NDArray[np.float32]
) -> L2Batch:
    """Stack transitions and their advantages / returns."""
    if not steps:
        raise ConfigError("l2_batch: no transitions")
    return L2Batch(
        state=torch.stack([s.state for s in steps]),
        state_mask=torch.stack([s.state_mask for s in steps]),
        profile=torch.stack([s.profile for s in steps]),
        side_mask=torch.stack([s.side_mask for s in steps]),
        goal=torch.stack([s.goal for s in steps]),
        old_log_prob=torch.tensor([s.log_prob for s in steps], dtype=torch.float32),
        advantages=torch.as_tensor(advantages, dtype=torch.float32),
        returns=torch.as_tensor(returns, dtype=torch.float32),
        values=torch.tensor([s.value for s in steps], dtype=torch.float32),
    )


def clipped_surrogate(
    log_prob: Tensor, old_log_prob: Tensor, advantages: Tensor, clip: float, weight: Tensor | None = None
) -> tuple[Tensor, dict[str, float]]:
    """The PPO clipped surrogate objective (to MAXIMISE) and its stats: ``approx_kl`` (the
    ``(r - 1) - log r`` estimator), ``clip_fraction``, ``ratio_mean``, ``ratio_max``.
    ``weight`` (0/1) masks elements out of the means."""
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    objective = torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    w = torch.ones_like(objective) if weight is None else weight.to(objective.dtype)
    denom = w.sum().clamp(min=1.0)
    with torch.no_grad():
        stats = {
            "approx_kl": float((((ratio - 1) - log_ratio) * w).sum() / denom),
            "clip_fraction": float((((ratio - 1).abs() > clip).to(w.dtype) * w).sum() / denom),
            "ratio_mean": float((ratio * w).sum() / denom),
            "ratio_max": float(torch.where(w > 0, ratio, torch.zeros_like(ratio)).max())
            if w.numel()
            else 1.0,
        }
    return (objective * w).sum() / denom, stats


def check_batch(prefix: str, batch: Any) -> None:
    """Raise :class:`NonFiniteError` naming ``<prefix>.<field>`` for a NaN/inf in any float
    tensor field of the dataclass ``batch``."""
    ensure_finite(
        **{
            f"{prefix}.{f.name}": getattr(batch, f.name)
            for f in fields(batch)
            if isinstance(getattr(batch, f.name), Tensor)
        }
    )


def check_losses(prefix: str, **losses: Tensor) -> None:
    """Raise :class:`NonFiniteError` naming ``<prefix>/<loss>`` for a NaN/inf loss."""
    ensure_finite(**{f"{prefix}/{k}": v for k, v in losses.items()})


def ppo_loss(
    prefix: str,
    objective: Tensor,
    value_loss: Tensor,
    entropy: Tensor,
    stats: dict[str, float],
    *,
    value_coef: float,
    entropy_coef: float,
) -> Tensor:
    """``-objective + value_coef * value_loss - entropy_coef * entropy`` after the NaN/inf check
    of each term (:func:`check_losses`); adds ``policy_loss``, ``value_loss``, ``entropy`` to
    ``stats``."""
    check_losses(prefix, policy_loss=objective, value_loss=value_loss, entropy=entropy)
    stats.update(
        policy_loss=-float(objective.detach()),
        value_loss=float(value_loss.detach()),
        entropy=float(entropy.detach()),
    )
    loss: Tensor = -objective + value_coef * value_loss - entropy_coef * entropy
    return loss


def clip_grads(
    actor: Iterable[Tensor], critic: Iterable[Tensor], max_actor: float, max_critic: float
) -> tuple[float, float]:
    """Clip the gradient norms of the actor and the critic parameters SEPARATELY (a large value
    loss cannot eat the policy's step); returns both norms before clipping."""
    a = torch.nn.utils.clip_grad_norm_([p for p in actor if p.grad is not None], max_actor)
    c = torch.nn.utils.clip_grad_norm_([p for p in critic if p.grad is not None], max_critic)
    return float(a), float(c)


def explained_variance(values: Tensor, returns: Tensor) -> float:
    """``1 - Var(returns - values) / Var(returns)`` (1: perfect, 0: no better than the mean;
    NaN when the returns do not vary)."""
    var = float(returns.var(unbiased=False)) if returns.numel() > 1 else 0.0
    if var == 0.0:
        return float("nan")
    return 1.0 - float((returns - values).var(unbiased=False)) / var


def _normalised(adv: Tensor) -> Tensor:
    return (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8) if adv.numel() > 1 else adv


def l2_objective(model: L2Manager, batch: L2Batch, cfg: PPOConfig) -> float:
    """The clipped surrogate (normalised advantages) of ``model`` on the whole batch (no grad)."""
    with torch.no_grad():
        out = model(batch.state, batch.state_mask, batch.profile, batch.side_mask)
        objective, _ = clipped_surrogate(
            out.log_prob(batch.goal), batch.old_log_prob, _normalised(batch.advantages), cfg.clip
        )
    return float(objective)


def ppo_update_l2(
    model: L2Manager,
    optimiser: torch.optim.Optimizer,
    batch: L2Batch,
    cfg: PPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """PPO epochs over ``batch``; returns mean losses and stats (``policy_loss``, ``value_loss``,
    ``entropy``, ``approx_kl``, ``clip_fraction``, ``ratio_max``, ``epochs``)."""
    check_batch("l2", batch)
    model.train()
    adv_all = _normalised(batch.advantages)
    critic = [p for n, p in model.named_parameters() if n.startswith("value_head.")]
    actor = [p for n, p in model.named_parameters() if not n.startswith("value_head.")]
    sums: dict[str, float] = {}
    steps, epochs_done = 0, 0
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(batch), generator=generator)
        kls = []
        for start in range(0, len(batch), cfg.minibatch):
            idx = perm[start : start + cfg.minibatch]
            mb = batch.select(idx)
            out = model(mb.state, mb.state_mask, mb.profile, mb.side_mask)
            objective, stats = clipped_surrogate(
                out.log_prob(mb.goal), mb.old_log_prob, adv_all[idx], cfg.clip
            )
            value_loss = (out.value - mb.returns).square().mean()
            entropy = out.entropy().mean()
            loss = ppo_loss(
                "l2",
                objective,
                value_loss,
                entropy,
                stats,
                value_coef=cfg.value_coef,
                entropy_coef=cfg.entropy_coef,
            )
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            norm_a, norm_c = clip_grads(actor, critic, cfg.max_grad_norm, cfg.value_max_grad_norm)
            optimiser.step()
            stats.update(grad_norm_actor=norm_a, grad_norm_critic=norm_c)
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value
            kls.append(stats["approx_kl"])
            steps += 1
        epochs_done += 1
        if cfg.target_kl is not None and float(np.mean(kls)) > cfg.target_kl:
            break
    model.eval()
    result = {key: value / max(steps, 1) for key, value in sums.items()}
    result["epochs"] = float(epochs_done)
    result["explained_variance"] = explained_variance(batch.values, batch.returns)
    return result
