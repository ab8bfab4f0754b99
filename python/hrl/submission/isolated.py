"""Run Python code in a fresh interpreter that cannot import chosen packages (``hrl`` above all).

The submission is checked the way the league will run it: a subprocess whose working directory
is outside the repository, whose ``PYTHONPATH`` holds only the unpacked submission, and whose
import system refuses the blocked packages (a meta-path finder placed first, so an editable
install of ``hrl`` in the same environment cannot leak in). Everything else installed in this
interpreter's environment (scml, negmas, torch) stays importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BLOCKED_MESSAGE", "run_isolated"]

BLOCKED_MESSAGE = "is blocked: a submission must play without it"
"""Part of the ``ModuleNotFoundError`` message a blocked import raises."""

_PRELUDE = """\
import sys


class _Blocker:
    blocked = frozenset({blocked!r})

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"{{name}} {message}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
"""


def run_isolated(
    code: str,
    *,
    path: Path,
    blocked: Sequence[str],
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with this interpreter in a fresh process; returns the finished process (text
    output captured, never raises on a non-zero exit; raises ``subprocess.TimeoutExpired``).

    Args:
        code: the program (after the blocker is installed).
        path: the only entry of ``PYTHONPATH`` (the folder holding the submission package).
        blocked: top-level package names whose import raises ``ModuleNotFoundError``.
        cwd: working directory (choose one outside the repository).
        timeout: seconds before the process is killed.
        env: extra environment variables (``PYTHONPATH`` and ``HRL_*`` are always replaced).
        args: the program's ``sys.argv[1:]``.
    """
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("HRL_")}
    full_env = base | (env or {}) | {"PYTHONPATH": str(path)}
    prelude = _PRELUDE.format(blocked=sorted(blocked), message=BLOCKED_MESSAGE)
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
