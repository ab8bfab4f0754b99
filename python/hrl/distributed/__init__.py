"""Where worlds run: an executor seam with a local process-pool backend.

An :class:`Executor` takes tasks (a picklable module-level function and its arguments, under a
unique key) and yields :class:`TaskResult` objects as tasks finish, in completion order. A task
that raises, crashes its worker or runs past its time limit becomes a result with a status, never
an exception in the caller, so one bad world cannot stop a collection run.

Backends: ``"local"`` (:class:`LocalExecutor`, a process pool with per-task time limits and
worker recycling) and ``"ray"`` (:class:`RayExecutor`, Ray tasks on a private local instance or
an existing cluster, with time limits, retries of lost workers and a shared object store; Ray is
an optional extra, imported only when this backend is used). :meth:`Executor.share` hands a large
object (policy weights) to many tasks once. See docs/distributed.md.
"""

from hrl.distributed.base import Executor, Shared, TaskResult, TaskStatus, make_executor
from hrl.distributed.local import LocalExecutor
from hrl.distributed.ray_backend import RayExecutor

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "Shared", "TaskResult", "TaskStatus", "make_executor"]
