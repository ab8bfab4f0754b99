"""pytest-benchmark: CPU forward latency of the default L2/L3/L4 models at play-time batch sizes
(one thread of torch, inference mode): L2 for one agent-day, L3 for 20 threads with a 20-offer
history each, L4 over those 20 threads, and one whole round (L4 + L3 + decoding the actions into
integer offers inside L1's box, :func:`hrl.models.box.decode_round`). Run with `make bench`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hrl.agent.policy import HRLPolicy
from hrl.models import L2Manager, L3Executor, L4Coordinator, thread_features
from hrl.models.box import decode_round
from hrl.models.l3 import L3_INPUTS
from hrl.train.bundle import fresh_bundle

THREADS, HISTORY, DAYS = 20, 20, 11


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def l3_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "history": torch.rand(THREADS, HISTORY, 5, generator=g),
        "history_mask": torch.arange(HISTORY) < torch.randint(1, HISTORY + 1, (THREADS, 1), generator=g),
        "goal": torch.rand(THREADS, 4, generator=g),
        "baseline": torch.rand(THREADS, 3, generator=g),
        "context": torch.rand(THREADS, 3, generator=g),
        "caps": torch.rand(THREADS, DAYS, generator=g),
        "prices": torch.tensor([[0.9, 1.1]]).expand(THREADS, 2).contiguous(),
        "day_mask": torch.ones(THREADS, DAYS, dtype=torch.bool),
        "kind_mask": torch.ones(THREADS, 3, dtype=torch.bool),
    }


@torch.inference_mode()
def test_l2_one_agent_day(benchmark: Any) -> None:
    model = L2Manager().eval()
    args = (
        torch.rand(1, 6, 37),
        torch.ones(1, 6, dtype=torch.bool),
        torch.rand(1, 11, 2),
        torch.ones(1, 4, dtype=torch.bool),
    )
    benchmark(lambda: model(*args).deterministic())


@torch.inference_mode()
def test_l3_twenty_threads(benchmark: Any) -> None:
    model, inputs = L3Executor().eval(), l3_inputs()
    benchmark(lambda: model(**inputs).deterministic())


@torch.inference_mode()
def test_l4_twenty_threads(benchmark: Any) -> None:
    model, inputs = L4Coordinator().eval(), l3_inputs()
    feats = thread_features(
        inputs["goal"], inputs["baseline"], inputs["context"], inputs["history"], inputs["history_mask"]
    )
    mask = torch.ones(1, THREADS, dtype=torch.bool)
    benchmark(lambda: model(feats.unsqueeze(0), mask).deterministic())


def test_one_round_l4_and_l3(benchmark: Any) -> None:
    """The agent's round path: :meth:`HRLPolicy.act_round` (L4 + L3, one pass each) and decoding."""
    policy = HRLPolicy(fresh_bundle(0), mode="deterministic")
    inputs = l3_inputs()
    arrays = [inputs[name].numpy() for name in L3_INPUTS]
    lines = 10.0  # caps / n_lines -> units; the box is (q_lo, p_lo, p_hi) at a trading price of 20
    caps = inputs["caps"].numpy() * lines
    box = np.tile([1.0, 18.0, 22.0], (THREADS, 1))
    seller = np.arange(THREADS) % 2 == 1
    offered = np.zeros(THREADS)

    def round_step() -> tuple[np.ndarray, np.ndarray]:
        step = policy.act_round(*arrays)
        return decode_round(
            kind=step.kind,
            delivery=step.day,
            fraction=step.fraction,
            alpha=step.alpha,
            seller=seller,
            caps=caps,
            box=box,
            accepted=offered,
            accepted_offset=offered.astype(np.int64),
        )

    benchmark(round_step)
