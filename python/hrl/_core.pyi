"""Type stubs of the compiled extension ``hrl._core`` (checked with ``mypy.stubtest``)."""

import numpy as np
from numpy.typing import NDArray

__all__ = ["__version__", "compute_gae", "discounted_returns"]
__version__: str

def compute_gae(
    rewards: NDArray[np.float32],
    values: NDArray[np.float32],
    next_values: NDArray[np.float32],
    terminated: NDArray[np.bool_],
    truncated: NDArray[np.bool_],
    *,
    gamma: float,
    lam: float,
    check_finite: bool = True,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]: ...
def discounted_returns(
    rewards: NDArray[np.float32],
    terminated: NDArray[np.bool_],
    truncated: NDArray[np.bool_],
    *,
    gamma: float,
    bootstrap: NDArray[np.float32] | None = None,
    check_finite: bool = True,
) -> NDArray[np.float32]: ...
