"""One place that seeds every random number generator the project touches."""

from __future__ import annotations

import random
import sys

import numpy as np
from negmas.helpers import rand as negmas_rand

__all__ = ["derive_seed", "isolate_mechanism_rng", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG, negmas' seeding hub and torch (if imported),
    and give negmas' mechanisms their own RNG (:func:`isolate_mechanism_rng`).

    scml draws world configurations from ``random`` and NumPy's global RNG, so a world generated
    after ``seed_everything(s)`` is the same world every time.
    """
    negmas_rand.seed_all(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    isolate_mechanism_rng(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def isolate_mechanism_rng(seed: int) -> None:
    """Make negmas' ``Mechanism.step`` draw from a private ``random.Random(seed)``.

    ``negmas.mechanisms.Mechanism.step`` (negmas 0.16) draws ``random.random()`` from the GLOBAL
    stream on every step and one more each time the negotiation's elapsed WALL-CLOCK time crosses
    a whole second (its ``pend_per_second`` check). So how fast the machine runs changed how much
    of the global stream was used, and with it the world's negotiation shuffles and every agent's
    random draws: the same seeded world came out differently under CPU load (measured: 9 of 15
    concurrent runs of one rollout world differed; with this, 15 of 15 were identical). The drawn
    values only matter with ``pend > 0`` or ``pend_per_second > 0``, which scml never sets, so a
    private stream changes no rule of the game.
    """
    import negmas.mechanisms as mechanisms

    setattr(mechanisms, "random", random.Random(seed))  # noqa: B010 - replaces the module binding


def derive_seed(base_seed: int, *keys: int | str) -> int:
    """A distinct, reproducible 31-bit seed for a worker or world, derived from ``base_seed``."""
    entropy = [base_seed, *(k if isinstance(k, int) else int.from_bytes(k.encode(), "little") for k in keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] >> 1)
