"""Complete, atomic, safely loadable checkpoints.

One checkpoint is one ``torch.save`` file written atomically (temp file + fsync + rename: a crash
never leaves a half-written checkpoint, and the previous one survives). It holds only tensors and
plain data (dicts, lists, str, int, float, bool, None), so it is read with
``torch.load(..., weights_only=True)``: a checkpoint from anywhere cannot run code on load.

Layout (``format_version`` 1):

- ``format`` = ``"hrl-checkpoint"``, ``format_version``, ``kind`` (``"model"`` for inference
  checkpoints written by :func:`save_model`; ``"bc/l2"``, ``"bc/l3"``, ``"bc/l4"`` for trainers)
- ``models``: name -> ``state_dict`` (feature-normaliser statistics are buffers in it:
  ``normaliser.mean``, ``normaliser.var``, ``normaliser.count``)
- ``model_classes``: name -> class name (see :data:`MODEL_CLASSES`); ``model_configs``: name ->
  the model config as a dict
- training checkpoints add: ``optimisers``, ``schedulers`` (name -> ``state_dict``), ``counters``
  (epoch, step, ...), ``rng`` (python, numpy, torch states), ``config`` (the resolved
  :class:`~hrl.config.TrainConfig`) and whatever the trainer needs to resume exactly
- ``versions``: hrl, torch, numpy, python that wrote it
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import pickle
import platform
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hrl.config import L2Config, L3Config, L4Config, config_from_dict, config_to_dict
from hrl.errors import CheckpointError, ConfigError
from hrl.io import atomic_write_bytes
from hrl.models.l2 import L2Manager
from hrl.models.l3 import L3Executor
from hrl.models.l4 import L4Coordinator

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_CLASSES",
    "build_model",
    "get_rng_state",
    "load_checkpoint",
    "load_model",
    "load_state",
    "model_entry",
    "save_checkpoint",
    "save_model",
    "set_rng_state",
    "versions",
]

FORMAT = "hrl-checkpoint"
FORMAT_VERSION = 1
MODEL_CLASSES: dict[str, tuple[type[nn.Module], type[L2Config] | type[L3Config] | type[L4Config]]] = {
    "L2Manager": (L2Manager, L2Config),
    "L3Executor": (L3Executor, L3Config),
    "L4Coordinator": (L4Coordinator, L4Config),
}
"""Class name -> (model class, config class) of every model a checkpoint can rebuild."""

_REQUIRED = ("format", "format_version", "kind", "models", "model_classes", "model_configs", "versions")


def versions() -> dict[str, str]:
    """Versions of the packages that shape a checkpoint."""
    try:
        hrl_version = importlib.metadata.version("hrl")
    except importlib.metadata.PackageNotFoundError:
        hrl_version = "unknown"
    return {
        "hrl": hrl_version,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def get_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's global and torch's CPU RNGs as checkpoint-safe data."""
    np_state: dict[str, Any] = np.random.get_state(legacy=False)
    version, mt, gauss = random.getstate()
    return {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npy["bit_generator"],
            "state": {"key": npy["key"].numpy().astype(np.uint32), "pos": npy["pos"]},
            "has_gauss": npy["has_gauss"],
            "gauss": npy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format, format_version and versions) atomically to ``path``.

    ``payload`` must have ``kind``, ``models``, ``model_classes`` and ``model_configs``; every value
    must be a tensor or plain data (checked: the file is re-read with ``weights_only=True`` rules
    before it replaces the old one).
    """
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(), **payload}
    missing = [k for k in _REQUIRED if k not in full]
    if missing:
        raise CheckpointError(f"{path}: checkpoint payload lacks {missing}")
    buffer = io.BytesIO()
    torch.save(full, buffer)
    data = buffer.getvalue()
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: payload holds objects that are not plain data: {exc}") from exc
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint safely; raises :class:`CheckpointError` naming ``path`` when it is
    missing, truncated or corrupt, not an hrl checkpoint, of another format version, or (with
    ``kind``) of another kind."""
    target = Path(path)
    if not target.is_file():
        raise CheckpointError(f"{target}: no such checkpoint file")
    try:
        payload = torch.load(target, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{target}: unreadable or corrupt checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{target}: not an hrl checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{target}: checkpoint format version {payload.get('format_version')}, expected {FORMAT_VERSION}"
        )
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise CheckpointError(f"{target}: incomplete checkpoint, missing {missing}")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"{target}: a {payload['kind']!r} checkpoint, expected {kind!r}")
    return payload


def model_entry(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """``(class name, config dict)`` of a model that :data:`MODEL_CLASSES` knows."""
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise CheckpointError(f"cannot checkpoint a {name}: known models are {sorted(MODEL_CLASSES)}")
    return name, config_to_dict(model.config)  # type: ignore[arg-type]


def build_model(class_name: str, config: dict[str, Any], *, where: str = "") -> nn.Module:
    """A fresh model of a registered class from its config dict."""
    if class_name not in MODEL_CLASSES:
        raise CheckpointError(f"{where}: unknown model class {class_name!r}")
    model_cls, config_cls = MODEL_CLASSES[class_name]
    try:
        return model_cls(config_from_dict(config_cls, config))
    except ConfigError as exc:
        raise CheckpointError(f"{where}: bad model config: {exc}") from exc


def load_state(model: nn.Module, state: dict[str, Any], *, where: str) -> None:
    """``model.load_state_dict(state)`` with a CheckpointError naming ``where`` on any mismatch."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{where}: weights do not match the model: {exc}") from exc


def save_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    name: str = "model",
    extra: dict[str, Any] | None = None,
) -> Path:
    """An inference checkpoint of one model (weights, normaliser statistics, config, versions).

    ``extra`` is stored as is (plain data: metrics, the training config, ...).
    """
    class_name, config = model_entry(model)
    payload = {
        "kind": "model",
        "models": {name: model.state_dict()},
        "model_classes": {name: class_name},
        "model_configs": {name: config},
        "extra": extra or {},
    }
    return save_checkpoint(path, payload)


def load_model(path: str | os.PathLike[str], *, name: str | None = None) -> nn.Module:
    """Rebuild a model from any hrl checkpoint (inference or training; ``name`` picks one of
    several models, default the only one). Returns the model in eval mode."""
    payload = load_checkpoint(path)
    names = list(payload["models"])
    if name is None:
        if len(names) != 1:
            raise CheckpointError(f"{path}: holds models {names}; pass name=")
        name = names[0]
    if name not in payload["models"]:
        raise CheckpointError(f"{path}: no model {name!r} (has {names})")
    where = f"{path} [{name}]"
    try:
        class_name, config = payload["model_classes"][name], payload["model_configs"][name]
    except KeyError as exc:
        raise CheckpointError(f"{where}: incomplete checkpoint, no class or config") from exc
    model = build_model(class_name, config, where=where)
    load_state(model, payload["models"][name], where=where)
    return model.eval()
