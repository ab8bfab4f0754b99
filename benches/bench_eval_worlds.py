"""Evaluation-world throughput: the ``hrl compare`` world path against
``scml.utils.anac2024_std`` on the same configurations, in the same run. Prints a table and
writes JSON.

    python benches/bench_eval_worlds.py [--configs 2] [--n-steps 20] [--out runs/bench/eval_worlds.json]

1. ``anac2024_std`` (serial, in this process) with the full default field: PenguinAgent and the
   four 2025 finalists as competitors (all five in every world), scml's built-ins as fillers,
   2 levels of at least 4 factories, ``--n-steps`` days, one world per configuration. Timed as
   a whole (generation, running, scoring, its default logs); also run a second time with its logs
   off (``compact=True, forced_logs_fraction=0``) to show what the logs cost.
2. The worlds it played (agent types in factory order, levels, days, read back from the
   configurations it wrote) are built and run the way ``hrl compare`` plays a seat:
   ``hrl.worlds.run_world`` with :data:`hrl.evaluate.compare.EVALUATION_GENERATE_KWARGS` and
   :data:`~hrl.evaluate.compare.EVALUATION_WORLD_KWARGS` (no logs, synchronous calls, no
   wall-clock limits), in this process, and once more through the local executor (one spawned
   worker, start-up included), as ``hrl compare --workers 1`` runs them. Same shapes and agents;
   the random draws (profiles, exogenous contracts) are each world's own.

Rates are world-days per second (simulated days of all worlds over wall-clock seconds).
Numbers are machine- and load-dependent; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hrl.distributed import make_executor
from hrl.evaluate.compare import EVALUATION_GENERATE_KWARGS, EVALUATION_WORLD_KWARGS
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN
from hrl.worlds import WorldResult, WorldSpec, run_world

COMPETITORS = (PENGUIN, *FINALISTS_2025)


def anac(work: Path, configs: int, n_steps: int, logs: bool) -> tuple[float, list[dict[str, Any]]]:
    """Seconds of one ``anac2024_std`` run, and the world configurations it played."""
    from scml.utils import anac2024_std

    shutil.rmtree(work, ignore_errors=True)
    extra: dict[str, Any] = {} if logs else {"compact": True, "forced_logs_fraction": 0.0}
    start = time.perf_counter()
    anac2024_std(
        competitors=list(COMPETITORS),
        non_competitors=list(BUILTINS),
        n_configs=configs,
        max_worlds_per_config=1,
        n_runs_per_world=1,
        n_steps=n_steps,
        n_processes=2,
        min_factories_per_level=4,
        n_competitors_per_world=len(COMPETITORS),
        parallelism="serial",
        tournament_path=str(work),
        name="bench",
        **extra,
    )
    seconds = time.perf_counter() - start
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


def hrl_in_process(specs: list[WorldSpec]) -> float:
    start = time.perf_counter()
    for spec in specs:
        run_world(spec)
    return time.perf_counter() - start


def hrl_executor(specs: list[WorldSpec]) -> float:
    start = time.perf_counter()
    with make_executor("local", n_workers=1, worker_env={"PYTHONHASHSEED": "0"}) as executor:
        for spec in specs:
            executor.submit(spec.name, run_world, spec)
        for result in executor.results():
            if not (result.ok and isinstance(result.value, WorldResult)):
                raise RuntimeError(f"{result.key}: {result.status} {result.error}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=2, help="world configurations (one world each)")
    parser.add_argument("--n-steps", type=int, default=20, help="days per world")
    parser.add_argument("--work", default="/tmp/hrl-bench-eval", help="scratch folder for anac2024_std")
    parser.add_argument("--out", default="runs/bench/eval_worlds.json")
    args = parser.parse_args()
    work = Path(args.work)
    anac_s, configs = anac(work / "anac", args.configs, args.n_steps, logs=True)
    anac_nologs_s, _ = anac(work / "anac-nologs", args.configs, args.n_steps, logs=False)
    specs = [spec_of(config, i) for i, config in enumerate(configs)]
    days = sum(s.n_steps for s in specs)
    in_process_s = hrl_in_process(specs)
    executor_s = hrl_executor(specs)
    rows = {
        "anac2024_std (serial, default logs)": anac_s,
        "anac2024_std (serial, logs off)": anac_nologs_s,
        "hrl evaluation worlds (in process)": in_process_s,
        "hrl evaluation worlds (local executor, 1 worker)": executor_s,
    }
    results = {
        "worlds": [
            {
                "agents": len(s.agents),
                "levels": s.n_processes,
                "n_steps": s.n_steps,
                "agent_types": list(s.agents),
            }
            for s in specs
        ],
        "world_days": days,
        "seconds": rows,
        "world_days_per_s": {k: days / v for k, v in rows.items()},
        "ratio_vs_anac2024_std": {k: anac_s / v for k, v in rows.items()},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(f"{len(specs)} worlds, {days} world-days; agents per world: {[len(s.agents) for s in specs]}")
    for name, seconds in rows.items():
        print(f"{name:50s} {seconds:8.1f} s {days / seconds:7.2f} world-days/s {anac_s / seconds:5.2f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
