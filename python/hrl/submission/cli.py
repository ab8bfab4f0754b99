"""The ``hrl submission`` subcommand (registered by :mod:`hrl.cli`); the logic is
:mod:`hrl.submission.build`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

__all__ = ["add_submission_command"]


def add_submission_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrl submission``."""
    p = commands.add_parser(
        "submission",
        help="a trained bundle -> a self-contained SCML Standard submission folder and zip",
        description="Write OUT/<package>/ (the agent class, the weights, the minimal copy of hrl it "
        "plays with, requirements.txt, README.md, MANIFEST.json) and OUT/<package>.zip, after "
        "checking the league's known rules (docs/submission.md). Nothing is written on failure.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="a version-2 bundle (hrl pretrain / finetune)")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist unless --force)")
    p.add_argument("--name", default="LitaAgentHRL", help="agent class name (default: LitaAgentHRL)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(command=_submission)


def _submission(args: argparse.Namespace) -> int:
    from hrl.submission.build import build_submission

    built = build_submission(args.bundle, args.out, name=args.name, force=args.force)
    console = Console()
    for check in built.checks:
        console.print(f"{check.status:>5}  {check.rule}: {check.detail}")
    console.print(f"agent class {built.class_path}; folder {built.folder}; zip {built.zip_path}")
    return 0
