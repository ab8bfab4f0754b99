"""A 20-day SCML 2025 Standard world with a submitted agent, against PenguinAgent and built-ins.

Not a test module: ``tests/test_submission.py`` runs this file's text in a fresh interpreter
whose ``PYTHONPATH`` holds only the unpacked submission and where ``hrl`` cannot be imported
(``hrl.submission.isolated``). Arguments: the package, the class name, the number of days. Prints
one JSON line: whether ``hrl`` imported, the agents' scores and types, the world's exception
counts, the submitted agents' per-call latency and fallback state, and the log's warnings.
"""

import importlib
import io
import json
import logging
import sys
import time

package, name, n_steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
warnings = io.StringIO()
logging.basicConfig(stream=warnings, level=logging.WARNING, format="%(name)s: %(message)s")
try:
    import hrl  # noqa: F401

    hrl_importable = True
except ImportError:
    hrl_importable = False

from scml.std import SCML2024StdWorld  # noqa: E402
from scml.std.agents import GreedyStdAgent, RandomStdAgent, SyncRandomStdAgent  # noqa: E402
from scml_agents.scml2024.standard.team_penguin import PenguinAgent  # noqa: E402

submitted = getattr(importlib.import_module(package), name)
types = [submitted, PenguinAgent, GreedyStdAgent, RandomStdAgent, submitted, PenguinAgent, SyncRandomStdAgent]
config = SCML2024StdWorld.generate(
    agent_types=types, agent_processes=[0, 0, 0, 0, 1, 1, 1], n_steps=n_steps, n_processes=2
)
world = SCML2024StdWorld(**config, name="submission-check")
calls: list[float] = []
ours = []


def timed(method):
    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            calls.append(time.perf_counter() - start)

    return call


for aid, adapter in world.agents.items():
    inner = getattr(adapter, "_obj", None)
    if isinstance(inner, submitted):
        ours.append((aid, inner))
        for method in ("first_proposals", "counter_all"):
            setattr(inner, method, timed(getattr(inner, method)))
start = time.perf_counter()
world.run()
logs = (
    world.agent_exceptions,
    world.negotiator_exceptions,
    world.mechanism_exceptions,
    world.contract_exceptions,
    world.simulation_exceptions,
)
scores = world.scores()
calls.sort()
print(
    json.dumps(
        {
            "hrl_importable": hrl_importable,
            "world_s": time.perf_counter() - start,
            "scores": scores,
            "types": {aid: type(getattr(a, "_obj", a)).__name__ for aid, a in world.agents.items()},
            "ours": [aid for aid, _ in ours],
            "fallback": {aid: agent.fallback_reason for aid, agent in ours},
            "policy": {aid: agent.policy is not None for aid, agent in ours},
            "exceptions": sum(len(v) for log in logs for v in log.values()),
            "calls": len(calls),
            "p95_ms": 1e3 * calls[int(0.95 * (len(calls) - 1))] if calls else None,
            "max_ms": 1e3 * calls[-1] if calls else None,
            "warnings": warnings.getvalue().splitlines(),
        }
    )
)
