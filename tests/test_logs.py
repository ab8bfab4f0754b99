"""The Rust log parser on real logs from tiny real worlds (both formats): literal cells against
``ast.literal_eval``, the negotiator-id trap, malformed and truncated input, impossible values
(NaN/inf, negatives, integers beyond i64) named by file, line and column."""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrl import _core
from hrl.data.logs import load_logs, load_negotiation_csv
from hrl.errors import LogParseError
from hrl.worlds import SYSTEM_AGENTS


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
    | st.integers()
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
    tables = load_logs(folder)
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
    a, b = load_logs(parquet_collection), load_logs(csv_collection)
    for name in ("negotiations", "offers", "contracts", "agent_days", "agents", "worlds"):
        assert getattr(a, name).schema == getattr(b, name).schema, name
        assert getattr(a, name).height > 0 and getattr(b, name).height > 0, name
    assert a.offers["response"].is_in(["reject", "accept", "end", "timeout"]).all()
    assert a.report["skipped"] == 0 and a.report["n_bytes"] > 0
    one = load_logs(parquet_collection / "w00001")
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
        load_logs(world)
    assert caught.value.path == str(file)
    assert 2 <= caught.value.line <= n_lines
    assert f"negotiations.csv:{caught.value.line}:" in str(caught.value)
    tables = load_logs(world, skip_bad_rows=True)
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
        load_logs(world)
    assert (caught.value.path, caught.value.line, caught.value.column) == (str(file), 6, "history")
    assert "row 6 (1-based)" in str(caught.value)
    tables = load_logs(world, skip_bad_rows=True)
    assert tables.report["skipped"] == 1 and tables.negotiations.height == frame.height - 1


def test_missing_and_foreign_inputs_are_log_parse_errors(tmp_path: Path) -> None:
    with pytest.raises(LogParseError, match="no such file"):
        load_logs(tmp_path / "absent")
    with pytest.raises(LogParseError, match="no negotiations"):
        load_logs(tmp_path)
    (tmp_path / "negotiations.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LogParseError, match="history"):
        load_logs(tmp_path)


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
    offsets = np.array([0, len(data)], dtype=np.int64)
    for counts in ([], [("sim_step", data, offsets)]):
        try:
            _core.parse_negotiation_cells("x", data, offsets, b"['a', 'b']", partners, counts=counts)
        except LogParseError as error:
            assert error.line == 1
            assert error.column in ("history", "partners", "sim_step")


def test_load_negotiation_csv_is_load_logs() -> None:
    assert load_negotiation_csv is load_logs


# -- impossible values -----------------------------------------------------------------------

csv.field_size_limit(sys.maxsize)
# An offer inside a history entry's new_offers: ('negotiator', (quantity, day, unit_price)).
NEW_OFFER = re.compile(r"\('[^']*', \((\d+), (\d+), ([\d.]+)\)\)")
AGREEMENT = re.compile(r"'agreement': \((\d+), (\d+), ([\d.]+)\)")
COUNT_COLUMNS = ("sim_step", "product", "requested_at", "ended_at")
BAD = {
    "count": {
        "nan": "non_finite",
        "inf": "non_finite",
        "-inf": "non_finite",
        "-1": "negative",
        "-12": "negative",
        "9223372036854775808": "overflow",
        "123456789012345678901234": "overflow",
    },
    "price": {
        "nan": "non_finite",
        "inf": "non_finite",
        "-inf": "non_finite",
        "-0.5": "negative",
        "-3": "negative",
        "99999999999999999999": "overflow",
    },
}


def read_records(file: Path) -> list[list[str]]:
    with file.open(newline="") as handle:
        return list(csv.reader(handle))


def write_records(file: Path, records: list[list[str]]) -> list[int]:
    """Writes ``records`` (header first) as CSV; returns each data record's first line (1-based)."""
    lines, line, out = [], 1, io.StringIO()
    for k, record in enumerate(records):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(record)
        text = buffer.getvalue()
        if k:
            lines.append(line)
        line += text.count("\n")
        out.write(text)
    file.write_text(out.getvalue())
    return lines


def corrupt(record: list[str], header: list[str], target: str, which: int, field: int, value: str) -> str:
    """Puts ``value`` into one cell of ``record`` (in place); returns the column it changed."""
    if target in COUNT_COLUMNS:
        record[header.index(target)] = value
        return target
    i = header.index("history")
    pattern = NEW_OFFER if target == "offer" else AGREEMENT
    match = list(pattern.finditer(record[i]))[which]
    a, b = match.span(field + 1)
    record[i] = record[i][:a] + value + record[i][b:]
    return "history"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_impossible_cell_is_an_error_naming_its_line_and_column(
    csv_collection: Path, data: st.DataObject
) -> None:
    """A real world's negotiations.csv with one cell made impossible: the error names that
    record's line and column, and --skip-bad-rows leaves out exactly that row, counted by kind."""
    world = data.draw(st.sampled_from(sorted(p for p in csv_collection.iterdir() if p.is_dir())))
    records = read_records(world / "negotiations.csv")
    header, rows = records[0], records[1:]
    history = header.index("history")
    target = data.draw(st.sampled_from([*COUNT_COLUMNS, "offer", "agreement"]))
    pattern = AGREEMENT if target == "agreement" else NEW_OFFER
    candidates = [r for r, row in enumerate(rows) if target in COUNT_COLUMNS or pattern.search(row[history])]
    r = data.draw(st.sampled_from(candidates))
    which = (
        data.draw(st.integers(0, len(pattern.findall(rows[r][history])) - 1))
        if target not in COUNT_COLUMNS
        else 0
    )
    field = data.draw(st.integers(0, 2)) if target not in COUNT_COLUMNS else 0
    table = BAD["price" if target not in COUNT_COLUMNS and field == 2 else "count"]
    value = data.draw(st.sampled_from(sorted(table)))
    column = corrupt(rows[r], header, target, which, field, value)
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_world(world, Path(tmp) / "w")
        lines = write_records(copy / "negotiations.csv", records)
        file = str(copy / "negotiations.csv")
        with pytest.raises(LogParseError) as caught:
            load_logs(copy)
        error = caught.value
        assert (error.path, error.line, error.column, error.kind) == (file, lines[r], column, table[value])
        assert f"negotiations.csv:{lines[r]}: column '{column}'" in str(error)
        tables = load_logs(copy, skip_bad_rows=True)
    report = tables.report["files"][file]
    assert report["skipped_by_kind"] == {table[value]: 1} == tables.report["skipped_by_kind"]
    assert [e["line"] for e in report["skipped_examples"]] == [lines[r]]
    assert tables.negotiations.height == len(rows) - 1


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [
        ("sim_step", -1, "negative"),
        ("ended_at", float("nan"), "non_finite"),
        ("requested_at", float("inf"), "non_finite"),
        ("product", 1e30, "overflow"),
        ("history", "(-2, 1, 10)", "negative"),
        ("history", "(2, 1, nan)", "non_finite"),
        ("history", "(2, 9223372036854775808, 10)", "overflow"),
    ],
)
def test_impossible_parquet_values_name_row_and_column(
    parquet_collection: Path, tmp_path: Path, column: str, value: Any, kind: str
) -> None:
    world = copy_world(parquet_collection / "w00000", tmp_path / "w")
    file = world / "negotiations.parquet"
    frame = pl.read_parquet(file)
    row = [i for i, cell in enumerate(frame["history"]) if NEW_OFFER.search(cell)][3]
    if column == "history":
        cell = frame["history"][row]
        match = NEW_OFFER.search(cell)
        assert match is not None
        offer = cell[match.start(1) - 1 : match.end(3) + 1]
        cells = frame["history"].to_list()
        cells[row] = cell.replace(offer, value, 1)
        frame = frame.with_columns(pl.Series("history", cells))
    else:
        dtype = pl.Int64 if isinstance(value, int) else pl.Float64
        values = frame[column].cast(dtype).to_list()
        values[row] = value
        frame = frame.with_columns(pl.Series(column, values, dtype=dtype))
    frame.write_parquet(file)
    with pytest.raises(LogParseError) as caught:
        load_logs(world)
    error = caught.value
    assert (error.path, error.line, error.column, error.kind) == (str(file), row + 1, column, kind)
    assert f"row {row + 1} (1-based): column '{column}'" in str(error)
    tables = load_logs(world, skip_bad_rows=True)
    assert tables.report["skipped_by_kind"] == {kind: 1}
    assert tables.negotiations.height == frame.height - 1


def test_empty_negotiations_are_an_error_only_when_the_world_negotiated(
    csv_collection: Path, tmp_path: Path
) -> None:
    source = csv_collection / "w00000"
    full = load_logs(source)
    assert full.contracts.filter(~pl.col("exogenous")).height > 0
    header = (source / "negotiations.csv").read_text().split("\n", 1)[0] + "\n"
    for name, text in (("empty", ""), ("header", header)):
        world = copy_world(source, tmp_path / name)
        (world / "negotiations.csv").write_text(text)
        with pytest.raises(LogParseError, match="negotiated contracts") as caught:
            load_logs(world)
        assert caught.value.path == str(world / "negotiations.csv")
        # The same world without its negotiated contracts truly had no negotiations: empty.
        contracts = pl.read_csv(world / "contracts.csv", infer_schema_length=10000)
        system = list(SYSTEM_AGENTS)
        exogenous = contracts.filter(pl.col("seller_name").is_in(system) | pl.col("buyer_name").is_in(system))
        assert 0 < exogenous.height < contracts.height
        exogenous.write_csv(world / "contracts.csv")
        quiet = load_logs(world)
        assert quiet.negotiations.height == quiet.offers.height == 0
        assert quiet.agent_days.height == full.agent_days.height
