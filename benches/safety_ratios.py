"""Prints the L1 benchmark ratios from a pytest-benchmark JSON file (see test_safety_bench.py).

Per round-step size: Rust's and the pure-Python fallback's median and p95 per call (p95 from the
raw timings, written with ``--benchmark-save-data``; the median stands in without them) and the
fallback / Rust ratio of each.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np


def _us(stats: dict[str, Any]) -> tuple[float, float]:
    """(median, p95) in microseconds per call."""
    data = stats.get("data")
    p95 = float(np.percentile(data, 95)) if data else stats["median"]
    return stats["median"] * 1e6, p95 * 1e6


def main(path: str) -> None:
    with open(path) as handle:
        benches = json.load(handle)["benchmarks"]
    by_name = {b["name"]: b["stats"] for b in benches}
    print(
        f"{'round step':<22}{'rust p50/p95 [us]':>19}{'rust+lists':>12}{'python p50/p95 [us]':>21}"
        f"{'ratio p50/p95':>15}"
    )
    for size in ("10-5", "10-30", "40-5", "40-30"):
        rust = _us(by_name[f"test_round_step_rust[{size}]"])
        lists = _us(by_name[f"test_round_step_rust_from_lists[{size}]"])[0]
        py = _us(by_name[f"test_round_step_python[{size}]"])
        h, o = size.split("-")
        print(
            f"horizon {h:>2}, {o:>2} offers  {rust[0]:>8.2f} /{rust[1]:>8.2f}{lists:>12.2f}"
            f"{py[0]:>10.1f} /{py[1]:>8.1f}{py[0] / rust[0]:>8.1f}x /{py[1] / rust[1]:>5.1f}x"
        )
    one_rust = by_name["test_single_offer_rust"]["median"] * 1e9
    one_py = by_name["test_single_offer_python"]["median"] * 1e9
    print(f"single offer: rust {one_rust:.0f} ns, python {one_py:.0f} ns")
    for m in (256, 4096, 65536):
        t = by_name[f"test_batched_clip_rust[{m}]"]["median"]
        print(f"batched clip, {m} offers: {t * 1e9 / m:.2f} ns/offer")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/bench/gae.json")
