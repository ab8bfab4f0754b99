"""The hierarchical policy as the agent calls it: NumPy in, NumPy out, one torch pass per call.

:class:`HRLPolicy` wraps a :class:`~hrl.train.bundle.Bundle` (no SCML here). ``goal`` runs L2
once a day; ``act_round`` runs L4 and L3 over all threads of a round in one batched pass each
(no per-thread torch calls). Both run under ``torch.inference_mode``. In ``deterministic`` mode
the actions are the distributions' modes; in ``sample`` mode they are drawn (from the policy's
own ``torch.Generator``) and their log-probs and values are returned for the transition records.
Any model error (a :class:`~hrl.errors.NonFiniteError` from a NaN/inf output, a shape error, ...)
propagates: the agent catches it and falls back to L1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hrl.errors import ConfigError
from hrl.models.l3 import L3Action
from hrl.models.l4 import thread_features
from hrl.train.bundle import Bundle

__all__ = ["MODES", "GoalStep", "HRLPolicy", "Mode", "RoundStep"]

Mode = Literal["deterministic", "sample"]
MODES = ("deterministic", "sample")


@dataclass(frozen=True)
class GoalStep:
    """L2's decision: ``goal`` ``[4]`` (normalised), its log-prob and the value (tensors kept for
    the transition record)."""

    goal: NDArray[np.float32]
    log_prob: float
    value: float
    inputs: tuple[Tensor, Tensor, Tensor, Tensor]


@dataclass(frozen=True)
class RoundStep:
    """L3/L4's decisions over ``K`` threads (NumPy views of the tensors below).

    ``kind``/``day`` int64 ``[K]``, ``fraction`` ``[K, 2]`` (quantity, price in L1's box),
    ``alpha`` ``[K]``; the tensors hold what a transition record needs.
    """

    kind: NDArray[np.int64]
    day: NDArray[np.int64]
    fraction: NDArray[np.float32]
    alpha: NDArray[np.float32]
    l3_log_prob: Tensor
    l3_value: Tensor
    threads: Tensor
    alpha_t: Tensor
    l4_log_prob_elements: Tensor
    l4_value: float


class HRLPolicy:
    """L2 + L3 + L4 for one agent.

    Args:
        bundle: the models (eval mode); L3/L4 may be absent (see :mod:`hrl.train.bundle`).
        mode: ``"deterministic"`` (play) or ``"sample"`` (rollouts).
        seed: seeds the sampling generator (``sample`` mode).
    """

    def __init__(self, bundle: Bundle, *, mode: Mode = "deterministic", seed: int = 0) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        self.bundle = bundle
        self.mode = mode
        self.generator = torch.Generator().manual_seed(seed)
        for model in (bundle.l2, bundle.l3, bundle.l4):
            if model is not None:
                model.eval()

    @property
    def has_l3(self) -> bool:
        return self.bundle.l3 is not None

    def goal(
        self,
        state: NDArray[np.float32],
        state_mask: NDArray[np.bool_],
        profile: NDArray[np.float32],
        side_mask: NDArray[np.bool_],
    ) -> GoalStep:
        """L2 on one agent-day: ``state [K+1, F]``, ``state_mask [K+1]``, ``profile [11, 2]``,
        ``side_mask [4]``."""
        inputs = (
            torch.from_numpy(state).unsqueeze(0),
            torch.from_numpy(state_mask).unsqueeze(0),
            torch.from_numpy(profile).unsqueeze(0),
            torch.from_numpy(side_mask).unsqueeze(0),
        )
        with torch.inference_mode():
            out = self.bundle.l2(*inputs)
            goal = out.dist.sample(self.generator) if self.mode == "sample" else out.deterministic()
            log_prob = float(out.log_prob(goal)[0]) if self.mode == "sample" else 0.0
            value = float(out.value[0])
        return GoalStep(goal[0].numpy(), log_prob, value, inputs)

    def act_round(self, *arrays: NDArray[np.generic]) -> RoundStep:
        """L4 then L3 over ``K`` threads: ``arrays`` are L3's inputs in the order of
        :data:`hrl.models.l3.L3_INPUTS` (shapes as :meth:`hrl.models.L3Executor.forward`)."""
        l3, l4 = self.bundle.l3, self.bundle.l4
        if l3 is None:
            raise ConfigError("act_round needs an L3 model in the bundle")
        sample = self.mode == "sample"
        inputs = [torch.from_numpy(a) for a in arrays]
        h, hm, g, b, c = inputs[:5]
        k = h.shape[0]
        with torch.inference_mode():
            threads = thread_features(g, b, c, h, hm)
            if l4 is not None:
                out4 = l4(threads.unsqueeze(0), torch.ones(1, k, dtype=torch.bool))
                alpha = out4.alpha.sample(self.generator) if sample else out4.deterministic()
                lp4 = out4.alpha.log_prob_elements(alpha)[0] if sample else torch.zeros(k)
                alpha, v4 = alpha[0], float(out4.value[0])
            else:
                alpha, lp4, v4 = torch.ones(k), torch.zeros(k), 0.0
            out3 = l3(*inputs)
            action = out3.sample(self.generator) if sample else out3.deterministic()
            lp3 = out3.log_prob(action) if sample else torch.zeros(k)
            v3 = out3.value
        return RoundStep(
            kind=action.kind.numpy(),
            day=action.delivery.numpy(),
            fraction=action.fraction.numpy(),
            alpha=alpha.numpy(),
            l3_log_prob=lp3,
            l3_value=v3,
            threads=threads,
            alpha_t=alpha,
            l4_log_prob_elements=lp4,
            l4_value=v4,
        )

    @staticmethod
    def l3_action(step: RoundStep) -> L3Action:
        """The L3 action of ``step`` as tensors (for re-evaluating log-probs in training)."""
        return L3Action(
            torch.from_numpy(step.kind), torch.from_numpy(step.day), torch.from_numpy(step.fraction)
        )
