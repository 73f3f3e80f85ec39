"""The shipped Trans-VAE and BeLFusion recipes (pipelines/synthetic/, pipelines/react2024/configs/),
shrunk in size only, train on a tiny synthetic corpus through the generic loop and generate K
reactions for the test split: the path ``reactcli train`` / ``generate`` will take once the
registry wires them (tests/pipelines/test_recipes.py runs the wired models through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from reactcli.models.belfusion import BehaviourAutoencoder, BeLFusion, BeLFusionConfig, latent_statistics
from reactcli.models.transvae import TransVAE, TransVAEConfig
from reactcli.training.belfusion_losses import belfusion_autoencoder_step, belfusion_diffusion_step
from reactcli.manifest.items import load_items
from reactcli.training.data import DataConfig, ReactionDataset, collate
from reactcli.training.loop import TrainConfig, train
from reactcli.training.transvae_losses import transvae_training_step
from tests.pipelines.test_recipes import FRAMES, shrink

ROOT = Path(__file__).resolve().parents[2] / "reactcli" / "recipes"
SYNTH, PAPER = ROOT / "synthetic", ROOT / "react2024"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from typer.testing import CliRunner

    from reactcli.cli.main import app

    runner = CliRunner()
    tmp = tmp_path_factory.mktemp("baseline-recipes")
    corpus, work = tmp / "corpus", tmp / "work"
    for args in (
        (
            "synth",
            "--out",
            corpus,
            "--sessions",
            4,
            "--minutes",
            0.2,
            "--clip-seconds",
            4,
            "--no-video",
            "--patterns",
            2,
        ),
        ("prepare", "react", "--root", corpus, "--work", work, "--no-require-media", "--frames", FRAMES + 1),
        ("extract", "--work", work, "--features", "mfcc"),
    ):
        res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    return work


def recipe(path: Path) -> dict:
    return shrink(yaml.safe_load(path.read_text()))


def dataset(work: Path, r: dict, split: str | None = None, train_mode: bool = True) -> ReactionDataset:
    data = dict(r["data"])
    split = split or data.pop("split", "train")
    data.pop("split", None)
    if not train_mode:
        data.update(crop=None, max_appropriate=1)
    return ReactionDataset(work, load_items(work, split), DataConfig(**data), seed=r["seed"], train=train_mode)


def fit(model, step, ds, r: dict, run: Path) -> dict:
    train(
        model,
        step,
        ds,
        TrainConfig(**r["train"]),
        run,
        seed=r["seed"],
        checkpoint_extra={"model": r["model"], "config": model.to_dict()},
    )
    ck = torch.load(run / "model.pt", weights_only=False)
    rebuilt = type(model).from_dict(ck["config"])
    rebuilt.load_state_dict(ck["state_dict"])
    return {"checkpoint": ck, "model": rebuilt}


def test_every_baseline_recipe_builds_its_config():
    for folder in (SYNTH, PAPER):
        for name, cls in (
            ("transvae.yaml", TransVAEConfig),
            ("belfusion-ae.yaml", None),
            ("belfusion.yaml", BeLFusionConfig),
        ):
            r = yaml.safe_load((folder / name).read_text())
            if cls is None:
                BehaviourAutoencoder.from_dict({"config": r["model_config"]})
            else:
                cls.from_dict(r["model_config"])
    assert (
        yaml.safe_load((SYNTH / "belfusion.yaml").read_text())["checkpoints"]["autoencoder"]
        == "runs/belfusion-autoencoder/model.pt"
    )


def test_transvae_recipe_trains_and_generates(work, tmp_path):
    r = recipe(SYNTH / "transvae.yaml")
    model = TransVAE(TransVAEConfig.from_dict(r["model_config"]))
    out = fit(model, transvae_training_step, dataset(work, r), r, tmp_path / "transvae")
    assert out["checkpoint"]["history"] and out["model"].config.online
    test = collate([dataset(work, r, "test", train_mode=False)[i] for i in range(2)])
    gen = out["model"].generate(
        test["speaker_audio"], test["speaker_emotion"], test["speaker_tdmm"], num_samples=2, seed=0
    )
    assert gen["emotion"].shape == (2, 2, FRAMES, 25) and gen["tdmm"].shape == (2, 2, FRAMES, 58)
    assert torch.isfinite(gen["emotion"]).all()


def test_belfusion_recipes_train_and_generate(work, tmp_path):
    r1 = recipe(SYNTH / "belfusion-ae.yaml")
    stage1 = fit(
        BehaviourAutoencoder.from_dict({"config": r1["model_config"]}),
        belfusion_autoencoder_step,
        dataset(work, r1),
        r1,
        tmp_path / "belfusion-autoencoder",
    )
    r2 = recipe(SYNTH / "belfusion.yaml")
    # latent statistics over the split's whole clips, speaker and listener sides (the authors' compute_statistics)
    whole = dataset(work, r2, train_mode=False)
    clips = collate([whole[i] for i in range(len(whole))])
    ae = stage1["model"]
    stats = latent_statistics(ae, [clips["speaker_emotion"], clips["listener_emotion"]], r2["model_config"]["latent"])
    model = BeLFusion.from_autoencoder(ae, stats, BeLFusionConfig.from_dict(r2["model_config"]))
    stage2 = fit(model, belfusion_diffusion_step, dataset(work, r2), r2, tmp_path / "belfusion-diffusion")
    trained = stage2["model"]
    assert bool(trained.statistics_set) and torch.equal(trained.stat_max, stats["max"])  # in the checkpoint
    assert torch.equal(trained.autoencoder.fc_z.weight, ae.fc_z.weight)  # stage 1 frozen
    test = collate([dataset(work, r2, "test", train_mode=False)[i] for i in range(2)])
    gen = trained.generate(test["speaker_audio"], test["speaker_emotion"], test["speaker_tdmm"], num_samples=2, seed=0)
    assert gen["emotion"].shape == (2, 2, FRAMES, 25) and gen["tdmm"].shape == (2, 2, FRAMES, 58)
    assert torch.isfinite(gen["tdmm"]).all()
