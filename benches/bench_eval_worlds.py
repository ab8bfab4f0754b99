"""Evaluation-world throughput: the ``hrl compare`` world path against
``scml.utils.anac2024_std`` on the same worlds, in the same run. Prints a table and writes JSON.

    python benches/bench_eval_worlds.py [--configs 1] [--n-steps 20] [--seed 0] [--out FILE.json]

1. ``anac2024_std`` (serial, in this process, its defaults: logs on, official time limits) with
   PenguinAgent and the four 2025 finalists as competitors (all five in every world), scml's
   built-ins as fillers, 2 levels of at least 4 factories, ``--n-steps`` days, five worlds per
   configuration (the fewest its fair assignment of five competitors accepts), its draws seeded
   by ``--seed`` (the same worlds in every run of the benchmark). Timed as a whole (generation,
   running, scoring, logs).
2. The very worlds it played (its ``assigned_configs.pickle``, read with negmas' own loader: the
   agents in factory order, profiles, exogenous contracts, prices, initial balances) are played
   the way ``hrl compare`` plays a seat: ``hrl.worlds.run_world`` with the settings of
   :data:`hrl.evaluate.compare.EVALUATION_GENERATE_KWARGS` and
   :data:`~hrl.evaluate.compare.EVALUATION_WORLD_KWARGS` (no logs, synchronous calls, no
   wall-clock limits), in this process, and once more through the local executor (one spawned
   worker, its start-up included), as ``hrl compare --workers 1`` runs them.

Both steps run twice: with the full default field, and with the same field less XenoSotaAgent
(which alone spends most of a world's time in its own code: 12.5 s of a 19 s, 20-day, 10-factory
world in a profile here, so it bounds what any world setting can save).

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

from negmas.helpers.inout import load
from negmas.serialization import deserialize
from scml.std import SCML2024StdWorld

from hrl.distributed import make_executor
from hrl.evaluate.compare import EVALUATION_GENERATE_KWARGS, EVALUATION_WORLD_KWARGS
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN, load_agent_class
from hrl.seeding import seed_everything
from hrl.worlds import WorldResult, WorldSpec, run_world

FIELDS = {
    "default field": (PENGUIN, *FINALISTS_2025),
    "default field without XenoSotaAgent": (PENGUIN, *(a for a in FINALISTS_2025 if "XenoSota" not in a)),
}


def anac(
    work: Path, competitors: tuple[str, ...], configs: int, n_steps: int, seed: int
) -> tuple[tuple[float, float], list[dict[str, Any]]]:
    """(wall, CPU) seconds of one ``anac2024_std`` run, and the world assignments it played."""
    from scml.utils import anac2024_std

    shutil.rmtree(work, ignore_errors=True)
    seed_everything(seed)  # anac2024_std draws its configurations from the global RNGs
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
        )
    )
    (assigned,) = work.glob("*/assigned_configs.pickle")
    return seconds, [world for group in load(assigned) for world in group]


def exact_world(assignment: dict[str, Any], index: int) -> tuple[WorldSpec, dict[str, Any]]:
    """The world ``anac2024_std`` played for ``assignment``, as a spec and configuration for
    :func:`hrl.worlds.run_world` with the ``hrl compare`` settings.

    The agents are placed as ``hrl.worlds.build_world`` places them (``generate`` with the
    assigned types in factory order); the world itself (profiles, exogenous contracts, prices,
    balances) is anac2024_std's, taken from the configuration its generator deserialised.
    """
    params = assignment["world_params"]
    spec = WorldSpec(
        agents=tuple(params["agent_types"]),
        n_steps=int(params["n_steps"]),
        n_processes=int(params["n_processes"]),
        seed=index,
        name=f"bench{index}",
        world_kwargs=EVALUATION_WORLD_KWARGS,
        agent_processes=tuple(params["agent_processes"]),
        generate_kwargs=EVALUATION_GENERATE_KWARGS,
    )
    placed = SCML2024StdWorld.generate(
        agent_types=[load_agent_class(path) for path in spec.agents],
        agent_processes=list(spec.agent_processes or ()),
        n_steps=spec.n_steps,
        n_processes=spec.n_processes,
        **EVALUATION_GENERATE_KWARGS,
    )
    played = deserialize(params["__exact_params"])
    world = set(placed) - {"agent_types", "agent_params"} - set(EVALUATION_GENERATE_KWARGS)
    return spec, placed | {key: played[key] for key in world}


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[tuple[float, float], T]:
    """``((wall s, CPU s), fn())``; CPU: this process plus children that finished meanwhile."""

    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    wall, used = time.perf_counter(), cpu()
    value = fn()
    return (time.perf_counter() - wall, cpu() - used), value


def play(spec: WorldSpec, config: dict[str, Any]) -> WorldResult:
    """One world (a task of the executor)."""
    return run_world(spec, config=config)


def hrl_in_process(worlds: list[tuple[WorldSpec, dict[str, Any]]]) -> None:
    for spec, config in worlds:
        play(spec, config)


def hrl_executor(worlds: list[tuple[WorldSpec, dict[str, Any]]]) -> None:
    with make_executor("local", n_workers=1, worker_env={"PYTHONHASHSEED": "0"}) as executor:
        for spec, config in worlds:
            executor.submit(spec.name, play, spec, config)
        for result in executor.results():
            if not result.ok:
                raise RuntimeError(f"{result.key}: {result.status} {result.error}")


def bench_field(
    work: Path, competitors: tuple[str, ...], configs: int, n_steps: int, seed: int
) -> dict[str, Any]:
    """Every row of one field; prints them."""
    anac_s, assignments = anac(work / "anac", competitors, configs, n_steps, seed)
    worlds = [exact_world(assignment, i) for i, assignment in enumerate(assignments)]
    specs = [spec for spec, _ in worlds]
    days = sum(s.n_steps for s in specs)
    rows = {
        "anac2024_std (serial, its defaults)": anac_s,
        "hrl compare worlds (in process)": timed(lambda: hrl_in_process(worlds))[0],
        "hrl compare worlds (local executor, 1 worker)": timed(lambda: hrl_executor(worlds))[0],
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
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds anac2024_std's draws (the same worlds each run)"
    )
    parser.add_argument("--work", default="/tmp/hrl-bench-eval", help="scratch folder for anac2024_std")
    parser.add_argument("--out", default="runs/bench/eval_worlds.json")
    args = parser.parse_args()
    work = Path(args.work)
    results: dict[str, Any] = {}
    for name, competitors in FIELDS.items():
        print(name)
        results[name] = bench_field(work, competitors, args.configs, args.n_steps, args.seed)
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
