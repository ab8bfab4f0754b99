"""Latency of LitaAgentHRL (all layers active) against PenguinAgent in the same real world.

One SCML 2025 Standard world with about 20 factories (default: 2 LitaAgentHRL, 2 PenguinAgent,
the rest scml's built-ins, 3 production levels). Every negotiation callback of the measured agents
is wrapped with a ``perf_counter`` timer:

- per call: ``first_proposals`` and ``counter_all`` (p50, p95, max, in ms);
- per simulated day: the agent's own time (every callback: ``before_step``, ``step``,
  ``first_proposals``, ``counter_all``, ``on_negotiation_success/failure``), in s.

Usage::

    python benches/bench_agent_latency.py --out runs/bench/agent_latency.json [--bundle PATH]

Without ``--bundle`` a freshly initialised bundle (L2 + L3 + L4) is used: latency does not depend
on the weights. Targets (issue 12): p95 <= 5 ms per call, a mean of <= 20 ms per day.
"""

from __future__ import annotations

import argparse
import json
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
from hrl.train.bundle import fresh_bundle, load_bundle, save_bundle
from hrl.worlds import WorldSpec, build_world

HRL = "hrl.agent.hrl.LitaAgentHRL"
CALLS = ("first_proposals", "counter_all")
DAILY = (
    "before_step",
    "step",
    "first_proposals",
    "counter_all",
    "on_negotiation_success",
    "on_negotiation_failure",
)


def _wrap(obj: Any, name: str, sink: Callable[[str, float], None]) -> None:
    method = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            sink(name, time.perf_counter() - start)

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


def run(
    n_agents: int, n_steps: int, n_levels: int, seed: int, bundle: Path | None, n_hrl: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = bundle
        if path is None:
            path = Path(tmp) / "fresh.pt"
            save_bundle(fresh_bundle(seed), path)
        layers = load_bundle(path).layers
        fillers = [BUILTINS[i % len(BUILTINS)] for i in range(n_agents - 2 * n_hrl)]
        agents = (*([HRL, PENGUIN] * n_hrl), *fillers)
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
        calls: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        daily: dict[str, list[float]] = {}
        measured: dict[str, str] = {}
        for agent in world.agents.values():
            obj = getattr(agent, "_obj", None)
            kind = "LitaAgentHRL" if isinstance(obj, LitaAgentHRL) else type(obj).__name__
            if kind not in ("LitaAgentHRL", "PenguinAgent"):
                continue
            measured[agent.id] = kind
            daily[agent.id] = [0.0] * n_steps

            def sink(name: str, dt: float, aid: str = agent.id, kind: str = kind) -> None:
                if name in CALLS:
                    calls[kind][name].append(dt)
                day = min(world.current_step, n_steps - 1)
                daily[aid][day] += dt

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
        for kind in ("LitaAgentHRL", "PenguinAgent"):
            per_call = {name: _stats(calls[kind][name], 1e3) for name in CALLS}
            per_call["all"] = _stats(calls[kind]["first_proposals"] + calls[kind]["counter_all"], 1e3)
            days = [d for aid, k in measured.items() if k == kind for d in daily[aid]]
            per_type[kind] = {"per_call_ms": per_call, "per_day_s": _stats(days, 1.0)}
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
            },
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpu": platform.processor(),
            },
            "agents": per_type,
            "targets": {"per_call_p95_ms": 5.0, "mean_per_day_s": 0.02},
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench/agent_latency.json"))
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--hrl", type=int, default=2, help="LitaAgentHRL instances (as many PenguinAgents)")
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
