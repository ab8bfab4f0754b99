"""Online fine-tuning (issues 6 and 12) on tiny REAL SCML worlds: placement of the learners,
score-true rewards, the critic's world inputs, PPO, MAPPO/IPPO, failures, resume.

Two module-scoped batches feed most tests: ``rollout`` (one 2-level world, 2 learners, 6 days,
3 factories per level) and ``batch3`` (two 3-level worlds, 2 learners each, 5 days, 3 factories
per level: the learners cover levels 0, 1 and 2).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from finetune_checks import assert_same_checkpoints
from hrl.agent.transitions import TransitionLog
from hrl.errors import CheckpointError, ConfigError, NonFiniteError, RolloutError
from hrl.features import MACRO_FEATURES
from hrl.models.critic import ROUND_DIM, CentralCritic
from hrl.models.l3 import L3Executor, with_follow_gate
from hrl.opponents import BUILTINS, PENGUIN
from hrl.train.bundle import Bundle, fresh_bundle, load_bundle, save_bundle
from hrl.train.finetune import (
    FinetuneConfig,
    _baseline_near_l3,
    _config_dict,
    _l3_param_groups,
    _saved_config,
    _State,
    finetune,
    planned_world_days,
)
from hrl.train.learn import _episode
from hrl.train.mappo import MAPPOConfig, _l3_loss, build_multi_batch, mappo_objective, mappo_update
from hrl.train.ppo import PPOConfig, l2_batch, l2_objective, ppo_update_l2, trajectory_gae
from hrl.train.rewards import RewardConfig, l2_rewards, l3_rewards, l4_rewards
from hrl.train.rollout import LearnerRecord, RolloutResult, plan_rollouts, run_rollout
from hrl.train.run_worlds import check_failures, run_worlds
from hrl.train.world_view import WORLD_DIM, WORLD_FEATURES

POOL = (PENGUIN, *BUILTINS)
BROKEN = "hrl.no_such_module.NoAgent"
BALANCE = MACRO_FEATURES.index("balance")


def _bundle() -> Bundle:
    b = fresh_bundle(3)
    return Bundle(l2=b.l2, l3=_baseline_near_l3(3), l4=b.l4, extra={"source": "fresh"})


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("online") / "bundle.pt"
    save_bundle(_bundle(), path)
    return path


def _rollouts(bundle_path: Path, n_worlds: int, seed: int, days: int, levels: int) -> list[RolloutResult]:
    """Real worlds of 3 factories per level with 2 learners each."""
    tasks = plan_rollouts(
        bundle_path=str(bundle_path), n_worlds=n_worlds, seed=seed, update=0, pool=POOL, n_learners=2,
        n_steps=(days, days), factories_per_level=(3, 3), n_levels=(levels, levels),
    )  # fmt: skip
    return [run_rollout(t) for t in tasks]


@pytest.fixture(scope="module")
def rollout(bundle_path: Path) -> RolloutResult:
    (result,) = _rollouts(bundle_path, 1, 5, 6, 2)
    return result


@pytest.fixture(scope="module")
def batch3(bundle_path: Path) -> list[RolloutResult]:
    return _rollouts(bundle_path, 2, 11, 5, 3)


def _records(results: list[RolloutResult]) -> list[LearnerRecord]:
    return [rec for res in results for rec in res.learners.values()]


# -- placement ---------------------------------------------------------------------------------
def test_a_batch_of_rollouts_puts_learners_on_every_level(batch3: list[RolloutResult]) -> None:
    levels = sorted(rec.level for rec in _records(batch3))  # awi.level of the built world
    assert levels == [0, 0, 1, 2]
    for res in batch3:
        a, b = res.learners.values()
        assert a.level != b.level and a.n_levels == 3
        for rec in (a, b):
            # the world's own ids carry the level ("...@k") and the partners sit one level away
            assert rec.agent_id.endswith(f"@{rec.level}")
            assert all(s.endswith(f"@{rec.level - 1}") for s in rec.suppliers if s != "SELLER")
            assert all(c.endswith(f"@{rec.level + 1}") for c in rec.consumers if c != "BUYER")


def test_two_level_rollout_is_well_formed_and_keyed_by_world_id(rollout: RolloutResult) -> None:
    assert rollout.n_exceptions == 0
    assert sorted(rec.level for rec in rollout.learners.values()) == [0, 1]
    for aid, rec in rollout.learners.items():
        assert rec.agent_id == aid and aid in rollout.scores
        assert rec.final_score == rollout.scores[aid]
        assert rec.fallback_reason is None
        assert [t.day for t in rec.transitions.l2] == list(range(6))
        assert len(rec.days) == 6 == rec.n_steps and rec.transitions.n_thread_rounds > 0
        assert rec.initial_balance == rollout.initial_balances[aid]
        for r in rec.transitions.rounds:
            k = len(r)
            assert r.history.shape[0] == k and r.threads.shape == (k, 16) and r.alpha.shape == (k,)
            assert torch.isfinite(r.l3_log_prob).all() and r.changed_by_l1.dtype == torch.bool
        # the agent's own view (macro feature 'balance' = awi balance / B0 at the start of day t)
        # equals the world's statistics for THIS world id at the end of day t - 1
        for t in rec.transitions.l2[1:]:
            world_balance = rec.days[t.day - 1].balance / rec.initial_balance
            assert float(t.state[-1, BALANCE]) == pytest.approx(world_balance, rel=1e-5)


# -- rewards that add up to the score ------------------------------------------------------------
def test_l2_and_l4_rewards_add_up_to_score_minus_one(
    rollout: RolloutResult, batch3: list[RolloutResult]
) -> None:
    cfg = RewardConfig()
    recs = _records([rollout, *batch3])
    assert len(recs) == 6
    for rec in recs:
        reward, terms, terminated = l2_rewards(rec, cfg)
        assert reward.sum() == pytest.approx(rec.final_score - 1.0, abs=1e-9)
        assert terms["cash"].sum() == pytest.approx(rec.final_score - 1.0, abs=1e-9)
        assert terms["shaping"].sum() == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(terms["trade"] + terms["shortfall"] + terms["storage"], terms["cash"])
        assert terminated[-1] and not terminated[:-1].any()  # the last day ends the game
        assert l4_rewards(rec, cfg).sum() == pytest.approx(rec.final_score - 1.0, abs=1e-9)
        # stock is worth 0 at the end: the last day's shaping writes off yesterday's stock value
        b0, d = rec.initial_balance, rec.days[-2]
        phi = (d.inventory_input * d.trading_price_in + d.inventory_output * d.trading_price_out) / b0
        assert terms["shaping"][-1] == pytest.approx(-phi, abs=1e-12)
    assert any(abs(rec.final_score - 1) > 1e-3 for rec in recs)  # the identity is not 0 == 0
    assert any(np.abs(l2_rewards(rec, cfg)[1]["shaping"]).max() > 1e-3 for rec in recs)  # shaping acts


def _paired_rollout(bundle: Bundle, path: Path) -> RolloutResult:
    save_bundle(bundle, path)
    (task,) = plan_rollouts(
        bundle_path=str(path), n_worlds=1, seed=5, update=0, pool=POOL, n_learners=2,
        n_steps=(8, 8), factories_per_level=(3, 3), n_levels=(2, 2), paired=True,
    )  # fmt: skip
    return run_rollout(task)


def test_paired_rollouts_reward_the_seat_swap_difference_against_l1(tmp_path: Path) -> None:
    """A paired rollout plays the world again with LitaAgentL1 in the learners' seats: the same
    world (a learner whose gate always follows L1 ends every day with exactly L1's balance, so
    its rewards are 0 on every day), and a learner that acts on its own gets rewards that add up
    to its score minus L1's score in that seat, on L2 and L4."""
    cfg = RewardConfig(shaping=0.0)
    base = _bundle()
    follower = Bundle(l2=base.l2, l3=with_follow_gate(base.l3, 30.0).eval(), l4=base.l4, extra={})
    same = _paired_rollout(follower, tmp_path / "follower.pt")
    free = _paired_rollout(base, tmp_path / "free.pt")
    assert same.n_exceptions == free.n_exceptions == 0
    for aid, rec in same.learners.items():
        assert rec.paired_balances == tuple(d.balance for d in rec.days) and len(rec.days) == 8
        assert rec.paired_score == rec.final_score and rec.paired_initial_balance == rec.initial_balance
        assert np.all(l2_rewards(rec, cfg)[0] == 0.0) and np.all(l4_rewards(rec, cfg) == 0.0)
        assert free.learners[aid].paired_balances == rec.paired_balances  # L1's play of the same world
    moved = 0
    for rec in free.learners.values():
        assert rec.paired_score is not None and rec.reward_total == rec.final_score - rec.paired_score
        for reward in (l2_rewards(rec, RewardConfig())[0], l4_rewards(rec, RewardConfig())):
            assert reward.sum() == pytest.approx(rec.final_score - rec.paired_score, abs=1e-9)
        moved += abs(rec.final_score - rec.paired_score) > 1e-3
    assert moved  # the untrained policy plays otherwise than L1: the identity is not 0 == 0
    broken = dataclasses.replace(next(iter(free.learners.values())), paired_balances=(1.0,))
    with pytest.raises(ConfigError, match="1 paired balances for 8 world days"):
        l2_rewards(broken, cfg)


def test_l2_rewards_of_a_hand_computed_day_and_shaping_weight(rollout: RolloutResult) -> None:
    for rec in rollout.learners.values():
        reward, terms, _ = l2_rewards(rec, RewardConfig(shaping=0.5))
        b0 = rec.initial_balance
        d2, d3 = rec.days[2], rec.days[3]
        phi2 = d2.inventory_input * d2.trading_price_in + d2.inventory_output * d2.trading_price_out
        phi3 = d3.inventory_input * d3.trading_price_in + d3.inventory_output * d3.trading_price_out
        hand = (d3.balance - d2.balance) / b0 + 0.5 * (phi3 - phi2) / b0
        assert reward[3] == pytest.approx(hand, rel=1e-9, abs=1e-12)
        assert terms["shortfall"][3] == pytest.approx(-d3.shortfall_penalty / b0)
        assert reward.sum() == pytest.approx(rec.final_score - 1.0, abs=1e-9)  # any shaping weight


def test_rewards_of_days_without_a_decision_go_to_the_decision_in_force(rollout: RolloutResult) -> None:
    rec = next(iter(rollout.learners.values()))
    full, full_terms, _ = l2_rewards(rec, RewardConfig())
    # as if the models had fallen back after day 2: days 3-5 land on day 2's decision
    cut = dataclasses.replace(rec, transitions=TransitionLog(l2=rec.transitions.l2[:3]))
    reward, _, terminated = l2_rewards(cut, RewardConfig())
    assert reward.shape == (3,) and terminated.tolist() == [False, False, True]
    np.testing.assert_allclose(reward[:2], full[:2])
    assert reward[2] == pytest.approx(full[2:].sum())
    assert reward.sum() == pytest.approx(rec.final_score - 1.0, abs=1e-9)
    assert full_terms["cash"].shape == (6,)


def test_l3_rewards_are_per_thread_and_logged_by_term(rollout: RolloutResult) -> None:
    for rec in rollout.learners.values():
        r3, terms3, last = l3_rewards(rec, RewardConfig())
        assert r3.shape == (rec.transitions.n_thread_rounds,) and np.isfinite(r3).all()
        assert set(terms3) == {"goal", "advantage", "liquidity"}
        assert terms3["liquidity"].sum() == pytest.approx(len({(d.day, d.partner) for d in rec.deals}))
        assert np.all(r3[~last] == 0)


def test_a_non_finite_world_statistic_raises_naming_the_term(rollout: RolloutResult) -> None:
    rec = next(iter(rollout.learners.values()))
    days = list(rec.days)
    days[2] = dataclasses.replace(days[2], shortfall_penalty=float("nan"))
    with pytest.raises(NonFiniteError, match="reward/l2/shortfall") as info:
        l2_rewards(dataclasses.replace(rec, days=days), RewardConfig())
    assert info.value.argument == "reward/l2/shortfall" and info.value.index == (2,)


# -- the critic's inputs --------------------------------------------------------------------------
def test_world_views_match_the_worlds_statistics(batch3: list[RolloutResult]) -> None:
    col = {name: i for i, name in enumerate(WORLD_FEATURES)}
    for res in batch3:
        recs = list(res.learners.values())
        for rec in recs:
            other = next(r for r in recs if r is not rec)
            assert sorted(rec.world_views) == list(range(rec.n_steps))
            for day in range(1, rec.n_steps):
                view = rec.world_views[day]
                assert view.shape == (WORLD_DIM,) and torch.isfinite(view).all()
                assert float(view[col["world/day"]]) == pytest.approx(day / rec.n_steps)
                # the other learner's balance: the world's statistics at the end of yesterday
                b_other = res.balances[other.agent_id][day - 1] / res.initial_balances[other.agent_id]
                assert float(view[col["learners/count"]]) == 1.0
                assert float(view[col["learners/balance"]]) == pytest.approx(b_other, rel=1e-5)
                assert float(view[col["learners/level"]]) == pytest.approx(other.level / 2)
                # the partners' balances (factories only; SELLER / BUYER are not factories)
                for side, ids in (("suppliers", rec.suppliers), ("consumers", rec.consumers)):
                    ids = tuple(a for a in ids if a in res.balances)
                    got = float(view[col[f"{side}/balance_mean"]])
                    if not ids:
                        assert got == 0.0 and float(view[col[f"{side}/count"]]) == 0.0
                        continue
                    want = np.mean([res.balances[a][day - 1] / res.initial_balances[a] for a in ids])
                    assert got == pytest.approx(want, rel=1e-5)
                    assert float(view[col[f"{side}/count"]]) == pytest.approx(len(ids) / 8)
                # every product's trading price (the learner's input/output as recorded per day)
                cat = res.catalog_prices
                tp_in = float(view[col[f"product{rec.level}/trading_price"]]) * cat[rec.level]
                tp_out = float(view[col[f"product{rec.level + 1}/trading_price"]]) * cat[rec.level + 1]
                assert tp_in == pytest.approx(rec.days[day - 1].trading_price_in, rel=1e-5)
                assert tp_out == pytest.approx(rec.days[day - 1].trading_price_out, rel=1e-5)
                assert [float(view[col[f"product{p}/present"]]) for p in range(5)] == [1, 1, 1, 1, 0]


def test_mappo_batch_carries_the_world_for_the_critic(batch3: list[RolloutResult], bundle_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    assert bundle.l3 is not None
    critic = CentralCritic(world_dim=WORLD_DIM)
    episodes = [_episode(rec, RewardConfig()) for rec in _records(batch3)]
    batch = build_multi_batch(episodes, bundle.l3, bundle.l4, critic, MAPPOConfig())
    assert batch.l3.global_state.shape == (len(batch.l3), ROUND_DIM + WORLD_DIM)
    row = 0
    for ep in episodes:
        for r in ep.rounds:
            world = batch.l3.global_state[row : row + len(r), ROUND_DIM:]
            assert torch.equal(world, ep.world[r.day].expand(len(r), -1))
            row += len(r)
    assert row == len(batch.l3)
    # without the world features the critic refuses the batch instead of guessing
    blind = [dataclasses.replace(ep, world={}) for ep in episodes]
    with pytest.raises(Exception, match="world features"):
        build_multi_batch(blind, bundle.l3, bundle.l4, critic, MAPPOConfig())
    # IPPO needs none
    ippo = build_multi_batch(blind, bundle.l3, bundle.l4, None, MAPPOConfig(centralised=False))
    assert ippo.l3.global_state.shape[1] == ROUND_DIM


# -- PPO / MAPPO on real rollouts -------------------------------------------------------------------
def test_ppo_update_improves_the_surrogate(rollout: RolloutResult, bundle_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    cfg = PPOConfig(epochs=4, minibatch=4, lr=1e-3, target_kl=None)
    steps, adv, ret = [], [], []
    for rec in rollout.learners.values():
        r, _, term = l2_rewards(rec, RewardConfig())
        a, g = trajectory_gae(r, np.array([t.value for t in rec.transitions.l2]), term, gamma=0.99, lam=0.95)
        assert np.isfinite(a).all() and np.isfinite(g).all()
        steps += rec.transitions.l2
        adv.append(a)
        ret.append(g)
    batch = l2_batch(steps, np.concatenate(adv), np.concatenate(ret))
    # the stored log-probs are the bundle's own: ratio 1 before the update
    with torch.no_grad():
        out = bundle.l2(batch.state, batch.state_mask, batch.profile, batch.side_mask)
        assert torch.allclose(out.log_prob(batch.goal), batch.old_log_prob, atol=1e-4)
    before = l2_objective(bundle.l2, batch, cfg)
    weights = copy.deepcopy(bundle.l2.state_dict())
    opt = torch.optim.Adam(bundle.l2.parameters(), lr=cfg.lr)
    stats = ppo_update_l2(bundle.l2, opt, batch, cfg, torch.Generator().manual_seed(0))
    after = l2_objective(bundle.l2, batch, cfg)
    assert after > before
    assert any(not torch.equal(weights[k], v) for k, v in bundle.l2.state_dict().items())
    assert 0 <= stats["clip_fraction"] <= 1 and np.isfinite(stats["value_loss"]) and stats["approx_kl"] >= 0
    assert 0.5 < stats["ratio_mean"] < 2.0
    assert stats["grad_norm_actor"] > 0 and stats["grad_norm_critic"] > 0
    # NaN/inf in an input or a loss names the tensor
    bad = dataclasses.replace(batch, advantages=batch.advantages.clone())
    bad.advantages[1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"l2\.advantages"):
        ppo_update_l2(bundle.l2, opt, bad, cfg, torch.Generator().manual_seed(0))
    huge = dataclasses.replace(batch, returns=torch.full_like(batch.returns, 3e38))
    with pytest.raises(NonFiniteError, match="l2/value_loss"):
        ppo_update_l2(bundle.l2, opt, huge, cfg, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("centralised", [True, False], ids=["mappo", "ippo"])
def test_mappo_update_improves_the_surrogates(
    rollout: RolloutResult, bundle_path: Path, centralised: bool
) -> None:
    bundle = load_bundle(bundle_path)
    assert bundle.l3 is not None and bundle.l4 is not None
    cfg = MAPPOConfig(centralised=centralised, epochs=4, minibatch=64, lr_l3=1e-3, lr_l4=1e-3, target_kl=None)
    critic = CentralCritic(world_dim=WORLD_DIM) if centralised else None
    episodes = [_episode(rec, RewardConfig()) for rec in rollout.learners.values()]
    batch = build_multi_batch(episodes, bundle.l3, bundle.l4, critic, cfg)
    assert batch.l4 is not None
    for t in (batch.l3.advantages, batch.l3.returns, batch.l4.advantages, batch.l4.returns):
        assert torch.isfinite(t).all()
    before = mappo_objective(bundle.l3, bundle.l4, batch, cfg)
    l3_w = copy.deepcopy(bundle.l3.state_dict())
    opts: dict[str, torch.optim.Optimizer] = {
        "l3": torch.optim.Adam(bundle.l3.parameters(), lr=cfg.lr_l3),
        "l4": torch.optim.Adam(bundle.l4.parameters(), lr=cfg.lr_l4),
    }
    if critic is not None:
        opts["critic"] = torch.optim.Adam(critic.parameters(), lr=cfg.lr_critic)
    stats = mappo_update(bundle.l3, bundle.l4, critic, opts, batch, cfg, torch.Generator().manual_seed(0))
    after = mappo_objective(bundle.l3, bundle.l4, batch, cfg)
    assert after["l3"] > before["l3"] and after["l4"] > before["l4"]
    assert any(not torch.equal(l3_w[k], v) for k, v in bundle.l3.state_dict().items())
    for key in ("l3/clip_fraction", "l4/clip_fraction"):
        assert 0 <= stats[key] <= 1
    assert stats["grad_norm/actor"] > 0 and stats["grad_norm/critic"] > 0 and stats["epochs"] == 4
    assert all(np.isfinite(v) for k, v in stats.items() if "explained_variance" not in k)
    if not centralised:
        # IPPO trains L3's own value head
        assert not torch.equal(l3_w["value_head.weight"], bundle.l3.state_dict()["value_head.weight"])


def test_kl_stop_looks_at_every_layer(rollout: RolloutResult, bundle_path: Path) -> None:
    """L3 barely moves (tiny lr), L4 moves a lot: the stop must come from L4's KL."""
    bundle = load_bundle(bundle_path)
    assert bundle.l3 is not None and bundle.l4 is not None
    cfg = MAPPOConfig(centralised=False, epochs=6, minibatch=16, lr_l3=1e-12, lr_l4=0.05, target_kl=1e-4)
    episodes = [_episode(rec, RewardConfig()) for rec in rollout.learners.values()]
    batch = build_multi_batch(episodes, bundle.l3, bundle.l4, None, cfg)
    opts: dict[str, torch.optim.Optimizer] = {
        "l3": torch.optim.Adam(bundle.l3.parameters(), lr=cfg.lr_l3),
        "l4": torch.optim.Adam(bundle.l4.parameters(), lr=cfg.lr_l4),
    }
    stats = mappo_update(bundle.l3, bundle.l4, None, opts, batch, cfg, torch.Generator().manual_seed(0))
    assert stats["kl_stop"] == 1.0 and stats["epochs"] < cfg.epochs
    assert stats["l3/approx_kl"] < cfg.target_kl < stats["l4/approx_kl"]


# -- failures -------------------------------------------------------------------------------------
def test_failed_worlds_are_counted_and_too_many_stop_the_run(bundle_path: Path) -> None:
    good, bad = plan_rollouts(
        bundle_path=str(bundle_path), n_worlds=2, seed=3, update=0, pool=POOL, n_steps=(4, 4),
        factories_per_level=(2, 2),
    )  # fmt: skip
    bad = dataclasses.replace(bad, opponents=(BROKEN, *bad.opponents[1:]))
    results, failures = run_worlds([good, bad], phase="rollout", update=1, workers=0)
    assert [r.name for r in results] == [good.name]
    (failure,) = failures
    assert failure.name == bad.name and failure.status == "error" and "no_such_module" in failure.error
    check_failures(failures, 2, 0.5, "rollout")  # 1 of 2 is allowed at 0.5
    with pytest.raises(RolloutError, match=r"rollout: 1 of 2 worlds failed") as info:
        check_failures(failures, 2, 0.25, "rollout")
    assert info.value.failed[0][0] == bad.name and info.value.total == 2
    with pytest.raises(RolloutError):
        check_failures(failures, 1, 1.0, "rollout")  # nothing finished: never silently go on


def test_finetune_stops_with_a_typed_error_when_every_world_fails(bundle_path: Path, tmp_path: Path) -> None:
    cfg = FinetuneConfig(
        bundle=str(bundle_path), out=str(tmp_path), updates=1, worlds_per_update=2, n_steps=(4, 4),
        factories_per_level=(2, 2), pool=(BROKEN,), eval_worlds=0, max_failed_share=1.0,
    )  # fmt: skip
    with pytest.raises(RolloutError, match="2 of 2 worlds failed"):
        finetune(cfg)
    import json

    logged = json.loads((tmp_path / "failures.json").read_text())
    assert len(logged) == 2 and all("no_such_module" in f["error"] for f in logged)
    assert not (tmp_path / "last.pt").exists()


def test_finetune_paired_trains_on_the_difference_against_l1(bundle_path: Path, tmp_path: Path) -> None:
    """``paired=True``: every rollout world is played twice (twice the planned days), the logged
    L2 rewards add up to score - L1's score in the seat, and the difference is logged."""
    cfg = FinetuneConfig(
        bundle=str(bundle_path), out=str(tmp_path), updates=1, worlds_per_update=1, n_steps=(5, 5),
        factories_per_level=(3, 3), pool=POOL, eval_every=1, eval_worlds=0, paired=True,
    )  # fmt: skip
    assert planned_world_days(cfg) == 2 * planned_world_days(dataclasses.replace(cfg, paired=False))
    (row,) = finetune(cfg)["history"]
    assert row["reward/l2/score_gap_max"] < 1e-9
    assert row["reward/l2/total"] == pytest.approx(row["rollout/paired_difference"], abs=1e-9)
    assert row["rollout/mean_score"] - row["rollout/paired_difference"] > 0.2  # L1's score, not 0


# -- resume ---------------------------------------------------------------------------------------
def test_finetune_resume_equals_uninterrupted(bundle_path: Path, tmp_path: Path) -> None:
    def cfg(out: Path) -> FinetuneConfig:
        return FinetuneConfig(
            bundle=str(bundle_path),
            out=str(out),
            updates=2,
            worlds_per_update=1,
            n_steps=(5, 5),
            factories_per_level=(3, 3),
            pool=POOL,
            eval_every=1,
            eval_worlds=1,
            snapshot_every=1,
        )

    full = finetune(cfg(tmp_path / "full"))
    part = finetune(cfg(tmp_path / "part"), stop_after=1)
    assert part["updates"] == 1 and not part["finished"] and not (tmp_path / "part" / "bundle.pt").exists()
    resumed = finetune(cfg(tmp_path / "part"))
    assert resumed["updates"] == full["updates"] == 2 and resumed["worlds"] == full["worlds"] == 2
    assert full["failed_worlds"] == {"rollout": 0, "validation": 0}
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert_same_checkpoints(a, b)  # bit-identical: weights, critic, optimisers, history
    assert {row["level"] for row in a["learners"]} == {0, 1}  # 1 learner per world, 2 worlds
    final = load_bundle(tmp_path / "full" / "bundle.pt")
    assert final.layers == ("l2", "l3", "l4")


def test_finetune_checkpoint_restores_exact_state(bundle_path: Path, tmp_path: Path) -> None:
    cfg = FinetuneConfig(
        bundle=str(bundle_path),
        out=str(tmp_path),
        updates=3,
        worlds_per_update=1,
        n_steps=(5, 5),
        factories_per_level=(3, 3),
        pool=POOL,
        eval_worlds=0,
    )
    finetune(cfg, stop_after=1)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    state = _State(cfg)
    state.restore(saved, "last.pt")
    again = state.payload(cfg)
    for name in ("l2", "l3", "l4"):
        for key, value in saved["models"][name].items():
            assert torch.equal(value, again["models"][name][key])
    for name, opt in saved["optimisers"].items():
        for pid, st in opt["state"].items():
            for key, value in st.items():
                assert torch.equal(value, again["optimisers"][name]["state"][pid][key])
    assert torch.equal(saved["generator"], again["generator"])
    assert torch.equal(saved["rng"]["torch"], again["rng"]["torch"])
    assert saved["counters"] == again["counters"] == {**saved["counters"], "updates": 1, "worlds": 1}
    assert saved["learners"] == again["learners"] and len(saved["learners"]) == 1


def test_finetune_adds_and_trains_the_follow_gate(bundle_path: Path, tmp_path: Path) -> None:
    """``follow_l1``: the starting bundle's L3 gets the follow-L1 gate (zero weights, that bias);
    the start is validated against LitaAgentL1 as update 0 and, playing L1's own decisions,
    differs from it by exactly 0; one MAPPO update moves the gate's weights."""
    assert not load_bundle(bundle_path).l3.config.follow_gate  # type: ignore[union-attr]
    cfg = FinetuneConfig(
        bundle=str(bundle_path),
        out=str(tmp_path),
        updates=1,
        worlds_per_update=1,
        n_steps=(6, 6),
        factories_per_level=(3, 3),
        pool=POOL,
        eval_every=2,
        eval_worlds=1,
        validate_vs_l1=True,
        follow_l1=1.0,
    )
    summary = finetune(cfg)
    start = summary["history"][0]
    assert start["update"] == 0 and start["val/vs_l1"] == 0.0
    assert start["val/mean_score"] == start["val/l1_mean_score"]
    assert summary["best_update"] == 0 and summary["updates"] == 1
    assert 0.5 < summary["history"][1]["rollout/follow_rate"] < 0.95  # sigmoid(1) = 0.73 of the rows
    trained = torch.load(tmp_path / "last.pt", weights_only=True)["models"]["l3"]
    assert float(trained["follow_head.weight"].abs().sum()) > 0 and float(trained["follow_head.bias"]) != 1.0
    best = load_bundle(tmp_path / "bundle.pt").l3  # the final bundle is the best: the start
    assert best is not None and best.follow_head is not None
    assert float(best.follow_head.weight.abs().sum()) == 0 and float(best.follow_head.bias) == 1.0
    with pytest.raises(ConfigError, match="follow_l1"):
        dataclasses.replace(cfg, follow_l1=float("inf"))
    # a stopping rule may change on resume; the gate may not
    assert finetune(dataclasses.replace(cfg, patience=9))["updates"] == 1
    with pytest.raises(CheckpointError, match="follow_l1"):
        finetune(dataclasses.replace(cfg, follow_l1=0.5))
    with pytest.raises(CheckpointError, match="mappo"):  # the gate's learning rate may not either
        finetune(dataclasses.replace(cfg, mappo=MAPPOConfig(lr_gate=1e-3)))


def test_the_gate_learning_rate_is_its_own_optimiser_group() -> None:
    """``MAPPOConfig.lr_gate``: L3's optimiser holds the gate head at that rate and every other
    weight at ``lr_l3``, each weight once; without a gate (or a rate) it is one group."""
    gated = with_follow_gate(L3Executor(), 1.0)
    groups = _l3_param_groups(gated, MAPPOConfig(lr_l3=1e-4, lr_gate=3e-3))
    assert gated.follow_head is not None and len(groups) == 2
    assert groups[1]["lr"] == 3e-3 and {id(p) for p in groups[1]["params"]} == {
        id(p) for p in gated.follow_head.parameters()
    }
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in gated.parameters())
    opt = torch.optim.Adam(groups, lr=1e-4)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 3e-3]
    assert len(_l3_param_groups(gated, MAPPOConfig())) == 1
    assert len(_l3_param_groups(L3Executor(), MAPPOConfig(lr_gate=3e-3))) == 1
    for bad in (0.0, -1e-3, float("nan")):
        with pytest.raises(ConfigError, match="lr_gate"):
            MAPPOConfig(lr_gate=bad)


def test_a_checkpoint_from_before_a_new_setting_resumes_at_its_default(tmp_path: Path) -> None:
    """A checkpoint's config that lacks a setting added later (here ``mappo.lr_gate``) compares
    equal to a config that leaves it at its default, and unequal to one that sets it."""
    cfg = FinetuneConfig(bundle="b.pt", out=str(tmp_path), follow_l1=1.0)
    old = _config_dict(cfg)
    del old["mappo"]["lr_gate"]
    assert _saved_config(old) == _config_dict(cfg)
    changed = dataclasses.replace(cfg, mappo=MAPPOConfig(lr_gate=1e-3))
    assert _saved_config(old)["mappo"] != _config_dict(changed)["mappo"]


def test_mappo_advantages_follow_each_thread_and_round(rollout: RolloutResult, bundle_path: Path) -> None:
    """build_multi_batch's advantages equal a plain per-thread / per-world GAE loop (the oracle)."""
    bundle = load_bundle(bundle_path)
    assert bundle.l3 is not None and bundle.l4 is not None
    cfg = MAPPOConfig(centralised=False, gamma_l3=0.9, gamma_l4=0.97, lam=0.8)
    episodes = [_episode(rec, RewardConfig()) for rec in rollout.learners.values()]
    batch = build_multi_batch(episodes, bundle.l3, bundle.l4, None, cfg)
    assert batch.l4 is not None
    v3, v4 = batch.l3.values.double().numpy(), batch.l4.values.double().numpy()

    def gae(rewards: list[float], values: list[float], gamma: float) -> list[float]:
        out, a = [0.0] * len(rewards), 0.0
        for t in reversed(range(len(rewards))):
            nxt = values[t + 1] if t + 1 < len(rewards) else 0.0  # the last row terminates
            a = rewards[t] + gamma * nxt - values[t] + (gamma * cfg.lam * a if t + 1 < len(rewards) else 0.0)
            out[t] = a
        return out

    want3, want4 = np.zeros(len(v3)), np.zeros(len(v4))
    row0 = round0 = 0
    for ep in episodes:
        acted = [r for r in ep.rounds if len(r)]
        threads: dict[tuple[int, str], list[int]] = {}
        for j, key in enumerate((r.day, p) for r in acted for p in r.partners):
            threads.setdefault(key, []).append(j)
        for rows in threads.values():
            got = gae([ep.l3_reward[j] for j in rows], [v3[row0 + j] for j in rows], cfg.gamma_l3)
            want3[[row0 + j for j in rows]] = got
        row0 += sum(len(r) for r in acted)
        rew = [ep.l4_reward[i] for i, r in enumerate(ep.rounds) if len(r)]
        want4[round0 : round0 + len(acted)] = gae(rew, list(v4[round0 : round0 + len(acted)]), cfg.gamma_l4)
        round0 += len(acted)
    assert len(threads) > 1 and np.abs(want3).max() > 0
    np.testing.assert_allclose(batch.l3.advantages.numpy(), want3, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batch.l4.advantages.numpy(), want4, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batch.l3.returns.numpy(), want3 + v3, rtol=1e-4, atol=1e-5)


def test_validation_against_l1_is_a_seat_swap_comparison(bundle_path: Path, tmp_path: Path) -> None:
    """``validate_vs_l1``: the metric is the mean paired difference against LitaAgentL1 in the same
    seats; L1 plays each validation world once, every validation reuses it."""
    cfg = FinetuneConfig(
        bundle=str(bundle_path),
        out=str(tmp_path),
        updates=2,
        worlds_per_update=1,
        n_steps=(5, 5),
        factories_per_level=(3, 3),
        pool=POOL,
        eval_every=1,
        eval_worlds=2,
        validate_vs_l1=True,
        snapshot_every=0,
    )
    summary = finetune(cfg)
    plays = json.loads((tmp_path / "validation" / "plays.json").read_text())["plays"]
    labels = sorted({key.split("/")[1] for key in plays})
    assert labels == ["L1", "u0001", "u0002"]
    assert all(entry["status"] == "done" for entry in plays.values())
    for update, row in enumerate(summary["history"], start=1):
        label = f"u{update:04d}"
        diffs = [
            plays[key]["score"] - plays[key.replace(label, "L1")]["score"]
            for key in plays
            if key.endswith(label)
        ]
        assert len(diffs) == 2
        assert row["val/vs_l1"] == pytest.approx(float(np.mean(diffs)), abs=1e-12)
        assert row["val/vs_l1_ci_low"] <= row["val/vs_l1"] <= row["val/vs_l1_ci_high"]
    assert summary["best_metric"] == max(row["val/vs_l1"] for row in summary["history"])


def test_round_credit_trains_the_gate_on_the_rounds_advantages(
    rollout: RolloutResult, bundle_path: Path
) -> None:
    """``gate_credit="round"``: each row carries its round's L4 advantage; the gate head's gradient
    then depends on those and not on L3's per-thread advantages (with ``"thread"`` it is the
    other way round); the old gate log-prob is the pre-update gate's."""
    bundle = load_bundle(bundle_path)
    assert bundle.l3 is not None and bundle.l4 is not None
    l3 = with_follow_gate(bundle.l3, 1.0)
    episodes = [_episode(rec, RewardConfig()) for rec in rollout.learners.values()]
    cfg = MAPPOConfig(centralised=False, gate_credit="round")
    batch = build_multi_batch(episodes, l3, bundle.l4, None, cfg)
    assert batch.l4 is not None
    sizes = [len(r) for ep in episodes for r in ep.rounds if len(r)]
    want = np.repeat(batch.l4.advantages.numpy(), sizes)
    np.testing.assert_array_equal(batch.l3.round_advantages.numpy(), want)
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(batch.l3.old_gate_log_prob.numpy(), np.log(1 / (1 + np.exp(1.0))), rtol=1e-5)

    def gate_grad(credit: str, adv: Tensor, gate_adv: Tensor | None) -> Tensor:
        l3.zero_grad()
        loss, _ = _l3_loss(l3, None, batch.l3, adv, dataclasses.replace(cfg, gate_credit=credit), gate_adv)
        loss.backward()  # type: ignore[no-untyped-call]
        assert l3.follow_head is not None and l3.follow_head.weight.grad is not None
        return l3.follow_head.weight.grad.clone()

    g = torch.Generator().manual_seed(0)
    adv, other = torch.randn(len(batch.l3), generator=g), torch.randn(len(batch.l3), generator=g)
    gate_adv = batch.l3.round_advantages
    round_grad = gate_grad("round", adv, gate_adv)
    assert torch.allclose(round_grad, gate_grad("round", other, gate_adv), atol=1e-7)
    assert not torch.allclose(round_grad, gate_grad("round", adv, other), atol=1e-5)
    assert not torch.allclose(gate_grad("thread", adv, None), gate_grad("thread", other, None), atol=1e-5)
    with pytest.raises(ConfigError, match="gate_credit"):
        MAPPOConfig(gate_credit="day")


def test_round_credit_trains_l3s_own_action_on_the_rounds_advantages(
    rollout: RolloutResult, bundle_path: Path
) -> None:
    """``l3_credit="round"``: one PPO update of L3 moves its weights by the rows' round (L4)
    advantages alone: batches that differ only in the thread advantages train it alike, batches
    that differ in the round advantages do not; ``"thread"`` is the other way round."""
    bundle = load_bundle(bundle_path)
    assert bundle.l3 is not None and bundle.l4 is not None
    episodes = [_episode(rec, RewardConfig()) for rec in rollout.learners.values()]
    base = build_multi_batch(episodes, bundle.l3, bundle.l4, None, MAPPOConfig(centralised=False))
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(len(base.l3), generator=g)

    def trained(credit: str, thread_shift: float, round_shift: float) -> Tensor:
        l3, l4 = copy.deepcopy(bundle.l3), copy.deepcopy(bundle.l4)
        cfg = MAPPOConfig(centralised=False, l3_credit=credit, epochs=1, target_kl=None, lr_l3=1e-2)
        l3b = dataclasses.replace(
            base.l3,
            advantages=base.l3.advantages + thread_shift * noise,
            round_advantages=base.l3.round_advantages + round_shift * noise,
        )
        batch = dataclasses.replace(base, l3=l3b)
        opts: dict[str, torch.optim.Optimizer] = {
            "l3": torch.optim.Adam(l3.parameters(), lr=cfg.lr_l3),
            "l4": torch.optim.Adam(l4.parameters(), lr=cfg.lr_l4),
        }
        mappo_update(l3, l4, None, opts, batch, cfg, torch.Generator().manual_seed(0))
        return torch.cat([p.detach().flatten() for n, p in l3.named_parameters() if "value" not in n])

    assert np.abs(base.l3.round_advantages.numpy()).max() > 0
    rounds = trained("round", 0.0, 0.0)
    assert torch.equal(rounds, trained("round", 1.0, 0.0))
    assert not torch.allclose(rounds, trained("round", 0.0, 1.0), atol=1e-6)
    threads = trained("thread", 0.0, 0.0)
    assert torch.equal(threads, trained("thread", 0.0, 1.0))
    assert not torch.allclose(threads, trained("thread", 1.0, 0.0), atol=1e-6)
    with pytest.raises(ConfigError, match="l3_credit"):
        MAPPOConfig(l3_credit="day")
    with pytest.raises(ConfigError, match="l3_credit='round' needs L4"):
        mappo_objective(bundle.l3, None, dataclasses.replace(base, l4=None), MAPPOConfig(l3_credit="round"))
