"""The Rust log parser on real logs from tiny real worlds (both formats): literal cells against
``ast.literal_eval``, the negotiator-id trap, malformed and truncated input."""

from __future__ import annotations

import ast
import contextlib
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrl import _core
from hrl.data.logs import load_negotiation_csv
from hrl.errors import LogParseError


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN and keeps int/float/bool apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
hashables = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.frozensets(hashables, max_size=3).map(set)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_literals_match_python(value: Any) -> None:
    text = repr(value)
    parsed = _core.parse_literal(text)
    if "nan" in text or "inf" in text:
        assert same(parsed, value)  # ast.literal_eval cannot read nan/inf; repr round-trips here
    else:
        assert same(parsed, ast.literal_eval(text))


def test_literal_errors_are_log_parse_errors() -> None:
    for bad in ["(1, 2", "[1 2]", "{'a' 1}", "'abc", "foo(1)", ""]:
        with pytest.raises(LogParseError):
            _core.parse_literal(bad)


@pytest.mark.parametrize("fixture", ["parquet_collection", "csv_collection"])
def test_every_real_literal_cell_matches_literal_eval(fixture: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(fixture)
    world = folder / "w00000"
    frame = pl.read_parquet(world / "negotiations.parquet") if fixture.startswith("parquet") else None
    if frame is None:
        frame = pl.read_csv(world / "negotiations.csv", infer_schema_length=0)
    cells = 0
    for column in ("history", "offers", "partners", "issues", "new_offers", "left_negotiators"):
        for cell in frame[column].drop_nulls():
            expected = set() if cell == "set()" else ast.literal_eval(cell)
            assert same(_core.parse_literal(cell), expected), cell[:200]
            cells += 1
    assert cells > 100


@pytest.mark.parametrize(("fixture", "ext"), [("parquet_collection", "parquet"), ("csv_collection", "csv")])
def test_proposer_is_the_owner_not_the_negotiator_id(
    fixture: str, ext: str, request: pytest.FixtureRequest
) -> None:
    """negmas names a negotiator after its partner; the proposer must be the offer's owner.

    Checked against two independent owner sources in the same real logs: the ``offers`` dict of
    ``negotiations`` (keyed by owner) and ``actions.sender_agent_id`` joined to ``agents``.
    """
    folder: Path = request.getfixturevalue(fixture)
    tables = load_negotiation_csv(folder)
    read = pl.read_parquet if ext == "parquet" else pl.read_csv
    checked = 0
    for world in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        ours = tables.offers.filter(pl.col("world") == world).sort("negotiation_id", "seq")
        negotiations = read(folder / world / f"negotiations.{ext}")
        by_owner: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
        for row in ours.iter_rows(named=True):
            offer = (row["quantity"], row["delivery_day"], float(row["unit_price"]))
            by_owner.setdefault((row["negotiation_id"], row["proposer"]), []).append(offer)
            assert row["proposer"] != row["receiver"]
        for row in negotiations.iter_rows(named=True):
            for owner, made in ast.literal_eval(row["offers"]).items():
                expected = [(q, t, float(p)) for q, t, p in made]
                assert by_owner.get((row["id"], owner), []) == expected
                checked += len(expected)
        agents = read(folder / world / f"agents.{ext}").select("id", "name")
        actions = (
            read(folder / world / f"actions.{ext}")
            .join(
                read(folder / world / f"negs.{ext}").select(pl.col("id").alias("neg_id"), "name"), on="neg_id"
            )
            .join(agents.rename({"id": "sender_agent_id", "name": "owner"}), on="sender_agent_id")
            .join(agents.rename({"id": "receiver_agent_id", "name": "to"}), on="receiver_agent_id")
        )
        # actions repeats the final offers with a terminal state: compare distinct offers.
        logged = set(
            actions.select(
                "name", "owner", "to", "quantity", "delivery_step", pl.col("unit_price").cast(pl.Float64)
            ).iter_rows()
        )
        parsed = set(
            ours.select(
                "negotiation_id", "proposer", "receiver", "quantity", "delivery_day", "unit_price"
            ).iter_rows()
        )
        assert parsed == logged
        # ...and the trap is real: the negotiator id in `actions.sender` names the receiver.
        assert (actions["sender"] == actions["to"]).all()
    assert checked > 100


def test_both_formats_give_the_same_tables(parquet_collection: Path, csv_collection: Path) -> None:
    a, b = load_negotiation_csv(parquet_collection), load_negotiation_csv(csv_collection)
    for name in ("negotiations", "offers", "contracts", "agent_days", "agents", "worlds"):
        assert getattr(a, name).schema == getattr(b, name).schema, name
        assert getattr(a, name).height > 0 and getattr(b, name).height > 0, name
    assert a.offers["response"].is_in(["reject", "accept", "end", "timeout"]).all()
    assert a.report["skipped"] == 0 and a.report["n_bytes"] > 0
    one = load_negotiation_csv(parquet_collection / "w00001")
    assert one.offers.drop("world").equals(a.offers.filter(pl.col("world") == "w00001").drop("world"))
    agreed = a.negotiations.filter("has_agreement")
    negotiated = a.contracts.filter(~pl.col("exogenous"))
    assert set(negotiated["negotiation_id"]) <= set(agreed["negotiation_id"])


def copy_world(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_truncated_csv_is_an_error_with_file_and_line(csv_collection: Path, tmp_path: Path) -> None:
    world = copy_world(csv_collection / "w00000", tmp_path / "w")
    file = world / "negotiations.csv"
    text = file.read_text()
    n_lines = text.count("\n")
    file.write_text(text[: len(text) * 2 // 3])
    with pytest.raises(LogParseError) as caught:
        load_negotiation_csv(world)
    assert caught.value.path == str(file)
    assert 2 <= caught.value.line <= n_lines
    assert f"negotiations.csv:{caught.value.line}:" in str(caught.value)
    tables = load_negotiation_csv(world, skip_bad_rows=True)
    report = tables.report["files"][str(file)]
    assert report["skipped"] == 1 and report["skipped_examples"][0]["line"] == caught.value.line
    assert tables.negotiations.height == report["rows"] - 1 > 0


def test_corrupt_parquet_cell_is_an_error_with_row(parquet_collection: Path, tmp_path: Path) -> None:
    world = copy_world(parquet_collection / "w00000", tmp_path / "w")
    file = world / "negotiations.parquet"
    frame = pl.read_parquet(file)
    history = frame["history"].to_list()
    history[5] = history[5][:-40]
    frame.with_columns(pl.Series("history", history)).write_parquet(file)
    with pytest.raises(LogParseError, match="truncated") as caught:
        load_negotiation_csv(world)
    assert (caught.value.path, caught.value.line) == (str(file), 6)
    tables = load_negotiation_csv(world, skip_bad_rows=True)
    assert tables.report["skipped"] == 1 and tables.negotiations.height == frame.height - 1


def test_missing_and_foreign_inputs_are_log_parse_errors(tmp_path: Path) -> None:
    with pytest.raises(LogParseError, match="no such file"):
        load_negotiation_csv(tmp_path / "absent")
    with pytest.raises(LogParseError, match="no negotiations"):
        load_negotiation_csv(tmp_path)
    (tmp_path / "negotiations.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LogParseError, match="history"):
        load_negotiation_csv(tmp_path)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("()[]{}'\",:\\ -+.0123456789eEinfaNoneTrueFalsset_xu\n")), max_size=60
    )
)
def test_arbitrary_text_never_panics(text: str) -> None:
    """Any input is a value or a LogParseError (a Rust panic would surface as PanicException);
    like ``ast.literal_eval``, an unhashable set item or dict key is a TypeError."""
    with contextlib.suppress(LogParseError, TypeError):
        _core.parse_literal(text)
    partners = np.array([0, len(b"['a', 'b']")], dtype=np.int64)
    data = text.encode()
    try:
        _core.parse_negotiation_cells(
            "x", data, np.array([0, len(data)], dtype=np.int64), b"['a', 'b']", partners
        )
    except LogParseError as error:
        assert error.line == 1
