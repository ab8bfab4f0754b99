"""Behaviour cloning of L2, L3 and L4: losses, per-head metrics and the public trainers.

All three run through :func:`hrl.train.loop.fit` (split by world, early stopping, complete
checkpoints, exact resume, TensorBoard, progress bar). Metrics (each under ``train/`` and
``val/``; normalised units throughout):

- **L2** (:func:`train_l2_bc`): masked regression of the deterministic goal. Quantity components
  are trained on every tradeable side; a price component only on days that side traded (the
  label of a day without trade is a placeholder 0). Metrics per component: ``q_buy/mae_zero``,
  ``q_buy/mae_nonzero`` (days whose label is 0 / > 0), ``p_buy/mae_traded``, the same for
  ``sell``, and ``loss``.
- **L3** (:func:`train_l3_bc`): on labels projected into L1's box (the expert's action after
  L1, :func:`hrl.train.adapters.project_expert_actions`): cross-entropy of accept/counter/end
  (label rows whose kind the kind mask forbids are skipped) + delivery-day cross-entropy on
  counter-offers + MSE of the Beta means of the quantity and price fractions (where defined).
  Actions are inside the box by construction, so no safety regulariser is needed. Metrics:
  ``kind/accuracy``, ``kind/recall_<kind>``, ``kind/ce``, ``day/accuracy``, ``day/ce``,
  ``fraction/mse``, ``fraction/mae_q``, ``fraction/mae_p``.
- **L4** (:func:`train_l4_bc`): regression of the deterministic alpha onto the target of
  :func:`hrl.train.adapters.thread_tensors_from_micro` (the *cap-sharing teacher*: the weights
  with which :func:`hrl.models.box.thread_caps` leaves room for the projected expert quantities
  of the round's counter-offers on one day). Metrics: ``alpha/mae`` and ``alpha/top1`` (the
  thread with the largest target gets the largest alpha, over rows with two or more targets).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from hrl.config import L2Config, L3Config, L4Config, TrainConfig
from hrl.models.l2 import GOAL_NAMES, L2Manager
from hrl.models.l3 import COUNTER, KINDS, L3Executor
from hrl.models.l4 import L4Coordinator
from hrl.seeding import seed_everything
from hrl.train.datasets import MacroTensors, MicroTensors, ThreadTensors
from hrl.train.loop import BCResult, Metrics, fit

__all__ = ["L2Task", "L3Task", "L4Task", "train_l2_bc", "train_l3_bc", "train_l4_bc"]


def _masked_mean(values: Tensor, mask: Tensor) -> tuple[Tensor, tuple[float, float]]:
    """Mean of ``values`` where ``mask`` (0 when empty), and its (sum, count) metric."""
    total = (values * mask).sum()
    count = mask.sum()
    return total / count.clamp(min=1), (float(total.detach()), float(count))


class L2Task:
    """Masked goal regression for :class:`L2Manager` (see the module docstring)."""

    kind = "bc/l2"

    def __init__(self, model: L2Manager, cfg: TrainConfig) -> None:
        self.model, self.cfg = model, cfg

    def fit_normaliser(self, train: MacroTensors) -> None:
        self.model.normaliser.update(train.state, train.state_mask)

    def loss(self, batch: MacroTensors) -> tuple[Tensor, Metrics]:
        out = self.model(batch.state, batch.state_mask, batch.profile, batch.side_mask)
        pred, goal, side = out.deterministic(), batch.goal, batch.side_mask
        traded = torch.stack([goal[:, 0], goal[:, 0], goal[:, 2], goal[:, 2]], 1) > 0
        is_q = self.model.is_quantity
        weight = side * torch.where(is_q, self.cfg.quantity_weight, self.cfg.price_weight * traded)
        sq = (pred - goal).square()
        loss = (weight * sq).sum() / (weight > 0).sum().clamp(min=1)
        n = float(len(goal))
        metrics: Metrics = {"loss": (float(loss.detach()) * n, n)}
        err = (pred - goal).abs().detach()
        for c, name in enumerate(GOAL_NAMES):
            if c in (0, 2):
                _, metrics[f"{name}/mae_zero"] = _masked_mean(err[:, c], side[:, c] & (goal[:, c] == 0))
                _, metrics[f"{name}/mae_nonzero"] = _masked_mean(err[:, c], side[:, c] & (goal[:, c] > 0))
            else:
                _, metrics[f"{name}/mae_traded"] = _masked_mean(err[:, c], side[:, c] & traded[:, c])
        return loss, metrics


class L3Task:
    """Kind/day classification + fraction regression for :class:`L3Executor` on box labels."""

    kind = "bc/l3"

    def __init__(self, model: L3Executor, cfg: TrainConfig) -> None:
        self.model, self.cfg = model, cfg

    def fit_normaliser(self, train: MicroTensors) -> None:
        self.model.normaliser.update(
            torch.cat([train.goal, train.baseline, train.context, train.caps, train.prices], -1)
        )

    def loss(self, batch: MicroTensors) -> tuple[Tensor, Metrics]:
        cfg = self.cfg
        out = self.model(*batch.inputs())
        kind_ok = batch.kind_mask.gather(1, batch.kind.unsqueeze(1)).squeeze(1)
        ce_kind, m_kind = _masked_mean(-out.kind.log_prob_safe(batch.kind), kind_ok)
        counter = batch.kind == COUNTER
        day_ok = counter & batch.day_mask.gather(1, batch.delivery.unsqueeze(1)).squeeze(1)
        ce_day, m_day = _masked_mean(-out.day.log_prob_safe(batch.delivery), day_ok)
        mean = out.fraction.mode()
        fmask = batch.fraction_mask
        frac_sq, m_frac = _masked_mean((mean - batch.fraction).square(), fmask)
        loss = cfg.kind_weight * ce_kind + cfg.day_weight * ce_day + cfg.fraction_weight * frac_sq
        n = float(len(batch.kind))
        kind_pred, day_pred = out.kind.mode(), out.day.mode()
        err = (mean - batch.fraction).abs().detach()
        ones = torch.ones_like(counter)
        metrics: Metrics = {
            "loss": (float(loss.detach()) * n, n),
            "kind/ce": m_kind,
            "day/ce": m_day,
            "fraction/mse": m_frac,
            "kind/accuracy": _masked_mean((kind_pred == batch.kind).float(), ones)[1],
            "day/accuracy": _masked_mean((day_pred == batch.delivery).float(), day_ok)[1],
            "fraction/mae_q": _masked_mean(err[:, 0], fmask[:, 0])[1],
            "fraction/mae_p": _masked_mean(err[:, 1], fmask[:, 1])[1],
        }
        for code, name in enumerate(KINDS):
            metrics[f"kind/recall_{name}"] = _masked_mean((kind_pred == code).float(), batch.kind == code)[1]
        return loss, metrics


class L4Task:
    """Regression of alpha onto the teacher's target for :class:`L4Coordinator`."""

    kind = "bc/l4"

    def __init__(self, model: L4Coordinator, cfg: TrainConfig) -> None:
        self.model, self.cfg = model, cfg

    def fit_normaliser(self, train: ThreadTensors) -> None:
        self.model.normaliser.update(train.threads, train.thread_mask)

    def loss(self, batch: ThreadTensors) -> tuple[Tensor, Metrics]:
        out = self.model(batch.threads, batch.thread_mask)
        alpha = out.deterministic()
        loss, _ = _masked_mean((alpha - batch.target).square(), batch.target_mask)
        n = float(len(batch.target))
        ranked = batch.target_mask.sum(1) >= 2
        low = torch.finfo(alpha.dtype).min
        pred_top = torch.where(batch.target_mask, alpha, low).argmax(1)
        true_top = torch.where(batch.target_mask, batch.target, low).argmax(1)
        metrics: Metrics = {
            "loss": (float(loss.detach()) * n, n),
            "alpha/mae": _masked_mean((alpha - batch.target).abs().detach(), batch.target_mask)[1],
            "alpha/top1": _masked_mean((pred_top == true_top).float(), ranked)[1],
        }
        return loss, metrics


def train_l2_bc(
    macro_ds: MacroTensors,
    cfg: TrainConfig,
    model_config: L2Config | None = None,
    *,
    resume_from: str | Path | None = None,
    stop_after_epochs: int | None = None,
) -> BCResult[MacroTensors]:
    """Behaviour cloning of the L2 manager on macro samples (see the module docstring).

    ``resume_from`` continues an interrupted run from its ``last.pt``; ``stop_after_epochs``
    interrupts a run after that many epochs (for tests and time-boxed sessions).
    """
    seed_everything(cfg.seed)
    model = L2Manager(model_config)
    macro_ds.validate(W=model.config.history_days + 1, F=model.config.state_dim, H=model.config.horizon_bins)
    return fit(
        L2Task(model, cfg), macro_ds, cfg, resume_from=resume_from, stop_after_epochs=stop_after_epochs
    )


def train_l3_bc(
    micro_ds: MicroTensors,
    cfg: TrainConfig,
    model_config: L3Config | None = None,
    *,
    resume_from: str | Path | None = None,
    stop_after_epochs: int | None = None,
) -> BCResult[MicroTensors]:
    """Behaviour cloning of the L3 executor on micro samples (see the module docstring)."""
    seed_everything(cfg.seed)
    model = L3Executor(model_config)
    micro_ds.validate(E=model.config.context_dim, D=model.config.n_days)
    return fit(
        L3Task(model, cfg), micro_ds, cfg, resume_from=resume_from, stop_after_epochs=stop_after_epochs
    )


def train_l4_bc(
    thread_ds: ThreadTensors,
    cfg: TrainConfig,
    model_config: L4Config | None = None,
    *,
    resume_from: str | Path | None = None,
    stop_after_epochs: int | None = None,
) -> BCResult[ThreadTensors]:
    """Behaviour cloning of the L4 coordinator on thread sets with the cap-sharing teacher target
    (:func:`hrl.train.adapters.thread_tensors_from_micro`)."""
    seed_everything(cfg.seed)
    model = L4Coordinator(model_config)
    thread_ds.validate(X=model.config.thread_dim)
    return fit(
        L4Task(model, cfg), thread_ds, cfg, resume_from=resume_from, stop_after_epochs=stop_after_epochs
    )
