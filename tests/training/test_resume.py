"""Interrupt -> resume -> done equals done in one go, bit for bit on CPU: every random state (torch,
numpy, Python, the step's torch.Generator; the data order is seeded per epoch) is in last.pt."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
import torch

from reactcli.models.checkpoint import load_checkpoint
from reactcli.training.loop import train

from .test_ddp import CFG, SEED, TinyItems, features

EXTRA = {"model": "tiny", "config": {}}


class Stop(Exception):
    pass


def make_model() -> torch.nn.Module:
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.3), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def noisy_step(model, batch, generator):
    """Uses every source of randomness a real step uses: the loop's generator (latent noise), the
    global torch RNG (dropout), numpy's and Python's global RNGs."""
    x = features(batch)
    z = torch.randn(x.shape, generator=generator) * 0.1
    jitter = float(np.random.uniform(0.9, 1.1)) * random.uniform(0.9, 1.1)
    loss = torch.nn.functional.mse_loss(model(x + z) * jitter, batch["y"])
    return loss, {"mse": loss.detach()}


def _train(run_dir, stop_after: int | None = None, resume: bool = True):
    def on_epoch(epoch, logs):
        if stop_after is not None and epoch == stop_after:
            raise Stop  # as a kill right after the epoch's checkpoint

    cfg = dataclasses.replace(CFG, epochs=5, cosine=True)
    try:
        train(make_model(), noisy_step, TinyItems(), cfg, run_dir, seed=SEED, checkpoint_extra=EXTRA, resume=resume,
              on_epoch=on_epoch)
    except Stop:
        pass


def _log(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("stop_after", [1, 3])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, stop_after):
    _train(tmp_path / "straight")
    _train(tmp_path / "split", stop_after=stop_after)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["epoch"] == stop_after
    # the process that resumes starts from other global random states
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    _train(tmp_path / "split")
    a = load_checkpoint(tmp_path / "straight" / "model.pt")
    b = load_checkpoint(tmp_path / "split" / "model.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert _log(tmp_path / "split") == _log(tmp_path / "straight")  # every epoch once, same losses
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in a["history"]] == \
        [{k: v for k, v in h.items() if k != "seconds"} for h in b["history"]]


def test_a_log_line_without_its_checkpoint_is_not_kept_twice(tmp_path):
    """A kill between the epoch's log line and its checkpoint: the resumed run's log has every
    epoch once (log.jsonl is rewritten from the checkpoint's history)."""
    _train(tmp_path / "straight")
    _train(tmp_path / "split", stop_after=2)
    with open(tmp_path / "split" / "log.jsonl", "a") as fh:  # epoch 3's line, its checkpoint lost
        fh.write(json.dumps({"loss": 1.0, "epoch": 3, "step": 24, "seconds": 0.1}) + "\n")
    _train(tmp_path / "split")
    assert _log(tmp_path / "split") == _log(tmp_path / "straight")
