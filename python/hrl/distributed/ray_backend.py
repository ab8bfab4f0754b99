"""The Ray backend: tasks on a private Ray instance on this machine or on an existing cluster.

Each submitted task becomes one Ray task (``num_cpus=1``) running ``fn(*args)`` in a Ray worker
process; at most ``n_workers`` tasks are in flight, the rest wait in the driver. The driver keeps
every rule of the executor interface itself:

- **time limits**: a task running past its limit (counted from the moment the driver hands it to
  Ray) is cancelled with ``ray.cancel(force=True)``, which kills its worker process, and reported
  as ``timeout``. Timeouts are not retried.
- **lost workers**: when a task's worker process or node dies (killed, segfault, OOM, node lost),
  the driver starts the same task again, up to ``max_retries`` times, with a fresh time limit;
  past that it is reported as ``crashed``. Ray's own task retries are off (``max_retries=0``) so
  that the driver knows every attempt. Results are keyed: a task is reported exactly once, and a
  stale attempt (a lost or cancelled one) can never produce a second result.
- **errors**: an exception in ``fn`` comes back as ``error`` with its traceback text.
- **shared objects**: :meth:`RayExecutor.share` puts an object in the object store once
  (``ray.put``); tasks receive the object itself, read from their node's store.
- **worker recycling**: ``max_tasks_per_worker`` is Ray's ``max_calls``: a worker process exits
  after that many tasks.
- **worker environment**: ``worker_env`` becomes each task's ``runtime_env={"env_vars": ...}``,
  so Ray starts the task's worker process with those variables (``PYTHONHASHSEED`` included).

``ray_address=None`` starts a private instance (``ray.init(address="local")`` with
``num_cpus=n_workers`` and no dashboard) whose every process listens on 127.0.0.1 only, and
stops it on :meth:`close`. ``"auto"`` or ``"HOST:PORT"`` joins an existing cluster; :meth:`close`
then only disconnects. If Ray is already initialised in this process, that connection is used
and left open. Ray is imported when an executor is created, never at module import, so the rest
of ``hrl`` works without it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hrl.distributed.base import Executor, Shared, TaskResult, TaskStatus, check_pool_options
from hrl.errors import ConfigError

__all__ = ["RayExecutor", "import_ray"]

_POLL_S = 1.0
_CANCEL_GRACE_S = 10.0
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ConfigError(
            "backend: the 'ray' backend needs Ray: pip install 'hrl[ray]' (or pip install ray)"
        ) from error
    return ray


def _run_task(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """Body of every Ray task: ``("ok", value)`` or ``("error", traceback text)``."""
    try:
        return "ok", fn(*args)
    except BaseException:
        return "error", traceback.format_exc()


@dataclass
class _Task:
    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    timeout_s: float | None
    attempts: int = 0
    started: float = 0.0
    lost: str = ""


def _is_loopback(address: str | None) -> bool:
    if address is None:
        return True
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS")
        if not address or address in ("auto", "local"):
            return False
        address = address.removeprefix("ray://")
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_address(address: str | None) -> None:
    if address is None or address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"ray_address: 'auto' or 'HOST:PORT', got {address!r}")


@contextlib.contextmanager
def _loopback_only(ray: Any) -> Iterator[None]:
    """While Ray starts or connects, make it take 127.0.0.1 as this node's address.

    Ray's servers listen on 127.0.0.1 only when the node address is 127.0.0.1, but Ray replaces
    a loopback ``node_ip_address`` by the machine's routable address unless its "no cluster"
    switch (an environment variable read into ``ray._private.ray_constants``) is off. The switch
    is set for the processes Ray spawns (through the environment) and for this driver, then
    restored; ``tests/test_ray.py`` checks that every listening socket is on loopback.
    """
    constants = ray._private.ray_constants
    old_env, old_flag = os.environ.get(_LOOPBACK_ENV), constants.ENABLE_RAY_CLUSTER
    os.environ[_LOOPBACK_ENV] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(_LOOPBACK_ENV, None)
        else:
            os.environ[_LOOPBACK_ENV] = old_env


class RayExecutor(Executor):
    """Ray tasks behind the executor interface (see the module docstring).

    Args:
        n_workers: tasks in flight at once (>= 1); also the CPUs of a private instance.
        timeout_s: default per-task wall-clock limit in seconds (``None``: no limit).
        max_tasks_per_worker: a Ray worker process exits after this many tasks (``None``: never).
        ray_address: ``None`` (private local instance, loopback only), ``"auto"`` or
            ``"HOST:PORT"`` (an existing cluster's head; a loopback host keeps this driver on
            loopback too).
        max_retries: runs of a task after its worker or node was lost (>= 0).
        worker_env: environment variables Ray's worker processes for these tasks start with.

    Raises:
        ConfigError: bad arguments, or Ray is not installed.
    """

    def __init__(
        self,
        n_workers: int = 1,
        timeout_s: float | None = None,
        max_tasks_per_worker: int | None = None,
        ray_address: str | None = None,
        max_retries: int = 2,
        worker_env: Mapping[str, str] | None = None,
    ) -> None:
        check_pool_options(n_workers, timeout_s, max_tasks_per_worker)
        if max_retries < 0:
            raise ConfigError(f"max_retries: must be >= 0, got {max_retries}")
        _check_address(ray_address)
        ray = import_ray()
        self.n_workers = n_workers
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.ray_address = ray_address
        self._ray = ray
        self._lost_errors: tuple[type[BaseException], ...] = tuple(
            getattr(ray.exceptions, name)
            for name in (
                "WorkerCrashedError",
                "NodeDiedError",
                "ObjectLostError",
                "OutOfMemoryError",
                "LocalRayletDiedError",
            )
            if hasattr(ray.exceptions, name)
        )
        self._connected_here = not ray.is_initialized()
        if self._connected_here:
            init_kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            if ray_address is None:
                init_kwargs |= {"address": "local", "num_cpus": n_workers, "num_gpus": 0}
            else:
                init_kwargs["address"] = ray_address
            try:
                if _is_loopback(ray_address):
                    with _loopback_only(ray):
                        ray.init(**init_kwargs)
                else:
                    ray.init(**init_kwargs)
            except Exception as error:  # Ray raises plain Exception for a start-up timeout
                with contextlib.suppress(Exception):
                    ray.shutdown()  # stop whatever part of a private instance did start
                where = "a private Ray instance" if ray_address is None else f"Ray at {ray_address!r}"
                raise ConfigError(f"ray_address: cannot start or join {where}: {error}") from error
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0, "max_calls": max_tasks_per_worker or 0}
        if worker_env:
            options["runtime_env"] = {"env_vars": dict(worker_env)}
        self._remote: Any = ray.remote(**options)(_run_task)
        self._pending: deque[_Task] = deque()
        self._keys: set[str] = set()
        self._running: dict[Any, _Task] = {}
        self._cancelling: dict[Any, float] = {}
        self._shared: list[Shared] = []
        self._n_outstanding = 0
        self._closed = False
        self.n_attempts = 0
        """Ray tasks started so far (retries included)."""

    # -- the interface -----------------------------------------------------------------------

    def share(self, obj: Any) -> Shared:
        handle = Shared(ref=self._ray.put(obj), owner=id(self))
        self._shared.append(handle)
        return handle

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None) -> None:
        if self._closed:
            raise ConfigError("executor: already closed")
        if key in self._keys:
            raise ConfigError(f"key: task {key!r} was already submitted")
        args = self._unshare(args)
        self._keys.add(key)
        self._pending.append(_Task(key, fn, args, timeout_s if timeout_s is not None else self.timeout_s))
        self._n_outstanding += 1

    def results(self) -> Iterator[TaskResult]:
        ray = self._ray
        while self._n_outstanding > 0:
            self._dispatch()
            refs = [*self._running, *self._cancelling]
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._wait_time())
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            now = time.monotonic()
            for ref in ready:
                if self._cancelling.pop(ref, None) is not None:
                    with contextlib.suppress(Exception):
                        ray.get(ref)
                    continue
                task = self._running.pop(ref)
                result = self._finish(ref, task, now)
                if result is not None:
                    self._n_outstanding -= 1
                    yield result
            for ref, task in list(self._running.items()):
                if task.timeout_s is not None and now - task.started > task.timeout_s:
                    del self._running[ref]
                    ray.cancel(ref, force=True)
                    self._cancelling[ref] = now + _CANCEL_GRACE_S
                    self._n_outstanding -= 1
                    yield TaskResult(
                        task.key,
                        "timeout",
                        error=f"killed after {task.timeout_s:g} s",
                        duration_s=now - task.started,
                        attempts=task.attempts,
                    )
            for ref, give_up_at in list(self._cancelling.items()):
                if now > give_up_at:
                    del self._cancelling[ref]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        for ref in [*self._running, *self._cancelling]:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self._running.clear()
        self._cancelling.clear()
        self._pending.clear()
        self._shared.clear()
        self._n_outstanding = 0
        if self._connected_here and ray.is_initialized():
            ray.shutdown()

    # -- internals -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._pending and len(self._running) + len(self._cancelling) < self.n_workers:
            task = self._pending.popleft()
            task.attempts += 1
            task.started = time.monotonic()
            ref = self._remote.options(name=f"hrl:{task.key}").remote(task.fn, *task.args)
            self._running[ref] = task
            self.n_attempts += 1

    def _finish(self, ref: Any, task: _Task, now: float) -> TaskResult | None:
        """The result of a finished attempt, or ``None`` when the task was queued again."""
        ray = self._ray
        duration = now - task.started
        status: TaskStatus
        try:
            status, payload = ray.get(ref)
        except self._lost_errors as error:
            task.lost = f"{type(error).__name__}: {error}"
            if task.attempts <= self.max_retries:
                self._pending.appendleft(task)
                return None
            return TaskResult(
                task.key,
                "crashed",
                error=f"worker lost {task.attempts} time(s); last: {task.lost}",
                duration_s=duration,
                attempts=task.attempts,
            )
        except ray.exceptions.RayTaskError as error:  # e.g. the function could not be unpickled
            return TaskResult(
                task.key, "error", error=str(error), duration_s=duration, attempts=task.attempts
            )
        except ray.exceptions.RayError as error:
            return TaskResult(
                task.key,
                "crashed",
                error=f"{type(error).__name__}: {error}",
                duration_s=duration,
                attempts=task.attempts,
            )
        if status == "ok":
            return TaskResult(task.key, "ok", value=payload, duration_s=duration, attempts=task.attempts)
        return TaskResult(task.key, "error", error=str(payload), duration_s=duration, attempts=task.attempts)

    def _wait_time(self) -> float:
        deadlines = [t.started + t.timeout_s for t in self._running.values() if t.timeout_s is not None]
        if not deadlines:
            return _POLL_S
        return max(0.0, min(min(deadlines) - time.monotonic(), _POLL_S)) + 0.01
