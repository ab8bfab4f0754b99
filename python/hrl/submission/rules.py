"""The SCML Standard league's submission rules that are known, checked on a built folder.

Each check returns a :class:`RuleCheck` with its source; ``docs/submission.md`` lists the rules,
where each comes from, and which are not published (those are our own conservative choices and
say so). Checked:

- ``agent_class``: the agent class imports as ``package.ClassName`` in a fresh interpreter where
  ``hrl`` and ``scml_agents`` cannot be imported, and subclasses ``scml.std.StdAgent``;
- ``dependencies``: every module-level import of the folder's code is the standard library, the
  folder's own package, or one of :data:`ALLOWED` (pinned in ``requirements.txt``), and there are
  no compiled files; imports inside functions outside that set are listed (they sit on paths the
  playing agent does not take: log replay, tracked self-play);
- ``scml_version``: the pinned scml is a version whose behaviour L1 was verified on and the one
  the build ran with;
- ``size``: the folder stays within :data:`SIZE_BUDGET` (no published limit was found: ours);
- ``time_limits`` (info): the limits the league's scml runs Standard worlds with, recorded; the
  agent's per-call latency against them is measured by the no-repository play test.
"""

from __future__ import annotations

import ast
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["ALLOWED", "SIZE_BUDGET", "RuleCheck", "check_folder", "league_time_limits"]

ALLOWED = ("negmas", "numpy", "scml", "torch")
"""Third-party packages a submission may import (all pinned in its ``requirements.txt``)."""

SIZE_BUDGET = 50 * 2**20
"""Bytes the submission folder may hold. No size limit is published for SCML submissions (see
docs/submission.md); 50 MiB is our own budget, far above what the agent needs (< 2 MiB)."""

SOURCES = {
    "agent_class": "scml.cs.brown.edu/scml (the Standard skeleton is a scml.std agent class); "
    "scml 0.8.4 scml/std/agent.py",
    "dependencies": "anac.cs.brown.edu/scml (2026: a requirements submission is due with the report); "
    "no list of allowed packages is published",
    "scml_version": "scml 0.8.4 = the version this project's L1 was verified on "
    "(hrl.safety.world_model.VERIFIED_SCML_VERSIONS)",
    "size": "not published; our own budget (hrl.submission.rules.SIZE_BUDGET)",
    "time_limits": "scml 0.8.4 scml/utils.py (anac2024_std world settings)",
}
"""Where each rule comes from (also in docs/submission.md)."""


@dataclass(frozen=True)
class RuleCheck:
    """One rule's result: ``status`` is ``pass``, ``fail`` or ``info`` (recorded, not judged)."""

    rule: str
    status: Literal["pass", "fail", "info"]
    detail: str
    source: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for MANIFEST.json."""
        return asdict(self)


def league_time_limits() -> dict[str, float]:
    """The limits scml's ANAC Standard worlds run with (read off the installed scml): seconds per
    world, per negotiation, per negotiation round, and rounds per negotiation."""
    from scml import utils

    return {
        "world_s": float(utils.ONESHOT_TIMEOUT),
        "negotiation_s": float(utils.ONESHOT_NEG_TIMEOUT),
        "round_s": float(utils.NEG_STEP_TIME_LIMIT),
        "rounds": 20.0,
    }


def _check(rule: str, ok: bool, detail: str) -> RuleCheck:
    return RuleCheck(rule, "pass" if ok else "fail", detail, SOURCES[rule])


_CLASS_PROBE = """
import importlib, json
import scml
from scml.std import StdAgent
cls = getattr(importlib.import_module({package!r}), {name!r})
try:
    import hrl  # noqa: F401
    hrl_importable = True
except ImportError:
    hrl_importable = False
print(json.dumps({{"std_agent": issubclass(cls, StdAgent), "module": cls.__module__,
                   "scml": scml.__version__, "hrl_importable": hrl_importable}}))
"""


def _agent_class(root: Path, package: str, name: str) -> RuleCheck:
    from hrl.submission.isolated import run_isolated

    with tempfile.TemporaryDirectory() as cwd:
        done = run_isolated(
            _CLASS_PROBE.format(package=package, name=name),
            path=root,
            blocked=("hrl", "scml_agents"),
            cwd=Path(cwd),
            timeout=300,
        )
    if done.returncode != 0:
        return _check("agent_class", False, f"{package}.{name} does not import: {done.stderr.strip()[-800:]}")
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    ok = probe["std_agent"] and not probe["hrl_importable"]
    detail = (
        f"{package}.{name} imports without hrl and scml_agents (scml {probe['scml']}); "
        f"StdAgent subclass: {probe['std_agent']}"
    )
    return _check("agent_class", ok, detail)


def _roots(nodes: Sequence[ast.stmt]) -> set[str]:
    roots: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                roots |= {a.name.partition(".")[0] for a in sub.names}
            elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
                roots.add(sub.module.partition(".")[0])
    return roots


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """Top-level packages a file imports: ``(at module level, inside functions or classes)``;
    ``if TYPE_CHECKING`` blocks are skipped (never run)."""
    body = [
        n
        for n in ast.parse(path.read_text()).body
        if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))
    ]
    defs = [n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    return _roots([n for n in body if n not in defs]), _roots(defs)


def _requirement_names(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            names.add(line.split("==")[0].strip().lower())
    return names


def _dependencies(folder: Path, package: str) -> RuleCheck:
    allowed = set(ALLOWED) | set(sys.stdlib_module_names) | {package, "__future__"}
    foreign: dict[str, list[str]] = {}
    lazy: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        eager, inner = _imports(path)
        for root in sorted(eager - allowed):
            foreign.setdefault(root, []).append(str(path.relative_to(folder)))
        for root in sorted(inner - allowed - eager):
            lazy.setdefault(root, []).append(str(path.relative_to(folder)))
    compiled = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in (".so", ".pyd", ".dll")
    )
    pinned = _requirement_names(folder / "requirements.txt")
    problems = []
    if foreign:
        problems.append(f"imports outside {list(ALLOWED)} and the standard library: {foreign}")
    if compiled:
        problems.append(f"compiled files: {compiled}")
    if pinned != set(ALLOWED):
        problems.append(f"requirements.txt pins {sorted(pinned)}, expected {sorted(ALLOWED)}")
    detail = "; ".join(problems) or f"only the standard library and {list(ALLOWED)}; no compiled files"
    if lazy:
        detail += (
            f"; imported inside functions the agent does not call in play (log replay, tracking): {lazy}"
        )
    return _check("dependencies", not problems, detail)


def _scml_version(folder: Path) -> RuleCheck:
    import scml

    from hrl.safety.world_model import VERIFIED_SCML_VERSIONS

    pins = {}
    for line in (folder / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            pkg, version = line.split("==", 1)
            pins[pkg.strip().lower()] = version.strip()
    pinned = pins.get("scml")
    ok = pinned in VERIFIED_SCML_VERSIONS and pinned == scml.__version__
    return _check("scml_version", ok, f"pinned scml=={pinned}; built with {scml.__version__}")


def _size(folder: Path) -> RuleCheck:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return _check(
        "size", total <= SIZE_BUDGET, f"{total / 2**20:.2f} MiB (budget {SIZE_BUDGET / 2**20:.0f} MiB)"
    )


def _time_limits() -> RuleCheck:
    limits = league_time_limits()
    detail = (
        f"{limits['world_s']:.0f} s per world, {limits['negotiation_s']:.0f} s per negotiation, "
        f"{limits['round_s']:.0f} s per round, {limits['rounds']:.0f} rounds; measured by the "
        "no-repository play test (tests/test_submission.py)"
    )
    return RuleCheck("time_limits", "info", detail, SOURCES["time_limits"])


def check_folder(folder: Path, *, package: str, name: str) -> list[RuleCheck]:
    """Every known rule on the submission package directory ``folder`` (its parent goes on the
    path of the import check), in the order of the module docs."""
    return [
        _agent_class(folder.parent, package, name),
        _dependencies(folder, package),
        _scml_version(folder),
        _size(folder),
        _time_limits(),
    ]
