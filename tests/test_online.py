"""Online fine-tuning (issue 6) on tiny REAL SCML worlds: rollouts, rewards, PPO, MAPPO/IPPO, resume.

One module-scoped rollout (2 learners, 6 days, 3 factories per level, inline) feeds most tests.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from hrl.features import MACRO_FEATURES
from hrl.models.critic import CentralCritic
from hrl.opponents import BUILTINS, PENGUIN
from hrl.train.bundle import Bundle, fresh_bundle, load_bundle, save_bundle
from hrl.train.finetune import FinetuneConfig, _baseline_near_l3, _State, finetune
from hrl.train.mappo import Episode, MAPPOConfig, build_multi_batch, mappo_objective, mappo_update
from hrl.train.ppo import PPOConfig, l2_batch, l2_objective, ppo_update_l2, trajectory_gae
from hrl.train.rewards import RewardConfig, l2_rewards, l3_rewards, l4_rewards
from hrl.train.rollout import LearnerRecord, RolloutResult, plan_rollouts, run_rollout

POOL = (PENGUIN, *BUILTINS)
BALANCE = MACRO_FEATURES.index("balance")


def _bundle() -> Bundle:
    b = fresh_bundle(3)
    return Bundle(l2=b.l2, l3=_baseline_near_l3(3), l4=b.l4, extra={"source": "fresh"})


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("online") / "bundle.pt"
    save_bundle(_bundle(), path)
    return path


@pytest.fixture(scope="module")
def rollout(bundle_path: Path) -> RolloutResult:
    (task,) = plan_rollouts(
        bundle_path=str(bundle_path),
        n_worlds=1,
        seed=5,
        update=0,
        pool=POOL,
        n_learners=2,
        n_steps=(6, 6),
        factories_per_level=(3, 3),
    )
    return run_rollout(task)


def _episode(rec: LearnerRecord, cfg: RewardConfig) -> Episode:
    r2, _, term = l2_rewards(rec, cfg)
    r3, _, last = l3_rewards(rec, cfg)
    return Episode(
        rounds=rec.transitions.rounds,
        macro={t.day: t.state[-1] for t in rec.transitions.l2},
        l3_reward=r3,
        thread_last=last,
        l4_reward=l4_rewards(rec, r2),
        day_terminated=frozenset(t.day for i, t in enumerate(rec.transitions.l2) if term[i]),
    )


def test_rollout_is_well_formed_and_keyed_by_world_id(rollout: RolloutResult) -> None:
    assert rollout.n_exceptions == 0
    assert len(rollout.learners) == 2
    for aid, rec in rollout.learners.items():
        assert rec.agent_id == aid and aid in rollout.scores
        assert rec.final_score == rollout.scores[aid]
        assert rec.fallback_reason is None
        assert [t.day for t in rec.transitions.l2] == list(range(6))
        assert len(rec.days) == 6 and rec.transitions.n_thread_rounds > 0
        for r in rec.transitions.rounds:
            k = len(r)
            assert r.history.shape[0] == k and r.threads.shape == (k, 16) and r.alpha.shape == (k,)
            assert torch.isfinite(r.l3_log_prob).all() and r.changed_by_l1.dtype == torch.bool
        # the agent's own view (macro feature 'balance' = awi balance / B0 at the start of day t)
        # equals the world's statistics for THIS world id at the end of day t - 1
        for t in rec.transitions.l2[1:]:
            world_balance = rec.days[t.day - 1].balance / rec.initial_balance
            assert float(t.state[-1, BALANCE]) == pytest.approx(world_balance, rel=1e-5)
    a, b = rollout.learners.values()
    assert [d.balance for d in a.days] != [d.balance for d in b.days]


def test_rewards_match_hand_computed_day(rollout: RolloutResult) -> None:
    cfg = RewardConfig(liquidity=0.5)
    for rec in rollout.learners.values():
        reward, terms, terminated = l2_rewards(rec, cfg)
        assert reward.shape == (6,) and not terminated.any()
        b0 = rec.initial_balance
        d2, d3 = rec.days[2], rec.days[3]
        phi2 = d2.inventory_input * d2.trading_price_in + d2.inventory_output * d2.trading_price_out
        phi3 = d3.inventory_input * d3.trading_price_in + d3.inventory_output * d3.trading_price_out
        deals = sum(1 for d in rec.deals if d.day == 3)
        hand = (
            (d3.balance - d2.balance) / b0
            + (0.99 * phi3 - phi2) / b0
            - d3.shortfall_penalty / b0
            + 0.5 * deals
        )
        assert reward[3] == pytest.approx(hand, rel=1e-9, abs=1e-12)
        # cash terms telescope to the world's final balance for this agent id
        assert b0 * (1 + terms["cash"].sum()) == pytest.approx(rec.days[-1].balance, rel=1e-9)
        r3, terms3, last = l3_rewards(rec, cfg)
        assert r3.shape == (rec.transitions.n_thread_rounds,) and np.isfinite(r3).all()
        assert terms3["liquidity"].sum() == pytest.approx(len({(d.day, d.partner) for d in rec.deals}))
        assert np.all(r3[~last] == 0)
        r4 = l4_rewards(rec, reward)
        assert r4.sum() == pytest.approx(
            reward[[t.day in {r.day for r in rec.transitions.rounds} for t in rec.transitions.l2]].sum()
        )


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


@pytest.mark.parametrize("centralised", [True, False], ids=["mappo", "ippo"])
def test_mappo_update_improves_the_surrogates(
    rollout: RolloutResult, bundle_path: Path, centralised: bool
) -> None:
    bundle = load_bundle(bundle_path)
    assert bundle.l3 is not None and bundle.l4 is not None
    cfg = MAPPOConfig(centralised=centralised, epochs=4, minibatch=64, lr_l3=1e-3, lr_l4=1e-3, target_kl=None)
    critic = CentralCritic() if centralised else None
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
    assert all(np.isfinite(v) for v in stats.values())
    if not centralised:
        # IPPO trains L3's own value head
        assert not torch.equal(l3_w["value_head.weight"], bundle.l3.state_dict()["value_head.weight"])


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
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    # update 1 is the same in both runs (same start, same worlds)
    assert a["history"][0]["rollout/mean_score"] == b["history"][0]["rollout/mean_score"]
    assert a["history"][0]["train/l2/approx_kl"] == b["history"][0]["train/l2/approx_kl"]
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
