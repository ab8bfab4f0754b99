"""The supervised training loop behind every behaviour-cloning trainer.

One loop for L2, L3 and L4: a :class:`Task` supplies the model, how to fit its normaliser and
the loss with its metrics. The loop does the rest:

- split by world (:func:`~hrl.train.datasets.split_by_world`), fit the normaliser on the
  training rows only;
- AdamW, optional cosine schedule (stepped per epoch), gradient-norm clipping;
- shuffling with a generator derived from ``(seed, epoch)``, so an epoch's order does not
  depend on anything before it;
- before training: the untrained model's validation metrics (epoch 0, the reference point);
- per epoch: training metrics (accumulated during the pass), validation metrics, early stopping
  on ``val/loss`` (the best weights are kept and returned);
- after every epoch: a complete checkpoint ``last.pt`` (model, optimiser, scheduler, best
  weights, counters, history, RNG states, config, data fingerprint) and, on improvement, the
  inference checkpoint ``best.pt`` (:func:`~hrl.train.checkpoint.save_model`);
- resume from ``last.pt`` continues to exactly the weights an uninterrupted run reaches;
- TensorBoard scalars ``train/<metric>``, ``val/<metric>``, ``train/lr`` per epoch; a tqdm bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hrl.config import TrainConfig, config_from_dict, config_to_dict
from hrl.errors import CheckpointError, ConfigError
from hrl.seeding import derive_seed
from hrl.train.checkpoint import (
    get_rng_state,
    load_checkpoint,
    load_state,
    model_entry,
    save_checkpoint,
    save_model,
    set_rng_state,
)
from hrl.train.datasets import TensorTable, split_by_world

__all__ = ["RESUMABLE_FIELDS", "BCResult", "Metrics", "Task", "fit"]

Table = TypeVar("Table", bound=TensorTable)
TableIn = TypeVar("TableIn", bound=TensorTable, contravariant=True)
Metrics = dict[str, tuple[float, float]]
"""Metric name -> (sum, count) over a batch; epoch values are sum / count over all batches."""

RESUMABLE_FIELDS = frozenset({"epochs", "progress", "log_dir", "checkpoint_dir", "num_threads"})
"""TrainConfig fields a resumed run may change (``epochs`` only with the constant schedule)."""


class Task(Protocol[TableIn]):
    """What a trainer tells the loop."""

    @property
    def kind(self) -> str:
        """Checkpoint kind, e.g. ``"bc/l2"``."""

    @property
    def model(self) -> nn.Module:
        """The model to train (trained in place)."""

    def fit_normaliser(self, train: TableIn) -> None:
        """Fit the model's feature normaliser on the training rows."""

    def loss(self, batch: TableIn) -> tuple[Tensor, Metrics]:
        """Scalar loss of a batch (to minimise) and its metrics (``"loss"`` included)."""


@dataclass
class BCResult(Generic[Table]):
    """What a trainer returns.

    Attributes:
        model: the model with the best validation weights, in eval mode (an interrupted run
            leaves the current weights in place).
        history: one dict per epoch: ``epoch`` and every ``train/...`` and ``val/...`` metric;
            the first row (epoch 0) holds the untrained model's ``val/...`` metrics.
        best_epoch: 1-based epoch of the best validation loss (0: none yet).
        best_val_loss: that loss.
        stopped_early: early stopping ended the run.
        interrupted: the run stopped at ``stop_after_epochs`` (resume it from ``checkpoint``).
        checkpoint: ``last.pt`` (None without ``checkpoint_dir``).
        best_checkpoint: ``best.pt`` (None without ``checkpoint_dir``).
    """

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_early: bool = False
    interrupted: bool = False
    checkpoint: Path | None = None
    best_checkpoint: Path | None = None


class _Meter:
    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, metrics: Metrics) -> None:
        for name, (total, count) in metrics.items():
            acc = self.sums.setdefault(name, [0.0, 0.0])
            acc[0] += total
            acc[1] += count

    def means(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}/{k}": (s / c if c > 0 else math.nan) for k, (s, c) in sorted(self.sums.items())}


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _schedule(cfg: TrainConfig) -> Callable[[int], float]:
    if cfg.lr_schedule == "cosine":
        return lambda epoch: 0.5 * (1.0 + math.cos(math.pi * min(epoch, cfg.epochs) / cfg.epochs))
    return lambda epoch: 1.0


def _resume_key(cfg: TrainConfig) -> dict[str, Any]:
    movable = RESUMABLE_FIELDS - ({"epochs"} if cfg.lr_schedule == "cosine" else set())
    return {k: v for k, v in config_to_dict(cfg).items() if k not in movable}


def _clone_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _evaluate(task: Task[Table], data: Table, batch_size: int) -> dict[str, float]:
    meter = _Meter()
    task.model.eval()
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            _, metrics = task.loss(data.select(torch.arange(start, min(start + batch_size, len(data)))))
            meter.add(metrics)
    return meter.means("val")


def fit(
    task: Task[Table],
    data: Table,
    cfg: TrainConfig,
    *,
    resume_from: str | Path | None = None,
    stop_after_epochs: int | None = None,
) -> BCResult[Table]:
    """Train ``task.model`` on ``data``; see the module docstring.

    Args:
        task: model, normaliser fitting and loss.
        data: the whole dataset (split here by world).
        cfg: the training config (written into every checkpoint).
        resume_from: a ``last.pt`` of the same task, config and data to continue from.
        stop_after_epochs: stop (as an interruption would) once this many epochs are done in total,
            after writing the checkpoint.
    """
    with _threads(cfg.num_threads):
        return _fit(task, data, cfg, resume_from, stop_after_epochs)


def _fit(
    task: Task[Table], data: Table, cfg: TrainConfig, resume_from: str | Path | None, stop_after: int | None
) -> BCResult[Table]:
    model = task.model
    train_idx, val_idx = split_by_world(data.world_id, cfg.val_fraction, cfg.seed)
    train, val = data.select(train_idx), data.select(val_idx)
    task.fit_normaliser(train)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _schedule(cfg))
    fingerprint = {
        "rows": len(data),
        "train_rows": len(train),
        "val_rows": len(val),
        "val_index_sum": int(val_idx.sum()),
    }
    result: BCResult[Table] = BCResult(model=model)
    best_state = _clone_state(model)
    epoch = step = bad_epochs = 0
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from, kind=task.kind)
        where = str(resume_from)
        try:
            saved_cfg = config_from_dict(TrainConfig, ckpt["config"])
        except (ConfigError, KeyError) as exc:
            raise CheckpointError(f"{where}: unreadable training config: {exc}") from exc
        if _resume_key(saved_cfg) != _resume_key(cfg):
            raise CheckpointError(f"{where}: written with another training config; cannot resume")
        if ckpt["data"] != fingerprint:
            raise CheckpointError(f"{where}: written for other data ({ckpt['data']} vs {fingerprint})")
        load_state(model, ckpt["models"]["model"], where=where)
        best_state = ckpt["best_models"]["model"]
        try:
            optimiser.load_state_dict(ckpt["optimisers"]["model"])
            scheduler.load_state_dict(ckpt["schedulers"]["model"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{where}: optimiser/scheduler state does not match: {exc}") from exc
        counters = ckpt["counters"]
        epoch, step, bad_epochs = counters["epoch"], counters["step"], counters["bad_epochs"]
        result.best_epoch, result.best_val_loss = counters["best_epoch"], ckpt["best_val_loss"]
        result.stopped_early = counters["stopped_early"]
        result.history = list(ckpt["history"])
        set_rng_state(ckpt["rng"])

    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    writer = _writer(cfg, purge_step=epoch + 1 if resume_from is not None else 0)
    if resume_from is None:
        untrained = {"epoch": 0.0, **_evaluate(task, val, cfg.batch_size)}
        result.history.append(untrained)
        if writer is not None:
            for key, value in untrained.items():
                if key != "epoch":
                    writer.add_scalar(key, value, 0)
    bar = tqdm(total=cfg.epochs, initial=epoch, disable=not cfg.progress, desc=task.kind, leave=False)
    try:
        while epoch < cfg.epochs and not result.stopped_early:
            if stop_after is not None and epoch >= stop_after:
                result.interrupted = True
                break
            generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "shuffle", epoch))
            order = torch.randperm(len(train), generator=generator)
            meter = _Meter()
            model.train()
            for start in range(0, len(train), cfg.batch_size):
                loss, metrics = task.loss(train.select(order[start : start + cfg.batch_size]))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimiser.step()
                meter.add(metrics)
                step += 1
            lr = optimiser.param_groups[0]["lr"]
            scheduler.step()
            epoch += 1
            row = {
                "epoch": float(epoch),
                "train/lr": lr,
                **meter.means("train"),
                **_evaluate(task, val, cfg.batch_size),
            }
            result.history.append(row)
            improved = row["val/loss"] < result.best_val_loss - cfg.min_delta
            if improved:
                result.best_val_loss, result.best_epoch, bad_epochs = row["val/loss"], epoch, 0
                best_state = _clone_state(model)
            else:
                bad_epochs += 1
            result.stopped_early = bad_epochs >= cfg.patience
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key, value, epoch)
                writer.flush()
            bar.update(1)
            bar.set_postfix(train=f"{row['train/loss']:.4g}", val=f"{row['val/loss']:.4g}")
            if ckpt_dir is not None:
                if improved:
                    result.best_checkpoint = save_model(
                        model,
                        ckpt_dir / "best.pt",
                        extra={"epoch": epoch, "val": row, "config": config_to_dict(cfg)},
                    )
                class_name, model_config = model_entry(model)
                result.checkpoint = save_checkpoint(
                    ckpt_dir / "last.pt",
                    {
                        "kind": task.kind,
                        "models": {"model": model.state_dict()},
                        "model_classes": {"model": class_name},
                        "model_configs": {"model": model_config},
                        "optimisers": {"model": optimiser.state_dict()},
                        "schedulers": {"model": scheduler.state_dict()},
                        "best_models": {"model": best_state},
                        "counters": {
                            "epoch": epoch,
                            "step": step,
                            "best_epoch": result.best_epoch,
                            "bad_epochs": bad_epochs,
                            "stopped_early": result.stopped_early,
                        },
                        "best_val_loss": result.best_val_loss,
                        "history": result.history,
                        "rng": get_rng_state(),
                        "config": config_to_dict(cfg),
                        "data": fingerprint,
                    },
                )
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if ckpt_dir is not None and result.checkpoint is None and (ckpt_dir / "last.pt").exists():
        result.checkpoint = ckpt_dir / "last.pt"
    if ckpt_dir is not None and result.best_checkpoint is None and (ckpt_dir / "best.pt").exists():
        result.best_checkpoint = ckpt_dir / "best.pt"
    if result.interrupted:
        return result
    model.load_state_dict(best_state)
    model.eval()
    return result


def _writer(cfg: TrainConfig, purge_step: int) -> Any:
    if cfg.log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(cfg.log_dir, purge_step=purge_step)
