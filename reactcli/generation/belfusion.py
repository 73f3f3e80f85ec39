"""BeLFusion's generator (registry entry ``belfusion-diffusion``): every window of every item and
the K samples denoised as one batch, decoded by the frozen behaviour autoencoder, the 3DMM
regressed from the generated emotion (:meth:`reactcli.models.belfusion.BeLFusion.generate`).
Sampler options: ``--steps`` (DDIM steps, default every training step as the authors) and
``--eta`` (default 0, the authors')."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from reactcli.errors import ConfigError
from reactcli.generation.base import GenerateConfig, Generator, refuse_options
from reactcli.models.checkpoint import load_state_strict
from reactcli.models.registry import build_model
from reactcli.training.data import DataConfig

__all__ = ["BeLFusionGenerator"]


class BeLFusionGenerator(Generator):
    def __init__(self, ck: dict[str, Any], path: str, cfg: GenerateConfig, dev: torch.device):
        refuse_options(cfg, "BeLFusion", ("steps", "eta"))
        self.model = build_model(ck)
        load_state_strict(self.model, ck["state_dict"], path)
        mcfg = self.model.config
        if cfg.steps is not None and not 1 <= cfg.steps <= mcfg.diffusion_steps:
            raise ConfigError(f"--steps must be in [1, {mcfg.diffusion_steps}] (the checkpoint's diffusion steps), "
                              f"got {cfg.steps}")
        if cfg.eta is not None and cfg.eta < 0:
            raise ConfigError(f"--eta must be >= 0, got {cfg.eta}")
        steps = cfg.steps if cfg.steps is not None else (mcfg.inference_steps or mcfg.diffusion_steps)
        eta = cfg.eta if cfg.eta is not None else mcfg.eta
        self.model.config = replace(mcfg, inference_steps=steps, eta=eta)
        if cfg.frames < mcfg.window:
            raise ConfigError(f"--frames {cfg.frames}: BeLFusion generates windows of {mcfg.window} frames; "
                              f"give at least {mcfg.window}")
        self.model.to(dev).eval()
        self.cfg, self.dev = replace(cfg, steps=steps, eta=eta), dev
        self.sources = {"belfusion": str(path)}
        self.features = ["emotion", "tdmm"]
        self.data_config = DataConfig(**{**ck.get("data_config", {}), "crop": None})
        self.meta = {"model": "belfusion", "online": mcfg.online, "steps": steps, "eta": eta}

    def __call__(self, batch, k, gen):
        with torch.no_grad():
            out = self.model.generate(speaker_emotion=batch["speaker_emotion"], num_samples=k, generator=gen,
                                      device=self.dev)
        return {f: out[f].float().cpu().numpy() for f in self.features}
