"""The hierarchical policy as the agent calls it: NumPy in, NumPy out, one pass per call.

:class:`HRLPolicy` wraps a :class:`~hrl.train.bundle.Bundle` (no SCML here). ``goal`` runs L2
once a day; ``act_round`` runs L4 and L3 over all threads of a round in one batched pass each
(no per-thread calls). In ``deterministic`` mode (play) the actions are the distributions' modes,
computed by the NumPy copies of the models (:mod:`hrl.models.numpy_play`, taken when the policy
is built: at these sizes torch's per-operation overhead dominates a call). In ``sample`` mode
(rollouts) they are drawn by the torch models under ``torch.inference_mode`` (from the policy's
own ``torch.Generator``), and the steps carry the log-probs, values and inputs the transition
records need. Any model error (a :class:`~hrl.errors.NonFiniteError` from a NaN/inf output, a
shape error, ...) propagates: the agent catches it and falls back to L1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hrl.errors import ConfigError
from hrl.models.l3 import COUNTER, L3Action
from hrl.models.l4 import thread_features
from hrl.models.numpy_play import NumpyL2, NumpyL3, NumpyL4, numpy_thread_features
from hrl.train.bundle import Bundle

__all__ = ["MODES", "GoalRecord", "GoalStep", "HRLPolicy", "Mode", "RoundRecord", "RoundStep"]

Mode = Literal["deterministic", "sample"]
MODES = ("deterministic", "sample")


@dataclass(frozen=True)
class GoalRecord:
    """What an L2 transition record needs (``sample`` mode): the goal's log-prob, the value and
    the batched inputs (``[1, ...]`` tensors)."""

    log_prob: float
    value: float
    inputs: tuple[Tensor, Tensor, Tensor, Tensor]


@dataclass(frozen=True)
class GoalStep:
    """L2's decision: ``goal`` ``[4]`` (normalised); ``record`` in ``sample`` mode, else None."""

    goal: NDArray[np.float32]
    record: GoalRecord | None


@dataclass(frozen=True)
class RoundRecord:
    """What a round transition record needs (``sample`` mode), over ``K`` threads: L3's log-prob
    and value ``[K]``, L4's thread features ``[K, thread_dim]``, alpha ``[K]``, its per-thread
    log-densities ``[K]`` and value."""

    l3_log_prob: Tensor
    l3_value: Tensor
    threads: Tensor
    alpha_t: Tensor
    l4_log_prob_elements: Tensor
    l4_value: float


@dataclass(frozen=True)
class RoundStep:
    """L3/L4's decisions over ``K`` threads: ``kind``/``day`` int64 ``[K]``, ``fraction``
    ``[K, 2]`` (quantity, price in L1's box), ``alpha`` ``[K]``, ``follow`` int64 ``[K]`` (1: the
    thread plays L1's own decision; 0 everywhere without L3's follow gate); ``record`` in
    ``sample`` mode, else None."""

    kind: NDArray[np.int64]
    day: NDArray[np.int64]
    fraction: NDArray[np.float32]
    alpha: NDArray[np.float32]
    follow: NDArray[np.int64]
    record: RoundRecord | None


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
        play = mode == "deterministic"
        self._l2 = NumpyL2(bundle.l2) if play else None
        self._l3 = NumpyL3(bundle.l3) if play and bundle.l3 is not None else None
        self._l4 = NumpyL4(bundle.l4) if play and bundle.l4 is not None else None

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
        if self._l2 is not None:
            return GoalStep(self._l2.goal(state, state_mask, profile, side_mask), None)
        inputs = (
            torch.from_numpy(state).unsqueeze(0),
            torch.from_numpy(state_mask).unsqueeze(0),
            torch.from_numpy(profile).unsqueeze(0),
            torch.from_numpy(side_mask).unsqueeze(0),
        )
        with torch.inference_mode():
            out = self.bundle.l2(*inputs)
            goal = out.dist.sample(self.generator)
            record = GoalRecord(float(out.log_prob(goal)[0]), float(out.value[0]), inputs)
        return GoalStep(goal[0].numpy(), record)

    def act_round(self, *arrays: NDArray[np.generic]) -> RoundStep:
        """L4 then L3 over ``K`` threads: ``arrays`` are L3's inputs in the order of
        :data:`hrl.models.l3.L3_INPUTS` (shapes as :meth:`hrl.models.L3Executor.forward`)."""
        l3, l4 = self.bundle.l3, self.bundle.l4
        if l3 is None:
            raise ConfigError("act_round needs an L3 model in the bundle")
        if self.mode == "deterministic":
            return self._play_round(arrays)
        inputs = [torch.from_numpy(a) for a in arrays]
        h, hm, g, b, c = inputs[:5]
        k = h.shape[0]
        with torch.inference_mode():
            threads = thread_features(g, b, c, h, hm)
            if l4 is not None:
                out4 = l4(threads.unsqueeze(0), torch.ones(1, k, dtype=torch.bool))
                alpha = out4.alpha.sample(self.generator)
                lp4 = out4.alpha.log_prob_elements(alpha)[0]
                alpha, v4 = alpha[0], float(out4.value[0])
            else:
                alpha, lp4, v4 = torch.ones(k), torch.zeros(k), 0.0
            out3 = l3(*inputs)
            action = out3.sample(self.generator)
            record = RoundRecord(out3.log_prob(action), out3.value, threads, alpha, lp4, v4)
        follow = action.follow.numpy() if action.follow is not None else np.zeros(k, np.int64)
        return RoundStep(
            kind=action.kind.numpy(),
            day=action.delivery.numpy(),
            fraction=action.fraction.numpy(),
            alpha=alpha.numpy(),
            follow=follow,
            record=record,
        )

    def _play_round(self, arrays: tuple[NDArray[np.generic], ...]) -> RoundStep:
        """The deterministic round through the NumPy copies of L3 and L4. L3 runs first: alpha
        only splits a day's cap among two or more counter-offers (:mod:`hrl.models.box`), so L4
        runs only when L3 makes two or more (alpha is 1 elsewhere, where it has no effect;
        a thread that follows L1 makes none of L3's)."""
        assert self._l3 is not None
        kind, day, fraction, follow = self._l3.act(*arrays)  # type: ignore[arg-type]
        if self._l4 is not None and int(((kind == COUNTER) & (follow == 0)).sum()) >= 2:
            history, history_mask, goal, baseline, context = arrays[:5]
            threads = numpy_thread_features(goal, baseline, context, history, history_mask)  # type: ignore[arg-type]
            alpha = self._l4.alpha(threads)
        else:
            alpha = np.ones(len(kind), np.float32)
        return RoundStep(kind=kind, day=day, fraction=fraction, alpha=alpha, follow=follow, record=None)

    @staticmethod
    def l3_action(step: RoundStep) -> L3Action:
        """The L3 action of ``step`` as tensors (for re-evaluating log-probs in training)."""
        return L3Action(
            torch.from_numpy(step.kind),
            torch.from_numpy(step.day),
            torch.from_numpy(step.fraction),
            torch.from_numpy(step.follow),
        )
