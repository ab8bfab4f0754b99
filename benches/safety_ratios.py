"""Prints the L1 benchmark ratios from a pytest-benchmark JSON file (see test_safety_bench.py)."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    with open(path) as handle:
        benches = json.load(handle)["benchmarks"]
    by_name = {b["name"]: b["stats"] for b in benches}
    print(f"{'round step':<22}{'rust [us]':>11}{'rust+lists':>12}{'python [us]':>13}{'ratio':>8}")
    for size in ("10-5", "10-30", "40-5", "40-30"):
        rust = by_name[f"test_round_step_rust[{size}]"]["median"] * 1e6
        lists = by_name[f"test_round_step_rust_from_lists[{size}]"]["median"] * 1e6
        py = by_name[f"test_round_step_python[{size}]"]["median"] * 1e6
        h, o = size.split("-")
        print(f"horizon {h:>2}, {o:>2} offers  {rust:>11.2f}{lists:>12.2f}{py:>13.1f}{py / rust:>7.1f}x")
    one_rust = by_name["test_single_offer_rust"]["median"] * 1e9
    one_py = by_name["test_single_offer_python"]["median"] * 1e9
    print(f"single offer: rust {one_rust:.0f} ns, python {one_py:.0f} ns")
    for m in (256, 4096, 65536):
        t = by_name[f"test_batched_clip_rust[{m}]"]["median"]
        print(f"batched clip, {m} offers: {t * 1e9 / m:.2f} ns/offer")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/bench/gae.json")
