"""The main job: collect -> build -> pretrain -> finetune -> evaluate -> report, resumable.

Each stage writes into its own folder of the run directory and is recorded in ``stages.json``
when it completes; re-running the same command skips completed stages and resumes the current
one (collection and evaluation skip finished worlds, training resumes from its checkpoints).
Presets are typed TOML files in ``hrl/presets`` (``quick``, ``full``) or any TOML path.

The stages that play worlds have a size in simulated world-days (:func:`plan_world_days`, from
the stages' own planners) and may set a quota (``quota_world_days``: the preset is refused when
its plan exceeds it). Each such stage prints its size and an ETA at the rates measured on this
project's 2-core machine (:data:`RATES`) when it starts; ``hrl run --plan`` prints them all
without running anything.

With ``milestones`` (``hrl run --milestones DIR``) the run's resumable state is mirrored into a
folder small enough to commit (:mod:`hrl.milestones`) after every stage and every fine-tuning
update, and restored from it into a fresh run folder; a stage whose inputs are missing (the
logs and samples are not in a milestone) makes the stages that produce them run again.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

from hrl.errors import ConfigError
from hrl.io import atomic_write_json
from hrl.opponents import DEFAULT_OPPONENTS

__all__ = [
    "RATES",
    "STAGES",
    "BuildStage",
    "CollectStage",
    "EvaluateStage",
    "Preset",
    "PretrainStage",
    "eta_line",
    "load_preset",
    "plan_world_days",
    "run_pipeline",
]

Range = tuple[int, int]


@dataclass(frozen=True)
class CollectStage:
    """Data collection (see ``hrl collect``)."""

    worlds: int = 6
    n_steps: Range = (30, 40)
    levels: Range = (2, 3)
    agents_per_level: Range = (4, 5)
    agents: tuple[str, ...] = DEFAULT_OPPONENTS
    workers: int = 2
    seed: int = 0
    quota_world_days: int = 0
    """The most simulated days the stage may plan (0: no quota)."""


@dataclass(frozen=True)
class BuildStage:
    """Samples from the collected logs (see ``hrl build``)."""

    experts: tuple[str, ...] = ()
    """Whose decisions become micro samples (class names or import paths; empty: PenguinAgent
    and the 2025 winners, :data:`hrl.data.datasets.DEFAULT_EXPERTS`)."""


@dataclass(frozen=True)
class PretrainStage:
    """Behaviour cloning of L2, L3, L4 (see ``hrl pretrain``)."""

    epochs: int = 8
    seed: int = 0
    min_expert_score: float = -math.inf
    """Clone only the agent-worlds scoring at least this (``hrl pretrain --min-expert-score``;
    ``-inf``: all)."""


@dataclass(frozen=True)
class FinetuneStage:
    """Online PPO (L2) and MAPPO (L3/L4) from the pretrained bundle (see ``hrl finetune``)."""

    updates: int = 4
    worlds_per_update: int = 2
    n_steps: Range = (15, 25)
    n_levels: Range = (2, 2)
    factories_per_level: Range = (4, 5)
    n_learners: int = 1
    workers: int = 2
    eval_every: int = 2
    eval_worlds: int = 2
    validate_vs_l1: bool = False
    patience: int = 4
    """Validations without a gain before the run stops early (``FinetuneConfig.patience``)."""
    seed: int = 0
    quota_world_days: int = 0
    """The most simulated days the stage may plan, rollouts and validation (0: no quota)."""


@dataclass(frozen=True)
class EvaluateStage:
    """The final tournament (see ``hrl evaluate``): the trained LitaAgentHRL and LitaAgentL1 (its
    floor) against PenguinAgent and the 2025 finalists."""

    configs: int = 3
    rotations: int = 2
    n_steps: Range = (30, 40)
    levels: Range = (2, 2)
    agents_per_level: Range = (4, 5)
    workers: int = 2
    seed: int = 1
    quota_world_days: int = 0
    """The most simulated days the stage may plan (0: no quota)."""


@dataclass(frozen=True)
class Preset:
    """A whole run: one section per stage."""

    name: str
    collect: CollectStage = field(default_factory=CollectStage)
    build: BuildStage = field(default_factory=BuildStage)
    pretrain: PretrainStage = field(default_factory=PretrainStage)
    finetune: FinetuneStage = field(default_factory=FinetuneStage)
    evaluate: EvaluateStage = field(default_factory=EvaluateStage)


def load_preset(name_or_path: str) -> Preset:
    """A packaged preset (``quick``, ``full``) or a TOML file with the same sections.

    Raises:
        ConfigError: unknown preset, unknown section or field, or a value of the wrong type.
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text, name = path.read_text(), path.stem
    else:
        packaged = resources.files("hrl.presets") / f"{name_or_path}.toml"
        if not packaged.is_file():
            raise ConfigError(
                f"preset {name_or_path!r}: not a packaged preset (quick, full) nor a .toml file"
            )
        text, name = packaged.read_text(), name_or_path
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"preset {name_or_path!r}: {error}") from error
    sections = {f.name: f.type for f in dataclasses.fields(Preset) if f.name != "name"}
    unknown = set(data) - set(sections)
    if unknown:
        raise ConfigError(f"preset {name_or_path!r}: unknown sections {sorted(unknown)}")
    built = {key: _section(key, cls, data.get(key, {})) for key, cls in _section_classes().items()}
    preset = Preset(name=name, **built)
    for stage, days in plan_world_days(preset).items():
        quota = getattr(preset, stage).quota_world_days
        if quota and days > quota:
            raise ConfigError(
                f"preset {name_or_path!r}: [{stage}] plans {days} world-days, over its quota {quota}"
            )
    return preset


RATES = {"collect": 6.0, "finetune": 2.0, "evaluate": 4.0}
"""World-days per second measured on this project's 2-core VM with 2 workers (collection,
fine-tuning with its rollouts and updates, the evaluation tournament): the basis of the ETAs."""


def plan_world_days(preset: Preset) -> dict[str, int]:
    """Simulated world-days each world-playing stage of ``preset`` plans (collect and evaluate
    exactly, from their planners; finetune see :func:`hrl.train.finetune.planned_world_days`)."""
    from hrl.data.collect import plan_worlds
    from hrl.evaluate.tournament import plan_evaluation
    from hrl.train.finetune import planned_world_days

    return {
        "collect": sum(w.n_steps for w in plan_worlds(_collect_config(preset))),
        "finetune": planned_world_days(_finetune_config(preset, Path("."))),
        "evaluate": sum(w.n_steps for w in plan_evaluation(_evaluate_config(preset))),
    }


def eta_line(stage: str, world_days: int) -> str:
    """``"<stage>: N world-days, ~T at R world-days/s"``."""
    seconds = world_days / RATES[stage]
    span = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
    return f"{stage}: {world_days:,} world-days, ~{span} at {RATES[stage]:g} world-days/s (2 cores)"


def _section_classes() -> dict[str, type]:
    return {
        "collect": CollectStage,
        "build": BuildStage,
        "pretrain": PretrainStage,
        "finetune": FinetuneStage,
        "evaluate": EvaluateStage,
    }


def _section(key: str, cls: type, values: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"[{key}]: unknown fields {sorted(unknown)}")
    converted = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"[{key}].{name}: expected a list, got {value!r}")
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, type(default)):
            raise ConfigError(f"[{key}].{name}: expected {type(default).__name__}, got {value!r}")
        converted[name] = value
    return cls(**converted)


StageFn = Callable[..., dict[str, Any]]
"""``stage(preset, run, console) -> summary`` (finetune also takes ``milestones``)."""


def _collect_config(preset: Preset) -> Any:
    from hrl.data.collect import CollectConfig

    c = preset.collect
    return CollectConfig(
        n_worlds=c.worlds,
        agents=c.agents,
        n_steps=c.n_steps,
        n_levels=c.levels,
        agents_per_level=c.agents_per_level,
        seed=c.seed,
        n_workers=c.workers,
    )


def _collect(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.data.collect import collect_worlds

    manifest = collect_worlds(_collect_config(preset), run / "collect")
    if manifest["summary"].get("done", 0) == 0:
        raise ConfigError(f"{run / 'collect'}: no world finished: {manifest['summary']}")
    return dict(manifest["summary"])


def _build(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.data.datasets import write_datasets

    report = write_datasets(run / "collect", run / "data", experts=preset.build.experts or None)
    return {k: report[k] for k in ("macro_rows", "micro_rows") if k in report}


def _pretrain(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.config import TrainConfig
    from hrl.train.pretrain import PretrainConfig, pretrain

    config = PretrainConfig(
        data=run / "data",
        out=run / "pretrain",
        train=TrainConfig(epochs=preset.pretrain.epochs, seed=preset.pretrain.seed),
        min_expert_score=None
        if math.isinf(preset.pretrain.min_expert_score)
        else preset.pretrain.min_expert_score,
    )
    report = pretrain(config)
    return {"bundle": report["bundle"], "layers": report["layers"], "wall_s": report["wall_s"]}


def _finetune_config(preset: Preset, run: Path) -> Any:
    from hrl.train.finetune import FinetuneConfig

    f = preset.finetune
    return FinetuneConfig(
        bundle=str(run / "pretrain" / "bundle.pt"),
        out=str(run / "finetune"),
        updates=f.updates,
        worlds_per_update=f.worlds_per_update,
        n_steps=f.n_steps,
        n_levels=f.n_levels,
        factories_per_level=f.factories_per_level,
        n_learners=f.n_learners,
        workers=f.workers,
        eval_every=f.eval_every,
        eval_worlds=f.eval_worlds,
        validate_vs_l1=f.validate_vs_l1,
        patience=f.patience,
        seed=f.seed,
    )


def _finetune(preset: Preset, run: Path, console: Console, milestones: Path | None = None) -> dict[str, Any]:
    from hrl.milestones import save_milestone
    from hrl.train.finetune import finetune

    def mirror(update: int) -> None:
        if milestones is not None:
            save_milestone(run, milestones)

    report = finetune(_finetune_config(preset, run), on_checkpoint=mirror)
    return {k: report[k] for k in ("bundle", "updates", "worlds", "best_metric", "best_update")}


def _evaluate_config(preset: Preset) -> Any:
    from hrl.evaluate.tournament import EvaluateConfig

    e = preset.evaluate
    return EvaluateConfig(
        agents=(HRL_AGENT, L1_AGENT),
        n_configs=e.configs,
        n_rotations=e.rotations,
        n_steps=e.n_steps,
        n_levels=e.levels,
        agents_per_level=e.agents_per_level,
        seed=e.seed,
        n_workers=e.workers,
    )


def _evaluate(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.agent.hrl import CHECKPOINT_ENV
    from hrl.evaluate.report import write_report
    from hrl.evaluate.tournament import run_evaluation

    # Worker processes inherit the environment: the agent under test loads the trained bundle.
    os.environ[CHECKPOINT_ENV] = str(_trained_bundle(run))
    config = _evaluate_config(preset)
    result = run_evaluation(config, run / "evaluate")
    report = write_report(result, ours=config.agents, run_dir=run)
    return {"report": str(report), "ranking": [(s.agent, round(s.official, 4)) for s in result.summaries]}


HRL_AGENT = "hrl.agent.hrl.LitaAgentHRL"
L1_AGENT = "hrl.agent.l1.LitaAgentL1"


def _trained_bundle(run: Path) -> Path:
    """The newest bundle the run produced (fine-tuned when that stage ran, else pretrained)."""
    for candidate in (run / "finetune" / "bundle.pt", run / "pretrain" / "bundle.pt"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{run}: no trained bundle (pretrain has not finished)")


STAGES: dict[str, StageFn] = {
    "collect": _collect,
    "build": _build,
    "pretrain": _pretrain,
    "finetune": _finetune,
    "evaluate": _evaluate,
}
"""The stages in order; each returns a JSON-able summary recorded in ``stages.json``."""

OUTPUTS = {
    "collect": ("collect/manifest.json",),
    "build": ("data/macro.parquet", "data/micro.parquet"),
    "pretrain": ("pretrain/bundle.pt",),
    "finetune": ("finetune/bundle.pt",),
}
"""What each stage leaves in the run folder for the next one."""


def _stale(record: dict[str, Any], run: Path) -> list[str]:
    """Stages recorded done whose outputs the first unfinished stage needs but the run folder
    lacks (a run restored from a milestone holds no logs or samples): they run again."""
    order = list(STAGES)
    done = [record["stages"].get(name, {}).get("status") == "done" for name in order]
    if all(done):
        return []
    stale = []
    j = done.index(False)
    while j > 0 and any(not (run / path).exists() for path in OUTPUTS[order[j - 1]]):
        stale.append(order[j - 1])
        j -= 1
    return stale


def run_pipeline(
    preset: Preset,
    run_dir: str | Path,
    *,
    console: Console | None = None,
    milestones: str | Path | None = None,
) -> dict[str, Any]:
    """Run (or resume) every stage of ``preset`` in ``run_dir``; returns the stage record.
    ``milestones``: a folder to restore the run's resumable state from and mirror it into (see
    the module docs).

    Raises:
        ConfigError: ``run_dir`` (or the milestone) was started with another preset.
    """
    from hrl.milestones import restore_milestone, save_milestone

    console = console or Console()
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    mirror = None if milestones is None else Path(milestones)
    if mirror is not None:
        restored = restore_milestone(mirror, run)
        if restored:
            console.print(f"restored {len(restored)} files from {mirror}")
    record_path = run / "stages.json"
    preset_json = json.loads(json.dumps(dataclasses.asdict(preset)))
    record: dict[str, Any] = {"preset": preset_json, "stages": {}}
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record["preset"] != preset_json:
            raise ConfigError(f"{run}: was started with another preset; use another --out")
    for name in _stale(record, run):
        console.print(f"[yellow]{name}: its outputs are missing; it runs again[/]")
        record["stages"].pop(name)
    atomic_write_json(record_path, record)
    plan = plan_world_days(preset)
    for name, stage in STAGES.items():
        if record["stages"].get(name, {}).get("status") == "done":
            console.print(f"[dim]{name}: done earlier, skipped[/]")
            continue
        console.rule(f"{name}")
        if name in plan:
            console.print(eta_line(name, plan[name]))
        start = time.monotonic()
        summary = stage(preset, run, console, mirror) if name == "finetune" else stage(preset, run, console)
        if name in plan:
            summary = {"world_days": plan[name], **summary}
        record["stages"][name] = {"status": "done", "seconds": round(time.monotonic() - start, 1), **summary}
        atomic_write_json(record_path, record)
        if mirror is not None:
            save_milestone(run, mirror)
    return record
