"""Per-agent timing of the calls a world makes into its agents (decision latency).

scml wraps every agent in an adapter that calls ``adapter._obj.<method>(...)``; replacing those
methods on the *instance* with timed wrappers measures every agent the same way, ours and the
opponents', without touching their code. The overhead is two ``perf_counter`` calls per call.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DECISION_METHODS", "AgentClock", "instrument_agents"]

DECISION_METHODS = ("first_proposals", "counter_all", "propose", "respond")
"""Calls that produce an offer or a response: their per-call latency is reported."""

_OTHER_METHODS = ("init", "before_step", "step", "on_negotiation_success", "on_negotiation_failure")


@dataclass
class AgentClock:
    """Time one agent spent inside its own code.

    Attributes:
        total_s: seconds in all instrumented calls.
        decision_s: duration of each decision call (:data:`DECISION_METHODS`), in seconds.
    """

    total_s: float = 0.0
    decision_s: list[float] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of decision-call latency in milliseconds (NaN if none)."""
        if not self.decision_s:
            return float("nan")
        return float(np.percentile(self.decision_s, q) * 1e3)


def instrument_agents(world: Any, agent_ids: set[str] | None = None) -> dict[str, AgentClock]:
    """Wrap the methods of each agent of ``world`` (or of ``agent_ids``) with timers.

    Returns one :class:`AgentClock` per instrumented agent id; the clocks fill as the world runs.
    """
    clocks: dict[str, AgentClock] = {}
    for agent_id, adapter in world.agents.items():
        inner = getattr(adapter, "_obj", None)
        if inner is None or (agent_ids is not None and agent_id not in agent_ids):
            continue
        clock = clocks[agent_id] = AgentClock()
        for name in DECISION_METHODS + _OTHER_METHODS:
            method = getattr(inner, name, None)
            if callable(method):
                setattr(inner, name, _timed(method, clock, decision=name in DECISION_METHODS))
    return clocks


def _timed(method: Callable[..., Any], clock: AgentClock, *, decision: bool) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            clock.total_s += elapsed
            if decision:
                clock.decision_s.append(elapsed)

    return timed
