"""LitaAgentL1 in tiny real SCML 2025 Standard worlds: it never emits an unsafe action (checked
against the plain-Python reference of the L1 rules, from its state at decision time) and raises no
exception; the Penguin-style baseline agrees with the real PenguinAgent in shadow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from negmas import ResponseType

import hrl
from hrl.agent.l1 import LitaAgentL1
from hrl.errors import ConfigError
from hrl.opponents import BUILTINS, PENGUIN, load_agent_class
from hrl.safety import ACCEPT, DROPPED, KEPT
from hrl.safety.fallback import derive_limits as pure_limits
from hrl.safety.shadow import measure_agreement
from hrl.worlds import WorldSpec, build_world

L1 = "hrl.agent.l1.LitaAgentL1"


def run_recorded(spec: WorldSpec) -> tuple[Any, list[LitaAgentL1]]:
    world = build_world(spec)
    agents = [a._obj for a in world.agents.values() if isinstance(getattr(a, "_obj", None), LitaAgentL1)]
    for agent in agents:
        agent.record = True
    while world.step():
        pass
    return world, agents


def n_exceptions(world: Any) -> int:
    logs = (
        world.agent_exceptions,
        world.negotiator_exceptions,
        world.mechanism_exceptions,
        world.contract_exceptions,
        world.simulation_exceptions,
    )
    return sum(len(entries) for log in logs for entries in log.values())


def check_round(call: str, masked: Any, returned: dict[str, Any]) -> int:
    """Re-checks one round with the pure-Python rules (hrl.safety.fallback); returns the number of
    actions checked."""
    limits = pure_limits(masked.state)
    for row in masked.open_offers:
        limits.reserve(*row)
    checked = 0
    for partner, item, result in zip(masked.partners, masked.items, masked.results, strict=True):
        q, t, p, side, kind = item
        rq, rt, rp, verdict = result
        sent = returned.get(partner)
        if call == "counter_all":
            assert sent is not None
            if verdict == DROPPED:
                assert sent.response == ResponseType.END_NEGOTIATION
                continue
            if kind == ACCEPT and verdict == KEPT:
                assert sent.response == ResponseType.ACCEPT_OFFER
                assert limits.is_safe_to_accept(q, t, p, side), (masked.state, item)
                limits.reserve(q, t, p, side)
                checked += 1
                continue
            assert sent.response == ResponseType.REJECT_OFFER
            offer = tuple(sent.outcome)
        else:
            if verdict == DROPPED:
                assert sent is None
                continue
            offer = tuple(sent)
        assert offer == (rq, rt, rp)
        assert limits.is_safe_to_accept(*offer, side), (masked.state, offer, side)
        limits.reserve(*offer, side)
        checked += 1
    return checked


@pytest.mark.parametrize(("seed", "n_processes"), [(1, 2), (2, 3)])
def test_l1_agent_never_acts_unsafely_in_a_real_world(seed: int, n_processes: int) -> None:
    agents = (L1, PENGUIN, L1, *BUILTINS, L1)
    world, l1_agents = run_recorded(WorldSpec(agents=agents, n_steps=10, n_processes=n_processes, seed=seed))
    assert n_exceptions(world) == 0
    assert len(l1_agents) == 3
    checked = 0
    for agent in l1_agents:
        assert agent.errors == []
        assert agent.rounds, "the agent never decided anything"
        for call, masked, returned in agent.rounds:
            checked += check_round(call, masked, returned)
    assert checked > 50
    assert sum(len(a.rounds) for a in l1_agents) > 20


def test_l1_agent_is_exported_and_loadable_by_path() -> None:
    assert hrl.LitaAgentL1 is LitaAgentL1
    assert "LitaAgentL1" in hrl.__all__
    assert load_agent_class(L1) is LitaAgentL1


def test_baseline_agrees_with_penguin_in_shadow() -> None:
    result = measure_agreement(n_worlds=1, n_steps=8, seed=3)
    rates = result["agreement"]
    for kind in ("first_proposal", "counter", "accept"):
        assert rates[kind]["n"] > 10
        # Same inputs and random state: the baseline must make PenguinAgent's decisions.
        assert rates[kind]["raw"] >= 0.99, (kind, rates[kind])
        assert 0.0 <= rates[kind]["masked"] <= 1.0
    assert result["penguin_unsafe"]["n_offers"] > 0


@pytest.mark.slow
def test_agreement_report_over_several_worlds(tmp_path: Path) -> None:
    from hrl.safety.shadow import main

    out = tmp_path / "agreement.json"
    main(["--worlds", "4", "--steps", "20", "--out", str(out)])
    result = json.loads(out.read_text())
    for kind in ("first_proposal", "counter", "accept"):
        assert result["agreement"][kind]["raw"] >= 0.99


def test_l1_buys_stock_up_to_the_lines_while_stock_persists_and_falls_back_when_consumed() -> None:
    # A last-level LitaAgentL1 in a real 2-level world: its buy need tops stock plus the day's
    # supplies up to n_lines (stock persists in scml 0.8.4; the useful-stock cap, not the need,
    # bounds what it may hold), PenguinAgent's 0.7 n_lines after the guard switches to the
    # consumed-stock model.
    from hrl.safety.state import CONSUMED

    agents = (PENGUIN, *BUILTINS[:1], L1, PENGUIN)
    world, (agent,) = run_recorded(
        WorldSpec(agents=agents, n_steps=12, n_processes=2, seed=5, agent_processes=(0, 0, 1, 1))
    )
    awi = agent.awi
    assert awi.is_last_level
    day = awi.current_step
    lines, stock = awi.n_lines, awi.current_inventory_input
    assert agent.baseline.buy_need(awi, day) == int(lines - stock - awi.total_supplies_at(day))
    assert max(world.stats[f"inventory_input_{agent.id}"]) > 0  # it bought, and the stock stayed
    agent.stock_guard.model = CONSUMED
    agent.before_step()
    assert agent.baseline.buy_need(awi, day) == int(0.7 * lines - stock - awi.total_supplies_at(day))


def test_baseline_options_replace_l1s_knobs_and_reject_unknown_ones() -> None:
    agent = LitaAgentL1(baseline_options={"productivity": 0.9})
    assert (agent.baseline.productivity, agent.baseline.stock_target, agent.baseline.quirks) == (
        0.9,
        1.0,
        False,
    )
    with pytest.raises(ConfigError, match="unknown \\['productivty'\\]"):
        LitaAgentL1(baseline_options={"productivty": 0.9})
    with pytest.raises(ConfigError, match="not both"):
        LitaAgentL1(baseline=LitaAgentL1().baseline, baseline_options={})


def _middle_l1_after(days: int) -> LitaAgentL1:
    """The middle-level LitaAgentL1 of a real 3-level world (Penguins elsewhere, 20 days) after
    ``days`` simulated days, its next day's negotiations open."""
    world = build_world(
        WorldSpec(
            agents=(PENGUIN, PENGUIN, L1, PENGUIN, PENGUIN, PENGUIN),
            n_steps=20,
            n_processes=3,
            seed=4,
            agent_processes=(0, 0, 1, 1, 2, 2),
        )
    )
    for _ in range(days):
        world.step()
    (agent,) = [a._obj for a in world.agents.values() if isinstance(getattr(a, "_obj", None), LitaAgentL1)]
    return agent


def test_keep_selling_offers_later_days_to_consumers_the_baseline_would_end_with() -> None:
    """A middle-level agent of a real world part-way through answers consumers whose offers do not
    fit (more than any day's need): PenguinAgent's rules end those negotiations (no response);
    with ``keep_selling`` every such consumer with a live negotiation gets a sell offer for a later
    day within that day's need instead, and the suppliers' answers stay the same."""
    import random

    import numpy as np

    from hrl.safety.baseline import L1_BASELINE_OPTIONS, OFFER, PenguinStyleBaseline

    agent = _middle_l1_after(days=1)
    awi, s = agent.awi, agent.awi.current_step
    live = [p for p in awi.my_consumers if p in agent.negotiators]
    assert len(live) >= 2, "too few live negotiations with consumers"
    # One consumer offers a unit for today (accepted: it is the subset closest to today's need),
    # the others more than any day's need for tomorrow (not accepted, and no response).
    taker, consumers = live[0], live[1:]
    top = PenguinStyleBaseline._price_range(agent, taker)[1]
    offers = {taker: (1, s, top)} | {p: (3 * awi.n_lines, s + 1, top) for p in consumers}
    answers = {}
    for keep in (False, True):
        random.seed(0)
        np.random.seed(0)
        baseline = PenguinStyleBaseline(**(L1_BASELINE_OPTIONS | {"keep_selling": keep}))
        answers[keep] = baseline.counter_all(agent, offers)
    assert answers[False][taker].kind == answers[True][taker].kind == "accept"
    assert not any(p in answers[False] for p in consumers)  # PenguinAgent: their negotiations end
    others = {keep: {p: d for p, d in answers[keep].items() if p not in consumers} for keep in answers}
    assert others[True] == others[False]
    kept = {p: d for p, d in answers[True].items() if p in consumers}
    assert kept, "keep_selling answered no consumer"
    per_day: dict[int, int] = {}
    for decision in kept.values():
        q, day, _ = decision.offer
        assert decision.kind == OFFER and s < day <= s + 3
        per_day[day] = per_day.get(day, 0) + q
    baseline = PenguinStyleBaseline(**L1_BASELINE_OPTIONS)
    for day, q in per_day.items():
        assert q <= baseline.sell_need(awi, day), (day, q)
    assert LitaAgentL1(baseline_options={"keep_selling": True}).baseline.keep_selling


def test_own_sell_days_give_each_partner_its_own_later_day_with_the_whole_need() -> None:
    """``own_sell_days``: in a real world part-way through, the consumers get sell offers for
    distinct later days in order, each the day's whole sell need, days without need skipped,
    none past the delivery window; buying is unchanged."""
    from hrl.safety.baseline import L1_BASELINE_OPTIONS, PenguinStyleBaseline

    agent = _middle_l1_after(days=3)
    awi, s = agent.awi, agent.awi.current_step
    baseline = PenguinStyleBaseline(**(L1_BASELINE_OPTIONS | {"own_sell_days": True}))
    last = min(s + awi.horizon, awi.n_steps - 1)
    with_need = [d for d in range(s + 1, last + 1) if baseline.sell_need(awi, d) > 0]
    consumers = list(awi.my_consumers)
    assert len(with_need) > len(consumers) >= 2
    offers = baseline.own_day_sell_offers(agent, consumers)
    assert list(offers) == consumers
    assert [o[1] for o in offers.values()] == with_need[: len(consumers)]
    for q, day, price in offers.values():
        assert q == baseline.sell_need(awi, day) and price == baseline.best_price(agent, consumers[0])
    assert baseline.future_offers(agent, consumers, buying=False) == offers
    plain = PenguinStyleBaseline(**L1_BASELINE_OPTIONS)
    suppliers = list(awi.my_suppliers)
    import random

    import numpy as np

    random.seed(1)
    np.random.seed(1)
    bought = baseline.future_offers(agent, suppliers, buying=True)
    random.seed(1)
    np.random.seed(1)
    assert bought == plain.future_offers(agent, suppliers, buying=True)


def test_future_divisors_set_the_share_of_a_future_days_need_that_is_offered() -> None:
    """``future_offers`` spreads ``int(need / divisor)`` units per later day, on both sides, in a
    middle-level agent of a real world part-way through: 3 (PenguinAgent's third) and 1 (all)."""
    from hrl.safety.baseline import L1_BASELINE_OPTIONS, PenguinStyleBaseline

    agent = _middle_l1_after(days=1)
    awi, s = agent.awi, agent.awi.current_step
    needs = {
        True: {d: agent.baseline.buy_need(awi, d) for d in range(s + 1, s + 4)},
        False: {d: agent.baseline.sell_need(awi, d) for d in range(s + 1, s + 4)},
    }
    assert min(side[s + 1] for side in needs.values()) >= 3  # a third and all differ on both sides
    for divisor in (3.0, 1.0):
        options = L1_BASELINE_OPTIONS | {
            "future_buy_divisor": divisor,
            "future_sell_divisor": divisor,
            "own_sell_days": False,  # the 50/30/20 split over s+1..s+3 that the divisors act on
        }
        baseline = PenguinStyleBaseline(**options)
        for buying, partners in ((True, list(awi.my_suppliers)), (False, list(awi.my_consumers))):
            offered: dict[int, int] = {}
            for q, day, _ in baseline.future_offers(agent, partners, buying=buying).values():
                offered[day] = offered.get(day, 0) + q
            group_sizes = (int(len(partners) * 0.5), int(len(partners) * 0.8) - int(len(partners) * 0.5))
            for ahead, day in enumerate(range(s + 1, s + 4)):
                size = group_sizes[ahead] if ahead < 2 else len(partners) - int(len(partners) * 0.8)
                sold_out = not buying and awi.total_sales_at(day) > awi.n_lines
                expected = 0 if size == 0 or sold_out else max(0, int(needs[buying][day] / divisor))
                assert offered.get(day, 0) == expected, (divisor, buying, day, needs[buying][day])
    with pytest.raises(ConfigError, match="future_sell_divisor"):
        PenguinStyleBaseline(future_sell_divisor=0.5)
