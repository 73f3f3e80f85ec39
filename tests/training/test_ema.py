"""``train.ema_decay``: model.pt holds the exponential moving average of the trained weights.

Checked against the average recomputed by hand from the weights after every optimiser step
(e_1 = w_1, e_k = d e_{k-1} + (1 - d) w_k), and across an interrupted + resumed run.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from reactcli.errors import ConfigError
from reactcli.models.checkpoint import load_checkpoint
from reactcli.training.loop import TrainConfig, train

from .test_ddp import CFG, SEED, TinyItems, make_model, step

DECAY = 0.9
EXTRA = {"model": "tiny", "config": {}}


def _train(run_dir, epochs: int, snapshots: list | None = None, ema: float | None = DECAY, resume: bool = False):
    model = make_model()
    on_step = None
    if snapshots is not None:
        on_step = lambda s, n: snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})  # noqa: E731
    cfg = dataclasses.replace(CFG, epochs=epochs, ema_decay=ema)
    train(model, step, TinyItems(), cfg, run_dir, seed=SEED, checkpoint_extra=EXTRA, resume=resume, on_step=on_step)
    return model


def test_model_pt_is_the_moving_average_of_the_step_weights(tmp_path):
    snaps: list[dict[str, torch.Tensor]] = []
    final = _train(tmp_path / "ema", CFG.epochs, snaps)
    assert len(snaps) == CFG.epochs * 8  # 16 items, batch 2
    expect = {k: v.clone() for k, v in snaps[0].items()}
    for w in snaps[1:]:
        for k in expect:
            expect[k] = DECAY * expect[k] + (1 - DECAY) * w[k]
    ck = load_checkpoint(tmp_path / "ema" / "model.pt")
    assert ck["ema_decay"] == DECAY
    for k, v in expect.items():
        torch.testing.assert_close(ck["state_dict"][k], v, rtol=1e-5, atol=1e-6)
    # the average is not the last weights (they stay in last.pt for resuming)
    last = load_checkpoint(tmp_path / "ema" / "last.pt")
    for k, v in final.state_dict().items():
        assert torch.equal(last["state_dict"][k], v)
    assert not torch.allclose(ck["state_dict"]["0.weight"], final.state_dict()["0.weight"], atol=1e-4)
    # without ema_decay model.pt holds the last weights, as before
    plain = _train(tmp_path / "plain", CFG.epochs, ema=None)
    sd = load_checkpoint(tmp_path / "plain" / "model.pt")["state_dict"]
    assert all(torch.equal(sd[k], v) for k, v in plain.state_dict().items())


def test_resumed_run_keeps_the_average(tmp_path):
    _train(tmp_path / "straight", 3)
    _train(tmp_path / "split", 1)
    _train(tmp_path / "split", 3, resume=True)
    a = load_checkpoint(tmp_path / "straight" / "model.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "split" / "model.pt")["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5])
def test_decay_outside_0_1_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig(ema_decay=bad)
