"""Build and run one real SCML 2025 Standard world (``scml.std.SCML2024StdWorld``).

The single place where a world is made from a typed spec; collection, evaluation and online
rollouts all go through it so their worlds are generated the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scml.std import SCML2024StdWorld
from tqdm.auto import tqdm

from hrl.errors import ConfigError
from hrl.opponents import agent_name, load_agent_class, split_agent_spec
from hrl.seeding import seed_everything, seeded_uuid4
from hrl.timing import AgentClock, instrument_agents

__all__ = [
    "FLOW_NAMES",
    "LEVEL_LABELS",
    "WorldResult",
    "WorldSpec",
    "build_world",
    "level_label",
    "money_flows",
    "run_world",
    "summarize_world",
]

SYSTEM_AGENTS = frozenset({"SELLER", "BUYER"})
"""Ids of scml's system agents, which hold exogenous contracts and have no score."""

LEVEL_LABELS = ("first", "middle", "last")
"""Names of the positions in the chain: level 0 buys only from exogenous suppliers, the last
level sells only to exogenous buyers, every level in between trades on both sides."""


def level_label(level: int, n_levels: int) -> str:
    """``"first"``, ``"middle"`` or ``"last"`` for production level ``level`` of ``n_levels``."""
    if not 0 <= level < n_levels:
        raise ConfigError(f"level: must be in 0..{n_levels - 1}, got {level}")
    if level == 0:
        return "first"
    return "last" if level == n_levels - 1 else "middle"


@dataclass(frozen=True)
class WorldSpec:
    """What a world is made of. Same spec and seed -> same world.

    Attributes:
        agents: import paths of the competitors, one factory each, in level order (see
            ``agent_processes``); a path may carry its constructor's keyword arguments as JSON
            (an agent spec, :func:`hrl.opponents.split_agent_spec`).
        n_steps: simulated days.
        n_processes: production levels (>= 2); 2-4 in official Standard worlds.
        seed: seeds world generation and every RNG (see :func:`hrl.seeding.seed_everything`).
        name: the world's name (also its log folder name).
        world_kwargs: extra keyword arguments for ``SCML2024StdWorld`` (e.g. logging options;
            ``save_negotiations=False`` is honoured although scml itself forces it on).
        agent_processes: production level of each agent (same length as ``agents``, every level
            ``0..n_processes-1`` used, NON-DECREASING). scml's ``generate`` only counts the agents
            per level and places the agents in list order (the first ``count(0)`` on level 0, ...),
            so a list that is not sorted by level would not mean what it says and is rejected;
            :func:`build_world` checks the placement scml made. ``None``: contiguous blocks of
            near-equal size in list order (``sorted(i % n_processes for i in range(n))``).
        generate_kwargs: extra keyword arguments for ``SCML2024StdWorld.generate`` (e.g. the
            official tournament's negotiation limits, see ``hrl.data.collect``).
    """

    agents: tuple[str, ...]
    n_steps: int = 20
    n_processes: int = 2
    seed: int = 0
    name: str = "world"
    world_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_processes: tuple[int, ...] | None = None
    generate_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n_processes < 2:
            raise ConfigError(f"n_processes: need at least 2 production levels, got {self.n_processes}")
        if len(self.agents) < self.n_processes:
            raise ConfigError(
                f"agents: need at least one per level ({self.n_processes}), got {len(self.agents)}"
            )
        if self.n_steps < 1:
            raise ConfigError(f"n_steps: must be >= 1, got {self.n_steps}")
        if self.agent_processes is not None and (
            len(self.agent_processes) != len(self.agents)
            or set(self.agent_processes) != set(range(self.n_processes))
        ):
            raise ConfigError(
                f"agent_processes: need one level per agent covering 0..{self.n_processes - 1}, "
                f"got {self.agent_processes}"
            )
        if self.agent_processes is not None and list(self.agent_processes) != sorted(self.agent_processes):
            raise ConfigError(
                f"agent_processes: must be non-decreasing (scml places agents in list order), "
                f"got {self.agent_processes}"
            )

    @property
    def processes(self) -> tuple[int, ...]:
        """The production level of each agent (``agent_processes`` or the default blocks)."""
        if self.agent_processes is not None:
            return self.agent_processes
        return tuple(sorted(i % self.n_processes for i in range(len(self.agents))))


@dataclass(frozen=True)
class WorldResult:
    """Outcome of one world.

    Attributes:
        name, seed, n_steps: copied from the spec.
        scores: final score per agent id (balance relative to the initial balance; 1.0 = broke even).
        agent_types: import path of each agent id's class.
        duration_s: wall-clock seconds spent running the world.
        n_contracts_signed: contracts signed over the whole world (negotiated and exogenous).
        n_exceptions: exceptions raised by agents, negotiators, mechanisms, contract execution
            or the simulation that the world recorded instead of raising.
        shortfall_quantity: units each agent failed to deliver, summed over days.
        shortfall_penalty: shortfall penalties each agent paid, summed over days (money).
        agent_seconds: seconds each agent spent in its own code (see :mod:`hrl.timing`); empty
            when the world was not built by :func:`build_world`.
        decision_ms: per agent, ``[p50, p95]`` latency of its decision calls in milliseconds.
        levels: production level (0-based) each agent played on, read from its AWI.
        agent_days: factory-days the world ran (bankrupt days left out).
        model_mismatch_days: those on which L1's stock model (:mod:`hrl.safety.world_model`)
            predicts another production, shortfall or end-of-day stock than the world's stats.
        flows: per agent id, where its score came from (:func:`money_flows`).
    """

    name: str
    seed: int
    n_steps: int
    scores: dict[str, float]
    agent_types: dict[str, str]
    duration_s: float
    n_contracts_signed: int
    n_exceptions: int
    shortfall_quantity: dict[str, float] = field(default_factory=dict)
    shortfall_penalty: dict[str, float] = field(default_factory=dict)
    agent_seconds: dict[str, float] = field(default_factory=dict)
    decision_ms: dict[str, list[float]] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    agent_days: int = 0
    model_mismatch_days: int = 0
    flows: dict[str, dict[str, float]] = field(default_factory=dict)

    def scores_by_type(self) -> dict[str, list[float]]:
        """Scores grouped by agent class name (several instances of one class are kept apart)."""
        grouped: dict[str, list[float]] = {}
        for agent_id, score in self.scores.items():
            grouped.setdefault(agent_name(self.agent_types[agent_id]), []).append(score)
        return grouped


def build_world(spec: WorldSpec, config: dict[str, Any] | None = None) -> SCML2024StdWorld:
    """Seed every RNG, generate a Standard world configuration for ``spec`` and create the world.

    Every agent's calls are timed (:func:`hrl.timing.instrument_agents`); the clocks are kept on
    the world as ``world.hrl_clocks`` and reported by :func:`summarize_world`.

    Args:
        spec: the world.
        config: a configuration made elsewhere by ``SCML2024StdWorld.generate`` (e.g. one that
            ``scml.utils.anac2024_std`` played) to create instead of generating one from ``spec``
            (``spec.generate_kwargs`` are then unused; ``spec.name`` and ``spec.world_kwargs``
            override its entries).
    """
    parsed = [split_agent_spec(agent) for agent in spec.agents]
    classes = [load_agent_class(path) for path, _ in parsed]
    params = [kwargs for _, kwargs in parsed]
    seed_everything(spec.seed)
    processes = spec.processes
    if config is None:
        config = SCML2024StdWorld.generate(
            agent_types=classes,
            # the adapter scml wraps each agent in passes "controller_params" on to the agent;
            # only when some agent has keyword arguments, so worlds without them stay as they were
            **(
                {"agent_params": [{"controller_params": p} if p else {} for p in params]}
                if any(params)
                else {}
            ),
            agent_processes=list(processes),
            n_steps=spec.n_steps,
            n_processes=spec.n_processes,
            **spec.generate_kwargs,
        )
    placed = tuple(int(profile.input_product) for profile in config["profiles"])
    if placed != processes:
        raise ConfigError(f"{spec.name}: scml placed the agents on levels {placed}, expected {processes}")
    kwargs = {"no_logs": True, **spec.world_kwargs}
    world = SCML2024StdWorld(**(config | {"name": spec.name} | kwargs))
    if kwargs.get("save_negotiations") is False:
        # scml 0.8.4 forces save_negotiations=True (oneshot/world.py, SCMLBaseWorld.__init__);
        # the records (one pandas-flattened row per negotiation) only feed the logs.
        world.save_negotiations = False
    world.hrl_clocks = instrument_agents(world)
    return world


def run_world(
    spec: WorldSpec,
    *,
    progress: bool = False,
    on_step: Callable[[int], None] | None = None,
    config: dict[str, Any] | None = None,
) -> WorldResult:
    """Build and run the world of ``spec`` to its end and collect the scores.

    Contract ids are drawn from an RNG seeded with ``spec.seed`` (:func:`hrl.seeding.seeded_uuid4`),
    so playing the same spec again (in a process with the same ``PYTHONHASHSEED``) gives the
    same world, contract by contract.

    Args:
        spec: the world.
        progress: show a progress bar over simulated days.
        on_step: called with the finished day's index after every simulated day.
        config: a ready configuration to play (see :func:`build_world`).
    """
    with seeded_uuid4(spec.seed):  # contract ids, and so the order of sets of contracts
        world = build_world(spec, config)
        start = time.perf_counter()
        with tqdm(total=spec.n_steps, desc=spec.name, unit="day", disable=not progress, leave=False) as bar:
            while world.step():
                bar.update(1)
                if on_step is not None:
                    on_step(world.current_step - 1)
        duration = time.perf_counter() - start
    return summarize_world(spec, world, duration)


def summarize_world(spec: WorldSpec, world: SCML2024StdWorld, duration_s: float) -> WorldResult:
    """The :class:`WorldResult` of a world built from ``spec`` and run to its end."""
    duration = duration_s
    agent_types = {
        agent_id: agent.type_name.rpartition(":")[2]
        for agent_id, agent in world.agents.items()
        if agent_id not in SYSTEM_AGENTS
    }
    scores = {agent_id: float(score) for agent_id, score in world.scores().items() if agent_id in agent_types}
    exception_logs = (
        world.agent_exceptions,
        world.negotiator_exceptions,
        world.mechanism_exceptions,
        world.contract_exceptions,
        world.simulation_exceptions,
    )
    clocks: dict[str, AgentClock] = getattr(world, "hrl_clocks", {})
    from hrl.safety.world_model import agent_days, model_mismatches  # hrl.safety imports hrl.worlds

    days = agent_days(world)
    return WorldResult(
        name=spec.name,
        seed=spec.seed,
        n_steps=spec.n_steps,
        scores=scores,
        agent_types=agent_types,
        duration_s=duration,
        n_contracts_signed=int(sum(world.stats["n_contracts_signed"])),
        n_exceptions=sum(len(entries) for log in exception_logs for entries in log.values()),
        shortfall_quantity={a: _stat_total(world, "shortfall_quantity", a) for a in agent_types},
        shortfall_penalty={a: _stat_total(world, "shortfall_penalty", a) for a in agent_types},
        agent_seconds={a: clock.total_s for a, clock in clocks.items() if a in agent_types},
        decision_ms={
            a: [clock.percentile_ms(50), clock.percentile_ms(95)]
            for a, clock in clocks.items()
            if a in agent_types and clock.decision_s
        },
        levels={a: int(world.agents[a].awi.level) for a in agent_types},
        agent_days=len(days),
        model_mismatch_days=len(model_mismatches(days)),
        flows={a: money_flows(world, a) for a in agent_types},
    )


FLOW_NAMES = ("sales", "purchases", "production", "storage", "shortfall", "disposal")
"""The money terms of :func:`money_flows`: ``score = 1 + (sales - purchases - production - storage
- shortfall - disposal) / initial_balance`` for an agent that never went bankrupt."""


def money_flows(world: SCML2024StdWorld, agent_id: str) -> dict[str, float]:
    """Where ``agent_id``'s score came from, summed over the days of a finished world.

    Money (the world's currency): ``sales`` paid (each day scml pays the highest-priced sales
    first, for as many units as the agent produced), ``purchases`` (negotiated and exogenous
    supplies, all paid), ``production`` (units produced x unit cost), ``storage``, ``shortfall``
    and ``disposal`` (the world's per-day statistics). Units: ``sold`` and ``bought`` (signed
    contracts, exogenous included), ``stock`` (input inventory at the end). And the
    ``initial_balance``. For an agent that never went bankrupt the terms add up to its score
    (:data:`FLOW_NAMES`; tested against ``world.scores()``). Contracts that were never signed or
    were nullified are left out, as scml's utility function leaves them out.
    """
    profile = world.agent_profiles[agent_id]
    stats = world.stats
    sales_by_day: dict[int, list[tuple[float, int]]] = {}
    purchases = 0.0
    sold = bought = 0
    for contract in world.agent_contracts[agent_id]:
        if contract.signed_at < 0 or contract.nullified_at >= 0:
            continue
        q, price, day = (contract.agreement[k] for k in ("quantity", "unit_price", "time"))
        if contract.annotation["seller"] == agent_id:
            sales_by_day.setdefault(int(day), []).append((float(price), int(q)))
            sold += int(q)
        else:
            purchases += float(price) * int(q)
            bought += int(q)
    sales = production = 0.0
    for day, productivity in enumerate(stats[f"productivity_{agent_id}"]):
        produced = round(productivity * profile.n_lines)
        production += produced * profile.cost
        for price, q in sorted(sales_by_day.get(day, ()), reverse=True):
            paid = min(q, produced)
            sales += paid * price
            produced -= paid
    inventory = stats[f"inventory_input_{agent_id}"]
    return {
        "sales": sales,
        "purchases": purchases,
        "production": production,
        "storage": _stat_total(world, "storage_cost", agent_id),
        "shortfall": _stat_total(world, "shortfall_penalty", agent_id),
        "disposal": _stat_total(world, "disposal_cost", agent_id),
        "sold": float(sold),
        "bought": float(bought),
        "stock": float(inventory[-1]) if inventory else 0.0,
        "initial_balance": float(world.initial_balances[agent_id]),
    }


def _stat_total(world: SCML2024StdWorld, stat: str, agent_id: str) -> float:
    """Sum over days of the world's per-agent statistic ``<stat>_<agent_id>`` (0 if absent)."""
    return float(sum(world.stats.get(f"{stat}_{agent_id}", ())))
