"""The centralised critic of MAPPO (L3/L4): values from a global state of the round that includes
what the world object shows in training.

Global state of a round (:func:`round_global_state`, ``G = 37 + 2 * 16 + 1 + W`` features):

- the agent's macro state of the day (today's row of L2's window, :data:`hrl.features.MACRO_FEATURES`);
- the mean and the max over the round's threads of L4's thread features
  (:func:`hrl.models.l4.thread_features`) and the thread count / 20: every thread of the round,
  which no single L3 actor sees;
- ``W`` world features of the day (:func:`hrl.train.world_view.world_view`, ``W = 50`` there):
  the other learners' states, the partners' balances, stock and needs, and every product's
  trading price, supply, demand and stock -- read off the live world, in training only.

Every thread (an L3 "agent") gets the value ``V(global, own thread features)``; the round as a
whole (L4) gets ``V(global)``. Only the trainer uses it; no actor sees the world features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hrl.errors import ShapeError
from hrl.models.normalise import FeatureNormaliser

__all__ = ["CentralCritic", "round_global_state"]

MACRO_DIM = 37
THREAD_DIM = 16
ROUND_DIM = MACRO_DIM + 2 * THREAD_DIM + 1
"""Features of the round part of the global state (without the world features)."""
THREAD_NORM = 20.0


def round_global_state(macro: Tensor, threads: Tensor, world: Tensor | None = None) -> Tensor:
    """``[G]`` global state from today's macro features ``[37]``, the round's thread features
    ``[K, 16]`` (``K`` may be 0) and the day's world features ``[W]`` (None: ``W = 0``)."""
    if macro.shape != (MACRO_DIM,) or threads.ndim != 2 or threads.shape[1] != THREAD_DIM:
        raise ShapeError(
            f"round_global_state: expected macro [{MACRO_DIM}] and threads [K, {THREAD_DIM}], "
            f"got {tuple(macro.shape)} and {tuple(threads.shape)}"
        )
    if world is not None and world.ndim != 1:
        raise ShapeError(f"round_global_state: expected world [W], got {tuple(world.shape)}")
    if threads.shape[0] == 0:
        pooled = torch.zeros(2 * THREAD_DIM)
    else:
        pooled = torch.cat([threads.mean(0), threads.max(0).values])
    count = torch.tensor([threads.shape[0] / THREAD_NORM])
    parts = [macro.float(), pooled.float(), count]
    if world is not None:
        parts.append(world.float())
    return torch.cat(parts)


def _mlp(inputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
    )


class CentralCritic(nn.Module):
    """Two value heads over the global state: per thread ``V(global, thread)`` (L3) and per round
    ``V(global)`` (L4). Inputs are normalised by running statistics (updated by the trainer on
    each batch before the update, stored in the state dict).

    Args:
        hidden: width of both MLPs.
        world_dim: ``W``, the world features appended to the round state (0: none).
    """

    def __init__(self, hidden: int = 64, world_dim: int = 0) -> None:
        super().__init__()
        self.hidden = hidden
        self.world_dim = world_dim
        self.global_dim = ROUND_DIM + world_dim
        self.global_norm = FeatureNormaliser(self.global_dim)
        self.thread_norm = FeatureNormaliser(THREAD_DIM)
        self.l3 = _mlp(self.global_dim + THREAD_DIM, hidden)
        self.l4 = _mlp(self.global_dim, hidden)

    def _check(self, global_state: Tensor) -> None:
        if global_state.ndim != 2 or global_state.shape[1] != self.global_dim:
            raise ShapeError(
                f"global_state: expected [N, {self.global_dim}], got {tuple(global_state.shape)}"
            )

    def thread_value(self, global_state: Tensor, thread: Tensor) -> Tensor:
        """``[N]`` value of each thread row from ``global_state [N, G]`` and ``thread [N, 16]``."""
        self._check(global_state)
        x = torch.cat([self.global_norm(global_state), self.thread_norm(thread)], -1)
        out: Tensor = self.l3(x).squeeze(-1)
        return out

    def round_value(self, global_state: Tensor) -> Tensor:
        """``[R]`` value of each round from ``global_state [R, G]``."""
        self._check(global_state)
        out: Tensor = self.l4(self.global_norm(global_state)).squeeze(-1)
        return out
