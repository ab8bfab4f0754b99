"""Input and output checks shared by the models: named dimensions, dtypes, finiteness.

Models call these on every forward pass, so a wrong shape raises :class:`~hrl.errors.ShapeError`
naming the argument (never a cryptic matmul error deep inside torch), and a NaN/inf raises
:class:`~hrl.errors.NonFiniteError` naming the tensor and the index of the first bad element
(never a silent NaN action: the agent catches it and falls back to L1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hrl.errors import DTypeError, NonFiniteError, ShapeError

__all__ = ["Dims", "ensure_finite"]


class Dims:
    """Collects named dimensions across the arguments of one call and checks they agree.

    ``spec`` items are ints (fixed sizes) or names (sizes that must match everywhere the name is
    used, e.g. ``"B"`` for the batch).
    """

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def check(
        self, name: str, tensor: Tensor, spec: tuple[int | str, ...], *, dtype: str = "float"
    ) -> Tensor:
        """Check ``tensor``'s rank, sizes and dtype kind (``"float"``, ``"bool"`` or ``"int"``)."""
        if not isinstance(tensor, Tensor):
            raise DTypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dim() != len(spec):
            raise ShapeError(
                f"{name}: expected {len(spec)} dims {_fmt(spec)}, got shape {tuple(tensor.shape)}"
            )
        for axis, (want, got) in enumerate(zip(spec, tensor.shape, strict=True)):
            if isinstance(want, int):
                if got != want:
                    raise ShapeError(
                        f"{name}: dim {axis} must be {want} ({_fmt(spec)}), got {tuple(tensor.shape)}"
                    )
            elif self.sizes.setdefault(want, got) != got:
                raise ShapeError(
                    f"{name}: dim {axis} ({want}) is {got} but {want}={self.sizes[want]} elsewhere "
                    f"(shape {tuple(tensor.shape)})"
                )
        ok = {
            "float": tensor.is_floating_point(),
            "bool": tensor.dtype == torch.bool,
            "int": tensor.dtype in (torch.int32, torch.int64),
        }[dtype]
        if not ok:
            raise DTypeError(f"{name}: expected a {dtype} tensor, got {tensor.dtype}")
        if dtype == "float":
            ensure_finite(**{name: tensor})
        return tensor


def ensure_finite(**tensors: Tensor) -> None:
    """Raise :class:`NonFiniteError` (argument name, index of the first bad element) on NaN/inf."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            bad = ~torch.isfinite(tensor)
            if bool(bad.any()):
                index = tuple(int(i) for i in bad.nonzero()[0])
                raise NonFiniteError(
                    f"{name}: non-finite value {tensor[index].item()} at {index}", argument=name, index=index
                )


def _fmt(spec: tuple[int | str, ...]) -> str:
    return "[" + ", ".join(str(s) for s in spec) + "]"
