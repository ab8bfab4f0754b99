"""Evaluation tournaments: our agent(s) against PenguinAgent, the 2025 finalists and built-ins.

Worlds are generated as official Standard tournaments generate them (``scml.utils.anac2024_std``:
2-4 production levels, 4-8 factories per level, 50-200 days, the official negotiation limits;
see :mod:`hrl.data.collect`). Each *configuration* is one drawn world setup; the competitors (the
agents under test plus the opponents, one factory each) are placed on random factories of it and
the remaining factories are filled with non-competitors (scml's built-in agents, scored but not
ranked, as ``ignore_default=True`` does officially). Each configuration is played in several
*rotations*: the same world (same seed: same profiles and exogenous contracts) with the
competitors shifted by one factory each time, so position luck evens out. Worlds run through
``hrl collect``'s machinery (process pool, per-world time limit, manifest, resume); every world
keeps its logs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrl.data.collect import CollectConfig, StorageFormat, WorldPlan, collect_worlds
from hrl.errors import ConfigError
from hrl.evaluate.scoring import AgentSummary, LevelSummary, summarise_levels, summarise_worlds
from hrl.io import atomic_write_json
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN, agent_name
from hrl.seeding import derive_seed
from hrl.worlds import level_label

__all__ = ["EVALUATION_FILE", "EvaluateConfig", "EvaluationResult", "plan_evaluation", "run_evaluation"]

EVALUATION_FILE = "evaluation.json"
"""Written next to the manifest: the config, per-world results and per-agent summaries."""


@dataclass(frozen=True)
class EvaluateConfig:
    """An evaluation tournament.

    Attributes:
        agents: import paths of the agents under test (e.g. ``hrl.agent.l1.LitaAgentL1``).
        opponents: competitors they are ranked against (default: PenguinAgent and the four 2025
            Standard finalists).
        fillers: non-competitors filling the remaining factories (scml's built-ins); their
            scores are kept but not ranked.
        n_configs: world configurations drawn.
        n_rotations: rotations per configuration (1 .. number of competitors).
        n_steps, n_levels, agents_per_level: inclusive ranges drawn per configuration (the
            official ones by default). ``agents_per_level`` is raised where needed so that every
            competitor gets a factory.
        seed: base seed; configuration ``c`` uses ``derive_seed(seed, "config", c)``.
        storage_format: log format of the worlds.
        n_workers, world_timeout_s: run options (worlds at once; per-world limit in seconds).
        backend, ray_address: run options: where the worlds run (see :mod:`hrl.distributed`).
    """

    agents: tuple[str, ...]
    opponents: tuple[str, ...] = (PENGUIN, *FINALISTS_2025)
    fillers: tuple[str, ...] = BUILTINS
    n_configs: int = 4
    n_rotations: int = 2
    n_steps: tuple[int, int] = (50, 200)
    n_levels: tuple[int, int] = (2, 4)
    agents_per_level: tuple[int, int] = (4, 8)
    seed: int = 0
    storage_format: StorageFormat = "parquet"
    n_workers: int = 1
    world_timeout_s: float | None = 3600.0
    backend: str = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if not self.agents:
            raise ConfigError("agents: need at least one agent under test")
        if len(set(self.competitors)) != len(self.competitors):
            raise ConfigError(f"agents/opponents: a competitor is listed twice: {self.competitors}")
        if not self.fillers:
            raise ConfigError("fillers: need at least one non-competitor agent")
        if self.n_configs < 1:
            raise ConfigError(f"n_configs: must be >= 1, got {self.n_configs}")
        if not 1 <= self.n_rotations <= len(self.competitors):
            raise ConfigError(f"n_rotations: must be in 1..{len(self.competitors)}, got {self.n_rotations}")
        if self.agents_per_level[1] * self.n_levels[0] < len(self.competitors):
            raise ConfigError(
                f"agents_per_level: at most {self.agents_per_level[1]} factories on "
                f"{self.n_levels[0]} levels cannot hold {len(self.competitors)} competitors"
            )
        self.collect_config()  # validates the ranges and the storage format

    @property
    def competitors(self) -> tuple[str, ...]:
        """Agents under test followed by the opponents: the ranked participants."""
        return (*self.agents, *self.opponents)

    def collect_config(self) -> CollectConfig:
        """The collection that runs this tournament's worlds."""
        return CollectConfig(
            n_worlds=self.n_configs * self.n_rotations,
            agents=(*self.competitors, *self.fillers),
            n_steps=self.n_steps,
            n_levels=self.n_levels,
            agents_per_level=self.agents_per_level,
            seed=self.seed,
            storage_format=self.storage_format,
            n_workers=self.n_workers,
            world_timeout_s=self.world_timeout_s,
            backend=self.backend,
            ray_address=self.ray_address,
        )


def plan_evaluation(config: EvaluateConfig) -> list[WorldPlan]:
    """All worlds of ``config``: ``n_configs`` configurations x ``n_rotations`` rotations.

    World ``c<config>r<rotation>`` depends only on the seed, the config index and the rotation.
    """
    competitors = config.competitors
    k = len(competitors)
    plans = []
    for c in range(config.n_configs):
        seed = derive_seed(config.seed, "config", c)
        rng = np.random.default_rng(seed)
        n_levels = int(rng.integers(config.n_levels[0], config.n_levels[1] + 1))
        low, high = config.agents_per_level
        per_level = rng.integers(low, high + 1, size=n_levels)
        while per_level.sum() < k:  # make room for every competitor
            per_level[rng.choice(np.flatnonzero(per_level < high))] += 1
        n_steps = int(rng.integers(config.n_steps[0], config.n_steps[1] + 1))
        processes = tuple(level for level, n in enumerate(per_level) for _ in range(int(n)))
        competitor_slots = sorted(rng.choice(len(processes), size=k, replace=False).tolist())
        filler_order = rng.permutation(len(config.fillers))
        for r in range(config.n_rotations):
            agents: list[str] = []
            fillers_used = 0
            for slot in range(len(processes)):
                if slot in competitor_slots:
                    agents.append(competitors[(competitor_slots.index(slot) + r) % k])
                else:
                    agents.append(config.fillers[filler_order[fillers_used % len(config.fillers)]])
                    fillers_used += 1
            if len(set(processes)) != n_levels:  # pragma: no cover - every level has >= 1 factory
                raise ConfigError("internal: a level without factories")
            plans.append(
                WorldPlan(
                    index=c * config.n_rotations + r,
                    name=f"c{c:03d}r{r:02d}",
                    seed=seed,
                    n_steps=n_steps,
                    n_levels=n_levels,
                    agents=tuple(agents),
                    agent_processes=processes,
                )
            )
    return plans


@dataclass(frozen=True)
class EvaluationResult:
    """What an evaluation produced.

    Attributes:
        out_dir: the tournament folder (world logs, ``manifest.json``, ``evaluation.json``).
        summaries: ranked competitors (official score, mean, median, 95% CI, win rate, rank).
        agents: per competitor type: ``shortfall_penalty`` and ``shortfall_quantity`` (totals per
            world, averaged), ``seconds_per_day`` (own code), ``decision_p50_ms`` and
            ``decision_p95_ms`` (averaged over worlds).
        worlds: per finished world: name, days, levels, scores by agent type, and the same
            scores by agent type and position (``first``/``middle``/``last`` level).
        failed: names of worlds that did not finish (error/timeout/crash), with their status.
        n_exceptions: exceptions the finished worlds recorded (agents, negotiators, contracts).
        by_level: per agent type (ranked or not) and position, the mean score and its 95% CI
            (first, middle and last levels play different games).
    """

    out_dir: str
    summaries: list[AgentSummary]
    agents: dict[str, dict[str, float]]
    worlds: list[dict[str, Any]]
    failed: dict[str, str]
    n_exceptions: int
    by_level: dict[str, dict[str, LevelSummary]]


def run_evaluation(config: EvaluateConfig, out_dir: str | Path, *, progress: bool = True) -> EvaluationResult:
    """Run (or resume) the tournament of ``config`` in ``out_dir`` and summarise it.

    The summary is written to ``out_dir/evaluation.json``. Re-running with the same config
    skips finished worlds; a different config for the same folder is refused.

    Raises:
        ConfigError: ``out_dir`` holds an evaluation with a different config.
    """
    out = Path(out_dir)
    previous = out / EVALUATION_FILE
    run_options = ("n_workers", "world_timeout_s", "backend", "ray_address")
    config_json = {  # tuples -> lists, as stored; run options may change on resume
        k: v for k, v in json.loads(json.dumps(dataclasses.asdict(config))).items() if k not in run_options
    }
    if previous.exists():
        stored = json.loads(previous.read_text())["config"]
        if {k: v for k, v in stored.items() if k not in run_options} != config_json:
            raise ConfigError(f"{out}: holds an evaluation with a different config; use another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(previous, {"config": config_json, "status": "running"})
    manifest = collect_worlds(config.collect_config(), out, progress=progress, plans=plan_evaluation(config))
    result = summarise_evaluation(config, out, manifest)
    atomic_write_json(previous, {"config": config_json, "status": "done", **_result_json(result)})
    return result


def summarise_evaluation(config: EvaluateConfig, out: Path, manifest: dict[str, Any]) -> EvaluationResult:
    """Per-agent and per-world results of the finished worlds in ``out``."""
    ranked = {agent_name(path) for path in config.competitors}
    worlds: list[dict[str, Any]] = []
    per_world_scores: list[dict[str, list[float]]] = []
    totals: dict[str, dict[str, list[float]]] = {}
    level_scores: dict[str, dict[str, list[float]]] = {}
    failed = {}
    n_exceptions = 0
    for name, entry in sorted(manifest["worlds"].items()):
        if entry.get("status") != "done":
            failed[name] = str(entry.get("status"))
            continue
        world = json.loads((out / name / "world.json").read_text())
        levels = _levels(world)
        n_levels = max(levels.values()) + 1
        by_type: dict[str, list[float]] = {}
        by_position: dict[str, dict[str, list[float]]] = {}
        for agent_id, score in world["scores"].items():
            kind = agent_name(world["agent_types"][agent_id])
            position = level_label(levels[agent_id], n_levels)
            by_type.setdefault(kind, []).append(score)
            by_position.setdefault(kind, {}).setdefault(position, []).append(score)
            level_scores.setdefault(kind, {}).setdefault(position, []).append(score)
            metrics = totals.setdefault(kind, {})
            days = max(world["n_steps"], 1)
            for key, value in (
                ("shortfall_penalty", world["shortfall_penalty"].get(agent_id, 0.0)),
                ("shortfall_quantity", world["shortfall_quantity"].get(agent_id, 0.0)),
                ("seconds_per_day", world["agent_seconds"].get(agent_id, 0.0) / days),
                ("decision_p50_ms", world["decision_ms"].get(agent_id, [float("nan")] * 2)[0]),
                ("decision_p95_ms", world["decision_ms"].get(agent_id, [float("nan")] * 2)[1]),
            ):
                metrics.setdefault(key, []).append(value)
        n_exceptions += int(world["n_exceptions"])
        worlds.append(
            {
                "name": name,
                "n_steps": world["n_steps"],
                "n_levels": n_levels,
                "levels": levels,
                "scores": by_type,
                "scores_by_level": by_position,
            }
        )
        per_world_scores.append({kind: scores for kind, scores in by_type.items() if kind in ranked})
    if not per_world_scores:
        raise ConfigError(f"{out}: no world finished ({failed})")
    summaries = summarise_worlds(per_world_scores, seed=config.seed)
    agents = {
        kind: {key: _mean(values) for key, values in metrics.items()} for kind, metrics in totals.items()
    }
    by_level = summarise_levels(level_scores, seed=config.seed)
    return EvaluationResult(str(out), summaries, agents, worlds, failed, n_exceptions, by_level)


def _levels(world: dict[str, Any]) -> dict[str, int]:
    """Each agent id's level: recorded from its AWI (``hrl.worlds.WorldResult.levels``); worlds
    written before it was recorded fall back to the position scml puts in the id (``03Pe@1``)."""
    recorded = world.get("levels")
    if recorded:
        return {agent_id: int(level) for agent_id, level in recorded.items()}
    return {agent_id: int(agent_id.rpartition("@")[2]) for agent_id in world["scores"]}


def _mean(values: list[float]) -> float:
    """Mean ignoring NaN (an agent that made no decision call has no latency); NaN if all are."""
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else float("nan")


def _result_json(result: EvaluationResult) -> dict[str, Any]:
    return {
        "summaries": [dataclasses.asdict(s) for s in result.summaries],
        "agents": result.agents,
        "worlds": result.worlds,
        "failed": result.failed,
        "n_exceptions": result.n_exceptions,
        "by_level": {
            kind: {label: dataclasses.asdict(s) for label, s in levels.items()}
            for kind, levels in result.by_level.items()
        },
    }
