"""PerFRDiff's training presets: GAFRG, PSSL and PWSG (registry entries ``perfrdiff-gafrg``,
``perfrdiff-pssl``, ``perfrdiff-pwsg``).

* GAFRG: ``model_config`` (:class:`~reactcli.models.perfrdiff.GAFRGConfig`), ``diffusion``
  (:class:`~reactcli.models.perfrdiff.DiffusionConfig`, stored in the checkpoint so generation
  uses the same schedule) and ``step`` (:class:`~reactcli.training.perfrdiff_losses.PerFRDiffStepConfig`).
* PSSL: ``model_config`` (:class:`~reactcli.models.perfrdiff.PSSLConfig`) and the top-level
  ``temperature`` of the supervised contrastive loss (:class:`PSSLOptions`).
* PWSG: ``model_config`` (:class:`~reactcli.models.perfrdiff.PWSGConfig`), ``step``,
  ``checkpoints`` (the trained GAFRG and PSSL, :class:`PWSGParents`) and the top-level ``style``,
  ``optimizer`` and ``code_lr`` (:class:`PWSGOptions`). GAFRG and PSSL are frozen; only the
  editor (and, with ``style: codes``, the listener codes) train.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch

from reactcli.config import PositiveFloat
from reactcli.errors import ConfigError
from reactcli.models.perfrdiff import (
    GAFRG,
    DiffusionConfig,
    GAFRGConfig,
    PSSLConfig,
    PSSLEncoder,
    PWSGConfig,
    build_pwsg_training,
    make_scheduler,
    pwsg_extra,
)
from reactcli.training.perfrdiff_losses import (
    PerFRDiffStepConfig,
    gafrg_training_step,
    pssl_training_step,
    pwsg_training_step,
)
from reactcli.training.recipe import TrainContext, TrainingPlan, TrainingPreset

__all__ = ["PSSLOptions", "PWSGOptions", "PWSGParents", "GAFRG_PRESET", "PSSL_PRESET", "PWSG_PRESET"]


def build_gafrg(ctx: TrainContext) -> TrainingPlan:
    gcfg: GAFRGConfig = ctx.sections["model_config"]
    dcfg: DiffusionConfig = ctx.sections["diffusion"]
    step_cfg: PerFRDiffStepConfig = ctx.sections["step"]
    scheduler = make_scheduler(dcfg)
    model = GAFRG(gcfg)

    def step(net, batch, gen):
        return gafrg_training_step(net, scheduler, batch, generator=gen, config=step_cfg)

    return TrainingPlan(model=model, step=step, config=gcfg.to_dict(), meta={"diffusion": dcfg.to_dict()})


@dataclass
class PSSLOptions:
    """PSSL's top-level recipe keys."""

    temperature: PositiveFloat = 0.07
    """Temperature of the supervised contrastive loss (paper: 0.07)."""


def build_pssl(ctx: TrainContext) -> TrainingPlan:
    pcfg: PSSLConfig = ctx.sections["model_config"]
    model = PSSLEncoder(pcfg)
    temperature = ctx.options.temperature

    def step(net, batch, gen):
        return pssl_training_step(net, batch, temperature=temperature)

    return TrainingPlan(model=model, step=step, config=pcfg.to_dict())


@dataclass
class PWSGParents:
    """The stage-1 checkpoints the editor is trained over (relative paths: against the work dir)."""

    gafrg: str | None = None
    """The trained GAFRG (``reactcli train --gafrg-checkpoint``)."""
    pssl: str | None = None
    """The trained PSSL (``--pssl-checkpoint``); none with ``style: codes``."""


@dataclass
class PWSGOptions:
    """PWSG's top-level recipe keys."""

    style: Literal["pssl", "codes"] = "pssl"
    """Where a listener's style comes from: their history clip through the PSSL (the paper), or a
    code learned per training listener (``codes``; new listeners' codes are read at generation)."""
    optimizer: Literal["sgd", "adamw"] = "sgd"
    """SGD with momentum 0.9 and weight decay 1e-4 (the paper) or AdamW."""
    code_lr: PositiveFloat | None = None
    """Learning rate of the listener codes (no weight decay); default 10 x ``train.lr``."""


def build_pwsg(ctx: TrainContext) -> TrainingPlan:
    wcfg: PWSGConfig = ctx.sections["model_config"]
    step_cfg: PerFRDiffStepConfig = ctx.sections["step"]
    parents: PWSGParents = ctx.sections["checkpoints"]
    opts: PWSGOptions = ctx.options
    if wcfg.codes:
        raise ConfigError("model_config.codes is set by the trainer: write style: codes instead")
    code_ids = None
    if opts.style == "codes":  # one code per identity of the split; listener_id indexes them
        code_ids = sorted(ctx.table.identities, key=ctx.table.identities.get)
        wcfg = replace(wcfg, codes=len(code_ids))
    gafrg_path, pssl_path = ctx.resolve_path(parents.gafrg), ctx.resolve_path(parents.pssl)
    setup = build_pwsg_training(gafrg_path, pssl_path, wcfg, device="cpu", code_identities=code_ids)
    scheduler = make_scheduler(setup.diffusion)
    model = setup.editor
    code_lr = opts.code_lr if opts.code_lr is not None else 10 * ctx.train.lr
    lr, weight_decay = ctx.train.lr, ctx.train.weight_decay

    def optimizer_factory(ps):  # the codes get their own learning rate and no weight decay
        codes = [p for p in ps if p is model.codes]
        groups = [{"params": [p for p in ps if p is not model.codes]}]
        if codes:
            groups.append({"params": codes, "lr": code_lr, "weight_decay": 0.0})
        if opts.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=1e-4)
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)

    def step(net, batch, gen):
        setup.gafrg.to(batch["speaker_audio"].device)
        if setup.pssl is not None:
            setup.pssl.to(batch["speaker_audio"].device)
        return pwsg_training_step(setup, scheduler, batch, generator=gen, config=step_cfg)

    # the editor resolves relative layer names ("layers.-1.ffn1"); save what it resolved to, so
    # the checkpoint rebuilds with the same names as its layer_shapes
    meta = {**pwsg_extra(setup.editor), "diffusion": setup.diffusion.to_dict()}
    if code_ids is not None:  # the codes that training moves: the split's listeners
        meta["code_listeners"] = sorted({ctx.table.resolver(p.listener) for p in ctx.table.pairs})
    return TrainingPlan(model=model, step=step, config=setup.editor.config.to_dict(), meta=meta,
                        parameters=setup.trainable_parameters(), optimizer_factory=optimizer_factory,
                        parents={"gafrg_checkpoint": gafrg_path, "pssl_checkpoint": pssl_path})


GAFRG_PRESET = TrainingPreset(build=build_gafrg, sections={
    "model_config": GAFRGConfig, "diffusion": DiffusionConfig, "step": PerFRDiffStepConfig})
PSSL_PRESET = TrainingPreset(build=build_pssl, sections={"model_config": PSSLConfig}, options=PSSLOptions)
PWSG_PRESET = TrainingPreset(build=build_pwsg, sections={
    "model_config": PWSGConfig, "step": PerFRDiffStepConfig, "checkpoints": PWSGParents}, options=PWSGOptions)
