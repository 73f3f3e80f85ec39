"""Trans-VAE and BeLFusion wired through the registry on a tiny work dir: `train_recipe` learns
(falling loss), the checkpoint generates K distinct samples in one batch (same seed -> identical,
another seed -> different), and the run goes through evaluate and render like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.errors import ConfigError
from reactcli.generation.run import GenerateConfig, generate_run, load_generator
from reactcli.generation.store import load_generated
from reactcli.metrics.store import evaluate_run
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react
from reactcli.training.run import train_recipe

DATA = {"split": "train", "audio": "mfcc", "crop": 40, "max_appropriate": 4, "frames": 60}
TRANSVAE = {"model": "transvae", "seed": 0, "data": DATA,
            "model_config": {"feature_dim": 16, "n_heads": 2, "ffn_dim": 32, "window": 10, "generate_window": 10,
                             "online": True, "dropout": 0.0},
            "train": {"epochs": 8, "batch_size": 4, "lr": 3e-3, "weight_decay": 0.0}}
BF_AE = {"model": "belfusion", "stage": "autoencoder", "seed": 0, "data": {**DATA, "crop": None},
         "model_config": {"window": 10, "hidden_dim": 16, "z_dim": 16, "mlp_dims": [16]},
         "train": {"epochs": 8, "batch_size": 4, "lr": 1e-2, "weight_decay": 0.0}}
BF_DIFF = {"model": "belfusion", "stage": "diffusion", "seed": 0, "data": {**DATA, "crop": None},
           "checkpoints": {"autoencoder": "runs/belfusion-autoencoder/model.pt"},
           "model_config": {"hidden_channels": 32, "num_layers": 2, "time_channels": 8, "k": 2},
           "train": {"epochs": 8, "batch_size": 4, "lr": 3e-3, "weight_decay": 0.0}}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("challenge")
    root = write_tiny_react(tmp / "r", pairs_per_split=3, frames=61)
    work = tmp / "w"
    prepare_react(root, work, ReactConfig(frames=61))
    store = FeatureStore(work)
    rng = np.random.default_rng(0)
    with store.writer("mfcc-standin") as w:
        for clip in store.clips("emotion"):
            w.write(clip, "mfcc", rng.standard_normal((61, 78)), fps=25, extractor="test-standin")
    store.refresh()
    return work


@pytest.fixture(scope="module")
def checkpoints(work):
    tv = train_recipe(work, TRANSVAE)
    ae = train_recipe(work, BF_AE)
    bf = train_recipe(work, BF_DIFF)
    return {"transvae": tv, "belfusion-autoencoder": ae, "belfusion-diffusion": bf}


def _losses(ck) -> list[float]:
    return [json.loads(line)["loss"] for line in (ck.parent / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["transvae", "belfusion-autoencoder", "belfusion-diffusion"])
def test_tiny_recipes_train_with_falling_loss(checkpoints, name):
    losses = _losses(checkpoints[name])
    assert len(losses) == 8 and np.isfinite(losses).all()
    assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2]), losses
    ck = torch.load(checkpoints[name], weights_only=True)
    assert ck["model"] == name and ck["recipe"]["seed"] == 0


def test_diffusion_checkpoint_holds_its_autoencoder_and_statistics(checkpoints):
    bf = torch.load(checkpoints["belfusion-diffusion"], weights_only=True)
    ae = torch.load(checkpoints["belfusion-autoencoder"], weights_only=True)
    assert bf["autoencoder_checkpoint"] == str(checkpoints["belfusion-autoencoder"])
    assert all(torch.equal(bf["state_dict"][f"autoencoder.{k}"], v) for k, v in ae["state_dict"].items())
    sd = bf["state_dict"]
    assert float(sd["statistics_set"]) == 1.0 and bool((sd["stat_max"] > sd["stat_min"]).all())
    assert bf["config"]["autoencoder"] == ae["config"]


def test_diffusion_stage_needs_its_autoencoder(work):
    with pytest.raises(ConfigError, match=r"checkpoints.autoencoder \(or reactcli train --autoencoder-checkpoint\)"):
        train_recipe(work, {**BF_DIFF, "checkpoints": {}})
    bad = {**BF_DIFF, "model_config": {**BF_DIFF["model_config"], "autoencoder": {"window": 10}}}
    with pytest.raises(ConfigError, match="model_config.autoencoder"):
        train_recipe(work, bad)


@pytest.mark.parametrize("name", ["transvae", "belfusion-diffusion"])
def test_k_seeded_samples_in_one_batch(work, checkpoints, name):
    cfg = GenerateConfig(split="val", num_samples=3, batch_size=8, frames=60, seed=5)
    gen = load_generator(checkpoints[name], cfg)
    from reactcli.manifest.items import load_items
    from reactcli.training.data import DataConfig, ReactionDataset, collate

    ds = ReactionDataset(work, load_items(work, "val"), DataConfig(frames=60, crop=None, max_appropriate=1), train=False)
    batch = collate([ds[i] for i in range(len(ds))])
    calls = []
    model = gen.model
    original = model.forward if name == "transvae" else model.denoiser.forward

    def spy(*a, **k):
        calls.append(1)
        return original(*a, **k)

    if name == "transvae":
        model.forward = spy
    else:
        model.denoiser.forward = spy
    one = gen(batch, 3, torch.Generator().manual_seed(1))
    # one model call (Trans-VAE) / one denoiser call per DDIM step (BeLFusion) for every item and sample
    assert len(calls) == (1 if name == "transvae" else model.config.diffusion_steps)
    same = gen(batch, 3, torch.Generator().manual_seed(1))
    other = gen(batch, 3, torch.Generator().manual_seed(2))
    for f in ("emotion", "tdmm"):
        assert one[f].shape == (len(ds), 3, 60, {"emotion": 25, "tdmm": 58}[f])
        np.testing.assert_array_equal(one[f], same[f])
        assert not np.allclose(one[f], other[f])
        for a, b in ((0, 1), (0, 2), (1, 2)):
            assert not np.allclose(one[f][:, a], one[f][:, b])


@pytest.mark.parametrize("name", ["transvae", "belfusion-diffusion"])
def test_generate_evaluate_render(work, checkpoints, name):
    from reactcli.render.video import RenderConfig, render_items

    cfg = GenerateConfig(split="test", num_samples=2, batch_size=2, frames=60, seed=3)
    generate_run(work, checkpoints[name], cfg, run=name)
    generate_run(work, checkpoints[name], cfg, run=f"{name}-again")
    for f in ("emotion", "tdmm"):
        np.testing.assert_array_equal(load_generated(work, name, "test", f), load_generated(work, f"{name}-again", "test", f))
    res = evaluate_run(work, name, "test", frames=60)
    assert res["K"] == 2 and np.isfinite([res["FRCorr"], res["FRdist"]]).all() and res["FRDiv"] > 0
    (video,) = render_items(work, name, "test", [0], RenderConfig(size=32))
    assert video.is_file() and video.stat().st_size > 0


def test_options_of_other_families_are_refused(checkpoints):
    with pytest.raises(ConfigError, match="--momentum is not an option of Trans-VAE"):
        load_generator(checkpoints["transvae"], GenerateConfig(momentum=0.5))
    with pytest.raises(ConfigError, match="--window is not an option of BeLFusion"):
        load_generator(checkpoints["belfusion-diffusion"], GenerateConfig(window=4))
    with pytest.raises(ConfigError, match=r"--steps must be in \[1, 10\]"):
        load_generator(checkpoints["belfusion-diffusion"], GenerateConfig(steps=11))
