"""Run the rollout (or validation) worlds of one update and account for every failure.

:func:`run_worlds` runs the tasks inline (``workers = 0``) or through :mod:`hrl.distributed`
and returns the finished results AND one :class:`WorldFailure` per world that raised, crashed or
timed out (each also logged as a warning with its error). :func:`check_failures` raises
:class:`~hrl.errors.RolloutError` when more than the configured share of the worlds failed (or
none finished), so a broken rollout stops the run with the errors in the message instead of
training on a silently shrunken batch.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from hrl.errors import RolloutError
from hrl.train.rollout import RolloutResult, RolloutTask, run_rollout

__all__ = ["WorldFailure", "check_failures", "run_worlds"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorldFailure:
    """One world that did not finish: ``phase`` (``"rollout"`` / ``"validation"``), ``update``
    (1-based update it belonged to), ``name``, ``status`` (``error``, ``timeout``, ``crashed``)
    and ``error`` (the traceback or reason)."""

    phase: str
    update: int
    name: str
    status: str
    error: str

    @property
    def summary(self) -> str:
        """The last line of the error (the exception itself)."""
        lines = [line for line in self.error.strip().splitlines() if line.strip()]
        return lines[-1] if lines else self.status


def _run_rollout_in_worker(task: RolloutTask, bundles: dict[str, bytes]) -> RolloutResult:
    """:func:`run_rollout` in a worker process (local or Ray).

    ``bundles`` maps the task's bundle paths (the learners' bundle and the frozen snapshots) to
    their bytes, shared once per update through the executor (:meth:`Executor.share`: the Ray
    object store, or plain arguments locally); the worker writes them to its own temp folder, so
    rollouts also run on machines that cannot see the driver's files. Its result carries many
    small tensors; torch's default fd-passing strategy runs out of descriptors sending them
    ("received 0 items of ancdata"), so the worker (the sender) shares them through files.
    """
    torch.multiprocessing.set_sharing_strategy("file_system")  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(prefix="hrl-rollout-") as folder:
        local = {}
        for i, (path, data) in enumerate(sorted(bundles.items())):
            local[path] = str(Path(folder) / f"bundle{i}.pt")
            Path(local[path]).write_bytes(data)
        task = dataclasses.replace(
            task,
            bundle_path=local[task.bundle_path],
            snapshots=tuple(local[s] for s in task.snapshots),
        )
        return run_rollout(task)


def run_worlds(
    tasks: Sequence[RolloutTask],
    *,
    phase: str,
    update: int,
    workers: int,
    backend: str = "local",
    ray_address: str | None = None,
    timeout_s: float | None = None,
) -> tuple[list[RolloutResult], list[WorldFailure]]:
    """Run ``tasks``; returns the finished results (in task order) and the failures."""
    results: dict[str, RolloutResult] = {}
    failures: list[WorldFailure] = []
    if workers == 0:
        for t in tasks:
            try:
                results[t.name] = run_rollout(t)
            except Exception:
                failures.append(WorldFailure(phase, update, t.name, "error", traceback.format_exc()))
    else:
        from hrl.data.collect import WORKER_ENV
        from hrl.distributed import make_executor

        paths = {p for t in tasks for p in (t.bundle_path, *t.snapshots)}
        with make_executor(
            backend, n_workers=workers, timeout_s=timeout_s, ray_address=ray_address, worker_env=WORKER_ENV
        ) as ex:
            bundles = ex.share({p: Path(p).read_bytes() for p in paths})  # once per update
            for t in tasks:
                ex.submit(t.name, _run_rollout_in_worker, t, bundles)
            for r in ex.results():
                if r.ok:
                    results[r.key] = r.value
                else:
                    failures.append(WorldFailure(phase, update, r.key, r.status, r.error or r.status))
    for f in failures:
        log.warning("%s world %s (update %d) failed [%s]: %s", f.phase, f.name, f.update, f.status, f.summary)
    return [results[t.name] for t in tasks if t.name in results], failures


def check_failures(failures: Sequence[WorldFailure], total: int, max_share: float, phase: str) -> None:
    """Raise :class:`RolloutError` when more than ``max_share`` of ``total`` worlds failed, or
    when every world failed."""
    if not failures or (len(failures) <= max_share * total and len(failures) < total):
        return
    listed = "; ".join(f"{f.name} [{f.status}]: {f.summary}" for f in failures[:5])
    raise RolloutError(
        f"{phase}: {len(failures)} of {total} worlds failed (more than the allowed share "
        f"{max_share:g}): {listed}",
        phase=phase,
        failed=tuple((f.name, f.error) for f in failures),
        total=total,
    )
