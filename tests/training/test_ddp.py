"""The generic loop under ``torchrun`` (gloo, CPU) against plain single-process training.

- world size 1: the same final weights and loss history as a plain run (bit for bit);
- world size 2: DDP averages the two ranks' gradients, so with equal per-rank batches and a
  mean loss the run equals a single-process run whose batches are the union of both ranks'
  batches (an identity checked against a hand-written AdamW loop here); rank 0 alone writes.

This file is also the script that torchrun launches (``python test_ddp.py <run_dir>``), so the
model and data are defined once.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from reactcli.models.checkpoint import load_checkpoint
from reactcli.training.data import collate
from reactcli.training.loop import TrainConfig, train

N_ITEMS = 16
SEED = 5
CFG = TrainConfig(epochs=3, batch_size=2, lr=1e-2, weight_decay=1e-2, grad_clip=1.0)


class TinyItems(Dataset):
    """16 items with the keys collate() expects: an input, a target and a ragged appropriate set."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((N_ITEMS, 4)).astype(np.float32)
        self.y = (self.x @ np.array([0.5, -1.0, 0.25, 2.0], np.float32))[:, None]
        self.m = [1 + i % 3 for i in range(N_ITEMS)]  # 1..3 appropriate reactions: padded by collate
        self.app = [rng.standard_normal((m, 5, 2)).astype(np.float32) for m in self.m]

    def __len__(self):
        return N_ITEMS

    def __getitem__(self, i):
        return {"x": torch.from_numpy(self.x[i]), "y": torch.from_numpy(self.y[i]),
                "appropriate_emotion": torch.from_numpy(self.app[i]),
                "appropriate_mask": torch.ones(self.m[i], dtype=torch.bool), "index": torch.tensor(i)}


def make_model() -> torch.nn.Module:
    torch.manual_seed(123)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def features(batch) -> torch.Tensor:
    """x and the masked mean of the appropriate set (padding must not count)."""
    mask = batch["appropriate_mask"].float()  # (B, M)
    app = batch["appropriate_emotion"].mean(2)  # (B, M, 2)
    pooled = (app * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return torch.cat([batch["x"], pooled], 1)


def step(model, batch, generator):
    """A deterministic mean loss (no per-rank randomness), so DDP's gradient average is exact."""
    loss = torch.nn.functional.mse_loss(model(features(batch)), batch["y"])
    return loss, {"mse": loss.detach()}


def run(run_dir: str | os.PathLike) -> dict:
    return train(make_model(), step, TinyItems(), CFG, run_dir, seed=SEED, device="cpu",
                 checkpoint_extra={"model": "tiny", "config": {}}, resume=False)


def _torchrun(nproc: int, run_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           __file__, str(run_dir)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _losses(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_torchrun_world_size_1_equals_plain_run(tmp_path):
    plain = run(tmp_path / "plain")
    _torchrun(1, tmp_path / "ddp1")
    a = load_checkpoint(tmp_path / "plain" / "model.pt")
    b = load_checkpoint(tmp_path / "ddp1" / "model.pt")
    assert b["world_size"] == 1 and a["world_size"] == 1
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert _losses(b["history"]) == _losses(a["history"]) == _losses(plain["history"])
    assert len(a["history"]) == CFG.epochs and a["step"] == CFG.epochs * math.ceil(N_ITEMS / CFG.batch_size)
    # training did something: the weights moved away from the initialisation
    init = make_model().state_dict()
    assert any(not torch.equal(init[k], a["state_dict"][k]) for k in init)


def _reference_two_ranks() -> dict[str, torch.Tensor]:
    """Single-process AdamW on the union of both ranks' batches, as DistributedSampler orders them."""
    model = make_model()
    data = TinyItems()
    opt = torch.optim.AdamW(model.parameters(), lr=CFG.lr, weight_decay=CFG.weight_decay)
    for epoch in range(CFG.epochs):
        perm = torch.randperm(N_ITEMS, generator=torch.Generator().manual_seed(SEED + epoch)).tolist()
        ranks = [perm[r::2] for r in range(2)]
        for k in range(0, len(ranks[0]), CFG.batch_size):
            idx = ranks[0][k:k + CFG.batch_size] + ranks[1][k:k + CFG.batch_size]
            batch = collate([data[i] for i in idx])
            loss, _ = step(model, batch, None)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), CFG.grad_clip)
            opt.step()
    return model.state_dict()


def test_torchrun_two_processes_rank0_writes_and_matches_union_batches(tmp_path):
    run_dir = tmp_path / "ddp2"
    _torchrun(2, run_dir)
    ck = load_checkpoint(run_dir / "model.pt")
    assert ck["world_size"] == 2
    steps = CFG.epochs * math.ceil(N_ITEMS / 2 / CFG.batch_size)
    assert ck["step"] == steps
    hist = ck["history"]
    assert len(hist) == CFG.epochs and all(math.isfinite(h["loss"]) for h in hist)
    # only rank 0 wrote: one log line per epoch, not two; no stray temporary files
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2, 3]
    assert sorted(p.name for p in run_dir.iterdir()) == ["last.pt", "log.jsonl", "model.pt"]
    ref = _reference_two_ranks()
    for k, v in ref.items():
        torch.testing.assert_close(ck["state_dict"][k], v, rtol=1e-5, atol=1e-6)
    # and it is not trivially equal to the plain (one process, batch 2) run
    plain = run(tmp_path / "plain")
    plain_sd = load_checkpoint(tmp_path / "plain" / "model.pt")["state_dict"]
    assert plain["step"] == 2 * steps
    assert not torch.allclose(plain_sd["0.weight"], ck["state_dict"]["0.weight"], atol=1e-4)


if __name__ == "__main__":  # launched by torchrun from the tests above
    run(sys.argv[1])
