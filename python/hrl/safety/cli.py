"""The ``hrl audit`` subcommand (registered by :mod:`hrl.cli`); the logic is :mod:`hrl.safety.audit`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

__all__ = ["add_audit_command"]


def add_audit_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrl audit``."""
    p = commands.add_parser(
        "audit",
        help="count the offers and acceptances of every agent in tournament logs that break L1's rules",
        description="Rebuild every agent's L1 safety state from the logs and check each of its "
        "offers and acceptances with the Rust rules (over-buy, over-sell, over-spend, price, ...).",
    )
    p.add_argument("logdir", type=Path, help="a world folder or a collection folder (hrl collect output)")
    p.add_argument("--out", type=Path, default=None, help="JSON report (default: LOGDIR/audit.json)")
    p.add_argument(
        "--skip-bad-rows", action="store_true", help="skip malformed log rows (counted) instead of failing"
    )
    p.set_defaults(command=_audit)


def _audit(args: argparse.Namespace) -> int:
    from hrl.io import atomic_write_json
    from hrl.safety.audit import audit_logs, audit_table, default_out

    report = audit_logs(args.logdir, skip_bad_rows=args.skip_bad_rows)
    out = args.out or default_out(args.logdir)
    atomic_write_json(out, report.to_json())
    console = Console()
    console.print(audit_table(report))
    console.print(f"{report.n_worlds} worlds audited in {report.duration_s:.2f} s; report written to {out}")
    return 0
