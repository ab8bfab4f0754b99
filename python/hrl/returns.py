"""Advantage and return estimation: the Python face of the Rust kernels in ``rust/gae.rs``.

Arrays are time-major ``[T, N]`` (``T`` steps of ``N`` parallel environments or agents); 1-D
``[T]`` inputs are treated as ``N = 1`` and give 1-D outputs. Episode semantics:

- ``terminated[t]``: the episode ended at step ``t`` by the rules; the value after it is 0 and
  ``next_values[t]`` is ignored.
- ``truncated[t]``: the trace was cut at ``t`` (time limit, end of rollout) but the episode goes on;
  bootstrap from ``next_values[t]``.
- ``terminated | truncated`` cuts the trace; the last row ``t = T - 1`` is always cut.

For SCML worlds the last simulated day is a *truncation*: the game's score ignores leftover
inventory, but the agent's state would go on to be valued (and worlds of other lengths exist), so
it bootstraps; a bankruptcy is a termination.

Rewards and values may be any real dtype (converted to float32, copied only when needed; strided
views are made contiguous); flags must be bool. The kernel runs without the GIL.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hrl import _core
from hrl.errors import DTypeError, ShapeError

__all__ = ["compute_gae", "discounted_returns"]

F32 = NDArray[np.float32]


def compute_gae(
    rewards: ArrayLike,
    values: ArrayLike,
    next_values: ArrayLike,
    terminated: ArrayLike,
    truncated: ArrayLike,
    *,
    gamma: float,
    lam: float,
    check_finite: bool = True,
) -> tuple[F32, F32]:
    """GAE(lambda) advantages and lambda-returns.

    Args:
        rewards: ``[T, N]`` reward of each step.
        values: ``[T, N]`` value estimate of the observation at each step.
        next_values: ``[T, N]`` value estimate of the observation after each step (used where the
            trace is truncated or continues; ignored where terminated).
        terminated: ``[T, N]`` bool, episode ended by the rules at this step.
        truncated: ``[T, N]`` bool, trace cut here but the episode would go on.
        gamma: discount factor in ``[0, 1]``.
        lam: GAE lambda in ``[0, 1]`` (0: one-step TD, 1: Monte Carlo minus values).
        check_finite: raise :class:`~hrl.errors.NonFiniteError` (naming argument and ``(t, n)``)
            when a used input is NaN/inf; ``False`` lets non-finite values propagate.

    Returns:
        ``(advantages, returns)``, float32, same shape as ``rewards``; ``returns = advantages + values``.

    Raises:
        ShapeError, DTypeError, InvalidArgumentError, NonFiniteError (all :class:`~hrl.errors.HrlError`).
    """
    r, one_d = _floats(rewards, "rewards", None)
    shape = r.shape
    advantages, returns = _core.compute_gae(
        r,
        _floats(values, "values", shape)[0],
        _floats(next_values, "next_values", shape)[0],
        _flags(terminated, "terminated", shape),
        _flags(truncated, "truncated", shape),
        gamma=float(gamma),
        lam=float(lam),
        check_finite=check_finite,
    )
    if one_d:
        return advantages[:, 0], returns[:, 0]
    return advantages, returns


def discounted_returns(
    rewards: ArrayLike,
    terminated: ArrayLike,
    truncated: ArrayLike,
    *,
    gamma: float,
    bootstrap: ArrayLike | None = None,
    check_finite: bool = True,
) -> F32:
    """Discounted returns ``G_t = r_t + gamma * (terminated ? 0 : cut ? b_t : G_{t+1})``.

    Args:
        rewards: ``[T, N]`` reward of each step.
        terminated, truncated: ``[T, N]`` bool flags (see the module docstring).
        gamma: discount factor in ``[0, 1]``.
        bootstrap: value after a cut. ``None``: zeros (pure Monte Carlo). ``[T, N]``: per step,
            read at truncations and at the last row (pass GAE's ``next_values`` here to get
            ``compute_gae(..., lam=1)`` returns). ``[N]`` (or a scalar for 1-D inputs): the value
            after the last row only; truncations inside the trace then bootstrap from 0.
        check_finite: as in :func:`compute_gae`.

    Returns:
        float32 returns, same shape as ``rewards``.
    """
    r, one_d = _floats(rewards, "rewards", None)
    boot = None if bootstrap is None else _bootstrap(bootstrap, r.shape, one_d)
    returns = _core.discounted_returns(
        r,
        _flags(terminated, "terminated", r.shape),
        _flags(truncated, "truncated", r.shape),
        gamma=float(gamma),
        bootstrap=boot,
        check_finite=check_finite,
    )
    return returns[:, 0] if one_d else returns


def _floats(x: ArrayLike, name: str, shape: tuple[int, ...] | None) -> tuple[F32, bool]:
    """``x`` as a C-contiguous float32 ``[T, N]`` array, and whether it was given as 1-D."""
    array = np.asarray(x)
    if array.dtype.kind not in "fiu":
        raise DTypeError(f"{name}: expected a real-valued array, got dtype {array.dtype}")
    return _two_d(np.ascontiguousarray(array, dtype=np.float32), name, shape)


def _flags(x: ArrayLike, name: str, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    array = np.asarray(x)
    if array.dtype != np.bool_:
        raise DTypeError(f"{name}: expected a bool array, got dtype {array.dtype}")
    flags: NDArray[np.bool_] = _two_d(np.ascontiguousarray(array), name, shape)[0]  # type: ignore[assignment]
    return flags


def _two_d(array: NDArray[np.generic], name: str, shape: tuple[int, ...] | None) -> tuple[F32, bool]:
    if array.ndim == 1:
        array = array.reshape(-1, 1)
        one_d = True
    elif array.ndim == 2:
        one_d = False
    else:
        raise ShapeError(f"{name}: expected a [T, N] or [T] array, got {array.ndim}-D shape {array.shape}")
    if shape is not None and array.shape != shape:
        raise ShapeError(f"{name}: expected shape {shape} (as rewards, in [T, N]), got {array.shape}")
    return array, one_d  # type: ignore[return-value]


def _bootstrap(bootstrap: ArrayLike, shape: tuple[int, ...], one_d: bool) -> F32:
    """Expand a last-row bootstrap (``[N]``, or a scalar for 1-D inputs) to ``[T, N]``."""
    array = np.asarray(bootstrap)
    if array.dtype.kind not in "fiu":
        raise DTypeError(f"bootstrap: expected a real-valued array, got dtype {array.dtype}")
    last_row_only = array.ndim == 0 if one_d else array.ndim == 1
    if not last_row_only:
        return _floats(array, "bootstrap", shape)[0]
    row = np.broadcast_to(array.astype(np.float32), (shape[1],)) if one_d else array.astype(np.float32)
    if row.shape != (shape[1],):
        raise ShapeError(f"bootstrap: expected [N] = ({shape[1]},) or [T, N] = {shape}, got {array.shape}")
    full = np.zeros(shape, dtype=np.float32)
    if shape[0] > 0:
        full[-1] = row
    return full
