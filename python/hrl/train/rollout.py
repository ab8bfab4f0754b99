"""Online rollouts: real ``SCML2024StdWorld`` worlds in which LitaAgentHRL learners act in
``sample`` mode with the current bundle.

A rollout task (:class:`RolloutTask`) is plain data: the world (learners, opponents, days,
seed) and the *path* of the current bundle (written once per update by the learner; workers load
it from disk, so weights are never pickled per world). :func:`run_rollout` runs one world and
returns a :class:`RolloutResult`: per learner (keyed by the agent's **world id**, the id
``world.stats`` and ``world.scores()`` use) its :class:`~hrl.agent.transitions.TransitionLog`,
the per-day world state needed for rewards (:class:`DayRecord`), the deals it signed and its
final score.

Learners are :class:`RolloutLitaAgentHRL` (LitaAgentHRL that also records its signed deals);
frozen snapshots of our own bundle play as ``hrl.agent.hrl.LitaAgentHRL`` in deterministic mode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from negmas import Contract

from hrl.agent.hrl import LitaAgentHRL
from hrl.agent.transitions import TransitionLog
from hrl.errors import ConfigError
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN
from hrl.seeding import derive_seed
from hrl.worlds import WorldSpec, build_world, summarize_world

__all__ = [
    "DEFAULT_POOL",
    "LEARNER",
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
    """LitaAgentHRL that also keeps every signed deal (:attr:`deals`) for the rewards."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deals: list[Deal] = []

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
        that day; bankrupt: the world declared the agent bankrupt.
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


@dataclass(frozen=True)
class LearnerRecord:
    """Everything one learner produced in one world (see the module docs)."""

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


@dataclass(frozen=True)
class RolloutTask:
    """One rollout world (plain data; picklable).

    Attributes:
        bundle_path: the learners' bundle file; n_learners: LitaAgentHRL learners (1-2);
        opponents: import paths of the other factories; snapshots: bundle files of frozen own
        snapshots, each one more factory; n_steps, n_levels, seed, name: the world.
        agent_seeds: sampling seed per learner.
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
    n_levels: int = 2,
) -> list[RolloutTask]:
    """The worlds of one update, reproducible from ``(seed, update)``: days and factories drawn
    from the ranges, opponents sampled from ``pool`` (and from ``snapshots``, each own snapshot
    taking one opponent slot with probability 1/2)."""
    if not pool:
        raise ConfigError("pool: need at least one opponent")
    if not 1 <= n_learners <= 2:
        raise ConfigError(f"n_learners: 1 or 2 learners per world, got {n_learners}")
    tasks = []
    for i in range(n_worlds):
        rng = np.random.default_rng(derive_seed(seed, "rollout", update, i))
        days = int(rng.integers(n_steps[0], n_steps[1] + 1))
        per_level = int(rng.integers(factories_per_level[0], factories_per_level[1] + 1))
        n_others = per_level * n_levels - n_learners
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
                n_levels=n_levels,
                n_learners=n_learners,
                snapshots=snaps,
                seed=world_seed,
                name=f"u{update:04d}-w{i:03d}",
                agent_seeds=tuple(derive_seed(world_seed, "agent", k) for k in range(n_learners)),
            )
        )
    return tasks


def run_rollout(task: RolloutTask) -> RolloutResult:
    """Run one rollout world to its end (in a worker process or inline)."""
    n = task.n_learners
    agents = (LEARNER,) * n + tuple(SNAPSHOT for _ in task.snapshots) + task.opponents
    seeds = task.agent_seeds or tuple(range(n))
    params: list[dict[str, Any]] = [
        {"controller_params": {"checkpoint": task.bundle_path, "mode": task.mode, "seed": seeds[k]}}
        for k in range(n)
    ]
    params += [{"controller_params": {"checkpoint": s, "mode": "deterministic"}} for s in task.snapshots]
    params += [{} for _ in task.opponents]
    # learners spread over the levels (first learner on level 0, second on level 1, ...)
    processes = tuple(i % task.n_levels for i in range(len(agents)))
    spec = WorldSpec(
        agents=agents,
        n_steps=task.n_steps,
        n_processes=task.n_levels,
        seed=task.seed,
        name=task.name,
        agent_processes=processes,
        generate_kwargs={"agent_params": params},
    )
    world = build_world(spec)
    learners = {
        aid: adapter._obj
        for aid, adapter in world.agents.items()
        if isinstance(getattr(adapter, "_obj", None), RolloutLitaAgentHRL)
    }
    if len(learners) != n:
        raise ConfigError(f"{task.name}: expected {n} learners in the world, found {len(learners)}")
    prices: list[np.ndarray] = []
    start = time.perf_counter()
    while True:
        running = world.step()
        prices.append(np.asarray(world.trading_prices, dtype=np.float64).copy())
        if not running:
            break
    duration = time.perf_counter() - start
    summary = summarize_world(spec, world, duration)
    records = {}
    for aid, agent in learners.items():
        awi = agent.awi
        stats = world.stats
        n_days = len(stats[f"balance_{aid}"])
        days = [
            DayRecord(
                day=t,
                balance=float(stats[f"balance_{aid}"][t]),
                inventory_input=float(stats[f"inventory_input_{aid}"][t]),
                inventory_output=float(stats[f"inventory_output_{aid}"][t]),
                trading_price_in=float(prices[min(t, len(prices) - 1)][awi.my_input_product]),
                trading_price_out=float(prices[min(t, len(prices) - 1)][awi.my_output_product]),
                shortfall_quantity=float(stats[f"shortfall_quantity_{aid}"][t]),
                shortfall_penalty=float(stats[f"shortfall_penalty_{aid}"][t]),
                bankrupt=bool(stats[f"bankrupt_{aid}"][t]),
            )
            for t in range(n_days)
        ]
        records[aid] = LearnerRecord(
            agent_id=aid,
            transitions=agent.transitions,
            days=days,
            deals=list(agent.deals),
            initial_balance=float(agent._initial_balance),
            n_lines=int(awi.n_lines),
            level=int(awi.level),
            n_levels=int(awi.n_processes),
            final_score=summary.scores[aid],
            fallback_reason=agent.fallback_reason,
        )
    return RolloutResult(
        name=task.name,
        seed=task.seed,
        learners=records,
        scores=summary.scores,
        agent_types=summary.agent_types,
        duration_s=duration,
        n_exceptions=summary.n_exceptions,
        opponents=task.opponents,
    )
