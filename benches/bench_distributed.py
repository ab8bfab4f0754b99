"""Executor benchmark: world-days/s of ``hrl collect`` with 1 and 2 workers on the ``local`` and
``ray`` backends, and the per-task overhead of each backend on one 10-day world. Prints a table
and writes JSON (default ``runs/bench/distributed.json``).

    python benches/bench_distributed.py [--worlds 4] [--n-steps 10] [--work /tmp/hrl-bench-dist]

- **throughput**: ``collect_worlds`` of ``--worlds`` worlds (4 competitors, 2 levels of 4
  factories, ``--n-steps`` days each), per backend and worker count. ``wall_s`` includes starting
  the workers (and, for Ray, the private Ray instance, also reported alone as ``ray_init_s``);
  ``world_days_per_s`` uses that wall time; ``steady_world_days_per_s`` leaves Ray's start-up out.
- **overhead**: one world run in this process (``collect_world``, the second of two runs, so
  imports are done) is the reference; then the same
  world through each backend with one worker, twice: ``cold`` (a fresh worker: process start and
  imports) and ``warm`` (the same worker again). Overhead = the driver's wall time for the task
  minus the world's own time measured inside the task (``duration_s``) minus the in-process
  build/save time around it, i.e. what the backend adds. Ray's warm number includes packing
  the world folder into an archive and unpacking it in the driver, as ``hrl collect`` does.

Numbers are machine-dependent; nothing here asserts a time.
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


def config_for(args: argparse.Namespace, backend: str, workers: int, n_worlds: int) -> Any:
    from hrl.data.collect import CollectConfig
    from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN

    return CollectConfig(
        n_worlds=n_worlds,
        agents=(PENGUIN, FINALISTS_2025[0], *BUILTINS[:2]),
        n_steps=(args.n_steps, args.n_steps),
        n_levels=(2, 2),
        agents_per_level=(4, 4),
        seed=11,
        storage_format="parquet",
        n_workers=workers,
        world_timeout_s=600.0,
        max_worlds_per_worker=None,
        backend=backend,
    )


def throughput(args: argparse.Namespace) -> list[dict[str, Any]]:
    import ray

    from hrl.data.collect import collect_worlds
    from hrl.distributed import RayExecutor

    rows = []
    for backend in ("local", "ray"):
        for workers in (1, 2):
            out = Path(args.work) / f"{backend}-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            init_s = 0.0
            start = time.perf_counter()
            owner = None
            if backend == "ray":  # start the private instance here so its cost is known
                owner = RayExecutor(n_workers=workers)
                init_s = time.perf_counter() - start
            try:
                manifest = collect_worlds(
                    config_for(args, backend, workers, args.worlds), out, progress=False
                )
            finally:
                if owner is not None:
                    owner.close()
            wall = time.perf_counter() - start
            assert not ray.is_initialized()
            days = manifest["summary"]["world_days_done"]
            rows.append(
                {
                    "backend": backend,
                    "workers": workers,
                    "worlds": args.worlds,
                    "world_days": days,
                    "done": manifest["summary"].get("done", 0),
                    "wall_s": round(wall, 2),
                    "ray_init_s": round(init_s, 2),
                    "world_days_per_s": round(days / wall, 2),
                    "steady_world_days_per_s": round(days / (wall - init_s), 2),
                }
            )
            print(rows[-1], flush=True)
    return rows


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    from hrl.data.collect import _unpack_world as unpack_world
    from hrl.data.collect import collect_world, collect_world_archive, plan_worlds
    from hrl.distributed import make_executor

    (plan,) = plan_worlds(config_for(args, "local", 1, 1))
    work = Path(args.work) / "overhead"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    collect_world(plan, str(work / "inproc-cold"), "parquet", False)  # imports the agents' modules
    start = time.perf_counter()
    reference = collect_world(plan, str(work / "inproc"), "parquet", False)
    inproc_wall = time.perf_counter() - start
    around = inproc_wall - reference["duration_s"]  # world build + final save, in-process
    out: dict[str, Any] = {
        "world_days": plan.n_steps,
        "in_process": {"wall_s": round(inproc_wall, 3), "world_s": round(reference["duration_s"], 3)},
    }
    for backend in ("local", "ray"):
        init_start = time.perf_counter()
        with make_executor(backend, n_workers=1, max_tasks_per_worker=None, timeout_s=600) as ex:
            init_s = time.perf_counter() - init_start
            for label in ("cold", "warm"):
                start = time.perf_counter()
                if backend == "ray":
                    ex.submit(label, collect_world_archive, plan, "parquet", False, f"bench-{os.getpid()}")
                else:
                    ex.submit(label, collect_world, plan, str(work / f"{backend}-{label}"), "parquet", False)
                (result,) = ex.results()
                assert result.ok, result.error
                value = result.value
                if backend == "ray":
                    (work / f"{backend}-{label}").mkdir()
                    unpack_world(work / f"{backend}-{label}", plan.name, value["archive"])
                    archive_bytes = len(value["archive"])
                    value = value["result"]
                wall = time.perf_counter() - start
                out[f"{backend}_{label}"] = {
                    "wall_s": round(wall, 3),
                    "world_s": round(value["duration_s"], 3),
                    "overhead_s": round(wall - value["duration_s"] - around, 3),
                }
                if backend == "ray":
                    out[f"{backend}_{label}"]["archive_bytes"] = archive_bytes
            out[f"{backend}_start_s"] = round(init_s, 3)
        print({k: v for k, v in out.items() if k.startswith(backend)}, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worlds", type=int, default=4)
    parser.add_argument("--n-steps", type=int, default=10)
    parser.add_argument("--work", default="/tmp/hrl-bench-dist")
    parser.add_argument("--out", default="runs/bench/distributed.json")
    args = parser.parse_args()
    report = {
        "overhead": overhead(args),
        "throughput": throughput(args),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| backend | workers | world-days | wall s | world-days/s | without Ray start-up |")
    for row in report["throughput"]:
        print(
            f"| {row['backend']} | {row['workers']} | {row['world_days']} | {row['wall_s']} "
            f"| {row['world_days_per_s']} | {row['steady_world_days_per_s']} |"
        )
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
