"""L2 manager: once a day, the goal g_t = [Q_buy, P_buy, Q_sell, P_sell] from the macro state.

Units (the same as the data pipeline's features): quantities / ``n_lines``, prices / the trading
price of the product traded on that side. The goal is a masked diagonal Gaussian (a learned,
state-independent log-std): sides the agent cannot trade (first level: no negotiated buying;
last level: no negotiated selling) are masked out of the action, its log-prob and entropy, and
are 0 in every sample and in the deterministic goal. Quantity means are ``softplus`` (>= 0);
price means are ``1 + x`` (around the trading price).

Architecture: each day of the window (K past days and today) -> normaliser -> MLP; a GRU over
the days (oldest first; padding days before day 0 come first and carry a 0 validity flag); the
committed-profile ``[H, C]`` -> 1-D convolution over delivery offsets -> MLP; trunk -> goal mean
and value heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrl.config import GOAL_DIM, L2Config
from hrl.models.checks import Dims, ensure_finite
from hrl.models.distributions import MaskedDiagGaussian
from hrl.models.normalise import FeatureNormaliser

__all__ = ["GOAL_NAMES", "QUANTITY_COMPONENTS", "L2Manager", "L2Output"]

GOAL_NAMES = ("q_buy", "p_buy", "q_sell", "p_sell")
"""Names of the goal components, in order."""
QUANTITY_COMPONENTS = (0, 2)
"""Indices of the quantity components of g_t (the others are prices)."""


@dataclass(frozen=True)
class L2Output:
    """One forward pass of :class:`L2Manager` over ``B`` agent-days.

    Attributes:
        dist: the goal distribution over ``[B, 4]``; ``dist.mask`` is the side mask.
        value: ``[B]`` state value (for PPO; untrained by behaviour cloning).
    """

    dist: MaskedDiagGaussian
    value: Tensor

    def deterministic(self) -> Tensor:
        """``[B, 4]`` goal for play: the mean, 0 on masked sides."""
        return self.dist.mode()

    def log_prob(self, goal: Tensor) -> Tensor:
        """``[B]`` log-density of ``goal`` ``[B, 4]`` over the tradeable components."""
        return self.dist.log_prob(goal)

    def entropy(self) -> Tensor:
        """``[B]`` entropy over the tradeable components."""
        return self.dist.entropy()

    def check_finite(self) -> None:
        """Raise NonFiniteError if any output is NaN/inf (the agent then falls back to L1)."""
        ensure_finite(goal_mean=self.dist.mean, goal_log_std=self.dist.log_std, value=self.value)


class L2Manager(nn.Module):
    """Daily goal setter with a value head. See the module docstring for units and layout."""

    is_quantity: Tensor

    def __init__(self, config: L2Config | None = None) -> None:
        super().__init__()
        self.config = cfg = config or L2Config()
        h = cfg.hidden
        self.normaliser = FeatureNormaliser(cfg.state_dim)
        self.day_encoder = nn.Sequential(nn.Linear(cfg.state_dim + 1, h), nn.Tanh())
        self.days = nn.GRU(h, h, batch_first=True)
        self.profile_conv = nn.Conv1d(cfg.profile_channels, 8, kernel_size=3, padding=1)
        self.profile_encoder = nn.Sequential(nn.Linear(8 * cfg.horizon_bins, h), nn.Tanh())
        self.trunk = nn.Sequential(nn.Linear(2 * h, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh())
        self.goal_head = nn.Linear(h, GOAL_DIM)
        self.value_head = nn.Linear(h, 1)
        self.log_std = nn.Parameter(torch.full((GOAL_DIM,), cfg.init_log_std))
        is_quantity = torch.zeros(GOAL_DIM, dtype=torch.bool)
        is_quantity[list(QUANTITY_COMPONENTS)] = True
        self.register_buffer("is_quantity", is_quantity, persistent=False)
        nn.init.zeros_(self.goal_head.bias)
        self.goal_head.weight.data.mul_(0.1)

    def forward(self, state: Tensor, state_mask: Tensor, profile: Tensor, side_mask: Tensor) -> L2Output:
        """Goal distribution and value for ``B`` agent-days.

        Args:
            state: ``[B, K + 1, state_dim]`` macro features, oldest day first, today last.
            state_mask: ``[B, K + 1]`` bool, False for padding days (before day 0).
            profile: ``[B, horizon_bins, profile_channels]`` committed supplies and sales per
                delivery offset, in units of ``n_lines``.
            side_mask: ``[B, 4]`` bool, True for goal components the agent can trade.

        Returns:
            :class:`L2Output` (checked finite).
        """
        cfg = self.config
        dims = Dims()
        dims.check("state", state, ("B", cfg.history_days + 1, cfg.state_dim))
        dims.check("state_mask", state_mask, ("B", cfg.history_days + 1), dtype="bool")
        dims.check("profile", profile, ("B", cfg.horizon_bins, cfg.profile_channels))
        dims.check("side_mask", side_mask, ("B", GOAL_DIM), dtype="bool")
        valid = state_mask.unsqueeze(-1).to(state.dtype)
        days = self.day_encoder(torch.cat([self.normaliser(state) * valid, valid], -1))
        _, last = self.days(days)
        prof = F.tanh(self.profile_conv(profile.transpose(1, 2))).flatten(1)
        x = self.trunk(torch.cat([last[-1], self.profile_encoder(prof)], -1))
        raw = self.goal_head(x)
        mean = torch.where(self.is_quantity, F.softplus(raw), 1.0 + raw)
        log_std = self.log_std.clamp(cfg.min_log_std, cfg.max_log_std)
        out = L2Output(MaskedDiagGaussian(mean, log_std, side_mask), self.value_head(x).squeeze(-1))
        out.check_finite()
        return out
