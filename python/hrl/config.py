"""Typed, documented configs: the model sizes (L2/L3/L4) and the training loop.

Every config is a frozen dataclass whose fields are checked on construction (``ConfigError``
names the field). :func:`config_to_dict` / :func:`config_from_dict` turn a config into JSON-able
data and back; that data is what every checkpoint stores as its "resolved config".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from hrl.errors import ConfigError

__all__ = [
    "BASELINE_DIM",
    "FRACTION_DIM",
    "GOAL_DIM",
    "KIND_DIM",
    "OFFER_DIM",
    "PRICE_BOUNDS_DIM",
    "L2Config",
    "L3Config",
    "L4Config",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
]

GOAL_DIM = 4
"""g_t = [Q_buy, P_buy, Q_sell, P_sell] (normalised: quantities / n_lines, prices / trading price)."""
OFFER_DIM = 5
"""Per offer in an L3 history: quantity / n_lines, delivery offset / horizon, unit price / trading
price, round / max rounds, 1 if proposed by the agent itself else 0."""
BASELINE_DIM = 3
"""The L1 baseline offer: quantity / n_lines, delivery offset / horizon, unit price / trading price."""
FRACTION_DIM = 2
"""L3's offer inside L1's box: (quantity fraction of the thread's cap, price fraction of the safe
price interval), both in [0, 1] (see :mod:`hrl.models.box`)."""
PRICE_BOUNDS_DIM = 2
"""L1's safe unit-price interval as an L3 input: (p_lo, p_hi) / trading price."""
KIND_DIM = 3
"""L3's response kinds: accept, counter, end (see :data:`hrl.models.l3.KINDS`)."""


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def _non_negative(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")


def _positive_int(name: str, value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise ConfigError(f"{name} must be an int > 0, got {value!r}")


def _log_std_range(prefix: str, init: float, low: float, high: float) -> None:
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{prefix}min_log_std < {prefix}max_log_std required, got {low}, {high}")
    if not low <= init <= high:
        raise ConfigError(f"{prefix}init_log_std={init} outside [{low}, {high}]")


@dataclass(frozen=True)
class L2Config:
    """L2 manager (daily goal setter). Defaults give ~40k parameters."""

    state_dim: int = 37
    """Features per day: ``len(hrl.features.MACRO_FEATURES)`` (37 in data schema version 1)."""
    history_days: int = 5
    """K: past days fed next to today (the window is K + 1 days; days before day 0 are padding)."""
    horizon_bins: int = 11
    """Delivery offsets 0..horizon of the committed future-contract profile."""
    profile_channels: int = 2
    """Channels per delivery offset of the profile: committed supplies, committed sales (/ n_lines)."""
    hidden: int = 64
    """Width of the day encoder, the GRU over days and the trunk."""
    init_log_std: float = -1.0
    """Initial log standard deviation of the goal Gaussian (normalised units)."""
    min_log_std: float = -5.0
    """Lower clamp of the log standard deviation."""
    max_log_std: float = 1.0
    """Upper clamp of the log standard deviation."""

    def __post_init__(self) -> None:
        for name in ("state_dim", "history_days", "horizon_bins", "profile_channels", "hidden"):
            _positive_int(name, getattr(self, name))
        _log_std_range("", self.init_log_std, self.min_log_std, self.max_log_std)


@dataclass(frozen=True)
class L3Config:
    """L3 executor (per negotiation round, batched over threads). Defaults give ~45k parameters."""

    context_dim: int = 3
    """Extra per-decision context: relative time in the game, relative round, 1 if the agent sells."""
    n_days: int = 11
    """Delivery-day choices: offsets 0..horizon from today (the L1 mask says which are allowed)."""
    hidden: int = 64
    """Width of the offer embedding, the GRU state and the trunk."""
    gru_layers: int = 1
    """Stacked GRU layers over the offer history."""
    max_history: int = 40
    """Longest offer history fed to the model; longer ones keep their most recent offers."""
    follow_gate: bool = False
    """Add the follow-L1 gate: per thread, a choice between L1's own decision for the thread and
    L3's action (:mod:`hrl.models.l3`, :func:`hrl.models.l3.with_follow_gate`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.follow_gate, bool):
            raise ConfigError(f"follow_gate must be a bool, got {self.follow_gate!r}")
        for name in ("context_dim", "n_days", "hidden", "gru_layers", "max_history"):
            _positive_int(name, getattr(self, name))


@dataclass(frozen=True)
class L4Config:
    """L4 coordinator (attention over the day's concurrent threads). Defaults give ~20k parameters."""

    thread_dim: int = 16
    """Features per thread: :data:`hrl.models.l4.THREAD_FEATURES` (goal, baseline, context, last
    offer, history length; built by :func:`hrl.models.l4.thread_features`)."""
    hidden: int = 32
    """Model width (attention embedding size)."""
    heads: int = 2
    """Attention heads (must divide ``hidden``)."""
    layers: int = 2
    """Self-attention layers."""
    alpha_min: float = 0.05
    """alpha_k lies in ``[alpha_min, 1]``: thread k's weight when the round's counter-offers on one
    side and delivery day share that day's cap (:mod:`hrl.models.box`)."""

    def __post_init__(self) -> None:
        for name in ("thread_dim", "hidden", "heads", "layers"):
            _positive_int(name, getattr(self, name))
        if self.hidden % self.heads:
            raise ConfigError(f"heads={self.heads} must divide hidden={self.hidden}")
        if not 0.0 < self.alpha_min < 1.0:
            raise ConfigError(f"alpha_min must be in (0, 1), got {self.alpha_min}")


@dataclass(frozen=True)
class TrainConfig:
    """One behaviour-cloning run (any layer). The resolved config goes into every checkpoint."""

    lr: float = 1e-3
    """AdamW learning rate."""
    epochs: int = 30
    """Maximum epochs (early stopping may end sooner)."""
    batch_size: int = 256
    """Samples per optimiser step."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float | None = 1.0
    """Global gradient-norm clip; None disables it."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule over ``epochs`` (stepped once per epoch)."""
    val_fraction: float = 0.2
    """Share of *worlds* held out for validation (at least one world when there are two or more)."""
    patience: int = 5
    """Early stopping: epochs without a validation improvement of ``min_delta`` before stopping."""
    min_delta: float = 1e-4
    """Smallest decrease of the validation loss that counts as an improvement."""
    seed: int = 0
    """Seed of everything: split, initial weights, shuffling (one derived stream per epoch)."""
    quantity_weight: float = 1.0
    """L2: weight of the quantity components of the masked regression."""
    price_weight: float = 1.0
    """L2: weight of the price components (trained only on days with a trade on that side)."""
    fraction_weight: float = 1.0
    """L3: weight of the regression of the quantity and price fractions (counter-offers only)."""
    kind_weight: float = 1.0
    """L3: weight of the accept/counter/end cross-entropy."""
    day_weight: float = 0.5
    """L3: weight of the delivery-day cross-entropy (counter-offers whose day L1 allows)."""
    checkpoint_dir: str | None = None
    """Directory for ``last.pt`` (every epoch) and ``best.pt``; None keeps everything in memory."""
    log_dir: str | None = None
    """TensorBoard directory (scalars under ``train/`` and ``val/``); None disables logging."""
    progress: bool = True
    """Show a tqdm progress bar over epochs."""
    num_threads: int | None = None
    """torch intra-op threads for the run; None leaves torch's setting alone."""

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _non_negative("weight_decay", self.weight_decay)
        if self.grad_clip is not None:
            _positive("grad_clip", self.grad_clip)
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        _positive_int("patience", self.patience)
        _non_negative("min_delta", self.min_delta)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an int >= 0, got {self.seed!r}")
        for name in (
            "quantity_weight",
            "price_weight",
            "fraction_weight",
            "kind_weight",
            "day_weight",
        ):
            _non_negative(name, getattr(self, name))
        if self.num_threads is not None:
            _positive_int("num_threads", self.num_threads)


Config = TypeVar("Config", bound=L2Config | L3Config | L4Config | TrainConfig)


def config_to_dict(config: L2Config | L3Config | L4Config | TrainConfig) -> dict[str, Any]:
    """The config's fields as a JSON-able dict (what checkpoints store)."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type[Config], data: dict[str, Any]) -> Config:
    """Rebuild a config from :func:`config_to_dict` data; unknown or invalid fields -> ConfigError."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown fields {unknown}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc
