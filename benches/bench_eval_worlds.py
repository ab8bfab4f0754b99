"""Evaluation-world throughput: the ``hrl compare`` world path against
``scml.utils.anac2024_std`` on the same configurations, in the same run. Prints a table and
writes JSON.

    python benches/bench_eval_worlds.py [--configs 1] [--n-steps 20] [--out runs/bench/eval_worlds.json]

1. ``anac2024_std`` (serial, in this process) with the full default field: PenguinAgent and the
   four 2025 finalists as competitors (all five in every world), scml's built-ins as fillers,
   2 levels of at least 4 factories, ``--n-steps`` days, five worlds per configuration (the
   fewest its fair assignment of five competitors accepts: one rotation each). Timed as
   a whole (generation, running, scoring, its default logs); also run a second time with its logs
   off (``compact=True, forced_logs_fraction=0``) to show what the logs cost.
2. The worlds it played (agent types in factory order, levels, days, read back from the
   configurations it wrote) are built and run the way ``hrl compare`` plays a seat:
   ``hrl.worlds.run_world`` with :data:`hrl.evaluate.compare.EVALUATION_GENERATE_KWARGS` and
   :data:`~hrl.evaluate.compare.EVALUATION_WORLD_KWARGS` (no logs, synchronous calls, no
   wall-clock limits), in this process, and once more through the local executor (one spawned
   worker, start-up included), as ``hrl compare --workers 1`` runs them. Same shapes and agents;
   the random draws (profiles, exogenous contracts) are each world's own.

Both steps run twice: with the full default field, and with the same field less XenoSotaAgent
(which alone spends most of a world's time in its own code, ~0.7 s per day in a 10-factory
world here, and so bounds what any world setting can save).

Rates are world-days per second: simulated days of all worlds over wall-clock seconds, and over
CPU seconds (this process and its finished child processes, user + system), which other jobs on a
shared machine disturb much less. Ratios are against the ``anac2024_std`` row of the same field.
Numbers are machine- and load-dependent; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hrl.distributed import make_executor
from hrl.evaluate.compare import EVALUATION_GENERATE_KWARGS, EVALUATION_WORLD_KWARGS
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN
from hrl.worlds import WorldResult, WorldSpec, run_world

FIELDS = {
    "default field": (PENGUIN, *FINALISTS_2025),
    "default field without XenoSotaAgent": (PENGUIN, *(a for a in FINALISTS_2025 if "XenoSota" not in a)),
}


def anac(
    work: Path, competitors: tuple[str, ...], configs: int, n_steps: int, logs: bool
) -> tuple[tuple[float, float], list[dict[str, Any]]]:
    """(wall, CPU) seconds of one ``anac2024_std`` run, and the world configurations it played."""
    from scml.utils import anac2024_std

    shutil.rmtree(work, ignore_errors=True)
    extra: dict[str, Any] = {} if logs else {"compact": True, "forced_logs_fraction": 0.0}
    seconds, _ = timed(
        lambda: anac2024_std(
            competitors=list(competitors),
            non_competitors=list(BUILTINS),
            n_configs=configs,
            max_worlds_per_config=len(competitors),
            n_runs_per_world=1,
            n_steps=n_steps,
            n_processes=2,
            min_factories_per_level=4,
            n_competitors_per_world=len(competitors),
            parallelism="serial",
            tournament_path=str(work),
            name="bench",
            **extra,
        )
    )
    worlds = [json.loads(p.read_text()) for p in sorted(work.glob("*/configs/*.json"))]
    return seconds, worlds


def spec_of(config: dict[str, Any], index: int) -> WorldSpec:
    """The hrl evaluation world with the shape and agents of one ``anac2024_std`` world."""
    params = config["world_params"]
    return WorldSpec(
        agents=tuple(config["agent_types"]),
        n_steps=int(params["n_steps"]),
        n_processes=int(params["n_processes"]),
        seed=index,
        name=f"bench{index}",
        world_kwargs=EVALUATION_WORLD_KWARGS,
        agent_processes=tuple(params["agent_processes"]),
        generate_kwargs=EVALUATION_GENERATE_KWARGS,
    )


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[tuple[float, float], T]:
    """``((wall s, CPU s), fn())``; CPU: this process plus children that finished meanwhile."""

    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    wall, used = time.perf_counter(), cpu()
    value = fn()
    return (time.perf_counter() - wall, cpu() - used), value


def hrl_in_process(specs: list[WorldSpec]) -> None:
    for spec in specs:
        run_world(spec)


def hrl_executor(specs: list[WorldSpec]) -> None:
    with make_executor("local", n_workers=1, worker_env={"PYTHONHASHSEED": "0"}) as executor:
        for spec in specs:
            executor.submit(spec.name, run_world, spec)
        for result in executor.results():
            if not (result.ok and isinstance(result.value, WorldResult)):
                raise RuntimeError(f"{result.key}: {result.status} {result.error}")


def bench_field(work: Path, competitors: tuple[str, ...], configs: int, n_steps: int) -> dict[str, Any]:
    """Every row of one field; prints them."""
    anac_s, played = anac(work / "anac", competitors, configs, n_steps, logs=True)
    anac_nologs_s, _ = anac(work / "anac-nologs", competitors, configs, n_steps, logs=False)
    specs = [spec_of(config, i) for i, config in enumerate(played)]
    days = sum(s.n_steps for s in specs)
    rows = {
        "anac2024_std (serial, default logs)": anac_s,
        "anac2024_std (serial, logs off)": anac_nologs_s,
        "hrl evaluation worlds (in process)": timed(lambda: hrl_in_process(specs))[0],
        "hrl evaluation worlds (local executor, 1 worker)": timed(lambda: hrl_executor(specs))[0],
    }
    print(f"{len(specs)} worlds, {days} world-days; agents per world: {[len(s.agents) for s in specs]}")
    for name, (wall, cpu) in rows.items():
        print(
            f"  {name:50s} wall {wall:6.1f} s {days / wall:6.2f} world-days/s {anac_s[0] / wall:5.2f}x"
            f" | CPU {cpu:6.1f} s {days / cpu:6.2f} world-days/s {anac_s[1] / cpu:5.2f}x"
        )
    return {
        "competitors": list(competitors),
        "worlds": [{"agents": list(s.agents), "levels": s.n_processes, "n_steps": s.n_steps} for s in specs],
        "world_days": days,
        "wall_s": {k: v[0] for k, v in rows.items()},
        "cpu_s": {k: v[1] for k, v in rows.items()},
        "world_days_per_wall_s": {k: days / v[0] for k, v in rows.items()},
        "world_days_per_cpu_s": {k: days / v[1] for k, v in rows.items()},
        "ratio_vs_anac2024_std_wall": {k: anac_s[0] / v[0] for k, v in rows.items()},
        "ratio_vs_anac2024_std_cpu": {k: anac_s[1] / v[1] for k, v in rows.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=1, help="world configurations (five worlds each)")
    parser.add_argument("--n-steps", type=int, default=20, help="days per world")
    parser.add_argument("--work", default="/tmp/hrl-bench-eval", help="scratch folder for anac2024_std")
    parser.add_argument("--out", default="runs/bench/eval_worlds.json")
    args = parser.parse_args()
    work = Path(args.work)
    results: dict[str, Any] = {}
    for name, competitors in FIELDS.items():
        print(name)
        results[name] = bench_field(work, competitors, args.configs, args.n_steps)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    results["at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
