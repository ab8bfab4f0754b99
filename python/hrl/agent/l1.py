"""``LitaAgentL1``: the Penguin-style baseline with every action passed through the L1 mask.

It is the fallback of the full HRL agent and its floor. Each day it plays
:class:`~hrl.safety.baseline.PenguinStyleBaseline`; every round's proposals and acceptances go
through :func:`hrl.safety.mask.mask_round` (one Rust call) together with the offers it still has
standing in *live* negotiations, so the whole set respects the day's caps, price bounds and cash
budget. Decisions for negotiations that already ended are dropped before the mask (they would
reach nobody and must not hold capacity). The safety state uses the stock model of
:mod:`hrl.safety.world_model` (checked against the scml version at start-up and guarded against
falling stock) and, at first level, the expected exogenous supply as exposure. Load it by import
path: ``hrl.agent.l1.LitaAgentL1``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from negmas import Contract, ResponseType, SAOResponse, SAOState
from scml.std import StdSyncAgent

from hrl.errors import ConfigError
from hrl.safety import SafetyState, state_from_awi
from hrl.safety.baseline import ACCEPT, L1_BASELINE_OPTIONS, OFFER, Decision, PenguinStyleBaseline
from hrl.safety.mask import MaskedRound, Row, mask_round, side_of
from hrl.safety.state import CONSUMED
from hrl.safety.world_model import StockGuard, expected_exogenous_supplies

__all__ = ["LitaAgentL1"]

log = logging.getLogger(__name__)


class LitaAgentL1(StdSyncAgent):  # type: ignore[misc]
    """Penguin-style baseline + L1 mask (see the module docs).

    Args:
        record: keep every masked round in :attr:`rounds` (for tests and audits).
        baseline: the decision maker to mask (default: a fresh :class:`PenguinStyleBaseline` with
            :data:`~hrl.safety.baseline.L1_BASELINE_OPTIONS`: PenguinAgent's quirks fixed and stock
            bought up to the lines, which measured better in the same seats; docs/l1.md). With the
            consumed stock model its ``stock_target`` falls back to its ``productivity``.
        baseline_options: keyword arguments of :class:`PenguinStyleBaseline` that replace those
            of :data:`~hrl.safety.baseline.L1_BASELINE_OPTIONS` (``productivity``,
            ``today_share``, ``quirks``, ``stock_target``, ``future_buy_divisor``,
            ``future_sell_divisor``, ``keep_selling``, ``own_sell_days``): the baseline's knobs, e.g. for
            ``hrl compare --agent 'P9=hrl.agent.l1.LitaAgentL1{"baseline_options":
            {"productivity": 0.9}}'``. Not together with ``baseline``.
        exposure_limit: the most expected (unsigned) exogenous input units a first-level agent
            may sell against per future day (``None``: the full estimate, 0: none).
    """

    def __init__(
        self,
        *args: Any,
        record: bool = False,
        baseline: PenguinStyleBaseline | None = None,
        baseline_options: Mapping[str, Any] | None = None,
        exposure_limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        if baseline is not None and baseline_options is not None:
            raise ConfigError("LitaAgentL1: pass baseline or baseline_options, not both")
        super().__init__(*args, **kwargs)
        self.baseline = baseline if baseline is not None else _baseline(baseline_options)
        self.record = record
        self.exposure_limit = exposure_limit
        self.stock_guard = StockGuard()
        """Which stock model the safety state uses (switches once if stock ever falls)."""
        self._exogenous_inputs: list[int] = []
        """Exogenous input units per day so far (first level), today's last."""
        self._ended: set[str] = set()
        """Partners whose negotiation ended today."""
        self.rounds: list[tuple[str, MaskedRound, dict[str, Any]]] = []
        """Recorded ``(call, masked round, what was returned to negmas)``."""
        self.round_steps: list[dict[str, int]] = []
        """For each recorded round, the negotiation round (``SAOState.step``) per partner answered
        (empty for ``first_proposals``, which opens round 0); used to match rounds to the logs."""
        self.errors: list[str] = []
        """Exceptions caught while deciding (the agent then ends the round's negotiations)."""
        self._standing: dict[str, list[Row]] = {}
        self._round_state: SafetyState | None = None
        self._first: tuple[int, dict[str, Any]] | None = None
        """The day's first proposals, handed out again while negmas asks for them repeatedly."""

    def before_step(self) -> None:
        super().before_step()
        self._standing = {}
        self._ended = set()
        self.stock_guard.observe(int(self.awi.current_inventory_input))
        if self.stock_guard.model == CONSUMED:  # stock is used up: buying the lines full each day over-buys
            self.baseline.stock_target = min(self.baseline.stock_target, self.baseline.productivity)
        if self.awi.is_first_level:
            self._exogenous_inputs.append(int(self.awi.current_exogenous_input_quantity))

    def safety_state(self) -> SafetyState:
        """Today's :class:`~hrl.safety.SafetyState` with this agent's stock model and, at first
        level, its expected exogenous supply (read once per round)."""
        awi = self.awi
        window = (
            min(int(awi.current_step) + int(awi.horizon), int(awi.n_steps) - 1) - int(awi.current_step) + 1
        )
        expected = (
            expected_exogenous_supplies(self._exogenous_inputs, window, limit=self.exposure_limit)
            if awi.is_first_level and self._exogenous_inputs
            else ()
        )
        return state_from_awi(awi, expected_supplies=expected, stock_model=self.stock_guard.model)

    def _live(self, decisions: dict[str, Decision]) -> dict[str, Decision]:
        """``decisions`` without the negotiations that already ended today."""
        return {p: d for p, d in decisions.items() if p not in self._ended}

    def _open_rows(self) -> list[Row]:
        return [row for rows in self._standing.values() for row in rows]

    def first_proposals(self) -> dict[str, Any]:
        # negmas (SAOSyncController.propose) asks again whenever its dict of first proposals runs
        # out or lacks a negotiator, while it hands them out one negotiation at a time. A fresh
        # answer would be masked against a state in which some of the first offers already sent
        # were answered (ended), so offers from two asks could together break a cap while each
        # ask was safe on its own. Until the first counter_all of the day, the same (jointly
        # safe) proposals are returned.
        if self._first is not None and self._first[0] == self.awi.current_step:
            return dict(self._first[1])
        try:
            decisions = self._live(self.decide_first_proposals())
            masked = mask_round(self.awi, decisions, self._open_rows(), state=self._state())
            result: dict[str, Any] = {}
            for p, decision in masked.decisions.items():
                result[p] = decision.offer if decision.kind == OFFER else None
                if decision.kind == OFFER and decision.offer is not None:
                    self._stand(p, decision.offer)
            self._keep("first_proposals", masked, result, {})
            self._first = (self.awi.current_step, dict(result))
            return result
        except Exception as error:  # never let an exception reach the world: offer nothing
            self.errors.append(f"first_proposals: {error!r}")
            log.exception("LitaAgentL1.first_proposals failed")
            return {}

    def counter_all(self, offers: dict[str, Any], states: dict[str, SAOState]) -> dict[str, SAOResponse]:
        self._first = None
        try:
            # A partner that sent an offer has rejected whatever we had standing with it.
            for p in offers:
                self._standing.pop(p, None)
            decisions = self._live(self.decide_counter_all(offers, states))
            masked = mask_round(self.awi, decisions, self._open_rows(), state=self._state())
            responses: dict[str, SAOResponse] = {}
            for p, decision in masked.decisions.items():
                if decision.kind == ACCEPT:
                    responses[p] = SAOResponse(ResponseType.ACCEPT_OFFER, offers[p])
                elif decision.kind == OFFER and decision.offer is not None:
                    responses[p] = SAOResponse(ResponseType.REJECT_OFFER, decision.offer)
                    self._stand(p, decision.offer)
                else:
                    responses[p] = SAOResponse(ResponseType.END_NEGOTIATION, None)
            self._keep("counter_all", masked, responses, {p: int(s.step) for p, s in states.items()})
            return responses
        except Exception as error:  # never let an exception reach the world: end everything
            self.errors.append(f"counter_all: {error!r}")
            log.exception("LitaAgentL1.counter_all failed")
            return {p: SAOResponse(ResponseType.END_NEGOTIATION, None) for p in offers}

    def decide_first_proposals(self) -> dict[str, Decision]:
        """The round's unmasked opening decisions (the baseline's); subclasses replace it.

        Whatever it returns goes through the L1 mask before it reaches the world. A subclass may
        set ``self._round_state`` (today's :class:`~hrl.safety.SafetyState`, read once per round)
        so the mask does not read the AWI again.
        """
        self._round_state = None
        proposals = self.baseline.first_proposals(self)
        return {p: Decision(OFFER, o) for p, o in proposals.items()}

    def decide_counter_all(self, offers: dict[str, Any], states: dict[str, SAOState]) -> dict[str, Decision]:
        """The round's unmasked responses (the baseline's); subclasses replace it (see
        :meth:`decide_first_proposals`)."""
        self._round_state = None
        return self.baseline.counter_all(self, offers)

    def _state(self) -> SafetyState:
        return self._round_state if self._round_state is not None else self.safety_state()

    def _stand(self, partner: str, offer: tuple[Any, ...]) -> None:
        q, t, p = (int(x) for x in offer)
        self._standing.setdefault(partner, []).append((q, t, p, side_of(self.awi, partner)))

    def _keep(self, call: str, masked: MaskedRound, returned: dict[str, Any], steps: dict[str, int]) -> None:
        if self.record:
            self.rounds.append((call, masked, dict(returned)))
            self.round_steps.append(steps)

    def on_negotiation_success(self, contract: Contract, mechanism: Any) -> None:
        super().on_negotiation_success(contract, mechanism)
        for partner in contract.partners:
            self._standing.pop(partner, None)
            self._ended.add(partner)

    def on_negotiation_failure(
        self, partners: list[str], annotation: dict[str, Any], mechanism: Any, state: Any
    ) -> None:
        super().on_negotiation_failure(partners, annotation, mechanism, state)
        for partner in partners:
            self._standing.pop(partner, None)
            self._ended.add(partner)


_BASELINE_KNOBS = (
    "productivity",
    "today_share",
    "quirks",
    "stock_target",
    "future_buy_divisor",
    "future_sell_divisor",
    "keep_selling",
    "own_sell_days",
)


def _baseline(options: Mapping[str, Any] | None) -> PenguinStyleBaseline:
    """The L1 baseline with ``options`` over :data:`L1_BASELINE_OPTIONS`.

    Raises:
        ConfigError: an option that is not one of the baseline's knobs.
    """
    unknown = sorted(set(options or {}) - set(_BASELINE_KNOBS))
    if unknown:
        raise ConfigError(f"LitaAgentL1 baseline_options: unknown {unknown}; known: {list(_BASELINE_KNOBS)}")
    return PenguinStyleBaseline(**(L1_BASELINE_OPTIONS | dict(options or {})))
