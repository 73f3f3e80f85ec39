"""``reactcli generate``: K reactions per speaker item of a split, from a checkpoint or a baseline.

Items are processed in batches of ``batch_size`` clips, and the K samples of each clip are one
batch inside the model (never K sequential runs). Each batch draws its noise from a generator
seeded with ``(seed, first item index)``, so the same seed (and batch size) gives identical
output, and a resumed run (items already stored are skipped) continues exactly where the
interrupted one stopped.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from reactcli.errors import ConfigError, InputError
from reactcli.generation.store import pending_items, write_generated
from reactcli.training.checkpoint import load_checkpoint, sha1_of
from reactcli.training.data import DataConfig, ReactionDataset, collate, load_items
from reactcli.training.loop import resolve_device

EMOTION_DIM, TDMM_DIM = 25, 58


@dataclass
class GenerateConfig:
    """Options of ``reactcli generate``."""

    split: str = "test"
    """Split whose speaker items get reactions."""
    num_samples: int = 10
    """K reactions per item."""
    batch_size: int = 4
    """Clips per model call (x K samples each)."""
    frames: int = 750
    """Frames generated per clip."""
    window: int | None = None
    """ReactFace: online window size (default: the checkpoint's generate_window)."""
    momentum: float | None = None
    """ReactFace: latent momentum alpha (default: the checkpoint's)."""
    steps: int = 50
    """PerFRDiff: DDIM steps."""
    guidance: float = 7.5
    """PerFRDiff: classifier-free guidance scale (1 = conditional only)."""
    overlap: bool = False
    """PerFRDiff: overlapping windows (stride w/2, shared noise) to avoid seams."""
    personalised: bool = False
    """PerFRDiff: edit GAFRG per listener with PSSL style + PWSG (needs --pwsg-checkpoint)."""
    pwsg_checkpoint: str | None = None
    """PerFRDiff personalised: the trained PWSG (its checkpoint names GAFRG and PSSL)."""
    seed: int = 0
    """Noise seed."""
    device: str = "cpu"
    """cpu, cuda or auto."""


def _seeded(seed: int, first: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device if device.type == "cuda" else "cpu")
    g.manual_seed(int(hashlib.sha1(f"{seed}:{first}".encode()).hexdigest()[:12], 16))
    return g


class _Model:
    """A loaded generator: ``features`` it writes and ``__call__(batch, K, gen) -> {feature: (B,K,T,D)}``."""

    features: list[str]
    meta: dict[str, Any]
    data_config: DataConfig

    def __call__(self, batch: dict[str, torch.Tensor], k: int, gen: torch.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError


class _ReactFace(_Model):
    def __init__(self, ck: dict[str, Any], cfg: GenerateConfig, dev: torch.device):
        from reactcli.models.reactface import ReactFace

        self.model = ReactFace.from_dict(ck["build"])
        self.model.load_state_dict(ck["state_dict"])
        self.model.to(dev).eval()
        self.cfg, self.dev = cfg, dev
        self.features = list(self.model.config.output_heads)
        self.data_config = DataConfig(**{**ck.get("data_config", {}), "crop": None})
        self.meta = {"model": "reactface", "window": cfg.window or self.model.config.generate_window,
                     "momentum": cfg.momentum if cfg.momentum is not None else self.model.config.momentum}

    def __call__(self, batch, k, gen):
        with torch.no_grad():
            out = self.model.generate(batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"],
                                      num_samples=k, window=self.cfg.window, momentum=self.cfg.momentum,
                                      generator=gen, device=self.dev)
        return {f: v.float().cpu().numpy() for f, v in out.items()}


class _PerFRDiff(_Model):
    def __init__(self, ck: dict[str, Any], path: str, cfg: GenerateConfig, dev: torch.device):
        from reactcli.models.perfrdiff import DiffusionConfig, load_gafrg, load_pssl, load_pwsg

        self.cfg, self.dev = cfg, dev
        self.editor = self.pssl = None
        if cfg.personalised:
            pw = cfg.pwsg_checkpoint or (path if ck.get("kind") == "pwsg" else None)
            if pw is None:
                raise ConfigError("--personalised needs --pwsg-checkpoint (a trained PWSG)")
            pck = load_checkpoint(pw)
            self.editor = load_pwsg(pw).to(dev).eval()
            self.pssl = load_pssl(pck.get("pssl_checkpoint"), option="the PWSG checkpoint's pssl_checkpoint").to(dev).eval()
            gpath = pck.get("gafrg_checkpoint")
        else:
            gpath = path
        self.gafrg, self.diffusion = load_gafrg(gpath)
        self.gafrg.to(dev).eval()
        gck = load_checkpoint(gpath)
        target = ((gck.get("recipe") or {}).get("step") or {}).get("target", "emotion")
        self.target = target
        self.features = {"emotion": ["emotion"], "tdmm": ["tdmm"], "both": ["emotion", "tdmm"]}[target]
        self.data_config = DataConfig(**{**gck.get("data_config", {}), "crop": None})
        self.meta = {"model": "perfrdiff", "personalised": cfg.personalised, "steps": cfg.steps,
                     "guidance": cfg.guidance, "overlap": cfg.overlap, "gafrg_checkpoint": str(gpath),
                     "pwsg_checkpoint": cfg.pwsg_checkpoint}

    def __call__(self, batch, k, gen):
        from reactcli.models.perfrdiff import generate

        style = None
        with torch.no_grad():
            if self.editor is not None:
                style = self.pssl(batch["listener_history_tdmm"].to(self.dev))
            y = generate(self.gafrg, batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"],
                         num_samples=k, steps=self.cfg.steps, guidance=self.cfg.guidance, style=style,
                         editor=self.editor, generator=gen, device=self.dev, overlap=self.cfg.overlap,
                         diffusion=self.diffusion, clamp_emotion=self.target != "tdmm")
        y = y.float().cpu().numpy()
        if self.target == "both":
            return {"emotion": y[..., :EMOTION_DIM], "tdmm": y[..., EMOTION_DIM:]}
        return {self.target: y}


def load_generator(checkpoint: str | os.PathLike, cfg: GenerateConfig) -> _Model:
    dev = resolve_device(cfg.device)
    ck = load_checkpoint(checkpoint)
    kind = ck.get("kind") or ck.get("model")
    if kind == "reactface":
        return _ReactFace(ck, cfg, dev)
    if kind in ("gafrg", "pwsg"):
        if kind == "pwsg":
            cfg.personalised = True
            cfg.pwsg_checkpoint = cfg.pwsg_checkpoint or str(checkpoint)
        return _PerFRDiff(ck, str(checkpoint), cfg, dev)
    raise InputError(f"{checkpoint}: checkpoint of kind {kind!r} cannot generate (expected reactface, gafrg or pwsg)")


def generate_run(
    work: str | os.PathLike,
    checkpoint: str | os.PathLike,
    cfg: GenerateConfig,
    run: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Generate ``cfg.num_samples`` reactions for every item of ``cfg.split``; returns the manifest path."""
    work = Path(work)
    gen_model = load_generator(checkpoint, cfg)
    run = run or Path(checkpoint).parent.name + ("-personalised" if cfg.personalised else "")
    table = load_items(work, cfg.split)
    data_cfg = DataConfig(**{**asdict(gen_model.data_config), "frames": cfg.frames, "crop": None, "max_appropriate": 1})
    ds = ReactionDataset(work, table, data_cfg, seed=cfg.seed, train=False)
    todo = pending_items(work, run, cfg.split, table, gen_model.features)
    dev = resolve_device(cfg.device)

    def batches():
        for n0 in range(0, len(todo), cfg.batch_size):
            idx = todo[n0:n0 + cfg.batch_size]
            batch = collate([ds[i] for i in idx])
            batch = {k: v.to(dev) for k, v in batch.items()}
            outs = gen_model(batch, cfg.num_samples, _seeded(cfg.seed, idx[0], dev))
            if on_progress:
                on_progress(f"generate {run}", min(n0 + cfg.batch_size, len(todo)), len(todo))
            yield idx, outs

    meta = {**gen_model.meta, "checkpoint": str(checkpoint), "checkpoint_sha1": sha1_of(checkpoint),
            "config": asdict(cfg)}
    return write_generated(work, run, cfg.split, table, batches(), num_samples=cfg.num_samples, seed=cfg.seed, meta=meta)
