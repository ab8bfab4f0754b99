"""The minimal copy of ``hrl`` a submission plays with, vendored under a private package name.

:data:`MODULES` lists the modules ``LitaAgentHRL`` imports to play (the agent, L1 with its
pure-Python fallback, the models, the bundle loader and what they need); :func:`vendor` copies
them from this installed package and rewrites every ``hrl.`` import to the private name, so the
copy never imports ``hrl`` (nor the compiled ``hrl._core``: the copy's L1 runs on
:mod:`hrl.safety.fallback`). Package ``__init__`` files whose original pulls in training code are
written as :data:`LEAN_INITS` instead. ``tests/test_submission.py`` checks that every module-level
``hrl`` import of the copied modules stays inside the list, and plays the copy without ``hrl``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

__all__ = ["LEAN_INITS", "MODULES", "hrl_imports", "vendor"]

SOURCE = Path(__file__).resolve().parents[1]
"""The ``hrl`` package directory the modules are copied from."""

MODULES = (
    "errors.py",
    "config.py",
    "features.py",
    "io.py",
    "seeding.py",
    "safety/__init__.py",
    "safety/backend.py",
    "safety/baseline.py",
    "safety/fallback.py",
    "safety/mask.py",
    "safety/replay.py",
    "safety/state.py",
    "safety/world_model.py",
    "models/__init__.py",
    "models/box.py",
    "models/checks.py",
    "models/distributions.py",
    "models/l2.py",
    "models/l3.py",
    "models/l4.py",
    "models/normalise.py",
    "models/numpy_play.py",
    "train/bundle.py",
    "train/checkpoint.py",
    "agent/__init__.py",
    "agent/hrl.py",
    "agent/l1.py",
    "agent/policy.py",
    "agent/transitions.py",
)
"""Paths (relative to the ``hrl`` package) of the modules the playing agent needs."""

LEAN_INITS = {
    "__init__.py": '"""The parts of hrl that LitaAgentHRL plays with, copied (see ../README.md)."""\n',
    "train/__init__.py": '"""The bundle loader of hrl.train (the training code is not shipped)."""\n',
}
"""Package ``__init__`` files written instead of copied (the originals import training code)."""

_PREFIX = re.compile(r"(?<![\w./])hrl(?=\.[A-Za-z_])")
_FROM_ROOT = re.compile(r"\bfrom hrl import\b")


def _rewrite(text: str, package: str) -> str:
    return _FROM_ROOT.sub(f"from {package} import", _PREFIX.sub(package, text))


def vendor(dest: Path, package: str) -> list[Path]:
    """Copy :data:`MODULES` (imports rewritten to ``package``) and :data:`LEAN_INITS` into
    ``dest`` (the private package's directory); returns the files written."""
    written = []
    for rel in MODULES:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_rewrite((SOURCE / rel).read_text(), package))
        written.append(target)
    for rel, text in LEAN_INITS.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


def hrl_imports(path: Path) -> set[str]:
    """The ``hrl`` modules a source file imports at module level, outside ``if TYPE_CHECKING``
    (function-level imports are lazy: paths the playing agent does not take)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hrl":
            found |= (
                {f"{node.module}.{a.name}" for a in node.names} if node.module == "hrl" else {node.module}
            )
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "hrl"}
    return found
