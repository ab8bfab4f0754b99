"""Type stubs of the compiled extension ``hrl._core`` (checked with ``mypy.stubtest``)."""

from typing import Any, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Limits",
    "__version__",
    "audit_offers",
    "compute_gae",
    "derive_limits",
    "discounted_returns",
    "parse_literal",
    "parse_negotiation_cells",
    "read_negotiations_csv",
    "replay_micro",
    "round_step",
    "simulate_stock",
    "split_csv_records",
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

@final
class Limits:
    def clip(self, quantity: int, day: int, price: int, side: int) -> tuple[int, int, int] | None: ...
    def is_safe_to_accept(self, quantity: int, day: int, price: int, side: int) -> bool: ...
    def reserve(self, quantity: int, day: int, price: int, side: int) -> None: ...
    def clip_many(self, offers: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]: ...
    def accept_many(self, offers: NDArray[np.int64]) -> NDArray[np.bool_]: ...
    @property
    def buy_caps(self) -> list[int]: ...
    @property
    def sell_caps(self) -> list[int]: ...
    @property
    def hard_sell_caps(self) -> list[int]: ...
    @property
    def stock_model(self) -> int: ...
    @property
    def buy_price(self) -> tuple[int, int]: ...
    @property
    def sell_price(self) -> tuple[int, int]: ...
    @property
    def buy_quantity(self) -> tuple[int, int]: ...
    @property
    def sell_quantity(self) -> tuple[int, int]: ...
    @property
    def free_cash(self) -> float: ...
    @property
    def first_day(self) -> int: ...

def derive_limits(state: object) -> Limits: ...
def round_step(
    state: object, open_offers: NDArray[np.int64], items: NDArray[np.int64]
) -> NDArray[np.int64]: ...
def audit_offers(state: object, offers: NDArray[np.int64], *, sequential: bool = False) -> dict[str, int]: ...
def simulate_stock(
    model: int, stock: int, arrivals: list[int], due: list[int], n_lines: int
) -> NDArray[np.int64]: ...
def replay_micro(
    days: list[tuple[Any, ...]],
    names: list[str],
    hashes: list[int],
    views: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
    offers: tuple[
        NDArray[np.int64],
        NDArray[np.bool_],
        NDArray[np.int64],
        NDArray[np.bool_],
        NDArray[np.int64],
        NDArray[np.float64],
    ],
    rows: tuple[
        NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]
    ],
    *,
    productivity: float,
    today_share: float,
    quirks: bool,
    stock_target: float,
    future_buy_divisor: float,
    future_sell_divisor: float,
    keep_selling: bool,
    own_sell_days: bool,
    n_rows: int,
    n_days: int,
) -> tuple[
    NDArray[np.uint8],
    NDArray[np.int64],
    NDArray[np.bool_],
    NDArray[np.int64],
    NDArray[np.bool_],
    NDArray[np.int64],
]: ...
def parse_literal(text: str) -> Any: ...
def read_negotiations_csv(
    paths: list[str], keep: list[str], *, counts: list[str] = ..., skip_bad_rows: bool = False
) -> list[dict[str, Any]]: ...
def split_csv_records(path: str) -> tuple[int, int]: ...
def parse_negotiation_cells(
    path: str,
    history: bytes,
    history_offsets: NDArray[np.int64],
    partners: bytes,
    partners_offsets: NDArray[np.int64],
    *,
    counts: list[tuple[str, bytes, NDArray[np.int64]]] = ...,
    skip_bad_rows: bool = False,
) -> dict[str, Any]: ...
