"""The generic training loop: AdamW, seeded, resumable, DDP under ``torchrun``.

Models plug in a *step function* ``step(model, batch, generator) -> (loss, logs)``; the loop
owns the optimiser, the epochs, the per-epoch log (``<run>/log.jsonl`` and the console), the
checkpoints (``<run>/last.pt`` after every epoch, atomic) and resuming from ``last.pt``.

Multi-GPU: run under ``torchrun --nproc_per_node G -m reactcli.cli.main train ...``. The loop
reads ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, initialises the process group (NCCL on CUDA, Gloo
on CPU), shards the items with a ``DistributedSampler`` and wraps the model in DDP; only rank 0
writes. At world size 1 the sampler and DDP are no-ops, so the result equals the plain run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from reactcli.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from reactcli.errors import ConfigError, InputError
from reactcli.io import atomic_open
from reactcli.models.checkpoint import load_checkpoint, load_state_strict, save_checkpoint
from reactcli.training.data import collate

log = logging.getLogger(__name__)

StepFn = Callable[[torch.nn.Module, dict[str, torch.Tensor], torch.Generator], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class TrainConfig:
    """Optimisation settings (the model's own settings live in its config)."""

    epochs: PositiveInt = 10
    """Passes over the training items."""
    batch_size: PositiveInt = 8
    """Items per step (per process under DDP)."""
    lr: PositiveFloat = 2e-5
    """AdamW learning rate."""
    weight_decay: NonNegativeFloat = 1e-2
    """AdamW weight decay."""
    grad_clip: PositiveFloat | None = 1.0
    """Clip the gradient norm (None: no clipping)."""
    cosine: bool = False
    """Cosine learning-rate decay over all steps."""
    num_workers: NonNegativeInt = 0
    """DataLoader worker processes."""
    log_every: NonNegativeInt = 0
    """Also log every n steps (0: per epoch only)."""
    max_steps: PositiveInt | None = None
    """Stop after this many optimiser steps in total (for smoke runs)."""
    ema_decay: float | None = None
    """Keep an exponential moving average of the trained parameters with this decay (e.g. 0.99;
    torch.optim.swa_utils.AveragedModel) and write the averaged weights to ``model.pt``, as diffusion
    models usually are sampled; ``last.pt`` keeps both for resuming. None: no averaging."""

    def __post_init__(self) -> None:
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1) or null, got {self.ema_decay}")


@dataclass
class DistInfo:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE set)."""
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws <= 1 and "RANK" not in os.environ:
        return DistInfo()
    info = DistInfo(world_size=ws, rank=int(os.environ.get("RANK", "0")), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    return info


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    with atomic_open(path, "w") as fh:
        for means in history:
            fh.write(json.dumps(means) + "\n")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a training step can draw from, as plain data and tensors (it goes into
    ``last.pt``, read with ``weights_only=True``): torch's, CUDA's, numpy's and Python's global
    generators and the loop's own ``generator`` (latent noise, timesteps, condition dropout)."""
    import random

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(), "generator": generator.get_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` saved."""
    import random

    torch.set_rng_state(state["torch"].cpu())
    generator.set_state(state["generator"].cpu())
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class _EpochSampler(Sampler):
    """Seeded shuffling that depends only on (seed, epoch): resumable and DDP-consistent."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def train(
    model: torch.nn.Module,
    step_fn: StepFn,
    dataset: Dataset,
    cfg: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    seed: int = 0,
    device: str = "cpu",
    checkpoint_extra: dict[str, Any] | None = None,
    parameters: list[torch.nn.Parameter] | None = None,
    resume: bool = True,
    overwrite: bool = False,
    optimizer_factory: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` with ``step_fn``; returns the final checkpoint dict (without tensors).

    ``checkpoint_extra`` must hold at least ``model`` (registry name) and ``build`` (constructor
    arguments); it is stored in every checkpoint together with the resolved config.

    With ``resume``, ``run_dir/last.pt`` is continued only if its ``settings_key`` equals the one in
    ``checkpoint_extra`` (both absent counts as equal); otherwise an :class:`InputError` naming the
    run, or with ``overwrite`` the old run is discarded and training starts over.
    """
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    owns_group = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(str(dev))
    if dev.type == "cuda" and info.world_size > 1:
        dev = torch.device("cuda", info.local_rank)
    seed_everything(seed + info.rank)
    model.to(dev)
    params = parameters if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("nothing to train: the model has no trainable parameters")
    opt = optimizer_factory(params) if optimizer_factory else torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch, step, history = 0, 0, []
    last = run_dir / "last.pt"
    ck = load_checkpoint(last, map_location=dev) if resume and last.is_file() else None
    if ck is not None and ck.get("settings_key") != (checkpoint_extra or {}).get("settings_key"):
        if not overwrite:
            raise InputError(f"{last}: run {run_dir.name!r} was trained with other settings (recipe, seed, data or parent "
                             "checkpoints); pass --overwrite to start it over, --no-resume to ignore it, or choose another --run")
        log.warning("%s: other settings, starting run %r over", last, run_dir.name)
        ck = None
        if info.main:
            for name in ("last.pt", "model.pt"):
                (run_dir / name).unlink(missing_ok=True)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
           if cfg.ema_decay is not None else None)
    if ck is not None:
        load_state_strict(model, ck["state_dict"], last)
        if "optimizer" in ck:
            opt.load_state_dict(ck["optimizer"])
        if ema is not None and "ema_state_dict" in ck:
            ema.load_state_dict(ck["ema_state_dict"])
        start_epoch, step, history = ck.get("epoch", 0), ck.get("step", 0), ck.get("history", [])
        if info.main:
            log.info("resuming %s from epoch %d (step %d)", last, start_epoch, step)
    if info.world_size > 1:
        sampler: Sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed)
        net: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=True)
    else:
        sampler = _EpochSampler(len(dataset), seed)
        net = model
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                        num_workers=cfg.num_workers, drop_last=False, persistent_workers=cfg.num_workers > 0)
    steps_per_epoch = max(1, math.ceil(len(sampler) / cfg.batch_size))
    total_steps = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    sched = None
    if cfg.cosine:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / max(1, total_steps))))
        with warnings.catch_warnings():  # replaying the schedule of the steps already taken
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(step):
                sched.step()
    gen = torch.Generator(device=dev).manual_seed(seed * 7919 + info.rank)
    run_dir.mkdir(parents=True, exist_ok=True)
    if info.main:
        # the log is the checkpoint's history (empty for a new run): an epoch logged but not
        # checkpointed (a kill between the two) or a discarded run's epochs are not kept
        _write_log(run_dir / "log.jsonl", history)
    if ck is not None and ck.get("rng") is not None and info.world_size == 1:
        set_rng_state(ck["rng"], gen)  # continue every random stream where the interrupted run stopped
    extra = dict(checkpoint_extra or {})
    extra.setdefault("train_config", asdict(cfg))
    stop = False
    for epoch in range(start_epoch, cfg.epochs):
        if stop:
            break
        sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)  # type: ignore[attr-defined]
        net.train()
        sums: dict[str, float] = {}
        count = 0
        t0 = time.perf_counter()
        for batch in loader:
            batch = {k: v.to(dev) for k, v in batch.items()}
            loss, logs = step_fn(net, batch, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch} step {step}: {logs}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            if sched:
                sched.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            count += 1
            logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if on_step and info.main:
                on_step(step, total_steps)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                stop = True
                break
        means = {k: v / max(count, 1) for k, v in sums.items()}
        means.update(epoch=epoch + 1, step=step, seconds=round(time.perf_counter() - t0, 3))
        history.append(means)
        if info.main:
            with open(run_dir / "log.jsonl", "a") as fh:
                fh.write(json.dumps(means) + "\n")
            log.info("epoch %d/%d  %s", epoch + 1, cfg.epochs,
                     "  ".join(f"{k} {v:.4g}" for k, v in means.items() if k not in ("epoch", "step", "seconds")))
            save_checkpoint(last, {
                **extra, "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                "epoch": epoch + 1, "step": step, "history": history, "seed": seed,
                "world_size": info.world_size, "rng": rng_state(gen),
                **({"ema_state_dict": ema.state_dict()} if ema is not None else {}),
            })
            if on_epoch:
                on_epoch(epoch + 1, means)
    if info.world_size > 1:
        dist.barrier()
    if info.main and last.is_file():
        final = run_dir / "model.pt"
        ck = load_checkpoint(last)
        ck.pop("optimizer", None)
        ck.pop("rng", None)
        averaged = ck.pop("ema_state_dict", None)
        if averaged is not None:  # the sampled weights are the average: AveragedModel keys are "module.<name>"
            ck["state_dict"] = {k[len("module."):]: v for k, v in averaged.items() if k.startswith("module.")}
            ck["ema_decay"] = cfg.ema_decay
        save_checkpoint(final, ck)
    if info.world_size > 1:
        # no rank leaves before rank 0 has written model.pt, and a group this call created is
        # taken down here: a process exiting with live gloo threads can abort (SIGABRT) and make
        # torchrun kill the others
        dist.barrier()
        if owns_group:
            dist.destroy_process_group()
    return {"history": history, "step": step, "run_dir": str(run_dir)}
