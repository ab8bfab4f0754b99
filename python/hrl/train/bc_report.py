"""Held-out behaviour-cloning metrics per component, next to naive baselines.

Computed on the validation worlds of the BC split (:func:`~hrl.train.datasets.split_by_world`
with the training config's ``val_fraction`` and ``seed``: the rows the trainers held out), with
L3's goal input from the trained L2 (as in play). Every predictor is scored on the same rows:

- ``l3_l4``: the trained L3's deterministic action, composed with the trained L4's alpha exactly
  as in play (:func:`hrl.models.box.decode_round`: alpha shares a day's cap among the round's
  counter-offers);
- ``l3``: the same L3 without L4 (alpha = 1 on every thread: an equal split);
- ``l1_baseline``: the L1 baseline's action (its kind, delivery day and offer; alpha = 1);
- ``train_mean``: the training rows' most frequent kind and counter day, mean fractions and mean
  teacher alpha.

Metrics on the micro rows (labels: the L1-projected expert action, :mod:`hrl.train.adapters`):
``kind/accuracy`` (all rows); on label counter-offers: ``day/accuracy``, ``fraction/mae_q`` and
``fraction/mae_p`` (where the label fraction is defined; the baseline's fractions are its offer
encoded in the label's box), ``share/mae`` (each thread's share ``alpha_k / sum_j alpha_j`` of its
day's cap against the teacher's, over days with two or more counter-offers: ``share/rows``), and, where
the predictor also counters, ``offer/mae_q`` (/ n_lines) and ``offer/mae_p`` (/ trading price) of
the composed integer offer against the projected expert offer. L2: ``goal/<component>`` mean
absolute error (quantities on tradeable sides, prices on traded days, as the L2 loss) for the
trained L2 and the training mean (L1 sets no goal, so L2 has no L1 baseline).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hrl.config import TrainConfig
from hrl.features import HORIZON
from hrl.models.box import decode_round, encode, thread_caps
from hrl.models.l2 import GOAL_NAMES, L2Manager
from hrl.models.l3 import ACCEPT, COUNTER, L3Executor
from hrl.models.l4 import L4Coordinator, thread_features
from hrl.train.datasets import MacroTensors, MicroTensors, split_by_world

__all__ = ["PREDICTORS", "Prediction", "bc_report", "compose_offers", "goal_report", "micro_report"]

PREDICTORS = ("l3_l4", "l3", "l1_baseline", "train_mean")
"""The predictors :func:`micro_report` scores (see the module docstring)."""


class Prediction(NamedTuple):
    """One predictor's action on ``N`` rows: ``kind`` / ``delivery`` int64 ``[N]``, ``fraction``
    ``[N, 2]`` (quantity, price), ``alpha`` ``[N]``; ``offer`` ``[N, 3]`` (q, offset, p in units)
    when the predictor gives its offer directly (None: composed by :func:`compose_offers`)."""

    kind: NDArray[np.int64]
    delivery: NDArray[np.int64]
    fraction: NDArray[np.float64]
    alpha: NDArray[np.float64]
    offer: NDArray[np.float64] | None = None


def _np(x: Tensor) -> NDArray[Any]:
    return x.detach().cpu().numpy()


def _partner_offer(micro: MicroTensors) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``(quantity [N], offset [N])`` of each row's last history offer (what an accept accepts)."""
    lengths = _np(micro.history_mask.sum(1)).astype(np.int64)
    n = len(lengths)
    if micro.history.shape[1] == 0:
        return np.zeros(n), np.zeros(n, np.int64)
    last = _np(micro.history)[np.arange(n), np.maximum(lengths - 1, 0)].astype(np.float64)
    lines = _np(micro.box[:, 0]).astype(np.float64)
    quantity = np.where(lengths > 0, np.rint(last[:, 0] * lines), 0.0)
    return quantity, np.where(lengths > 0, np.rint(last[:, 1] * HORIZON), 0).astype(np.int64)


def compose_offers(micro: MicroTensors, pred: Prediction) -> NDArray[np.float64]:
    """``[N, 3]`` integer (q, offset, p) of each counter row as play composes it (one
    :func:`~hrl.models.box.decode_round` over all rows, each round by ``micro.group_id``); zeros on
    non-counter rows and where no room is left."""
    accepted, accepted_offset = _partner_offer(micro)
    lines = _np(micro.box[:, 0]).astype(np.float64)
    q, p = decode_round(
        kind=pred.kind,
        delivery=pred.delivery,
        fraction=pred.fraction,
        alpha=pred.alpha,
        seller=_np(micro.context[:, 2]) > 0.5,
        caps=_np(micro.caps).astype(np.float64) * lines[:, None],
        box=_np(micro.box[:, 2:5]).astype(np.float64),
        accepted=accepted,
        accepted_offset=accepted_offset,
        group=_np(micro.group_id),
    )
    counter = (pred.kind == COUNTER) & (q > 0)
    out: NDArray[np.float64] = np.stack([q, pred.delivery, p], 1).astype(np.float64) * counter[:, None]
    return out


def _label_caps(micro: MicroTensors) -> NDArray[np.float64]:
    """``[N]`` the cap each label counter-offer's quantity fraction is relative to (units)."""
    kind, day = _np(micro.kind), _np(micro.delivery)
    accepted, accepted_offset = _partner_offer(micro)
    lines = _np(micro.box[:, 0]).astype(np.float64)
    offset = np.clip(np.where(kind == COUNTER, day, accepted_offset), 0, micro.caps.shape[1] - 1)
    caps = _np(micro.caps).astype(np.float64) * lines[:, None]
    return thread_caps(
        _np(micro.group_id),
        (_np(micro.context[:, 2]) > 0.5).astype(np.int64),
        offset,
        kind == COUNTER,
        _np(micro.alpha).astype(np.float64),
        caps[np.arange(len(kind)), offset],
        np.where(kind == ACCEPT, accepted, 0.0),
    )


def model_prediction(micro: MicroTensors, l3: L3Executor, l4: L4Coordinator | None) -> Prediction:
    """The deterministic L3 action on every row, with L4's alpha per round (1 without L4)."""
    with torch.inference_mode():
        action = l3(*micro.inputs()).deterministic()
        alpha = torch.ones(len(micro))
        if l4 is not None:
            feats = thread_features(
                micro.goal, micro.baseline, micro.context, micro.history, micro.history_mask
            )
            for group in torch.unique(micro.group_id):
                rows = (micro.group_id == group).nonzero().squeeze(-1)
                out = l4(feats[rows].unsqueeze(0), torch.ones(1, len(rows), dtype=torch.bool))
                alpha[rows] = out.deterministic()[0]
    return Prediction(
        _np(action.kind),
        _np(action.delivery),
        _np(action.fraction).astype(np.float64),
        _np(alpha).astype(float),
    )


def baseline_prediction(micro: MicroTensors) -> Prediction:
    """The L1 baseline's action: its kind, day and offer; its fractions are that offer encoded
    in the label's box (so they compare with the label fractions)."""
    lines, tp, q_lo, p_lo, p_hi = (_np(c).astype(np.float64) for c in micro.box.T)
    b = _np(micro.baseline).astype(np.float64)
    q, day, p = np.rint(b[:, 0] * lines), np.rint(b[:, 1] * HORIZON).astype(np.int64), np.rint(b[:, 2] * tp)
    fraction, _ = encode(q, p, _label_caps(micro), q_lo, p_lo, p_hi)
    kind = _np(micro.baseline_kind)
    offer = np.stack([q, day, p], 1) * (kind == COUNTER)[:, None]
    return Prediction(kind, day, fraction, np.ones(len(kind)), offer)


def mean_prediction(micro: MicroTensors, train: MicroTensors) -> Prediction:
    """The training rows' most frequent kind and counter day, mean fractions and mean alpha."""
    kind = int(torch.bincount(train.kind, minlength=3).argmax())
    counter = train.kind == COUNTER
    day = int(torch.bincount(train.delivery[counter], minlength=1).argmax()) if counter.any() else 0
    fm = train.fraction_mask.float()
    fraction = ((train.fraction * fm).sum(0) / fm.sum(0).clamp(min=1)).double().numpy()
    alpha = float(train.alpha[counter].mean()) if counter.any() else 1.0
    n = len(micro)
    return Prediction(
        np.full(n, kind, np.int64), np.full(n, day, np.int64), np.tile(fraction, (n, 1)), np.full(n, alpha)
    )


def _shares(micro: MicroTensors, alpha: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``[N]`` each label counter row's share of its (round, side, day) weight, and where the day
    has two or more label counter rows (elsewhere the share is 1 whatever alpha is)."""
    counter = _np(micro.kind) == COUNTER
    keys = np.stack([_np(micro.group_id), _np(micro.context[:, 2]) > 0.5, _np(micro.delivery)], 1)
    _, key = np.unique(keys.astype(np.int64), axis=0, return_inverse=True)
    key = key.reshape(-1)
    weight = np.bincount(key, weights=np.where(counter, alpha, 0.0))[key]
    many = np.bincount(key, weights=counter.astype(float))[key] >= 2
    return np.divide(alpha, weight, out=np.zeros(len(alpha)), where=weight > 0), counter & many


def _mean(x: NDArray[Any], mask: NDArray[np.bool_]) -> float | None:
    return float(x[mask].mean()) if mask.any() else None


def micro_report(micro: MicroTensors, pred: Prediction) -> dict[str, float | None]:
    """One predictor's metrics on ``micro``'s rows (see the module docstring)."""
    kind, delivery = _np(micro.kind), _np(micro.delivery)
    counter = kind == COUNTER
    fmask = _np(micro.fraction_mask)
    ferr = np.abs(pred.fraction - _np(micro.fraction))
    offer = pred.offer if pred.offer is not None else compose_offers(micro, pred)
    label = _np(micro.offer).astype(np.float64)
    both = counter & (pred.kind == COUNTER) & (offer[:, 0] > 0)
    lines, tp = _np(micro.box[:, 0]).astype(float), _np(micro.box[:, 1]).astype(float)
    share, shared = _shares(micro, pred.alpha)
    label_share, _ = _shares(micro, _np(micro.alpha).astype(np.float64))
    return {
        "rows": float(len(kind)),
        "counter_rows": float(counter.sum()),
        "kind/accuracy": _mean((pred.kind == kind).astype(float), np.ones(len(kind), bool)),
        "day/accuracy": _mean((pred.delivery == delivery).astype(float), counter),
        "fraction/mae_q": _mean(ferr[:, 0], fmask[:, 0]),
        "fraction/mae_p": _mean(ferr[:, 1], fmask[:, 1]),
        "share/rows": float(shared.sum()),
        "share/mae": _mean(np.abs(share - label_share), shared),
        "offer/rows": float(both.sum()),
        "offer/mae_q": _mean(np.abs(offer[:, 0] - label[:, 0]) / lines, both),
        "offer/mae_p": _mean(np.abs(offer[:, 2] - label[:, 2]) / tp, both),
    }


def goal_report(
    macro: MacroTensors, train: MacroTensors, l2: L2Manager
) -> dict[str, dict[str, float | None]]:
    """``{"l2": ..., "train_mean": ...}``: per goal component, the mean absolute error on
    ``macro``'s rows (quantities where the side is tradeable, prices on traded days)."""
    goal, side = _np(macro.goal), _np(macro.side_mask)
    traded = np.stack([goal[:, 0], goal[:, 0], goal[:, 2], goal[:, 2]], 1) > 0
    used = np.where([name.startswith("q") for name in GOAL_NAMES], side, side & traded)
    tg, ts = _np(train.goal), _np(train.side_mask)
    t_traded = np.stack([tg[:, 0], tg[:, 0], tg[:, 2], tg[:, 2]], 1) > 0
    t_used = np.where([name.startswith("q") for name in GOAL_NAMES], ts, ts & t_traded)
    mean = np.array(
        [tg[t_used[:, c], c].mean() if t_used[:, c].any() else 0.0 for c in range(len(GOAL_NAMES))]
    )
    with torch.inference_mode():
        pred = _np(l2(macro.state, macro.state_mask, macro.profile, macro.side_mask).deterministic())
    out: dict[str, dict[str, float | None]] = {}
    for name, guess in (("l2", pred), ("train_mean", np.broadcast_to(mean, goal.shape))):
        err = np.abs(guess - goal)
        row: dict[str, float | None] = {"rows": float(len(goal))}
        for c, g in enumerate(GOAL_NAMES):
            row[f"goal/{g}"] = _mean(err[:, c], used[:, c])
        out[name] = row
    return out


def bc_report(
    cfg: TrainConfig,
    macro: MacroTensors,
    l2: L2Manager,
    micro: MicroTensors | None = None,
    l3: L3Executor | None = None,
    l4: L4Coordinator | None = None,
) -> dict[str, Any]:
    """Held-out metrics of every predictor (see the module docstring), on the validation worlds
    of ``cfg``'s split. Returns ``{"l2": {predictor: metrics}, "l3": {predictor: metrics}}`` (``l3``
    only with ``micro`` and ``l3``; ``l3_l4`` only with ``l4``) and the held-out world ids."""
    train_idx, val_idx = split_by_world(macro.world_id, cfg.val_fraction, cfg.seed)
    report: dict[str, Any] = {
        "l2": goal_report(macro.select(val_idx), macro.select(train_idx), l2),
        "l2_val_worlds": sorted(int(w) for w in torch.unique(macro.world_id[val_idx])),
    }
    if micro is None or l3 is None:
        return report
    train_idx, val_idx = split_by_world(micro.world_id, cfg.val_fraction, cfg.seed)
    val, train = micro.select(val_idx), micro.select(train_idx)
    preds = {
        "l3": model_prediction(val, l3, None),
        "l1_baseline": baseline_prediction(val),
        "train_mean": mean_prediction(val, train),
    }
    if l4 is not None:
        preds = {"l3_l4": model_prediction(val, l3, l4), **preds}
    report["l3"] = {name: micro_report(val, pred) for name, pred in preds.items()}
    report["l3_val_worlds"] = sorted(int(w) for w in torch.unique(micro.world_id[val_idx]))
    return report
