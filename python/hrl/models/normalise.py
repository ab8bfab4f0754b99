"""Running feature normaliser, stored inside the model it feeds.

Its statistics are buffers of the owning module, so they travel with the model's
``state_dict`` into every checkpoint and the live agent normalises exactly as training did.
Statistics are accumulated in float64 with the parallel (Chan et al.) variance update; they
change only through :meth:`FeatureNormaliser.update` (the BC trainers fit them on the training
split before the first epoch; online training may keep updating or freeze them).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hrl.errors import ShapeError

__all__ = ["FeatureNormaliser"]


class FeatureNormaliser(nn.Module):
    """``(x - mean) / sqrt(var + eps)``, clipped to ``[-clip, clip]``, over the last dim ``D``.

    Before any update it is the identity (mean 0, var 1).

    Args:
        dim: feature count ``D``.
        eps: variance floor (features constant in the data pass through centred, not exploded).
        clip: bound on normalised values, in standard deviations.
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, dim: int, eps: float = 1e-6, clip: float = 10.0) -> None:
        super().__init__()
        self.dim, self.eps, self.clip = dim, eps, clip
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor, mask: Tensor | None = None) -> None:
        """Add the rows of ``x`` (``[..., D]``) to the statistics; ``mask`` (``[...]`` bool) keeps rows."""
        if x.shape[-1] != self.dim:
            raise ShapeError(f"normaliser update: last dim must be {self.dim}, got {tuple(x.shape)}")
        rows = x.reshape(-1, self.dim).double()
        if mask is not None:
            rows = rows[mask.reshape(-1)]
        n = rows.shape[0]
        if n == 0:
            return
        batch_mean = rows.mean(0)
        batch_var = rows.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        new_mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        """Normalised ``x``, same shape and dtype."""
        mean = self.mean.to(x.dtype)
        std = (self.var + self.eps).sqrt().to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)
