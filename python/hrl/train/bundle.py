"""The checkpoint bundle: the one file ``LitaAgentHRL`` loads (L2, and L3/L4 when trained).

A bundle is an hrl checkpoint (:mod:`hrl.train.checkpoint`, ``kind = "bundle"``, loaded with
``weights_only=True``) whose ``models`` hold ``"l2"`` (:class:`~hrl.models.L2Manager`, required)
and optionally ``"l3"`` (:class:`~hrl.models.L3Executor`) and ``"l4"``
(:class:`~hrl.models.L4Coordinator`, only together with ``"l3"``). A layer that is absent is played
by L1: without L3 the rounds are the L1 baseline (the goal is still set and recorded); without L4
every thread gets ``alpha = 1`` (an equal split of a day's cap). ``extra`` holds plain data:
which layers were trained, per-layer metrics, the source (``"pretrain"``, ``"fresh"``, ...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrl.config import L2Config, L3Config, L4Config
from hrl.errors import CheckpointError
from hrl.models.l2 import L2Manager
from hrl.models.l3 import L3Executor
from hrl.models.l4 import L4Coordinator
from hrl.seeding import seed_everything
from hrl.train.checkpoint import build_model, load_checkpoint, load_state, model_entry, save_checkpoint

__all__ = ["BUNDLE_KIND", "BUNDLE_VERSION", "Bundle", "fresh_bundle", "load_bundle", "save_bundle"]

BUNDLE_KIND = "bundle"
"""``kind`` of a bundle checkpoint."""
BUNDLE_VERSION = 2
"""Version of the bundle's model format: 2 = L3 acts inside L1's box (caps and price bounds as
inputs, Beta fractions; :mod:`hrl.models.l3`). Bundles of version 1 (a Gaussian residual over the
baseline) are refused with a :class:`CheckpointError`."""

_LAYERS = {"l2": L2Manager, "l3": L3Executor, "l4": L4Coordinator}


@dataclass
class Bundle:
    """The models of a hierarchical policy (eval mode) and the bundle's plain-data ``extra``."""

    l2: L2Manager
    l3: L3Executor | None = None
    l4: L4Coordinator | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.l4 is not None and self.l3 is None:
            raise CheckpointError("a bundle with L4 needs L3 (L4 shares the caps of L3's counter-offers)")

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers present, e.g. ``("l2", "l3", "l4")``."""
        return tuple(name for name in _LAYERS if getattr(self, name) is not None)


def save_bundle(bundle: Bundle, path: str | os.PathLike[str]) -> Path:
    """Write ``bundle`` atomically to ``path`` (one checkpoint file)."""
    models, classes, configs = {}, {}, {}
    for name in bundle.layers:
        model = getattr(bundle, name)
        classes[name], configs[name] = model_entry(model)
        models[name] = model.state_dict()
    payload = {
        "kind": BUNDLE_KIND,
        "bundle_version": BUNDLE_VERSION,
        "models": models,
        "model_classes": classes,
        "model_configs": configs,
        "extra": bundle.extra,
    }
    return save_checkpoint(path, payload)


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a bundle written by :func:`save_bundle`; raises :class:`CheckpointError` naming
    ``path`` when it is missing, corrupt, not a bundle, lacks L2, or holds unknown layers."""
    payload = load_checkpoint(path, kind=BUNDLE_KIND)
    version = payload.get("bundle_version", 1)
    if version != BUNDLE_VERSION:
        raise CheckpointError(
            f"{path}: bundle version {version}, this hrl reads version {BUNDLE_VERSION} (L3 acts "
            "inside L1's box); retrain it with `hrl pretrain` / `hrl finetune`"
        )
    unknown = set(payload["models"]) - set(_LAYERS)
    if unknown:
        raise CheckpointError(f"{path}: unknown bundle layers {sorted(unknown)}")
    if "l2" not in payload["models"]:
        raise CheckpointError(f"{path}: a bundle needs an 'l2' model")
    built: dict[str, Any] = {}
    for name, cls in _LAYERS.items():
        if name not in payload["models"]:
            continue
        where = f"{path} [{name}]"
        try:
            class_name, config = payload["model_classes"][name], payload["model_configs"][name]
        except KeyError as exc:
            raise CheckpointError(f"{where}: incomplete bundle, no class or config") from exc
        if class_name != cls.__name__:
            raise CheckpointError(f"{where}: expected a {cls.__name__}, got {class_name}")
        model = build_model(class_name, config, where=where)
        load_state(model, payload["models"][name], where=where)
        built[name] = model.eval()
    return Bundle(extra=dict(payload.get("extra") or {}), **built)


def fresh_bundle(
    seed: int = 0,
    *,
    l2: L2Config | None = None,
    l3: L3Config | None = None,
    l4: L4Config | None = None,
    layers: tuple[str, ...] = ("l2", "l3", "l4"),
) -> Bundle:
    """Freshly initialised (untrained) models under ``seed`` (tests, rollouts from scratch)."""
    seed_everything(seed)
    return Bundle(
        l2=L2Manager(l2).eval(),
        l3=L3Executor(l3).eval() if "l3" in layers else None,
        l4=L4Coordinator(l4).eval() if "l4" in layers else None,
        extra={"source": "fresh", "seed": seed, "trained": []},
    )
