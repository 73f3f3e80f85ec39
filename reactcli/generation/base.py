"""What every generator shares: the options of ``reactcli generate`` and the generator interface.

A generator (one class per model family, :mod:`.reactface`, :mod:`.perfrdiff`, named by the
model's registry entry) is built from a checkpoint and the options, and turns a batch of speaker
items into K reactions per item: ``generator(batch, K, torch_generator) -> {feature: (B, K, T, D)}``.
The stage (:mod:`.run`) owns the batches, the seeds, the resume fingerprints and the shards.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from reactcli.models.checkpoint import sha1_of
from reactcli.training.data import DataConfig

__all__ = ["GenerateConfig", "Generator", "seeded", "refuse_options"]


@dataclass
class GenerateConfig:
    """Options of ``reactcli generate``: common ones, then each model family's sampler options
    (the CLI shows them in one help panel per family). A sampler option left at None takes the
    value the checkpoint was trained for (its recipe)."""

    split: str = "test"
    """Split whose speaker items get reactions."""
    num_samples: int = 10
    """K reactions per item."""
    batch_size: int = 4
    """Clips per model call (x K samples each)."""
    frames: int = 750
    """Frames generated per clip."""
    window: int | None = None
    """ReactFace, Trans-VAE (online): window size in frames (default: the checkpoint's generate_window)."""
    momentum: float | None = None
    """ReactFace: latent momentum alpha (default: the checkpoint's)."""
    decoder_band: int | None = None
    """ReactFace: frames the decoder sees before each output frame across window edges (0 = the
    paper's window-local decoder, which jumps at window edges); default: the checkpoint's
    (checkpoints from before issue 29: 0)."""
    steps: int | None = None
    """PerFRDiff, BeLFusion: DDIM steps (default: the checkpoint's ``diffusion.num_inference_steps``;
    BeLFusion's ``inference_steps``, i.e. every training step)."""
    guidance: float | None = None
    """PerFRDiff: classifier-free guidance scale, 1 = conditional only (default: the checkpoint's
    ``diffusion.guidance_scale``)."""
    overlap: bool | None = None
    """PerFRDiff: overlapping windows (stride w/2, shared noise) to avoid seams (not strictly
    online: a frame is blended with a window that sees later speaker frames); None: the
    checkpoint's ``diffusion.overlap`` (off when ``context`` > 0 is given)."""
    context: int | None = None
    """PerFRDiff: frames of the reaction generated so far that each window continues (online, no
    seams; 0 = independent windows); default: the checkpoint's ``diffusion.context_frames``."""
    timestep_spacing: str | None = None
    """PerFRDiff: how the DDIM steps are placed over the training steps (``leading``,
    ``trailing``, ``linspace``); default: the checkpoint's diffusion config."""
    personalised: bool = False
    """PerFRDiff: edit GAFRG per listener with PSSL style + PWSG (needs --pwsg-checkpoint); a PWSG
    with listener codes uses a code per listener instead (see ``own_codes``)."""
    pwsg_checkpoint: str | None = None
    """PerFRDiff personalised: the trained PWSG (its checkpoint names GAFRG and PSSL)."""
    own_codes: bool = True
    """PerFRDiff personalised, PWSG with listener codes: a listener the PWSG was trained on (the
    same identity in ``manifests/identities.json``, a listener of its training split) gets their
    own learned code, fitted on all their training clips; the others' codes are read from their
    history clip. False: read every listener's code from the history clip."""
    new_listeners: str = "read"
    """PerFRDiff personalised, PWSG with listener codes, with ``own_codes``: what a listener the
    PWSG was not trained on gets: ``read`` (the code that best explains their history clip) or
    ``generic`` (no edit: the generic GAFRG's reaction, as no code is known for them)."""
    precision: str = "fp32"
    """PerFRDiff: the dtype the denoiser runs in: ``fp32`` (the same bits on every machine) or
    ``bf16`` (several times faster on CPUs with AVX512-BF16 / AMX and on bf16 GPUs; the noise and
    the DDIM update stay float32). Listener-code readings are always made in float32."""
    eta: float | None = None
    """BeLFusion: DDIM stochasticity eta >= 0 (default: the checkpoint's, the authors' 0)."""
    seed: int = 0
    """Noise seed."""
    device: str = "cpu"
    """cpu, cuda or auto."""


#: Sampler options of one family each, at their "not given" value (``refuse_options``).
FAMILY_OPTIONS: dict[str, Any] = {"window": None, "momentum": None, "steps": None, "guidance": None, "overlap": None,
                                  "timestep_spacing": None, "personalised": False, "pwsg_checkpoint": None,
                                  "precision": "fp32", "eta": None}


def refuse_options(cfg: GenerateConfig, family: str, accepted: tuple[str, ...]) -> None:
    """A :class:`ConfigError` naming the first sampler option of another family that ``cfg`` sets
    (``family`` reads only ``accepted``), so that an option never silently does nothing."""
    from reactcli.errors import ConfigError

    for name, unset in FAMILY_OPTIONS.items():
        if name not in accepted and getattr(cfg, name) != unset:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} is not an option of {family} (its sampler options: "
                              f"{', '.join('--' + a.replace('_', '-') for a in accepted) or 'none'})")


def seeded(seed: int, first: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device if device.type == "cuda" else "cpu")
    g.manual_seed(int(hashlib.sha1(f"{seed}:{first}".encode()).hexdigest()[:12], 16))
    return g


class Generator:
    """A loaded generator: ``features`` it writes and ``__call__(batch, K, gen) -> {feature: (B,K,T,D)}``.

    Subclasses are built as ``cls(checkpoint: dict, path: str, cfg: GenerateConfig, device)``;
    ``cfg`` is the options with every None sampler option resolved from the checkpoint."""

    cfg: GenerateConfig

    features: list[str]
    meta: dict[str, Any]
    data_config: DataConfig
    sources: dict[str, str]
    """Role -> path of every checkpoint the output depends on (their checksums enter the fingerprint)."""

    def __call__(self, batch: dict[str, torch.Tensor], k: int, gen: torch.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def use_work(self, work: str | os.PathLike) -> None:
        """Keep what is expensive to recompute (e.g. read listener codes) in the work directory."""

    @cached_property
    def checksums(self) -> dict[str, str]:
        """Role -> SHA-1 of every checkpoint in ``sources``, hashed once per loaded model (a
        paper-size checkpoint is ~100 MB; the cache key, the fingerprint and the record share them)."""
        return {role: sha1_of(p) for role, p in sorted(self.sources.items())}


