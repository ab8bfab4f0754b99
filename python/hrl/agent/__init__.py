"""SCML agents of ``hrl``: :class:`~hrl.agent.l1.LitaAgentL1` (baseline + L1 mask)."""

from hrl.agent.l1 import LitaAgentL1

__all__ = ["LitaAgentL1"]
