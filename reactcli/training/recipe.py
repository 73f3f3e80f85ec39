"""Training recipes: YAML files read into typed sections before anything runs.

A recipe is YAML (loaded with ``yaml.safe_load``, never executing anything)::

    model: reactface            # with stage: the registry entry (perfrdiff + gafrg -> perfrdiff-gafrg)
    stage: gafrg                # models with stages only
    seed: 0
    data:    {split: train, audio: mfcc, crop: 256, max_appropriate: 20}   # DataConfig + split
    train:   {epochs: 10, batch_size: 8, lr: 2e-5, ...}                    # TrainConfig
    model_config: {...}         # the model's config dataclass
    ...                         # the sections and top-level options of the model's preset

Which sections a model takes is declared by its :class:`TrainingPreset` (the ``trainer`` of its
registry entry, :mod:`reactcli.models.registry`): every section is a dataclass, every key is
checked against its fields and typed (:func:`reactcli.config.from_mapping`), and an unknown
section or key, or a value of the wrong type, is one :class:`ConfigError` naming it. An empty
section (``step:`` with nothing under it) is the same as no section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from reactcli.config import from_mapping
from reactcli.errors import ConfigError, InputError
from reactcli.manifest.items import ItemTable
from reactcli.models.registry import get_spec, recipe_model_name, resolve
from reactcli.recipes import recipe_path
from reactcli.training.data import DataConfig, ReactionDataset
from reactcli.training.loop import StepFn, TrainConfig

__all__ = ["load_recipe", "apply_overrides", "TrainingPreset", "TrainContext", "TrainingPlan", "ParsedRecipe",
           "parse_recipe", "COMMON_KEYS"]

COMMON_KEYS = ("model", "stage", "seed", "data", "train")
"""Top-level keys every recipe may have; the rest belong to the model's preset."""


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The recipe file ``path``, or the shipped recipe of that name (``synthetic/reactface``, see
    :mod:`reactcli.recipes`), as a mapping (its content is checked by :func:`parse_recipe`)."""
    path = Path(path)
    if not path.is_file():
        shipped = recipe_path(str(path))
        if shipped is None:
            raise InputError(f"{path}: recipe not found (neither a file nor a shipped recipe; "
                             f"`reactcli recipes` lists those)")
        path = shipped
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a recipe must be a mapping of sections")
    return data


def apply_overrides(recipe: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """Set recipe values from ``section.key=value`` items (``reactcli train --set``), in place.

    The dotted path names nested mappings (created when missing); the value is read as YAML, so
    ``2``, ``1.0e-3``, ``true``, ``null`` and ``[a, b]`` get their types. A key the section does
    not know is refused later, by :func:`parse_recipe`, as in a recipe file."""
    for item in items:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. model_config.frames_per_token=2")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc})") from exc
        node = recipe
        for depth, key in enumerate(keys[:-1]):
            if node.get(key) is None:  # a missing (or empty) section
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(keys[:depth + 1])} is not a section")
        node[keys[-1]] = value
    return recipe


@dataclass
class TrainContext:
    """What a preset's builder gets: the parsed recipe and the data it trains on."""

    work: Path
    """The work directory (relative checkpoint paths in a recipe are resolved against it)."""
    recipe: dict[str, Any]
    """The resolved recipe (as saved with the run)."""
    sections: dict[str, Any]
    """Section name -> its parsed dataclass (the preset's sections, defaults where absent)."""
    options: Any
    """The preset's top-level options dataclass (None when it has none)."""
    train: TrainConfig
    """The ``train:`` section."""
    table: ItemTable
    """The training split's items."""
    dataset: ReactionDataset
    """The training dataset (the loop iterates it)."""

    def resolve_path(self, p: str | None) -> str | None:
        """A recipe path: absolute as given, relative against the work directory."""
        if p is None:
            return None
        q = Path(p)
        return str(q if q.is_absolute() else self.work / q)


@dataclass
class TrainingPlan:
    """What a preset's builder returns: the module to train and how."""

    model: torch.nn.Module
    """The module whose weights the checkpoint stores."""
    step: StepFn
    """``step(model, batch, generator) -> (loss, logs)``."""
    config: dict[str, Any]
    """The model's config as plain data (the checkpoint's ``config``)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """More checkpoint entries the model needs to be rebuilt or used (plain data)."""
    parameters: list[torch.nn.Parameter] | None = None
    """What the optimiser updates (default: the model's trainable parameters)."""
    optimizer_factory: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer] | None = None
    """The optimiser (default: AdamW with ``train.lr`` / ``train.weight_decay``)."""
    parents: dict[str, str | None] = field(default_factory=dict)
    """Checkpoints this training starts from (``gafrg_checkpoint`` ...): their content is part
    of the run's identity (resume) and their paths are recorded."""


@dataclass(frozen=True)
class TrainingPreset:
    """A model's recipe schema and builder (the ``trainer`` of its registry entry)."""

    build: Callable[[TrainContext], TrainingPlan]
    """Builds the module and step from the parsed recipe."""
    sections: dict[str, type] = field(default_factory=dict)
    """Recipe section -> dataclass (e.g. ``model_config``, ``step``, ``diffusion``)."""
    options: type | None = None
    """A dataclass whose fields are extra top-level recipe keys (e.g. PSSL's ``temperature``)."""


@dataclass
class ParsedRecipe:
    """A recipe checked against its model's preset."""

    name: str
    """The registry entry."""
    preset: TrainingPreset
    seed: int
    split: str
    data: DataConfig
    train: TrainConfig
    sections: dict[str, Any]
    options: Any


def _empty(value: Any) -> bool:
    return value is None or value == {}


def parse_recipe(recipe: dict[str, Any]) -> ParsedRecipe:
    """Check and type every section and key of ``recipe`` against its model's preset."""
    name = recipe_model_name(recipe.get("model"), recipe.get("stage"))
    preset: TrainingPreset = resolve(get_spec(name).trainer)
    option_keys = [f for f in (preset.options.__dataclass_fields__ if preset.options else {})]
    allowed = set(COMMON_KEYS) | set(preset.sections) | set(option_keys)
    unknown = sorted(str(k) for k, v in recipe.items() if k not in allowed and not _empty(v))
    if unknown:
        raise ConfigError(f"recipe of {name}: unknown sections or keys {unknown}; allowed: {sorted(allowed)}")
    seed = recipe.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"recipe seed: {seed!r} is not an integer")
    data = dict(recipe.get("data") or {})
    if not isinstance(recipe.get("data") or {}, dict):
        raise ConfigError(f"recipe data: expected a mapping, got {recipe.get('data')!r}")
    split = data.pop("split", "train")
    if not isinstance(split, str):
        raise ConfigError(f"data.split: {split!r} is not a split name")
    sections = {key: from_mapping(cls, recipe.get(key), key) for key, cls in preset.sections.items()}
    options = (from_mapping(preset.options, {k: recipe[k] for k in option_keys if k in recipe}, "recipe")
               if preset.options else None)
    return ParsedRecipe(name=name, preset=preset, seed=seed, split=split, data=from_mapping(DataConfig, data, "data"),
                        train=from_mapping(TrainConfig, recipe.get("train"), "train"), sections=sections,
                        options=options)
