"""SCML agents of ``hrl``: :class:`~hrl.agent.l1.LitaAgentL1` (baseline + L1 mask) and
:class:`~hrl.agent.hrl.LitaAgentHRL` / :class:`~hrl.agent.hrl.TrackedLitaAgentHRL` (L2/L3/L4 over
L1; see docs/agent.md). The HRL agents import torch, so they load on first access."""

from typing import Any

from hrl.agent.l1 import LitaAgentL1

__all__ = ["LitaAgentHRL", "LitaAgentL1", "TrackedLitaAgentHRL"]


def __getattr__(name: str) -> Any:
    if name in ("LitaAgentHRL", "TrackedLitaAgentHRL"):
        from hrl.agent import hrl

        return getattr(hrl, name)
    raise AttributeError(f"module 'hrl.agent' has no attribute {name!r}")
