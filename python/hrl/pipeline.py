"""The main job: collect -> build -> pretrain -> finetune -> evaluate -> report, resumable.

Each stage writes into its own folder of the run directory and is recorded in ``stages.json``
when it completes; re-running the same command skips completed stages and resumes the current
one (collection and evaluation skip finished worlds, training resumes from its checkpoints).
Presets are typed TOML files in ``hrl/presets`` (``quick``, ``full``) or any TOML path.
"""

from __future__ import annotations

import dataclasses
import json
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
    "STAGES",
    "CollectStage",
    "EvaluateStage",
    "Preset",
    "PretrainStage",
    "load_preset",
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


@dataclass(frozen=True)
class PretrainStage:
    """Behaviour cloning of L2, L3, L4 (see ``hrl pretrain``)."""

    epochs: int = 8
    seed: int = 0


@dataclass(frozen=True)
class FinetuneStage:
    """Online PPO (L2) and MAPPO (L3/L4) from the pretrained bundle (see ``hrl finetune``)."""

    updates: int = 4
    worlds_per_update: int = 2
    n_steps: Range = (15, 25)
    workers: int = 2
    eval_every: int = 2
    eval_worlds: int = 2
    validate_vs_l1: bool = False
    seed: int = 0


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


@dataclass(frozen=True)
class Preset:
    """A whole run: one section per stage."""

    name: str
    collect: CollectStage = field(default_factory=CollectStage)
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
    return Preset(name=name, **built)


def _section_classes() -> dict[str, type]:
    return {
        "collect": CollectStage,
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
        elif not isinstance(value, type(default)):
            raise ConfigError(f"[{key}].{name}: expected {type(default).__name__}, got {value!r}")
        converted[name] = value
    return cls(**converted)


StageFn = Callable[[Preset, Path, Console], dict[str, Any]]


def _collect(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.data.collect import CollectConfig, collect_worlds

    c = preset.collect
    config = CollectConfig(
        n_worlds=c.worlds,
        agents=c.agents,
        n_steps=c.n_steps,
        n_levels=c.levels,
        agents_per_level=c.agents_per_level,
        seed=c.seed,
        n_workers=c.workers,
    )
    manifest = collect_worlds(config, run / "collect")
    if manifest["summary"].get("done", 0) == 0:
        raise ConfigError(f"{run / 'collect'}: no world finished: {manifest['summary']}")
    return dict(manifest["summary"])


def _build(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.data.datasets import write_datasets

    report = write_datasets(run / "collect", run / "data")
    return {k: report[k] for k in ("macro_rows", "micro_rows") if k in report}


def _pretrain(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.config import TrainConfig
    from hrl.train.pretrain import PretrainConfig, pretrain

    config = PretrainConfig(
        data=run / "data",
        out=run / "pretrain",
        train=TrainConfig(epochs=preset.pretrain.epochs, seed=preset.pretrain.seed),
    )
    report = pretrain(config)
    return {"bundle": report["bundle"], "layers": report["layers"], "wall_s": report["wall_s"]}


def _finetune(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.train.finetune import FinetuneConfig, finetune

    f = preset.finetune
    config = FinetuneConfig(
        bundle=str(run / "pretrain" / "bundle.pt"),
        out=str(run / "finetune"),
        updates=f.updates,
        worlds_per_update=f.worlds_per_update,
        n_steps=f.n_steps,
        workers=f.workers,
        eval_every=f.eval_every,
        eval_worlds=f.eval_worlds,
        validate_vs_l1=f.validate_vs_l1,
        seed=f.seed,
    )
    report = finetune(config)
    return {k: report[k] for k in ("bundle", "updates", "worlds", "best_metric", "best_update")}


def _evaluate(preset: Preset, run: Path, console: Console) -> dict[str, Any]:
    from hrl.agent.hrl import CHECKPOINT_ENV
    from hrl.evaluate.report import write_report
    from hrl.evaluate.tournament import EvaluateConfig, run_evaluation

    e = preset.evaluate
    # Worker processes inherit the environment: the agent under test loads the trained bundle.
    os.environ[CHECKPOINT_ENV] = str(_trained_bundle(run))
    config = EvaluateConfig(
        agents=(HRL_AGENT, L1_AGENT),
        n_configs=e.configs,
        n_rotations=e.rotations,
        n_steps=e.n_steps,
        n_levels=e.levels,
        agents_per_level=e.agents_per_level,
        seed=e.seed,
        n_workers=e.workers,
    )
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


def run_pipeline(preset: Preset, run_dir: str | Path, *, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) every stage of ``preset`` in ``run_dir``; returns the stage record.

    Raises:
        ConfigError: ``run_dir`` was started with another preset.
    """
    console = console or Console()
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    record_path = run / "stages.json"
    preset_json = json.loads(json.dumps(dataclasses.asdict(preset)))
    record: dict[str, Any] = {"preset": preset_json, "stages": {}}
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record["preset"] != preset_json:
            raise ConfigError(f"{run}: was started with another preset; use another --out")
    atomic_write_json(record_path, record)
    for name, stage in STAGES.items():
        if record["stages"].get(name, {}).get("status") == "done":
            console.print(f"[dim]{name}: done earlier, skipped[/]")
            continue
        console.rule(f"{name}")
        start = time.monotonic()
        summary = stage(preset, run, console)
        record["stages"][name] = {"status": "done", "seconds": round(time.monotonic() - start, 1), **summary}
        atomic_write_json(record_path, record)
    return record
