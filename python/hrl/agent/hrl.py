"""``LitaAgentHRL``: L2 sets the day's goal, L4 weights the threads, L3 acts inside L1's box, and
L1 masks every offer and acceptance (always).

Per day (``before_step``): the macro state is read off the AWI with
:func:`hrl.features.macro_features` (the function the offline pipeline uses) and L2 sets the goal
g_t. Per round (``first_proposals`` / ``counter_all``): the Penguin-style baseline decides as in
:class:`~hrl.agent.l1.LitaAgentL1`; every thread of the round is encoded (history, goal, baseline,
context, L1's box: caps per offset, price bounds, day and kind masks) into one batch; L4 gives
alpha_k per thread and L3 a kind (accept / counter / end), a delivery offset and two fractions
in ONE pass each; :func:`hrl.models.box.decode_round` turns them into integer offers inside L1's
box (alpha_k = thread k's share of its day's cap); then L1's round step (Rust) keeps, clips or
drops every decision, exactly as for LitaAgentL1. Only live threads are encoded (negotiations
that ended today are not).

Fallback: when the checkpoint is missing or unreadable, or a model raises (a NaN/inf output raises
:class:`~hrl.errors.NonFiniteError`), the agent logs one warning and plays pure LitaAgentL1 for the
rest of the world (:attr:`LitaAgentHRL.fallback_reason` says why).

Checkpoint: ``checkpoint=`` (a path), else the ``HRL_CHECKPOINT`` environment variable, else the
packaged default :data:`DEFAULT_CHECKPOINT` (absent until a trained bundle is shipped). Load by
import path: ``hrl.agent.hrl.LitaAgentHRL`` (and ``...TrackedLitaAgentHRL``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from negmas import SAOState
from numpy.typing import NDArray

from hrl.agent.l1 import LitaAgentL1
from hrl.agent.policy import HRLPolicy, Mode, RoundRecord, RoundStep
from hrl.agent.transitions import L2Transition, RoundTransition, TransitionLog
from hrl.config import OFFER_DIM
from hrl.errors import CheckpointError, ConfigError
from hrl.features import (
    HORIZON_BINS,
    MACRO_FEATURES,
    baseline_features,
    macro_features,
    micro_context,
    offer_features,
)
from hrl.models.box import decode_round
from hrl.models.l3 import ACCEPT as L3_ACCEPT
from hrl.models.l3 import END as L3_END
from hrl.models.l3 import L3_INPUTS
from hrl.safety import BUY, SELL, SafetyState
from hrl.safety.baseline import ACCEPT, END, OFFER, Decision
from hrl.safety.mask import MaskedRound
from hrl.safety.replay import baseline_row, l1_view
from hrl.train.bundle import Bundle, load_bundle

if TYPE_CHECKING:  # TrackedLitaAgentHRL's tables only: play stays free of polars (hrl.submission)
    import polars as pl

__all__ = ["CHECKPOINT_ENV", "DEFAULT_CHECKPOINT", "LitaAgentHRL", "MacroObservation", "TrackedLitaAgentHRL"]

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).with_name("checkpoints") / "hrl_bundle.pt"
"""The packaged bundle the agent loads when given no path (absent until one is shipped)."""
CHECKPOINT_ENV = "HRL_CHECKPOINT"
"""Environment variable naming a bundle (for runners that construct agents by class path only)."""

MAX_THREADS = 64
"""Threads per round the preallocated buffers hold (grown on demand)."""


class MacroObservation:
    """One day's macro inputs as the agent computed them (also what the tests compare with the
    offline macro table).

    Attributes:
        day: simulated day; features: float32 ``[37]`` (:data:`hrl.features.MACRO_FEATURES`);
        committed_supplies, committed_sales: ``[11]`` units; raw: the numbers fed to
        :func:`hrl.features.macro_features`.
    """

    __slots__ = ("committed_sales", "committed_supplies", "day", "features", "raw")

    def __init__(
        self,
        day: int,
        features: NDArray[np.float32],
        committed_supplies: NDArray[np.float64],
        committed_sales: NDArray[np.float64],
        raw: dict[str, float],
    ) -> None:
        self.day = day
        self.features = features
        self.committed_supplies = committed_supplies
        self.committed_sales = committed_sales
        self.raw = raw


def observe_macro(awi: Any, initial_balance: float) -> MacroObservation:
    """Today's macro inputs off the AWI (see :func:`hrl.features.macro_features` for the fields)."""
    s = int(awi.current_step)
    supplies = np.array([awi.total_supplies_at(s + k) for k in range(HORIZON_BINS)], np.float64)
    sales = np.array([awi.total_sales_at(s + k) for k in range(HORIZON_BINS)], np.float64)
    prices = awi.trading_prices
    q_in = float(awi.current_exogenous_input_quantity)
    q_out = float(awi.current_exogenous_output_quantity)
    raw = {
        "day": float(s),
        "n_steps": float(awi.n_steps),
        "level": float(awi.level),
        "n_levels": float(awi.n_processes),
        "n_lines": float(awi.n_lines),
        "balance": float(awi.current_balance),
        "initial_balance": float(initial_balance),
        "inventory_input": float(awi.current_inventory_input),
        "inventory_output": float(awi.current_inventory_output),
        "trading_price_in": float(prices[awi.my_input_product]),
        "trading_price_out": float(prices[awi.my_output_product]),
        "exogenous_in_quantity": q_in,
        "exogenous_in_price": float(awi.current_exogenous_input_price) / q_in if q_in else 0.0,
        "exogenous_out_quantity": q_out,
        "exogenous_out_price": float(awi.current_exogenous_output_price) / q_out if q_out else 0.0,
    }
    features = macro_features(**raw, committed_supplies=supplies, committed_sales=sales)[0]
    return MacroObservation(s, features, supplies, sales, raw)


class _Buffers:
    """Reusable per-round input arrays (grown when a round has more threads or longer histories)."""

    def __init__(self, threads: int, history: int, n_days: int) -> None:
        self.history = np.zeros((threads, history, OFFER_DIM), np.float32)
        self.history_mask = np.zeros((threads, history), bool)
        self.goal = np.zeros((threads, 4), np.float32)
        self.baseline = np.zeros((threads, 3), np.float32)
        self.context = np.zeros((threads, 3), np.float32)
        self.caps = np.zeros((threads, n_days), np.float32)
        self.prices = np.zeros((threads, 2), np.float32)
        self.day_mask = np.zeros((threads, n_days), bool)
        self.kind_mask = np.ones((threads, 3), bool)

    @property
    def capacity(self) -> tuple[int, int]:
        return self.history.shape[0], self.history.shape[1]


class LitaAgentHRL(LitaAgentL1):
    """The hierarchical agent (see the module docs).

    Args:
        checkpoint: path of a bundle (:func:`hrl.train.bundle.save_bundle`); default: the
            ``HRL_CHECKPOINT`` environment variable, else :data:`DEFAULT_CHECKPOINT`.
        bundle: an in-memory :class:`~hrl.train.bundle.Bundle` (overrides ``checkpoint``; rollouts
            share the learner's models this way).
        mode: ``"deterministic"`` (play) or ``"sample"`` (rollouts: records :attr:`transitions`).
        seed: seed of the sampling generator (default: drawn from torch's global RNG).
        record: keep every masked round in :attr:`rounds` (as LitaAgentL1).
        layers: play only these layers of the bundle (ablations): ``("l2", "l3")`` drops L4
            (alpha = 1, an equal split of a day's cap), ``("l2",)`` drops L3 and L4 as well, which
            plays exactly LitaAgentL1's decisions (L2's goal reaches the offers only through L3).
            Default: every layer the bundle has.
    """

    def __init__(
        self,
        *args: Any,
        checkpoint: str | os.PathLike[str] | None = None,
        bundle: Bundle | None = None,
        mode: Mode = "deterministic",
        seed: int | None = None,
        record: bool = False,
        layers: tuple[str, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, record=record, **kwargs)
        if mode not in ("deterministic", "sample"):
            raise ConfigError(f"mode must be 'deterministic' or 'sample', got {mode!r}")
        if layers is not None and (("l2" not in layers) or not set(layers) <= {"l2", "l3", "l4"}):
            raise ConfigError(f"layers: l2 and any of l3, l4, got {layers!r}")
        if layers is not None and "l4" in layers and "l3" not in layers:
            raise ConfigError("layers: l4 shares the caps of L3's counter-offers; keep l3 with it")
        self.layers = None if layers is None else tuple(layers)
        self.mode: Mode = mode
        self.checkpoint = checkpoint
        self._given_bundle = bundle
        self._seed = seed
        self.policy: HRLPolicy | None = None
        self.fallback_reason: str | None = None
        """Why the agent plays as LitaAgentL1 (None while the models act)."""
        self.transitions = TransitionLog()
        """Sample-mode records (see :mod:`hrl.agent.transitions`)."""
        self.macro_log: dict[int, MacroObservation] = {}
        """The macro inputs of every day the models saw."""
        self.n_model_rounds = 0
        """Rounds in which L3 acted."""
        self.l1_changed = 0
        """L3 counter/accept decisions that L1's final mask changed (clipped, dropped, or an
        acceptance turned into a counter-offer); :attr:`clip_rate` = this / :attr:`l3_acted`."""
        self.l3_acted = 0
        """L3 counter/accept decisions (``end`` excluded: the mask passes it through)."""
        self._initial_balance = 0.0
        self._goal: NDArray[np.float32] | None = None
        self._history: dict[str, list[tuple[int, int, float, int, bool]]] = {}
        self._buffers = _Buffers(MAX_THREADS, 40, 11)
        self._round_index = 0
        self._pending: tuple[str, list[str], dict[str, Decision], RoundStep | None, dict[str, Any]] | None = (
            None
        )

    @property
    def clip_rate(self) -> float:
        """Share of L3's counter/accept decisions that L1's final mask changed (NaN before any)."""
        return self.l1_changed / self.l3_acted if self.l3_acted else float("nan")

    # -- set-up and fallback -----------------------------------------------------------------
    def init(self) -> None:
        super().init()
        self._initial_balance = float(self.awi.current_balance)
        torch.set_num_threads(1)
        try:
            bundle = self._given_bundle if self._given_bundle is not None else load_bundle(self._path())
            if self.layers is not None:
                keep = self.layers
                bundle = Bundle(
                    l2=bundle.l2,
                    l3=bundle.l3 if "l3" in keep else None,
                    l4=bundle.l4 if "l4" in keep else None,
                    extra=bundle.extra,
                )
            seed = self._seed if self._seed is not None else int(torch.randint(0, 2**31 - 1, (1,)))
            self.policy = HRLPolicy(bundle, mode=self.mode, seed=seed)
            l3 = bundle.l3
            n_days = l3.config.n_days if l3 is not None else 11
            history = l3.config.max_history if l3 is not None else 40
            self._buffers = _Buffers(MAX_THREADS, history, n_days)
        except Exception as error:
            self._fall_back(error)

    def _path(self) -> Path:
        if self.checkpoint is not None:
            return Path(self.checkpoint)
        env = os.environ.get(CHECKPOINT_ENV)
        if env:
            return Path(env)
        if not DEFAULT_CHECKPOINT.is_file():
            raise CheckpointError(
                f"{DEFAULT_CHECKPOINT}: no packaged bundle; pass checkpoint= or set {CHECKPOINT_ENV}"
            )
        return DEFAULT_CHECKPOINT

    def _fall_back(self, error: BaseException) -> None:
        """Stop using the models for the rest of the world; log once."""
        if self.fallback_reason is None:
            self.fallback_reason = f"{type(error).__name__}: {error}"
            log.warning(
                "LitaAgentHRL %s falls back to LitaAgentL1 for the rest of the world: %s",
                getattr(self, "id", "?"),
                self.fallback_reason,
            )
        self.policy = None
        self._goal = None
        self._pending = None

    # -- day ---------------------------------------------------------------------------------
    def before_step(self) -> None:
        super().before_step()
        self._history = {}
        self._round_index = 0
        self._goal = None
        if self.policy is None:
            return
        try:
            self._set_goal()
        except Exception as error:
            self._fall_back(error)

    def _set_goal(self) -> None:
        assert self.policy is not None
        awi = self.awi
        obs = observe_macro(awi, self._initial_balance)
        self.macro_log[obs.day] = obs
        l2 = self.policy.bundle.l2
        k = l2.config.history_days
        state = np.zeros((k + 1, len(MACRO_FEATURES)), np.float32)
        state_mask = np.zeros(k + 1, bool)
        for lag in range(k + 1):
            past = self.macro_log.get(obs.day - lag)
            if past is not None:
                state[k - lag], state_mask[k - lag] = past.features, True
        lines = max(float(awi.n_lines), 1.0)
        profile = np.stack([obs.committed_supplies, obs.committed_sales], axis=1).astype(np.float32) / lines
        can_buy, can_sell = not awi.is_first_level, not awi.is_last_level
        side_mask = np.array([can_buy, can_buy, can_sell, can_sell])
        step = self.policy.goal(state, state_mask, profile, side_mask)
        self._goal = step.goal.astype(np.float32)
        if step.record is not None:
            s, sm, p, sd = (t[0].clone() for t in step.record.inputs)
            self.transitions.l2.append(
                L2Transition(
                    obs.day,
                    s,
                    sm,
                    p,
                    sd,
                    torch.from_numpy(self._goal.copy()),
                    step.record.log_prob,
                    step.record.value,
                )
            )

    # -- rounds ------------------------------------------------------------------------------
    def decide_first_proposals(self) -> dict[str, Decision]:
        base = super().decide_first_proposals()
        return self._guarded_round("first_proposals", list(self.negotiators.keys()), base, {}, {})

    def decide_counter_all(self, offers: dict[str, Any], states: dict[str, SAOState]) -> dict[str, Decision]:
        base = super().decide_counter_all(offers, states)
        return self._guarded_round("counter_all", list(offers), base, offers, states)

    def _guarded_round(
        self,
        call: str,
        partners: list[str],
        base: dict[str, Decision],
        offers: dict[str, Any],
        states: dict[str, SAOState],
    ) -> dict[str, Decision]:
        """The models' decisions for the round; the baseline's ``base`` when there are no models
        (yet) or they fail, in which case the agent falls back to L1 for the rest of the world.

        Only live threads are encoded: a negotiation that already ended today (L1 ends whatever
        is decided for it) is not one of L3's threads, takes no share of L4's caps and is not
        counted in :attr:`clip_rate`."""
        if self.policy is None or self._goal is None:
            return base
        partners = [p for p in partners if p not in self._ended]
        offers = {p: o for p, o in offers.items() if p not in self._ended}
        try:
            for p, offer in offers.items():
                if offer is not None:
                    q, t, price = offer[0], offer[1], offer[2]
                    self._history.setdefault(p, []).append(
                        (int(q), int(t), float(price), _step(states, p), False)
                    )
            return self._model_round(call, partners, base, offers, states)
        except Exception as error:
            self._fall_back(error)
            self._round_state = None
            return base

    def _model_round(
        self,
        call: str,
        partners: list[str],
        base: dict[str, Decision],
        offers: dict[str, Any],
        states: dict[str, SAOState],
    ) -> dict[str, Decision]:
        """Encode the round's threads, run L4 + L3 once, build the decisions (L1 comes after)."""
        assert self.policy is not None and self._goal is not None
        state = self.safety_state()
        self._round_state = state
        if not partners:
            self._pending = None
            return base
        enc = self._encode(state, partners, base, offers, states)
        step = self.policy.act_round(*enc["arrays"]) if self.policy.has_l3 else None
        decisions = base if step is None else self._decisions(state, partners, base, offers, enc, step)
        self._pending = (call, partners, decisions, step, enc)
        return decisions

    def _encode(
        self,
        state: SafetyState,
        partners: list[str],
        base: dict[str, Decision],
        offers: dict[str, Any],
        states: dict[str, SAOState],
    ) -> dict[str, Any]:
        awi = self.awi
        assert self._goal is not None
        s, lines = state.current_step, float(state.n_lines)
        n = len(partners)
        histories = [list(self._history.get(p, ())) for p in partners]  # snapshots: strictly before
        buf = self._buffers
        cap_threads, cap_hist = buf.capacity
        max_hist = self.policy.bundle.l3.config.max_history if self.policy and self.policy.bundle.l3 else 40
        longest = min(max((len(h) for h in histories), default=0), max_hist)
        if n > cap_threads or longest > cap_hist:
            buf = self._buffers = _Buffers(max(n, cap_threads), max(longest, cap_hist), buf.day_mask.shape[1])
        consumers = set(awi.my_consumers)
        seller = np.array([p in consumers for p in partners])
        tp = np.where(seller, state.trading_price_out, state.trading_price_in)
        rounds = np.array([_step(states, p) for p in partners], np.int64)

        # history: one vectorised feature call over every thread's (truncated) offers
        hist = buf.history[:n, :longest]
        mask = buf.history_mask[:n, :longest]
        hist.fill(0.0)
        mask.fill(False)
        kept = [h[-longest:] if longest else [] for h in histories]
        counts = np.fromiter((len(h) for h in kept), np.int64, count=n)
        if counts.sum():
            thread = np.repeat(np.arange(n), counts)
            step = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            raw = np.array([o for h in kept for o in h], np.float64)  # (q, t, price, round, by_self)
            idx = np.stack([thread, step], 1)
            hist[idx[:, 0], idx[:, 1]] = offer_features(
                quantity=raw[:, 0],
                delivery_day=raw[:, 1],
                unit_price=raw[:, 2],
                round=raw[:, 3],
                by_self=raw[:, 4],
                day=s,
                n_lines=lines,
                trading_price=tp[idx[:, 0]],
            )
            mask[idx[:, 0], idx[:, 1]] = True

        # The baseline's decisions after the L1 mask, and L1's bounds with the standing offers
        # reserved: exactly what `hrl build` replays offline for the micro rows (one definition,
        # hrl.safety.replay.l1_view); an `end` baseline is (0, today, best safe price).
        sides = {p: (SELL if seller[i] else BUY) for i, p in enumerate(partners)}
        n_days = buf.day_mask.shape[1]
        view = l1_view(
            state,
            sides,
            {p: base[p] for p in partners if p in base},
            self._open_rows(),
            n_days=n_days,
            partner_offers={p: offers.get(p) for p in partners},
        )
        bounds = view.bounds
        base_kind: list[str] = []
        base_raw = np.empty((n, 3), np.float64)
        for i, p in enumerate(partners):
            kind, offer = baseline_row(view.actions.get(p), bounds, s, sides[p])
            base_kind.append(kind)
            base_raw[i] = offer
        baseline = buf.baseline[:n]
        baseline[:] = baseline_features(
            quantity=base_raw[:, 0],
            delivery_day=base_raw[:, 1],
            unit_price=base_raw[:, 2],
            day=s,
            n_lines=lines,
            trading_price=tp,
        )
        goal = buf.goal[:n]
        goal[:] = self._goal
        context = buf.context[:n]
        context[:] = micro_context(day=s, n_steps=state.n_steps, round=rounds, is_seller=seller)

        # L1's box: caps per offset and the safe price interval (inputs and decoding), the
        # delivery-day mask, and the kind mask (accept only where L1 finds the offer safe)
        thread_bounds = [bounds[sides[p]] for p in partners]
        box = np.array([(b.q_min, b.p_min, b.p_max) for b in thread_bounds], np.float64).reshape(n, 3)
        caps_raw = np.array([b.caps for b in thread_bounds], np.float64).reshape(n, n_days)
        caps = buf.caps[:n]
        caps[:] = caps_raw / lines
        prices = buf.prices[:n]
        prices[:] = box[:, 1:] / tp[:, None]
        day_mask = buf.day_mask[:n]
        day_mask[:] = [b.day_mask for b in thread_bounds]
        kind_mask = buf.kind_mask[:n]
        kind_mask[:] = True
        kind_mask[:, L3_ACCEPT] = [view.accept_safe.get(p, False) for p in partners]
        return {
            "arrays": (hist, mask, goal, baseline, context, caps, prices, day_mask, kind_mask),
            "seller": seller,
            "tp": tp,
            "rounds": rounds,
            "base_raw": base_raw,
            "base_kind": base_kind,
            "bounds": thread_bounds,
            "caps_raw": caps_raw,
            "box": box,
            "histories": histories,
        }

    def _decisions(
        self,
        state: SafetyState,
        partners: list[str],
        base: dict[str, Decision],
        offers: dict[str, Any],
        enc: dict[str, Any],
        step: RoundStep,
    ) -> dict[str, Decision]:
        s = state.current_step
        follow = step.follow.astype(bool)
        # a thread that follows L1 holds its baseline quantity on its day, as an acceptance does,
        # so L3's counter-offers share only what is left of that day's cap
        taken = [
            _taken(base.get(p) if follow[i] else Decision(ACCEPT, None), offers.get(p), s)
            for i, p in enumerate(partners)
        ]
        quantity, price = decode_round(
            kind=np.where(follow, L3_ACCEPT, step.kind),
            delivery=step.day,
            fraction=step.fraction,
            alpha=step.alpha,
            seller=enc["seller"],
            caps=enc["caps_raw"],
            box=enc["box"],
            accepted=[q for q, _ in taken],
            accepted_offset=[t for _, t in taken],
        )
        decisions: dict[str, Decision] = {}
        for i, p in enumerate(partners):
            kind = int(step.kind[i])
            if follow[i]:
                decisions[p] = base.get(p, Decision(END, None))
            elif kind == L3_ACCEPT and offers.get(p) is not None:
                decisions[p] = Decision(ACCEPT, offers[p])
            elif kind == L3_END or quantity[i] < 1:
                decisions[p] = Decision(END, None)
            else:
                decisions[p] = Decision(OFFER, (int(quantity[i]), s + int(step.day[i]), int(price[i])))
        self.n_model_rounds += 1
        return decisions

    # -- after L1 ----------------------------------------------------------------------------
    def _keep(self, call: str, masked: MaskedRound, returned: dict[str, Any], steps: dict[str, int]) -> None:
        super()._keep(call, masked, returned, steps)
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != call:
            return
        _, partners, decisions, step, enc = pending
        final = {p: masked.decisions.get(p, Decision(END, None)) for p in partners}
        for i, p in enumerate(partners):
            decision = final[p]
            if decision.kind == OFFER and decision.offer is not None:
                q, t, price = decision.offer
                self._history.setdefault(p, []).append(
                    (int(q), int(t), float(price), int(enc["rounds"][i]), True)
                )
        changed = np.array([final[p] != decisions.get(p, Decision(END, None)) for p in partners], bool)
        if step is not None:
            acted = (step.kind != L3_END) & (step.follow == 0)
            self.l1_changed += int(changed[acted].sum())
            self.l3_acted += int(acted.sum())
        if step is not None and step.record is not None:
            self._record_round(call, partners, step, step.record, enc, changed)
        self._after_round(call, partners, final, enc)
        self._round_index += 1

    def _record_round(
        self,
        call: str,
        partners: list[str],
        step: RoundStep,
        record: RoundRecord,
        enc: dict[str, Any],
        changed: NDArray[np.bool_],
    ) -> None:
        inputs = dict(zip(L3_INPUTS, (torch.from_numpy(a.copy()) for a in enc["arrays"]), strict=True))
        self.transitions.rounds.append(
            RoundTransition(
                day=int(self.awi.current_step),
                round_index=self._round_index,
                call=call,
                partners=tuple(partners),
                rounds=torch.from_numpy(enc["rounds"].copy()),
                **inputs,
                kind=torch.from_numpy(step.kind.copy()),
                delivery=torch.from_numpy(step.day.copy()),
                fraction=torch.from_numpy(step.fraction.copy()),
                follow=torch.from_numpy(step.follow.copy()),
                l3_log_prob=record.l3_log_prob.clone(),
                l3_value=record.l3_value.clone(),
                threads=record.threads.clone(),
                alpha=record.alpha_t.clone(),
                l4_log_prob_elements=record.l4_log_prob_elements.clone(),
                l4_log_prob=float(record.l4_log_prob_elements.sum()),
                l4_value=record.l4_value,
                changed_by_l1=torch.from_numpy(changed),
            )
        )

    def _after_round(
        self, call: str, partners: list[str], final: dict[str, Decision], enc: dict[str, Any]
    ) -> None:
        """Hook after each model round (``final``: the L1-masked decision per thread)."""


def _taken(decision: Decision | None, partner_offer: Any, today: int) -> tuple[int, int]:
    """``(quantity, delivery offset)`` that ``decision`` would take of its day's cap: its own
    offer's, or the partner's offer where it accepts; ``(0, 0)`` for an end or no decision."""
    if decision is None or decision.kind == END:
        return 0, 0
    offer = partner_offer if decision.kind == ACCEPT else decision.offer
    if offer is None:
        return 0, 0
    return int(offer[0]), int(offer[1]) - today


def _step(states: dict[str, SAOState], partner: str) -> int:
    state = states.get(partner)
    return int(state.step) if state is not None else 0


class TrackedLitaAgentHRL(LitaAgentHRL):
    """LitaAgentHRL that records its own decisions as micro samples (``hrl.data.schema``).

    One row per thread per model round (its executed, L1-masked decision): ``propose`` (an offer
    sent), ``accept`` or ``end``, with the history strictly before the decision, the day's goal
    (de-normalised to units and money, as the offline table holds it), the L1 baseline, L1's box
    and the schema's ``residual_*`` columns (action - baseline, on ``propose`` rows).
    :meth:`micro_frame` returns them as a DataFrame with :data:`hrl.data.schema.MICRO_SCHEMA`;
    :attr:`live_inputs` keeps the L3 input rows the models saw (same order), so tests can compare
    play with the offline adapter.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The data package (polars) is imported by the tracked agent only: the playing agent's
        # import closure stays small (hrl.submission vendors it).
        from hrl.data.schema import SCHEMA_VERSION

        super().__init__(*args, **kwargs)
        self._schema_version = SCHEMA_VERSION
        self.micro_rows: list[dict[str, Any]] = []
        self.live_inputs: list[dict[str, NDArray[Any]]] = []

    def _after_round(
        self, call: str, partners: list[str], final: dict[str, Decision], enc: dict[str, Any]
    ) -> None:
        awi = self.awi
        s, n_steps = int(awi.current_step), int(awi.n_steps)
        lines = float(awi.n_lines)
        assert self._goal is not None
        state = self._round_state
        tp_in = state.trading_price_in if state is not None else 0.0
        tp_out = state.trading_price_out if state is not None else 0.0
        goal_raw = self._goal * np.array([lines, tp_in, lines, tp_out], np.float32)
        world = str(getattr(awi._world, "name", ""))
        hist, mask, goal, baseline, context, caps, prices, day_mask, kind_mask = enc["arrays"]
        for i, p in enumerate(partners):
            seller = bool(enc["seller"][i])
            history = enc["histories"][i]
            items = [
                {
                    "seq": j,
                    "round": int(o[3]),
                    "proposer_is_seller": seller if o[4] else not seller,
                    "quantity": int(o[0]),
                    "delivery_day": int(o[1]),
                    "unit_price": float(o[2]),
                }
                for j, o in enumerate(history)
            ]
            decision = final[p]
            kind = {OFFER: "propose", ACCEPT: "accept", END: "end"}[decision.kind]
            offer = decision.offer if decision.kind in (OFFER, ACCEPT) else None
            bq, bd, bp = (float(x) for x in enc["base_raw"][i])
            bounds = enc["bounds"][i]
            nmi = self.get_nmi(p)
            self.micro_rows.append(
                {
                    "schema_version": self._schema_version,
                    "world": world,
                    "negotiation_id": str(nmi.id) if nmi is not None else "",
                    "day": s,
                    "n_steps": n_steps,
                    "relative_time": s / n_steps,
                    "actor": self.id,
                    "actor_type": type(self).__name__,
                    "partner": p,
                    "actor_is_seller": seller,
                    "decision_seq": len(history),
                    "round": int(enc["rounds"][i]),
                    "relative_round": int(enc["rounds"][i]) / 20,
                    "history": items,
                    "history_len": len(items),
                    "goal_q_buy": float(goal_raw[0]),
                    "goal_p_buy": float(goal_raw[1]),
                    "goal_q_sell": float(goal_raw[2]),
                    "goal_p_sell": float(goal_raw[3]),
                    "action_kind": kind,
                    "action_quantity": int(offer[0]) if offer is not None else None,
                    "action_delivery_day": int(offer[1]) if offer is not None else None,
                    "action_unit_price": float(offer[2]) if offer is not None else None,
                    "baseline_kind": enc["base_kind"][i],
                    "baseline_quantity": bq,
                    "baseline_delivery_day": bd,
                    "baseline_unit_price": bp,
                    "residual_quantity": float(offer[0]) - bq if kind == "propose" and offer else None,
                    "residual_delivery_day": float(offer[1]) - bd if kind == "propose" and offer else None,
                    "residual_unit_price": float(offer[2]) - bp if kind == "propose" and offer else None,
                    "l1_day_mask": list(bounds.day_mask),
                    "l1_caps": [float(c) for c in bounds.caps],
                    "l1_accept_safe": bool(kind_mask[i, L3_ACCEPT]),
                    "l1_q_min": float(bounds.q_min),
                    "l1_q_max": float(bounds.q_max),
                    "l1_p_min": float(bounds.p_min),
                    "l1_p_max": float(bounds.p_max),
                }
            )
            length = int(mask[i].sum())
            self.live_inputs.append(
                {
                    "history": hist[i, :length].copy(),
                    "goal": goal[i].copy(),
                    "baseline": baseline[i].copy(),
                    "context": context[i].copy(),
                    "caps": caps[i].copy(),
                    "prices": prices[i].copy(),
                    "day_mask": day_mask[i].copy(),
                    "kind_mask": kind_mask[i].copy(),
                }
            )

    def micro_frame(self) -> pl.DataFrame:
        """The recorded decisions as a micro table (:data:`hrl.data.schema.MICRO_SCHEMA`)."""
        import polars as pl

        from hrl.data.schema import MICRO_SCHEMA, check_schema

        frame = pl.DataFrame(self.micro_rows, schema=MICRO_SCHEMA)
        return check_schema(frame, MICRO_SCHEMA, "tracked micro")
