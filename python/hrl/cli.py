"""The ``hrl`` command line.

Commands:
    hrl collect  run SCML 2025 Standard worlds and keep their logs (see docs/data.md)
    hrl build    turn collected logs into macro/micro training samples (parquet)
    hrl pretrain behaviour cloning of L2/L3/L4 on those samples -> one checkpoint bundle (docs/agent.md)
    hrl finetune online PPO (L2) + MAPPO (L3/L4) in real worlds -> OUT/bundle.pt (docs/online.md)
    hrl audit    count the actions of every agent in tournament logs that break L1's rules
    hrl evaluate tournament of our agent(s) vs Penguin, the 2025 finalists, built-ins; report
    hrl compare  seat-swap comparison of 2+ agents: same world, same factory, paired differences
    hrl run      the main job: collect -> build -> pretrain -> finetune -> evaluate -> report
                 (--preset quick|full|FILE.toml; resumable; prints where the report is)
    hrl play     one real SCML 2025 Standard world with the default opponents, scores printed
    hrl submission  a trained bundle -> a self-contained league submission folder and zip
                 (docs/submission.md)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hrl.errors import HrlError
from hrl.io import atomic_write_json

if TYPE_CHECKING:
    from hrl.worlds import WorldResult

__all__ = ["main"]


HASH_SEED = "0"
"""The ``PYTHONHASHSEED`` every ``hrl`` command runs under (scml and negmas iterate over sets of
strings, so a world is only the same world in two processes with the same hash seed)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hrl`` script; returns the process exit code.

    Called from the command line (``argv`` None), the process first re-executes itself with
    ``PYTHONHASHSEED=0`` unless it already has it (the hash seed only takes effect at
    interpreter start), so the same command and seed give the same worlds and updates in every
    fresh process -- also with ``--workers 0``, where the worlds run in this process.
    """
    if argv is None:
        _ensure_hash_seed()
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.command(args))
    except HrlError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}")
        return 2


def _ensure_hash_seed() -> None:
    """Re-execute this very command line under ``PYTHONHASHSEED=0`` (no-op when already set)."""
    if os.environ.get("PYTHONHASHSEED") == HASH_SEED:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def _parser() -> argparse.ArgumentParser:
    from hrl.opponents import DEFAULT_OPPONENTS  # imports scml (seconds): after the re-exec

    parser = argparse.ArgumentParser(
        prog="hrl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="the main job: collect -> build -> pretrain -> finetune -> evaluate -> report (resumable)",
    )
    run.add_argument("--preset", default="quick", help="quick (default), full, or a path to a preset .toml")
    run.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<preset>)")
    run.add_argument("--plan", action="store_true", help="print each stage's world-days and ETA, run nothing")
    run.add_argument(
        "--milestones",
        type=Path,
        default=None,
        help="folder to restore the resumable state from and mirror it into (small enough to commit)",
    )
    run.set_defaults(command=_run)
    play = commands.add_parser("play", help="play one real Standard world and print the scores")
    play.add_argument("--n-steps", type=int, default=20, help="simulated days (default: 20)")
    play.add_argument("--n-processes", type=int, default=2, help="production levels (default: 2)")
    play.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")
    play.add_argument(
        "--agents",
        default=",".join(DEFAULT_OPPONENTS),
        help="comma-separated import paths of the competitors (default: Penguin, the 2025 finalists, "
        "PonponAgent, KATSUDONAgent and the built-ins)",
    )
    play.add_argument(
        "--output", type=Path, default=Path("runs/play/world.json"), help="where to write the JSON result"
    )
    play.set_defaults(command=_play)
    _add_data_commands(commands)
    _add_pretrain_command(commands)
    _add_evaluate_command(commands)
    _add_finetune_command(commands)
    from hrl.submission.cli import add_submission_command

    add_submission_command(commands)
    return parser


def _add_finetune_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("finetune", help="online PPO/MAPPO in real worlds -> OUT/bundle.pt (resumable)")
    p.add_argument("--bundle", required=True, help="starting bundle (e.g. runs/bc/bundle.pt)")
    p.add_argument("--out", required=True, help="run folder (the same folder resumes)")
    p.add_argument("--updates", type=int, default=10, help="total updates (default: 10)")
    p.add_argument("--worlds-per-update", type=int, default=4, help="rollout worlds per update (default: 4)")
    p.add_argument("--workers", type=int, default=0, help="worker processes, 0 = inline (default: 0)")
    p.add_argument("--learners", type=int, default=1, help="learners per world, 1-2 (default: 1)")
    p.add_argument("--n-steps", default="15,30", help="days per world 'LOW,HIGH' (default: 15,30)")
    p.add_argument("--levels", default="2,2", help="production levels per world 'LOW,HIGH' (default: 2,2)")
    p.add_argument(
        "--factories-per-level", default="4,5", help="factories per level 'LOW,HIGH' (default: 4,5)"
    )
    p.add_argument(
        "--pool",
        default=None,
        help="comma-separated import paths of the opponents (default: PenguinAgent, the 2025 "
        "finalists and the built-ins)",
    )
    p.add_argument(
        "--max-failed-share",
        type=float,
        default=0.25,
        help="stop when more than this share of an update's worlds fail (default: 0.25)",
    )
    p.add_argument("--eval-every", type=int, default=2, help="validate every N updates (default: 2)")
    p.add_argument("--eval-worlds", type=int, default=4, help="validation worlds, 0 = none (default: 4)")
    p.add_argument(
        "--val-vs-l1",
        action="store_true",
        help="validate by a seat-swap comparison against LitaAgentL1 (metric: the mean paired difference)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=4,
        help="stop after this many validations without a gain (default: 4; may change on resume)",
    )
    p.add_argument("--snapshot-every", type=int, default=5, help="freeze into the pool every N updates")
    p.add_argument(
        "--ippo", action="store_true", help="IPPO (own value heads) instead of MAPPO's central critic"
    )
    p.add_argument(
        "--follow-l1",
        type=float,
        default=None,
        metavar="BIAS",
        help="add L3's follow-L1 gate with this bias: P(follow L1) = sigmoid(BIAS) on every thread at "
        "the start; BIAS > 0 starts from exactly LitaAgentL1 in play (default: the bundle as it is)",
    )
    p.add_argument(
        "--gate-lr",
        type=float,
        default=None,
        metavar="LR",
        help="learning rate of the follow-L1 gate's head (default: L3's own, 1e-4)",
    )
    p.add_argument(
        "--gate-credit",
        choices=("thread", "round"),
        default="thread",
        help="credit the follow gate's choice with the thread's L3 advantage (default) or its "
        "round's L4 advantage, the GAE of the score-summing day rewards",
    )
    p.add_argument(
        "--l3-credit",
        choices=("thread", "round"),
        default="thread",
        help="credit L3's own action with the thread's shaped L3 advantage (default) or its "
        "round's L4 advantage (score-aligned, as --gate-credit)",
    )
    p.add_argument(
        "--paired",
        action="store_true",
        help="play every rollout world again with LitaAgentL1 in the learners' seats and reward the "
        "difference: a world's rewards add up to score - L1's score in that seat (twice the days)",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="where rollout worlds run")
    p.add_argument(
        "--ray-address", default=None, help="Ray only: auto or HOST:PORT (default: a private instance)"
    )
    p.set_defaults(command=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    import json

    from hrl.data.collect import parse_range, split_agents
    from hrl.train.finetune import FinetuneConfig, finetune
    from hrl.train.mappo import MAPPOConfig
    from hrl.train.rollout import DEFAULT_POOL

    cfg = FinetuneConfig(
        bundle=args.bundle,
        out=args.out,
        updates=args.updates,
        worlds_per_update=args.worlds_per_update,
        workers=args.workers,
        n_learners=args.learners,
        n_steps=parse_range(args.n_steps, "--n-steps"),
        n_levels=parse_range(args.levels, "--levels"),
        factories_per_level=parse_range(args.factories_per_level, "--factories-per-level"),
        pool=split_agents(args.pool) if args.pool else DEFAULT_POOL,
        max_failed_share=args.max_failed_share,
        eval_every=args.eval_every,
        eval_worlds=args.eval_worlds,
        validate_vs_l1=args.val_vs_l1,
        patience=args.patience,
        snapshot_every=args.snapshot_every,
        seed=args.seed,
        mappo=MAPPOConfig(
            centralised=not args.ippo,
            lr_gate=args.gate_lr,
            gate_credit=args.gate_credit,
            l3_credit=args.l3_credit,
        ),
        follow_l1=args.follow_l1,
        paired=args.paired,
        backend=args.backend,
        ray_address=args.ray_address,
    )
    summary = finetune(cfg)
    last = summary["history"][-1] if summary["history"] else {}
    Console().print(
        json.dumps({k: v for k, v in summary.items() if k != "history"} | {"last": last}, indent=1)
    )
    return 0


def _add_pretrain_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "pretrain", help="behaviour cloning of L2/L3/L4 -> OUT/bundle.pt, OUT/metrics.json"
    )
    p.add_argument("--data", type=Path, required=True, help="folder with macro.parquet and micro.parquet")
    p.add_argument("--out", type=Path, required=True, help="output folder (the same folder resumes)")
    p.add_argument("--layers", default="l2,l3,l4", help="comma-separated layers to train (default: l2,l3,l4)")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs per layer (default: 30)")
    p.add_argument("--batch-size", type=int, default=256, help="samples per step (default: 256)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of split, weights and shuffling (default: 0)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--min-expert-score",
        type=float,
        default=None,
        help="clone only the agent-worlds whose final score is at least this (default: all)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(command=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    import json

    from hrl.config import TrainConfig
    from hrl.train.pretrain import PretrainConfig, pretrain

    train = TrainConfig(
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.patience,
        seed=args.seed,
        progress=not args.no_progress,
        num_threads=args.threads,
    )
    layers = tuple(x.strip() for x in args.layers.split(",") if x.strip())
    config = PretrainConfig(
        data=args.data, out=args.out, layers=layers, train=train, min_expert_score=args.min_expert_score
    )
    report = pretrain(config)
    if report["experts"] is not None:
        Console().print(f"experts kept: {json.dumps(report['experts'], default=float)}")
    Console().print(json.dumps(report["metrics"], indent=2, default=float))
    Console().print("held-out metrics next to naive baselines (same rows):")
    Console().print(json.dumps(report["heldout"], indent=2, default=float))
    Console().print(f"bundle: {report['bundle']}; metrics: {args.out / 'metrics.json'}")
    return 0


def _add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hrl.data.cli import add_build_command, add_collect_command

    add_collect_command(commands)
    add_build_command(commands)
    from hrl.safety.cli import add_audit_command

    add_audit_command(commands)


def _add_evaluate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hrl.evaluate.cli import add_compare_command, add_evaluate_command

    add_evaluate_command(commands)
    add_compare_command(commands)


def _run(args: argparse.Namespace) -> int:
    from hrl.pipeline import eta_line, load_preset, plan_world_days, run_pipeline

    preset = load_preset(args.preset)
    out = args.out or Path("runs") / preset.name
    console = Console()
    if args.plan:
        for stage, days in plan_world_days(preset).items():
            console.print(eta_line(stage, days))
        return 0
    record = run_pipeline(preset, out, console=console, milestones=args.milestones)
    console.print(f"run folder: {out}; report: {record['stages']['evaluate']['report']}")
    return 0


def _play(args: argparse.Namespace) -> int:
    from hrl.worlds import WorldSpec, run_world

    spec = WorldSpec(
        agents=tuple(a.strip() for a in args.agents.split(",") if a.strip()),
        n_steps=args.n_steps,
        n_processes=args.n_processes,
        seed=args.seed,
        name=f"play-seed{args.seed}",
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
