"""Checkpoints: round trips, safe loading, corruption and mismatch handling, RNG state."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hrl.config import L2Config, L3Config
from hrl.errors import CheckpointError
from hrl.models import L2Manager, L3Executor, L4Coordinator
from hrl.train.checkpoint import (
    get_rng_state,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_model,
    set_rng_state,
)

torch.set_num_threads(1)


def trained_l3() -> L3Executor:
    torch.manual_seed(0)
    model = L3Executor(L3Config(hidden=24, gru_layers=2))
    model.normaliser.update(torch.randn(50, model.normaliser.dim) * 3 + 1)
    return model


def l3_call(model: L3Executor) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    out = model(
        torch.randn(4, 6, 5, generator=g),
        torch.arange(6) < torch.tensor([[0], [2], [6], [3]]),
        torch.rand(4, 4, generator=g),
        torch.rand(4, 3, generator=g),
        torch.rand(4, 3, generator=g),
        torch.rand(4, 11, generator=g),
        torch.rand(4, 2, generator=g),
        torch.ones(4, 11, dtype=torch.bool),
    )
    return torch.cat([out.kind.logits, out.day.logits, out.fraction.mode(), out.value[:, None]], 1)


def test_save_and_load_model_round_trip(tmp_path: Path) -> None:
    model = trained_l3()
    path = save_model(model, tmp_path / "sub" / "l3.pt", extra={"note": "hello", "epoch": 3})
    loaded = load_model(path)
    assert isinstance(loaded, L3Executor) and loaded.config == model.config and not loaded.training
    torch.testing.assert_close(loaded.normaliser.mean, model.normaliser.mean)
    assert float(loaded.normaliser.count) == 50
    torch.testing.assert_close(l3_call(loaded), l3_call(model.eval()), rtol=0, atol=0)
    payload = load_checkpoint(path, kind="model")
    assert payload["extra"] == {"note": "hello", "epoch": 3}
    assert set(payload["versions"]) >= {"hrl", "torch", "numpy", "python"}


@pytest.mark.parametrize("model", [L2Manager(L2Config(hidden=16, history_days=2)), L4Coordinator()])
def test_every_model_class_round_trips(tmp_path: Path, model: torch.nn.Module) -> None:
    loaded = load_model(save_model(model, tmp_path / "m.pt"))
    assert type(loaded) is type(model)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)


def test_truncated_checkpoint_raises_checkpoint_error_naming_the_path(tmp_path: Path) -> None:
    path = save_model(trained_l3(), tmp_path / "l3.pt")
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        broken = tmp_path / f"cut{cut}.pt"
        broken.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=re.escape(str(broken))):
            load_model(broken)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 20)
    with pytest.raises(CheckpointError, match=r"garbage\.pt"):
        load_checkpoint(garbage)


def test_missing_foreign_and_mismatched_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "absent.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not an hrl checkpoint"):
        load_model(foreign)
    path = save_model(trained_l3(), tmp_path / "l3.pt")
    with pytest.raises(CheckpointError, match="expected 'bc/l3'"):
        load_checkpoint(path, kind="bc/l3")
    payload = load_checkpoint(path)
    payload["model_configs"]["model"]["hidden"] = 32  # config no longer matches the weights
    tampered = tmp_path / "tampered.pt"
    torch.save(payload, tampered)
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tampered)
    payload["model_configs"]["model"]["hidden"] = -1
    torch.save(payload, tampered)
    with pytest.raises(CheckpointError, match="bad model config"):
        load_model(tampered)
    payload["format_version"] = 99
    torch.save(payload, tampered)
    with pytest.raises(CheckpointError, match="format version"):
        load_model(tampered)


class _Exploit:
    """Unpickling this would create a file: safe loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_loading_never_unpickles_arbitrary_objects(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = load_checkpoint(save_model(trained_l3(), tmp_path / "ok.pt"))
    payload["extra"] = {"evil": _Exploit(marker)}
    evil = tmp_path / "evil.pt"
    torch.save(payload, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        load_model(evil)
    assert not marker.exists()


def test_save_refuses_non_plain_payloads_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = save_model(trained_l3(), tmp_path / "l3.pt")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="not plain data"):
        save_model(trained_l3(), path, extra={"obj": _Exploit(tmp_path / "x")})
    assert path.read_bytes() == before
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["l3.pt"]  # no temp files left behind
    with pytest.raises(CheckpointError, match="lacks"):
        save_checkpoint(tmp_path / "y.pt", {"kind": "model"})


def test_rng_state_round_trip() -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in the legacy state
    state = get_rng_state()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    first = (random.random(), np.random.normal(), np.random.random(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(state)
    second = (random.random(), np.random.normal(), np.random.random(), torch.rand(3))
    assert first[:3] == second[:3] and torch.equal(first[3], second[3])
