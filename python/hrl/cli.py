"""The ``hrl`` command line.

Commands:
    hrl collect  run SCML 2025 Standard worlds and keep their logs (see docs/data.md)
    hrl build    turn collected logs into macro/micro training samples (parquet)
    hrl audit    count the actions of every agent in tournament logs that break L1's rules
    hrl run   the main job. Today: one real SCML 2025 Standard world with the default opponents,
              a score table on the terminal and the result as JSON. Later issues grow it into
              collect -> build -> pretrain -> finetune -> evaluate -> report.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hrl.errors import HrlError
from hrl.io import atomic_write_json
from hrl.opponents import DEFAULT_OPPONENTS
from hrl.worlds import WorldResult, WorldSpec, run_world

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hrl`` script; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.command(args))
    except HrlError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}")
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hrl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="the main job (today: one real Standard world, scores printed)")
    run.add_argument("--n-steps", type=int, default=20, help="simulated days (default: 20)")
    run.add_argument("--n-processes", type=int, default=2, help="production levels (default: 2)")
    run.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")
    run.add_argument(
        "--agents",
        default=",".join(DEFAULT_OPPONENTS),
        help="comma-separated import paths of the competitors (default: Penguin, the 2025 finalists, "
        "PonponAgent, KATSUDONAgent and the built-ins)",
    )
    run.add_argument(
        "--output", type=Path, default=Path("runs/run/world.json"), help="where to write the JSON result"
    )
    run.set_defaults(command=_run)
    _add_data_commands(commands)
    return parser


def _add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hrl.data.cli import add_build_command, add_collect_command

    add_collect_command(commands)
    add_build_command(commands)
    from hrl.safety.cli import add_audit_command

    add_audit_command(commands)


def _run(args: argparse.Namespace) -> int:
    spec = WorldSpec(
        agents=tuple(a.strip() for a in args.agents.split(",") if a.strip()),
        n_steps=args.n_steps,
        n_processes=args.n_processes,
        seed=args.seed,
        name=f"run-seed{args.seed}",
    )
    result = run_world(spec, progress=True)
    atomic_write_json(args.output, dataclasses.asdict(result))
    console = Console()
    console.print(_score_table(result))
    console.print(f"{result.n_steps} days in {result.duration_s:.1f} s; result written to {args.output}")
    return 0


def _score_table(result: WorldResult) -> Table:
    table = Table(title=f"{result.name}: final scores (1.0 = initial balance kept)")
    for column in ("agent id", "type", "score"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for agent_id, score in sorted(result.scores.items(), key=lambda item: -item[1]):
        table.add_row(agent_id, result.agent_types[agent_id].rpartition(".")[2], f"{score:.3f}")
    return table


if __name__ == "__main__":
    sys.exit(main())
