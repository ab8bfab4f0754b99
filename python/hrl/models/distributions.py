"""Action distributions with masks, in the form PPO/MAPPO need them.

Each distribution has ``log_prob(action)`` and ``entropy()`` reduced to one number per sample
(masked components contribute nothing), ``sample(generator)`` and ``mode()`` (the deterministic
action for play). Densities and entropies are written out in closed form (the tests check them
against ``torch.distributions``), so masking is explicit and gradients stay finite where masked.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MaskedCategorical", "MaskedDiagGaussian", "MaskedScaledBeta"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class MaskedDiagGaussian:
    """Independent Gaussians over the last dim ``D``; masked-out components are pinned to 0.

    Args:
        mean: ``[..., D]``.
        log_std: ``[..., D]`` or broadcastable (e.g. ``[D]``).
        mask: ``[..., D]`` bool, True where the component is an action; None = all True.
    """

    def __init__(self, mean: Tensor, log_std: Tensor, mask: Tensor | None = None) -> None:
        self.mask = torch.ones_like(mean, dtype=torch.bool) if mask is None else mask
        self.mean = torch.where(self.mask, mean, torch.zeros_like(mean))
        self.log_std = log_std.expand_as(mean)

    def mode(self) -> Tensor:
        """The deterministic action: the mean (0 where masked), ``[..., D]``."""
        return self.mean

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A sample ``[..., D]`` (0 where masked), drawn with ``generator`` when given."""
        mean = self.mean
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return torch.where(self.mask, mean + noise * self.log_std.exp(), torch.zeros_like(mean))

    def log_prob(self, action: Tensor) -> Tensor:
        """Sum over unmasked components of the Normal log-density, ``[...]``."""
        z = (action - self.mean) * torch.exp(-self.log_std)
        lp = -0.5 * z.square() - self.log_std - _HALF_LOG_2PI
        return torch.where(self.mask, lp, torch.zeros_like(lp)).sum(-1)

    def entropy(self) -> Tensor:
        """Sum over unmasked components of the Normal entropy, ``[...]``."""
        ent = 0.5 + _HALF_LOG_2PI + self.log_std
        return torch.where(self.mask, ent, torch.zeros_like(ent)).sum(-1)


class MaskedCategorical:
    """A categorical over the last dim ``C`` whose masked-out choices have probability 0.

    A row with no allowed choice at all falls back to a uniform distribution over every choice
    (``all_masked`` flags those rows); L1 clips or ends whatever such a row decides.

    Args:
        logits: ``[..., C]`` unnormalised log-probabilities.
        mask: ``[..., C]`` bool, True where the choice is allowed; None = all True.
    """

    def __init__(self, logits: Tensor, mask: Tensor | None = None) -> None:
        mask = torch.ones_like(logits, dtype=torch.bool) if mask is None else mask
        self.all_masked = ~mask.any(-1)
        self.mask = mask | self.all_masked.unsqueeze(-1)
        fill = torch.finfo(logits.dtype).min
        logits = torch.where(self.all_masked.unsqueeze(-1), torch.zeros_like(logits), logits)
        self.logits = torch.where(self.mask, logits, torch.full_like(logits, fill))
        self.log_probs = F.log_softmax(self.logits, -1)
        self.probs = torch.where(self.mask, self.log_probs.exp(), torch.zeros_like(logits))
        """``[..., C]`` probabilities (exactly 0 where masked)."""

    def mode(self) -> Tensor:
        """The most likely allowed choice, int64 ``[...]``."""
        return self.logits.argmax(-1)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A sample, int64 ``[...]``, drawn with ``generator`` when given."""
        flat = self.probs.reshape(-1, self.probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).reshape(self.probs.shape[:-1])

    def log_prob(self, action: Tensor) -> Tensor:
        """``[...]`` log-probability of int ``action`` (a huge negative number for masked choices)."""
        return self.log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    def log_prob_safe(self, action: Tensor) -> Tensor:
        """Like :meth:`log_prob` with ``action`` clamped into ``[0, C)`` (for ignored label rows)."""
        return self.log_prob(action.long().clamp(0, self.logits.shape[-1] - 1))

    def entropy(self) -> Tensor:
        """``[...]`` entropy over the allowed choices."""
        plogp = torch.where(self.mask, self.probs * self.log_probs, torch.zeros_like(self.probs))
        return -plogp.sum(-1)


class MaskedScaledBeta:
    """Independent Beta variables mapped affinely onto ``[low, high]``; masked elements ignored.

    ``x = low + (high - low) * u`` with ``u ~ Beta(a, b)``; densities include the Jacobian
    ``-log(high - low)``, so ``log_prob`` is the density of ``x`` itself.

    Args:
        concentration1, concentration0: ``[..., K]`` Beta parameters ``a, b > 0``.
        low, high: the range, ``0 <= low < high``.
        mask: ``[..., K]`` bool, True for real elements (e.g. threads); None = all True.
    """

    def __init__(
        self,
        concentration1: Tensor,
        concentration0: Tensor,
        low: float,
        high: float,
        mask: Tensor | None = None,
    ) -> None:
        self.a, self.b = concentration1, concentration0
        self.low, self.high = low, high
        self.mask = torch.ones_like(concentration1, dtype=torch.bool) if mask is None else mask
        self._log_scale = math.log(high - low)
        self._log_beta = torch.lgamma(self.a) + torch.lgamma(self.b) - torch.lgamma(self.a + self.b)

    def _to_unit(self, x: Tensor) -> Tensor:
        eps = torch.finfo(x.dtype).eps
        return ((x - self.low) / (self.high - self.low)).clamp(eps, 1 - eps)

    def mode(self) -> Tensor:
        """The deterministic action: the mean, ``[..., K]`` (``low`` where masked)."""
        mean = self.low + (self.high - self.low) * self.a / (self.a + self.b)
        return torch.where(self.mask, mean, torch.full_like(mean, self.low))

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A sample ``[..., K]`` (``low`` where masked), as a ratio of Gamma draws. torch's Gamma
        sampler takes no generator, so a given generator seeds a fork of the global RNG."""
        if generator is None:
            u = self._unit_sample()
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
                u = self._unit_sample()
        x = self.low + (self.high - self.low) * u
        return torch.where(self.mask, x, torch.full_like(x, self.low))

    def _unit_sample(self) -> Tensor:
        ga = torch._standard_gamma(self.a.detach())
        gb = torch._standard_gamma(self.b.detach())
        return ga / (ga + gb).clamp(min=torch.finfo(ga.dtype).tiny)

    def log_prob_elements(self, x: Tensor) -> Tensor:
        """``[..., K]`` per-element log-density of ``x`` (0 where masked)."""
        u = self._to_unit(x)
        lp = (self.a - 1) * torch.log(u) + (self.b - 1) * torch.log1p(-u) - self._log_beta - self._log_scale
        return torch.where(self.mask, lp, torch.zeros_like(lp))

    def log_prob(self, x: Tensor) -> Tensor:
        """``[...]`` joint log-density over the unmasked elements."""
        return self.log_prob_elements(x).sum(-1)

    def entropy_elements(self) -> Tensor:
        """``[..., K]`` per-element differential entropy (0 where masked)."""
        a, b = self.a, self.b
        ent = (
            self._log_beta
            - (a - 1) * torch.digamma(a)
            - (b - 1) * torch.digamma(b)
            + (a + b - 2) * torch.digamma(a + b)
            + self._log_scale
        )
        return torch.where(self.mask, ent, torch.zeros_like(ent))

    def entropy(self) -> Tensor:
        """``[...]`` joint entropy over the unmasked elements."""
        return self.entropy_elements().sum(-1)
