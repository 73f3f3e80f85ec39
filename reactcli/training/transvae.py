"""Trans-VAE's training preset (registry entry ``transvae``).

Recipe section: ``model_config`` (:class:`~reactcli.models.transvae.TransVAEConfig`: the network,
online/offline, and the loss weights and options, so the checkpoint records them). The step is
:func:`reactcli.training.transvae_losses.transvae_training_step` (reconstruction + KL + the
two-sample diversity loss, as the authors' ``train.py``).
"""

from __future__ import annotations

from reactcli.errors import ConfigError
from reactcli.models.transvae import TransVAE, TransVAEConfig
from reactcli.training.recipe import TrainContext, TrainingPlan, TrainingPreset
from reactcli.training.transvae_losses import transvae_training_step

__all__ = ["build_training", "PRESET"]


def build_training(ctx: TrainContext) -> TrainingPlan:
    cfg: TransVAEConfig = ctx.sections["model_config"]
    if cfg.visual_encoder == "video":
        raise ConfigError("model_config.visual_encoder: video needs speaker frames, which reactcli batches do not "
                          "carry; train with visual_encoder: features (the video encoder is for released weights)")
    model = TransVAE(cfg)

    def step(net, batch, gen):
        return transvae_training_step(net, batch, gen)

    return TrainingPlan(model=model, step=step, config=cfg.to_dict())


PRESET = TrainingPreset(build=build_training, sections={"model_config": TransVAEConfig})
