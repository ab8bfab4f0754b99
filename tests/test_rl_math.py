"""The RL math against hand-computed values (no worlds): the clipped surrogate, GAE on
termination vs truncation, MAPPO's reordering of rows into threads, reward attribution,
separate gradient clipping, explained variance, learner levels and seats."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrl.errors import ConfigError
from hrl.opponents import BUILTINS
from hrl.train.mappo import thread_order
from hrl.train.placement import Seat, learner_levels, seat_agents
from hrl.train.ppo import clip_grads, clipped_surrogate, explained_variance, trajectory_gae
from hrl.train.rewards import attribute
from hrl.worlds import WorldSpec, build_world


def test_clipped_surrogate_matches_hand_computed_values() -> None:
    log_ratio = torch.tensor([0.1, 0.5, -0.5, -0.5, 0.5])
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0])
    old = torch.tensor([-1.0, -2.0, -0.3, 0.0, -5.0])
    objective, stats = clipped_surrogate(old + log_ratio, old, adv, 0.2)
    e = math.exp
    # min(r A, clip(r) A) per element, by hand
    hand = [e(0.1), 1.2, e(-0.5), -0.8, -e(0.5)]
    assert float(objective) == pytest.approx(sum(hand) / 5, rel=1e-6)
    assert stats["clip_fraction"] == pytest.approx(4 / 5)  # |r - 1| > 0.2 for all but e^0.1
    kl = [(e(x) - 1) - x for x in (0.1, 0.5, -0.5, -0.5, 0.5)]
    assert stats["approx_kl"] == pytest.approx(sum(kl) / 5, rel=1e-6)
    assert stats["ratio_max"] == pytest.approx(e(0.5), rel=1e-6)
    # a 0/1 weight drops elements from every mean
    w = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])
    masked, mstats = clipped_surrogate(old + log_ratio, old, adv, 0.2, w)
    assert float(masked) == pytest.approx((e(0.1) - 0.8) / 2, rel=1e-6)
    assert mstats["clip_fraction"] == pytest.approx(1 / 2)
    # the gradient flows only through the unclipped branch
    lp = (old + log_ratio).clone().requires_grad_(True)
    clipped_surrogate(lp, old, adv, 0.2)[0].backward()
    assert lp.grad is not None
    np.testing.assert_allclose(lp.grad.numpy(), np.array([e(0.1), 0, e(-0.5), 0, -e(0.5)]) / 5, rtol=1e-6)


def test_trajectory_gae_termination_vs_truncation() -> None:
    r = np.array([1.0, 1.0, 1.0])
    v = np.array([0.5, 0.5, 0.5])
    g, lam = 0.9, 0.8
    # terminated at the end: delta_2 = 1 - 0.5, no bootstrap
    d2 = 1 - 0.5
    d = 1 + g * 0.5 - 0.5
    a2 = d2
    a1 = d + g * lam * a2
    a0 = d + g * lam * a1
    adv, ret = trajectory_gae(r, v, np.array([False, False, True]), gamma=g, lam=lam)
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret, np.array([a0, a1, a2]) + 0.5, rtol=1e-6)
    # truncated at the end: bootstraps from its own value, delta_2 = 1 + 0.9 * 0.5 - 0.5
    adv_t, _ = trajectory_gae(r, v, np.zeros(3, bool), gamma=g, lam=lam)
    t1 = d + g * lam * d
    np.testing.assert_allclose(adv_t, [d + g * lam * t1, t1, d], rtol=1e-6)
    # a cut in the middle ends the trace there (row 1 truncated, row 2 its own trace)
    adv_c, _ = trajectory_gae(
        r, v, np.array([False, False, True]), gamma=g, lam=lam, cut=np.array([False, True, False])
    )
    np.testing.assert_allclose(adv_c, [d + g * lam * d, d, d2], rtol=1e-6)
    # a termination in the middle: no bootstrap there, no credit from later rows
    adv_m, _ = trajectory_gae(r, v, np.array([False, True, False]), gamma=g, lam=lam)
    np.testing.assert_allclose(adv_m, [d + g * lam * d2, d2, d], rtol=1e-6)


def test_thread_order_groups_rows_by_thread_in_time_order() -> None:
    # storage order: round by round; round 0 has threads a, b; round 1 has b, a, c; day 1 has a
    keys = [(0, "a"), (0, "b"), (0, "b"), (0, "a"), (0, "c"), (1, "a")]
    order, last = thread_order(keys)
    assert order.tolist() == [0, 3, 1, 2, 4, 5]  # (0,a): rows 0, 3; (0,b): 1, 2; (0,c): 4; (1,a): 5
    assert last.tolist() == [False, True, False, True, True, True]
    assert [keys[i] for i in order] == sorted(keys)
    empty_order, empty_last = thread_order([])
    assert empty_order.size == 0 and empty_last.size == 0


def test_attribute_sums_each_day_onto_the_decision_in_force() -> None:
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    # decisions on days 1, 1, 3: day 0 -> first decision; days 1, 2 -> the day-1 decision in force
    # (the LAST one made on day 1); days 3, 4 -> the day-3 decision
    np.testing.assert_allclose(attribute(values, [1, 1, 3]), [1.0, 6.0, 24.0])
    np.testing.assert_allclose(attribute(values, list(range(5))), values)
    assert attribute(values, []).shape == (0,)
    with pytest.raises(ConfigError, match="non-decreasing"):
        attribute(values, [2, 1])


def test_clip_grads_clips_actor_and_critic_separately() -> None:
    actor = torch.nn.Parameter(torch.zeros(2))
    critic = torch.nn.Parameter(torch.zeros(2))
    actor.grad = torch.tensor([3.0, 4.0])  # norm 5
    critic.grad = torch.tensor([300.0, 400.0])  # norm 500
    norm_a, norm_c = clip_grads([actor], [critic], 1.0, 10.0)
    assert (norm_a, norm_c) == pytest.approx((5.0, 500.0))
    np.testing.assert_allclose(actor.grad.numpy(), [0.6, 0.8], rtol=1e-5)  # not shrunk by the critic
    np.testing.assert_allclose(critic.grad.numpy(), [6.0, 8.0], rtol=1e-5)


def test_explained_variance() -> None:
    ret = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(ret, ret) == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 2.5), ret) == pytest.approx(0.0)
    assert explained_variance(0.5 * ret, ret) == pytest.approx(0.75)  # residual var = var / 4
    assert math.isnan(explained_variance(ret, torch.ones(4)))


def test_learner_levels_cover_every_level_and_differ_within_a_world() -> None:
    assert [learner_levels(i, 1, 2) for i in range(4)] == [(0,), (1,), (0,), (1,)]
    assert [learner_levels(i, 2, 3) for i in range(3)] == [(0, 1), (2, 0), (1, 2)]
    for n_levels in (2, 3, 4):
        for n_learners in (1, 2):
            slots = [lv for i in range(n_levels) for lv in learner_levels(i, n_learners, n_levels)]
            assert set(slots) == set(range(n_levels))
            assert all(len(set(learner_levels(i, n_learners, n_levels))) == n_learners for i in range(9))
    with pytest.raises(ConfigError):
        learner_levels(0, 3, 2)


def test_seat_agents_puts_each_learner_at_its_levels_index() -> None:
    others = [Seat(f"o{i}") for i in range(7)]
    seats, processes = seat_agents(3, 3, [(2, Seat("L0")), (0, Seat("L1"))], others)
    assert processes == (0, 0, 0, 1, 1, 1, 2, 2, 2)
    assert [s.agent for s in seats] == ["L1", "o0", "o1", "o2", "o3", "o4", "L0", "o5", "o6"]
    with pytest.raises(ConfigError, match="others"):
        seat_agents(3, 3, [(0, Seat("L"))], others[:5])
    with pytest.raises(ConfigError, match="outside"):
        seat_agents(3, 3, [(3, Seat("L")), (0, Seat("M"))], others)


def test_world_spec_levels_are_where_scml_puts_the_agents() -> None:
    agents = (BUILTINS[0], BUILTINS[1], BUILTINS[2], BUILTINS[0], BUILTINS[1])
    with pytest.raises(ConfigError, match="non-decreasing"):
        WorldSpec(agents=agents, n_processes=2, agent_processes=(0, 1, 0, 1, 0))
    spec = WorldSpec(agents=agents, n_steps=3, n_processes=2, agent_processes=(0, 0, 1, 1, 1))
    world = build_world(spec)
    levels = [world.agents[aid].awi.level for aid in world.agents if aid not in ("SELLER", "BUYER")]
    assert levels == [0, 0, 1, 1, 1]
    assert WorldSpec(agents=agents, n_processes=2).processes == (0, 0, 0, 1, 1)


def test_day_health_counts_breach_days_and_stock_the_lines_cannot_use() -> None:
    from hrl.agent.transitions import TransitionLog
    from hrl.train.learn import day_health
    from hrl.train.rollout import DayRecord, LearnerRecord

    def day(d: int, stock: float, short: float) -> DayRecord:
        return DayRecord(d, 1000.0, stock, 0.0, 10.0, 20.0, short, 0.0, False)

    # 5 days, 10 lines: after day d the lines can still use 10 * (4 - d) units
    days = [day(0, 40.0, 0.0), day(1, 31.0, 2.0), day(2, 20.0, 0.0), day(3, 11.0, 1.0), day(4, 0.0, 0.0)]
    rec = LearnerRecord("a", TransitionLog(), days, [], 1000.0, 10, 0, 2, 1.0, None, n_steps=5)
    breach_rate, blowups = day_health(rec)
    assert breach_rate == pytest.approx(2 / 5)
    assert blowups == 2.0  # day 1 (31 > 30) and day 3 (11 > 10); day 0 (40 = 40) is usable
    empty = LearnerRecord("a", TransitionLog(), [], [], 1000.0, 10, 0, 2, 1.0, None)
    assert day_health(empty) == (0.0, 0.0)
