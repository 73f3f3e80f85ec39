"""ReactFace's training preset: recipe sections and builder (registry entry ``reactface``).

Recipe sections: ``model_config`` (:class:`~reactcli.models.reactface.ReactFaceConfig`) and
``step`` (:class:`ReactFaceStep`). The two training stages of the paper (Sec. 4.4) switch at
``step.stage1_epochs``; the losses are in :mod:`reactcli.training.reactface_losses`.
"""

from __future__ import annotations

from dataclasses import dataclass

from reactcli.config import NonNegativeInt
from reactcli.models.reactface import ReactFace, ReactFaceConfig
from reactcli.training.reactface_losses import reactface_training_step
from reactcli.training.recipe import TrainContext, TrainingPlan, TrainingPreset

__all__ = ["ReactFaceStep", "build_training", "PRESET"]


@dataclass
class ReactFaceStep:
    """What a ReactFace training step does over the epochs."""

    stage1_epochs: NonNegativeInt | None = None
    """Epochs of stage 1 (own-listener reconstruction) before stage 2 (min over the appropriate
    reactions + diversity); default half of ``train.epochs`` (at least 1)."""


def build_training(ctx: TrainContext) -> TrainingPlan:
    cfg: ReactFaceConfig = ctx.sections["model_config"]
    model = ReactFace(cfg)
    stage1 = ctx.sections["step"].stage1_epochs
    stage1 = int(stage1 if stage1 is not None else max(1, ctx.train.epochs // 2))
    dataset = ctx.dataset

    def step(net, batch, gen):
        # Paper Sec. 4.4: stage 1 for the first epochs, then stage 2 (dataset.epoch is set by the
        # loop on every rank, so DDP ranks switch together and resume keeps the stage).
        return reactface_training_step(net, batch, stage=1 if dataset.epoch < stage1 else 2, generator=gen)

    return TrainingPlan(model=model, step=step, config=cfg.to_dict(), meta={"stage1_epochs": stage1})


PRESET = TrainingPreset(build=build_training, sections={"model_config": ReactFaceConfig, "step": ReactFaceStep})
