"""``hrl pretrain``: behaviour cloning of L2, L3 and L4 on the samples of ``hrl build``, written as
one checkpoint bundle for ``LitaAgentHRL``.

Reads ``DATA/macro.parquet`` (L2) and ``DATA/micro.parquet`` (L3, and L4 through
:func:`~hrl.train.adapters.thread_tensors_from_micro`), prepares every requested layer's tensors
first (so a layer that cannot be trained -- e.g. L3/L4 while ``micro.parquet`` has null
``baseline_*`` columns -- fails with a :class:`~hrl.errors.ConfigError` before any training),
then trains each layer with :func:`~hrl.train.bc.train_l2_bc` / ``train_l3_bc`` /
``train_l4_bc`` (validation split by world, early stopping, TensorBoard, complete checkpoints).

Output layout (``OUT``)::

    l2/last.pt, l2/best.pt      the trainer's checkpoints (same for l3/, l4/)
    tensorboard/l2/ ...         TensorBoard scalars per layer
    bundle.pt                   the agent's checkpoint bundle (hrl.train.bundle)
    metrics.json                per layer: rows, best epoch, untrained and best validation metrics;
                                ``heldout``: the held-out metrics per component next to naive
                                baselines (:func:`hrl.train.bc_report.bc_report`); ``experts``:
                                the agent-worlds kept by ``min_expert_score`` (None: all)

Re-running the same command resumes: a layer with a ``last.pt`` continues from it (a finished
layer is not trained again; a larger ``--epochs`` trains on), and the bundle and metrics are
rewritten.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from hrl.config import L2Config, L3Config, L4Config, TrainConfig, config_to_dict
from hrl.data.schema import check_version
from hrl.errors import ConfigError
from hrl.io import atomic_write_json
from hrl.models.l2 import L2Manager
from hrl.models.l3 import L3Executor
from hrl.models.l4 import L4Coordinator
from hrl.train.adapters import macro_tensors_from_frame, micro_tensors_from_frame, thread_tensors_from_micro
from hrl.train.bc import train_l2_bc, train_l3_bc, train_l4_bc
from hrl.train.bc_report import bc_report
from hrl.train.bundle import Bundle, save_bundle
from hrl.train.experts import select_experts
from hrl.train.goals import l2_goal_frame
from hrl.train.loop import BCResult

__all__ = ["LAYERS", "PretrainConfig", "pretrain"]

LAYERS = ("l2", "l3", "l4")


@dataclass(frozen=True)
class PretrainConfig:
    """One ``hrl pretrain`` run.

    Attributes:
        data: folder with ``macro.parquet`` and ``micro.parquet`` (from ``hrl build``).
        out: output folder (see the module docs); the same folder resumes.
        layers: which layers to train (``l4`` needs ``l3``'s data, not its weights).
        train: the training config shared by every layer (``checkpoint_dir`` and ``log_dir`` are
            set per layer under ``out``).
        l2, l3, l4: model sizes.
        min_expert_score: clone only the agent-worlds whose final score is at least this
            (:func:`hrl.train.experts.select_experts`); None clones every agent.
    """

    data: Path
    out: Path
    layers: tuple[str, ...] = LAYERS
    train: TrainConfig = field(default_factory=TrainConfig)
    l2: L2Config = field(default_factory=L2Config)
    l3: L3Config = field(default_factory=L3Config)
    l4: L4Config = field(default_factory=L4Config)
    min_expert_score: float | None = None

    def __post_init__(self) -> None:
        unknown = [layer for layer in self.layers if layer not in LAYERS]
        if unknown or not self.layers:
            raise ConfigError(f"layers: choose from {LAYERS}, got {self.layers}")
        if "l2" not in self.layers:
            raise ConfigError("layers: the bundle needs l2 (the agent's goal setter)")
        if "l4" in self.layers and "l3" not in self.layers:
            raise ConfigError("layers: l4 shares the caps of L3's counter-offers; train l3 with it")


def _read(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise ConfigError(f"{path}: not found (run `hrl build` first)")
    return check_version(pl.read_parquet(path), str(path))


def _summary(result: BCResult[Any], rows: int) -> dict[str, Any]:
    history = result.history
    best = next((row for row in history if int(row["epoch"]) == result.best_epoch), {})
    untrained = next((row for row in history if int(row["epoch"]) == 0), {})

    def clean(row: dict[str, float], prefix: str) -> dict[str, float | None]:
        return {
            k[len(prefix) :]: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in row.items()
            if k.startswith(prefix)
        }

    return {
        "rows": rows,
        "epochs_run": int(history[-1]["epoch"]) if history else 0,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
        "untrained_val": clean(untrained, "val/"),
        "best_val": clean(best, "val/"),
        "best_train": clean(best, "train/"),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
    }


def pretrain(config: PretrainConfig) -> dict[str, Any]:
    """Train the requested layers and write ``bundle.pt`` and ``metrics.json``; returns the metrics.

    Raises:
        ConfigError: missing tables, or a layer's data is not usable (e.g. null L1 baselines in
            ``micro.parquet`` for L3/L4).
    """
    start = time.perf_counter()
    out = Path(config.out)
    macro = _read(Path(config.data) / "macro.parquet")
    micro = _read(Path(config.data) / "micro.parquet") if "l3" in config.layers else None
    experts = None
    if config.min_expert_score is not None:
        macro, micro, experts = select_experts(macro, micro, config.min_expert_score)
    out.mkdir(parents=True, exist_ok=True)
    trainers = {
        "l2": (train_l2_bc, config.l2),
        "l3": (train_l3_bc, config.l3),
        "l4": (train_l4_bc, config.l4),
    }
    models: dict[str, L2Manager | L3Executor | L4Coordinator] = {}
    metrics: dict[str, Any] = {}
    datasets: dict[str, Any] = {"l2": macro_tensors_from_frame(macro, config.l2)}
    for layer in [x for x in LAYERS if x in config.layers]:
        if layer == "l3":
            # L3's goal input is the trained L2's goal for the day (as in play): no leakage.
            goals = l2_goal_frame(models["l2"], macro)  # type: ignore[arg-type]
            assert micro is not None  # read above whenever l3 is a layer
            try:
                datasets["l3"] = micro_tensors_from_frame(
                    micro,
                    macro,
                    config.l3,
                    goals=goals,
                    alpha_min=config.l4.alpha_min,
                )
            except ConfigError as error:
                raise ConfigError(f"L3/L4 pretraining needs micro samples with L1's box: {error}") from error
            if "l4" in config.layers:
                datasets["l4"] = thread_tensors_from_micro(datasets["l3"])
        cfg = replace(config.train, checkpoint_dir=str(out / layer), log_dir=str(out / "tensorboard" / layer))
        last = out / layer / "last.pt"
        trainer, model_config = trainers[layer]
        result = trainer(
            datasets[layer],
            cfg,
            model_config,
            resume_from=last if last.is_file() else None,  # type: ignore[operator]
        )
        models[layer] = result.model
        metrics[layer] = _summary(result, len(datasets[layer]))
    bundle = Bundle(
        l2=models["l2"],  # type: ignore[arg-type]
        l3=models.get("l3"),  # type: ignore[arg-type]
        l4=models.get("l4"),  # type: ignore[arg-type]
        extra={
            "source": "pretrain",
            "trained": list(config.layers),
            "data": str(config.data),
            "min_expert_score": config.min_expert_score,
            "metrics": {
                k: {"best_epoch": v["best_epoch"], "best_val": v["best_val"]} for k, v in metrics.items()
            },
            "train_config": config_to_dict(config.train),
        },
    )
    save_bundle(bundle, out / "bundle.pt")
    report = {
        "data": str(config.data),
        "out": str(out),
        "bundle": str(out / "bundle.pt"),
        "layers": list(config.layers),
        "train_config": config_to_dict(config.train),
        "experts": experts,
        "metrics": metrics,
        "heldout": bc_report(
            config.train,
            datasets["l2"],
            models["l2"],  # type: ignore[arg-type]
            datasets.get("l3"),
            models.get("l3"),  # type: ignore[arg-type]
            models.get("l4"),  # type: ignore[arg-type]
        ),
        "wall_s": round(time.perf_counter() - start, 2),
    }
    atomic_write_json(out / "metrics.json", report)
    return report
