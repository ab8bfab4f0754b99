"""The tensor-level dataset interface of the trainers, and the split by world.

The trainers see only these frozen dataclasses of named tensors (first dim ``N`` = samples):

- :class:`MacroTensors` (L2, one row per agent-day),
- :class:`MicroTensors` (L3, one row per expert decision),
- :class:`ThreadTensors` (L4, one row per (agent, day, round) with its concurrent threads).

:mod:`hrl.train.adapters` builds them from the data pipeline's ``macro``/``micro`` tables; anything
else that fills the same fields (self-play recordings, unit-test data) works with the trainers.
Every table has ``world_id`` (int64 ``[N]``): :func:`split_by_world` holds out whole worlds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor

from hrl.config import BASELINE_DIM, FRACTION_DIM, GOAL_DIM, KIND_DIM, OFFER_DIM, PRICE_BOUNDS_DIM
from hrl.errors import ConfigError, ShapeError
from hrl.models.checks import Dims
from hrl.models.l3 import L3_INPUTS

__all__ = ["MacroTensors", "MicroTensors", "TensorTable", "ThreadTensors", "split_by_world"]

Specs = dict[str, tuple[tuple[int | str, ...], str]]
"""Field name -> (shape spec of named/fixed dims, dtype kind) for :meth:`TensorTable.validate`."""


class TensorTable:
    """Shared behaviour of the dataset dataclasses: length, row selection, validation."""

    _SPECS: ClassVar[Specs] = {}
    world_id: Tensor

    def __len__(self) -> int:
        return int(self.world_id.shape[0])

    def select(self, index: Tensor) -> Self:
        """The rows ``index`` (int64 ``[M]``) of every field, as a new table."""
        fields = {f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return type(self)(**fields)

    def validate(self, **sizes: int) -> Self:
        """Check every field's shape and dtype (``ShapeError``/``DTypeError`` name the field);
        ``sizes`` fixes named dims (e.g. ``K=5`` history days + 1). Returns ``self``."""
        dims = Dims()
        dims.sizes.update(sizes)
        for name, (spec, kind) in self._SPECS.items():
            dims.check(name, getattr(self, name), spec, dtype=kind)
        return self

    def numel_by_field(self) -> dict[str, Any]:
        """Shapes of the fields (for logs and docs)."""
        return {f.name: tuple(getattr(self, f.name).shape) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class MacroTensors(TensorTable):
    """L2 samples. ``W = history_days + 1`` (oldest first, today last), ``H`` delivery offsets.

    Attributes:
        state: float32 ``[N, W, F]`` macro features per day of the window (0 on padding days).
        state_mask: bool ``[N, W]`` False for padding days (before the agent's first logged day).
        profile: float32 ``[N, H, 2]`` committed supplies, committed sales per delivery offset / n_lines.
        side_mask: bool ``[N, 4]`` goal components the agent can trade.
        goal: float32 ``[N, 4]`` label: [Q_buy / n_lines, P_buy / tp_in, Q_sell / n_lines,
            P_sell / tp_out] of the contracts signed that day (price 0 when nothing traded).
        world_id: int64 ``[N]``.
    """

    state: Tensor
    state_mask: Tensor
    profile: Tensor
    side_mask: Tensor
    goal: Tensor
    world_id: Tensor

    _SPECS: ClassVar[Specs] = {
        "state": (("N", "W", "F"), "float"),
        "state_mask": (("N", "W"), "bool"),
        "profile": (("N", "H", 2), "float"),
        "side_mask": (("N", GOAL_DIM), "bool"),
        "goal": (("N", GOAL_DIM), "float"),
        "world_id": (("N",), "int"),
    }


@dataclass(frozen=True)
class MicroTensors(TensorTable):
    """L3 samples: one expert decision each. ``T`` history slots, ``D`` delivery offsets.

    Inputs (:data:`hrl.models.l3.L3_INPUTS`, the fields L3's forward takes, in order):
        history: float32 ``[N, T, OFFER_DIM]`` offers strictly before the decision, oldest first,
            right-padded (see :data:`hrl.config.OFFER_DIM` for the columns).
        history_mask: bool ``[N, T]`` real offers (a prefix of each row).
        goal: float32 ``[N, 4]`` L2's goal for the day (normalised as in :class:`MacroTensors`).
        baseline: float32 ``[N, 3]`` the L1 baseline offer (q / n_lines, offset / horizon, p / tp).
        context: float32 ``[N, E]`` relative time, relative round, 1 if the agent sells.
        caps: float32 ``[N, D]`` L1's largest safe quantity per offset / n_lines.
        prices: float32 ``[N, 2]`` L1's safe price interval (p_lo, p_hi) / tp.
        day_mask: bool ``[N, D]`` delivery offsets L1 allows.
        kind_mask: bool ``[N, 3]`` allowed kinds (accept only where L1 finds the offer safe).

    Labels: the expert's action projected into L1's box (:func:`hrl.train.adapters.
    project_expert_actions`):
        kind: int64 ``[N]`` (accept 0, counter 1, end 2).
        delivery: int64 ``[N]`` delivery offset (meaningful where kind == counter).
        fraction: float32 ``[N, 2]`` (quantity, price) fractions (:func:`hrl.models.box.encode`).
        fraction_mask: bool ``[N, 2]`` where the fraction is defined (counter, range > one point).
        alpha: float32 ``[N]`` the teacher's cap-sharing weight (L4's target on counter rows).
        offer: float32 ``[N, 3]`` the projected (q, offset, p) in units (accept: the partner's).
        box: float32 ``[N, 5]`` (n_lines, trading price, q_lo, p_lo, p_hi) in units, to decode.
        baseline_kind: int64 ``[N]`` the L1 baseline's kind (accept 0, counter 1, end 2; a naive
            predictor in :mod:`hrl.train.bc_report`).
        world_id: int64 ``[N]``.
        group_id: int64 ``[N]`` id of the (world, agent, day, round) the decision belongs to: the
            decisions of one group are the concurrent threads L4 coordinates.
    """

    history: Tensor
    history_mask: Tensor
    goal: Tensor
    baseline: Tensor
    context: Tensor
    caps: Tensor
    prices: Tensor
    day_mask: Tensor
    kind_mask: Tensor
    kind: Tensor
    delivery: Tensor
    fraction: Tensor
    fraction_mask: Tensor
    alpha: Tensor
    offer: Tensor
    box: Tensor
    baseline_kind: Tensor
    world_id: Tensor
    group_id: Tensor

    _SPECS: ClassVar[Specs] = {
        "history": (("N", "T", OFFER_DIM), "float"),
        "history_mask": (("N", "T"), "bool"),
        "goal": (("N", GOAL_DIM), "float"),
        "baseline": (("N", BASELINE_DIM), "float"),
        "context": (("N", "E"), "float"),
        "caps": (("N", "D"), "float"),
        "prices": (("N", PRICE_BOUNDS_DIM), "float"),
        "day_mask": (("N", "D"), "bool"),
        "kind_mask": (("N", KIND_DIM), "bool"),
        "kind": (("N",), "int"),
        "delivery": (("N",), "int"),
        "fraction": (("N", FRACTION_DIM), "float"),
        "fraction_mask": (("N", FRACTION_DIM), "bool"),
        "alpha": (("N",), "float"),
        "offer": (("N", 3), "float"),
        "box": (("N", 5), "float"),
        "baseline_kind": (("N",), "int"),
        "world_id": (("N",), "int"),
        "group_id": (("N",), "int"),
    }

    def inputs(self) -> tuple[Tensor, ...]:
        """L3's forward inputs, in order (:data:`hrl.models.l3.L3_INPUTS`)."""
        return tuple(getattr(self, name) for name in L3_INPUTS)


@dataclass(frozen=True)
class ThreadTensors(TensorTable):
    """L4 samples: one set of concurrent threads each, padded to ``K`` threads.

    Attributes:
        threads: float32 ``[N, K, thread_dim]`` :func:`hrl.models.l4.thread_features` per thread.
        thread_mask: bool ``[N, K]`` real threads.
        target: float32 ``[N, K]`` target alpha in ``[alpha_min, 1]`` (see :mod:`hrl.train.bc`).
        target_mask: bool ``[N, K]`` threads with a defined target (a subset of ``thread_mask``).
        world_id: int64 ``[N]``.
    """

    threads: Tensor
    thread_mask: Tensor
    target: Tensor
    target_mask: Tensor
    world_id: Tensor

    _SPECS: ClassVar[Specs] = {
        "threads": (("N", "K", "X"), "float"),
        "thread_mask": (("N", "K"), "bool"),
        "target": (("N", "K"), "float"),
        "target_mask": (("N", "K"), "bool"),
        "world_id": (("N",), "int"),
    }


def split_by_world(world_id: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Row indices ``(train, val)`` (int64, ascending) such that no world is on both sides.

    ``round(val_fraction * n_worlds)`` worlds, at least one, at most ``n_worlds - 1``, drawn with a
    NumPy generator seeded by ``seed`` go to validation. Needs two or more worlds.
    """
    if world_id.dim() != 1:
        raise ShapeError(f"world_id: expected [N], got {tuple(world_id.shape)}")
    worlds = torch.unique(world_id).numpy()
    if len(worlds) < 2:
        raise ConfigError(f"split by world needs at least 2 worlds, got {len(worlds)}")
    n_val = min(max(round(val_fraction * len(worlds)), 1), len(worlds) - 1)
    val_worlds = np.random.default_rng(seed).choice(worlds, size=n_val, replace=False)
    is_val = torch.from_numpy(np.isin(world_id.numpy(), val_worlds))
    return (~is_val).nonzero().squeeze(-1), is_val.nonzero().squeeze(-1)
