"""Read negmas/SCML world logs into polars tables; the literal cells are parsed in Rust.

:func:`load_logs` reads one world folder or a folder of worlds (any depth, e.g. a ``hrl collect``
output), in either format negmas writes (:func:`load_negotiation_csv` is the same function under
its first name):

- CSV (``storage_format="csv"``): every ``negotiations.csv`` is read *and* parsed by the Rust
  core (``hrl._core.read_negotiations_csv``: the ``csv`` crate, worlds in parallel with rayon);
- parquet (the default): ``negotiations.parquet`` is read by polars, then its ``history`` and
  ``partners`` columns cross to Rust once per column as Arrow buffers
  (``hrl._core.parse_negotiation_cells``, rows in parallel).

Either way every Python-literal cell (``history``, ``partners``) is parsed by the Rust parser in
``rust/logs/pylit.rs``, never by ``ast.literal_eval``, and impossible values (NaN/inf, negative
quantities, days or prices, integers beyond i64; ``rust/logs/values.rs``) are errors naming the
file, line (or parquet row) and column. The plain tables (contracts, stats, agents)
are read by polars. Proposers are the *owners* of offers: negmas names a negotiator after its
partner, so the Rust side resolves owners from ``new_offerer_agents`` and the partner list and
checks that both agree (see ``rust/logs/history.rs``).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from hrl import _core
from hrl.errors import LogParseError
from hrl.worlds import SYSTEM_AGENTS

__all__ = ["RESPONSES", "LogTables", "find_worlds", "load_logs", "load_negotiation_csv"]

RESPONSES = ("none", "reject", "accept", "end", "timeout")
"""Codes of ``offers.response`` (see ``rust/logs/history.rs``)."""

_NEG_COLUMNS = {
    "id": pl.String,
    "sim_step": pl.Int64,
    "buyer": pl.String,
    "seller": pl.String,
    "product": pl.Int64,
    "is_buy": pl.Boolean,
    "caller": pl.String,
    "requested_at": pl.Int64,
    "ended_at": pl.Int64,
    "final_status": pl.String,
    "broken": pl.Boolean,
    "timedout": pl.Boolean,
}
_COUNT_COLUMNS = ["sim_step", "product", "requested_at", "ended_at"]
"""Plain negotiation columns that hold counts (days, product indices): whole, >= 0, fit i64."""
_AGENT_METRICS = {
    "score": pl.Float64,
    "balance": pl.Float64,
    "bankrupt": pl.Boolean,
    "productivity": pl.Float64,
    "shortfall_quantity": pl.Int64,
    "shortfall_penalty": pl.Float64,
    "storage_cost": pl.Float64,
    "disposal_cost": pl.Float64,
    "inventory_penalized": pl.Int64,
    "inventory_input": pl.Int64,
    "inventory_output": pl.Int64,
}
_PRODUCT_METRICS = (
    "trading_price",
    "exogenous_quantity",
    "exogenous_unit_price",
    "sold_quantity",
    "unit_price",
)


@dataclass(frozen=True)
class LogTables:
    """The tables of one or more worlds (each has a ``world`` column).

    Attributes:
        negotiations: one row per negotiation: ``negotiation_id``, ``day`` (the simulated day),
            ``partner0/1``, ``buyer``, ``seller``, ``product``, ``n_rounds``, ``n_offers``,
            ``broken``, ``timedout``, ``has_agreement``, ``agreement_quantity/day/unit_price``.
        offers: one row per offer in order (``seq``): ``negotiation_id``, ``day``, ``round``,
            ``proposer`` and ``receiver`` (agent ids; the proposer is the offer's owner),
            ``quantity``, ``delivery_day``, ``unit_price`` (null when nothing was proposed),
            ``response`` (the receiver's answer: none/reject/accept/end/timeout).
        contracts: signed contracts incl. exogenous ones (``exogenous`` is true when the seller is
            ``SELLER`` or the buyer ``BUYER``): ``seller``, ``buyer``, ``product``,
            ``quantity``, ``unit_price``, ``delivery_day``, ``signed_at``, ``negotiation_id``, ...
        agent_days: daily agent state *after* each day (negmas' stats): ``balance``,
            ``inventory_input/output``, ``shortfall_*``, ``storage_cost``, ``score``, ... and the
            trading/exogenous prices of the agent's input and output products.
        agents: ``agent``, ``type`` (import path), ``short_type``, ``level``, ``n_lines``,
            ``cost``, ``initial_balance``, ``catalog_price_in/out`` (the trading prices before
            day 0; null when not logged), ``is_first_level``, ``is_last_level``.
        worlds: ``world``, ``n_steps``, ``n_levels``, ``horizon``, ``n_lines``, and how the world
            makes the day's issues (``info.json``): ``catalog_prices`` (per product, the trading
            prices of day 0), ``price_range_fraction``, ``quantity_multiplier``,
            ``wide_price_range``, ``publish_trading_prices``.
        report: ``n_bytes``, ``n_rows``, ``skipped`` and ``skipped_by_kind`` (kind -> rows, see
            :class:`hrl.errors.LogParseError`) in all, and per negotiations file under
            ``files`` (with up to 10 ``skipped_examples``: line, column, kind, reason).
    """

    negotiations: pl.DataFrame
    offers: pl.DataFrame
    contracts: pl.DataFrame
    agent_days: pl.DataFrame
    agents: pl.DataFrame
    worlds: pl.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def find_worlds(path: str | os.PathLike[str]) -> list[Path]:
    """World folders under ``path`` (``path`` itself if it is one), sorted."""
    root = Path(path)
    if not root.exists():
        raise LogParseError(f"{root}: no such file or directory", str(root), 0)
    if _negotiations_file(root) is not None:
        return [root]
    found = {
        f.parent
        for pattern in ("negotiations.csv", "negotiations.parquet")
        for f in root.rglob(pattern)
        if not f.parent.name.endswith(".partial")
    }
    return sorted(found)


def load_logs(path: str | os.PathLike[str], *, skip_bad_rows: bool = False) -> LogTables:
    """Read one world folder or a folder of worlds (CSV or parquet logs) into :class:`LogTables`.

    Args:
        path: a world's log folder, or any folder above world folders.
        skip_bad_rows: leave malformed negotiation rows out (counted by kind in ``report``)
            instead of raising.

    Raises:
        LogParseError: a file is malformed or truncated, or a row holds an impossible value
            (names the file, line or parquet row, column and kind); a world's negotiations file
            is empty although its contracts include negotiated ones; or ``path`` holds no
            world logs.
    """
    root = Path(path)
    worlds = find_worlds(root)
    if not worlds:
        raise LogParseError(f"{root}: no negotiations.csv or negotiations.parquet below it", str(root), 0)
    names = [_world_name(root, w) for w in worlds]
    csv_files = [w / "negotiations.csv" for w in worlds if (w / "negotiations.csv").exists()]
    csv_results: dict[Path, dict[str, Any]] = {}
    if csv_files:
        # Every CSV file at once: Rust reads and parses them in parallel, without the GIL.
        results = _core.read_negotiations_csv(
            [str(f) for f in csv_files],
            list(_NEG_COLUMNS),
            counts=_COUNT_COLUMNS,
            skip_bad_rows=skip_bad_rows,
        )
        csv_results = dict(zip([f.parent for f in csv_files], results, strict=True))

    def one_world(name: str, world: Path) -> _World:
        result = csv_results.get(world)
        file, (plain, parsed, n_rows) = (
            (world / "negotiations.csv", _csv_plain(result))
            if result is not None
            else (
                world / "negotiations.parquet",
                _parquet_negotiations(world / "negotiations.parquet", skip_bad_rows),
            )
        )
        n_bytes = parsed["n_bytes"] if "n_bytes" in parsed else file.stat().st_size
        return _World(file, n_rows, n_bytes, parsed, _tables(name, plain, parsed), _world_tables(name, world))

    # Per world: many small polars calls and (parquet) one Rust parse, all releasing the GIL:
    # worlds overlap in a thread pool (folders of many small worlds).
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        done = list(pool.map(one_world, names, worlds))
    report: dict[str, Any] = {"files": {}, "n_bytes": 0, "n_rows": 0, "skipped": 0, "skipped_by_kind": {}}
    for w in done:
        _add_report(report, w.file, w.parsed, w.n_rows, w.n_bytes)
    for world, w in zip(worlds, done, strict=True):
        _check_not_emptied(world, report, w.others[0])
    # Worlds in folder order; rows in file order (negmas writes negotiations as they end).
    negotiations = pl.concat([w.negotiations[0] for w in done], how="vertical_relaxed")
    offers = pl.concat([w.negotiations[1] for w in done], how="vertical_relaxed")
    others = [w.others for w in done]
    return LogTables(
        negotiations=negotiations,
        offers=offers,
        contracts=pl.concat([o[0] for o in others], how="diagonal_relaxed"),
        agent_days=pl.concat([o[1] for o in others], how="diagonal_relaxed"),
        agents=pl.concat([o[2] for o in others], how="diagonal_relaxed"),
        worlds=pl.concat([o[3] for o in others], how="diagonal_relaxed"),
        report=report,
    )


@dataclass(frozen=True)
class _World:
    """One world's parsed negotiations (file, rows, bytes, Rust result, tables) and plain tables."""

    file: Path
    n_rows: int
    n_bytes: int
    parsed: dict[str, Any]
    negotiations: tuple[pl.DataFrame, pl.DataFrame]
    others: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]


def _csv_plain(result: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any], int]:
    """The plain columns of a parsed ``negotiations.csv`` (text from Rust, typed here)."""
    plain = pl.DataFrame({k: _strings(v) for k, v in result["columns"].items()})
    plain = plain.with_columns(_from_text(k, t) for k, t in _NEG_COLUMNS.items())
    return plain, result, result["n_rows"]


def _parquet_negotiations(file: Path, skip_bad_rows: bool) -> tuple[pl.DataFrame, dict[str, Any], int]:
    """``negotiations.parquet`` read by polars, its literal and count cells checked and parsed in
    Rust (one crossing per column); the plain columns of the kept rows, the result, the rows."""
    try:
        frame = pl.read_parquet(file)
    except Exception as error:
        raise LogParseError(f"{file}: cannot read parquet: {error}", str(file), 0) from error
    missing = {"history", "partners"} - set(frame.columns)
    if missing:
        raise LogParseError(f"{file}: missing columns {sorted(missing)}", str(file), 0)
    history, history_offsets = _arrow_buffers(frame["history"])
    partners, partners_offsets = _arrow_buffers(frame["partners"])
    counts = [(c, *_arrow_buffers(frame[c])) for c in _COUNT_COLUMNS if c in frame.columns]
    result = _core.parse_negotiation_cells(
        str(file),
        history,
        history_offsets,
        partners,
        partners_offsets,
        counts=counts,
        skip_bad_rows=skip_bad_rows,
    )
    plain = frame.select(
        pl.col(k).cast(t, strict=False) if k in frame.columns else pl.lit(None, t).alias(k)
        for k, t in _NEG_COLUMNS.items()
    )[result["row"].astype(np.int64)]
    return plain, result, frame.height


load_negotiation_csv = load_logs
"""The first name of :func:`load_logs` (kept as an alias: it reads parquet and folders too)."""


# -- negotiations and offers ---------------------------------------------------------------


def _tables(world: str, plain: pl.DataFrame, parsed: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = plain.height
    # The last history entry can predate the end (a timeout is only in the row's own columns).
    final_broken = plain["broken"].fill_null(False).to_numpy() | parsed["broken"]
    final_timedout = plain["timedout"].fill_null(False).to_numpy() | parsed["timedout"]
    parsed = parsed | {"broken": final_broken, "timedout": final_timedout}
    neg = (
        plain.drop("broken", "timedout")
        .rename({"id": "negotiation_id", "sim_step": "day"})
        .with_columns(
            pl.lit(world).alias("world"),
            _strings(parsed["partner0"]).alias("partner0"),
            _strings(parsed["partner1"]).alias("partner1"),
            *(
                pl.Series(k, parsed[k])
                for k in (
                    "n_rounds",
                    "n_offers",
                    "broken",
                    "timedout",
                    "has_agreement",
                    "agreement_quantity",
                    "agreement_day",
                    "agreement_unit_price",
                )
            ),
        )
    )
    neg = neg.with_columns(
        *(
            pl.when(pl.col("has_agreement")).then(pl.col(c)).otherwise(None).alias(c)
            for c in ("agreement_quantity", "agreement_day", "agreement_unit_price")
        )
    )
    neg = neg.select(
        "world",
        "negotiation_id",
        "day",
        *[c for c in neg.columns if c not in ("world", "negotiation_id", "day")],
    )
    index = parsed["offer_negotiation"].astype(np.int64)
    has = parsed["offer_has_offer"]
    # Each negotiation seen from each seat: row i is negotiation i with partner0 proposing, row
    # n + i with partner1 proposing. One row gather gives every offer its strings (the columns
    # are gathered in parallel), not a string-valued when/then per offer.
    seats = pl.concat(
        [
            neg.select(
                "negotiation_id",
                "day",
                pl.col(a).alias("proposer"),
                pl.col(b).alias("receiver"),
                (pl.col(a) == pl.col("seller")).alias("proposer_is_seller"),
            )
            for a, b in (("partner0", "partner1"), ("partner1", "partner0"))
        ]
    )
    seat = seats[index + np.where(parsed["offer_proposer"] == 0, 0, n)]
    responses = parsed["offer_response"].copy()
    if len(index):
        # The last offer of a negotiation left unanswered is answered by how it ended.
        last = np.ones(len(index), dtype=bool)
        last[:-1] = index[1:] != index[:-1]
        terminal = np.where(
            final_timedout[index],
            RESPONSES.index("timeout"),
            np.where(final_broken[index], RESPONSES.index("end"), RESPONSES.index("none")),
        )
        open_last = last & (responses == RESPONSES.index("none"))
        responses[open_last] = terminal[open_last]
    missing = pl.Series(~has)
    offers = pl.DataFrame(
        {
            "world": pl.repeat(world, len(index), dtype=pl.String, eager=True),
            "negotiation_id": seat["negotiation_id"],
            "day": seat["day"],
            "seq": parsed["offer_seq"].astype(np.int32),
            "round": parsed["offer_round"],
            "proposer": seat["proposer"],
            "receiver": seat["receiver"],
            "quantity": pl.Series(parsed["offer_quantity"], dtype=pl.Int64).set(missing, None),
            "delivery_day": pl.Series(parsed["offer_day"], dtype=pl.Int64).set(missing, None),
            "unit_price": pl.Series(parsed["offer_unit_price"], dtype=pl.Float64).set(missing, None),
            "response": pl.Series(responses).replace_strict(
                dict(enumerate(RESPONSES)), return_dtype=pl.Enum(RESPONSES)
            ),
            "proposer_is_seller": seat["proposer_is_seller"],
        },
    )
    return neg, offers


def _from_text(name: str, dtype: Any) -> pl.Expr:
    """A CSV text column as ``dtype`` ("" is null; booleans are Python's True/False)."""
    column = pl.when(pl.col(name) == "").then(None).otherwise(pl.col(name))
    if dtype == pl.Boolean:
        return (column == "True").alias(name)
    return column.cast(dtype, strict=False).alias(name)


def _strings(column: tuple[np.ndarray, np.ndarray]) -> pl.Series:
    """A string column handed over by Rust: ``(data, offsets)``, UTF-8 bytes (uint8, ``(bytes,)``)
    and Arrow large-string offsets (int64, ``(n + 1,)``); the buffers are shared, not copied."""
    data, offsets = column
    array = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(np.ascontiguousarray(offsets, dtype=np.int64)), pa.py_buffer(data)
    )
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.cast(pl.String)


def _arrow_buffers(series: pl.Series) -> tuple[bytes, np.ndarray]:
    """A string column as (UTF-8 data, int64 offsets); nulls become empty cells."""
    array = series.cast(pl.String).fill_null("").to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = data_buffer.to_pybytes() if data_buffer is not None else b""
    return data, np.ascontiguousarray(offsets)


def _check_not_emptied(world: Path, report: dict[str, Any], contracts: pl.DataFrame) -> None:
    """A negotiations file without rows is an error when the world signed negotiated contracts
    (a world that truly had none parses as empty)."""
    file = _negotiations_file(world)
    if file is None or report["files"][str(file)]["rows"] or not contracts.height:
        return
    negotiated = contracts.filter(~pl.col("exogenous")).height
    if negotiated:
        what = "empty" if file.stat().st_size == 0 else "without rows"
        raise LogParseError(
            f"{file}: {what}, but the world's contracts include {negotiated} negotiated contracts",
            str(file),
            0,
        )


def _add_report(
    report: dict[str, Any], file: Path, parsed: dict[str, Any], n_rows: int, n_bytes: int
) -> None:
    report["files"][str(file)] = {
        "rows": n_rows,
        "bytes": n_bytes,
        "skipped": parsed["skipped"],
        "skipped_by_kind": parsed["skipped_by_kind"],
        "skipped_examples": parsed["skipped_examples"],
    }
    report["n_bytes"] += n_bytes
    report["n_rows"] += n_rows
    report["skipped"] += parsed["skipped"]
    for kind, n in parsed["skipped_by_kind"].items():
        report["skipped_by_kind"][kind] = report["skipped_by_kind"].get(kind, 0) + n


# -- the plain tables ----------------------------------------------------------------------


def _world_tables(name: str, world: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    info = _read_json(world / "info.json")
    agents = _agents(name, world, info)
    contracts = _read_table(world, "contracts")
    if contracts.height:
        contracts = contracts.select(
            pl.lit(name).alias("world"),
            pl.col("id").cast(pl.String).alias("contract_id"),
            pl.col("seller_name").cast(pl.String).alias("seller"),
            pl.col("buyer_name").cast(pl.String).alias("buyer"),
            pl.col("product_name").cast(pl.String).str.strip_chars_start("p").cast(pl.Int64).alias("product"),
            pl.col("quantity").cast(pl.Int64),
            pl.col("unit_price").cast(pl.Float64),
            pl.col("delivery_time").cast(pl.Int64).alias("delivery_day"),
            pl.col("signed_at").cast(pl.Int64),
            pl.col("concluded_at").cast(pl.Int64),
            pl.col("nullified_at").cast(pl.Int64),
            pl.col("executed_at").cast(pl.Int64, strict=False),
            pl.col("negotiation_id").cast(pl.String),
        ).with_columns(
            (pl.col("seller").is_in(list(SYSTEM_AGENTS)) | pl.col("buyer").is_in(list(SYSTEM_AGENTS))).alias(
                "exogenous"
            )
        )
    stats = _read_table(world, "stats")
    agent_days = _agent_days(name, stats, agents)
    worlds = pl.DataFrame(
        {
            "world": [name],
            "n_steps": [int(info.get("n_steps", stats.height))],
            "n_levels": [
                int(info.get("n_processes", len(set(agents["level"].to_list())) if agents.height else 0))
            ],
            "horizon": [int(info.get("horizon", 10))],
            "n_lines": [int(info.get("n_lines", 10))],
            # How the world makes each day's issues (scml `_make_issues`); used by
            # hrl.safety.from_logs to rebuild the negotiations' ranges.
            "catalog_prices": [[float(x) for x in info.get("catalog_prices", [])]],
            "price_range_fraction": [float(info.get("price_range_fraction", 0.1))],
            "quantity_multiplier": [float(info.get("quantity_multiplier", 3))],
            "wide_price_range": [bool(info.get("wide_price_range", False))],
            "publish_trading_prices": [bool(info.get("publish_trading_prices", True))],
        },
        schema_overrides={"catalog_prices": pl.List(pl.Float64)},
    )
    return contracts, agent_days, agents, worlds


def _agents(name: str, world: Path, info: dict[str, Any]) -> pl.DataFrame:
    described = _read_json(world / "agents.json")
    profiles = info.get("agent_profiles", {})
    balances = info.get("agent_initial_balances", {})
    n_levels = int(info.get("n_processes", 0))
    catalog = [float(x) for x in info.get("catalog_prices", [])]
    rows = []
    for agent_id, d in described.items():
        if agent_id in SYSTEM_AGENTS:
            continue
        profile = profiles.get(agent_id, {})
        level = int(profile.get("input_product", agent_id.rpartition("@")[2] or 0))
        rows.append(
            {
                "world": name,
                "agent": agent_id,
                "type": str(d.get("type", "")).rpartition(":")[2],
                "short_type": str(d.get("short_type", "")),
                "level": level,
                "n_lines": int(profile.get("n_lines", info.get("n_lines", 10))),
                "cost": float(profile.get("cost", 0.0)),
                "initial_balance": float(balances.get(agent_id, float("nan"))),
                # trading prices before day 0 (what the AWI reports then); None if not logged
                "catalog_price_in": catalog[level] if level < len(catalog) else None,
                "catalog_price_out": catalog[level + 1] if level + 1 < len(catalog) else None,
                "is_first_level": level == 0,
                "is_last_level": level == n_levels - 1,
            }
        )
    return pl.DataFrame(rows)


def _agent_days(name: str, stats: pl.DataFrame, agents: pl.DataFrame) -> pl.DataFrame:
    present = set(stats.columns)
    days = stats.lazy().with_row_index("day").with_columns(pl.col("day").cast(pl.Int64))
    frames = []
    for aid, level in agents.select("agent", "level").iter_rows():
        columns: list[pl.Expr] = [pl.lit(name).alias("world"), pl.lit(aid).alias("agent"), pl.col("day")]
        for metric, dtype in _AGENT_METRICS.items():
            col = f"{metric}_{aid}"
            expr = pl.col(col).cast(dtype, strict=False) if col in present else pl.lit(None, dtype)
            columns.append(expr.alias(metric))
        for metric in _PRODUCT_METRICS:
            for side, product in (("in", level), ("out", level + 1)):
                col = f"{metric}_{product}"
                expr = (
                    pl.col(col).cast(pl.Float64, strict=False) if col in present else pl.lit(None, pl.Float64)
                )
                columns.append(expr.alias(f"{metric}_{side}"))
        frames.append(days.select(columns))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames).collect()


def _read_table(world: Path, table: str) -> pl.DataFrame:
    parquet, csv = world / f"{table}.parquet", world / f"{table}.csv"
    try:
        if parquet.exists():
            return pl.read_parquet(parquet)
        if csv.exists():
            if csv.stat().st_size == 0:
                return pl.DataFrame()
            return pl.read_csv(csv, infer_schema_length=10000)
    except Exception as error:
        file = parquet if parquet.exists() else csv
        raise LogParseError(f"{file}: cannot read: {error}", str(file), 0) from error
    raise LogParseError(f"{world}: no {table}.parquet or {table}.csv", str(world), 0)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as error:
        raise LogParseError(f"{path}: not JSON: {error}", str(path), 0) from error
    return data if isinstance(data, dict) else {}


def _negotiations_file(world: Path) -> Path | None:
    for name in ("negotiations.csv", "negotiations.parquet"):
        if (world / name).is_file():
            return world / name
    return None


def _world_name(root: Path, world: Path) -> str:
    return world.name if world == root else world.relative_to(root).as_posix()
