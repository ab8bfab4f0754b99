"""Behaviour cloning: split by world, learning on SYNTHETIC structured data, determinism, exact
resume, early stopping, TensorBoard, and the adapters from the data pipeline's tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from hrl.config import L2Config, L3Config, L4Config, TrainConfig
from hrl.errors import CheckpointError, ConfigError
from hrl.models.l3 import ACCEPT, COUNTER, END
from hrl.train import (
    load_checkpoint,
    load_model,
    macro_tensors_from_frame,
    micro_tensors_from_frame,
    split_by_world,
    thread_tensors_from_micro,
    train_l2_bc,
    train_l3_bc,
    train_l4_bc,
)
from synthetic_data import close, synthetic_macro, synthetic_micro

torch.set_num_threads(1)

SMALL_L2 = L2Config(hidden=32)
SMALL_L3 = L3Config(hidden=32)
SMALL_L4 = L4Config(hidden=16, layers=1)


def fast(**kw: object) -> TrainConfig:
    base: dict[str, object] = {"epochs": 4, "batch_size": 128, "lr": 3e-3, "progress": False}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def macro() -> object:
    return synthetic_macro(n_worlds=6, agents=6, days=25)


@pytest.fixture(scope="module")
def micro() -> object:
    return synthetic_micro(n_worlds=6, groups_per_world=40)


# --- split by world ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_worlds", [2, 3, 10])
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_split_by_world_never_shares_a_world(n_worlds: int, fraction: float) -> None:
    rng = np.random.default_rng(n_worlds)
    world = torch.from_numpy(rng.integers(0, n_worlds, 400)).long()
    world[:n_worlds] = torch.arange(n_worlds)
    train, val = split_by_world(world, fraction, seed=5)
    assert len(train) + len(val) == 400 and len(val) > 0 and len(train) > 0
    assert not set(world[train].tolist()) & set(world[val].tolist())
    assert torch.equal(torch.sort(torch.cat([train, val])).values, torch.arange(400))
    again = split_by_world(world, fraction, seed=5)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)


def test_split_needs_two_worlds() -> None:
    with pytest.raises(ConfigError, match="2 worlds"):
        split_by_world(torch.zeros(10, dtype=torch.long), 0.2, 0)


# --- learning ---------------------------------------------------------------------------------


def test_l2_bc_learns_and_reports_per_component_metrics(macro: object, tmp_path: Path) -> None:
    result = train_l2_bc(macro, fast(epochs=8, log_dir=str(tmp_path / "tb")), SMALL_L2)  # type: ignore[arg-type]
    untrained, best = result.history[0], result.history[result.best_epoch]
    assert result.best_val_loss < 0.6 * untrained["val/loss"]
    for side in ("buy", "sell"):
        for key in (f"q_{side}/mae_zero", f"q_{side}/mae_nonzero", f"p_{side}/mae_traded"):
            assert f"train/{key}" in best and f"val/{key}" in best
    assert best["val/q_sell/mae_nonzero"] < untrained["val/q_sell/mae_nonzero"]
    # TensorBoard scalars under namespaced keys
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "train/lr", "val/q_buy/mae_zero"} <= tags
    assert [e.step for e in events.Scalars("val/loss")] == list(range(9))


def test_l3_bc_learns_all_heads(micro: object) -> None:
    result = train_l3_bc(micro, fast(epochs=10, fraction_weight=5.0), SMALL_L3)  # type: ignore[arg-type]
    untrained, best = result.history[0], result.history[result.best_epoch]
    assert result.best_val_loss < 0.6 * untrained["val/loss"]
    assert best["val/kind/accuracy"] > max(0.6, untrained["val/kind/accuracy"])
    assert best["val/day/accuracy"] > untrained["val/day/accuracy"] + 0.1
    assert best["val/fraction/mae_q"] < 0.8 * untrained["val/fraction/mae_q"]
    assert best["val/fraction/mae_p"] < 0.8 * untrained["val/fraction/mae_p"]
    assert {"val/kind/recall_accept", "val/kind/recall_counter", "val/kind/recall_end"} <= set(best)


def test_l4_bc_learns_the_cap_sharing_teacher(micro: object) -> None:
    threads = thread_tensors_from_micro(micro)  # type: ignore[arg-type]
    result = train_l4_bc(threads, fast(epochs=15, batch_size=32), SMALL_L4)
    assert result.best_val_loss < 0.85 * result.history[0]["val/loss"]
    assert {"val/alpha/mae", "val/alpha/top1"} <= set(result.history[-1])


# --- determinism, resume, early stopping ------------------------------------------------------


def test_training_is_deterministic_under_a_seed(macro: object) -> None:
    a = train_l2_bc(macro, fast(epochs=2), SMALL_L2)  # type: ignore[arg-type]
    b = train_l2_bc(macro, fast(epochs=2), SMALL_L2)  # type: ignore[arg-type]
    c = train_l2_bc(macro, fast(epochs=2, seed=1), SMALL_L2)  # type: ignore[arg-type]
    assert close(a.model.state_dict(), b.model.state_dict()) and a.history == b.history
    assert not close(a.model.state_dict(), c.model.state_dict())


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_interrupted_and_resumed_run_ends_with_identical_weights(
    micro: object, tmp_path: Path, schedule: str
) -> None:
    cfg = fast(epochs=4, lr_schedule=schedule, patience=10, batch_size=64)
    full = train_l3_bc(micro, replace(cfg, checkpoint_dir=str(tmp_path / "a")), SMALL_L3)  # type: ignore[arg-type]
    part_cfg = replace(cfg, checkpoint_dir=str(tmp_path / "b"))
    part = train_l3_bc(micro, part_cfg, SMALL_L3, stop_after_epochs=2)  # type: ignore[arg-type]
    assert part.interrupted and len(part.history) == 3
    assert not close(part.model.state_dict(), full.model.state_dict())
    resumed = train_l3_bc(micro, part_cfg, SMALL_L3, resume_from=part.checkpoint)  # type: ignore[arg-type]
    assert close(resumed.model.state_dict(), full.model.state_dict())
    assert resumed.history == full.history and resumed.best_epoch == full.best_epoch
    last_a = load_checkpoint(tmp_path / "a" / "last.pt", kind="bc/l3")
    last_b = load_checkpoint(tmp_path / "b" / "last.pt", kind="bc/l3")
    assert close(last_a["models"]["model"], last_b["models"]["model"])
    assert last_a["counters"] == last_b["counters"]
    state_a, state_b = last_a["optimisers"]["model"]["state"], last_b["optimisers"]["model"]["state"]
    assert state_a.keys() == state_b.keys() and all(close(state_a[k], state_b[k]) for k in state_a)
    assert close(load_model(tmp_path / "b" / "best.pt").state_dict(), full.model.state_dict())


def test_resume_refuses_other_config_or_data(micro: object, macro: object, tmp_path: Path) -> None:
    cfg = fast(epochs=2, checkpoint_dir=str(tmp_path))
    part = train_l3_bc(micro, cfg, SMALL_L3, stop_after_epochs=1)  # type: ignore[arg-type]
    assert part.checkpoint is not None
    with pytest.raises(CheckpointError, match="another training config"):
        train_l3_bc(micro, replace(cfg, lr=1e-2), SMALL_L3, resume_from=part.checkpoint)  # type: ignore[arg-type]
    smaller = micro.select(torch.arange(len(micro) - 50))  # type: ignore[attr-defined]
    with pytest.raises(CheckpointError, match="other data"):
        train_l3_bc(smaller, cfg, SMALL_L3, resume_from=part.checkpoint)
    with pytest.raises(CheckpointError, match="expected 'bc/l2'"):
        train_l2_bc(macro, cfg, SMALL_L2, resume_from=part.checkpoint)  # type: ignore[arg-type]


def test_early_stopping_returns_the_best_weights(macro: object, tmp_path: Path) -> None:
    cfg = fast(epochs=30, patience=2, min_delta=10.0, checkpoint_dir=str(tmp_path))  # nothing counts
    result = train_l2_bc(macro, cfg, SMALL_L2)  # type: ignore[arg-type]
    assert result.stopped_early and result.best_epoch == 1 and len(result.history) == 1 + 3
    assert result.best_checkpoint is not None
    assert close(load_model(result.best_checkpoint).state_dict(), result.model.state_dict())
    assert load_checkpoint(tmp_path / "last.pt")["counters"]["epoch"] == 3


# --- adapters from the data pipeline's tables ------------------------------------------------


def macro_frame() -> pl.DataFrame:
    """A tiny macro table with the data pipeline's columns (schema version 1)."""
    rows = []
    for world in ("w0", "w1"):
        for agent, level in (("a", 0), ("b", 1)):
            for day in (0, 1, 2, 4):  # day 3 missing: the window must not bridge the gap
                rows.append(
                    {
                        "world": world,
                        "agent": agent,
                        "day": day,
                        "n_lines": 10,
                        "trading_price_in": 10.0,
                        "trading_price_out": 20.0,
                        "state_macro": [float(day + 100 * level)] * 37,
                        "committed_supplies": [float(day)] * 11,
                        "committed_sales": [2.0 * day] * 11,
                        "goal": [5.0, 11.0, 20.0, 18.0],
                        "goal_mask": [level > 0, level > 0, True, True],
                    }
                )
    return pl.DataFrame(rows).with_columns(
        pl.col("state_macro").cast(pl.Array(pl.Float32, 37)),
        pl.col("committed_supplies").cast(pl.Array(pl.Float64, 11)),
        pl.col("committed_sales").cast(pl.Array(pl.Float64, 11)),
        pl.col("goal").cast(pl.Array(pl.Float32, 4)),
        pl.col("goal_mask").cast(pl.Array(pl.Boolean, 4)),
    )


def micro_frame() -> pl.DataFrame:
    def offer(seq: int, rnd: int, seller_proposes: bool, q: int, d: int, p: float) -> dict[str, object]:
        return {
            "seq": seq,
            "round": rnd,
            "proposer_is_seller": seller_proposes,
            "quantity": q,
            "delivery_day": d,
            "unit_price": p,
        }

    history = [offer(0, 0, True, 4, 2, 21.0), offer(1, 0, False, 3, 3, 19.0), offer(2, 1, True, 5, 2, 22.0)]
    base = {
        "world": "w0",
        "actor": "b",
        "day": 2,
        "relative_time": 0.1,
        "relative_round": 0.05,
        "actor_is_seller": True,
        **{
            f"goal_{g}": v
            for g, v in zip(("q_buy", "p_buy", "q_sell", "p_sell"), (5.0, 11.0, 20.0, 18.0), strict=True)
        },
        "baseline_kind": "propose",
        "baseline_quantity": 4.0,
        "baseline_delivery_day": 3.0,
        "baseline_unit_price": 20.0,
        "l1_day_mask": [k != 2 for k in range(11)],
        "l1_caps": [0.0 if k == 2 else 5.0 for k in range(11)],
        "l1_accept_safe": True,
        "l1_q_min": 1.0,
        "l1_p_min": 19.0,
        "l1_p_max": 21.0,
    }
    rows = [
        {**base, "round": 0, "history": [], "action_kind": "propose", "action_quantity": 6,
         "action_delivery_day": 4, "action_unit_price": 22.0},
        {**base, "round": 0, "history": history[:1], "action_kind": "propose", "action_quantity": 4,
         "action_delivery_day": 30, "action_unit_price": 20.0},
        {**base, "round": 1, "history": history[:2], "action_kind": "accept", "action_quantity": 3,
         "action_delivery_day": 3, "action_unit_price": 19.0},
        {**base, "round": 1, "history": history, "action_kind": "end", "action_quantity": None,
         "action_delivery_day": None, "action_unit_price": None, "actor_is_seller": False,
         "world": "w1", "actor": "a", "day": 1},
    ]  # fmt: skip
    return pl.DataFrame(rows).with_columns(
        pl.col("l1_day_mask").cast(pl.Array(pl.Boolean, 11)), pl.col("l1_caps").cast(pl.Array(pl.Float64, 11))
    )


def test_macro_adapter_builds_windows_goals_and_world_ids() -> None:
    cfg = L2Config(history_days=2)
    ds = macro_tensors_from_frame(macro_frame().sample(fraction=1.0, shuffle=True, seed=3), cfg)
    assert len(ds) == 16 and ds.state.shape == (16, 3, 37) and ds.profile.shape == (16, 11, 2)
    # rows are sorted by world, agent, day: row 2 is (w0, a, day 2), row 3 is (w0, a, day 4)
    assert ds.state_mask[2].tolist() == [True, True, True]
    assert ds.state[2, :, 0].tolist() == [0.0, 1.0, 2.0]
    assert ds.state_mask[3].tolist() == [False, False, True]  # day 3 is missing: no bridging
    assert ds.state_mask[0].tolist() == [False, False, True]
    torch.testing.assert_close(ds.goal[0], torch.tensor([0.5, 1.1, 2.0, 0.9]))
    torch.testing.assert_close(ds.profile[2, 0], torch.tensor([0.2, 0.4]))
    assert ds.side_mask[0].tolist() == [False, False, True, True]
    assert ds.world_id.tolist() == [0] * 8 + [1] * 8
    with pytest.raises(ConfigError, match="goal_mask"):
        macro_tensors_from_frame(macro_frame().drop("goal_mask"), cfg)


def test_micro_adapter_scales_histories_labels_and_masks() -> None:
    cfg = L3Config(max_history=2)
    ds = micro_tensors_from_frame(micro_frame(), macro_frame(), cfg)
    assert ds.history.shape == (4, 2, 5)
    assert ds.history_mask.tolist() == [[False, False], [True, False], [True, True], [True, True]]
    # row 2 (seller b, day 2, tp_out 20, n_lines 10): offers 0 and 1, oldest first
    torch.testing.assert_close(ds.history[2, 0], torch.tensor([0.4, 0.0, 21 / 20, 0.0, 1.0]))
    torch.testing.assert_close(ds.history[2, 1], torch.tensor([0.3, 0.1, 19 / 20, 0.0, 0.0]))
    # row 3 keeps the two most recent of three offers; a buyer (tp_in 10) on day 1
    torch.testing.assert_close(ds.history[3, 1], torch.tensor([0.5, 0.1, 2.2, 0.05, 0.0]))
    assert ds.kind.tolist() == [COUNTER, COUNTER, ACCEPT, END]
    # accept needs the partner's offer last: none (row 0), the agent's own (row 1), partner's (2, 3)
    assert ds.kind_mask[:, ACCEPT].tolist() == [False, False, True, True]
    # labels projected into L1's box: row 0 wants offset 2 (not allowed: nearest, later first, 3),
    # price 22 (clipped to 21) and 6 units (cap 5); row 1 wants day 30 (past the horizon: 10)
    assert ds.delivery.tolist() == [3, cfg.n_days - 1, 0, 0]
    torch.testing.assert_close(ds.offer[0], torch.tensor([5.0, 3.0, 21.0]))
    torch.testing.assert_close(ds.fraction[0], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(ds.fraction[1], torch.tensor([0.75, 0.5]))  # (4-1)/(5-1), (20-19)/2
    assert torch.all(ds.fraction[2:] == 0) and not ds.fraction_mask[2:].any()
    torch.testing.assert_close(ds.caps[0, :3], torch.tensor([0.5, 0.5, 0.0]))  # / n_lines
    torch.testing.assert_close(ds.prices[0], torch.tensor([19 / 20, 21 / 20]))
    torch.testing.assert_close(ds.baseline[0], torch.tensor([0.4, 0.1, 1.0]))
    torch.testing.assert_close(ds.goal[0], torch.tensor([0.5, 1.1, 2.0, 0.9]))
    assert ds.group_id.tolist() == [0, 0, 1, 2] and ds.world_id.tolist() == [0, 0, 0, 1]
    # an acceptance L1 finds unsafe is labelled as L1 plays it: a counter-offer of the partner's offer
    unsafe = micro_tensors_from_frame(
        micro_frame().with_columns(pl.lit(False).alias("l1_accept_safe")), macro_frame(), cfg
    )
    assert unsafe.kind.tolist() == [COUNTER, COUNTER, COUNTER, END] and not unsafe.kind_mask[:, ACCEPT].any()
    torch.testing.assert_close(unsafe.offer[2], torch.tensor([3.0, 1.0, 19.0]))
    # L2's goals replace the rows' goal columns; expert rows without a goal need them
    goals = macro_frame().select(
        "world", "agent", "day", pl.lit([0.1, 0.2, 0.3, 0.4]).cast(pl.Array(pl.Float32, 4)).alias("goal")
    )
    with_l2 = micro_tensors_from_frame(micro_frame(), macro_frame(), cfg, goals=goals)
    torch.testing.assert_close(with_l2.goal, torch.tensor([[0.1, 0.2, 0.3, 0.4]]).expand(4, 4))
    no_goal = micro_frame().with_columns(pl.lit(None, pl.Float64).alias("goal_q_buy"))
    with pytest.raises(ConfigError, match="no goal"):
        micro_tensors_from_frame(no_goal, macro_frame(), cfg)


def test_micro_adapter_rejects_missing_baselines_and_macro_rows() -> None:
    frame = micro_frame()
    with pytest.raises(ConfigError, match="L1 baseline"):
        micro_tensors_from_frame(
            frame.with_columns(pl.lit(None, pl.Float64).alias("baseline_quantity")), macro_frame()
        )
    with pytest.raises(ConfigError, match="no macro row"):
        micro_tensors_from_frame(frame.with_columns(pl.lit(99).alias("day")), macro_frame())
    with pytest.raises(ConfigError, match="missing columns"):
        micro_tensors_from_frame(frame.drop("history"), macro_frame())


def test_thread_adapter_groups_rounds_and_takes_the_teacher_target() -> None:
    micro = synthetic_micro(n_worlds=2, groups_per_world=3, seed=4)
    threads = thread_tensors_from_micro(micro)
    assert len(threads) == 6 and int(threads.thread_mask.sum()) == len(micro)
    first = micro.group_id == 0
    counter = micro.kind[first] == COUNTER
    k = int(first.sum())
    torch.testing.assert_close(threads.target[0, :k][counter], micro.alpha[first][counter])
    assert threads.target_mask[0, :k].tolist() == counter.tolist()
    assert threads.world_id.tolist() == [0, 0, 0, 1, 1, 1]
