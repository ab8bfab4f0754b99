"""Collects throughputs from the benchmarks and prints ratios against the baselines."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from hrl.io import atomic_write_json

_RESULTS: dict[str, dict[str, float]] = defaultdict(dict)


@pytest.fixture(scope="session")
def gae_results() -> dict[str, dict[str, float]]:
    """Shape -> implementation -> elements per second (median), filled by the benchmarks."""
    return _RESULTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    summary = {}
    terminalreporter.section("GAE throughput (median, elements/s) and ratios")
    for shape, by_impl in _RESULTS.items():
        rust = by_impl.get("rust")
        row = {name: {"elements_per_s": rate} for name, rate in by_impl.items()}
        for name, rate in by_impl.items():
            ratio = f"  rust/{name} = {rust / rate:8.1f}x" if rust and name != "rust" else ""
            terminalreporter.write_line(f"{shape:>10} {name:>11}: {rate / 1e6:10.1f} M/s{ratio}")
            if rust and name != "rust":
                row[name]["rust_speedup"] = rust / rate
        summary[shape] = row
    atomic_write_json("runs/bench/gae_summary.json", summary)
