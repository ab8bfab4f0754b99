"""The evaluation and comparison reports: Markdown pages with results tables and PNG plots.

``hrl evaluate`` (:func:`write_report`): the per-world score distribution of every ranked agent;
the results per position (first, middle, last level); one of our agents' balance, inventory and
shortfall over a world (from that world's logs); and, when a training run folder is given, its
TensorBoard scalars (``train/`` and ``val/`` curves).

``hrl compare`` (:func:`write_comparison_report`): every pair's paired differences per world,
coloured by the seat's position, with the mean and its interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hrl.data.logs import load_logs
from hrl.evaluate.compare import ComparisonResult
from hrl.evaluate.tournament import EvaluationResult
from hrl.io import atomic_write_bytes
from hrl.opponents import agent_name
from hrl.worlds import FLOW_NAMES, LEVEL_LABELS

__all__ = ["TRAINING_CURVES", "training_curves", "write_comparison_report", "write_report"]

LEVEL_COLOURS = {"first": "tab:blue", "middle": "tab:orange", "last": "tab:green"}


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
    lines += [
        "## By position",
        "",
        "Mean score [95% CI] (scores) of each ranked agent on the first, middle and last levels: "
        "first-level factories buy only from exogenous suppliers, last-level ones sell only to "
        "exogenous buyers.",
        "",
        "| agent | " + " | ".join(LEVEL_LABELS) + " |",
        "|---|" + "---|" * len(LEVEL_LABELS),
    ]
    for s in result.summaries:
        cells = []
        for label in LEVEL_LABELS:
            level = result.by_level.get(s.agent, {}).get(label)
            cells.append(
                "-"
                if level is None
                else f"{level.mean:.3f} [{level.ci_low:.3f}, {level.ci_high:.3f}] ({level.n_scores})"
            )
        lines.append(f"| {s.agent} | " + " | ".join(cells) + " |")
    lines.append("")
    if names and _plot_trajectory(result, names[0], out / "trajectory.png"):
        lines += [f"## {names[0]} over one world", "", "![trajectory](trajectory.png)", ""]
    if run_dir is not None and _plot_training(Path(run_dir), out / "training.png"):
        lines += ["## Training curves", "", f"From `{run_dir}`.", "", "![training](training.png)", ""]
    return _write_markdown(out / "report.md", lines, "Worlds that did not finish", result.failed)


def write_comparison_report(result: ComparisonResult, *, out_dir: str | Path | None = None) -> Path:
    """Write ``comparison.md`` and ``differences.png``; returns the report's path.

    Args:
        result: a finished comparison.
        out_dir: where to write (default: the comparison folder).
    """
    out = Path(out_dir or result.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stop = result.stopping
    seats = {label: sum(w.level == label for w in result.worlds) for label in LEVEL_LABELS}
    lines = [
        "# Seat-swap comparison",
        "",
        f"{len(result.worlds)} worlds ({', '.join(f'{n} {k}' for k, n in seats.items())} seats), "
        f"{sum(w.n_steps for w in result.worlds)} simulated days per candidate; "
        f"{len(result.failed)} plays failed; "
        f"exceptions recorded by the worlds: {result.n_exceptions}.",
        "Each world is generated once and played once per candidate with the candidate in the same "
        "factory (the seat); every other factory and every random draw stay the same. "
        "Score = final balance / initial balance. Difference = A - B on the same seat.",
        "",
        f"Stopping: {stop.rule}, stopped because **{stop.reason}** after {stop.n_looks} of "
        f"{len(stop.planned_looks)} planned looks ({stop.elapsed_minutes:.1f} min)"
        + (
            f"; decision intervals: t at {stop.look_confidence:.4f} per look (equal alpha spending)."
            if stop.rule == "until_separated"
            else "."
        ),
        "",
        "## Candidates (own seat scores)",
        "",
        "| candidate | worlds | mean score | 95% CI | SD | shortfall units / world "
        "| shortfall penalty / world |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.candidates:
        lines.append(
            f"| {c.label} (`{c.path}`) | {c.n_worlds} | {c.mean_score:.3f} "
            f"| [{c.ci_low:.3f}, {c.ci_high:.3f}] | {_num(c.sd_score, '.3f')} "
            f"| {c.mean_shortfall_quantity:.1f} | {c.mean_shortfall_penalty:.1f} |"
        )
    lines += _flow_lines(result)
    lines += [
        "",
        "## Pairs (paired differences A - B)",
        "",
        "| A - B | n | mean | bootstrap 95% CI | t 95% CI | SD | A wins | ties | first | middle | last "
        "| worlds for ±h (paired / unpaired) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in result.pairs:
        levels = [
            f"{_num(d.mean_difference)} [{_num(d.ci_low)}, {_num(d.ci_high)}] (n={d.n})"
            for d in (p.by_level[label] for label in LEVEL_LABELS)
        ]
        lines.append(
            f"| {p.a} - {p.b} | {p.n_pairs} | {p.mean_difference:+.3f} "
            f"| [{p.ci_low:+.3f}, {p.ci_high:+.3f}] | [{_num(p.t_ci_low)}, {_num(p.t_ci_high)}] "
            f"| {_num(p.sd_difference, '.3f')} | {p.wins:.2f} "
            f"| {p.ties:.2f} | {' | '.join(levels)} | h={p.half_width:g}: {p.worlds_needed} / "
            f"{p.worlds_needed_unpaired} |"
        )
    lines += ["", "![differences](differences.png)", ""]
    _plot_differences(result, out / "differences.png")
    return _write_markdown(out / "comparison.md", lines, "Plays that did not finish", result.failed)


def _write_markdown(path: Path, lines: list[str], failed_title: str, failed: dict[str, str]) -> Path:
    """Write ``lines`` (plus a section listing ``failed``, if any) atomically to ``path``."""
    if failed:
        lines = [*lines, f"## {failed_title}", "", *(f"- {k}: {v}" for k, v in sorted(failed.items()))]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def _num(value: float | None, spec: str = "+.3f") -> str:
    """``value`` formatted with ``spec``; ``-`` for a missing value."""
    return "-" if value is None else format(value, spec)


def _flow_lines(result: ComparisonResult) -> list[str]:
    """The table of where each candidate's score came from, per position (empty without flows)."""
    if not any(c.flows for c in result.candidates):
        return []
    terms = " | ".join(FLOW_NAMES)
    lines = [
        "",
        "## Where the score comes from",
        "",
        "Means per world; money as a share of the seat's initial balance (score = 1 + sales - "
        "purchases - production - storage - shortfall - disposal for a seat that never went "
        "bankrupt); units sold, bought and left in input stock at the end.",
        "",
        f"| candidate | position | worlds | score | {terms} | sold | bought | stock |",
        "|---" * (7 + len(FLOW_NAMES)) + "|",
    ]
    for c in result.candidates:
        for position, row in c.flows.items():
            money = " | ".join(f"{row[t]:.3f}" for t in FLOW_NAMES)
            lines.append(
                f"| {c.label} | {position} | {row['n_worlds']:.0f} | {row['score']:.3f} | {money} "
                f"| {row['sold']:.0f} | {row['bought']:.0f} | {row['stock']:.0f} |"
            )
    return lines


def _plot_differences(result: ComparisonResult, path: Path) -> None:
    """Per pair: each world's difference (colour: the seat's position), the mean and its CI."""
    n = len(result.pairs)
    fig, axes = plt.subplots(n, 1, figsize=(8.0, 2.8 * n), squeeze=False)
    for ax, pair in zip(axes[:, 0], result.pairs, strict=True):
        for label in LEVEL_LABELS:
            points = [
                (i, w.plays[pair.a].score - w.plays[pair.b].score)
                for i, w in enumerate(result.worlds)
                if w.level == label and pair.a in w.plays and pair.b in w.plays
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.scatter(xs, ys, s=18, color=LEVEL_COLOURS[label], label=f"{label} level")
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.axhline(pair.mean_difference, color="black", linewidth=1.0)
        ax.axhspan(pair.ci_low, pair.ci_high, color="black", alpha=0.1, label="mean, 95% CI")
        ax.set_ylabel(f"{pair.a} - {pair.b}")
        ax.legend(fontsize=7, loc="best")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("world")
    fig.suptitle("Paired score differences on the same seat")
    _save(fig, path)


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
        tables = load_logs(Path(result.out_dir) / world["name"])
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


TRAINING_CURVES = (
    "train/",
    "val/",
    "rollout/profit",
    "rollout/breach_rate",
    "rollout/inventory_blowups",
    "rollout/win_rate/",
    "safety/clip_rate",
    "reward/",
)
"""Prefixes of the TensorBoard scalars the report plots: the BC and fine-tuning losses and
validation, and fine-tuning's monitoring (profit, breach rate, inventory blow-ups, win rate per
opponent class, L1's clip rate, every reward term)."""


def training_curves(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar of :data:`TRAINING_CURVES` in the TensorBoard event files under ``run_dir``
    (BC and fine-tuning alike), as ``{"<folder>:<tag>": (steps, values)}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, tuple[list[int], list[float]]] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        prefix = events.parent.relative_to(run_dir).as_posix()
        for tag in accumulator.Tags().get("scalars", []):
            if tag.startswith(TRAINING_CURVES):
                points = accumulator.Scalars(tag)
                curves[f"{prefix}:{tag}"] = ([p.step for p in points], [p.value for p in points])
    return curves


def _plot_training(run_dir: Path, path: Path) -> bool:
    """Plot :func:`training_curves` of ``run_dir``; False when there are none."""
    curves = training_curves(run_dir)
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
