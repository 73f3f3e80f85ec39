"""Trans-VAE's generator (registry entry ``transvae``): the whole clip (offline) or window by
window (online), K latent samples per item in one batch (:meth:`reactcli.models.transvae.TransVAE.generate`).
Sampler option: ``--window`` (online checkpoints; default the checkpoint's ``generate_window``)."""

from __future__ import annotations

from typing import Any

import torch

from reactcli.errors import ConfigError
from reactcli.generation.base import GenerateConfig, Generator, refuse_options
from reactcli.models.checkpoint import load_state_strict
from reactcli.models.registry import build_model
from reactcli.training.data import DataConfig

__all__ = ["TransVAEGenerator"]


class TransVAEGenerator(Generator):
    def __init__(self, ck: dict[str, Any], path: str, cfg: GenerateConfig, dev: torch.device):
        refuse_options(cfg, "Trans-VAE", ("window",))
        self.model = build_model(ck)
        load_state_strict(self.model, ck["state_dict"], path)
        mcfg = self.model.config
        if mcfg.visual_encoder == "video":
            raise ConfigError(f"{path}: a Trans-VAE with the authors' video encoder needs speaker frames, which "
                              "reactcli does not store; generate with a features-encoder checkpoint")
        if cfg.window is not None and not mcfg.online:
            raise ConfigError(f"--window: {path} is an offline Trans-VAE (it generates the whole clip at once)")
        if cfg.window is not None and cfg.window < 1:
            raise ConfigError(f"--window must be >= 1, got {cfg.window}")
        self.model.to(dev).eval()
        self.cfg, self.dev = cfg, dev
        self.sources = {"transvae": str(path)}
        self.features = ["emotion", "tdmm"]
        self.data_config = DataConfig(**{**ck.get("data_config", {}), "crop": None})
        self.meta = {"model": "transvae", "online": mcfg.online,
                     "window": (cfg.window or mcfg.generate_window) if mcfg.online else None}

    def __call__(self, batch, k, gen):
        with torch.no_grad():
            out = self.model.generate(batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"],
                                      num_samples=k, window=self.meta["window"], generator=gen, device=self.dev)
        return {f: out[f].float().cpu().numpy() for f in self.features}
