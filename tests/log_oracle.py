"""An independent, slow reading of negmas negotiation logs with ``ast.literal_eval``: the oracle
the Rust parser (``hrl.data.load_logs``) is checked against, row for row."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import polars as pl

from hrl.data.logs import LogTables

__all__ = ["oracle_tables"]


def _responses(events: list[dict[str, Any]], agreement: Any, broken: bool, timedout: bool) -> list[str]:
    """A receiver's later offer rejects; the last offer is accepted, ended or timed out."""
    out = []
    for i, event in enumerate(events):
        later_by_receiver = any(e["proposer"] != event["proposer"] for e in events[i + 1 :])
        if later_by_receiver:
            out.append("reject")
        elif i + 1 < len(events):
            out.append("none")
        elif (
            agreement is not None and event["offer"] is not None and tuple(agreement) == tuple(event["offer"])
        ):
            out.append("accept")
        else:
            out.append("timeout" if timedout else "end" if broken else "none")
    return out


def _negotiation(row: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    partners = ast.literal_eval(row["partners"])
    entries = ast.literal_eval(row["history"])
    events: list[dict[str, Any]] = []
    agreement, broken, timedout = None, False, False
    for entry in entries:
        new = entry.get("new_offers", [])
        offerers = entry.get("new_offerer_agents") or []
        for k, (negotiator, offer) in enumerate(new):
            owner = offerers[k] if len(offerers) == len(new) and offerers[k] is not None else None
            proposer = 1 - partners.index(negotiator) if negotiator in partners else partners.index(owner)
            events.append({"round": entry["step"], "proposer": proposer, "offer": offer})
        agreement = entry.get("agreement")
        broken = bool(entry.get("broken"))
        timedout = bool(entry.get("timedout"))
    # The row's own flags have the end (the last history entry can predate a timeout).
    broken = broken or row["broken"] in (True, "True")
    timedout = timedout or row["timedout"] in (True, "True")
    responses = _responses(events, agreement, broken, timedout)
    a = agreement or (None, None, None)
    negotiation = {
        "negotiation_id": row["id"],
        "partner0": partners[0],
        "partner1": partners[1],
        "n_rounds": len(entries),
        "n_offers": len(events),
        "broken": broken,
        "timedout": timedout,
        "has_agreement": agreement is not None,
        "agreement_quantity": a[0],
        "agreement_day": a[1],
        "agreement_unit_price": None if a[2] is None else float(a[2]),
    }
    offers = [
        {
            "negotiation_id": row["id"],
            "seq": seq,
            "round": e["round"],
            "proposer": partners[e["proposer"]],
            "receiver": partners[1 - e["proposer"]],
            "quantity": None if e["offer"] is None else e["offer"][0],
            "delivery_day": None if e["offer"] is None else e["offer"][1],
            "unit_price": None if e["offer"] is None else float(e["offer"][2]),
            "response": response,
            "proposer_is_seller": partners[e["proposer"]] == row["seller"],
        }
        for seq, (e, response) in enumerate(zip(events, responses, strict=True))
    ]
    return negotiation, offers


def oracle_tables(root: Path, tables: LogTables) -> LogTables:
    """``tables`` (from ``load_logs(root)``) with its parsed negotiation columns and its offers
    replaced by this module's reading of the same files."""
    negotiations, offers = [], []
    for world in tables.worlds["world"]:
        folder = root / world if (root / world).is_dir() else root
        csv = folder / "negotiations.csv"
        frame = (
            pl.read_csv(csv, infer_schema_length=0)
            if csv.exists()
            else pl.read_parquet(folder / "negotiations.parquet")
        )
        for row in frame.iter_rows(named=True):
            negotiation, made = _negotiation(row)
            negotiations.append({"world": world, **negotiation})
            offers.extend({"world": world, **o} for o in made)
    parsed = pl.DataFrame(negotiations, infer_schema_length=None)
    kept = tables.negotiations.drop([c for c in parsed.columns if c not in ("world", "negotiation_id")])
    neg = kept.join(parsed, on=["world", "negotiation_id"], how="left", maintain_order="left")
    neg = neg.select(tables.negotiations.columns).cast(dict(tables.negotiations.schema))  # type: ignore[arg-type]
    days = neg.select("world", "negotiation_id", "day")
    off = pl.DataFrame(offers, infer_schema_length=None).join(
        days, on=["world", "negotiation_id"], how="left", maintain_order="left"
    )
    off = off.select(tables.offers.columns).cast(dict(tables.offers.schema))  # type: ignore[arg-type]
    return LogTables(
        negotiations=neg,
        offers=off,
        contracts=tables.contracts,
        agent_days=tables.agent_days,
        agents=tables.agents,
        worlds=tables.worlds,
        report=tables.report,
    )
