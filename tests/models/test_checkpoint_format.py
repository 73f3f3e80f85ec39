"""The one checkpoint format: every model kind loads through one path, with weights_only=True, and
the files reactcli 0.1.0 wrote still load and still give the same reactions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.errors import InputError, MissingAssetError
from reactcli.models.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint, save_model
from reactcli.models.perfrdiff import generate, load_gafrg, load_pssl, load_pwsg
from reactcli.models.registry import MODELS, load_model, recipe_model_name

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy_v1"
OUT = dict(np.load(LEGACY / "outputs.npz"))
X = {k: torch.from_numpy(OUT[k]) for k in ("speaker_audio", "speaker_emotion", "speaker_tdmm")}


@pytest.mark.parametrize("name", ["reactface", "perfrdiff-gafrg", "perfrdiff-pssl", "perfrdiff-pwsg"])
def test_legacy_trainer_checkpoints_load_in_the_current_layout(name):
    ck = load_checkpoint(LEGACY / f"{name}.pt")
    assert ck["model"] == name and ck["format_version"] == FORMAT_VERSION
    assert "build" not in ck and "kind" not in ck and isinstance(ck["config"], dict)
    module, _ = load_model(LEGACY / f"{name}.pt", expect=(name,))
    classes = {"reactface": "ReactFace", "perfrdiff-gafrg": "GAFRG", "perfrdiff-pssl": "PSSLEncoder", "perfrdiff-pwsg": "PWSG"}
    assert type(module).__name__ == classes[name] and name in MODELS
    # every stored value is kept; options added since then take their defaults (the old behaviour)
    assert ck["config"].items() <= module.config.to_dict().items()


def test_legacy_reactface_generates_what_it_generated():
    model, _ = load_model(LEGACY / "reactface.pt")
    y = model.eval().generate(X["speaker_audio"], X["speaker_emotion"], X["speaker_tdmm"], num_samples=2,
                              generator=torch.Generator().manual_seed(7))
    for k, v in y.items():
        np.testing.assert_array_equal(v.numpy(), OUT[f"reactface/{k}"])


def test_legacy_perfrdiff_parts_generate_what_they_generated():
    for path in (LEGACY / "perfrdiff-gafrg.pt", LEGACY / "gafrg-kind.pt"):  # trainer and {kind, config} layouts
        gafrg, dcfg = load_gafrg(path)
        y = generate(gafrg.eval(), X["speaker_audio"], X["speaker_emotion"], X["speaker_tdmm"], num_samples=2, steps=2,
                     guidance=2.0, generator=7, diffusion=dcfg, clamp_emotion=True)
        np.testing.assert_array_equal(y.numpy(), OUT["perfrdiff-gafrg/emotion"])
    hist = torch.from_numpy(OUT["perfrdiff-pssl/history"])
    for path in (LEGACY / "perfrdiff-pssl.pt", LEGACY / "pssl-kind.pt"):
        np.testing.assert_array_equal(load_pssl(path).eval()(hist).detach().numpy(), OUT["perfrdiff-pssl/style"])
    editor = load_pwsg(LEGACY / "perfrdiff-pwsg.pt").eval()
    y = generate(gafrg.eval(), X["speaker_audio"], X["speaker_emotion"], X["speaker_tdmm"], num_samples=2, steps=2,
                 guidance=2.0, generator=7, diffusion=dcfg, clamp_emotion=True,
                 style=torch.from_numpy(OUT["perfrdiff-pssl/style"][:1]), editor=editor)
    np.testing.assert_array_equal(y.numpy(), OUT["perfrdiff-pwsg/emotion"])


def test_save_then_load_roundtrip_is_plain_data(tmp_path):
    model, ck = load_model(LEGACY / "perfrdiff-pssl.pt")
    path = save_model(tmp_path / "p.pt", "perfrdiff-pssl", model, model.config.to_dict(), note={"a": [1, 2.5, None]})
    raw = torch.load(path, weights_only=True)  # nothing to unpickle
    assert raw["format_version"] == FORMAT_VERSION and raw["model"] == "perfrdiff-pssl" and raw["note"] == {"a": [1, 2.5, None]}
    again, _ = load_model(path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in again.state_dict().items())
    with pytest.raises(TypeError, match="only plain data"):
        save_checkpoint(tmp_path / "bad.pt", {"model": "x", "config": {}, "state_dict": {}, "when": Path("/tmp")})
    assert not (tmp_path / "bad.pt").exists()


def test_load_errors_are_named(tmp_path):
    with pytest.raises(MissingAssetError, match="--checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt: cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    # a pickled object (here a PosixPath): refused by weights_only, never constructed
    torch.save({"model": "reactface", "config": {}, "state_dict": {}, "obj": Path("/tmp")}, tmp_path / "pickled.pt")
    with pytest.raises(InputError, match="pickled.pt: cannot read checkpoint"):
        load_checkpoint(tmp_path / "pickled.pt")
    ck = load_checkpoint(LEGACY / "perfrdiff-pssl.pt")
    with pytest.raises(InputError, match="expected a 'perfrdiff-gafrg' checkpoint, found 'perfrdiff-pssl'"):
        load_checkpoint(LEGACY / "perfrdiff-pssl.pt", expect=("perfrdiff-gafrg",))
    save_checkpoint(tmp_path / "future.pt", {**ck, "format_version": FORMAT_VERSION + 1})
    with pytest.raises(InputError, match="newer than this reactcli reads"):
        load_checkpoint(tmp_path / "future.pt")
    unknown = {**ck, "model": "not-a-model"}
    save_checkpoint(tmp_path / "unknown.pt", unknown)
    with pytest.raises(InputError, match="does not know"):
        load_model(tmp_path / "unknown.pt")


def test_weights_that_do_not_fit_name_the_keys(tmp_path):
    ck = load_checkpoint(LEGACY / "perfrdiff-pssl.pt")
    sd = dict(ck["state_dict"])
    first, second = sorted(sd)[:2]
    sd[first] = torch.zeros(3, 3, 3)
    del sd[second]
    sd["stray.weight"] = torch.zeros(1)
    save_checkpoint(tmp_path / "bad.pt", {**ck, "state_dict": sd})
    with pytest.raises(InputError) as err:
        load_model(tmp_path / "bad.pt")
    msg = str(err.value)
    assert "bad.pt: weights do not fit" in msg and f"missing: {second}" in msg and "unexpected: stray.weight" in msg
    assert f"wrong shape: {first} (3, 3, 3)" in msg and "\n" not in msg


def test_recipe_names_select_registry_entries():
    assert recipe_model_name("perfrdiff", "gafrg") == "perfrdiff-gafrg" and recipe_model_name("reactface", None) == "reactface"
    from reactcli.errors import ConfigError

    with pytest.raises(ConfigError, match="needs stage"):
        recipe_model_name("perfrdiff", "nope")
    with pytest.raises(ConfigError, match="expected one of"):
        recipe_model_name("gpt", None)
