"""The centralised critic of MAPPO (L3/L4): values from a global state of the round.

Global state of a round (:func:`round_global_state`, ``G = 37 + 2 * 16 + 1 = 70`` features): the
agent's macro state of the day (today's row of L2's window, :data:`hrl.features.MACRO_FEATURES`),
the mean and the max over the round's threads of L4's thread features
(:func:`hrl.models.l4.thread_features`) and the thread count / 20. Every thread (an L3 "agent")
gets the value ``V(global, own thread features)``; the round as a whole (L4) gets ``V(global)``.
The critic sees more than any actor (all threads of the round), and it is used only in training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hrl.errors import ShapeError
from hrl.models.normalise import FeatureNormaliser

__all__ = ["CentralCritic", "round_global_state"]

MACRO_DIM = 37
THREAD_DIM = 16
GLOBAL_DIM = MACRO_DIM + 2 * THREAD_DIM + 1
THREAD_NORM = 20.0


def round_global_state(macro: Tensor, threads: Tensor) -> Tensor:
    """``[G]`` global state from today's macro features ``[37]`` and the round's thread features
    ``[K, 16]`` (``K`` may be 0)."""
    if macro.shape != (MACRO_DIM,) or threads.ndim != 2 or threads.shape[1] != THREAD_DIM:
        raise ShapeError(
            f"round_global_state: expected macro [{MACRO_DIM}] and threads [K, {THREAD_DIM}], "
            f"got {tuple(macro.shape)} and {tuple(threads.shape)}"
        )
    if threads.shape[0] == 0:
        pooled = torch.zeros(2 * THREAD_DIM)
    else:
        pooled = torch.cat([threads.mean(0), threads.max(0).values])
    count = torch.tensor([threads.shape[0] / THREAD_NORM])
    return torch.cat([macro.float(), pooled.float(), count])


class CentralCritic(nn.Module):
    """Two value heads over the global state: per thread ``V(global, thread)`` (L3) and per round
    ``V(global)`` (L4). Inputs are normalised by running statistics (updated by the trainer on
    each batch before the update, stored in the state dict)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.global_norm = FeatureNormaliser(GLOBAL_DIM)
        self.thread_norm = FeatureNormaliser(THREAD_DIM)
        self.l3 = nn.Sequential(
            nn.Linear(GLOBAL_DIM + THREAD_DIM, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        )
        self.l4 = nn.Sequential(
            nn.Linear(GLOBAL_DIM, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        )

    def thread_value(self, global_state: Tensor, thread: Tensor) -> Tensor:
        """``[N]`` value of each thread row from ``global_state [N, G]`` and ``thread [N, 16]``."""
        x = torch.cat([self.global_norm(global_state), self.thread_norm(thread)], -1)
        out: Tensor = self.l3(x).squeeze(-1)
        return out

    def round_value(self, global_state: Tensor) -> Tensor:
        """``[R]`` value of each round from ``global_state [R, G]``."""
        out: Tensor = self.l4(self.global_norm(global_state)).squeeze(-1)
        return out
