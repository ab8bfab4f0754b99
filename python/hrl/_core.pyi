"""Type stubs of the compiled extension ``hrl._core`` (checked with ``mypy.stubtest``)."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "__version__",
    "compute_gae",
    "discounted_returns",
    "parse_literal",
    "parse_negotiation_cells",
    "read_negotiations_csv",
]

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
def parse_literal(text: str) -> Any: ...
def read_negotiations_csv(
    paths: list[str], keep: list[str], *, skip_bad_rows: bool = False
) -> list[dict[str, Any]]: ...
def parse_negotiation_cells(
    path: str,
    history: bytes,
    history_offsets: NDArray[np.int64],
    partners: bytes,
    partners_offsets: NDArray[np.int64],
    *,
    skip_bad_rows: bool = False,
) -> dict[str, Any]: ...
