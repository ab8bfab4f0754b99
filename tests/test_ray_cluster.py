"""``hrl`` joins an existing cluster started with ``ray start`` (a head on 127.0.0.1 with its own
temp dir), by address and by ``auto``; the head and every process it started are stopped by id."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
import ray

from hrl.distributed import make_executor

RAY_CLI = str(Path(sys.executable).with_name("ray"))

# Ray workers do not have tests/ on their path: send this module's functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def pid_of_task() -> int:
    return os.getpid()


def total(weights: np.ndarray) -> float:
    return float(weights.sum())


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
    return out


def wait_gone(pids: list[int], within_s: float) -> list[int]:
    deadline = time.monotonic() + within_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def kill_by_pid(pids: list[int]) -> None:
    for pid in alive(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def ray_head() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``ray start --head --block`` on 127.0.0.1 (2 CPUs, no dashboard, own temp dir)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="hrlray")  # short: Ray's socket paths live under it
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # loopback only
    env.pop("RAY_ADDRESS", None)
    command = [RAY_CLI, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    command += ["--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"]
    head = subprocess.Popen(
        [*command, "--temp-dir", temp_dir],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in head.stdout or []], daemon=True).start()
    seen: list[str] = []
    descendants: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while not any("Ray runtime started" in line for line in seen):
            assert head.poll() is None and time.monotonic() < deadline, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        yield f"127.0.0.1:{port}", head
        descendants = [p.pid for p in psutil.Process(head.pid).children(recursive=True)]
        assert descendants
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        left = wait_gone(descendants, within_s=15)
        kill_by_pid(left)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not left, f"processes of `ray start` still running: {left}"


def test_joins_a_ray_start_cluster_by_address_and_auto(
    ray_head: tuple[str, subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, head = ray_head
    weights = np.arange(1000, dtype=np.float64)
    with make_executor("ray", n_workers=2, ray_address=address, timeout_s=60) as ex:
        assert ray.get_runtime_context().gcs_address == address
        handle = ex.share(weights)
        for i in range(4):
            ex.submit(f"t{i}", total, handle)
        values = [r.value for r in ex.results()]
    assert values == [float(weights.sum())] * 4
    assert not ray.is_initialized() and head.poll() is None  # disconnected; the cluster runs on
    monkeypatch.setenv("RAY_ADDRESS", address)
    with make_executor("ray", ray_address="auto") as ex:
        ex.submit("pid", pid_of_task)
        (result,) = ex.results()
    assert result.ok and head.poll() is None
    task_process = psutil.Process(result.value) if psutil.pid_exists(result.value) else None
    assert task_process is None or head.pid in {p.pid for p in task_process.parents()}
