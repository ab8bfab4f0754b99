"""Which implementation of the L1 kernels :mod:`hrl.safety` calls: Rust, or the pure-Python fallback.

:data:`kernels` is the compiled extension ``hrl._core`` when it imports, else
:mod:`hrl.safety.fallback` (the same functions and ``Limits`` API in Python; a submission ships no
compiled code). Setting :data:`FORCE_ENV` to ``1`` before the first import of :mod:`hrl.safety`
forces the fallback. Choosing the fallback logs one warning (``hrl.safety.backend``), once per
process. :data:`NAME` says which was chosen (``"rust"`` or ``"python"``). :mod:`hrl.safety` looks
``kernels`` up on every call, so tests can swap it (``monkeypatch.setattr(backend, "kernels",
fallback)``) to play a world on either path in one process.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import TYPE_CHECKING

from hrl.safety import fallback

__all__ = ["FORCE_ENV", "NAME", "kernels"]

FORCE_ENV = "HRL_FORCE_PURE_L1"
"""Environment variable: ``1`` makes L1 run on :mod:`hrl.safety.fallback` even with Rust built."""

log = logging.getLogger(__name__)


def _choose() -> tuple[ModuleType, str]:
    if os.environ.get(FORCE_ENV, "").strip() not in ("", "0"):
        reason = f"{FORCE_ENV} is set"
    else:
        try:
            from hrl import _core
        except ImportError as error:
            reason = f"the compiled extension hrl._core cannot be imported ({error})"
        else:
            return _core, "rust"
    log.warning("L1 runs on the pure-Python fallback (hrl.safety.fallback): %s", reason)
    return fallback, "python"


if TYPE_CHECKING:  # both implementations have the extension's API (hrl/_core.pyi)
    from hrl import _core as kernels

    NAME: str
else:
    kernels, NAME = _choose()
    """The module whose ``derive_limits``, ``round_step``, ``audit_offers``, ``simulate_stock``
    and ``Limits`` L1 uses."""
