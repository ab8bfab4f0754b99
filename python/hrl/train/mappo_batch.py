"""MAPPO's batches: the L3 thread rows and L4 rounds of many learner-worlds, with pre-update
values, GAE advantages and returns (the Rust kernel, :func:`hrl.train.ppo.trajectory_gae`).

Trajectories:

- L3: the rows of one (day, partner) thread, rounds in order, form an episode that TERMINATES at
  its last row (the negotiation is over). Rows are stored round by round (all threads of a
  round together); :func:`thread_order` gives the permutation into thread-by-thread order and
  each thread's last row.
- L4: the rounds of one learner-world form one trajectory with the day rewards of
  :func:`hrl.train.rewards.l4_rewards`; its last round terminates (the world is over), a
  bankruptcy day's last round too.

Critic inputs (MAPPO): :func:`hrl.models.critic.round_global_state` of each round (the day's
macro state, all threads of the round, and the day's world features recorded by the rollout
learner, :mod:`hrl.train.world_view`). IPPO uses each actor's own value head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hrl.agent.transitions import RoundTransition
from hrl.errors import ConfigError
from hrl.models.critic import CentralCritic, round_global_state
from hrl.models.l3 import L3_ACTION, L3_INPUTS, L3Action, L3Executor, L3Output
from hrl.models.l4 import L4Coordinator
from hrl.train.ppo import Rows, check_batch, trajectory_gae

if TYPE_CHECKING:
    from hrl.train.mappo import MAPPOConfig

__all__ = [
    "Episode",
    "L3Batch",
    "L4Batch",
    "MultiBatch",
    "build_multi_batch",
    "l3_action",
    "l3_forward",
    "thread_order",
]


@dataclass(frozen=True)
class L3Batch(Rows):
    """``N`` thread rows: L3 inputs (one field per name of :data:`hrl.models.l3.L3_INPUTS`; the
    history padded to the longest), the action (:data:`hrl.models.l3.L3_ACTION`), ``old_log_prob``, the
    critic's inputs (``threads [N, 16]``, ``global_state [N, G]``), ``advantages``, ``returns``
    and the pre-update ``values`` (``[N]``); ``round_advantages [N]``: each row's round's L4
    advantage (0 without L4), and ``old_gate_log_prob [N]``: the pre-update follow gate's
    log-prob of the row's choice (0 without the gate or with ``gate_credit = "thread"``: only the
    round credit reads it, so only then is the extra forward pass spent), both for
    ``MAPPOConfig.gate_credit``."""

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
    old_log_prob: Tensor
    threads: Tensor
    global_state: Tensor
    advantages: Tensor
    returns: Tensor
    values: Tensor
    round_advantages: Tensor
    old_gate_log_prob: Tensor


@dataclass(frozen=True)
class L4Batch(Rows):
    """``R`` rounds of up to ``K`` threads (padded): ``threads [R, K, 16]``, ``thread_mask``,
    ``alpha [R, K]``, ``old_log_prob [R, K]`` (per thread), ``global_state [R, G]``, and
    ``advantages``, ``returns``, ``values`` ``[R]``."""

    threads: Tensor
    thread_mask: Tensor
    alpha: Tensor
    old_log_prob: Tensor
    global_state: Tensor
    advantages: Tensor
    returns: Tensor
    values: Tensor


@dataclass(frozen=True)
class MultiBatch:
    """L3 and L4 batches of one update (``l4`` is None without an L4 model)."""

    l3: L3Batch
    l4: L4Batch | None


@dataclass(frozen=True)
class Episode:
    """One learner-world's L3/L4 inputs for :func:`build_multi_batch`.

    ``rounds``: the learner's round records; ``macro``: today's macro features ``[37]`` per day;
    ``l3_reward [N rows]``, ``thread_last [N]`` (from :func:`hrl.train.rewards.l3_rewards`),
    ``l4_reward [R]`` (:func:`hrl.train.rewards.l4_rewards`), ``day_terminated``: days the
    world declared the agent bankrupt; ``world``: the critic's world features ``[W]`` per day
    (:attr:`hrl.train.rollout.LearnerRecord.world_views`; needed when the critic has ``W > 0``).
    """

    rounds: Sequence[RoundTransition]
    macro: dict[int, Tensor]
    l3_reward: NDArray[np.float64]
    thread_last: NDArray[np.bool_]
    l4_reward: NDArray[np.float64]
    day_terminated: frozenset[int] = frozenset()
    world: dict[int, Tensor] = field(default_factory=dict)


def thread_order(keys: Sequence[tuple[int, str]]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Rows stored round by round -> thread by thread.

    Args:
        keys: ``(day, partner)`` of each row, in storage order (rounds in time order).

    Returns:
        ``(order, last)``: ``order[j]`` is the storage index of the ``j``-th row in thread order
        (threads sorted by (day, partner), a thread's rows in time order); ``last[j]`` is True on
        each thread's last row.
    """
    order = np.array(sorted(range(len(keys)), key=lambda i: (keys[i][0], keys[i][1], i)), dtype=np.int64)
    last = np.ones(len(keys), bool)
    for pos in range(len(keys) - 1):
        last[pos] = keys[order[pos]] != keys[order[pos + 1]]
    return order, last


def _pad(tensors: Sequence[Tensor], length: int) -> Tensor:
    """Right-pad the dim 1 of ``[K, T, ...]`` tensors to ``length`` and concatenate over dim 0."""
    out = []
    for t in tensors:
        if t.shape[1] < length:
            pad = t.new_zeros((t.shape[0], length - t.shape[1], *t.shape[2:]))
            t = torch.cat([t, pad], 1)
        out.append(t)
    return torch.cat(out, 0)


def l3_forward(l3: L3Executor, b: L3Batch) -> L3Output:
    """L3 on the batch's inputs."""
    out: L3Output = l3(*(getattr(b, name) for name in L3_INPUTS))
    return out


def l3_action(b: L3Batch) -> L3Action:
    """The batch's recorded L3 actions."""
    return L3Action(*(getattr(b, name) for name in L3_ACTION))


def _gate_log_prob(l3: L3Executor, b: L3Batch) -> Tensor:
    """``log P(follow choice)`` of each row under ``l3``'s follow gate ``[N]`` (0 without one)."""
    if l3.follow_head is None:
        return torch.zeros(len(b))
    with torch.no_grad():
        gate = l3_forward(l3, b).follow
        assert gate is not None
        return gate.log_prob(b.follow).float()


def _values(
    l3: L3Executor,
    l4: L4Coordinator | None,
    critic: CentralCritic | None,
    centralised: bool,
    batch: MultiBatch,
) -> tuple[Tensor, Tensor | None]:
    with torch.no_grad():
        if centralised:
            if critic is None:
                raise ConfigError("MAPPO with centralised=True needs a CentralCritic")
            v3 = critic.thread_value(batch.l3.global_state, batch.l3.threads)
            v4 = critic.round_value(batch.l4.global_state) if batch.l4 is not None else None
        else:
            v3 = l3_forward(l3, batch.l3).value
            v4 = (
                l4(batch.l4.threads, batch.l4.thread_mask).value
                if (l4 is not None and batch.l4 is not None)
                else None
            )
    return v3, v4


def _global_states(episodes: Sequence[Episode], world_dim: int) -> Tensor:
    """``[R, G]``: one critic state per acted round of every episode."""
    states = []
    for ep in episodes:
        for r in ep.rounds:
            if not len(r):
                continue
            world = None
            if world_dim:
                world = ep.world.get(r.day)
                if world is None or world.shape != (world_dim,):
                    got = None if world is None else tuple(world.shape)
                    raise ConfigError(
                        f"episode: world features [{world_dim}] of day {r.day} missing (got {got})"
                    )
            states.append(round_global_state(ep.macro.get(r.day, torch.zeros(37)), r.threads, world))
    return torch.stack(states)


def _stack(episodes: Sequence[Episode], l4: L4Coordinator | None, world_dim: int) -> MultiBatch:
    """The rows and rounds of every episode, without advantages yet."""
    rounds = [r for ep in episodes for r in ep.rounds if len(r)]
    if not rounds:
        raise ConfigError("build_multi_batch: no L3 rows")
    length = max(r.history.shape[1] for r in rounds)
    g_round = _global_states(episodes, world_dim)
    sizes = torch.tensor([len(r) for r in rounds])
    n_rows = int(sizes.sum())

    def cat(name: str) -> Tensor:
        return torch.cat([getattr(r, name) for r in rounds])

    padded = {"history", "history_mask"}
    l3b = L3Batch(
        **{
            name: _pad([getattr(r, name) for r in rounds], length) if name in padded else cat(name)
            for name in (*L3_INPUTS, *L3_ACTION)
        },
        old_log_prob=cat("l3_log_prob"),
        threads=cat("threads"),
        global_state=g_round.repeat_interleave(sizes, 0),
        advantages=torch.zeros(n_rows),
        returns=torch.zeros(n_rows),
        values=torch.zeros(n_rows),
        round_advantages=torch.zeros(n_rows),
        old_gate_log_prob=torch.zeros(n_rows),
    )
    l4b = None
    if l4 is not None:
        k, n = int(sizes.max()), len(rounds)
        threads = torch.zeros(n, k, rounds[0].threads.shape[1])
        mask = torch.zeros(n, k, dtype=torch.bool)
        alpha = torch.full((n, k), l4.config.alpha_min)
        old = torch.zeros(n, k)
        for i, r in enumerate(rounds):
            threads[i, : len(r)] = r.threads
            mask[i, : len(r)] = True
            alpha[i, : len(r)] = r.alpha
            old[i, : len(r)] = r.l4_log_prob_elements
        l4b = L4Batch(threads, mask, alpha, old, g_round, torch.zeros(n), torch.zeros(n), torch.zeros(n))
    return MultiBatch(l3b, l4b)


def build_multi_batch(
    episodes: Sequence[Episode],
    l3: L3Executor,
    l4: L4Coordinator | None,
    critic: CentralCritic | None,
    cfg: MAPPOConfig,
) -> MultiBatch:
    """Stack every episode's rows, compute values (pre-update) and GAE (Rust kernel); every
    input is checked for NaN/inf (:class:`~hrl.errors.NonFiniteError` naming ``l3.<field>`` or
    ``l4.<field>``)."""
    world_dim = critic.world_dim if (critic is not None and cfg.centralised) else 0
    batch = _stack(episodes, l4, world_dim)
    v3, v4 = _values(l3, l4, critic, cfg.centralised, batch)
    v3n = v3.double().numpy()
    v4n = v4.double().numpy() if v4 is not None else None
    adv3, ret3 = np.zeros(len(v3n), np.float32), np.zeros(len(v3n), np.float32)
    adv4 = np.zeros(0 if v4n is None else len(v4n), np.float32)
    ret4 = np.zeros_like(adv4)
    row0, round0 = 0, 0
    for ep in episodes:
        ep_rounds = [r for r in ep.rounds if len(r)]
        n_rows = sum(len(r) for r in ep_rounds)
        if n_rows != len(ep.l3_reward):
            raise ConfigError(f"episode: {len(ep.l3_reward)} L3 rewards for {n_rows} rows")
        order, last = thread_order([(r.day, p) for r in ep_rounds for p in r.partners])
        idx = order + row0
        a, g = trajectory_gae(ep.l3_reward[order], v3n[idx], last, gamma=cfg.gamma_l3, lam=cfg.lam, cut=last)
        adv3[idx], ret3[idx] = a, g
        row0 += n_rows
        if v4n is not None:
            n_r = len(ep_rounds)
            rew = ep.l4_reward[[i for i, r in enumerate(ep.rounds) if len(r)]]
            term = np.array(
                [
                    i + 1 == n_r or (r.day in ep.day_terminated and ep_rounds[i + 1].day != r.day)
                    for i, r in enumerate(ep_rounds)
                ]
            )
            a, g = trajectory_gae(rew, v4n[round0 : round0 + n_r], term, gamma=cfg.gamma_l4, lam=cfg.lam)
            adv4[round0 : round0 + n_r], ret4[round0 : round0 + n_r] = a, g
            round0 += n_r
    sizes = torch.tensor([len(r) for ep in episodes for r in ep.rounds if len(r)])
    l3b = replace(
        batch.l3,
        advantages=torch.from_numpy(adv3),
        returns=torch.from_numpy(ret3),
        values=v3.float(),
        round_advantages=torch.from_numpy(adv4).repeat_interleave(sizes)
        if v4n is not None
        else batch.l3.round_advantages,
        old_gate_log_prob=_gate_log_prob(l3, batch.l3)
        if cfg.gate_credit == "round"
        else batch.l3.old_gate_log_prob,
    )
    check_batch("l3", l3b)
    l4b = None
    if batch.l4 is not None and v4 is not None:
        l4b = replace(
            batch.l4, advantages=torch.from_numpy(adv4), returns=torch.from_numpy(ret4), values=v4.float()
        )
        check_batch("l4", l4b)
    return MultiBatch(l3b, l4b)
