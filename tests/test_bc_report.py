"""Held-out BC metrics on tiny real collected worlds: the composition of L3 and L4 (training =
play), L3+L4 against L3 alone, and the naive baselines next to the models on the same rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from hrl.config import TrainConfig
from hrl.data import build_macro_dataset, build_micro_dataset, load_negotiation_csv
from hrl.data.datasets import DEFAULT_EXPERTS
from hrl.models.l2 import GOAL_NAMES
from hrl.models.l3 import COUNTER
from hrl.train.adapters import macro_tensors_from_frame, micro_tensors_from_frame
from hrl.train.bc_report import PREDICTORS, Prediction, compose_offers
from hrl.train.bundle import load_bundle
from hrl.train.datasets import split_by_world
from hrl.train.goals import l2_goal_frame
from hrl.train.pretrain import PretrainConfig, pretrain

EXPERTS = [*DEFAULT_EXPERTS, "GreedyStdAgent", "SyncRandomStdAgent"]
TRAIN = TrainConfig(epochs=12, batch_size=64, progress=False, num_threads=1, seed=3)


@pytest.fixture(scope="module")
def pretrained(parquet_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``hrl pretrain`` (all layers) on the tiny real collection's samples."""
    torch.set_num_threads(1)
    tables = load_negotiation_csv(parquet_collection)
    data = tmp_path_factory.mktemp("bc_report") / "data"
    data.mkdir()
    macro = build_macro_dataset(tables)
    micro = build_micro_dataset(tables, experts=EXPERTS)
    macro.write_parquet(data / "macro.parquet")
    micro.write_parquet(data / "micro.parquet")
    out = data.parent / "out"
    report = pretrain(PretrainConfig(data=data, out=out, train=TRAIN))
    return {"report": report, "macro": macro, "micro": micro, "out": out}


def test_the_labels_compose_back_into_the_projected_expert_offers(pretrained: dict[str, Any]) -> None:
    """Decoding the labels (kind, day, fractions, the teacher's alpha) the way play does gives
    exactly the projected expert offer on every counter row: training and play compose alike."""
    macro, micro = pretrained["macro"], pretrained["micro"]
    bundle = load_bundle(pretrained["out"] / "bundle.pt")
    data = micro_tensors_from_frame(micro, macro, goals=l2_goal_frame(bundle.l2, macro))
    labels = Prediction(
        data.kind.numpy(), data.delivery.numpy(), data.fraction.double().numpy(), data.alpha.double().numpy()
    )
    offers = compose_offers(data, labels)
    counter = data.kind.numpy() == COUNTER
    assert counter.sum() > 50
    np.testing.assert_array_equal(offers[counter], data.offer.double().numpy()[counter])
    assert (offers[~counter] == 0).all()
    # equal shares (no L4) give other offers where a day is shared unequally: alpha matters
    equal = compose_offers(data, labels._replace(alpha=np.ones(len(counter))))
    assert (data.alpha.numpy()[counter] < 1).any()
    assert (equal[counter] != offers[counter]).any()


def test_l3_with_l4_reproduces_the_expert_about_as_well_as_l3_alone(pretrained: dict[str, Any]) -> None:
    """On the held-out world's rows: L4 changes only how a day's cap is shared, so kind and day
    are L3's either way, and the composed offers of L3+L4 are about as close to the projected
    expert offers as L3's with equal shares (within 0.05 n_lines of quantity, 0.02 of price)."""
    heldout = pretrained["report"]["heldout"]["l3"]
    both, alone = heldout["l3_l4"], heldout["l3"]
    print("L3+L4:", both, "\nL3 alone:", alone)
    assert both["rows"] == alone["rows"] > 0 and both["offer/rows"] > 10
    assert both["kind/accuracy"] == alone["kind/accuracy"]
    assert both["day/accuracy"] == alone["day/accuracy"]
    assert both["offer/mae_q"] <= alone["offer/mae_q"] + 0.05
    assert both["offer/mae_p"] <= alone["offer/mae_p"] + 0.02


def test_heldout_metrics_have_the_naive_baselines_on_the_same_rows(pretrained: dict[str, Any]) -> None:
    report, macro, micro, out = (pretrained[k] for k in ("report", "macro", "micro", "out"))
    on_disk = json.loads((out / "metrics.json").read_text())["heldout"]
    assert on_disk["l3"].keys() == report["heldout"]["l3"].keys() == set(PREDICTORS)
    assert on_disk["l2"].keys() == {"l2", "train_mean"}
    heldout = report["heldout"]
    # the held-out rows are those of the validation worlds of the trainers' split
    data = micro_tensors_from_frame(
        micro, macro, goals=l2_goal_frame(load_bundle(out / "bundle.pt").l2, macro)
    )
    _, val_idx = split_by_world(data.world_id, TRAIN.val_fraction, TRAIN.seed)
    assert heldout["l3_val_worlds"] == sorted(int(w) for w in torch.unique(data.world_id[val_idx]))
    val = data.select(val_idx)
    counter = val.kind == COUNTER
    for name in PREDICTORS:
        row = heldout["l3"][name]
        assert row["rows"] == len(val) and row["counter_rows"] == int(counter.sum()), name
        for key in ("kind/accuracy", "day/accuracy", "fraction/mae_q", "fraction/mae_p", "offer/mae_q"):
            assert row[key] is not None and np.isfinite(row[key]), (name, key)
    # the L1 baseline's kind accuracy, recomputed from the micro table's own columns
    worlds = sorted(micro["world"].unique())
    held = micro.filter(pl.col("world").is_in([worlds[w] for w in heldout["l3_val_worlds"]]))
    assert held.height == len(val)
    codes = {"accept": 0, "propose": 1, "end": 2}
    base = np.array([codes[k] for k in held["baseline_kind"].cast(pl.String)])
    expected = float((base == val.kind.numpy()).mean())
    assert heldout["l3"]["l1_baseline"]["kind/accuracy"] == pytest.approx(expected)
    macro_rows = macro_tensors_from_frame(macro)
    _, macro_val = split_by_world(macro_rows.world_id, TRAIN.val_fraction, TRAIN.seed)
    for name in ("l2", "train_mean"):
        assert heldout["l2"][name]["rows"] == len(macro_val)
        assert all(f"goal/{g}" in heldout["l2"][name] for g in GOAL_NAMES)


def test_score_filtered_cloning_keeps_only_the_agent_worlds_above_the_threshold(
    pretrained: dict[str, Any], tmp_path: Path
) -> None:
    from dataclasses import replace

    from hrl.errors import ConfigError
    from hrl.train.experts import expert_scores, select_experts

    macro, micro = pretrained["macro"], pretrained["micro"]
    scores = expert_scores(macro)
    # recomputed here from each agent's own last macro row
    last = macro.sort("day").group_by(["world", "agent"]).last()
    want = dict(
        zip(
            zip(last["world"], last["agent"], strict=True),
            last["balance"] / last["initial_balance"],
            strict=True,
        )
    )
    got = dict(zip(zip(scores["world"], scores["agent"], strict=True), scores["score"], strict=True))
    assert got.keys() == want.keys() and all(abs(got[k] - want[k]) < 1e-12 for k in want)
    threshold = float(scores["score"].median())
    kept_macro, kept_micro, summary = select_experts(macro, micro, threshold)
    good = {k for k, v in got.items() if v >= threshold}
    assert 0 < len(good) < len(got) and summary["kept"] == len(good)
    assert set(zip(kept_macro["world"], kept_macro["agent"], strict=True)) == good
    assert kept_micro is not None
    assert set(zip(kept_micro["world"], kept_micro["actor"], strict=True)) <= good
    dropped = micro.join(kept_micro.select("world", "actor").unique(), on=["world", "actor"], how="anti")
    assert all((w, a) not in good for w, a in zip(dropped["world"], dropped["actor"], strict=True))
    assert len(kept_micro) + len(dropped) == len(micro)
    with pytest.raises(ConfigError, match="no agent-world"):
        select_experts(macro, micro, float(scores["score"].max()) + 1.0)
    data = Path(pretrained["out"]).parent / "data"
    report = pretrain(
        PretrainConfig(
            data=data,
            out=tmp_path / "f",
            layers=("l2",),
            train=replace(TRAIN, epochs=1),
            min_expert_score=threshold,
        )
    )
    assert report["experts"]["kept"] == len(good)
    assert report["metrics"]["l2"]["rows"] < pretrained["report"]["metrics"]["l2"]["rows"]
