"""The ``hrl collect`` and ``hrl build`` subcommands (registered by :mod:`hrl.cli`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from hrl.opponents import DEFAULT_OPPONENTS

__all__ = ["add_build_command", "add_collect_command"]


def add_collect_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrl collect``."""
    p = commands.add_parser(
        "collect",
        help="run SCML 2025 Standard worlds (official generation) and keep their logs",
        description="Run worlds through the local process pool or Ray; "
        "re-running with the same --out resumes.",
    )
    p.add_argument("--worlds", type=int, default=10, help="number of worlds (default: 10)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: tournament_history/hrl_data_<timestamp>_std)",
    )
    p.add_argument(
        "--agents",
        default=",".join(DEFAULT_OPPONENTS),
        help="comma-separated import paths of the participants (default: hrl.opponents.DEFAULT_OPPONENTS)",
    )
    p.add_argument("--n-steps", default="50,200", help="days per world, 'LOW,HIGH' or 'N' (default: 50,200)")
    p.add_argument("--levels", default="2,4", help="production levels, 'LOW,HIGH' or 'N' (default: 2,4)")
    p.add_argument("--agents-per-level", default="4,8", help="factories per level (default: 4,8)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    p.add_argument(
        "--format", choices=("parquet", "csv"), default="parquet", help="table format (default: parquet)"
    )
    p.add_argument(
        "--negotiation-folders",
        action="store_true",
        help="also write negmas' per-negotiation folders and ufuns.csv "
        "(huge: ~3 MB per world-day, 4-5x slower)",
    )
    p.add_argument("--workers", type=int, default=1, help="worlds run in parallel (default: 1)")
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="per-world time limit in seconds (default: 3600)"
    )
    p.add_argument(
        "--max-worlds-per-worker", type=int, default=4, help="recycle workers after N worlds (default: 4)"
    )
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where worlds run: local process pool or Ray (needs hrl[ray]) (default: local)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray only: 'auto' or HOST:PORT of a running cluster's head "
        "(default: start a private Ray instance on this machine, loopback only)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=2,
        help="Ray only: run a world again up to N times when its worker or node is lost (default: 2)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(command=_collect)


def add_build_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrl build``."""
    p = commands.add_parser(
        "build",
        help="parse collected logs (Rust) and write macro.parquet and micro.parquet",
    )
    p.add_argument("--logs", type=Path, required=True, help="a world folder or a collection folder")
    p.add_argument(
        "--out", type=Path, required=True, help="where to write macro.parquet, micro.parquet, build.json"
    )
    p.add_argument(
        "--experts",
        default=None,
        help="comma-separated agent class names (or import paths) whose decisions become micro samples "
        "(default: PenguinAgent and the 2025 winners)",
    )
    p.add_argument(
        "--skip-bad-rows", action="store_true", help="skip malformed log rows (counted) instead of failing"
    )
    p.set_defaults(command=_build)


def _collect(args: argparse.Namespace) -> int:
    from hrl.data.collect import CollectConfig, collect_worlds, default_out_dir, parse_range, split_agents

    config = CollectConfig(
        n_worlds=args.worlds,
        agents=split_agents(args.agents),
        n_steps=parse_range(args.n_steps, "--n-steps"),
        n_levels=parse_range(args.levels, "--levels"),
        agents_per_level=parse_range(args.agents_per_level, "--agents-per-level"),
        seed=args.seed,
        storage_format=args.format,
        negotiation_folders=args.negotiation_folders,
        n_workers=args.workers,
        world_timeout_s=args.timeout,
        max_worlds_per_worker=args.max_worlds_per_worker,
        backend=args.backend,
        ray_address=args.ray_address,
        max_retries=args.max_retries,
    )
    out = args.out or default_out_dir()
    manifest = collect_worlds(config, out, progress=not args.no_progress)
    Console().print(f"{out}: {json.dumps(manifest['summary'])}")
    return 0 if manifest["summary"].get("done", 0) == config.n_worlds else 1


def _build(args: argparse.Namespace) -> int:
    from hrl.data.datasets import write_datasets

    experts: Any = (
        None if args.experts is None else tuple(e.strip() for e in args.experts.split(",") if e.strip())
    )
    report = write_datasets(args.logs, args.out, experts=experts, skip_bad_rows=args.skip_bad_rows)
    Console().print(json.dumps(report, indent=2))
    return 0
