"""Where worlds run: an executor seam with a local process-pool backend.

An :class:`Executor` takes tasks (a picklable module-level function and its arguments, under a
unique key) and yields :class:`TaskResult` objects as tasks finish, in completion order. A task
that raises, crashes its worker or runs past its time limit becomes a result with a status, never
an exception in the caller, so one bad world cannot stop a collection run.

Backends: ``"local"`` (:class:`LocalExecutor`, a process pool with per-task time limits and
worker recycling). A Ray backend can be added behind the same interface.
"""

from hrl.distributed.base import Executor, TaskResult, TaskStatus, make_executor
from hrl.distributed.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "TaskResult", "TaskStatus", "make_executor"]
