"""ReactFace's generator (registry entry ``reactface``): online, window by window, K samples
in one batch (:meth:`reactcli.models.reactface.ReactFace.generate`)."""

from __future__ import annotations

from typing import Any

import torch

from reactcli.errors import ConfigError
from reactcli.generation.base import GenerateConfig, Generator
from reactcli.models.checkpoint import load_state_strict
from reactcli.models.registry import build_model
from reactcli.training.data import DataConfig

__all__ = ["ReactFaceGenerator"]


class ReactFaceGenerator(Generator):
    def __init__(self, ck: dict[str, Any], path: str, cfg: GenerateConfig, dev: torch.device):
        if cfg.precision != "fp32":
            raise ConfigError(f"--precision {cfg.precision} is a PerFRDiff option; ReactFace generates in fp32")
        if cfg.eta is not None:
            raise ConfigError("--eta is a BeLFusion option; ReactFace has no DDIM sampler")
        self.model = build_model(ck)
        load_state_strict(self.model, ck["state_dict"], path)
        if cfg.decoder_band is not None:  # no weights depend on it: a sampler option for any checkpoint
            if cfg.decoder_band < 0:
                raise ConfigError(f"--decoder-band must be >= 0, got {cfg.decoder_band}")
            self.model.config.decoder_band = int(cfg.decoder_band)
        self.model.to(dev).eval()
        self.cfg, self.dev = cfg, dev
        self.sources = {"reactface": str(path)}
        self.features = list(self.model.config.output_heads)
        self.data_config = DataConfig(**{**ck.get("data_config", {}), "crop": None})
        self.meta = {"model": "reactface", "window": cfg.window or self.model.config.generate_window,
                     "momentum": cfg.momentum if cfg.momentum is not None else self.model.config.momentum,
                     "decoder_band": self.model.config.decoder_band}

    def __call__(self, batch, k, gen):
        with torch.no_grad():
            out = self.model.generate(batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"],
                                      num_samples=k, window=self.cfg.window, momentum=self.cfg.momentum,
                                      generator=gen, device=self.dev)
        return {f: v.float().cpu().numpy() for f, v in out.items()}


