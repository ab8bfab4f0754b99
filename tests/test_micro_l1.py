"""The L1 columns of the micro samples (schema version 4) on real logs: present, consistent with
L1's own bounds, blind to the future, and usable by the L3 adapter and trainer."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from polars.testing import assert_frame_equal

from hrl import _core
from hrl.config import L3Config, TrainConfig
from hrl.data import build_macro_dataset, build_micro_dataset, load_logs
from hrl.data.datasets import DEFAULT_EXPERTS
from hrl.data.logs import LogTables
from hrl.errors import ConfigError, InvalidArgumentError, ShapeError
from hrl.features import HORIZON_BINS
from hrl.safety.from_logs import LogSafety, call_of_slot
from hrl.safety.replay import replay_call, replay_micro
from hrl.train import train_l3_bc
from hrl.train.adapters import MICRO_COLUMNS, MICRO_L1_COLUMNS, micro_tensors_from_frame

EXPERTS = [*DEFAULT_EXPERTS, "GreedyStdAgent", "SyncRandomStdAgent"]


@pytest.fixture(scope="module")
def tables(parquet_collection):  # type: ignore[no-untyped-def]
    return load_logs(parquet_collection)


@pytest.fixture(scope="module")
def macro(tables: LogTables) -> pl.DataFrame:
    return build_macro_dataset(tables)


@pytest.fixture(scope="module")
def micro(tables: LogTables, macro: pl.DataFrame) -> pl.DataFrame:
    return build_micro_dataset(tables, experts=EXPERTS)


def test_every_decision_has_a_baseline_and_the_l1_columns(micro: pl.DataFrame) -> None:
    assert micro.height > 100
    assert set(MICRO_L1_COLUMNS) <= set(micro.columns) and set(MICRO_COLUMNS) <= set(micro.columns)
    for c in (
        "baseline_kind",
        "baseline_quantity",
        "baseline_delivery_day",
        "baseline_unit_price",
        *MICRO_L1_COLUMNS,
    ):
        assert micro[c].null_count() == 0, c
    proposing = micro.filter(pl.col("action_kind") == "propose")
    assert proposing.height > 50
    kinds = set(micro["baseline_kind"].cast(pl.String).unique())
    assert {"propose", "end"} <= kinds


def test_residual_is_action_minus_baseline(micro: pl.DataFrame) -> None:
    acting = micro.filter(pl.col("action_kind") != "end")
    for c in ("quantity", "delivery_day", "unit_price"):
        expected = acting[f"action_{c}"].cast(pl.Float64) - acting[f"baseline_{c}"]
        np.testing.assert_allclose(acting[f"residual_{c}"].to_numpy(), expected.to_numpy())
    assert (
        micro.filter(pl.col("action_kind") == "end")["residual_quantity"].null_count()
        == micro.filter(pl.col("action_kind") == "end").height
    )


def test_the_baseline_respects_the_l1_bounds_of_its_row(micro: pl.DataFrame) -> None:
    offering = micro.filter(pl.col("baseline_kind") != "end")
    assert offering.height > 20
    for row in offering.iter_rows(named=True):
        q, t, p = row["baseline_quantity"], row["baseline_delivery_day"], row["baseline_unit_price"]
        assert row["l1_q_min"] <= q <= row["l1_q_max"], row
        assert row["l1_p_min"] <= p <= row["l1_p_max"], row
        assert row["l1_day_mask"][int(t) - row["day"]], row
    ends = micro.filter(pl.col("baseline_kind") == "end")
    assert (ends["baseline_quantity"] == 0).all()
    assert (ends["baseline_delivery_day"] == ends["day"]).all()
    # A row whose mask allows no day has no safe quantity at all.
    none = micro.filter(~pl.col("l1_day_mask").arr.any())
    assert (none["l1_q_max"] == 0).all()


def _before_call(tables: LogTables, world: str, agent: str, day: int, call: int) -> LogTables:
    """The logs cut to what ``agent`` could have seen before ``call`` of ``day``: later days'
    rows gone, and in its negotiations of the day every event from the call on removed (its own
    events of calls >= ``call``, the partners' events at slots >= ``call``)."""
    offers = tables.offers.filter((pl.col("world") != world) | (pl.col("day") <= day))
    mine = (
        (pl.col("world") == world)
        & (pl.col("day") == day)
        & ((pl.col("proposer") == agent) | (pl.col("receiver") == agent))
    )
    own_call = (
        pl.when(pl.col("seq") == 0)
        .then(0)
        .when(pl.col("seq") % 2 == 1)
        .then(pl.col("seq"))
        .otherwise(pl.col("seq") + 1)
    )
    own_next_call = pl.when((pl.col("seq") + 1) % 2 == 1).then(pl.col("seq") + 1).otherwise(pl.col("seq") + 2)
    made_before = pl.when(pl.col("proposer") == agent).then(own_call < call).otherwise(pl.col("seq") < call)
    # The answer stored on a row (accept/end by the receiver at seq + 1) is dropped when it came later.
    answered_before = (
        pl.when(pl.col("receiver") == agent).then(own_next_call < call).otherwise(pl.col("seq") + 1 < call)
    )
    offers = offers.filter(~mine | made_before).with_columns(
        pl.when(mine & ~answered_before)
        .then(pl.lit("none").cast(offers.schema["response"]))
        .otherwise(pl.col("response"))
        .alias("response")
    )
    return LogTables(
        negotiations=tables.negotiations.filter((pl.col("world") != world) | (pl.col("day") <= day)),
        offers=offers,
        contracts=tables.contracts.filter((pl.col("world") != world) | (pl.col("signed_at") <= day)),
        agent_days=tables.agent_days.filter((pl.col("world") != world) | (pl.col("day") < day)),
        agents=tables.agents,
        worlds=tables.worlds,
        report=tables.report,
    )


def test_the_l1_columns_use_nothing_from_the_decision_or_later(
    tables: LogTables, micro: pl.DataFrame
) -> None:
    """Replaying a call on logs cut just before it gives the same baseline and bounds."""
    safety = LogSafety(tables)
    calls = (
        micro.select(
            "world", "actor", "day", pl.col("decision_seq").map_elements(call_of_slot, pl.Int64).alias("call")
        )
        .unique()
        .sort("world", "actor", "day", "call")
    )
    sample = calls.gather(np.linspace(0, calls.height - 1, 25).astype(int))
    checked = 0
    for world, agent, day, call in sample.iter_rows():
        suppliers, consumers = safety.partners(world, agent)
        full = replay_call(
            safety,
            safety.call(world, agent, day, call),
            suppliers=suppliers,
            consumers=consumers,
            n_days=HORIZON_BINS,
        )
        cut = LogSafety(_before_call(tables, world, agent, day, call))
        blind = replay_call(
            cut,
            cut.call(world, agent, day, call),
            suppliers=suppliers,
            consumers=consumers,
            n_days=HORIZON_BINS,
        )
        assert cut.call(world, agent, day, call).state == safety.call(world, agent, day, call).state
        # The cut removed the call's own decisions (and everything later): the test has teeth.
        assert (
            safety.call(world, agent, day, call).decisions and not cut.call(world, agent, day, call).decisions
        )
        assert blind == full, (world, agent, day, call)
        checked += 1
    assert checked == 25


def test_the_batched_rust_replay_gives_the_python_replays_rows(
    tables: LogTables, micro: pl.DataFrame
) -> None:
    """The default L1 columns (one batched Rust call, ``hrl._core.replay_micro``) are the Python
    replay's (the oracle: ``reference_replay=True``, ``replay_call`` per call), every column of
    every row, exactly. The baseline's random draws and its sets of partners (ordered by this
    process's string hashes) go through the port too."""
    reference = build_micro_dataset(tables, experts=EXPERTS, reference_replay=True)
    assert micro.height == reference.height > 100
    assert set(reference["baseline_kind"].cast(pl.String)) == {"propose", "accept", "end"}
    assert_frame_equal(micro, reference, check_exact=True)


def test_the_rust_replay_follows_the_future_divisors_as_python_does(
    tables: LogTables, micro: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the future-day divisors at 1 (whole needs offered for later days) the Rust replay
    still gives the Python replay's rows exactly, and its baseline differs from the default's."""
    import hrl.safety.replay as replay

    whole = replay.L1_BASELINE_OPTIONS | {"future_buy_divisor": 1.0, "future_sell_divisor": 1.0}
    monkeypatch.setattr(replay, "L1_BASELINE_OPTIONS", whole)
    rust = build_micro_dataset(tables, experts=EXPERTS)
    reference = build_micro_dataset(tables, experts=EXPERTS, reference_replay=True)
    assert_frame_equal(rust, reference, check_exact=True)
    changed = (rust["baseline_quantity"] != micro["baseline_quantity"]).sum()
    assert changed > 0, "whole future needs changed no baseline quantity: the options did not arrive"


def test_the_rust_replay_keeps_selling_on_own_days_as_python_does(
    tables: LogTables, micro: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``keep_selling`` (consumers left without a response get future sell offers) and
    ``own_sell_days`` (each its own later day, the whole need) the Rust replay gives the Python
    replay's rows exactly, and fewer baseline decisions are ends."""
    import hrl.safety.replay as replay

    default = replay.L1_BASELINE_OPTIONS
    frames = {}
    for keep in (False, True):
        options = default | {"keep_selling": keep, "own_sell_days": keep}
        monkeypatch.setattr(replay, "L1_BASELINE_OPTIONS", options)
        frames[keep] = build_micro_dataset(tables, experts=EXPERTS)
        reference = build_micro_dataset(tables, experts=EXPERTS, reference_replay=True)
        assert_frame_equal(frames[keep], reference, check_exact=True)

    def ends(frame: pl.DataFrame) -> int:
        return int((frame["baseline_kind"].cast(pl.String) == "end").sum())

    assert ends(frames[True]) < ends(frames[False]), "keep_selling did not arrive"
    assert_frame_equal(frames[default.get("keep_selling", False)], micro, check_exact=True)  # the defaults


def test_the_rust_replay_rejects_inconsistent_inputs_with_typed_errors(
    tables: LogTables, micro: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids, offsets and column lengths are checked before anything is indexed: errors, no panics."""
    seen: dict[str, Any] = {}
    real = _core.replay_micro

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(args=args, kwargs=kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(_core, "replay_micro", spy)
    replay_micro(micro, LogSafety(tables), n_days=HORIZON_BINS)
    days, names, hashes, views, offers, rows = seen["args"]
    kwargs = seen["kwargs"]
    far = views[1].copy()
    far[0] = len(names) + 5
    with pytest.raises(InvalidArgumentError, match="partner id"):
        real(days, names, hashes, (views[0], far, *views[2:]), offers, rows, **kwargs)
    with pytest.raises(InvalidArgumentError, match=r"offsets|span"):
        real(days, names, hashes, views, offers, (rows[0][:-1], *rows[1:]), **kwargs)
    with pytest.raises(ShapeError):
        real(days, names, hashes, views, (offers[0][:-1], *offers[1:]), rows, **kwargs)
    with pytest.raises(InvalidArgumentError, match="hashes"):
        real(days, names, hashes[:-1], views, offers, rows, **kwargs)


def test_the_l3_adapter_and_trainer_run_on_the_built_table(micro: pl.DataFrame, macro: pl.DataFrame) -> None:
    torch.set_num_threads(1)
    from hrl.models.l2 import L2Manager
    from hrl.train.adapters import project_expert_actions
    from hrl.train.goals import l2_goal_frame

    cfg = L3Config(hidden=16)
    with pytest.raises(ConfigError, match="no goal"):  # expert rows carry no (leaky) goal
        micro_tensors_from_frame(micro, macro, cfg)
    data = micro_tensors_from_frame(micro, macro, cfg, goals=l2_goal_frame(L2Manager(), macro))
    assert len(data.kind) == micro.height
    assert torch.isfinite(data.baseline).all() and torch.isfinite(data.caps).all()
    # The L1 day mask reached the tensors; every counter label lies inside L1's box
    assert not bool(data.day_mask.all())
    counter = data.kind == 1
    assert data.day_mask[counter].gather(1, data.delivery[counter, None]).all()
    assert ((data.fraction >= 0) & (data.fraction <= 1)).all()
    lines, _, q_lo, p_lo, p_hi = data.box.T
    q, _, p = data.offer.T
    cap = data.caps[torch.arange(len(data)), data.delivery] * lines
    assert (q[counter] >= q_lo[counter]).all() and (q[counter] <= cap[counter] + 1e-3).all()
    assert ((p[counter] >= p_lo[counter]) & (p[counter] <= p_hi[counter])).all()
    # how far L1's projection moved the experts' actions (reported in docs/models.md)
    moved = project_expert_actions(micro, macro)
    print("projection:", moved)
    assert moved["n_counter"] > 50
    for key in ("accept_to_counter", "counter_to_end", "day_moved", "quantity_changed", "price_changed"):
        assert 0.0 <= moved[key] <= 1.0, key
    result = train_l3_bc(data, TrainConfig(epochs=2, batch_size=128, progress=False), cfg)
    assert len(result.history) == 3  # epoch 0 (untrained reference) + 2 epochs
    assert all(np.isfinite(v) for row in result.history for v in row.values())


def test_l3_inputs_do_not_depend_on_the_outcome_of_the_labelled_negotiation(
    tables: LogTables, macro: pl.DataFrame, micro: pl.DataFrame
) -> None:
    """No goal leakage: remove the contract a labelled acceptance signed (another outcome of the
    negotiation). The day's signed-contract goal (the old L3 goal input) changes; L3's inputs for
    that decision and the ones before it (L2's goal from the start-of-day state, history, L1's
    box) do not."""
    import dataclasses

    from hrl.models.l2 import L2Manager
    from hrl.models.l3 import L3_INPUTS
    from hrl.train.goals import l2_goal_frame

    signed = (
        tables.contracts.filter(~pl.col("exogenous"))
        .group_by("world", "negotiation_id")
        .len()
        .filter(pl.col("len") == 1)
        .select("world", "negotiation_id")
    )
    accepts = micro.filter(pl.col("action_kind") == "accept").join(signed, on=["world", "negotiation_id"])
    assert accepts.height > 0
    label = accepts.row(0, named=True)
    world, nid, actor, day = label["world"], label["negotiation_id"], label["actor"], label["day"]
    is_labelled = (pl.col("world") == world) & (pl.col("negotiation_id") == nid)
    contracts = tables.contracts.filter(~(is_labelled & ~pl.col("exogenous")))
    assert contracts.height == tables.contracts.height - 1
    other = dataclasses.replace(tables, contracts=contracts)
    macro2 = build_macro_dataset(other)
    micro2 = build_micro_dataset(other, experts=EXPERTS)
    agent_day = (pl.col("world") == world) & (pl.col("agent") == actor) & (pl.col("day") == day)
    assert macro.filter(agent_day)["goal"].to_list() != macro2.filter(agent_day)["goal"].to_list()
    torch.manual_seed(0)
    l2 = L2Manager()
    before = is_labelled & (pl.col("decision_seq") <= label["decision_seq"])
    inputs = [
        micro_tensors_from_frame(m.filter(before), mac, goals=l2_goal_frame(l2, mac))
        for m, mac in ((micro, macro), (micro2, macro2))
    ]
    assert len(inputs[0]) == len(inputs[1]) >= 1
    for name in L3_INPUTS:
        torch.testing.assert_close(getattr(inputs[0], name), getattr(inputs[1], name), msg=name)
