"""L1's box as L3's action space: fractions in ``[0, 1]`` <-> integer offers inside L1's limits.

One definition for play (:class:`hrl.agent.hrl.LitaAgentHRL` decodes L3's fractions into offers)
and for behaviour cloning (:mod:`hrl.train.adapters` encodes the L1-projected expert offers into
fraction labels), so training and play compose the actions the same way.

Per thread (row) of a round, L1 gives (units: quantities in units, prices in money, days as
offsets from today):

- ``caps [N, D]``: per delivery offset, the largest safe quantity on the thread's side at the
  start of the round (the agent's standing offers reserved; buying at the lowest safe price);
- ``q_lo``: the smallest safe quantity (>= 1); ``p_lo, p_hi``: the safe unit-price interval.

A counter-offer on offset ``t`` gets the thread's share of what is left of that day's cap after
the round's acceptances (L4's meaning of alpha): with ``A`` the quantity the round accepts on the
same side and day and ``S`` the counter threads of the round on the same side and day,

    ``cap_k = floor((caps[t] - A) * alpha_k / sum_{j in S} alpha_j)``,

so the round's counter-offers on one day never add up to more than the day's cap (alpha = 1 on
every thread, i.e. no L4: an equal split); a thread whose share is below ``q_lo`` ends and gives
its share back to the others. The offer is

    ``q = q_lo + rint(f_q (cap_k - q_lo))``,  ``p = p_lo + rint(f_p (p_hi - p_lo))``

(``q = 0``, i.e. end the thread, when ``cap_k < q_lo``). :func:`encode` is the inverse on
integers: ``decode(encode(q, p)) == (clip(q, q_lo, cap_k), clip(p, p_lo, p_hi))``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["decode", "decode_round", "encode", "thread_caps"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def thread_caps(
    group: I64,
    side: I64,
    day: I64,
    counter: NDArray[np.bool_],
    alpha: F64,
    day_cap: F64,
    accepted: F64,
    q_lo: F64 | None = None,
) -> F64:
    """``[N]`` quantity cap of each counter row (0 on other rows), see the module docstring.

    Args:
        group: int ``[N]`` the round of each row (rows of one round decide together).
        side: int ``[N]`` BUY (0) or SELL (1).
        day: int ``[N]`` delivery offset of each row's offer (counter rows).
        counter: bool ``[N]`` the row makes a counter-offer.
        alpha: ``[N]`` L4's weight of each row (> 0 on counter rows).
        day_cap: ``[N]`` the row's L1 cap on its offset (``caps[row, day[row]]``), units.
        accepted: ``[N]`` units each row accepts (0 unless it accepts), on offset ``day``.
        q_lo: ``[N]`` the smallest safe quantity of each row; when given, a counter row whose
            share is below it gets cap 0 (it ends) and gives its share back to the other counter
            rows of its day (one recomputation: removing rows only raises the others' shares).
    """
    n = len(group)
    if n == 0:
        return np.zeros(0)
    span = int(day.max()) + 1
    key = (group * 2 + side) * span + day
    if key.max() > 65_536:  # many rounds at once: number the (round, side, day) groups densely
        _, key = np.unique(key, return_inverse=True)
        key = key.reshape(-1)
    taken = np.bincount(key, weights=np.where(counter, 0.0, accepted), minlength=key.max() + 1)
    room = np.maximum(day_cap - taken[key], 0.0)

    def share_out(sharing: NDArray[np.bool_]) -> F64:
        weight = np.bincount(key, weights=np.where(sharing, alpha, 0.0), minlength=key.max() + 1)
        share = np.divide(alpha, weight[key], out=np.zeros(n), where=weight[key] > 0)
        # + 1e-4: a share the float32 weights put a hair below an integer is that integer (the
        # shares of one day still sum to at most its room while fewer than 10^4 threads share it)
        return np.where(sharing, np.floor(room * share + 1e-4), 0.0)

    out = share_out(np.asarray(counter, bool))
    if q_lo is not None:
        out = share_out(counter & (out >= q_lo))
    return out


def decode(fraction: F64, cap: F64, q_lo: F64, p_lo: F64, p_hi: F64) -> tuple[I64, I64]:
    """Integer ``(quantity [N], price [N])`` from fractions ``[N, 2]`` (quantity, price) in
    ``[0, 1]``; quantity 0 where ``cap < q_lo`` (no room: the thread ends)."""
    f = np.clip(fraction, 0.0, 1.0)
    room = cap - q_lo
    q = np.where(room >= 0, q_lo + np.rint(f[:, 0] * np.maximum(room, 0.0)), 0.0)
    p = p_lo + np.rint(f[:, 1] * np.maximum(p_hi - p_lo, 0.0))
    return q.astype(np.int64), p.astype(np.int64)


def encode(
    quantity: F64, price: F64, cap: F64, q_lo: F64, p_lo: F64, p_hi: F64
) -> tuple[F64, NDArray[np.bool_]]:
    """Fractions ``[N, 2]`` of offers clipped into the box, and where each fraction is defined
    (``[N, 2]`` bool: False where the range is one point, so any fraction gives that point)."""
    q_room, p_room = cap - q_lo, p_hi - p_lo
    q = np.clip(quantity, q_lo, np.maximum(cap, q_lo))
    p = np.clip(price, p_lo, np.maximum(p_hi, p_lo))
    fq = np.divide(q - q_lo, q_room, out=np.zeros(len(q)), where=q_room > 0)
    fp = np.divide(p - p_lo, p_room, out=np.zeros(len(p)), where=p_room > 0)
    return np.stack([fq, fp], 1), np.stack([q_room > 0, p_room > 0], 1)


def decode_round(
    *,
    kind: ArrayLike,
    delivery: ArrayLike,
    fraction: ArrayLike,
    alpha: ArrayLike,
    seller: ArrayLike,
    caps: F64,
    box: F64,
    accepted: ArrayLike,
    accepted_offset: ArrayLike,
    group: ArrayLike | None = None,
) -> tuple[I64, I64]:
    """The integer counter-offers of ``N`` threads of ONE round (play; BC's labels invert it), or
    of many rounds at once with ``group`` (int ``[N]``, the round of each row; evaluation).

    Args:
        kind, delivery: int ``[N]`` L3's kinds (accept 0, counter 1, end 2) and offsets.
        fraction: ``[N, 2]`` L3's (quantity, price) fractions; alpha: ``[N]`` L4's weights (1s
            without L4).
        seller: bool ``[N]`` the thread sells; caps: ``[N, D]`` L1's caps per offset (units);
        box: ``[N, 3]`` (q_lo, p_lo, p_hi) of the thread's side.
        accepted, accepted_offset: ``[N]`` the partner offer's quantity and offset (used where the
            thread accepts).
        group: int ``[N]`` round of each row (default: all rows are one round).

    Returns:
        ``(quantity [N], price [N])``; quantity 0 on non-counter threads and where no room is left.
    """
    kind, delivery = np.asarray(kind, np.int64), np.asarray(delivery, np.int64)
    counter, accept = kind == 1, kind == 0
    n, d = caps.shape
    day = np.clip(np.where(counter, delivery, np.asarray(accepted_offset, np.int64)), 0, d - 1)
    took = np.where(accept, np.asarray(accepted, np.float64), 0.0)
    cap = thread_caps(
        np.zeros(n, np.int64) if group is None else np.asarray(group, np.int64),
        np.asarray(seller, np.int64),
        day,
        counter,
        np.asarray(alpha, np.float64),
        caps[np.arange(n), day],
        took,
        box[:, 0],
    )
    q, p = decode(np.asarray(fraction, np.float64), cap, box[:, 0], box[:, 1], box[:, 2])
    return np.where(counter, q, 0), p
