"""hrl: LitaAgent-HRL, a hierarchical RL agent for the SCML 2025 Standard track.

Public API (see README.md):
    compute_gae, discounted_returns   GAE(lambda) and returns over [T, N] arrays (Rust kernels)
    seed_everything                   seed every RNG the project touches
    LitaAgentL1                       the SCML agent playing baseline + L1 mask (hrl.agent.l1)
    LitaAgentHRL, TrackedLitaAgentHRL the hierarchical agent (hrl.agent.hrl, docs/agent.md)
    hrl.safety                        L1 safety rules: caps, bounds, budget, clipping (Rust; pure
                                      Python in hrl.safety.fallback without the extension)
    hrl.errors                        the exception hierarchy (HrlError and subclasses)
"""

from typing import Any

from hrl import errors
from hrl._core import __version__ as _core_version
from hrl.returns import compute_gae, discounted_returns
from hrl.seeding import seed_everything

__all__ = [
    "LitaAgentHRL",
    "LitaAgentL1",
    "TrackedLitaAgentHRL",
    "__version__",
    "compute_gae",
    "discounted_returns",
    "errors",
    "seed_everything",
]

__version__ = _core_version

_LAZY = {
    "LitaAgentL1": "hrl.agent.l1",
    "LitaAgentHRL": "hrl.agent.hrl",
    "TrackedLitaAgentHRL": "hrl.agent.hrl",
}
"""Exports that import scml (seconds): loaded on first access, so `import hrl` stays light."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hrl' has no attribute {name!r}")
