"""``hrl compare``: seat-swap comparisons that can tell agents apart.

Per-world scores swing by +-0.3 while the agents that matter differ by 0.05-0.1, so two agents
that sit in different factories of different worlds cannot be separated with a few dozen
worlds. A seat swap removes the world's luck from the comparison:

1. **One world, generated once.** World ``i`` draws its levels (2-4), factories per level (4-8),
   days (50-200) and the agents of every factory from the opponent field (PenguinAgent, the 2025
   finalists, scml's built-ins; a shuffled deck, as ``hrl collect`` draws them) from its own seed
   (:func:`hrl.data.collect.plan_worlds`); all ranges and the field are overridable.
2. **One seat.** One factory is the seat; its level rotates with the world index (world ``i``
   seats on level ``i mod n_levels``; the factory within the level is drawn), so first, middle
   and last levels all get their share (``positions`` narrows the rotation to some positions,
   e.g. ``middle,last`` to study the buy side). scml places agents in list order (the first ``n_0`` on
   level 0, ...), so the seat's level is set by its index; every play checks the level the world
   actually gave the seat (``awi.level``) against the plan.
3. **One play per candidate.** The world is played once per candidate with that candidate in
   the seat and everything else the same: the same seed (every RNG seeded before scml generates
   the configuration, so profiles and exogenous contracts are identical), the same
   ``PYTHONHASHSEED`` (plays run in worker processes started with ``PYTHONHASHSEED=0``), agent
   names that do not reveal types (so the seat's id, and every id the neighbours see, is the
   same in every play), and no wall-clock dependence: calls to agents are synchronous
   (``sync_calls=True``, no per-call threads or timeouts) and the world and negotiation time
   limits are off (negmas' relative time then counts rounds only). The official round limit (20)
   and the other official parameters stay. Replaying a world with the same agents gives
   identical scores in every factory (tested). Worlds keep no logs and no per-negotiation detail
   tables (:data:`EVALUATION_WORLD_KWARGS`).

The score of a candidate in a world is ``world.scores()[seat]`` (final balance / initial
balance); the statistics of the per-world differences are in :mod:`hrl.evaluate.paired`.

Output (``out_dir``)::

    plays.json        manifest: the world fields, and one record per (world, candidate) play
    comparison.json   config, per-world records, per-candidate means, every pair's statistics,
                      the stopping decision
    comparison.md     the report, with differences.png (see hrl.evaluate.report)
    logs/<world>/<label>/   with ``log_plays``: that play's world logs (``hrl audit OUT/logs``)

Resumable: the same ``out_dir`` skips finished plays; failed ones are tried again. Worlds do not
depend on the candidates, so candidates can be added to a finished comparison.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from hrl.data.collect import (
    OFFICIAL_GENERATE_KWARGS,
    WORKER_ENV,
    CollectConfig,
    WorldPlan,
    check_world_ranges,
    checkpoint_env,
    plan_worlds,
    run_logged_world,
)
from hrl.distributed import make_executor
from hrl.distributed.base import BACKENDS, Executor, check_pool_options
from hrl.errors import ConfigError, HrlError
from hrl.evaluate.paired import (
    PairedComparison,
    look_confidence,
    paired_comparison,
    planned_looks,
    t_interval,
)
from hrl.evaluate.stats import bootstrap_ci
from hrl.io import atomic_write_json
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN, agent_name, load_agent_class
from hrl.seeding import derive_seed
from hrl.worlds import FLOW_NAMES, LEVEL_LABELS, WorldSpec, level_label, run_world

__all__ = [
    "COMPARE_FIELD",
    "COMPARISON_FILE",
    "EVALUATION_GENERATE_KWARGS",
    "EVALUATION_WORLD_KWARGS",
    "PLAYS_FILE",
    "Candidate",
    "CandidateSummary",
    "CompareConfig",
    "ComparisonResult",
    "Play",
    "SeatPlan",
    "SeatWorld",
    "Stopping",
    "flows_by_position",
    "parse_candidate",
    "plan_comparison",
    "play_seat",
    "run_comparison",
    "seat_levels",
]

COMPARISON_FILE = "comparison.json"
PLAYS_FILE = "plays.json"
LOGS_DIR = "logs"
PLAYS_VERSION = 1

COMPARE_FIELD = (PENGUIN, *FINALISTS_2025, *BUILTINS)
"""Default opponents filling the factories around the seat: PenguinAgent, the four 2025
finalists and scml's three built-ins."""

EVALUATION_GENERATE_KWARGS: dict[str, Any] = OFFICIAL_GENERATE_KWARGS | {
    "time_limit": math.inf,
    "neg_time_limit": math.inf,
    "neg_hidden_time_limit": math.inf,
    "neg_step_time_limit": math.inf,
}
"""The official world parameters with every wall-clock limit off (rounds still end at 20)."""

EVALUATION_WORLD_KWARGS: dict[str, Any] = {
    "sync_calls": True,
    "agent_name_reveals_type": False,
    "saved_details_level": 0,
    "save_negotiations": False,
}
"""Synchronous calls into agents (no timeout threads), type-blind ids (the same ids in every play),
and none of the records that only feed logs: with the default ``saved_details_level=4`` negmas
rewrites its growing negotiation and offer tables to disk after every day even with
``no_logs=True``, and ``save_negotiations`` flattens every finished negotiation into a record
with pandas (together about two thirds of the CPU time of a 9-factory world without
XenoSotaAgent; scores, contracts and statistics are the same). Worlds keep no logs
(:func:`hrl.worlds.build_world`'s default)."""

LOG_SUPPRESSING_KWARGS = ("saved_details_level", "save_negotiations")
"""Entries of :data:`EVALUATION_WORLD_KWARGS` left out of plays that keep their logs."""

PLAYS_PER_WORKER = 32
"""A worker process is replaced after this many plays (bounds leaks; a fresh worker costs seconds
of imports, a small world's play well under a second)."""

_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")

StopReason = Literal["fixed", "separated", "max_worlds", "max_minutes"]


@dataclass(frozen=True)
class Candidate:
    """An agent under comparison: a label (how it is reported) and an import path."""

    label: str
    path: str


def parse_candidate(text: str) -> Candidate:
    """``"label=package.module.Class"`` or ``"package.module.Class"`` (label: the class name).

    The same class can be compared with itself under two labels (``A=x.Y``, ``B=x.Y``).

    Raises:
        ConfigError: an empty part, or a label with characters other than letters, digits and
            ``_.+-``.
    """
    label, sep, path = (part.strip() for part in text.partition("="))
    if not sep:
        label, path = agent_name(label), label
    if not label or not path or not _LABEL.match(label):
        raise ConfigError(f"agents: expected 'LABEL=import.path' or 'import.path', got {text!r}")
    return Candidate(label, path)


@dataclass(frozen=True)
class CompareConfig:
    """A seat-swap comparison. Only the world fields (``opponents``, ``n_steps``, ``n_levels``,
    ``agents_per_level``, ``seed``) must stay the same when a comparison is resumed.

    Attributes:
        agents: the candidates, ``"LABEL=import.path"`` or ``"import.path"`` (2 or more, distinct
            labels; see :func:`parse_candidate`).
        n_worlds: worlds to play; with ``until_separated``, the size of each batch.
        opponents: import paths of the agents filling the other factories (drawn from a
            shuffled deck per world; default :data:`COMPARE_FIELD`).
        n_steps: inclusive range of simulated days, drawn per world.
        n_levels: inclusive range of production levels, drawn per world.
        agents_per_level: inclusive range of factories per level, drawn per world and level.
        seed: base seed; world ``i`` is world ``i`` of ``hrl collect`` with the same seed and
            ranges (its seat drawn from ``derive_seed(world seed, "seat")``).
        positions: the positions (``first``, ``middle``, ``last``) seats may take; world ``i``
            seats on the ``i mod k``-th of its ``k`` levels with such a position. Every level
            count in ``n_levels`` must have one (``middle`` alone needs 3 or more levels).
        confidence: coverage of every interval (0.95).
        n_resamples: bootstrap resamples per interval.
        half_width: target half-width (score units) for the "worlds needed" counts.
        until_separated: add batches of ``n_worlds`` worlds until every pair's interval excludes
            0 or a budget runs out (see :mod:`hrl.evaluate.paired` for the interval that keeps
            its coverage under these repeated looks).
        max_worlds: with ``until_separated`` (required there): the most worlds; fixes the
            planned looks.
        max_minutes: with ``until_separated``: wall-clock budget of this run in minutes, checked
            whenever a play finishes (unfinished plays are left for a resume).
        log_plays: run option: labels of the candidates whose plays keep their world logs, in
            ``<out_dir>/logs/<world>/<label>/`` (for ``hrl audit`` and the parser; the plays
            are the same plays, only slower).
        n_workers: run option: plays at the same time.
        world_timeout_s: run option: a play running longer is killed and recorded as ``timeout``.
        backend: run option: ``"local"`` (process pool) or ``"ray"`` (see :mod:`hrl.distributed`).
        ray_address: run option, Ray only: ``None`` (a private instance), ``"auto"`` or
            ``"HOST:PORT"``.
    """

    agents: tuple[str, ...]
    n_worlds: int = 30
    opponents: tuple[str, ...] = COMPARE_FIELD
    n_steps: tuple[int, int] = (50, 200)
    n_levels: tuple[int, int] = (2, 4)
    agents_per_level: tuple[int, int] = (4, 8)
    seed: int = 0
    positions: tuple[str, ...] = LEVEL_LABELS
    confidence: float = 0.95
    n_resamples: int = 10_000
    half_width: float = 0.03
    until_separated: bool = False
    max_worlds: int | None = None
    max_minutes: float | None = None
    log_plays: tuple[str, ...] = ()
    n_workers: int = 1
    world_timeout_s: float | None = 3600.0
    backend: str = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        candidates = self.candidates
        if len(candidates) < 2:
            raise ConfigError(f"agents: need at least 2 candidates to compare, got {len(candidates)}")
        labels = [c.label for c in candidates]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"agents: labels must be distinct (use LABEL=import.path), got {labels}")
        unknown_logs = sorted(set(self.log_plays) - set(labels))
        if unknown_logs:
            raise ConfigError(f"log_plays: {unknown_logs} are not candidate labels {labels}")
        if not self.opponents:
            raise ConfigError("opponents: need at least one agent to fill the other factories")
        for name, paths in (("agents", [c.path for c in candidates]), ("opponents", self.opponents)):
            for path in paths:
                try:
                    load_agent_class(path)
                except ConfigError as error:
                    raise ConfigError(f"{name}: {error}") from error
        if self.n_worlds < 1:
            raise ConfigError(f"n_worlds: must be >= 1, got {self.n_worlds}")
        check_world_ranges(self.n_steps, self.n_levels, self.agents_per_level)
        unknown = sorted(set(self.positions) - set(LEVEL_LABELS))
        if not self.positions or unknown:
            raise ConfigError(f"positions: some of {', '.join(LEVEL_LABELS)}, got {list(self.positions)}")
        for n_levels in range(self.n_levels[0], self.n_levels[1] + 1):
            if not seat_levels(n_levels, self.positions):
                wanted = "/".join(self.positions)
                raise ConfigError(f"positions: a world of {n_levels} levels has no {wanted} level")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence: must be in (0, 1), got {self.confidence}")
        if self.n_resamples < 1:
            raise ConfigError(f"n_resamples: must be >= 1, got {self.n_resamples}")
        if not self.half_width > 0:
            raise ConfigError(f"half_width: must be > 0, got {self.half_width}")
        if self.until_separated:
            if self.max_worlds is None or self.max_worlds < self.n_worlds:
                raise ConfigError(
                    f"max_worlds: until_separated needs max_worlds >= n_worlds ({self.n_worlds}), "
                    f"got {self.max_worlds}"
                )
            if self.max_minutes is not None and not self.max_minutes > 0:
                raise ConfigError(f"max_minutes: must be > 0, got {self.max_minutes}")
        elif self.max_worlds is not None or self.max_minutes is not None:
            raise ConfigError("max_worlds, max_minutes: only with until_separated")
        check_pool_options(self.n_workers, self.world_timeout_s, None)
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend: one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.ray_address is not None and self.backend != "ray":
            raise ConfigError("ray_address: only with backend='ray'")

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """The parsed candidates, in the order given."""
        return tuple(parse_candidate(text) for text in self.agents)

    def world_fields(self) -> dict[str, Any]:
        """The fields that decide the worlds (compared on resume), JSON-ready."""
        fields = ("opponents", "n_steps", "n_levels", "agents_per_level", "seed")
        result = {name: _jsonable(getattr(self, name)) for name in fields} | {"version": PLAYS_VERSION}
        if set(self.positions) != set(LEVEL_LABELS):  # kept out of the default so old runs resume
            result["positions"] = sorted(self.positions)
        return result


def seat_levels(n_levels: int, positions: tuple[str, ...]) -> list[int]:
    """The levels of an ``n_levels``-level world whose position is in ``positions``, in order."""
    return [level for level in range(n_levels) if level_label(level, n_levels) in positions]


@dataclass(frozen=True)
class SeatPlan:
    """One world of a comparison: everything but the seat's agent.

    Attributes:
        world: the generated world (seed, days, levels, every factory's agent in factory order).
        seat: index of the seat in ``world.agents``; the agent drawn for it there is replaced.
    """

    world: WorldPlan
    seat: int

    @property
    def name(self) -> str:
        """The world's name (``w00000``, ...)."""
        return self.world.name

    @property
    def seat_level(self) -> int:
        """The seat's production level (0-based)."""
        return self.world.agent_processes[self.seat]

    @property
    def level_label(self) -> str:
        """The seat's position: ``first``, ``middle`` or ``last``."""
        return level_label(self.seat_level, self.world.n_levels)

    @property
    def agents_per_level(self) -> tuple[int, ...]:
        """Factories on each level."""
        return tuple(self.world.agent_processes.count(level) for level in range(self.world.n_levels))

    def spec(self, path: str) -> WorldSpec:
        """The world with ``path`` in the seat (the deterministic evaluation settings)."""
        agents = list(self.world.agents)
        agents[self.seat] = path
        return WorldSpec(
            agents=tuple(agents),
            n_steps=self.world.n_steps,
            n_processes=self.world.n_levels,
            seed=self.world.seed,
            name=self.world.name,
            world_kwargs=EVALUATION_WORLD_KWARGS,
            agent_processes=self.world.agent_processes,
            generate_kwargs=EVALUATION_GENERATE_KWARGS,
        )


def plan_comparison(config: CompareConfig, n_worlds: int | None = None) -> list[SeatPlan]:
    """Worlds ``0 .. n_worlds - 1`` of ``config`` (default ``config.n_worlds``) with their seats.

    World ``i`` depends only on ``i`` and the world fields, never on the candidates, so later
    batches and added candidates keep the earlier worlds.
    """
    count = config.n_worlds if n_worlds is None else n_worlds
    worlds = plan_worlds(
        CollectConfig(
            n_worlds=count,
            agents=config.opponents,
            n_steps=config.n_steps,
            n_levels=config.n_levels,
            agents_per_level=config.agents_per_level,
            seed=config.seed,
        )
    )
    plans = []
    for world in worlds:
        levels = seat_levels(world.n_levels, config.positions)
        level = levels[world.index % len(levels)]
        on_level = [i for i, p in enumerate(world.agent_processes) if p == level]
        rng = np.random.default_rng(derive_seed(world.seed, "seat"))
        plans.append(SeatPlan(world, on_level[int(rng.integers(len(on_level)))]))
    return plans


@dataclass(frozen=True)
class Play:
    """One candidate's play of one world.

    Attributes:
        path: the candidate's import path.
        seat_id: the seat's agent id in the world.
        seat_level: the level the world put the seat on (read from its AWI).
        score: the seat's score (final balance / initial balance).
        shortfall_quantity: units the seat failed to deliver, summed over days.
        shortfall_penalty: shortfall penalties the seat paid, summed over days (money).
        scores: every factory's score, by agent id.
        n_exceptions: exceptions the world recorded (all agents).
        duration_s: wall-clock seconds the world ran.
        agent_days, model_mismatch_days: factory-days of the world, and those on which L1's stock
            model disagrees with the world's stats (:class:`hrl.worlds.WorldResult`).
        flows: the seat's money terms and units (:func:`hrl.worlds.money_flows`; empty in plays
            stored before they were recorded).
    """

    path: str
    seat_id: str
    seat_level: int
    score: float
    shortfall_quantity: float
    shortfall_penalty: float
    scores: dict[str, float]
    n_exceptions: int
    duration_s: float
    agent_days: int = 0
    model_mismatch_days: int = 0
    flows: dict[str, float] = field(default_factory=dict)


def play_seat(plan: SeatPlan, path: str, log_dir: str | None = None) -> Play:
    """Play ``plan``'s world with ``path`` in the seat (runs in a worker process).

    Args:
        plan: the world and its seat.
        path: import path of the agent in the seat.
        log_dir: write the world's logs (negotiations, contracts, stats: what ``hrl audit``
            reads) to this folder; the play is the same play as without logs.

    Raises:
        HrlError: the world put the seat's agent elsewhere than planned (wrong level or type).
    """
    if log_dir is None:
        result = run_world(plan.spec(path))
    else:
        spec = plan.spec(path)
        logged = {k: v for k, v in spec.world_kwargs.items() if k not in LOG_SUPPRESSING_KWARGS}
        result = run_logged_world(dataclasses.replace(spec, world_kwargs=logged), Path(log_dir))
    seat_id = list(result.agent_types)[plan.seat]
    level, kind = result.levels[seat_id], agent_name(result.agent_types[seat_id])
    if level != plan.seat_level or kind != agent_name(path):
        raise HrlError(
            f"{plan.name}: seat {plan.seat} should hold {agent_name(path)} on level {plan.seat_level}, "
            f"the world put {kind} on level {level} there"
        )
    return Play(
        path=path,
        seat_id=seat_id,
        seat_level=level,
        score=result.scores[seat_id],
        shortfall_quantity=result.shortfall_quantity[seat_id],
        shortfall_penalty=result.shortfall_penalty[seat_id],
        scores=result.scores,
        n_exceptions=result.n_exceptions,
        duration_s=result.duration_s,
        agent_days=result.agent_days,
        model_mismatch_days=result.model_mismatch_days,
        flows=result.flows[seat_id],
    )


@dataclass(frozen=True)
class SeatWorld:
    """One world of the comparison and each candidate's play of it.

    Attributes:
        name, seed, n_steps, n_levels, agents_per_level: the world.
        seat: the seat's factory index; ``seat_level`` its level; ``level`` its position
            (``first``, ``middle``, ``last``).
        plays: the finished plays, by candidate label.
    """

    name: str
    seed: int
    n_steps: int
    n_levels: int
    agents_per_level: tuple[int, ...]
    seat: int
    seat_level: int
    level: str
    plays: dict[str, Play]


@dataclass(frozen=True)
class CandidateSummary:
    """One candidate over the worlds it finished (its own scores, unpaired).

    Attributes:
        label, path: the candidate.
        n_worlds: worlds it finished.
        mean_score, sd_score: mean and standard deviation (``ddof=1``; ``None`` below 2 worlds)
            of its seat scores.
        ci_low, ci_high: bootstrap interval of the mean score.
        mean_shortfall_quantity: units short per world; ``mean_shortfall_penalty`` the
            penalties paid per world (money).
        flows: per position (``"all"``, then ``first`` / ``middle`` / ``last`` where it played),
            the mean over its plays of ``n_worlds``, ``score``, each money term of
            :data:`hrl.worlds.FLOW_NAMES` as a share of the seat's initial balance, and the units
            ``sold``, ``bought`` and end ``stock`` (plays without recorded flows left out).
    """

    label: str
    path: str
    n_worlds: int
    mean_score: float
    sd_score: float | None
    ci_low: float
    ci_high: float
    mean_shortfall_quantity: float
    mean_shortfall_penalty: float
    flows: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Stopping:
    """How the number of worlds was decided.

    Attributes:
        rule: ``"fixed"`` (``n_worlds``) or ``"until_separated"``.
        reason: ``"fixed"``, ``"separated"`` (every pair's interval excludes 0),
            ``"max_worlds"`` or ``"max_minutes"`` (a budget ran out first).
        planned_looks: world counts at which the rule looks (one for a fixed run).
        n_looks: looks made.
        look_confidence: confidence of the decision interval at each look (equal alpha spending
            over the planned looks; ``confidence`` for a fixed run).
        intervals: per pair (``"A vs B"``), the decision interval at the last look: a t-interval
            at ``look_confidence`` (``None`` below 2 worlds).
        separated: per pair, whether that interval excludes 0.
        elapsed_minutes: wall-clock minutes of this run.
    """

    rule: str
    reason: StopReason
    planned_looks: list[int]
    n_looks: int
    look_confidence: float
    intervals: dict[str, tuple[float, float] | None]
    separated: dict[str, bool]
    elapsed_minutes: float


@dataclass(frozen=True)
class ComparisonResult:
    """What a comparison produced (also written to ``out_dir/comparison.json``).

    Attributes:
        out_dir: the comparison folder.
        config: the config as JSON.
        candidates: per candidate, its own mean score and shortfall.
        pairs: every pair ``(a, b)`` in the order the candidates were given.
        worlds: every world looked at, with the finished plays.
        failed: plays that did not finish (``"w00003/LABEL"``: status and error).
        stopping: how the number of worlds was decided.
        n_exceptions: exceptions the finished plays' worlds recorded.
    """

    out_dir: str
    config: dict[str, Any]
    candidates: list[CandidateSummary]
    pairs: list[PairedComparison]
    worlds: list[SeatWorld]
    failed: dict[str, str]
    stopping: Stopping
    n_exceptions: int = field(default=0)


def run_comparison(config: CompareConfig, out_dir: str | Path, *, progress: bool = True) -> ComparisonResult:
    """Run (or resume) the comparison of ``config`` in ``out_dir``; writes ``comparison.json``.

    Raises:
        ConfigError: ``out_dir`` holds plays of different worlds (other world fields), or some
            pair of candidates has no world both finished.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _load_plays(out, config)
    looks = planned_looks(config.n_worlds, config.max_worlds or config.n_worlds)
    per_look = look_confidence(config.confidence, len(looks)) if config.until_separated else config.confidence
    deadline = None if config.max_minutes is None else time.monotonic() + 60.0 * config.max_minutes
    start = time.monotonic()
    config_json = _jsonable(dataclasses.asdict(config))
    atomic_write_json(out / COMPARISON_FILE, {"config": config_json, "status": "running"})
    bar = tqdm(total=0, desc="plays", unit="world-day", disable=not progress)
    executor: Executor | None = None
    try:
        for n_looks, n_worlds in enumerate(looks, start=1):
            plans = plan_comparison(config, n_worlds)
            todo = [(p, c) for p in plans for c in config.candidates if not _done(manifest, p, c)]
            if todo:
                executor = executor or _executor(config)
                timed_out = _play_all(executor, todo, manifest, out, bar, deadline, config.log_plays)
            else:
                timed_out = deadline is not None and time.monotonic() > deadline
            worlds, failed = _worlds(config, plans, manifest)
            pairs = _pairs(config, worlds, out)
            intervals = {f"{p.a} vs {p.b}": _decision_interval(worlds, p, per_look) for p in pairs}
            separated = {key: ci is not None and (ci[0] > 0 or ci[1] < 0) for key, ci in intervals.items()}
            reason = _stop_reason(config, all(separated.values()), timed_out, n_looks == len(looks))
            if reason is not None:
                break
    finally:
        bar.close()
        if executor is not None:
            executor.close()
    assert reason is not None  # the last planned look always decides
    stopping = Stopping(
        rule="until_separated" if config.until_separated else "fixed",
        reason=reason,
        planned_looks=looks,
        n_looks=n_looks,
        look_confidence=per_look,
        intervals=intervals,
        separated=separated,
        elapsed_minutes=(time.monotonic() - start) / 60.0,
    )
    result = ComparisonResult(
        out_dir=str(out),
        config=config_json,
        candidates=_candidate_summaries(config, worlds),
        pairs=pairs,
        worlds=worlds,
        failed=failed,
        stopping=stopping,
        n_exceptions=sum(p.n_exceptions for w in worlds for p in w.plays.values()),
    )
    atomic_write_json(out / COMPARISON_FILE, {"status": "done", **dataclasses.asdict(result)})
    return result


def _executor(config: CompareConfig) -> Executor:
    return make_executor(
        config.backend,
        n_workers=config.n_workers,
        timeout_s=config.world_timeout_s,
        max_tasks_per_worker=PLAYS_PER_WORKER,
        ray_address=config.ray_address,
        worker_env=WORKER_ENV | checkpoint_env(),
    )


def _play_all(
    executor: Executor,
    todo: list[tuple[SeatPlan, Candidate]],
    manifest: dict[str, Any],
    out: Path,
    bar: Any,
    deadline: float | None,
    log_plays: tuple[str, ...] = (),
) -> bool:
    """Run the plays of ``todo``, recording each in the manifest; ``True`` if the deadline cut them."""
    by_key = {_key(p, c): (p, c) for p, c in todo}
    for key, (plan, candidate) in by_key.items():
        logs = str(out / LOGS_DIR / plan.name / candidate.label) if candidate.label in log_plays else None
        executor.submit(key, play_seat, plan, candidate.path, logs)
    bar.total += sum(p.world.n_steps for p, _ in todo)
    bar.refresh()
    for result in executor.results():
        plan, candidate = by_key[result.key]
        entry: dict[str, Any] = {
            "label": candidate.label,
            "path": candidate.path,
            "wall_s": result.duration_s,
        }
        if result.ok:
            entry |= {"status": "done", **dataclasses.asdict(result.value)}
        else:
            entry |= {"status": result.status, "error": result.error}
        manifest["plays"][result.key] = entry
        atomic_write_json(out / PLAYS_FILE, manifest)
        bar.update(plan.world.n_steps)
        if deadline is not None and time.monotonic() > deadline:
            return True
    return False


def _stop_reason(
    config: CompareConfig, separated: bool, timed_out: bool, last_look: bool
) -> StopReason | None:
    """Why to stop after a look, or ``None`` to play the next batch."""
    if not config.until_separated:
        return "fixed"
    if separated:
        return "separated"
    if timed_out:
        return "max_minutes"
    return "max_worlds" if last_look else None


def _key(plan: SeatPlan, candidate: Candidate) -> str:
    return f"{plan.name}/{candidate.label}"


def _done(manifest: dict[str, Any], plan: SeatPlan, candidate: Candidate) -> bool:
    entry = manifest["plays"].get(_key(plan, candidate), {})
    return bool(entry.get("status") == "done" and entry.get("path") == candidate.path)


def _load_plays(out: Path, config: CompareConfig) -> dict[str, Any]:
    path = out / PLAYS_FILE
    fields = config.world_fields()
    if not path.exists():
        return {"world_fields": fields, "plays": {}}
    try:
        manifest = json.loads(path.read_text())
        stored = manifest["world_fields"]
        if not isinstance(manifest["plays"], dict):
            raise TypeError("'plays' is not an object")
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: not a manifest of `hrl compare` ({error})") from error
    if stored != fields:
        changed = sorted(k for k in fields if stored.get(k) != fields[k])
        raise ConfigError(
            f"{out}: holds a comparison of other worlds ({', '.join(changed)}); use another --out"
        )
    return dict(manifest)


def _worlds(
    config: CompareConfig, plans: list[SeatPlan], manifest: dict[str, Any]
) -> tuple[list[SeatWorld], dict[str, str]]:
    worlds, failed = [], {}
    play_fields = {f.name for f in dataclasses.fields(Play)}
    for plan in plans:
        plays = {}
        for candidate in config.candidates:
            key = _key(plan, candidate)
            entry = manifest["plays"].get(key)
            if entry is None:
                continue  # not run yet (a budget stopped the run first)
            if _done(manifest, plan, candidate):
                plays[candidate.label] = Play(**{k: v for k, v in entry.items() if k in play_fields})
            else:
                failed[key] = f"{entry['status']}: {entry.get('error')}"
        worlds.append(
            SeatWorld(
                name=plan.name,
                seed=plan.world.seed,
                n_steps=plan.world.n_steps,
                n_levels=plan.world.n_levels,
                agents_per_level=plan.agents_per_level,
                seat=plan.seat,
                seat_level=plan.seat_level,
                level=plan.level_label,
                plays=plays,
            )
        )
    return worlds, failed


def _both(worlds: list[SeatWorld], a: str, b: str) -> list[SeatWorld]:
    return [w for w in worlds if a in w.plays and b in w.plays]


def _pairs(config: CompareConfig, worlds: list[SeatWorld], out: Path) -> list[PairedComparison]:
    labels = [c.label for c in config.candidates]
    pairs = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            both = _both(worlds, a, b)
            if not both:
                raise ConfigError(f"{out}: no world finished for both {a} and {b}; see {PLAYS_FILE}")
            pairs.append(
                paired_comparison(
                    a,
                    b,
                    [w.plays[a].score for w in both],
                    [w.plays[b].score for w in both],
                    [w.level for w in both],
                    confidence=config.confidence,
                    n_resamples=config.n_resamples,
                    seed=derive_seed(config.seed, "bootstrap", a, b),
                    half_width=config.half_width,
                )
            )
    return pairs


def _decision_interval(
    worlds: list[SeatWorld], pair: PairedComparison, confidence: float
) -> tuple[float, float] | None:
    """The t-interval the stopping rule decides on, at the per-look ``confidence``."""
    both = _both(worlds, pair.a, pair.b)
    return t_interval([w.plays[pair.a].score - w.plays[pair.b].score for w in both], confidence)


def _candidate_summaries(config: CompareConfig, worlds: list[SeatWorld]) -> list[CandidateSummary]:
    summaries = []
    for candidate in config.candidates:
        played = [w for w in worlds if candidate.label in w.plays]
        plays = [w.plays[candidate.label] for w in played]
        scores = np.array([p.score for p in plays])
        low, high = bootstrap_ci(
            scores,
            confidence=config.confidence,
            n_resamples=config.n_resamples,
            seed=derive_seed(config.seed, "bootstrap", candidate.label),
        )
        summaries.append(
            CandidateSummary(
                label=candidate.label,
                path=candidate.path,
                n_worlds=len(plays),
                mean_score=float(scores.mean()),
                sd_score=float(scores.std(ddof=1)) if len(plays) > 1 else None,
                ci_low=low,
                ci_high=high,
                mean_shortfall_quantity=float(np.mean([p.shortfall_quantity for p in plays])),
                mean_shortfall_penalty=float(np.mean([p.shortfall_penalty for p in plays])),
                flows=flows_by_position([(w.plays[candidate.label], w.level) for w in played]),
            )
        )
    return summaries


def flows_by_position(plays: list[tuple[Play, str]]) -> dict[str, dict[str, float]]:
    """Mean money terms (shares of the initial balance) and units of ``(play, position)`` pairs,
    over all of them (``"all"``) and per position, in :data:`hrl.worlds.LEVEL_LABELS` order."""
    recorded = [(p, position) for p, position in plays if p.flows]
    groups = {"all": [p for p, _ in recorded]}
    for label in LEVEL_LABELS:
        group = [p for p, position in recorded if position == label]
        if group:
            groups[label] = group
    table: dict[str, dict[str, float]] = {}
    for name, group in groups.items():
        if not group:
            continue
        row = {"n_worlds": float(len(group)), "score": float(np.mean([p.score for p in group]))}
        for term in FLOW_NAMES:
            row[term] = float(np.mean([p.flows[term] / p.flows["initial_balance"] for p in group]))
        for units in ("sold", "bought", "stock"):
            row[units] = float(np.mean([p.flows[units] for p in group]))
        table[name] = row
    return table


def _jsonable(value: Any) -> Any:
    """Tuples -> lists, recursively (as JSON stores them), so stored and fresh values compare."""
    return json.loads(json.dumps(value))
