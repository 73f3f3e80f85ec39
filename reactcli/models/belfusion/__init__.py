"""BeLFusion as the REACT challenge adapted it: a latent diffusion over a behaviour autoencoder.

Source: the challenge's baseline code (``reactmultimodalchallenge/baseline_react2023`` at commit
``c5a8ff8563284e311f89fdf10558f3ae8f0082dd``: ``model/belfusion/``, ``model/losses.py``,
``train_belfusion.py``, ``config/1_belfusion_vae.yaml``, ``config/2_belfusion_ldm.yaml``; the 2024
release has the same model), itself adapted from Barquero et al.'s BeLFusion. It reads and
writes the speaker's and listener's 25-d emotion only; the 3DMM is regressed from the generated
emotion.

Public API (what the model registry wires), one per stage:

* stage 1, the behaviour autoencoder: :class:`BehaviourAEConfig`, :class:`BehaviourAutoencoder`,
  step ``reactcli.training.belfusion_losses.belfusion_autoencoder_step``; afterwards
  :func:`latent_statistics` over the training clips (the authors' ``compute_statistics``);
* stage 2, the latent diffusion: :class:`BeLFusionConfig`, :class:`BeLFusion` (built with
  :meth:`BeLFusion.from_autoencoder`), step
  ``reactcli.training.belfusion_losses.belfusion_diffusion_step``; generation
  :meth:`BeLFusion.generate` -> ``{"emotion": (B, K, T, 25), "tdmm": (B, K, T, 58)}``;
* released weights: :func:`load_released_belfusion` (stage 2 + its stage 1, strict) and
  :func:`load_released_autoencoder`.

The DDPM schedule and the DDIM update are diffusers' ``DDIMScheduler`` (:func:`make_scheduler`),
as PerFRDiff uses it. See :mod:`.autoencoder`, :mod:`.denoiser` and :mod:`.model` for the
networks and for where reactcli departs from the authors' code.
"""

from .autoencoder import EMOTION_DIM, TDMM_DIM, BehaviourAEConfig, BehaviourAutoencoder, latent_statistics
from .denoiser import LatentDenoiser, timestep_embedding
from .model import BeLFusion, BeLFusionConfig, make_scheduler
from .released import load_released_autoencoder, load_released_belfusion

__all__ = [
    "EMOTION_DIM",
    "TDMM_DIM",
    "BeLFusion",
    "BeLFusionConfig",
    "BehaviourAEConfig",
    "BehaviourAutoencoder",
    "LatentDenoiser",
    "latent_statistics",
    "load_released_autoencoder",
    "load_released_belfusion",
    "make_scheduler",
    "timestep_embedding",
]
