"""The agents ``hrl`` plays against, named by import path, and how to load them.

The Standard-track agents come from the ``scml-agents`` package, installed without its declared
dependencies (``pip install --no-deps scml-agents==0.5.2``; none of these agents imports
tensorflow, xgboost or stable-baselines3). Paths name the defining module so that a path is
also what shows up in logs and manifests.

An *agent spec* is an import path, optionally followed by a JSON object of keyword arguments
for the agent's constructor: ``hrl.agent.l1.LitaAgentL1{"baseline_options": {"productivity":
0.9}}`` (:func:`split_agent_spec`). Worlds (:class:`hrl.worlds.WorldSpec`), and so the
candidates of ``hrl compare``, take specs wherever they take paths, so variants of one class can
play side by side.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from scml.oneshot import OneShotAgent

from hrl.errors import ConfigError

__all__ = [
    "BUILTINS",
    "DEFAULT_OPPONENTS",
    "FINALISTS_2024",
    "FINALISTS_2025",
    "PENGUIN",
    "QUALIFIED_2025",
    "agent_name",
    "load_agent_class",
    "split_agent_spec",
]

PENGUIN = "scml_agents.scml2024.standard.team_penguin.penguinagent.PenguinAgent"
"""PenguinAgent, winner of SCML 2024 Standard: the expert L1 is distilled from."""

FINALISTS_2025 = (
    "scml_agents.scml2025.standard.team_atsunaga.as0.AS0",
    "scml_agents.scml2025.standard.team_253.master_sota_agent.XenoSotaAgent",
    "scml_agents.scml2025.standard.team_254.ultra.UltraSuperMiracleSoraFinalAgentZ",
    "scml_agents.scml2025.standard.team_280.price_trend.PriceTrendStdAgent",
)
"""The four SCML 2025 Standard finalists (the first three are the winners)."""

QUALIFIED_2025 = (
    "scml_agents.scml2025.standard.team_255.myagent.PonponAgent",
    "scml_agents.scml2025.standard.team_268.katsudon_agent.KATSUDONAgent",
    "scml_agents.scml2025.standard.team_276.litaagent_std.litaagent_yr.LitaAgentYR",
)
"""SCML 2025 Standard agents that qualified but did not reach the final."""

FINALISTS_2024 = (
    PENGUIN,
    "scml_agents.scml2024.standard.team_miyajima_std.cautious.CautiousStdAgent",
    "scml_agents.scml2024.standard.team_181.dogagent.DogAgent",
    "scml_agents.scml2024.standard.team_178.ax.AX",
    "scml_agents.scml2024.standard.teamyuzuru.quick_decision_agent.QuickDecisionAgent",
)
"""The SCML 2024 Standard finalists."""

BUILTINS = (
    "scml.std.agents.rand.RandomStdAgent",
    "scml.std.agents.rand.SyncRandomStdAgent",
    "scml.std.agents.greedy.GreedyStdAgent",
)
"""scml's own Standard agents (the default fillers of official tournaments)."""

DEFAULT_OPPONENTS = (PENGUIN, *FINALISTS_2025, *QUALIFIED_2025[:2], *BUILTINS)
"""The default field: Penguin, the 2025 finalists, PonponAgent, KATSUDONAgent and the built-ins."""


def split_agent_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"package.module.Class"`` -> ``(path, {})``; ``'package.module.Class{"k": 1}'`` ->
    ``(path, {"k": 1})``: the import path and the constructor's keyword arguments.

    Raises:
        ConfigError: the part from the first ``{`` on is not a JSON object.
    """
    brace = spec.find("{")
    if brace < 0:
        return spec.strip(), {}
    path, text = spec[:brace].strip(), spec[brace:]
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"agent {spec!r}: the keyword arguments after the path are not JSON: {error}"
        ) from error
    if not isinstance(params, dict):
        raise ConfigError(f"agent {spec!r}: the keyword arguments must be a JSON object, got {text!r}")
    return path, params


def load_agent_class(path: str) -> type[OneShotAgent]:
    """Import ``package.module.ClassName`` and check that it is an agent a Standard world can run.

    That is an ``scml.std.StdAgent`` or, like the 2024 finalist QuickDecisionAgent, an
    ``scml.oneshot.OneShotAgent`` (``StdAgent``'s base; the world wraps both in the same adapter).
    ``path`` may be an agent spec (:func:`split_agent_spec`); its keyword arguments are ignored.

    Raises:
        ConfigError: the path is malformed, cannot be imported, or does not name such a class.
    """
    path = split_agent_spec(path)[0]
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ConfigError(f"agent {path!r}: expected an import path like 'package.module.ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        hint = (
            " (install it with `pip install --no-deps scml-agents==0.5.2`)" if "scml_agents" in path else ""
        )
        raise ConfigError(f"agent {path!r}: cannot import {module_name!r}: {error}{hint}") from error
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, OneShotAgent)):
        raise ConfigError(
            f"agent {path!r}: {class_name!r} is not an SCML agent class (StdAgent/OneShotAgent)"
        )
    return cls


def agent_name(path: str) -> str:
    """The class name at the end of an import path or agent spec (``...PenguinAgent`` ->
    ``PenguinAgent``)."""
    return split_agent_spec(path)[0].rpartition(".")[2]
