"""The executor interface: submit tasks, iterate results as they finish."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from hrl.errors import ConfigError

__all__ = ["Executor", "Shared", "TaskResult", "TaskStatus", "check_pool_options", "make_executor"]

BACKENDS = ("local", "ray")

TaskStatus = Literal["ok", "error", "timeout", "crashed"]
"""``ok``: returned a value; ``error``: raised (``error`` holds the traceback text); ``timeout``:
killed after its time limit; ``crashed``: its worker process died (segfault, OOM kill, ...)."""


@dataclass(frozen=True)
class TaskResult:
    """What became of one task.

    Attributes:
        key: the key it was submitted under.
        status: see :data:`TaskStatus`.
        value: the function's return value when ``status == "ok"``, else ``None``.
        error: a description (traceback text for ``error``) when ``status != "ok"``.
        duration_s: wall-clock seconds from the start of the task (of its last attempt) to its
            result.
        attempts: how many times the task was started (> 1 only when a backend retried it after
            losing its worker; the result is still reported once).
    """

    key: str
    status: TaskStatus
    value: Any = None
    error: str | None = None
    duration_s: float = 0.0
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """Whether the task returned a value."""
        return self.status == "ok"


@dataclass(frozen=True, eq=False)
class Shared:
    """A handle to an object shared once with every task of one executor (see :meth:`Executor.share`).

    Pass the handle itself as a positional argument of :meth:`Executor.submit`; the task's function
    receives the object, never the handle. ``ref`` is backend-specific: the object itself for the
    local backend, a Ray ``ObjectRef`` for the Ray backend.
    """

    ref: Any
    owner: int


class Executor(abc.ABC):
    """Runs picklable tasks somewhere and hands back their results as they finish.

    Use as a context manager (``with make_executor(...) as ex:``); ``close`` stops every worker.
    """

    def share(self, obj: Any) -> Shared:
        """Make ``obj`` (e.g. policy weights) available to many tasks; returns a handle to pass to
        :meth:`submit` in place of the object.

        The local backend sends the object with every task that uses it (through the worker's
        pipe); the Ray backend puts it in the object store once (``ray.put``) and every task on a
        node reads the same copy (NumPy arrays arrive zero-copy and read-only).
        """
        return Shared(ref=obj, owner=id(self))

    def _unshare(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """``args`` with every :class:`Shared` handle of this executor replaced by its ``ref``."""
        for arg in args:
            if isinstance(arg, Shared) and arg.owner != id(self):
                raise ConfigError("args: a Shared handle can only be used with the executor that made it")
        return tuple(arg.ref if isinstance(arg, Shared) else arg for arg in args)

    @abc.abstractmethod
    def submit(self, key: str, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None) -> None:
        """Queue ``fn(*args)`` under the unique ``key``; ``timeout_s`` overrides the default limit."""

    @abc.abstractmethod
    def results(self) -> Iterator[TaskResult]:
        """Yield one result per submitted task, in completion order, until all are done."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every worker (running tasks are killed). Safe to call twice."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def make_executor(
    backend: str = "local",
    *,
    n_workers: int = 1,
    timeout_s: float | None = None,
    max_tasks_per_worker: int | None = 8,
    ray_address: str | None = None,
    max_retries: int = 2,
    worker_env: Mapping[str, str] | None = None,
) -> Executor:
    """Create an executor.

    Args:
        backend: ``"local"`` (a process pool on this machine) or ``"ray"`` (Ray tasks; needs the
            ``ray`` extra: ``pip install hrl[ray]``).
        n_workers: tasks running at the same time (local: worker processes; Ray: tasks in flight,
            and the CPUs of a Ray instance started here).
        timeout_s: default per-task wall-clock limit in seconds (``None``: no limit).
        max_tasks_per_worker: a worker is replaced after this many tasks (``None``: never), which
            bounds memory leaks from agents and libraries.
        ray_address: Ray only: ``None`` starts a private Ray instance on this machine (loopback
            only), ``"auto"`` joins the running cluster found from ``RAY_ADDRESS`` or
            ``ray start``, ``"HOST:PORT"`` joins that cluster's head.
        max_retries: Ray only: a task whose worker or node was lost is run again up to this many
            times (the local backend reports such a task as ``crashed``).
        worker_env: environment variables the processes running tasks start with (local: the
            spawned workers; Ray: a per-task ``runtime_env``), e.g. a fixed ``PYTHONHASHSEED`` for
            reproducible worlds.

    Raises:
        ConfigError: unknown backend, Ray options without the Ray backend, or Ray not installed.
    """
    if backend == "local":
        from hrl.distributed.local import LocalExecutor

        if ray_address is not None:
            raise ConfigError("ray_address: only with backend='ray'")
        return LocalExecutor(
            n_workers=n_workers,
            timeout_s=timeout_s,
            max_tasks_per_worker=max_tasks_per_worker,
            worker_env=worker_env,
        )
    if backend == "ray":
        from hrl.distributed.ray_backend import RayExecutor

        return RayExecutor(
            n_workers=n_workers,
            timeout_s=timeout_s,
            max_tasks_per_worker=max_tasks_per_worker,
            ray_address=ray_address,
            max_retries=max_retries,
            worker_env=worker_env,
        )
    raise ConfigError(f"backend: unknown executor backend {backend!r} (known: {', '.join(BACKENDS)})")


def check_pool_options(n_workers: int, timeout_s: float | None, max_tasks_per_worker: int | None) -> None:
    """Validate the options every backend shares.

    Raises:
        ConfigError: ``n_workers < 1``, ``timeout_s <= 0`` or ``max_tasks_per_worker < 1``.
    """
    if n_workers < 1:
        raise ConfigError(f"n_workers: must be >= 1, got {n_workers}")
    if max_tasks_per_worker is not None and max_tasks_per_worker < 1:
        raise ConfigError(f"max_tasks_per_worker: must be >= 1 or None, got {max_tasks_per_worker}")
    if timeout_s is not None and timeout_s <= 0:
        raise ConfigError(f"timeout_s: must be > 0 or None, got {timeout_s}")
