"""L4 coordinator: attention over the day's concurrent negotiation threads -> one alpha_k per thread.

alpha_k in ``[alpha_min, 1]`` is thread k's weight when the round's counter-offers on one side and
day share what is left of that day's L1 cap: ``cap_k = floor(room * alpha_k / sum_j alpha_j)``
(:func:`hrl.models.box.thread_caps`); L3's quantity is a fraction of ``cap_k``. alpha is a Beta
variable mapped onto ``[alpha_min, 1]`` (per thread, for MAPPO: per-thread log-probs and
entropies are exposed next to their sums). A value head over the masked mean of the thread
embeddings gives a value for the whole set of threads; ``features`` exposes the per-thread
embeddings for a centralised critic.

Thread features (:data:`THREAD_FEATURES`, built by :func:`thread_features` from the same tensors
L3 sees, so training and play share one definition): the goal (4), the L1 baseline (3), the L3
context (3), the most recent offer of the history (5, zeros if none) and the history length / 40.

Architecture: normaliser -> linear -> ``layers`` pre-norm Transformer encoder layers (self-
attention over threads, padding mask, no dropout) -> Beta head (2, concentrations ``1 + softplus``
so the density is unimodal) and a value head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrl.config import OFFER_DIM, L4Config
from hrl.models.checks import Dims, ensure_finite
from hrl.models.distributions import MaskedScaledBeta
from hrl.models.normalise import FeatureNormaliser

__all__ = ["HISTORY_NORM", "THREAD_FEATURES", "L4Coordinator", "L4Output", "thread_features"]

HISTORY_NORM = 40.0
"""Offers in a full negotiation (20 rounds x 2 sides): the history length is divided by it."""

THREAD_FEATURES = (
    *(f"goal_{n}" for n in ("q_buy", "p_buy", "q_sell", "p_sell")),
    "baseline_quantity",
    "baseline_offset",
    "baseline_price",
    "relative_time",
    "relative_round",
    "is_seller",
    *(f"last_offer_{n}" for n in ("quantity", "offset", "price", "round", "by_self")),
    "history_length",
)
"""Names of the columns of :func:`thread_features` (with the default L3 context of 3)."""


def thread_features(
    goal: Tensor, baseline: Tensor, context: Tensor, history: Tensor, history_mask: Tensor
) -> Tensor:
    """L4's per-thread features from L3's inputs.

    Args:
        goal: ``[..., 4]``; baseline: ``[..., 3]``; context: ``[..., E]``;
        history: ``[..., T, OFFER_DIM]`` right-padded; history_mask: ``[..., T]`` bool.

    Returns:
        ``[..., 4 + 3 + E + OFFER_DIM + 1]`` (16 with E = 3), same float dtype as ``goal``.
    """
    lengths = history_mask.sum(-1)
    if history.shape[-2] == 0:
        last = history.new_zeros((*history.shape[:-2], OFFER_DIM))
    else:
        index = (lengths - 1).clamp(min=0)[..., None, None].expand(*history.shape[:-2], 1, OFFER_DIM)
        last = history.gather(-2, index).squeeze(-2)
        last = torch.where((lengths > 0).unsqueeze(-1), last, torch.zeros_like(last))
    length = (lengths.to(goal.dtype) / HISTORY_NORM).unsqueeze(-1)
    return torch.cat([goal, baseline, context, last, length], -1)


@dataclass(frozen=True)
class L4Output:
    """One forward pass of :class:`L4Coordinator` over ``B`` days of ``K`` (padded) threads.

    Attributes:
        alpha: the distribution of alpha ``[B, K]`` on ``[alpha_min, 1]`` (``alpha.mask`` = threads).
        value: ``[B]`` value of the day's thread set.
        features: ``[B, K, hidden]`` per-thread embeddings (for a centralised critic).
    """

    alpha: MaskedScaledBeta
    value: Tensor
    features: Tensor

    def deterministic(self) -> Tensor:
        """``[B, K]`` alpha for play: the mean (``alpha_min`` on padding)."""
        return self.alpha.mode()

    def log_prob(self, alpha: Tensor) -> Tensor:
        """``[B]`` joint log-density of ``alpha`` ``[B, K]`` over real threads."""
        return self.alpha.log_prob(alpha)

    def entropy(self) -> Tensor:
        """``[B]`` joint entropy over real threads."""
        return self.alpha.entropy()

    def check_finite(self) -> None:
        """Raise NonFiniteError if any output is NaN/inf (the agent then falls back to L1)."""
        ensure_finite(
            alpha_a=self.alpha.a,
            alpha_b=self.alpha.b,
            value=self.value,
            features=self.features,
        )


class L4Coordinator(nn.Module):
    """Thread-weighting policy with a value head. See the module docstring."""

    def __init__(self, config: L4Config | None = None) -> None:
        super().__init__()
        self.config = cfg = config or L4Config()
        h = cfg.hidden
        self.normaliser = FeatureNormaliser(cfg.thread_dim)
        self.embed = nn.Linear(cfg.thread_dim, h)
        layer = nn.TransformerEncoderLayer(
            h, cfg.heads, dim_feedforward=2 * h, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(h)
        self.alpha_head = nn.Linear(h, 2)
        self.value_head = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1))

    def forward(self, threads: Tensor, thread_mask: Tensor) -> L4Output:
        """alpha distribution and value for ``B`` days.

        Args:
            threads: ``[B, K, thread_dim]`` features of each concurrent thread (:func:`thread_features`).
            thread_mask: ``[B, K]`` bool, True for real threads (a day may have none).

        Returns:
            :class:`L4Output` (checked finite).
        """
        cfg = self.config
        dims = Dims()
        dims.check("threads", threads, ("B", "K", cfg.thread_dim))
        dims.check("thread_mask", thread_mask, ("B", "K"), dtype="bool")
        # A row without threads attends to its first (padding) slot, so attention stays finite;
        # its outputs are masked away below.
        attend = thread_mask.clone()
        if attend.shape[1] > 0:
            attend[:, 0] |= ~thread_mask.any(-1)
        x = self.embed(self.normaliser(threads))
        x = self.norm(self.encoder(x, src_key_padding_mask=~attend))
        params = 1.0 + F.softplus(self.alpha_head(x))
        weights = thread_mask.to(x.dtype).unsqueeze(-1)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        out = L4Output(
            alpha=MaskedScaledBeta(params[..., 0], params[..., 1], cfg.alpha_min, 1.0, thread_mask),
            value=self.value_head(pooled).squeeze(-1),
            features=x * weights,
        )
        out.check_finite()
        return out
