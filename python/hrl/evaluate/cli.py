"""The ``hrl evaluate`` and ``hrl compare`` subcommands (registered by :mod:`hrl.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN

__all__ = ["add_compare_command", "add_evaluate_command"]


def add_evaluate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrl evaluate``."""
    p = commands.add_parser(
        "evaluate",
        help="tournament of our agent(s) against PenguinAgent, the 2025 finalists and built-ins; report",
        description="Official-style worlds (configurations x rotations); the same --out resumes.",
    )
    p.add_argument(
        "--agent",
        action="append",
        required=True,
        help="import path of an agent under test (repeatable), e.g. hrl.agent.l1.LitaAgentL1",
    )
    p.add_argument(
        "--opponents",
        default=",".join((PENGUIN, *FINALISTS_2025)),
        help="comma-separated import paths of the ranked opponents (default: Penguin + the 2025 finalists)",
    )
    p.add_argument(
        "--fillers",
        default=",".join(BUILTINS),
        help="non-competitors filling the other factories (default: built-ins)",
    )
    p.add_argument("--configs", type=int, default=4, help="world configurations (default: 4)")
    p.add_argument("--rotations", type=int, default=2, help="rotations of the competitors per configuration")
    _add_world_options(p, unit="world")
    p.add_argument(
        "--out", type=Path, default=Path("runs/evaluate"), help="tournament folder (default: runs/evaluate)"
    )
    p.add_argument(
        "--run-dir", type=Path, default=None, help="training run folder whose curves the report plots"
    )
    p.set_defaults(command=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from hrl.data.collect import split_agents
    from hrl.evaluate.report import write_report
    from hrl.evaluate.tournament import EvaluateConfig, run_evaluation

    config = EvaluateConfig(
        agents=tuple(args.agent),
        opponents=split_agents(args.opponents),
        fillers=split_agents(args.fillers),
        n_configs=args.configs,
        n_rotations=args.rotations,
        **_world_options(args),
    )
    result = run_evaluation(config, args.out, progress=not args.no_progress)
    report = write_report(result, ours=config.agents, run_dir=args.run_dir)
    table = Table(title=f"{len(result.worlds)} worlds, {len(result.failed)} failed")
    for column in ("rank", "agent", "official", "mean", "95% CI", "win rate"):
        table.add_column(column)
    for s in result.summaries:
        table.add_row(
            str(s.rank),
            s.agent,
            f"{s.official:.3f}",
            f"{s.mean:.3f}",
            f"[{s.ci_low:.3f}, {s.ci_high:.3f}]",
            f"{s.win_rate:.2f}",
        )
    Console().print(table)
    Console().print(f"report: {report}; results: {Path(result.out_dir) / 'evaluation.json'}")
    return 0 if not result.failed else 1


def add_compare_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrl compare``."""
    from hrl.evaluate.compare import COMPARE_FIELD

    p = commands.add_parser(
        "compare",
        help="seat-swap comparison: each world played once per candidate in the same factory",
        description="Paired differences A - B on the same seat of the same world, with bootstrap and "
        "t intervals, per-level results and optional sequential stopping; the same --out resumes.",
    )
    p.add_argument(
        "--agent",
        action="append",
        required=True,
        help="a candidate, LABEL=import.path or import.path (repeat, at least twice), "
        "e.g. L1=hrl.agent.l1.LitaAgentL1",
    )
    p.add_argument(
        "--worlds", type=int, default=30, help="worlds (with --until-separated: per batch; default: 30)"
    )
    p.add_argument(
        "--opponents",
        default=",".join(COMPARE_FIELD),
        help="comma-separated import paths (or agent specs) filling the other factories "
        "(default: Penguin, the 2025 finalists, the built-ins)",
    )
    _add_world_options(p, unit="play")
    p.add_argument(
        "--positions",
        default="first,middle,last",
        help="positions the seats rotate over, e.g. middle,last (default: first,middle,last)",
    )
    p.add_argument(
        "--logs",
        action="append",
        default=[],
        metavar="LABEL",
        help="keep the world logs of LABEL's plays in OUT/logs/ (repeat; e.g. for hrl audit OUT/logs)",
    )
    p.add_argument(
        "--half-width",
        type=float,
        default=0.03,
        help="target CI half-width for 'worlds needed' (default: 0.03)",
    )
    p.add_argument(
        "--until-separated",
        action="store_true",
        help="add batches of --worlds worlds until every pair's CI excludes 0 (needs --max-worlds)",
    )
    p.add_argument("--max-worlds", type=int, default=None, help="with --until-separated: most worlds")
    p.add_argument("--max-minutes", type=float, default=None, help="with --until-separated: time budget")
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="folder (default: runs/compare)")
    p.set_defaults(command=_compare)


def _compare(args: argparse.Namespace) -> int:
    from hrl.data.collect import split_agents
    from hrl.evaluate.compare import COMPARISON_FILE, CompareConfig, run_comparison
    from hrl.evaluate.report import write_comparison_report

    config = CompareConfig(
        agents=tuple(args.agent),
        n_worlds=args.worlds,
        opponents=split_agents(args.opponents),
        positions=tuple(x.strip() for x in args.positions.split(",") if x.strip()),
        log_plays=tuple(args.logs),
        half_width=args.half_width,
        until_separated=args.until_separated,
        max_worlds=args.max_worlds,
        max_minutes=args.max_minutes,
        **_world_options(args),
    )
    result = run_comparison(config, args.out, progress=not args.no_progress)
    report = write_comparison_report(result)
    stop = result.stopping
    table = Table(title=f"{len(result.worlds)} worlds, {len(result.failed)} plays failed")
    for column in ("A - B", "n", "mean", "95% CI (bootstrap)", "95% CI (t)", "SD", "A wins", "separated"):
        table.add_column(column)
    for p in result.pairs:
        t_ci = "-" if p.t_ci_low is None else f"[{p.t_ci_low:+.3f}, {p.t_ci_high:+.3f}]"
        table.add_row(
            f"{p.a} - {p.b}",
            str(p.n_pairs),
            f"{p.mean_difference:+.3f}",
            f"[{p.ci_low:+.3f}, {p.ci_high:+.3f}]",
            t_ci,
            "-" if p.sd_difference is None else f"{p.sd_difference:.3f}",
            f"{p.wins:.2f}",
            "yes" if stop.separated[f"{p.a} vs {p.b}"] else "no",
        )
    console = Console()
    console.print(table)
    console.print(
        f"stopping: {stop.rule}; stopped because {stop.reason} after {stop.n_looks} of "
        f"{len(stop.planned_looks)} planned looks ({stop.elapsed_minutes:.1f} min)"
    )
    console.print(f"report: {report}; results: {Path(result.out_dir) / COMPARISON_FILE}")
    return 0 if not result.failed else 1


def _add_world_options(p: argparse.ArgumentParser, *, unit: str) -> None:
    """The options ``hrl evaluate`` and ``hrl compare`` share: world ranges, seed, how to run."""
    p.add_argument("--n-steps", default="50,200", help="days per world, 'LOW,HIGH' or 'N' (default: 50,200)")
    p.add_argument("--levels", default="2,4", help="production levels (default: 2,4)")
    p.add_argument("--agents-per-level", default="4,8", help="factories per level (default: 4,8)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    p.add_argument("--workers", type=int, default=1, help=f"{unit}s run in parallel (default: 1)")
    p.add_argument(
        "--timeout", type=float, default=3600.0, help=f"per-{unit} limit in seconds (default: 3600)"
    )
    p.add_argument("--backend", choices=("local", "ray"), default="local", help=f"where the {unit}s run")
    p.add_argument(
        "--ray-address", default=None, help="Ray only: auto or HOST:PORT (default: a private instance)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _world_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields of :func:`_add_world_options`' options (ranges parsed)."""
    from hrl.data.collect import parse_range

    return {
        "n_steps": parse_range(args.n_steps, "--n-steps"),
        "n_levels": parse_range(args.levels, "--levels"),
        "agents_per_level": parse_range(args.agents_per_level, "--agents-per-level"),
        "seed": args.seed,
        "n_workers": args.workers,
        "world_timeout_s": args.timeout,
        "backend": args.backend,
        "ray_address": args.ray_address,
    }
