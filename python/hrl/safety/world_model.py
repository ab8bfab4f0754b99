"""What L1 assumes about the world: how input stock behaves, and what supply it may expect.

L1 models the simulator as it runs, not as a textbook factory would. In scml 0.8.4 input stock is
never used up (``rust/stock.rs`` cites the code): production on day ``t`` is
``min(stock + arrivals, lines, due)``, and only the arrivals production did not use are added to
the stock. :func:`simulate_stock` is that model (Rust, or :mod:`hrl.safety.fallback` in pure
Python), checked against real worlds' stats in ``tests/test_world_model.py``. Two guards keep L1
safe if scml changes:

- :func:`installed_stock_model`: outside the scml versions that test verified, L1 uses the
  consumed-stock model from the start;
- :class:`StockGuard`: an agent that ever sees its stock fall switches to the consumed-stock model
  and logs one warning.

First-level agents buy only through exogenous contracts, which are known one day at a time.
:func:`expected_exogenous_supplies` is the credit L1 gives them for later days (the exposure tier:
counted, bounded, never treated as signed).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import scml
from numpy.typing import NDArray

from hrl.errors import ConfigError
from hrl.safety import backend
from hrl.safety.state import CONSUMED, PERSISTENT

__all__ = [
    "VERIFIED_SCML_VERSIONS",
    "StockGuard",
    "agent_days",
    "expected_exogenous_supplies",
    "installed_stock_model",
    "model_mismatches",
    "simulate_stock",
]

log = logging.getLogger(__name__)

VERIFIED_SCML_VERSIONS = frozenset({"0.8.4"})
"""scml versions whose stock behaviour ``tests/test_world_model.py`` has checked (persistent)."""


def installed_stock_model(version: str | None = None) -> int:
    """:data:`PERSISTENT` for a verified scml version (default: the installed one), else
    :data:`CONSUMED` (the model that never over-credits stock)."""
    version = scml.__version__ if version is None else version
    return PERSISTENT if version in VERIFIED_SCML_VERSIONS else CONSUMED


class StockGuard:
    """Switches an agent to the consumed-stock model the first time its stock falls.

    Args:
        model: the model to start with (default: :func:`installed_stock_model`).
    """

    def __init__(self, model: int | None = None) -> None:
        self.model = installed_stock_model() if model is None else model
        self._last: int | None = None

    def observe(self, stock: int) -> int:
        """Records today's input stock (units) and returns the stock model to use today."""
        if self._last is not None and stock < self._last and self.model == PERSISTENT:
            log.warning(
                "input stock fell from %d to %d: this scml uses stock up; L1 switches to the "
                "consumed-stock model",
                self._last,
                stock,
            )
            self.model = CONSUMED
        self._last = stock
        return self.model


def expected_exogenous_supplies(
    history: Sequence[int], window: int, *, lookback: int = 5, limit: int | None = None
) -> tuple[int, ...]:
    """Credit per window day for a first-level agent's future exogenous input.

    The estimate is the smallest exogenous input quantity of the last ``lookback`` days
    (``history`` holds one quantity per past day, today's last): a level the supply has not fallen
    below lately. Day 0 of the window (today) gets 0, since today's contract is already signed;
    every later day gets the estimate, capped by ``limit`` units when given.

    Args:
        history: exogenous input units per day so far (today's included), oldest first.
        window: days in the delivery window (>= 1).
        lookback: days the minimum is taken over (>= 1).
        limit: the most units credited per day (the exposure bound), ``None`` for no cap.

    Raises:
        ConfigError: ``window`` or ``lookback`` below 1, or a negative ``limit``.
    """
    if window < 1:
        raise ConfigError(f"window: must be >= 1 day, got {window}")
    if lookback < 1:
        raise ConfigError(f"lookback: must be >= 1 day, got {lookback}")
    if limit is not None and limit < 0:
        raise ConfigError(f"limit: must be >= 0 units, got {limit}")
    recent = list(history)[-lookback:]
    credit = max(0, min(recent)) if recent else 0
    if limit is not None:
        credit = min(credit, limit)
    return (0, *([credit] * (window - 1)))


def simulate_stock(
    model: int, stock: int, arrivals: Sequence[int], due: Sequence[int], n_lines: int
) -> NDArray[np.int64]:
    """The day-by-day stock model (:mod:`hrl.safety.backend`): int64 ``[W, 3]`` rows ``(production,
    shortfall, stock at the end of the day)`` in units, given the stock at the start, input units
    delivered and output units due per day, and the lines. Raises ``hrl.errors`` on negative or
    mismatched inputs."""
    return backend.kernels.simulate_stock(model, stock, list(arrivals), list(due), n_lines)


def agent_days(world: Any) -> list[dict[str, int]]:
    """One record per (factory, day) of a finished ``SCML2024StdWorld``, from its executed
    contracts and stats: ``stock`` at the start, ``arrivals`` (input units delivered), ``due``
    (output units due), ``lines``, and the world's ``production``, ``shortfall``, ``end_stock``
    and ``output_stock`` (units). Days from a factory's bankruptcy on are left out."""
    # Imported here: the playing agent's import closure stays free of hrl.worlds (a submission
    # vendors that closure, see hrl.submission.vendor).
    from hrl.worlds import SYSTEM_AGENTS

    arrivals: dict[tuple[str, int], int] = defaultdict(int)
    due: dict[tuple[str, int], int] = defaultdict(int)
    for contract in world.executed_contracts:
        t = int(contract["executed_at"])
        arrivals[(contract["buyer"], t)] += int(contract["quantity"])
        due[(contract["seller"], t)] += int(contract["quantity"])
    rows = []
    for aid, agent in world.agents.items():
        if aid in SYSTEM_AGENTS:
            continue
        lines, stock = int(agent.awi.n_lines), 0
        for t in range(world.n_steps):
            if world.stats[f"bankrupt_{aid}"][t]:
                break
            end_stock = int(world.stats[f"inventory_input_{aid}"][t])
            rows.append(
                {
                    "agent": aid,
                    "day": t,
                    "lines": lines,
                    "stock": stock,
                    "arrivals": arrivals[(aid, t)],
                    "due": due[(aid, t)],
                    "production": round(world.stats[f"productivity_{aid}"][t] * lines),
                    "shortfall": int(world.stats[f"shortfall_quantity_{aid}"][t]),
                    "end_stock": end_stock,
                    "output_stock": int(world.stats[f"inventory_output_{aid}"][t]),
                }
            )
            stock = end_stock
    return rows


def model_mismatches(rows: Sequence[dict[str, int]], model: int = PERSISTENT) -> list[dict[str, int]]:
    """The records of :func:`agent_days` whose production, shortfall or end-of-day stock differ
    from what :func:`simulate_stock` predicts under ``model``."""
    bad = []
    for r in rows:
        [(production, shortfall, end_stock)] = simulate_stock(
            model, r["stock"], [r["arrivals"]], [r["due"]], r["lines"]
        ).tolist()
        if (production, shortfall, end_stock) != (r["production"], r["shortfall"], r["end_stock"]):
            bad.append(dict(r))
    return bad
