"""The local backend: a pool of worker processes with per-task time limits and recycling.

Each worker is a separate process fed one task at a time through a pipe. The parent watches every
worker's pipe and process sentinel: a task past its time limit has its worker killed (the task is
recorded as ``timeout``), a worker that dies mid-task is recorded as ``crashed``, and a worker is
replaced after ``max_tasks_per_worker`` tasks. Nothing a task does can block the pool.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from hrl.distributed.base import Executor, TaskResult, check_pool_options
from hrl.errors import ConfigError

__all__ = ["LocalExecutor"]

_POLL_S = 0.25


@dataclass
class _Task:
    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    timeout_s: float | None


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    n_done: int = 0
    task: _Task | None = None
    started: float = field(default=0.0)


def _send(conn: Connection, message: Any) -> None:
    """Send ``message`` pickled by value with the standard pickler.

    ``Connection.send`` uses multiprocessing's pickler, with which torch (once imported) moves
    every tensor through its own shared-memory file, mapped by the receiver: a rollout result of
    a 100-day world holds tens of thousands of small tensors, past the kernel's limit on
    mappings (``vm.max_map_count``, 65,530 here), and the receive failed with ENOMEM. By value,
    a message is one byte string whatever it holds.
    """
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _recv(conn: Connection) -> Any:
    """Receive a message sent by :func:`_send`."""
    return pickle.loads(conn.recv_bytes())


def _worker_main(conn: Connection, max_tasks: int | None) -> None:
    """Worker loop: receive ``(fn, args)``, send ``("ok", value)`` or ``("error", text)``."""
    done = 0
    while max_tasks is None or done < max_tasks:
        try:
            message = _recv(conn)
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException:
            reply = ("error", traceback.format_exc())
        try:
            _send(conn, reply)
        except Exception:
            _send(conn, ("error", traceback.format_exc()))
        done += 1


class LocalExecutor(Executor):
    """A process pool on this machine (see the module docstring).

    Args:
        n_workers: processes running tasks at the same time (>= 1).
        timeout_s: default per-task wall-clock limit in seconds (``None``: no limit).
        max_tasks_per_worker: replace a worker after this many tasks (``None``: never).
        start_method: multiprocessing start method; ``spawn`` (default) gives each worker a
            clean interpreter, safe with the threads scml worlds start.
        worker_env: environment variables set for the worker processes when they start (e.g.
            ``PYTHONHASHSEED``, which only works at interpreter start: needs ``spawn``).
    """

    def __init__(
        self,
        n_workers: int = 1,
        timeout_s: float | None = None,
        max_tasks_per_worker: int | None = 8,
        start_method: str = "spawn",
        worker_env: Mapping[str, str] | None = None,
    ) -> None:
        check_pool_options(n_workers, timeout_s, max_tasks_per_worker)
        self.n_workers = n_workers
        self.timeout_s = timeout_s
        self.max_tasks_per_worker = max_tasks_per_worker
        self.worker_env = dict(worker_env or {})
        self._ctx: Any = mp.get_context(start_method)
        self._pending: deque[_Task] = deque()
        self._keys: set[str] = set()
        self._workers: list[_Worker] = []
        self._n_outstanding = 0
        self.n_workers_started = 0
        """Worker processes started so far (recycled and replaced workers included)."""

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None) -> None:
        if key in self._keys:
            raise ConfigError(f"key: task {key!r} was already submitted")
        self._keys.add(key)
        args = self._unshare(args)
        self._pending.append(_Task(key, fn, args, timeout_s if timeout_s is not None else self.timeout_s))
        self._n_outstanding += 1

    def results(self) -> Iterator[TaskResult]:
        while self._n_outstanding > 0:
            self._dispatch()
            busy = [w for w in self._workers if w.task is not None]
            waitables: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(wait(waitables, timeout=self._wait_time(busy)))
            now = time.monotonic()
            for worker in busy:
                task = worker.task
                assert task is not None
                result: TaskResult | None = None
                if worker.conn in ready:
                    try:
                        status, payload = _recv(worker.conn)
                    except (EOFError, OSError):
                        result = self._lost(worker, task, now, "crashed", self._exit_reason(worker))
                    except Exception:
                        # The reply arrived whole but cannot be rebuilt here: the task's error.
                        status, payload = "error", traceback.format_exc()
                    if result is None:
                        worker.n_done += 1
                        worker.task = None
                        duration = now - worker.started
                        if status == "ok":
                            result = TaskResult(task.key, "ok", value=payload, duration_s=duration)
                        else:
                            result = TaskResult(task.key, "error", error=str(payload), duration_s=duration)
                        if (
                            self.max_tasks_per_worker is not None
                            and worker.n_done >= self.max_tasks_per_worker
                        ):
                            self._retire(worker)
                elif worker.process.sentinel in ready:
                    result = self._lost(worker, task, now, "crashed", self._exit_reason(worker))
                elif task.timeout_s is not None and now - worker.started > task.timeout_s:
                    result = self._lost(worker, task, now, "timeout", f"killed after {task.timeout_s:g} s")
                if result is not None:
                    self._n_outstanding -= 1
                    yield result

    def close(self) -> None:
        for worker in self._workers:
            if worker.task is None and worker.process.is_alive():
                with contextlib.suppress(OSError):
                    _send(worker.conn, None)
        for worker in self._workers:
            worker.process.join(timeout=2.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers.clear()
        self._pending.clear()
        self._n_outstanding = 0

    # -- internals -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._pending:
            idle = next((w for w in self._workers if w.task is None), None)
            if idle is None:
                if len(self._workers) >= self.n_workers:
                    return
                idle = self._start_worker()
            task = self._pending.popleft()
            idle.task, idle.started = task, time.monotonic()
            _send(idle.conn, (task.fn, task.args))

    def _start_worker(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_worker_main, args=(child, self.max_tasks_per_worker), daemon=True)
        saved = {name: os.environ.get(name) for name in self.worker_env}
        os.environ.update(self.worker_env)
        try:
            process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        child.close()
        worker = _Worker(process=process, conn=parent)
        self._workers.append(worker)
        self.n_workers_started += 1
        return worker

    def _wait_time(self, busy: list[_Worker]) -> float:
        deadlines = [
            w.started + w.task.timeout_s for w in busy if w.task is not None and w.task.timeout_s is not None
        ]
        if not deadlines:
            return _POLL_S * 4
        return max(0.0, min(min(deadlines) - time.monotonic(), _POLL_S * 4)) + 0.01

    def _lost(self, worker: _Worker, task: _Task, now: float, status: Any, error: str) -> TaskResult:
        worker.task = None
        self._kill(worker)
        return TaskResult(task.key, status, error=error, duration_s=now - worker.started)

    @staticmethod
    def _exit_reason(worker: _Worker) -> str:
        worker.process.join(timeout=2.0)
        return f"worker exited with code {worker.process.exitcode} before replying"

    def _retire(self, worker: _Worker) -> None:
        worker.process.join(timeout=5.0)
        self._kill(worker)

    def _kill(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.conn.close()
        self._workers.remove(worker)
