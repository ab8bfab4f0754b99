"""What ``LitaAgentHRL`` records in ``sample`` mode: one record per day for L2, one per round for
L3/L4 (all threads of the round in one record, one row per thread). Online PPO/MAPPO (issue 6)
consumes them; rewards, ``terminated``/``truncated`` and the critic's global state are attached
there, keyed by ``(agent, day)`` and ``(agent, day, round_index)``.

Every tensor is a CPU tensor owned by the record (cloned out of the agent's reusable buffers),
in the units of ``docs/models.md``: quantities / ``n_lines``, prices / trading price, delivery
days as offsets from today.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["L2Transition", "RoundTransition", "TransitionLog"]


@dataclass(frozen=True)
class L2Transition:
    """One L2 decision (the day's goal).

    Attributes:
        day: simulated day.
        state: ``[K + 1, 37]`` macro window (oldest first; :func:`hrl.features.macro_features`).
        state_mask: ``[K + 1]`` bool, False for days before day 0.
        profile: ``[11, 2]`` committed supplies and sales per delivery offset / n_lines.
        side_mask: ``[4]`` bool, the goal components the agent can trade.
        goal: ``[4]`` the action (normalised g_t; 0 on masked components).
        log_prob: log-density of ``goal`` under the policy that chose it (``L2Output.log_prob``).
        value: the L2 value head's estimate of the state.
    """

    day: int
    state: Tensor
    state_mask: Tensor
    profile: Tensor
    side_mask: Tensor
    goal: Tensor
    log_prob: float
    value: float


@dataclass(frozen=True)
class RoundTransition:
    """One round (``first_proposals`` or ``counter_all`` call) of ``K`` threads: the L3 inputs
    and actions per thread, and L4's joint action over the threads. Row ``k`` is one L3 record
    (one acted thread-round).

    Attributes:
        day, round_index: simulated day; index of the call within the day (0, 1, ...).
        call: ``"first_proposals"`` or ``"counter_all"``.
        partners: the thread (partner id) of each row.
        rounds: int64 ``[K]`` negotiation round (mechanism step) of each thread.
        history ... kind_mask: L3's inputs, one field per name of :data:`hrl.models.l3.L3_INPUTS`
            (``[K, T, 5]``, ``[K, T]``, ``[K, 4]``, ``[K, 3]``, ``[K, 3]``, caps ``[K, 11]``,
            prices ``[K, 2]``, ``[K, 11]``, ``[K, 3]``; see :class:`hrl.train.datasets.MicroTensors`).
        kind, delivery, fraction: the L3 action (:data:`hrl.models.l3.L3_ACTION`): int64 ``[K]``
            (accept 0, counter 1, end 2), int64 ``[K]`` delivery offset, ``[K, 2]`` (quantity,
            price) fractions of L1's box; ``follow`` int64 ``[K]``, 1 where the thread played L1's
            own decision (the three before are then ignored; 0s without the follow gate).
        l3_log_prob, l3_value: ``[K]`` ``L3Output.log_prob(action)`` and value per thread.
        threads: ``[K, 16]`` L4 thread features (:func:`hrl.models.thread_features`).
        alpha: ``[K]`` L4's action (1.0 everywhere when the bundle has no L4).
        l4_log_prob_elements: ``[K]`` per-thread log-density of alpha (zeros without L4);
            ``l4_log_prob`` is their sum, ``l4_value`` the L4 value (0.0 without L4).
        changed_by_l1: bool ``[K]``: L1 changed the thread's decision (clipped, dropped, or
            turned an unsafe acceptance into a counter-offer) -- for ``safety/clip_rate``.
    """

    day: int
    round_index: int
    call: str
    partners: tuple[str, ...]
    rounds: Tensor
    history: Tensor
    history_mask: Tensor
    goal: Tensor
    baseline: Tensor
    context: Tensor
    caps: Tensor
    prices: Tensor
    day_mask: Tensor
    kind_mask: Tensor
    kind: Tensor
    delivery: Tensor
    fraction: Tensor
    follow: Tensor
    l3_log_prob: Tensor
    l3_value: Tensor
    threads: Tensor
    alpha: Tensor
    l4_log_prob_elements: Tensor
    l4_log_prob: float
    l4_value: float
    changed_by_l1: Tensor

    def __len__(self) -> int:
        return len(self.partners)


@dataclass
class TransitionLog:
    """Everything one agent recorded in ``sample`` mode (per world)."""

    l2: list[L2Transition] = field(default_factory=list)
    rounds: list[RoundTransition] = field(default_factory=list)

    def clear(self) -> None:
        self.l2.clear()
        self.rounds.clear()

    @property
    def n_thread_rounds(self) -> int:
        """L3 records: thread rows over all rounds."""
        return sum(len(r) for r in self.rounds)
