"""What the centralised critic sees of the WORLD (training only): one fixed-size vector per
learner and day, read off the live ``SCML2024StdWorld`` at the start of the day.

No actor ever sees these numbers; the rollout learner records them (``before_step``) and the
MAPPO critic (:class:`hrl.models.critic.CentralCritic`) appends them to its round state. Units:
money / the factory's OWN initial balance; quantities / ``n_lines`` of the factories summed
over (per factory for the partner and learner blocks); prices / the product's catalog price.

Blocks (:data:`WORLD_FEATURES`, ``W = 50``):

- ``world``: day / n_steps, n_levels / 4, factories / 20, mean and min balance over every
  factory, share of bankrupt factories (6).
- ``suppliers`` and ``consumers`` of the learner (factories only, the exogenous SELLER/BUYER are
  left out): count / 8, mean and min balance, mean input and output stock, mean need
  (suppliers: ``needed_sales``; consumers: ``needed_supplies``) (2 x 6).
- ``learners``: the OTHER learners of the world (mean): count, balance, input and output stock,
  level / (n_levels - 1), needed_supplies, needed_sales (7).
- ``product0`` .. ``product4`` (one block per product, zeros and ``present = 0`` past the
  world's last product): present, trading price, supply, demand, stock (5 x 5). Supply of
  product ``p`` = what its producers (level ``p - 1``) still need to sell, demand = what its
  buyers (level ``p``) still need to buy (``needed_sales`` / ``needed_supplies``, floored at 0);
  for the raw material the exogenous supply and for the final product the exogenous demand of
  today; stock = output stock of the producers + input stock of the buyers; all / the total
  ``n_lines`` of the level that makes (supply, stock) or buys (demand) it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

__all__ = ["MAX_PRODUCTS", "WORLD_DIM", "WORLD_FEATURES", "world_view"]

MAX_PRODUCTS = 5
"""Products with their own block (4 levels + 1, the most an official Standard world has)."""
_SIDE = ("count", "balance_mean", "balance_min", "inventory_input", "inventory_output", "need")
_PRODUCT = ("present", "trading_price", "supply", "demand", "stock")
_LEARNERS = ("count", "balance", "inventory_input", "inventory_output", "level", "needs_in", "needs_out")
_WORLD = ("day", "n_levels", "factories", "balance_mean", "balance_min", "bankrupt_share")
WORLD_FEATURES: tuple[str, ...] = (
    *(f"world/{k}" for k in _WORLD),
    *(f"suppliers/{k}" for k in _SIDE),
    *(f"consumers/{k}" for k in _SIDE),
    *(f"learners/{k}" for k in _LEARNERS),
    *(f"product{p}/{k}" for p in range(MAX_PRODUCTS) for k in _PRODUCT),
)
"""Names of the world features, in order."""
WORLD_DIM = len(WORLD_FEATURES)
SYSTEM_AGENTS = frozenset({"SELLER", "BUYER"})


class _Factory:
    """The numbers of one factory at the start of the day (read once per view)."""

    __slots__ = (
        "balance",
        "bankrupt",
        "ex_in",
        "ex_out",
        "inv_in",
        "inv_out",
        "level",
        "lines",
        "need_in",
        "need_out",
    )

    def __init__(self, world: Any, aid: str) -> None:
        awi = world.agents[aid].awi
        self.level = int(awi.level)
        self.lines = float(awi.n_lines)
        self.balance = float(world.current_balance(aid)) / max(float(world.initial_balances[aid]), 1e-9)
        self.bankrupt = bool(world.is_bankrupt.get(aid, False))
        self.inv_in = float(awi.current_inventory_input)
        self.inv_out = float(awi.current_inventory_output)
        self.need_in = max(float(awi.needed_supplies), 0.0)
        self.need_out = max(float(awi.needed_sales), 0.0)
        self.ex_in = float(awi.current_exogenous_input_quantity)
        self.ex_out = float(awi.current_exogenous_output_quantity)


def _side(factories: Sequence[_Factory], need: str) -> list[float]:
    if not factories:
        return [0.0] * len(_SIDE)
    bal = [f.balance for f in factories]
    return [
        len(factories) / 8.0,
        float(np.mean(bal)),
        float(np.min(bal)),
        float(np.mean([f.inv_in / f.lines for f in factories])),
        float(np.mean([f.inv_out / f.lines for f in factories])),
        float(np.mean([getattr(f, need) / f.lines for f in factories])),
    ]


def _products(world: Any, factories: dict[str, _Factory], n_levels: int) -> NDArray[np.float64]:
    out = np.zeros((MAX_PRODUCTS, len(_PRODUCT)))
    catalog = np.asarray(world.catalog_prices, dtype=np.float64)
    trading = np.asarray(world.trading_prices, dtype=np.float64)
    for p in range(min(n_levels + 1, MAX_PRODUCTS)):
        makers = [f for f in factories.values() if f.level == p - 1]
        buyers = [f for f in factories.values() if f.level == p]
        make_lines = sum(f.lines for f in makers) or sum(f.lines for f in buyers) or 1.0
        buy_lines = sum(f.lines for f in buyers) or make_lines
        # the raw material comes from the exogenous SELLER, the final product goes to the BUYER
        supply = sum(f.ex_in for f in buyers) if p == 0 else sum(f.need_out for f in makers)
        demand = sum(f.ex_out for f in makers) if p == n_levels else sum(f.need_in for f in buyers)
        stock = sum(f.inv_out for f in makers) + sum(f.inv_in for f in buyers)
        price = trading[p] / max(catalog[p], 1e-9)
        out[p] = (1.0, price, supply / make_lines, demand / buy_lines, stock / make_lines)
    return out


def world_view(world: Any, agent_id: str, learners: Sequence[str] = ()) -> Tensor:
    """``[W]`` float32 world features of ``agent_id`` (see the module docs) at the world's current
    step; ``learners``: the ids of every learner of the world (the agent itself is skipped)."""
    factories = {aid: _Factory(world, aid) for aid in world.agents if aid not in SYSTEM_AGENTS}
    n_levels = int(world.n_processes)
    bal = [f.balance for f in factories.values()]
    head = [
        int(world.current_step) / max(int(world.n_steps), 1),
        n_levels / 4.0,
        len(factories) / 20.0,
        float(np.mean(bal)),
        float(np.min(bal)),
        float(np.mean([f.bankrupt for f in factories.values()])),
    ]
    suppliers = [factories[a] for a in world.agents[agent_id].awi.my_suppliers if a in factories]
    consumers = [factories[a] for a in world.agents[agent_id].awi.my_consumers if a in factories]
    peers = [factories[a] for a in learners if a != agent_id and a in factories]
    if peers:
        learner_block = [
            float(len(peers)),
            float(np.mean([f.balance for f in peers])),
            float(np.mean([f.inv_in / f.lines for f in peers])),
            float(np.mean([f.inv_out / f.lines for f in peers])),
            float(np.mean([f.level / max(n_levels - 1, 1) for f in peers])),
            float(np.mean([f.need_in / f.lines for f in peers])),
            float(np.mean([f.need_out / f.lines for f in peers])),
        ]
    else:
        learner_block = [0.0] * len(_LEARNERS)
    values = np.concatenate(
        [
            head,
            _side(suppliers, "need_out"),
            _side(consumers, "need_in"),
            learner_block,
            _products(world, factories, n_levels).ravel(),
        ]
    )
    return torch.from_numpy(values.astype(np.float32))
