"""``reactcli train --set section.key=value``: recipe overrides, typed as YAML, with named errors."""

import pytest

from reactcli.errors import ConfigError
from reactcli.training.run import apply_overrides


def test_overrides_are_typed_nested_and_created_when_missing():
    recipe = {"model": "perfrdiff", "model_config": {"d_model": 64}, "train": None}
    out = apply_overrides(recipe, ["model_config.frames_per_token=2", "train.lr=1.0e-3", "train.cosine=true",
                                   "step.target=tdmm", "model_config.layers=[output, layers.0.ffn1]",
                                   "diffusion.eta= 0.5", "seed=3", "model_config.d_model=128"])
    assert out is recipe
    assert recipe == {"model": "perfrdiff", "seed": 3,
                      "model_config": {"d_model": 128, "frames_per_token": 2, "layers": ["output", "layers.0.ffn1"]},
                      "train": {"lr": 1.0e-3, "cosine": True}, "step": {"target": "tdmm"}, "diffusion": {"eta": 0.5}}
    assert apply_overrides({"a": 1}, []) == {"a": 1}


@pytest.mark.parametrize("item,message", [
    ("model_config.frames_per_token", "expected section.key=value"),
    ("=2", "expected section.key=value"),
    ("model_config..d=2", "expected section.key=value"),
    ("model.d_model=2", "model is not a section"),
    ("train.lr=[1, 2", "the value is not valid YAML"),
])
def test_bad_overrides_are_named(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides({"model": "perfrdiff", "train": {}}, [item])
