"""Agreement of the Penguin-style baseline with the real PenguinAgent, measured in shadow.

:class:`ShadowPenguin` *is* PenguinAgent (the world follows its decisions); at every decision it
first asks :class:`~hrl.safety.baseline.PenguinStyleBaseline` for its decision on the same inputs
(the same AWI, issues and offers, and the same random state: the global ``random`` and NumPy
states are saved before and restored after), then lets PenguinAgent decide, and compares.

Decision types and what counts as agreement (prices compared as the integer issue casts them):
- ``first_proposal``: per negotiator, the same opening offer (or both none).
- ``counter``: per negotiator answered in ``counter_all``, the same response: accept, end, or
  the same counter-offer.
- ``accept``: per partner offer received, both accept it or both do not.

Each is reported for the raw baseline and for the baseline after the L1 mask (how often safety
changes the expert's decision), together with PenguinAgent's own unsafe-action rate under the L1
rules (its round's acceptances and offers checked together, as the mask would).

Run: ``python -m hrl.safety.shadow --worlds 4 --steps 20 --out runs/l1/agreement.json``.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
from negmas import ResponseType
from scml_agents.scml2024.standard.team_penguin.penguinagent import PenguinAgent

from hrl.io import atomic_write_json
from hrl.opponents import BUILTINS, PENGUIN
from hrl.safety import audit_offers
from hrl.safety.baseline import ACCEPT, END, OFFER, Decision, PenguinStyleBaseline
from hrl.safety.mask import Row, mask_round, side_of

__all__ = ["ShadowPenguin", "measure_agreement"]

SHADOW = "hrl.safety.shadow.ShadowPenguin"
DECISION_TYPES = ("first_proposal", "counter", "accept")


def _cast(offer: Any) -> tuple[int, int, int] | None:
    if offer is None:
        return None
    return (int(offer[0]), int(offer[1]), int(offer[2]))


def _from_response(response: Any) -> tuple[str, tuple[int, int, int] | None]:
    if response is None or response.response == ResponseType.END_NEGOTIATION:
        return (END, None)
    if response.response == ResponseType.ACCEPT_OFFER:
        return (ACCEPT, None)
    return (OFFER, _cast(response.outcome))


def _from_decision(decision: Decision | None) -> tuple[str, tuple[int, int, int] | None]:
    if decision is None or decision.kind == END:
        return (END, None)
    if decision.kind == ACCEPT:
        return (ACCEPT, None)
    return (OFFER, _cast(decision.offer))


class ShadowPenguin(PenguinAgent):  # type: ignore[misc]
    """PenguinAgent that records, at each decision, whether the baseline would decide the same."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.baseline = PenguinStyleBaseline()
        self.tally: Counter[str] = Counter()
        self.penguin_audit: Counter[str] = Counter()
        self._standing: dict[str, list[Row]] = {}

    def before_step(self) -> None:
        super().before_step()
        self._standing = {}

    def _open_rows(self) -> list[Row]:
        return [row for rows in self._standing.values() for row in rows]

    def _count(self, kind: str, same_raw: bool, same_masked: bool) -> None:
        self.tally[f"{kind}/n"] += 1
        self.tally[f"{kind}/raw"] += same_raw
        self.tally[f"{kind}/masked"] += same_masked

    def _audit_penguin(self, decisions: Mapping[str, Decision]) -> None:
        """Penguin's round (acceptances first, then offers, on top of its standing offers)."""
        rows = list(self._open_rows())
        for kind in (ACCEPT, OFFER):
            for p, d in decisions.items():
                if d.kind == kind and d.offer is not None:
                    rows.append((*(_cast(d.offer) or (0, 0, 0)), side_of(self.awi, p)))
        n_open = len(self._open_rows())
        from hrl.safety import state_from_awi

        counts = audit_offers(state_from_awi(self.awi), rows, sequential=True)
        if n_open:  # judge only this round's decisions: subtract the standing rows' own counts
            base = audit_offers(state_from_awi(self.awi), rows[:n_open], sequential=True)
            counts = {k: v - base[k] for k, v in counts.items()}
        self.penguin_audit.update(counts)

    def first_proposals(self) -> dict[str, Any]:
        saved = (random.getstate(), np.random.get_state())
        ours = self.baseline.first_proposals(self)
        masked = mask_round(self.awi, {p: Decision(OFFER, o) for p, o in ours.items()}, self._open_rows())
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        theirs: dict[str, Any] = super().first_proposals()
        for p in self.negotiators:
            want = _cast(theirs.get(p))
            raw = _cast(ours.get(p))
            m = masked.decisions.get(p)
            mine = _cast(m.offer) if m is not None and m.kind == OFFER else None
            self._count("first_proposal", raw == want, mine == want)
        self._audit_penguin({p: Decision(OFFER, o) for p, o in theirs.items() if o is not None})
        for p, o in theirs.items():
            if o is not None:
                self._standing.setdefault(p, []).append((*(_cast(o) or (0, 0, 0)), side_of(self.awi, p)))
        return theirs

    def counter_all(self, offers: dict[str, Any], states: dict[str, Any]) -> dict[str, Any]:
        for p in offers:
            self._standing.pop(p, None)
        saved = (random.getstate(), np.random.get_state())
        ours = self.baseline.counter_all(self, offers)
        masked = mask_round(self.awi, ours, self._open_rows())
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        theirs: dict[str, Any] = super().counter_all(offers, states)
        for p in self.negotiators:
            want = _from_response(theirs.get(p))
            self._count(
                "counter",
                _from_decision(ours.get(p)) == want,
                _from_decision(masked.decisions.get(p)) == want,
            )
        for p, offer in offers.items():
            if offer is None:
                continue
            want_accept = _from_response(theirs.get(p))[0] == ACCEPT
            self._count(
                "accept",
                (_from_decision(ours.get(p))[0] == ACCEPT) == want_accept,
                (_from_decision(masked.decisions.get(p))[0] == ACCEPT) == want_accept,
            )
        penguin = {}
        for p, r in theirs.items():
            kind, o = _from_response(r)
            if kind == ACCEPT:
                penguin[p] = Decision(ACCEPT, offers.get(p))
            elif kind == OFFER:
                penguin[p] = Decision(OFFER, o)
        self._audit_penguin(penguin)
        for p, d in penguin.items():
            if d.kind == OFFER and d.offer is not None:
                self._standing.setdefault(p, []).append(
                    (*(_cast(d.offer) or (0, 0, 0)), side_of(self.awi, p))
                )
        return theirs

    def on_negotiation_success(self, contract: Any, mechanism: Any) -> None:
        super().on_negotiation_success(contract, mechanism)
        for partner in contract.partners:
            self._standing.pop(partner, None)

    def on_negotiation_failure(self, partners: Any, annotation: Any, mechanism: Any, state: Any) -> None:
        super().on_negotiation_failure(partners, annotation, mechanism, state)
        for partner in partners:
            self._standing.pop(partner, None)


def measure_agreement(
    *, n_worlds: int = 2, n_steps: int = 15, n_shadows: int = 2, seed: int = 0, n_processes: int = 2
) -> dict[str, Any]:
    """Runs real Standard worlds with ``n_shadows`` ShadowPenguins among PenguinAgent and the
    built-ins and returns the agreement rates per decision type (raw and masked), the counts
    behind them and PenguinAgent's unsafe-action counts under the L1 rules."""
    from hrl.worlds import WorldSpec, build_world

    tally: Counter[str] = Counter()
    audit: Counter[str] = Counter()
    start = time.perf_counter()
    for k in range(n_worlds):
        agents = (*([SHADOW] * n_shadows), PENGUIN, *BUILTINS)
        spec = WorldSpec(
            agents=agents, n_steps=n_steps, n_processes=n_processes, seed=seed + k, name=f"shadow{k}"
        )
        world = build_world(spec)
        while world.step():
            pass
        for adapter in world.agents.values():
            agent = getattr(adapter, "_obj", None)
            if isinstance(agent, ShadowPenguin):
                tally.update(agent.tally)
                audit.update(agent.penguin_audit)
    rates = {
        kind: {
            "n": tally[f"{kind}/n"],
            "raw": tally[f"{kind}/raw"] / max(1, tally[f"{kind}/n"]),
            "masked": tally[f"{kind}/masked"] / max(1, tally[f"{kind}/n"]),
        }
        for kind in DECISION_TYPES
    }
    checked = audit["n_offers"]
    return {
        "worlds": n_worlds,
        "n_steps": n_steps,
        "seed": seed,
        "agreement": rates,
        "penguin_unsafe": {
            **{k: int(v) for k, v in audit.items()},
            "rate": audit["n_unsafe"] / max(1, checked),
        },
        "duration_s": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--worlds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shadows", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/l1/agreement.json")
    args = parser.parse_args(argv)
    # Under `python -m` this module is __main__; the worlds load hrl.safety.shadow's classes.
    from hrl.safety.shadow import measure_agreement

    result = measure_agreement(
        n_worlds=args.worlds, n_steps=args.steps, n_shadows=args.shadows, seed=args.seed
    )
    atomic_write_json(args.out, result)
    print(result)


if __name__ == "__main__":
    main()
