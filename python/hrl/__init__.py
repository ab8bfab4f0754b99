"""hrl: LitaAgent-HRL, a hierarchical RL agent for the SCML 2025 Standard track.

Public API (see README.md):
    compute_gae, discounted_returns   GAE(lambda) and returns over [T, N] arrays (Rust kernels)
    seed_everything                   seed every RNG the project touches
    hrl.errors                        the exception hierarchy (HrlError and subclasses)
"""

from hrl import errors
from hrl._core import __version__ as _core_version
from hrl.returns import compute_gae, discounted_returns
from hrl.seeding import seed_everything

__all__ = ["__version__", "compute_gae", "discounted_returns", "errors", "seed_everything"]

__version__ = _core_version
