"""The executor interface: submit tasks, iterate results as they finish."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from hrl.errors import ConfigError

__all__ = ["Executor", "TaskResult", "TaskStatus", "make_executor"]

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
        duration_s: wall-clock seconds from the start of the task to its result.
    """

    key: str
    status: TaskStatus
    value: Any = None
    error: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the task returned a value."""
        return self.status == "ok"


class Executor(abc.ABC):
    """Runs picklable tasks somewhere and hands back their results as they finish.

    Use as a context manager (``with make_executor(...) as ex:``); ``close`` stops every worker.
    """

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
) -> Executor:
    """Create an executor.

    Args:
        backend: ``"local"`` (a process pool on this machine).
        n_workers: worker processes running tasks at the same time.
        timeout_s: default per-task wall-clock limit in seconds (``None``: no limit).
        max_tasks_per_worker: a worker is replaced after this many tasks (``None``: never), which
            bounds memory leaks from agents and libraries.
    """
    if backend == "local":
        from hrl.distributed.local import LocalExecutor

        return LocalExecutor(
            n_workers=n_workers, timeout_s=timeout_s, max_tasks_per_worker=max_tasks_per_worker
        )
    raise ConfigError(f"backend: unknown executor backend {backend!r} (known: 'local')")
