"""Training: dataset interface and adapters, checkpoints, behaviour cloning (docs/models.md)."""

from hrl.train.adapters import (
    MACRO_COLUMNS,
    MICRO_COLUMNS,
    MICRO_L1_COLUMNS,
    macro_tensors_from_frame,
    micro_tensors_from_frame,
    thread_tensors_from_micro,
)
from hrl.train.bc import train_l2_bc, train_l3_bc, train_l4_bc
from hrl.train.checkpoint import load_checkpoint, load_model, save_checkpoint, save_model
from hrl.train.datasets import MacroTensors, MicroTensors, ThreadTensors, split_by_world
from hrl.train.loop import BCResult

__all__ = [
    "MACRO_COLUMNS",
    "MICRO_COLUMNS",
    "MICRO_L1_COLUMNS",
    "BCResult",
    "MacroTensors",
    "MicroTensors",
    "ThreadTensors",
    "load_checkpoint",
    "load_model",
    "macro_tensors_from_frame",
    "micro_tensors_from_frame",
    "save_checkpoint",
    "save_model",
    "split_by_world",
    "thread_tensors_from_micro",
    "train_l2_bc",
    "train_l3_bc",
    "train_l4_bc",
]
