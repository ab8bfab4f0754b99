"""NumPy forward passes of the trained L2/L3/L4 models for deterministic play.

A live agent calls L3 and L4 a dozen times a day on a handful of threads; at these sizes torch's
per-operation overhead (module dispatch, shape checks, autograd bookkeeping) costs far more than
the arithmetic. :class:`NumpyL2`, :class:`NumpyL3` and :class:`NumpyL4` copy a module's weights
once (float32, transposed for ``x @ W``) and compute the *deterministic* action exactly as the
torch module's ``forward(...).deterministic()`` does: the same layers, the same normaliser
(statistics cast from float64 the way :class:`~hrl.models.normalise.FeatureNormaliser` does), the
same masking rules. Results agree with torch up to float32 rounding (``tests/test_numpy_play.py``
checks logits, fractions, alphas and goals to 1e-5 and the discrete choices exactly on random
and trained weights). Sampling, log-probs and values for training stay in torch.

Inputs are the torch modules' inputs as NumPy arrays without the leading batch dimension of L2
and L4 (one agent-day, one round). Wrong ranks or sizes raise :class:`~hrl.errors.ShapeError`
naming the argument, NaN/inf inputs or outputs :class:`~hrl.errors.NonFiniteError`, like the
torch models, so the agent's fallback to L1 works the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from torch import Tensor, nn

from hrl.config import FRACTION_DIM, GOAL_DIM, KIND_DIM, OFFER_DIM
from hrl.errors import NonFiniteError, ShapeError
from hrl.models.l2 import QUANTITY_COMPONENTS, L2Manager
from hrl.models.l3 import L3Executor
from hrl.models.l4 import HISTORY_NORM, L4Coordinator
from hrl.models.normalise import FeatureNormaliser

__all__ = ["NumpyL2", "NumpyL3", "NumpyL4", "RoundAction", "numpy_thread_features"]

F32 = NDArray[np.float32]
_MIN = np.finfo(np.float32).min


def _array(t: Tensor) -> F32:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


@dataclass(frozen=True)
class _Linear:
    """``x @ weight + bias`` with ``weight [in, out]``."""

    weight: F32
    bias: F32

    @classmethod
    def of(cls, layer: nn.Module) -> _Linear:
        """The weights of ``layer`` (an ``nn.Linear``, also when typed as a Sequential's item)."""
        if not isinstance(layer, nn.Linear):
            raise ShapeError(f"expected an nn.Linear, got {type(layer).__name__}")
        return cls(_array(layer.weight).T.copy(), _array(layer.bias))

    def __call__(self, x: F32) -> F32:
        return x @ self.weight + self.bias


@dataclass(frozen=True)
class _Normaliser:
    mean: F32
    std: F32
    clip: float

    @classmethod
    def of(cls, norm: FeatureNormaliser) -> _Normaliser:
        std = (norm.var + norm.eps).sqrt()
        return cls(_array(norm.mean), _array(std), float(norm.clip))

    def __call__(self, x: F32) -> F32:
        out: F32 = np.clip((x - self.mean) / self.std, -self.clip, self.clip)
        return out


@dataclass(frozen=True)
class _GRU:
    """A stacked ``batch_first`` GRU (torch's gate order r, z, n)."""

    layers: tuple[tuple[F32, F32, F32, F32], ...]  # (W_ih [in, 3H], b_ih, W_hh [H, 3H], b_hh)

    @classmethod
    def of(cls, gru: nn.GRU) -> _GRU:
        layers = []
        for k in range(gru.num_layers):
            w_ih, w_hh = getattr(gru, f"weight_ih_l{k}"), getattr(gru, f"weight_hh_l{k}")
            b_ih, b_hh = getattr(gru, f"bias_ih_l{k}"), getattr(gru, f"bias_hh_l{k}")
            layers.append((_array(w_ih).T.copy(), _array(b_ih), _array(w_hh).T.copy(), _array(b_hh)))
        return cls(tuple(layers))

    @property
    def hidden(self) -> int:
        return int(self.layers[0][2].shape[0])

    def zeros(self, batch: int) -> F32:
        """The initial state of every layer, ``[layers, batch, H]``."""
        return np.zeros((len(self.layers), batch, self.hidden), np.float32)

    def step(self, x: F32, state: F32) -> F32:
        """One time step: ``x [B, in]``, ``state [layers, B, H]`` -> the next state."""
        out = np.empty_like(state)
        hidden = self.hidden
        for k, (w_ih, b_ih, w_hh, b_hh) in enumerate(self.layers):
            h = state[k]
            gx, gh = x @ w_ih + b_ih, h @ w_hh + b_hh
            rz = 1.0 / (1.0 + np.exp(-(gx[:, : 2 * hidden] + gh[:, : 2 * hidden])))
            n = np.tanh(gx[:, 2 * hidden :] + rz[:, :hidden] * gh[:, 2 * hidden :])
            x = out[k] = n + rz[:, hidden:] * (h - n)
        return out

    def final_state(self, x: F32) -> F32:
        """``x [B, T, in]`` -> the last layer's state after the last step, ``[B, H]``."""
        state = self.zeros(x.shape[0])
        for t in range(x.shape[1]):
            state = self.step(x[:, t], state)
        last: F32 = state[-1]
        return last


class _PrefixStates:
    """GRU states of offer-history prefixes already run, keyed by the prefix's feature bytes.

    A round's threads are the same negotiations as the last round's with one or two offers
    more, so L3 continues each thread from the state of its longest known prefix instead of
    re-running its whole history (the state is a function of the prefix alone; only float
    rounding can differ from a full run). At most ``capacity`` prefixes are kept (cleared when
    full)."""

    def __init__(self, capacity: int = 4096, lookback: int = 4) -> None:
        self.capacity, self.lookback = capacity, lookback
        self._states: dict[bytes, F32] = {}

    def start(self, history: F32, lengths: NDArray[np.int64]) -> tuple[NDArray[np.int64], list[F32 | None]]:
        """Per row, the longest known prefix within ``lookback`` offers of its full length and
        its state (``[layers, H]``; None to start from zeros at length 0)."""
        known = np.zeros(len(lengths), np.int64)
        states: list[F32 | None] = [None] * len(lengths)
        for i, length in enumerate(lengths.tolist()):
            for prefix in range(length, max(length - self.lookback, 0), -1):
                state = self._states.get(history[i, :prefix].tobytes())
                if state is not None:
                    known[i], states[i] = prefix, state
                    break
        return known, states

    def keep(self, history: F32, lengths: NDArray[np.int64], state: F32) -> None:
        """Remember each row's state ``state [layers, B, H]`` after its full prefix."""
        if len(self._states) + len(lengths) > self.capacity:
            self._states.clear()
        for i, length in enumerate(lengths.tolist()):
            if length:
                self._states[history[i, :length].tobytes()] = state[:, i].copy()


@dataclass(frozen=True)
class _LayerNorm:
    weight: F32
    bias: F32
    eps: float

    @classmethod
    def of(cls, norm: nn.LayerNorm) -> _LayerNorm:
        return cls(_array(norm.weight), _array(norm.bias), float(norm.eps))

    def __call__(self, x: F32) -> F32:
        mean = x.mean(-1, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(-1, keepdims=True)
        out: F32 = centred / np.sqrt(var + self.eps) * self.weight + self.bias
        return out


@dataclass(frozen=True)
class _EncoderLayer:
    """A pre-norm ``nn.TransformerEncoderLayer`` (ReLU feed-forward, no dropout in play)."""

    heads: int
    norm1: _LayerNorm
    qkv: _Linear
    out: _Linear
    norm2: _LayerNorm
    ff1: _Linear
    ff2: _Linear

    @classmethod
    def of(cls, layer: nn.TransformerEncoderLayer) -> _EncoderLayer:
        attn = layer.self_attn
        if not layer.norm_first or layer.activation_relu_or_gelu != 1:
            raise ShapeError("numpy play supports pre-norm ReLU encoder layers only")
        return cls(
            attn.num_heads,
            _LayerNorm.of(layer.norm1),
            _Linear(_array(attn.in_proj_weight).T.copy(), _array(attn.in_proj_bias)),
            _Linear.of(attn.out_proj),
            _LayerNorm.of(layer.norm2),
            _Linear.of(layer.linear1),
            _Linear.of(layer.linear2),
        )

    def __call__(self, x: F32, key_ok: NDArray[np.bool_]) -> F32:
        """``x [K, h]`` one set of threads; ``key_ok [K]`` the keys that may be attended to."""
        k, h = x.shape
        d = h // self.heads
        q, key, v = np.split(self.qkv(self.norm1(x)), 3, axis=-1)
        q = q.reshape(k, self.heads, d).transpose(1, 0, 2)
        key = key.reshape(k, self.heads, d).transpose(1, 2, 0)
        v = v.reshape(k, self.heads, d).transpose(1, 0, 2)
        scores = (q @ key) / np.float32(np.sqrt(d))  # [heads, K, K]
        scores = np.where(key_ok, scores, -np.inf)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attended = (scores / scores.sum(-1, keepdims=True)) @ v  # [heads, K, d]
        x = x + self.out(attended.transpose(1, 0, 2).reshape(k, h))
        return x + self.ff2(np.maximum(self.ff1(self.norm2(x)), 0.0))


def _sigmoid(x: F32) -> F32:
    out: F32 = 0.5 * (np.tanh(0.5 * x) + 1.0)
    return out


def _softplus(x: F32) -> F32:
    """torch's ``softplus`` (beta 1, threshold 20)."""
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _check(name: str, a: NDArray[np.generic], shape: tuple[int | None, ...], kind: str = "f") -> None:
    if a.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape, a.shape, strict=True)):
        raise ShapeError(f"{name}: expected shape {shape} (None = any), got {a.shape}")
    if a.dtype.kind != kind:
        raise ShapeError(f"{name}: expected dtype kind {kind!r}, got {a.dtype}")
    if kind == "f" and not np.isfinite(a).all():
        raise NonFiniteError(f"{name}: non-finite input", argument=name)


def _finite(**arrays: NDArray[np.floating]) -> None:
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise NonFiniteError(f"{name}: non-finite output", argument=name)


def numpy_thread_features(
    goal: F32, baseline: F32, context: F32, history: F32, history_mask: NDArray[np.bool_]
) -> F32:
    """:func:`hrl.models.l4.thread_features` in NumPy: ``[K, 4 + 3 + E + OFFER_DIM + 1]``."""
    lengths = history_mask.sum(-1)
    last = np.zeros((goal.shape[0], OFFER_DIM), np.float32)
    has = lengths > 0
    if history.shape[1] and has.any():
        rows = np.nonzero(has)[0]
        last[rows] = history[rows, lengths[rows] - 1]
    length = (lengths.astype(np.float32) / np.float32(HISTORY_NORM))[:, None]
    return np.concatenate([goal, baseline, context, last, length], -1).astype(np.float32)


class NumpyL2:
    """:class:`~hrl.models.l2.L2Manager`'s deterministic goal for one agent-day."""

    def __init__(self, model: L2Manager) -> None:
        self.config = model.config
        self.normaliser = _Normaliser.of(model.normaliser)
        self.day_encoder = _Linear.of(model.day_encoder[0])
        self.days = _GRU.of(model.days)
        conv = model.profile_conv
        self.conv_weight = _array(conv.weight).reshape(conv.out_channels, -1)  # [8, C * 3]
        assert conv.bias is not None
        self.conv_bias = _array(conv.bias)
        self.profile_encoder = _Linear.of(model.profile_encoder[0])
        self.trunk = (_Linear.of(model.trunk[0]), _Linear.of(model.trunk[2]))
        self.goal_head = _Linear.of(model.goal_head)
        self.is_quantity = np.zeros(GOAL_DIM, bool)
        self.is_quantity[list(QUANTITY_COMPONENTS)] = True

    def goal(
        self, state: F32, state_mask: NDArray[np.bool_], profile: F32, side_mask: NDArray[np.bool_]
    ) -> F32:
        """``state [K+1, F]``, ``state_mask [K+1]``, ``profile [H, C]``, ``side_mask [4]`` ->
        the goal ``[4]`` (normalised units; 0 on masked sides)."""
        cfg = self.config
        _check("state", state, (cfg.history_days + 1, cfg.state_dim))
        _check("state_mask", state_mask, (cfg.history_days + 1,), "b")
        _check("profile", profile, (cfg.horizon_bins, cfg.profile_channels))
        _check("side_mask", side_mask, (GOAL_DIM,), "b")
        valid = state_mask.astype(np.float32)[:, None]
        days = np.tanh(self.day_encoder(np.concatenate([self.normaliser(state) * valid, valid], -1)))
        last = self.days.final_state(days[None])
        padded = np.pad(profile.T, ((0, 0), (1, 1)))  # [C, H + 2]
        width = profile.shape[0]
        columns = np.concatenate([padded[:, j : j + width] for j in range(3)], 0)  # [3C, H]
        columns = columns.reshape(3, -1, width).transpose(1, 0, 2).reshape(-1, width)  # (c, k) order
        prof = np.tanh(self.conv_weight @ columns + self.conv_bias[:, None]).reshape(-1)
        x = np.concatenate([last[0], np.tanh(self.profile_encoder(prof))], -1)
        x = np.tanh(self.trunk[1](np.tanh(self.trunk[0](x))))
        raw = self.goal_head(x)
        mean = np.where(self.is_quantity, _softplus(raw), 1.0 + raw)
        _finite(goal_mean=mean)
        return np.where(side_mask, mean, 0.0).astype(np.float32)


@dataclass(frozen=True)
class RoundAction:
    """L3 + L4's deterministic decisions over ``K`` threads: ``kind``/``day`` int64 ``[K]``,
    ``fraction`` float32 ``[K, 2]`` (quantity, price), ``alpha`` float32 ``[K]``."""

    kind: NDArray[np.int64]
    day: NDArray[np.int64]
    fraction: F32
    alpha: F32


class NumpyL3:
    """:class:`~hrl.models.l3.L3Executor`'s deterministic action for ``K`` threads."""

    def __init__(self, model: L3Executor) -> None:
        self.config = model.config
        self.normaliser = _Normaliser.of(model.normaliser)
        self.offer_embed = _Linear.of(model.offer_embed[0])
        self.history = _GRU.of(model.history)
        self.prefixes = _PrefixStates()
        self.trunk = (_Linear.of(model.trunk[0]), _Linear.of(model.trunk[2]))
        self.kind_head = _Linear.of(model.kind_head)
        self.day_head = _Linear.of(model.day_head)
        self.fraction_head = _Linear.of(model.fraction_head)
        self.follow_head = None if model.follow_head is None else _Linear.of(model.follow_head)

    def act(
        self,
        history: F32,
        history_mask: NDArray[np.bool_],
        goal: F32,
        baseline: F32,
        context: F32,
        caps: F32,
        prices: F32,
        day_mask: NDArray[np.bool_],
        kind_mask: NDArray[np.bool_],
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], F32, NDArray[np.int64]]:
        """L3's inputs as :meth:`hrl.models.L3Executor.forward` takes them (``[K, ...]``) ->
        (kind ``[K]``, delivery offset ``[K]``, fractions ``[K, 2]``, follow ``[K]``): the most
        likely allowed kind and day, the Beta means, and 1 where the gate's logit is above 0
        (follow L1; 0 everywhere without the gate)."""
        cfg = self.config
        k = goal.shape[0]
        _check("history", history, (k, None, OFFER_DIM))
        _check("history_mask", history_mask, (k, history.shape[1]), "b")
        _check("goal", goal, (k, GOAL_DIM))
        _check("baseline", baseline, (k, 3))
        _check("context", context, (k, cfg.context_dim))
        _check("caps", caps, (k, cfg.n_days))
        _check("prices", prices, (k, 2))
        _check("day_mask", day_mask, (k, cfg.n_days), "b")
        _check("kind_mask", kind_mask, (k, KIND_DIM), "b")
        lengths = history_mask.sum(-1)
        if not np.array_equal(history_mask, np.arange(history.shape[1]) < lengths[:, None]):
            raise ShapeError("history_mask: each row must be a prefix of Trues (right padding)")
        summary = self._summarise(history, lengths)
        cond = self.normaliser(np.concatenate([goal, baseline, context, caps, prices], -1))
        has_history = (lengths > 0).astype(np.float32)[:, None]
        x = np.concatenate([summary, cond, has_history], -1)
        x = np.tanh(self.trunk[1](np.tanh(self.trunk[0](x))))
        kind_logits, day_logits = self.kind_head(x), self.day_head(x)
        conc = 1.0 + _softplus(self.fraction_head(x)).reshape(k, FRACTION_DIM, 2)
        gate = self.follow_head(x)[:, 0] if self.follow_head is not None else np.zeros(k, np.float32)
        _finite(kind_logits=kind_logits, day_logits=day_logits, fraction=conc, follow_logit=gate)
        return (
            _masked_argmax(kind_logits, kind_mask),
            _masked_argmax(day_logits, day_mask),
            (conc[..., 0] / (conc[..., 0] + conc[..., 1])).astype(np.float32),
            (gate > 0).astype(np.int64),
        )

    def _summarise(self, history: F32, lengths: NDArray[np.int64]) -> F32:
        """``[K, hidden]`` the GRU's state at each thread's last offer (zeros without one), each
        thread continued from its longest known prefix (:class:`_PrefixStates`)."""
        gru = self.history
        known, cached = self.prefixes.start(history, lengths)
        state = gru.zeros(len(lengths))
        for i, c in enumerate(cached):
            if c is not None:
                state[:, i] = c
        todo = lengths - known
        rows = np.arange(len(lengths))
        for j in range(int(todo.max(initial=0))):
            live = todo > j
            x = np.tanh(self.offer_embed(history[rows, np.minimum(known + j, history.shape[1] - 1)]))
            state = np.where(live[None, :, None], gru.step(x, state), state)
        self.prefixes.keep(history, lengths, state)
        last: F32 = state[-1]
        return last


def _masked_argmax(logits: F32, mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """:meth:`hrl.models.MaskedCategorical.mode`: the first most likely allowed choice; a row with
    no allowed choice picks choice 0."""
    none = ~mask.any(-1, keepdims=True)
    choice: NDArray[np.int64] = (
        np.where(mask | none, np.where(none, 0.0, logits), _MIN).argmax(-1).astype(np.int64)
    )
    return choice


class NumpyL4:
    """:class:`~hrl.models.l4.L4Coordinator`'s deterministic alpha for one round's threads."""

    def __init__(self, model: L4Coordinator) -> None:
        self.config = model.config
        self.normaliser = _Normaliser.of(model.normaliser)
        self.embed = _Linear.of(model.embed)
        self.layers = tuple(_EncoderLayer.of(layer) for layer in model.encoder.layers)
        if model.encoder.norm is not None:
            raise ShapeError("numpy play expects the encoder without a final norm")
        self.norm = _LayerNorm.of(model.norm)
        self.alpha_head = _Linear.of(model.alpha_head)

    def alpha(self, threads: F32) -> F32:
        """``threads [K, thread_dim]`` (every one real) -> alpha ``[K]`` on ``[alpha_min, 1]``:
        the mean of each thread's Beta."""
        cfg = self.config
        _check("threads", threads, (None, cfg.thread_dim))
        if threads.shape[0] == 0:
            return np.zeros(0, np.float32)
        key_ok = np.ones(threads.shape[0], bool)
        x = self.embed(self.normaliser(threads))
        for layer in self.layers:
            x = layer(x, key_ok)
        params = 1.0 + _softplus(self.alpha_head(self.norm(x)))
        _finite(alpha_params=params)
        mean = params[:, 0] / (params[:, 0] + params[:, 1])
        return (cfg.alpha_min + (1.0 - cfg.alpha_min) * mean).astype(np.float32)
