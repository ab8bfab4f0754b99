"""Where the learners sit: production levels through scml's real placement mechanism.

``SCML2024StdWorld.generate`` uses ``agent_processes`` only to COUNT the agents of each level and
then places the agents in LIST ORDER: the first ``count(0)`` agents of ``agent_types`` become
level-0 factories, the next ``count(1)`` level-1 factories, and so on
(``scml/oneshot/world.py``, ``generate``). So an agent sits on level ``k`` only when it stands
at the right index of a level-sorted list; :func:`seat_agents` builds that list and
:func:`hrl.worlds.build_world` checks that scml put every agent where the list says.

:func:`learner_levels` spreads the learners of a batch of worlds over every level: learner ``k``
of world ``i`` sits on level ``(i * n_learners + k) % n_levels``, so the learners of one world
sit on distinct levels and ``n_levels`` consecutive learner slots cover every level (the
rollout planner numbers worlds across updates, so the levels also rotate between updates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hrl.errors import ConfigError

__all__ = ["Seat", "learner_levels", "seat_agents"]


@dataclass(frozen=True)
class Seat:
    """One factory: the agent's import path and its ``agent_params`` entry for ``generate``."""

    agent: str
    params: dict[str, Any] = field(default_factory=dict)


def learner_levels(world_index: int, n_learners: int, n_levels: int) -> tuple[int, ...]:
    """The production level of each learner of world ``world_index`` (see the module docs)."""
    if n_learners > n_levels:
        raise ConfigError(f"n_learners: {n_learners} learners cannot sit on distinct levels of {n_levels}")
    return tuple((world_index * n_learners + k) % n_levels for k in range(n_learners))


def seat_agents(
    per_level: int, n_levels: int, learners: Sequence[tuple[int, Seat]], others: Sequence[Seat]
) -> tuple[list[Seat], tuple[int, ...]]:
    """Level-sorted seats and their ``agent_processes``: on each level its learners first, then
    the next ``others`` (in order) until the level holds ``per_level`` factories.

    Args:
        per_level: factories per level; n_levels: production levels.
        learners: ``(level, seat)`` of each learner.
        others: the remaining factories (exactly ``per_level * n_levels - len(learners)``).

    Returns:
        ``(seats, processes)``: ``processes[i]`` is the level of ``seats[i]`` (non-decreasing).
    """
    if len(learners) + len(others) != per_level * n_levels:
        raise ConfigError(
            f"seats: {len(learners)} learners + {len(others)} others != {per_level} x {n_levels} levels"
        )
    if any(not 0 <= lv < n_levels for lv, _ in learners):
        raise ConfigError(f"learners: levels {[lv for lv, _ in learners]} outside 0..{n_levels - 1}")
    fill = iter(others)
    seats: list[Seat] = []
    processes: list[int] = []
    for level in range(n_levels):
        mine = [seat for lv, seat in learners if lv == level]
        if len(mine) > per_level:
            raise ConfigError(f"learners: {len(mine)} on level {level} but {per_level} factories per level")
        row = mine + [next(fill) for _ in range(per_level - len(mine))]
        seats += row
        processes += [level] * len(row)
    return seats, tuple(processes)
