"""SYNTHETIC, structured datasets for the trainer unit tests only (real SCML samples come from the
data pipeline). Labels are fixed functions of the inputs plus noise, so a working trainer must
learn them and a broken one cannot; every world is generated independently."""

from __future__ import annotations

import torch
from torch import Tensor

from hrl.config import L2Config, L3Config
from hrl.models.l3 import ACCEPT, COUNTER, END
from hrl.train.datasets import MacroTensors, MicroTensors


def synthetic_macro(n_worlds: int = 8, agents: int = 6, days: int = 30, seed: int = 0) -> MacroTensors:
    """SYNTHETIC L2 data: goals depend on today's features, the previous day and the profile."""
    cfg = L2Config()
    g = torch.Generator().manual_seed(seed)
    w = cfg.history_days + 1
    rows = []
    for world in range(n_worlds):
        for agent in range(agents):
            series = torch.cumsum(0.3 * torch.randn(days, cfg.state_dim, generator=g), 0)
            level = agent % 3  # 0 first (cannot buy), 2 last (cannot sell)
            for day in range(days):
                lo = max(0, day - cfg.history_days)
                state = torch.zeros(w, cfg.state_dim)
                mask = torch.zeros(w, dtype=torch.bool)
                state[w - (day - lo + 1) :] = series[lo : day + 1]
                mask[w - (day - lo + 1) :] = True
                rows.append((world, level, state, mask))
    n = len(rows)
    state = torch.stack([r[2] for r in rows])
    state_mask = torch.stack([r[3] for r in rows])
    level = torch.tensor([r[1] for r in rows])
    world_id = torch.tensor([r[0] for r in rows], dtype=torch.int64)
    profile = torch.rand(n, cfg.horizon_bins, cfg.profile_channels, generator=g)
    today, yesterday = state[:, -1], torch.where(state_mask[:, -2:-1], state[:, -2], state[:, -1])
    drive_buy = today[:, 0] - 0.5 * yesterday[:, 1] + profile[:, :3, 0].sum(1) - 1.0
    drive_sell = today[:, 2] + 0.5 * today[:, 3] - profile[:, :3, 1].sum(1) + 0.5
    q_buy = torch.where(drive_buy > 0, drive_buy, torch.zeros(n))  # sparse: ~half zeros
    q_sell = torch.where(drive_sell > 0, drive_sell, torch.zeros(n))
    p_buy = torch.where(q_buy > 0, 1.0 + 0.1 * torch.tanh(today[:, 4]), torch.zeros(n))
    p_sell = torch.where(q_sell > 0, 1.0 + 0.1 * torch.tanh(today[:, 5]), torch.zeros(n))
    goal = torch.stack([q_buy, p_buy, q_sell, p_sell], 1) + 0.01 * torch.randn(n, 4, generator=g).clamp(-1, 1)
    goal = goal.clamp(min=0)
    side = torch.stack([level != 0, level != 0, level != 2, level != 2], 1)
    goal = torch.where(side, goal, torch.zeros_like(goal))
    return MacroTensors(state, state_mask, profile, side, goal, world_id)


def synthetic_micro(
    n_worlds: int = 8, groups_per_world: int = 40, seed: int = 0, t_max: int = 12
) -> MicroTensors:
    """SYNTHETIC L3 data: accept when the partner's last price is good for the agent, end late in
    the negotiation, counter otherwise with fractions and a day that follow from goal, context, baseline."""
    cfg = L3Config()
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, 7, (n_worlds * groups_per_world,), generator=g)
    n = int(sizes.sum())
    group_id = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    world_id = group_id // groups_per_world
    lengths = torch.randint(0, t_max + 1, (n,), generator=g)
    history = torch.rand(n, t_max, 5, generator=g)
    history[..., 2] = 0.9 + 0.2 * history[..., 2]
    history[..., 4] = (torch.arange(t_max) % 2).float().expand(n, t_max)
    history_mask = torch.arange(t_max) < lengths.unsqueeze(1)
    history = history * history_mask.unsqueeze(-1)
    goal = torch.rand(n, 4, generator=g) * torch.tensor([2.0, 0.2, 2.0, 0.2]) + torch.tensor(
        [0.0, 0.9, 0.0, 0.9]
    )
    baseline = torch.stack(
        [
            torch.rand(n, generator=g) * 2,
            torch.randint(0, 5, (n,), generator=g) / 10,
            0.9 + 0.2 * torch.rand(n, generator=g),
        ],
        1,
    )
    context = torch.stack(
        [torch.rand(n, generator=g), torch.rand(n, generator=g), (torch.rand(n, generator=g) < 0.5).float()],
        1,
    )
    day_mask = torch.rand(n, cfg.n_days, generator=g) < 0.7
    day_mask[:, 0] = True
    last = (lengths - 1).clamp(min=0)
    last_offer = history[torch.arange(n), last]
    has_partner = (lengths > 0) & (last_offer[:, 4] < 0.5)
    kind_mask = torch.stack(
        [has_partner, torch.ones(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)], 1
    )
    seller = context[:, 2] > 0.5
    good = torch.where(seller, last_offer[:, 2] > 1.03, last_offer[:, 2] < 0.97)
    kind = torch.full((n,), COUNTER)
    kind[context[:, 1] > 0.85] = END
    kind[has_partner & good] = ACCEPT
    caps = torch.rand(n, cfg.n_days, generator=g) * 2 * day_mask
    prices = torch.stack(
        [0.9 + 0.05 * torch.rand(n, generator=g), 1.05 + 0.05 * torch.rand(n, generator=g)], 1
    )
    target_q = torch.where(seller, goal[:, 2], goal[:, 0])
    fraction = torch.stack(
        [(0.5 * target_q).clamp(0, 1), 0.5 + 0.4 * (2 * context[:, 2] - 1) * (1 - context[:, 1])], 1
    )
    wanted = (baseline[:, 1] * 10).round().long() + (context[:, 0] > 0.5).long()
    allowed = day_mask.gather(1, wanted.unsqueeze(1)).squeeze(1)
    day = torch.where(allowed, wanted, torch.zeros_like(wanted))
    counter = kind == COUNTER
    fraction = fraction * counter.unsqueeze(1)
    day = torch.where(counter, day, torch.zeros_like(day))
    alpha = torch.where(counter, (0.5 * target_q).clamp(0.05, 1.0), torch.ones(n))
    box = torch.tensor([10.0, 20.0, 1.0, 18.0, 22.0]).expand(n, 5).clone()
    offer = torch.stack([1 + fraction[:, 0] * 9, day.float(), 18 + 4 * fraction[:, 1]], 1) * counter[:, None]
    return MicroTensors(
        history=history,
        history_mask=history_mask,
        goal=goal,
        baseline=baseline,
        context=context,
        caps=caps,
        prices=prices,
        day_mask=day_mask,
        kind_mask=kind_mask,
        kind=kind,
        delivery=day,
        fraction=fraction,
        fraction_mask=counter[:, None].expand(n, 2).clone(),
        alpha=alpha,
        offer=offer,
        box=box,
        baseline_kind=torch.where(baseline[:, 0] > 0, COUNTER, END),
        world_id=world_id,
        group_id=group_id,
    )


def close(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    """Exactly equal state dicts."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
