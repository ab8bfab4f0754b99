"""Online rollouts: real ``SCML2024StdWorld`` worlds in which LitaAgentHRL learners act in
``sample`` mode with the current bundle.

A rollout task (:class:`RolloutTask`) is plain data: the world (learners, opponents, days,
seed) and the *path* of the current bundle (written once per update by the learner; workers load
it from disk, so weights are never pickled per world). :func:`run_rollout` runs one world and
returns a :class:`RolloutResult`: per learner (keyed by the agent's **world id**, the id
``world.stats`` and ``world.scores()`` use) its :class:`~hrl.agent.transitions.TransitionLog`,
the per-day world state needed for rewards (:class:`DayRecord`), the deals it signed and its
final score.

Learners are :class:`RolloutLitaAgentHRL` (LitaAgentHRL that also records its signed deals and,
at the start of every day, what the centralised critic sees of the world:
:func:`hrl.train.world_view.world_view`); frozen snapshots of our own bundle play as
``hrl.agent.hrl.LitaAgentHRL`` in deterministic mode.

Paired rollouts (``RolloutTask.paired``): the world is played a second time, in the same
worker, with :class:`~hrl.agent.l1.LitaAgentL1` in every learner's seat and everything else
the same (the same seed and configuration, type-blind agent ids, synchronous calls: the settings
of ``hrl compare``). Each learner's record then carries its seat's day-end balances under L1
(``paired_balances``), which :func:`hrl.train.rewards.day_terms` subtracts from the learner's own
as a control variate: the rewards of a world add up to ``score - paired_score``, the seat-swap
difference that ``hrl compare`` measures, instead of ``score - 1``, whose swing from world to
world (+-0.3) is many times the effects a learner can find above L1.

Placement: each task names the level of every learner (:func:`hrl.train.placement.learner_levels`
spreads a batch's learners over every level); :func:`run_rollout` seats them through scml's own
mechanism (a level-sorted agent list, :func:`hrl.train.placement.seat_agents`) and checks the
levels of the built world (``awi.level``) against the plan.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from negmas import Contract
from torch import Tensor

from hrl.agent.hrl import LitaAgentHRL
from hrl.agent.l1 import LitaAgentL1
from hrl.agent.transitions import TransitionLog
from hrl.errors import ConfigError
from hrl.evaluate.compare import EVALUATION_GENERATE_KWARGS, EVALUATION_WORLD_KWARGS
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN
from hrl.seeding import derive_seed
from hrl.train.placement import Seat, learner_levels, seat_agents
from hrl.train.world_view import world_view
from hrl.worlds import WorldSpec, build_world, summarize_world

__all__ = [
    "DEFAULT_POOL",
    "LEARNER",
    "PAIRED_BASELINE",
    "SNAPSHOT",
    "DayRecord",
    "Deal",
    "LearnerRecord",
    "RolloutLitaAgentHRL",
    "RolloutResult",
    "RolloutTask",
    "plan_rollouts",
    "run_rollout",
]

LEARNER = "hrl.train.rollout.RolloutLitaAgentHRL"
"""Import path of the learning agent in rollout worlds."""
PAIRED_BASELINE = "hrl.agent.l1.LitaAgentL1"
"""Import path of the agent that plays the learners' seats in the paired play of a world."""
SNAPSHOT = "hrl.agent.hrl.LitaAgentHRL"
"""Import path under which frozen snapshots of our own bundle play (deterministic mode)."""
DEFAULT_POOL = (PENGUIN, *FINALISTS_2025, *BUILTINS)
"""Opponents sampled per world (frozen snapshots of our own bundle are added by the trainer)."""


@dataclass(frozen=True)
class Deal:
    """One contract a learner signed: ``day`` signed, ``partner``, ``quantity``, ``delivery``
    day, ``unit_price``, ``selling`` (True when the learner sells)."""

    day: int
    partner: str
    quantity: int
    delivery: int
    unit_price: float
    selling: bool


class RolloutLitaAgentHRL(LitaAgentHRL):
    """LitaAgentHRL that also keeps every signed deal (:attr:`deals`) for the rewards and the
    critic's view of the world at the start of every day (:attr:`world_views`, ``day -> [W]``;
    :attr:`peers`: the ids of every learner of the world, set by :func:`run_rollout`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deals: list[Deal] = []
        self.peers: tuple[str, ...] = ()
        self.world_views: dict[int, Tensor] = {}

    def before_step(self) -> None:
        self.world_views[int(self.awi.current_step)] = world_view(self.awi._world, self.id, self.peers)
        super().before_step()

    def on_negotiation_success(self, contract: Contract, mechanism: Any) -> None:
        super().on_negotiation_success(contract, mechanism)
        agreement = contract.agreement
        selling = contract.annotation.get("seller") == self.id
        partner = contract.annotation["buyer"] if selling else contract.annotation["seller"]
        self.deals.append(
            Deal(
                day=int(self.awi.current_step),
                partner=str(partner),
                quantity=int(agreement["quantity"]),
                delivery=int(agreement["time"]),
                unit_price=float(agreement["unit_price"]),
                selling=bool(selling),
            )
        )


@dataclass(frozen=True)
class DayRecord:
    """A learner's world state at the END of one day (after the world's step), from the world's
    own statistics (keyed by the agent's world id) and its trading prices.

    Attributes:
        day: simulated day; balance: money; inventory_input, inventory_output: units;
        trading_price_in, trading_price_out: the market prices of the learner's input and output
        products; shortfall_quantity, shortfall_penalty: units not delivered and the penalty paid
        that day; storage_cost: storage and disposal costs charged that day (money); bankrupt:
        the world declared the agent bankrupt.
    """

    day: int
    balance: float
    inventory_input: float
    inventory_output: float
    trading_price_in: float
    trading_price_out: float
    shortfall_quantity: float
    shortfall_penalty: float
    bankrupt: bool
    storage_cost: float = 0.0


@dataclass(frozen=True)
class LearnerRecord:
    """Everything one learner produced in one world (see the module docs).

    ``initial_balance`` is the world's (the score's denominator); ``level`` is read from the
    built world (``awi.level``); ``n_steps`` is the world's length (``days`` covers every day
    the world ran); ``world_views``: the critic's world features per day (``[W]``);
    ``suppliers``, ``consumers``: the partners' world ids (SELLER / BUYER for the exogenous side).
    In a paired rollout, ``paired_balances`` (``[T]``, money), ``paired_initial_balance`` and
    ``paired_score`` are the same seat's day-end balances, initial balance and score with
    LitaAgentL1 playing it (empty, 0 and ``None`` otherwise).
    """

    agent_id: str
    transitions: TransitionLog
    days: list[DayRecord]
    deals: list[Deal]
    initial_balance: float
    n_lines: int
    level: int
    n_levels: int
    final_score: float
    fallback_reason: str | None
    n_steps: int = 0
    world_views: dict[int, Tensor] = field(default_factory=dict)
    suppliers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    paired_balances: tuple[float, ...] = ()
    paired_initial_balance: float = 0.0
    paired_score: float | None = None

    @property
    def reward_total(self) -> float:
        """What the learner's L2 (and L4) rewards of the world add up to: ``final_score - 1``,
        or ``final_score - paired_score`` in a paired rollout."""
        return self.final_score - (1.0 if self.paired_score is None else self.paired_score)


@dataclass(frozen=True)
class RolloutTask:
    """One rollout world (plain data; picklable).

    Attributes:
        bundle_path: the learners' bundle file; n_learners: LitaAgentHRL learners (1-2);
        opponents: import paths of the other factories; snapshots: bundle files of frozen own
        snapshots, each one more factory; n_steps, n_levels, seed, name: the world.
        agent_seeds: sampling seed per learner. learner_levels: production level of each
        learner (empty: learner ``k`` on level ``k``). snapshot_slot: where the snapshots stand
        among the opponents (the non-learner factories fill the levels in that order).
        paired: play the world again with LitaAgentL1 in the learners' seats (module docs);
        both plays then use ``hrl compare``'s deterministic world settings.
    """

    bundle_path: str
    opponents: tuple[str, ...]
    n_steps: int = 20
    n_levels: int = 2
    n_learners: int = 1
    snapshots: tuple[str, ...] = ()
    seed: int = 0
    name: str = "rollout"
    agent_seeds: tuple[int, ...] = ()
    mode: str = "sample"
    learner_levels: tuple[int, ...] = ()
    snapshot_slot: int = 0
    paired: bool = False

    @property
    def levels(self) -> tuple[int, ...]:
        """The production level of each learner."""
        return self.learner_levels or tuple(range(self.n_learners))


@dataclass(frozen=True)
class RolloutResult:
    """Outcome of one rollout world: per learner by world id, and every agent's score/type."""

    name: str
    seed: int
    learners: dict[str, LearnerRecord]
    scores: dict[str, float]
    agent_types: dict[str, str]
    duration_s: float
    n_exceptions: int
    opponents: tuple[str, ...] = field(default_factory=tuple)
    initial_balances: dict[str, float] = field(default_factory=dict)
    balances: dict[str, list[float]] = field(default_factory=dict)
    """Every factory's balance at the end of each day (the world's statistics)."""
    catalog_prices: tuple[float, ...] = ()
    """The world's catalog price of each product."""


def plan_rollouts(
    *,
    bundle_path: str,
    n_worlds: int,
    seed: int,
    update: int,
    pool: tuple[str, ...] = DEFAULT_POOL,
    snapshots: tuple[str, ...] = (),
    n_learners: int = 1,
    n_steps: tuple[int, int] = (15, 30),
    factories_per_level: tuple[int, int] = (4, 5),
    n_levels: tuple[int, int] = (2, 2),
    paired: bool = False,
) -> list[RolloutTask]:
    """The worlds of one update, reproducible from ``(seed, update)``: days, levels and factories
    per level drawn from the inclusive ranges, opponents sampled from ``pool`` (and from
    ``snapshots``, each own snapshot taking one opponent slot with probability 1/2), learners
    on the levels of :func:`hrl.train.placement.learner_levels` (world ``i`` of update ``u``
    counts as world ``u * n_worlds + i``, so the levels also rotate from update to update);
    ``paired``: each world is also played with LitaAgentL1 in the learners' seats
    (:attr:`RolloutTask.paired`)."""
    if not pool:
        raise ConfigError("pool: need at least one opponent")
    if not 1 <= n_learners <= 2:
        raise ConfigError(f"n_learners: 1 or 2 learners per world, got {n_learners}")
    if not 2 <= n_levels[0] <= n_levels[1]:
        raise ConfigError(f"n_levels: need 2 <= LOW <= HIGH, got {n_levels}")
    tasks = []
    for i in range(n_worlds):
        rng = np.random.default_rng(derive_seed(seed, "rollout", update, i))
        days = int(rng.integers(n_steps[0], n_steps[1] + 1))
        levels = int(rng.integers(n_levels[0], n_levels[1] + 1))
        per_level = int(rng.integers(factories_per_level[0], factories_per_level[1] + 1))
        n_others = per_level * levels - n_learners
        snaps: tuple[str, ...] = ()
        if snapshots and rng.random() < 0.5:
            snaps = (snapshots[int(rng.integers(len(snapshots)))],)
        opponents = tuple(pool[int(j)] for j in rng.integers(len(pool), size=n_others - len(snaps)))
        world_seed = derive_seed(seed, "world", update, i)
        tasks.append(
            RolloutTask(
                bundle_path=bundle_path,
                opponents=opponents,
                n_steps=days,
                n_levels=levels,
                n_learners=n_learners,
                snapshots=snaps,
                seed=world_seed,
                name=f"u{update:04d}-w{i:03d}",
                agent_seeds=tuple(derive_seed(world_seed, "agent", k) for k in range(n_learners)),
                learner_levels=learner_levels(update * n_worlds + i, n_learners, levels),
                snapshot_slot=int(rng.integers(len(opponents) + 1)),
                paired=paired,
            )
        )
    return tasks


def _seats(task: RolloutTask) -> tuple[list[Seat], tuple[int, ...]]:
    """The task's factories in level order and their levels (see :mod:`hrl.train.placement`)."""
    n = task.n_learners
    seeds = task.agent_seeds or tuple(range(n))
    learners = [
        (
            task.levels[k],
            Seat(
                LEARNER,
                {"controller_params": {"checkpoint": task.bundle_path, "mode": task.mode, "seed": seeds[k]}},
            ),
        )
        for k in range(n)
    ]
    others = [Seat(path) for path in task.opponents]
    snaps = [
        Seat(SNAPSHOT, {"controller_params": {"checkpoint": s, "mode": "deterministic"}})
        for s in task.snapshots
    ]
    others[task.snapshot_slot : task.snapshot_slot] = snaps
    total = n + len(others)
    if total % task.n_levels:
        raise ConfigError(f"{task.name}: {total} factories do not fill {task.n_levels} equal levels")
    return seat_agents(total // task.n_levels, task.n_levels, learners, others)


def _spec(task: RolloutTask, seats: list[Seat], processes: tuple[int, ...]) -> WorldSpec:
    """The world of ``task`` with ``seats`` (paired tasks: ``hrl compare``'s world settings)."""
    world_kwargs: dict[str, Any] = {}
    generate_kwargs: dict[str, Any] = {"agent_params": [seat.params for seat in seats]}
    if task.paired:
        world_kwargs = dict(EVALUATION_WORLD_KWARGS)
        generate_kwargs = EVALUATION_GENERATE_KWARGS | generate_kwargs
    return WorldSpec(
        agents=tuple(seat.agent for seat in seats),
        n_steps=task.n_steps,
        n_processes=task.n_levels,
        seed=task.seed,
        name=task.name,
        world_kwargs=world_kwargs,
        agent_processes=processes,
        generate_kwargs=generate_kwargs,
    )


def _paired_play(
    task: RolloutTask, seats: list[Seat], processes: tuple[int, ...], learner_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The world played with LitaAgentL1 in every learner seat: per learner id, that seat's
    :class:`LearnerRecord` ``paired_*`` fields (day-end balances, initial balance, score). The
    world's ids are type-blind, so each seat keeps its id; a seat holding anything but
    LitaAgentL1 on the learner's level is an error."""
    swapped = [Seat(PAIRED_BASELINE) if seat.agent == LEARNER else seat for seat in seats]
    spec = _spec(task, swapped, processes)
    world = build_world(spec)
    while world.step():
        pass
    summary = summarize_world(spec, world, 0.0)
    stats = world.stats
    out = {}
    for aid in learner_ids:
        if type(getattr(world.agents.get(aid), "_obj", None)) is not LitaAgentL1:
            raise ConfigError(f"{task.name}: paired play has no LitaAgentL1 in learner seat {aid}")
        out[aid] = {
            "paired_balances": tuple(float(b) for b in stats[f"balance_{aid}"]),
            "paired_initial_balance": float(world.initial_balances[aid]),
            "paired_score": float(summary.scores[aid]),
        }
    return out


def run_rollout(task: RolloutTask) -> RolloutResult:
    """Run one rollout world to its end (in a worker process or inline); a paired task then
    plays it again with LitaAgentL1 in the learners' seats (module docs)."""
    seats, processes = _seats(task)
    spec = _spec(task, seats, processes)
    world = build_world(spec)
    learners = {
        aid: adapter._obj
        for aid, adapter in world.agents.items()
        if isinstance(getattr(adapter, "_obj", None), RolloutLitaAgentHRL)
    }
    if len(learners) != task.n_learners:
        raise ConfigError(
            f"{task.name}: expected {task.n_learners} learners in the world, found {len(learners)}"
        )
    planned = dict(zip(task.agent_seeds or range(task.n_learners), task.levels, strict=True))
    for aid, agent in learners.items():
        agent.peers = tuple(learners)
        level = int(world.agents[aid].awi.level)
        if level != planned[agent._seed]:
            raise ConfigError(
                f"{task.name}: learner {aid} sits on level {level}, planned {planned[agent._seed]}"
            )
    prices: list[np.ndarray] = []
    start = time.perf_counter()
    while True:
        running = world.step()
        prices.append(np.asarray(world.trading_prices, dtype=np.float64).copy())
        if not running:
            break
    duration = time.perf_counter() - start
    summary = summarize_world(spec, world, duration)
    stats = world.stats
    initial = {aid: float(world.initial_balances[aid]) for aid in summary.scores}
    records = {
        aid: _learner_record(world, aid, agent, prices, initial[aid], summary.scores[aid])
        for aid, agent in learners.items()
    }
    if task.paired:
        paired = _paired_play(task, seats, processes, list(learners))
        records = {aid: dataclasses.replace(rec, **paired[aid]) for aid, rec in records.items()}
    return RolloutResult(
        name=task.name,
        seed=task.seed,
        learners=records,
        scores=summary.scores,
        agent_types=summary.agent_types,
        duration_s=duration,
        n_exceptions=summary.n_exceptions,
        opponents=task.opponents,
        initial_balances=initial,
        balances={aid: [float(b) for b in stats[f"balance_{aid}"]] for aid in summary.scores},
        catalog_prices=tuple(float(p) for p in world.catalog_prices),
    )


def _learner_record(
    world: Any, aid: str, agent: RolloutLitaAgentHRL, prices: list[np.ndarray], b0: float, score: float
) -> LearnerRecord:
    """One learner's record from the finished world's statistics (keyed by its world id)."""
    awi = agent.awi
    stats = world.stats

    def stat(name: str, t: int) -> float:
        return float(stats[f"{name}_{aid}"][t])

    days = [
        DayRecord(
            day=t,
            balance=stat("balance", t),
            inventory_input=stat("inventory_input", t),
            inventory_output=stat("inventory_output", t),
            trading_price_in=float(prices[min(t, len(prices) - 1)][awi.my_input_product]),
            trading_price_out=float(prices[min(t, len(prices) - 1)][awi.my_output_product]),
            shortfall_quantity=stat("shortfall_quantity", t),
            shortfall_penalty=stat("shortfall_penalty", t),
            bankrupt=bool(stats[f"bankrupt_{aid}"][t]),
            storage_cost=stat("storage_cost", t) + stat("disposal_cost", t),
        )
        for t in range(len(stats[f"balance_{aid}"]))
    ]
    return LearnerRecord(
        agent_id=aid,
        transitions=agent.transitions,
        days=days,
        deals=list(agent.deals),
        initial_balance=b0,
        n_lines=int(awi.n_lines),
        level=int(awi.level),
        n_levels=int(awi.n_processes),
        final_score=score,
        fallback_reason=agent.fallback_reason,
        n_steps=int(world.n_steps),
        world_views=dict(agent.world_views),
        suppliers=tuple(str(a) for a in awi.my_suppliers),
        consumers=tuple(str(a) for a in awi.my_consumers),
    )
