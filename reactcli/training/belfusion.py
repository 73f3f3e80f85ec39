"""BeLFusion's training presets: the behaviour autoencoder, then the latent diffusion over it
(registry entries ``belfusion-autoencoder`` and ``belfusion-diffusion``).

* autoencoder (``model: belfusion, stage: autoencoder``): ``model_config``
  (:class:`~reactcli.models.belfusion.BehaviourAEConfig`); step
  :func:`~reactcli.training.belfusion_losses.belfusion_autoencoder_step`.
* diffusion (``model: belfusion, stage: diffusion``): ``model_config``
  (:class:`~reactcli.models.belfusion.BeLFusionConfig`, without ``autoencoder``: that comes from the
  trained stage 1) and ``checkpoints`` (:class:`BeLFusionParents`: the stage-1 ``model.pt``,
  also ``reactcli train --autoencoder-checkpoint``). Before training, the latent statistics
  (per-dim min/max/mean/var) are computed over every whole window of the split's clips, speaker
  and listener side (the authors' ``compute_statistics``), and stored in the checkpoint with the
  frozen autoencoder, so a diffusion checkpoint generates on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import torch

from reactcli.errors import ConfigError
from reactcli.models.belfusion import BehaviourAEConfig, BehaviourAutoencoder, BeLFusion, BeLFusionConfig, latent_statistics
from reactcli.models.registry import load_model
from reactcli.training.belfusion_losses import belfusion_autoencoder_step, belfusion_diffusion_step
from reactcli.training.data import ReactionDataset, collate
from reactcli.training.recipe import TrainContext, TrainingPlan, TrainingPreset

__all__ = ["BeLFusionParents", "AUTOENCODER_PRESET", "DIFFUSION_PRESET", "split_statistics"]

AUTOENCODER_OPTION = "checkpoints.autoencoder (or reactcli train --autoencoder-checkpoint)"


def build_autoencoder(ctx: TrainContext) -> TrainingPlan:
    cfg: BehaviourAEConfig = ctx.sections["model_config"]
    model = BehaviourAutoencoder(cfg)

    def step(net, batch, gen):
        return belfusion_autoencoder_step(net, batch, gen)

    return TrainingPlan(model=model, step=step, config=cfg.to_dict())


@dataclass
class BeLFusionParents:
    """The stage-1 checkpoint the diffusion is trained over (relative: against the work dir)."""

    autoencoder: str | None = None
    """The trained behaviour autoencoder (``runs/belfusion-autoencoder/model.pt``)."""


def split_statistics(ctx: TrainContext, autoencoder: BehaviourAutoencoder, latent: str,
                     batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Latent statistics over every item of the training split, whole clips, speaker and listener
    emotion (:func:`~reactcli.models.belfusion.latent_statistics`)."""
    data = replace(ctx.dataset.cfg, crop=None, max_appropriate=1, history=False)
    ds = ReactionDataset(ctx.work, ctx.table, data, seed=0, train=False)

    def sequences() -> Iterator[torch.Tensor]:
        for start in range(0, len(ds), batch_size):
            batch = collate([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
            yield batch["speaker_emotion"]
            yield batch["listener_emotion"]

    return latent_statistics(autoencoder, sequences(), latent)


def build_diffusion(ctx: TrainContext) -> TrainingPlan:
    cfg: BeLFusionConfig = ctx.sections["model_config"]
    parents: BeLFusionParents = ctx.sections["checkpoints"]
    if "autoencoder" in (ctx.recipe.get("model_config") or {}):
        raise ConfigError("model_config.autoencoder: the autoencoder's config comes from its trained checkpoint; "
                          f"set {AUTOENCODER_OPTION} instead")
    if parents.autoencoder is None:
        raise ConfigError(f"belfusion diffusion trains over a trained BeLFusion autoencoder: set {AUTOENCODER_OPTION}")
    path = ctx.resolve_path(parents.autoencoder)
    autoencoder, _ = load_model(path, ("belfusion-autoencoder",), asset="BeLFusion autoencoder checkpoint",
                                option=AUTOENCODER_OPTION)
    if cfg.latent == "hidden" and autoencoder.config.z_dim != autoencoder.config.hidden_dim:
        raise ConfigError(f"model_config.latent: hidden needs an autoencoder with z_dim == hidden_dim; {path} has "
                          f"z_dim {autoencoder.config.z_dim}, hidden_dim {autoencoder.config.hidden_dim} (use latent: mu)")
    stats = split_statistics(ctx, autoencoder, cfg.latent) if cfg.preprocessing != "none" else None
    model = BeLFusion.from_autoencoder(autoencoder, stats, cfg)

    def step(net, batch, gen):
        return belfusion_diffusion_step(net, batch, gen)

    return TrainingPlan(model=model, step=step, config=model.config.to_dict(),
                        parameters=[p for p in model.denoiser.parameters() if p.requires_grad],
                        parents={"autoencoder_checkpoint": path})


AUTOENCODER_PRESET = TrainingPreset(build=build_autoencoder, sections={"model_config": BehaviourAEConfig})
DIFFUSION_PRESET = TrainingPreset(build=build_diffusion, sections={"model_config": BeLFusionConfig,
                                                                  "checkpoints": BeLFusionParents})
