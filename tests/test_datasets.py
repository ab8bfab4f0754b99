"""Macro and micro samples from real logs: goal reconstruction, state timing, no label leakage."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hrl.cli import main
from hrl.data import build_macro_dataset, build_micro_dataset, load_logs
from hrl.data.datasets import DEFAULT_EXPERTS
from hrl.data.schema import MACRO_SCHEMA, MICRO_SCHEMA, SCHEMA_VERSION, check_version
from hrl.errors import ConfigError
from hrl.features import HORIZON_BINS, MACRO_FEATURES, macro_features
from log_oracle import oracle_tables

csv.field_size_limit(sys.maxsize)


@pytest.fixture(scope="module")
def tables(parquet_collection: Path):  # type: ignore[no-untyped-def]
    return load_logs(parquet_collection)


@pytest.fixture(scope="module")
def macro(tables) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return build_macro_dataset(tables)


@pytest.fixture(scope="module")
def micro(tables, macro: pl.DataFrame) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return build_micro_dataset(tables, experts=[*DEFAULT_EXPERTS, "GreedyStdAgent"])


def test_micro_history_is_strictly_before_the_decision(tables, micro: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    """The leakage test: a sample's history holds exactly the offers made before its decision."""
    offers: dict[tuple[str, str], list[tuple]] = defaultdict(list)  # type: ignore[type-arg]
    for row in tables.offers.sort("seq").iter_rows(named=True):
        offers[(row["world"], row["negotiation_id"])].append(
            (
                row["seq"],
                row["round"],
                row["proposer_is_seller"],
                row["quantity"],
                row["delivery_day"],
                row["unit_price"],
            )
        )
    assert micro.height > 100
    kinds = set()
    for row in micro.iter_rows(named=True):
        kinds.add(row["action_kind"])
        history = [tuple(item.values()) for item in row["history"]]
        everything = offers[(row["world"], row["negotiation_id"])]
        k = row["decision_seq"]
        assert all(item[0] < k for item in history), "history contains the decision or later"
        assert history == everything[:k]
        assert row["history_len"] == len(history) == k
        assert all(item[1] <= row["round"] for item in history)
        if row["action_kind"] == "propose":
            decided = everything[k]  # the decision itself is the next offer, not in the history
            assert (decided[3], decided[4], decided[5]) == (
                row["action_quantity"],
                row["action_delivery_day"],
                row["action_unit_price"],
            )
            assert decided[2] == row["actor_is_seller"]
        else:
            last = everything[k - 1]  # accept/end answers the last offer, made by the partner
            assert last[2] != row["actor_is_seller"]
            if row["action_kind"] == "accept":
                assert (last[3], last[4], last[5]) == (
                    row["action_quantity"],
                    row["action_delivery_day"],
                    row["action_unit_price"],
                )
    assert kinds >= {"propose", "accept"}


def test_micro_rows_belong_to_experts_only(tables, micro: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    types = set(micro["actor_type"].unique())
    assert types <= {*DEFAULT_EXPERTS, "GreedyStdAgent"}
    assert "PenguinAgent" in types
    only_defaults = build_micro_dataset(tables)
    assert set(only_defaults["actor_type"].unique()) <= set(DEFAULT_EXPERTS)
    proposals = tables.offers.join(
        tables.agents.select("world", pl.col("agent").alias("proposer"), "short_type"),
        on=["world", "proposer"],
    ).filter(pl.col("short_type") == "PenguinAgent")
    penguin = micro.filter((pl.col("actor_type") == "PenguinAgent") & (pl.col("action_kind") == "propose"))
    assert penguin.height == proposals.height
    # Schema version 2: the L1 baseline is never null (tests/test_micro_l1.py checks its values).
    assert micro["baseline_quantity"].null_count() == 0
    assert (micro["schema_version"] == SCHEMA_VERSION).all()
    assert micro.schema == pl.Schema(MICRO_SCHEMA)


def test_goal_labels_are_that_days_signed_contracts(tables, macro: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    expected: dict[tuple[str, str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for c in tables.contracts.filter(~pl.col("exogenous")).iter_rows(named=True):
        for agent, (q, v) in ((c["buyer"], (0, 1)), (c["seller"], (2, 3))):
            goal = expected[(c["world"], agent, c["signed_at"])]
            goal[q] += c["quantity"]
            goal[v] += c["quantity"] * c["unit_price"]
    checked = 0
    for row in macro.iter_rows(named=True):
        q_buy, value_buy, q_sell, value_sell = expected[(row["world"], row["agent"], row["day"])]
        want = [q_buy, value_buy / q_buy if q_buy else 0.0, q_sell, value_sell / q_sell if q_sell else 0.0]
        assert row["goal"] == pytest.approx(want, rel=1e-6)
        assert row["goal_mask"] == [row["can_buy"], row["can_buy"], row["can_sell"], row["can_sell"]]
        checked += q_buy > 0 or q_sell > 0
    assert checked > 10
    levels = macro.select("level", "n_levels", "can_buy", "can_sell").unique()
    for level, n_levels, can_buy, can_sell in levels.iter_rows():
        assert can_buy == (level > 0) and can_sell == (level < n_levels - 1)


def test_macro_state_uses_only_what_was_known_at_the_start_of_the_day(tables, macro: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    days = {(r["world"], r["agent"], r["day"]): r for r in tables.agent_days.iter_rows(named=True)}
    committed: dict[tuple[str, str, int], np.ndarray] = defaultdict(lambda: np.zeros((2, HORIZON_BINS)))
    for c in tables.contracts.filter(~pl.col("exogenous")).iter_rows(named=True):
        for side, agent in ((0, c["buyer"]), (1, c["seller"])):
            for day in range(c["signed_at"] + 1, c["delivery_day"] + 1):
                if c["delivery_day"] - day < HORIZON_BINS:
                    committed[(c["world"], agent, day)][side, c["delivery_day"] - day] += c["quantity"]
    for row in macro.iter_rows(named=True):
        before = days.get((row["world"], row["agent"], row["day"] - 1))
        if before is None:
            assert row["day"] == 0 and row["balance"] == row["initial_balance"]
            assert row["inventory_input"] == row["inventory_output"] == 0
        else:
            assert row["balance"] == before["balance"]
            assert row["inventory_input"] == before["inventory_input"]
        want = committed[(row["world"], row["agent"], row["day"])]
        assert row["committed_supplies"] == list(want[0]) and row["committed_sales"] == list(want[1])
    assert macro.schema == pl.Schema(MACRO_SCHEMA)
    assert macro.height == tables.agent_days.height


def test_features_are_the_same_for_one_row_and_for_columns(macro: pl.DataFrame) -> None:
    """The live agent calls macro_features with scalars; the builder with columns."""
    row = macro.row(macro.height // 2, named=True)
    single = macro_features(
        day=row["day"],
        n_steps=row["n_steps"],
        level=row["level"],
        n_levels=row["n_levels"],
        n_lines=row["n_lines"],
        balance=row["balance"],
        initial_balance=row["initial_balance"],
        inventory_input=row["inventory_input"],
        inventory_output=row["inventory_output"],
        trading_price_in=row["trading_price_in"],
        trading_price_out=row["trading_price_out"],
        exogenous_in_quantity=row["exogenous_in_quantity"],
        exogenous_in_price=row["exogenous_in_price"],
        exogenous_out_quantity=row["exogenous_out_quantity"],
        exogenous_out_price=row["exogenous_out_price"],
        committed_supplies=row["committed_supplies"],
        committed_sales=row["committed_sales"],
    )
    assert single.shape == (1, len(MACRO_FEATURES)) and single.dtype == np.float32
    np.testing.assert_array_equal(single[0], np.asarray(row["state_macro"], dtype=np.float32))
    assert np.isfinite(np.stack(macro["state_macro"].to_numpy())).all()


def test_cli_build_writes_versioned_parquet(parquet_collection: Path, tmp_path: Path) -> None:
    assert main(["build", "--logs", str(parquet_collection), "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "build.json").read_text())
    assert report["schema_version"] == SCHEMA_VERSION
    macro = pl.read_parquet(tmp_path / "macro.parquet")
    micro = pl.read_parquet(tmp_path / "micro.parquet")
    assert macro.height == report["macro_rows"] > 0 and micro.height == report["micro_rows"] > 0
    assert (macro["schema_version"] == SCHEMA_VERSION).all() and (
        micro["schema_version"] == SCHEMA_VERSION
    ).all()
    assert 0.0 <= report["label_sparsity"]["all_zero"] <= 1.0
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_build_skip_bad_rows_reports_every_skipped_row_by_kind(
    csv_collection: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three rows of a real world made impossible in three ways: ``hrl build`` without the flag
    fails on the first, with ``--skip-bad-rows`` leaves all three out and counts them by kind."""
    world = tmp_path / "logs" / "w00000"
    shutil.copytree(csv_collection / "w00000", world)
    file = world / "negotiations.csv"
    with file.open(newline="") as handle:
        records = list(csv.reader(handle))
    header, rows = records[0], records[1:]
    for row, (column, value) in zip(
        rows[3:6], [("sim_step", "-1"), ("ended_at", "nan"), ("product", "1e30")], strict=True
    ):
        row[header.index(column)] = value
    with file.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(records)
    assert main(["build", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "out")]) != 0
    assert "sim_step -1 is negative" in " ".join(capsys.readouterr().err.split())
    args = ["build", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "out"), "--skip-bad-rows"]
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "build.json").read_text())
    kinds = {"negative": 1, "non_finite": 1, "overflow": 1}
    assert report["parse"]["skipped"] == 3 and report["parse"]["skipped_by_kind"] == kinds
    assert report["skipped_by_file"] == {str(file): kinds}
    assert [e["column"] for e in report["skipped_examples"]] == ["sim_step", "ended_at", "product"]
    assert report["n_negotiations"] == len(rows) - 3


def test_samples_of_another_schema_version_are_refused(tmp_path: Path) -> None:
    old = pl.DataFrame({"schema_version": [SCHEMA_VERSION - 1] * 3, "x": [1, 2, 3]})
    with pytest.raises(
        ConfigError, match=rf"micro\.parquet.*schema version \[{SCHEMA_VERSION - 1}\].*hrl build"
    ):
        check_version(old, str(tmp_path / "micro.parquet"))
    current = old.with_columns(pl.lit(SCHEMA_VERSION).alias("schema_version"))
    assert check_version(current, "micro.parquet").height == 3


def test_samples_are_the_same_rows_as_from_a_literal_eval_reading(
    parquet_collection: Path,
    tables,  # type: ignore[no-untyped-def]
    macro: pl.DataFrame,
    micro: pl.DataFrame,
) -> None:
    """The Rust parse gives the same negotiations and offers, row for row, as an independent
    ``ast.literal_eval`` reading of the same real logs, and so the same macro and micro samples."""
    oracle = oracle_tables(parquet_collection, tables)
    assert oracle.offers.height > 100
    assert_frame_equal(tables.negotiations, oracle.negotiations)
    assert_frame_equal(tables.offers, oracle.offers)
    assert_frame_equal(build_macro_dataset(oracle), macro)
    assert_frame_equal(build_micro_dataset(oracle, experts=[*DEFAULT_EXPERTS, "GreedyStdAgent"]), micro)
