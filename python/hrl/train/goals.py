"""L3's goal input in training: the goal L2 sets for the day, as in play.

The micro samples of experts carry no goal (the day's signed contracts, which the macro goal label
sums, include the outcome of the negotiation being labelled). :func:`l2_goal_frame` runs an L2
model on every macro row's start-of-day window (:func:`hrl.train.adapters.macro_tensors_from_frame`:
only what the agent knew before the day's negotiations) and returns its deterministic goal, which
:func:`hrl.train.adapters.micro_tensors_from_frame` takes as ``goals=``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from hrl.models.l2 import L2Manager
from hrl.train.adapters import macro_tensors_from_frame

__all__ = ["l2_goal_frame"]


def l2_goal_frame(l2: L2Manager, macro: pl.DataFrame, *, batch_size: int = 4096) -> pl.DataFrame:
    """``world, agent, day, goal`` (Array[Float32, 4], normalised: q / n_lines, p / trading
    price; 0 on the sides the agent cannot trade) of L2's deterministic goal per macro row."""
    tensors = macro_tensors_from_frame(macro, l2.config)
    keys = macro.sort(["world", "agent", "day"]).select("world", "agent", "day")
    was_training = l2.training
    l2.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(tensors), batch_size):
            rows = slice(start, start + batch_size)
            out = l2(
                tensors.state[rows], tensors.state_mask[rows], tensors.profile[rows], tensors.side_mask[rows]
            )
            parts.append(out.deterministic())
    l2.train(was_training)
    goal = torch.cat(parts).numpy() if parts else np.zeros((0, 4), np.float32)
    return keys.with_columns(pl.Series("goal", goal.astype(np.float32), dtype=pl.Array(pl.Float32, 4)))
