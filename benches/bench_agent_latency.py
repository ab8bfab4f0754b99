"""Latency of LitaAgentHRL (all layers active) against PenguinAgent in the same real world.

One SCML 2025 Standard world with about 20 factories (default: 2 LitaAgentHRL, 2 PenguinAgent,
2 LitaAgentL1 (the HRL agent's floor, measured in the same world as the baseline of the ratios),
the rest scml's built-ins, 3 production levels). Every negotiation callback of the measured agents
is wrapped with a ``perf_counter`` timer:

- per call: ``first_proposals`` and ``counter_all`` (p50, p95, max, in ms);
- per simulated day: the agent's own time (every callback: ``before_step``, ``step``,
  ``first_proposals``, ``counter_all``, ``on_negotiation_success/failure``), in s.

Each is measured on two clocks: ``wall`` (``perf_counter``, what the simulator waits for) and
``cpu`` (``thread_time``, the calling thread's own CPU time: on a loaded machine the wall clock
also counts the time the process waits for a core, the CPU clock does not).

Usage::

    python benches/bench_agent_latency.py --out runs/bench/agent_latency.json [--bundle PATH]

Without ``--bundle`` a freshly initialised bundle (L2 + L3 + L4) is used: latency does not depend
on the weights. Targets (issue 12): p95 <= 5 ms per call, a mean of <= 20 ms per day. The
output also holds each agent's per-call p50/p95 and mean day as ratios to LitaAgentL1's. With
``HRL_FORCE_PURE_L1=1`` L1 runs on the pure-Python fallback (what a submission plays with); the
result's ``world.l1`` says which path ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrl.agent.hrl import LitaAgentHRL
from hrl.opponents import BUILTINS, PENGUIN
from hrl.safety import backend
from hrl.train.bundle import fresh_bundle, load_bundle, save_bundle
from hrl.worlds import WorldSpec, build_world

HRL = "hrl.agent.hrl.LitaAgentHRL"
L1 = "hrl.agent.l1.LitaAgentL1"
MEASURED = ("LitaAgentHRL", "PenguinAgent", "LitaAgentL1")
CALLS = ("first_proposals", "counter_all")
DAILY = (
    "before_step",
    "step",
    "first_proposals",
    "counter_all",
    "on_negotiation_success",
    "on_negotiation_failure",
)


CLOCKS = ("wall", "cpu")


def _wrap(obj: Any, name: str, sink: Callable[[str, float, float], None]) -> None:
    method = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            sink(name, time.perf_counter() - start, time.thread_time() - start_cpu)

    setattr(obj, name, timed)


def _stats(values: list[float], scale: float) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values) * scale
    return {
        "n": len(values),
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def _ratio(per_type: dict[str, Any], kind: str, clock: str, table: str, stat: str) -> float:
    """``kind``'s statistic over LitaAgentL1's, on one clock."""
    mine, floor = per_type[kind][clock][table], per_type["LitaAgentL1"][clock][table]
    if table == "per_call_ms":
        mine, floor = mine["all"], floor["all"]
    return float(mine[stat] / floor[stat])


def run(
    n_agents: int, n_steps: int, n_levels: int, seed: int, bundle: Path | None, n_hrl: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = bundle
        if path is None:
            path = Path(tmp) / "fresh.pt"
            save_bundle(fresh_bundle(seed), path)
        layers = load_bundle(path).layers
        fillers = [BUILTINS[i % len(BUILTINS)] for i in range(n_agents - 3 * n_hrl)]
        agents = (*([HRL, PENGUIN, L1] * n_hrl), *fillers)
        params = [{"controller_params": {"checkpoint": str(path)}} if a == HRL else {} for a in agents]
        spec = WorldSpec(
            agents=agents,
            n_steps=n_steps,
            n_processes=n_levels,
            seed=seed,
            name="latency",
            generate_kwargs={"agent_params": params},
        )
        world = build_world(spec)
        calls: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        daily: dict[tuple[str, str], list[float]] = {}
        totals: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        measured: dict[str, str] = {}
        for agent in world.agents.values():
            obj = getattr(agent, "_obj", None)
            kind = "LitaAgentHRL" if isinstance(obj, LitaAgentHRL) else type(obj).__name__
            if kind not in MEASURED:
                continue
            measured[agent.id] = kind
            for clock in CLOCKS:
                daily[clock, agent.id] = [0.0] * n_steps

            def sink(name: str, wall: float, cpu: float, aid: str = agent.id, kind: str = kind) -> None:
                day = min(world.current_step, n_steps - 1)
                for clock, dt in zip(CLOCKS, (wall, cpu), strict=True):
                    if name in CALLS:
                        calls[clock, kind][name].append(dt)
                    daily[clock, aid][day] += dt
                    totals[clock, kind][name] += dt

            for name in DAILY:
                _wrap(obj, name, sink)
        start = time.perf_counter()
        while world.step():
            pass
        wall = time.perf_counter() - start
        fallbacks = [
            a._obj.fallback_reason
            for a in world.agents.values()
            if isinstance(getattr(a, "_obj", None), LitaAgentHRL)
        ]
        per_type: dict[str, Any] = {}
        for kind in MEASURED:
            per_type[kind] = {}
            for clock in CLOCKS:
                own = calls[clock, kind]
                per_call = {name: _stats(own[name], 1e3) for name in CALLS}
                per_call["all"] = _stats(own["first_proposals"] + own["counter_all"], 1e3)
                days = [d for aid, k in measured.items() if k == kind for d in daily[clock, aid]]
                per_type[kind][clock] = {
                    "per_call_ms": per_call,
                    "per_day_s": _stats(days, 1.0),
                    "per_day_by_callback_ms": {
                        name: 1e3 * total / max(len(days), 1) for name, total in totals[clock, kind].items()
                    },
                }
        ratios = {
            clock: {
                kind: {
                    "per_call_p50": _ratio(per_type, kind, clock, "per_call_ms", "p50"),
                    "per_call_p95": _ratio(per_type, kind, clock, "per_call_ms", "p95"),
                    "per_day_mean": _ratio(per_type, kind, clock, "per_day_s", "mean"),
                }
                for kind in MEASURED
            }
            for clock in CLOCKS
        }
        return {
            "world": {
                "n_agents": len(agents),
                "n_levels": n_levels,
                "n_steps": n_steps,
                "seed": seed,
                "wall_s": round(wall, 2),
                "bundle": str(bundle) if bundle else "fresh (untrained)",
                "layers": list(layers),
                "fallbacks": fallbacks,
                "l1": backend.NAME,
            },
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpu": platform.processor(),
            },
            "agents": per_type,
            "ratio_to_l1": ratios,
            "load_average": os.getloadavg(),
            "targets": {"per_call_p95_ms": 5.0, "mean_per_day_s": 0.02},
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench/agent_latency.json"))
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument(
        "--hrl", type=int, default=2, help="LitaAgentHRL instances (as many PenguinAgents and LitaAgentL1s)"
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(args.agents, args.steps, args.levels, args.seed, args.bundle, args.hrl)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
