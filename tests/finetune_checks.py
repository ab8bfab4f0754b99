"""Shared assertion for fine-tuning tests: two ``hrl finetune`` checkpoints are bit-identical."""

from __future__ import annotations

from typing import Any

import torch


def history(payload: dict[str, Any]) -> list[dict[str, float]]:
    """The per-update scalars without the wall-clock ``time/...`` entries."""
    return [{k: v for k, v in h.items() if not k.startswith("time/")} for h in payload["history"]]


def assert_same_checkpoints(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Bit-identical weights, critic, optimiser states, history and learner rows."""
    assert history(a) == history(b) and a["learners"] == b["learners"]
    for name in ("l2", "l3", "l4"):
        for key, value in a["models"][name].items():
            assert torch.equal(value, b["models"][name][key]), (name, key)
    for key, value in a["critic"].items():
        assert torch.equal(value, b["critic"][key]), key
    for name, opt in a["optimisers"].items():
        for pid, st in opt["state"].items():
            for key, value in st.items():
                assert torch.equal(value, b["optimisers"][name]["state"][pid][key]), (name, pid, key)
