"""The evaluation report: a Markdown page with a results table and PNG plots.

Plots: the per-world score distribution of every ranked agent; one of our agents' balance,
inventory and shortfall over a world (from that world's logs); and, when a training run folder is
given, its TensorBoard scalars (``train/`` and ``val/`` curves).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from hrl.data.logs import load_negotiation_csv
from hrl.evaluate.tournament import EvaluationResult
from hrl.io import atomic_write_bytes
from hrl.opponents import agent_name

__all__ = ["write_report"]


def write_report(
    result: EvaluationResult,
    *,
    ours: Sequence[str],
    out_dir: str | Path | None = None,
    run_dir: str | Path | None = None,
) -> Path:
    """Write ``report.md`` and its plots; returns the report's path.

    Args:
        result: a finished evaluation.
        ours: import paths (or class names) of the agents under test; their rows are marked and
            the first one's trajectory is plotted.
        out_dir: where to write (default: the evaluation folder).
        run_dir: a training run folder with TensorBoard event files to plot (optional).
    """
    out = Path(out_dir or result.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [agent_name(a) for a in ours]
    lines = [
        "# Evaluation report",
        "",
        f"{len(result.worlds)} worlds finished ({len(result.failed)} failed), "
        f"{sum(w['n_steps'] for w in result.worlds)} simulated days; "
        f"exceptions recorded by the worlds: {result.n_exceptions}.",
        "Score = final balance / initial balance (1.0 = broke even). Official = truncated mean over all "
        "scores (as `scml.utils.anac2024_std`); CI = 95% percentile bootstrap of the mean.",
        "",
        "| rank | agent | official | mean | median | 95% CI | win rate | scores | shortfall penalty / world "
        "| own time / day | decision p50 / p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.summaries:
        extra = result.agents.get(s.agent, {})
        marker = " **(ours)**" if s.agent in names else ""
        penalty = extra.get("shortfall_penalty", math.nan)
        ms_per_day = 1e3 * extra.get("seconds_per_day", math.nan)
        p50, p95 = extra.get("decision_p50_ms", math.nan), extra.get("decision_p95_ms", math.nan)
        lines.append(
            f"| {s.rank} | {s.agent}{marker} | {s.official:.3f} | {s.mean:.3f} | {s.median:.3f} "
            f"| [{s.ci_low:.3f}, {s.ci_high:.3f}] | {s.win_rate:.2f} | {s.n_scores} "
            f"| {penalty:.1f} | {ms_per_day:.1f} ms | {p50:.2f} / {p95:.2f} ms |"
        )
    lines += ["", "![scores](scores.png)", ""]
    _plot_scores(result, out / "scores.png")
    if names and _plot_trajectory(result, names[0], out / "trajectory.png"):
        lines += [f"## {names[0]} over one world", "", "![trajectory](trajectory.png)", ""]
    if run_dir is not None and _plot_training(Path(run_dir), out / "training.png"):
        lines += ["## Training curves", "", f"From `{run_dir}`.", "", "![training](training.png)", ""]
    if result.failed:
        lines += ["## Worlds that did not finish", ""] + [
            f"- {k}: {v}" for k, v in sorted(result.failed.items())
        ]
    report = out / "report.md"
    atomic_write_bytes(report, ("\n".join(lines) + "\n").encode())
    return report


def _plot_scores(result: EvaluationResult, path: Path) -> None:
    agents = [s.agent for s in result.summaries]
    data = [[x for w in result.worlds for x in w["scores"].get(a, [])] for a in agents]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(agents)), 4.0))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(agents) + 1), [a[:18] for a in agents], rotation=30, ha="right")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylabel("score per world")
    ax.set_title("Score per world (box: quartiles, triangle: mean)")
    _save(fig, path)


def _plot_trajectory(result: EvaluationResult, agent: str, path: Path) -> bool:
    """Balance, inventory and shortfall of ``agent`` in the first world it played."""
    for world in result.worlds:
        if agent not in world["scores"]:
            continue
        tables = load_negotiation_csv(Path(result.out_dir) / world["name"])
        ids = tables.agents.filter(tables.agents["short_type"] == agent)["agent"].to_list()
        days = tables.agent_days.filter(tables.agent_days["agent"] == ids[0]).sort("day")
        fig, axes = plt.subplots(3, 1, figsize=(7.0, 6.5), sharex=True)
        axes[0].plot(days["day"], days["balance"])
        axes[0].set_ylabel("balance")
        axes[1].plot(days["day"], days["inventory_input"], label="input")
        axes[1].plot(days["day"], days["inventory_output"], label="output")
        axes[1].set_ylabel("inventory")
        axes[1].legend()
        axes[2].bar(days["day"], days["shortfall_quantity"])
        axes[2].set_ylabel("shortfall (units)")
        axes[2].set_xlabel("day")
        fig.suptitle(f"{agent} ({ids[0]}) in world {world['name']}")
        _save(fig, path)
        return True
    return False


def _plot_training(run_dir: Path, path: Path) -> bool:
    """Plot every ``train/``/``val/`` scalar found in TensorBoard event files under ``run_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, tuple[list[int], list[float]]] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        prefix = events.parent.relative_to(run_dir).as_posix()
        for tag in accumulator.Tags().get("scalars", []):
            if tag.startswith(("train/", "val/")):
                points = accumulator.Scalars(tag)
                curves[f"{prefix}:{tag}"] = ([p.step for p in points], [p.value for p in points])
    if not curves:
        return False
    n = len(curves)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 2.6 * rows), squeeze=False)
    for ax, (name, (steps, values)) in zip(axes.flat, sorted(curves.items()), strict=False):
        ax.plot(steps, values)
        ax.set_title(name, fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    _save(fig, path)
    return True


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
