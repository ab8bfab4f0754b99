"""One place that seeds every random number generator the project touches."""

from __future__ import annotations

import random
import sys

import numpy as np
from negmas.helpers import rand as negmas_rand

__all__ = ["derive_seed", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG, negmas' seeding hub and torch (if imported).

    scml draws world configurations from ``random`` and NumPy's global RNG, so a world generated
    after ``seed_everything(s)`` is the same world every time.
    """
    negmas_rand.seed_all(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def derive_seed(base_seed: int, *keys: int | str) -> int:
    """A distinct, reproducible 31-bit seed for a worker or world, derived from ``base_seed``."""
    entropy = [base_seed, *(k if isinstance(k, int) else int.from_bytes(k.encode(), "little") for k in keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] >> 1)
