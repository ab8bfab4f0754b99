"""``hrl audit LOGDIR``: count the actions of every agent in tournament logs that break L1's rules.

For every agent, day and call (:mod:`hrl.safety.from_logs`), the logged decisions of the call are
checked with the Rust rules (:func:`hrl.safety.audit_offers`) on the state rebuilt from the logs:
first the offers still standing from earlier calls are reserved, then the call's acceptances, then
its proposals, each reserved (as it was) after it is checked, so a call's actions are judged
together, as the L1 mask judges them (the same order as ``LitaAgentL1`` and
:mod:`hrl.safety.shadow`: each kind by delivery day, then partner,
:func:`hrl.safety.mask.judging_key`). Ends are decisions but offer nothing to check.

An action is *unsafe* (a hard violation) when it breaks at least one rule: over-buy, over-sell,
over-spend, price out of the safe range, quantity out of the issue range, delivery day outside the
window (the kinds of :data:`hrl.safety.VIOLATION_KINDS`; one action may break several). A sale
that only expected supply backs (a first-level agent's future exogenous input) is *exposure*:
counted apart (``exposure``, ``rate_exposure``), never a violation.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from hrl.data.logs import LogTables, load_logs
from hrl.safety import VIOLATION_KINDS, audit_offers
from hrl.safety.from_logs import ACCEPT, PROPOSE, LogSafety
from hrl.safety.mask import judging_key

__all__ = ["AuditReport", "audit_logs", "audit_table"]

COUNTS = (
    "n_decisions",
    "n_proposals",
    "n_accepts",
    "n_ends",
    "n_checked",
    "n_unsafe",
    *VIOLATION_KINDS,
    "exposure",
)


@dataclass
class AuditReport:
    """Counts per agent and per agent type (see :func:`audit_logs`).

    Attributes:
        by_agent: ``{(world, agent): counts}`` with ``type`` and every key of :data:`COUNTS`
            plus ``unsafe_proposals`` and ``unsafe_accepts``.
        n_worlds: worlds audited.
        duration_s: seconds spent (parsing included).
    """

    by_agent: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    n_worlds: int = 0
    duration_s: float = 0.0

    def by_type(self) -> dict[str, dict[str, Any]]:
        """Counts summed per agent type, with ``n_agents``, ``rate`` (unsafe / checked) and
        ``rate_<kind>`` per violation kind."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for counts in self.by_agent.values():
            total = out[counts["type"]]
            total["n_agents"] += 1
            for k, v in counts.items():
                if k != "type":
                    total[k] += v
        result: dict[str, dict[str, Any]] = {}
        for name in sorted(out):
            t: dict[str, Any] = dict(out[name])
            checked = max(1, t.get("n_checked", 0))
            t["rate"] = t.get("n_unsafe", 0) / checked
            for kind in (*VIOLATION_KINDS, "exposure"):
                t[f"rate_{kind}"] = t.get(kind, 0) / checked
            result[name] = t
        return result

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``audit.json``."""
        return {
            "n_worlds": self.n_worlds,
            "duration_s": round(self.duration_s, 3),
            "by_type": self.by_type(),
            "by_agent": [{"world": w, "agent": a, **c} for (w, a), c in sorted(self.by_agent.items())],
        }


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def audit_logs(logs: LogTables | str | os.PathLike[str], *, skip_bad_rows: bool = False) -> AuditReport:
    """Audit every agent of the worlds in ``logs`` (a world folder, a collection folder or parsed
    tables) against the L1 rules (module docs)."""
    start = time.perf_counter()
    tables = logs if isinstance(logs, LogTables) else load_logs(logs, skip_bad_rows=skip_bad_rows)
    safety = LogSafety(tables)
    report = AuditReport(n_worlds=tables.worlds.height)
    for world, agent in safety.agents():  # every agent, even one that never negotiated
        report.by_agent[(world, agent)] = {
            "type": safety.agent_type(world, agent),
            **dict.fromkeys(COUNTS, 0),
        }
        report.by_agent[(world, agent)] |= {"unsafe_proposals": 0, "unsafe_accepts": 0}
    for world, agent, day in safety.days():
        counts = report.by_agent[(world, agent)]
        for call in safety.calls(world, agent, day):
            decisions = call.decisions
            counts["n_decisions"] += len(decisions)
            accepts = sorted(
                (d for d in decisions if d.kind == ACCEPT and d.offer is not None),
                key=lambda d: judging_key(d.partner, d.offer),
            )
            proposals = sorted(
                (d for d in decisions if d.kind == PROPOSE and d.offer is not None),
                key=lambda d: judging_key(d.partner, d.offer),
            )
            counts["n_accepts"] += len(accepts)
            counts["n_proposals"] += len(proposals)
            counts["n_ends"] += len(decisions) - len(accepts) - len(proposals)
            if not accepts and not proposals:
                continue
            rows = [list(r) for r in call.open_offers]
            base = audit_offers(call.state, rows, sequential=True)
            rows += [[*d.offer, d.side] for d in accepts if d.offer is not None]
            with_accepts = audit_offers(call.state, rows, sequential=True)
            rows += [[*d.offer, d.side] for d in proposals if d.offer is not None]
            everything = audit_offers(call.state, rows, sequential=True)
            judged = _diff(everything, base)
            counts["n_checked"] += judged["n_offers"]
            counts["n_unsafe"] += judged["n_unsafe"]
            for kind in (*VIOLATION_KINDS, "exposure"):
                counts[kind] += judged[kind]
            counts["unsafe_accepts"] += with_accepts["n_unsafe"] - base["n_unsafe"]
            counts["unsafe_proposals"] += everything["n_unsafe"] - with_accepts["n_unsafe"]
    report.duration_s = time.perf_counter() - start
    return report


def audit_table(report: AuditReport) -> Table:
    """A rich table: one row per agent type (decisions, checked actions, unsafe count and rate,
    and the rate of each violation kind)."""
    table = Table(
        title=f"L1 safety audit: {report.n_worlds} worlds (unsafe = a hard violation; exposure counted apart)"
    )
    short = {
        "over_buy": "over-buy",
        "over_sell": "over-sell",
        "over_spend": "over-spend",
        "price_out_of_range": "price",
        "quantity_out_of_range": "quantity",
        "day_out_of_window": "day",
        "exposure": "exposure",
    }
    for column in ("agent type", "agents", "decisions", "checked", "unsafe", "rate", *short.values()):
        table.add_column(column, justify="left" if column == "agent type" else "right")
    for name, t in report.by_type().items():
        table.add_row(
            name,
            str(t["n_agents"]),
            str(t["n_decisions"]),
            str(t["n_checked"]),
            str(t["n_unsafe"]),
            f"{100 * t['rate']:.1f}%",
            *(f"{100 * t[f'rate_{k}']:.1f}%" for k in short),
        )
    return table


def default_out(logs: str | os.PathLike[str]) -> Path:
    """Where ``hrl audit`` writes its JSON by default: ``<logs>/audit.json``."""
    return Path(logs) / "audit.json"
