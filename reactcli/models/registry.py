"""The model registry: one entry per trainable model (preset), the single place that wires a model
into ``reactcli train``, ``reactcli generate`` and the checkpoint loader.

An entry (:class:`ModelSpec`) names, as ``"module:attribute"`` strings resolved on first use
(so importing the registry imports no model, and no lower layer imports a higher one):

- ``config``: the model's config dataclass (with ``to_dict`` / ``from_dict``), stored as plain
  data in every checkpoint (:mod:`reactcli.models.checkpoint`);
- ``model``: the ``nn.Module`` class, built as ``model(config)``, or ``build``: a function
  ``build(config, checkpoint) -> nn.Module`` for models that need more than their config (PWSG
  needs the edited layers' shapes);
- ``trainer``: the training builder in :mod:`reactcli.training` (``build(ctx) -> TrainingPlan``)
  and the recipe sections it reads;
- ``generator``: the generator class in :mod:`reactcli.generation` that turns a checkpoint into K
  reactions per item (None for a model that cannot generate on its own, e.g. the PSSL encoder).

A recipe's ``model`` (and ``stage``) select the entry: ``model: perfrdiff, stage: gafrg`` is
``perfrdiff-gafrg``. Adding a model: its module (or folder) under ``reactcli/models/``, its
training builder under ``reactcli/training/``, its generator under ``reactcli/generation/``, and
one entry in :data:`MODELS` (see docs/architecture.md).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

import torch

from reactcli.errors import ConfigError, InputError
from reactcli.models.checkpoint import load_checkpoint, load_state_strict

__all__ = ["ModelSpec", "MODELS", "get_spec", "resolve", "recipe_model_name", "load_model", "build_model"]


@dataclass(frozen=True)
class ModelSpec:
    """How one model plugs into the pipeline (all references are ``"module:attribute"``)."""

    name: str
    """Registry name, written as ``model`` into its checkpoints."""
    description: str
    """One line for ``--help`` and the docs."""
    config: str
    """The config dataclass."""
    trainer: str
    """The training preset (:class:`reactcli.training.recipe.TrainingPreset`): recipe sections and builder."""
    model: str | None = None
    """The module class, built as ``model(config)`` (or see ``build``)."""
    build: str | None = None
    """``build(config, checkpoint) -> nn.Module`` when the config alone does not determine the module."""
    generator: str | None = None
    """The generator class (``reactcli.generation``); None: this model cannot generate alone."""


_RF, _PD = "reactcli.models.reactface", "reactcli.models.perfrdiff"
_TV, _BF = "reactcli.models.transvae", "reactcli.models.belfusion"

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("reactface", "ReactFace: online transformer VAE (Luo et al.)",
              config=f"{_RF}:ReactFaceConfig", model=f"{_RF}:ReactFace",
              trainer="reactcli.training.reactface:PRESET",
              generator="reactcli.generation.reactface:ReactFaceGenerator"),
    ModelSpec("perfrdiff-gafrg", "PerFRDiff GAFRG: the generic diffusion generator",
              config=f"{_PD}.gafrg:GAFRGConfig", model=f"{_PD}.gafrg:GAFRG",
              trainer="reactcli.training.perfrdiff:GAFRG_PRESET",
              generator="reactcli.generation.perfrdiff:PerFRDiffGenerator"),
    ModelSpec("perfrdiff-pssl", "PerFRDiff PSSL: the listener style encoder",
              config=f"{_PD}.pssl:PSSLConfig", model=f"{_PD}.pssl:PSSLEncoder",
              trainer="reactcli.training.perfrdiff:PSSL_PRESET"),
    ModelSpec("perfrdiff-pwsg", "PerFRDiff PWSG: the personalised weight editor (over a trained GAFRG)",
              config=f"{_PD}.pwsg:PWSGConfig", build=f"{_PD}.pwsg:pwsg_from_checkpoint",
              trainer="reactcli.training.perfrdiff:PWSG_PRESET",
              generator="reactcli.generation.perfrdiff:PerFRDiffGenerator"),
    ModelSpec("transvae", "Trans-VAE: the REACT challenge's transformer-VAE baseline, offline or online",
              config=f"{_TV}:TransVAEConfig", model=f"{_TV}:TransVAE",
              trainer="reactcli.training.transvae:PRESET",
              generator="reactcli.generation.transvae:TransVAEGenerator"),
    ModelSpec("belfusion-autoencoder", "BeLFusion stage 1: the behaviour autoencoder (REACT challenge baseline)",
              config=f"{_BF}:BehaviourAEConfig", model=f"{_BF}:BehaviourAutoencoder",
              trainer="reactcli.training.belfusion:AUTOENCODER_PRESET"),
    ModelSpec("belfusion-diffusion", "BeLFusion stage 2: latent diffusion over the behaviour autoencoder",
              config=f"{_BF}:BeLFusionConfig", model=f"{_BF}:BeLFusion",
              trainer="reactcli.training.belfusion:DIFFUSION_PRESET",
              generator="reactcli.generation.belfusion:BeLFusionGenerator"),
)}


def resolve(ref: str) -> Any:
    """The object a ``"module:attribute"`` reference names."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_spec(name: str) -> ModelSpec:
    """The entry of ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def recipe_model_name(model: Any, stage: Any) -> str:
    """The registry name a recipe's ``model`` and ``stage`` select (``perfrdiff`` + ``gafrg`` ->
    ``perfrdiff-gafrg``); a recipe that names no entry is a :class:`ConfigError`."""
    name = f"{model}-{stage}" if stage else str(model)
    if name in MODELS:
        return name
    families = sorted({n.split("-")[0] for n in MODELS})
    if model not in families:
        raise ConfigError(f"recipe model {model!r}: expected one of {families}")
    stages = sorted(n.split("-", 1)[1] for n in MODELS if n.startswith(f"{model}-"))
    raise ConfigError(f"{model} needs stage: one of {stages} (got {stage!r})" if stages
                      else f"recipe model {model!r} takes no stage (got {stage!r})")


def build_model(checkpoint: dict[str, Any]) -> torch.nn.Module:
    """A fresh module of the checkpoint's model, built from its stored config (no weights)."""
    spec = get_spec(checkpoint["model"])
    config = resolve(spec.config).from_dict(checkpoint["config"])
    if spec.build:
        return resolve(spec.build)(config, checkpoint)
    return resolve(spec.model)(config)


def load_model(path: str | os.PathLike | None, expect: tuple[str, ...] | None = None,
               map_location: str | torch.device = "cpu", *, asset: str = "checkpoint",
               option: str = "--checkpoint") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild and load the model of checkpoint ``path`` (any reactcli release's format); returns
    ``(module, checkpoint dict)``. Every stored tensor must fit (:func:`load_state_strict`)."""
    ck = load_checkpoint(path, map_location, expect=expect, asset=asset, option=option)
    if ck.get("model") not in MODELS:
        raise InputError(f"{path}: checkpoint of model {ck.get('model')!r}, which this reactcli does not know "
                         f"(known: {', '.join(MODELS)})")
    module = build_model(ck)
    load_state_strict(module, ck["state_dict"], path)
    return module, ck
