"""Recipes are checked before anything runs: every section and key against the model's preset,
every value against its type and range, one line per error naming the key, the value and what is
allowed; scientific notation is a number."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from reactcli.config import Range
from reactcli.errors import ConfigError
from reactcli.models.registry import MODELS, resolve
from reactcli.recipes import recipe_names, recipe_path
from reactcli.training.data import DataConfig
from reactcli.training.loop import TrainConfig
from reactcli.training.recipe import load_recipe, parse_recipe

GAFRG = load_recipe("synthetic/perfrdiff-gafrg")
REACTFACE = load_recipe("synthetic/reactface")


def _with(recipe: dict, path: str, value) -> dict:
    out = yaml.safe_load(yaml.safe_dump(recipe))
    *sections, key = path.split(".")
    node = out
    for s in sections:
        node = node.setdefault(s, {})
    node[key] = value
    return out


@pytest.mark.parametrize("name", recipe_names())
def test_every_shipped_recipe_parses(name):
    parsed = parse_recipe(load_recipe(recipe_path(name)))
    assert parsed.name in MODELS


@pytest.mark.parametrize("section", ["training", "model-config", "difusion"])
def test_a_misspelled_section_is_named(section):
    with pytest.raises(ConfigError, match=rf"unknown sections or keys \['{section}'\]"):
        parse_recipe({**GAFRG, section: {"epochs": 3}})


def test_an_unknown_key_is_named_with_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"train: unknown keys \['epoch'\]; allowed: \[.*'epochs'"):
        parse_recipe(_with(GAFRG, "train.epoch", 3))


def test_scientific_notation_is_a_number():
    raw = yaml.safe_load("train: {lr: 1e-3, weight_decay: 5E-4}")  # PyYAML reads these as strings
    assert raw["train"]["lr"] == "1e-3"
    parsed = parse_recipe({**GAFRG, "train": {**GAFRG["train"], **raw["train"]}})
    assert parsed.train.lr == pytest.approx(1e-3) and parsed.train.weight_decay == pytest.approx(5e-4)


@pytest.mark.parametrize("path, value, message", [
    ("train.epochs", 0, r"train.epochs: 0 is out of range; allowed: >= 1"),
    ("train.epochs", -3, r"train.epochs: -3 is out of range"),
    ("train.epochs", "ten", r"train.epochs: 'ten' is not an integer"),
    ("train.batch_size", 0, r"train.batch_size: 0 is out of range"),
    ("train.lr", -1e-3, r"train.lr: -0.001 is out of range; allowed: > 0"),
    ("train.lr", float("nan"), r"train.lr: nan is not a finite number"),
    ("train.lr", "fast", r"train.lr: 'fast' is not a number"),
    ("data.crop", 0, r"data.crop: 0 is out of range"),
    ("data.max_appropriate", -1, r"data.max_appropriate: -1 is out of range"),
    ("model_config.d_model", 0, r"model_config.d_model: 0 is out of range"),
    ("model_config.dropout", 1.5, r"model_config.dropout: 1.5 is out of range; allowed: \[0, 1\]"),
    ("model_config.clip_position", "yes", r"model_config.clip_position: 'yes' is not true or false"),
    ("diffusion.guidance_scale", float("inf"), r"diffusion.guidance_scale: inf is not a finite number"),
    ("diffusion.prediction_type", "noise", r"diffusion.prediction_type: 'noise' is not one of 'sample'"),
    ("step.reactions_per_item", 0, r"step.reactions_per_item: 0 is out of range"),
    ("seed", "zero", r"seed: 'zero' is not an integer"),
])
def test_bad_values_are_one_named_line(path, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_recipe(_with(GAFRG, path, value))
    assert "\n" not in str(err.value)


def test_a_section_that_is_not_a_mapping_is_named():
    with pytest.raises(ConfigError, match="train: expected a mapping of TrainConfig keys, got list"):
        parse_recipe({**REACTFACE, "train": [1, 2]})


def _numeric(tp) -> bool:
    args = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in (typing.Union,) else [tp]
    base = [typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a for a in args]
    return any(b in (int, float) for b in base)


def _ranged(tp) -> bool:
    if typing.get_origin(tp) is typing.Annotated:
        return any(isinstance(e, Range) for e in typing.get_args(tp)[1:])
    if typing.get_origin(tp) in (typing.Union, tuple):
        args = [a for a in typing.get_args(tp) if a not in (type(None), Ellipsis)]
        return bool(args) and all(_ranged(a) for a in args)
    return False


def test_every_numeric_recipe_key_declares_its_range():
    """The schema covers every key: a numeric field without a declared range would let a
    negative size or epoch count through to a traceback."""
    classes = {TrainConfig, DataConfig}
    for spec in MODELS.values():
        preset = resolve(spec.trainer)
        classes |= set(preset.sections.values()) | ({preset.options} if preset.options else set())
    unranged = []
    for cls in classes:
        for f, tp in typing.get_type_hints(cls, include_extras=True).items():
            if f in {x.name for x in dataclasses.fields(cls)} and (_numeric(tp) or typing.get_origin(tp) is tuple) \
                    and not _ranged(tp) and not (typing.get_origin(tp) is tuple and not _numeric(typing.get_args(tp)[0])):
                unranged.append(f"{cls.__name__}.{f}")
    assert unranged == []


def test_cli_reports_a_bad_recipe_in_one_line_and_writes_nothing(tmp_path, cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with(REACTFACE, "train.epochs", -1)))
    res = cli("train", "--work", tmp_path / "w", "--config", bad)
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == ["error: train.epochs: -1 is out of range; allowed: >= 1"]
    assert not (tmp_path / "w").exists()
