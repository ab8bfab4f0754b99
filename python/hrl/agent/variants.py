"""Named LitaAgentHRL variants for tournaments that build agents from import paths only
(``hrl evaluate --agent PATH``), so two bundles can play in the same tournament.

Each variant reads its bundle from its own environment variable (inherited by worker
processes); with the variable unset it behaves as :class:`~hrl.agent.hrl.LitaAgentHRL`
(``HRL_CHECKPOINT``, then the packaged default)::

    HRL_CHECKPOINT_FINETUNED=runs/ft/bundle.pt HRL_CHECKPOINT_BC=runs/bc/bundle.pt \\
        hrl evaluate --agent hrl.agent.variants.LitaAgentHRLFinetuned \\
                     --agent hrl.agent.variants.LitaAgentHRLBC ...
"""

from __future__ import annotations

import os
from typing import Any

from hrl.agent.hrl import LitaAgentHRL

__all__ = ["BC_ENV", "FINETUNED_ENV", "LitaAgentHRLBC", "LitaAgentHRLFinetuned", "LitaAgentHRLWithoutL4"]

FINETUNED_ENV = "HRL_CHECKPOINT_FINETUNED"
BC_ENV = "HRL_CHECKPOINT_BC"


class LitaAgentHRLFinetuned(LitaAgentHRL):
    """LitaAgentHRL playing the bundle named by ``HRL_CHECKPOINT_FINETUNED`` (deterministic)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("checkpoint", os.environ.get(FINETUNED_ENV) or None)
        super().__init__(*args, **kwargs)


class LitaAgentHRLBC(LitaAgentHRL):
    """LitaAgentHRL playing the bundle named by ``HRL_CHECKPOINT_BC`` (deterministic)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("checkpoint", os.environ.get(BC_ENV) or None)
        super().__init__(*args, **kwargs)


class LitaAgentHRLWithoutL4(LitaAgentHRL):
    """LitaAgentHRL's own bundle (``HRL_CHECKPOINT``, then the packaged one) without L4: the
    L1+L2+L3 row of an ablation (alpha = 1: the round's counter-offers on a day split its cap
    equally). No variant is needed for L1+L2: without L3 the agent plays LitaAgentL1's
    decisions exactly (``layers=("l2",)``; tested)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("layers", ("l2", "l3"))
        super().__init__(*args, **kwargs)
