"""The shipped synthetic recipes (reactcli/recipes/synthetic/*.yaml) run end to end through the CLI.

Each recipe is parsed as shipped, then only its sizes are shrunk (widths, windows, crop, steps)
so that every section, loss weight, diffusion and optimiser setting of the real recipe goes
through ``reactcli train`` -> ``generate`` -> ``evaluate run`` on a tiny synthetic corpus
(clips of 4 s). The Makefile is checked with ``make -n`` (the commands it would run name the
shipped recipes and chain the PerFRDiff checkpoints).
"""

from __future__ import annotations

import copy
from dataclasses import fields
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from reactcli.metrics.personal import main as personal_main
from reactcli.models.belfusion import BehaviourAEConfig, BeLFusionConfig
from reactcli.models.perfrdiff import GAFRGConfig, PSSLConfig, PWSGConfig
from reactcli.models.reactface import ReactFaceConfig
from reactcli.models.transvae import TransVAEConfig

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "reactcli" / "recipes" / "synthetic"  # the shipped recipes
MAKEDIR = REPO / "pipelines" / "synthetic"  # the Makefile that trains them
RECIPES = sorted(HERE.glob("*.yaml"))
FRAMES = 100
CONFIGS = {"reactface": ReactFaceConfig, "gafrg": GAFRGConfig, "pssl": PSSLConfig, "pwsg": PWSGConfig,
           "transvae": TransVAEConfig, "autoencoder": BehaviourAEConfig, "diffusion": BeLFusionConfig}

#: Size overrides per model/stage; every other recipe value is kept as shipped.
SHRINK = {
    "reactface": {"d_model": 16, "n_heads": 2, "ffn_dim": 32, "vae_heads": 2, "vae_ffn_dim": 32,
                  "latent_dim": 8, "train_window": 10, "generate_window": 10, "history_frames": 20,
                  "decoder_band": 5},
    "gafrg": {"d_model": 16, "num_layers": 2, "num_heads": 2, "ffn_dim": 32, "emotion_hidden": 16,
              "window": 10, "speaker_lag": 10},
    "pssl": {"d_model": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 32, "style_dim": 16},
    "pwsg": {"style_dim": 16, "hidden": [16, 16], "rank": 2},
    # the challenge baselines
    "transvae": {"feature_dim": 16, "ffn_dim": 32, "window": 10, "generate_window": 10},
    "autoencoder": {"window": 10, "hidden_dim": 16, "z_dim": 16, "mlp_dims": [8]},
    "diffusion": {"hidden_channels": 32, "num_layers": 2, "time_channels": 8, "k": 2, "window_stride": 5},
}


def shrink(recipe: dict) -> dict:
    """Same recipe, tiny sizes: 2 optimiser steps (one per epoch, so ReactFace sees both stages)."""
    r = copy.deepcopy(recipe)
    key = r.get("stage") or r["model"]
    r["model_config"] = {**(r.get("model_config") or {}), **SHRINK[key]}
    r["data"] = {**r["data"], "crop": 40, "frames": FRAMES, "max_appropriate": min(4, r["data"].get("max_appropriate", 4))}
    r["train"] = {**r["train"], "epochs": 2, "max_steps": 2, "batch_size": 64}
    if r["model"] == "reactface":
        r["step"] = {**(r.get("step") or {}), "stage1_epochs": 1}
    if "step" in r and "reactions_per_item" in r["step"]:
        r["step"]["reactions_per_item"] = 2
    if (r.get("diffusion") or {}).get("context_frames"):  # continued windows: fewer than the 10-frame window
        r["diffusion"] = {**r["diffusion"], "context_frames": 4}
    return r


@pytest.fixture(scope="module")
def work(tmp_path_factory, cli_module):
    tmp = tmp_path_factory.mktemp("recipes")
    corpus, work = tmp / "corpus", tmp / "work"
    for args in (
        ("synth", "--out", corpus, "--sessions", 5, "--minutes", 0.2, "--clip-seconds", 4, "--no-video", "--patterns", 2,
         "--recurring-experts", 2),
        ("prepare", "react", "--root", corpus, "--work", work, "--no-require-media", "--frames", FRAMES + 1,
         "--identities", corpus / "truth" / "identities.json"),
        ("extract", "--work", work, "--features", "mfcc"),
        ("appropriate", "build", "--work", work, "--split", "train", "--frames", FRAMES),
        ("appropriate", "import", "--work", work, "--split", "test", "--matrix", corpus / "neighbour_emotion_test.npy"),
    ):
        res = cli_module(*args)
        assert res.exit_code == 0, res.output
    return work


@pytest.fixture(scope="module")
def cli_module():
    from typer.testing import CliRunner

    from reactcli.cli.main import app

    runner = CliRunner()
    return lambda *a: runner.invoke(app, [str(x) for x in a], catch_exceptions=False)


def _train(cli, work: Path, recipe_path: Path, tmp: Path, *extra, run: str | None = None) -> Path:
    shipped = yaml.safe_load(recipe_path.read_text())
    small = tmp / recipe_path.name
    small.write_text(yaml.safe_dump(shrink(shipped)))
    run = run or (f"{shipped['model']}-{shipped['stage']}" if shipped.get("stage") else shipped["model"])
    res = cli("train", "--work", work, "--config", small, "--run", run, *extra)
    assert res.exit_code == 0, res.output
    ck = work / "runs" / run / "model.pt"
    assert ck.is_file()
    saved = torch.load(ck, weights_only=False)
    # the checkpoint keeps the shipped non-size settings (lr, weights, diffusion) unchanged
    assert saved["recipe"]["train"]["lr"] == shipped["train"]["lr"]
    # (context_frames is a size, shrunk with the window)
    unsized = lambda d: {k: v for k, v in (d or {}).items() if k != "context_frames"}  # noqa: E731
    assert unsized(saved["recipe"].get("diffusion")) == unsized(shipped.get("diffusion"))
    # the corpus's identity map (PSSL labels, history clips) is among the recorded inputs
    assert any(k.endswith("manifests/identities.json") for k in saved["inputs"])
    return ck


def _generate_and_score(cli, work: Path, run: str, *gen_args) -> dict:
    res = cli("generate", "--work", work, *gen_args, "--run", run, "--split", "test", "--num-samples", 2,
              "--frames", FRAMES, "--batch-size", 8)
    assert res.exit_code == 0, res.output
    res = cli("evaluate", "run", "--work", work, "--run", run, "--split", "test")
    assert res.exit_code == 0, res.output
    out = json.loads((work / "metrics" / f"{run}-test.json").read_text())
    assert (out["N"], out["K"], out["T"], out["D"]) == (6, 2, FRAMES, 25)
    assert np.isfinite([out["FRCorr"], out["FRdist"], out["FRDiv"]]).all() and out["FRDiv"] > 0
    assert personal_main(["--work", str(work), "--run", run]) == 0
    pers = json.loads((work / "metrics" / f"{run}-test-personal.json").read_text())
    assert np.isfinite(pers["personal_FRCorr"]) and pers["personal_references_min"] >= 1
    assert pers["N_seen"] + pers["N_unseen"] == 6  # listeners met in training or not
    return out


def test_history_clip_comes_with_its_speaker_side(work):
    """The dyadic PSSL's input: the history clip is another clip of the item's listener (same
    identity) and ``speaker_history_*`` is the speaker that clip's listener answered."""
    from reactcli.storage import FeatureStore
    from reactcli.manifest.items import load_items
    from reactcli.training.data import DataConfig, ReactionDataset, collate, history_batch

    table = load_items(work, "train")
    ds = ReactionDataset(work, table, DataConfig(frames=FRAMES, crop=None, max_appropriate=1), train=False)
    store = FeatureStore(work)
    partner = {p.listener: p.speaker for p in table.pairs}
    found = 0
    for i, pair in enumerate(table.pairs):
        s = ds[i]
        clips = [p.listener for p in table.pairs if table.resolver(p.listener) == table.resolver(pair.listener)]
        hist = next(c for c in clips if np.array_equal(store.read(c, "emotion")[:FRAMES], s["listener_history_emotion"].numpy()))
        assert hist != pair.listener or len(clips) == 1
        for key, feat in (("emotion", "emotion"), ("tdmm", "tdmm"), ("audio", "mfcc")):
            assert np.array_equal(s[f"speaker_history_{key}"].numpy(), store.read(partner[hist], feat)[:FRAMES])
        found += hist != pair.listener
    assert found > 0  # the corpus has listeners with more than one clip
    # history_batch: the history clip as an item of its own (listener = history, speaker = its partner)
    h = history_batch(collate([ds[0], ds[1]]))
    for side in ("speaker", "listener"):
        for key in (("audio", "emotion", "tdmm") if side == "speaker" else ("emotion", "tdmm")):
            hist_key = f"{side}_history_{key}"
            assert torch.equal(h[f"{side}_{key}"], torch.stack([ds[0][hist_key], ds[1][hist_key]]))
    assert h["frame_offset"].tolist() == [0, 0]


def test_every_recipe_parses_and_is_covered():
    names = {p.name for p in RECIPES}
    assert names == {"reactface.yaml", "perfrdiff-gafrg.yaml", "perfrdiff-pssl.yaml", "perfrdiff-pwsg.yaml",
                     "perfrdiff-pssl-emotion.yaml", "perfrdiff-pwsg-emotion.yaml", "perfrdiff-pwsg-codes.yaml",
                     "transvae.yaml", "belfusion-ae.yaml", "belfusion.yaml"}
    for p in RECIPES:
        r = yaml.safe_load(p.read_text())
        assert r["model"] in ("reactface", "perfrdiff", "transvae", "belfusion") and isinstance(r["train"], dict)
        key = r.get("stage") or r["model"]
        allowed = {f.name for f in fields(CONFIGS[key])}
        assert set(SHRINK[key]) <= allowed and set(r["model_config"]) <= allowed, p.name


def test_reactface_recipe_end_to_end(cli_module, work, tmp_path):
    ck = _train(cli_module, work, HERE / "reactface.yaml", tmp_path)
    _generate_and_score(cli_module, work, "reactface", "--checkpoint", ck)


def test_perfrdiff_recipes_end_to_end(cli_module, work, tmp_path):
    g = _train(cli_module, work, HERE / "perfrdiff-gafrg.yaml", tmp_path)
    s = _train(cli_module, work, HERE / "perfrdiff-pssl.yaml", tmp_path)
    w = _train(cli_module, work, HERE / "perfrdiff-pwsg.yaml", tmp_path, "--gafrg-checkpoint", g, "--pssl-checkpoint", s)
    saved = torch.load(w, weights_only=False)
    assert saved["gafrg_checkpoint"] == str(g) and saved["pssl_checkpoint"] == str(s)
    generic = _generate_and_score(cli_module, work, "pd-generic", "--checkpoint", g, "--steps", 2, "--guidance", 2.0)
    personal = _generate_and_score(cli_module, work, "pd-personal", "--checkpoint", g, "--personalised",
                                   "--pwsg-checkpoint", w, "--steps", 2, "--guidance", 2.0)
    assert generic["FRCorr"] != personal["FRCorr"]  # the weight shifts change the samples

    # the emotion-history variant (make perfrdiff-emotion): PSSL reads the listener's emotion clip,
    # PWSG edits the output head with a bias shift
    se = _train(cli_module, work, HERE / "perfrdiff-pssl-emotion.yaml", tmp_path, run="pssl-emotion")
    assert torch.load(se, weights_only=False)["config"]["history_feature"] == "emotion"
    we = _train(cli_module, work, HERE / "perfrdiff-pwsg-emotion.yaml", tmp_path, "--gafrg-checkpoint", g,
                "--pssl-checkpoint", se, run="pwsg-emotion")
    saved = torch.load(we, weights_only=False)
    assert saved["config"]["layers"] == ["output"] and saved["config"]["edit_bias"] is True
    emotion = _generate_and_score(cli_module, work, "pd-personal-emotion", "--checkpoint", g, "--personalised",
                                  "--pwsg-checkpoint", we, "--steps", 2, "--guidance", 2.0)
    assert emotion["FRCorr"] != generic["FRCorr"]

    # listener codes (make perfrdiff-codes): no PSSL; the editor learns a code per training
    # identity and generation reads each listener's code from their history clip
    wc = _train(cli_module, work, HERE / "perfrdiff-pwsg-codes.yaml", tmp_path, "--gafrg-checkpoint", g, run="pwsg-codes")
    saved = torch.load(wc, weights_only=False)
    assert "pssl_checkpoint" not in saved or saved["pssl_checkpoint"] is None
    assert len(saved["code_identities"]) == saved["config"]["codes"] == saved["state_dict"]["codes"].shape[0] > 1
    codes = _generate_and_score(cli_module, work, "pd-personal-codes", "--checkpoint", g, "--personalised",
                                "--pwsg-checkpoint", wc, "--steps", 2, "--guidance", 2.0)
    assert codes["FRCorr"] != generic["FRCorr"]


def test_challenge_baseline_recipes_end_to_end(cli_module, work, tmp_path):
    """Trans-VAE and both BeLFusion stages through `reactcli train` (the diffusion stage over the
    trained autoencoder), `generate` and `evaluate run`; a diffusion recipe without its autoencoder
    is one named line."""
    t = _train(cli_module, work, HERE / "transvae.yaml", tmp_path)
    saved = torch.load(t, weights_only=False)
    assert saved["model"] == "transvae" and saved["config"]["online"] is True
    _generate_and_score(cli_module, work, "transvae", "--checkpoint", t)
    a = _train(cli_module, work, HERE / "belfusion-ae.yaml", tmp_path)
    assert torch.load(a, weights_only=False)["model"] == "belfusion-autoencoder"
    res = cli_module("train", "--work", work, "--config", "synthetic/belfusion", "--run", "bf-bad",
                     "--autoencoder-checkpoint", tmp_path / "nowhere.pt")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "BeLFusion autoencoder checkpoint" in res.output and "--autoencoder-checkpoint" in res.output
    d = _train(cli_module, work, HERE / "belfusion.yaml", tmp_path, "--autoencoder-checkpoint", a)
    saved = torch.load(d, weights_only=False)
    assert saved["model"] == "belfusion-diffusion" and saved["autoencoder_checkpoint"] == str(a)
    assert float(saved["state_dict"]["statistics_set"]) == 1.0  # latent statistics stored with the weights
    ae = torch.load(a, weights_only=False)["state_dict"]
    assert torch.equal(saved["state_dict"]["autoencoder.fc_z.weight"], ae["fc_z.weight"])  # stage 1 frozen
    _generate_and_score(cli_module, work, "belfusion", "--checkpoint", d, "--steps", 5)
    res = cli_module("generate", "--work", work, "--checkpoint", d, "--run", "bf-x", "--split", "test",
                     "--guidance", 2.0)
    assert res.exit_code == 1 and "--guidance is not an option of BeLFusion" in res.output


def test_train_set_overrides_a_recipe_value(cli_module, work, tmp_path):
    """`reactcli train --set` changes one value of a shipped recipe and the run records it; a key
    the section does not know stops with one line."""
    g = _train(cli_module, work, HERE / "perfrdiff-gafrg.yaml", tmp_path, "--set", "model_config.frames_per_token=2",
               run="gafrg-p2")
    saved = torch.load(g, weights_only=False)
    assert saved["config"]["frames_per_token"] == 2 and saved["recipe"]["model_config"]["frames_per_token"] == 2
    res = cli_module("train", "--work", work, "--config", tmp_path / "perfrdiff-gafrg.yaml", "--run", "bad",
                     "--set", "model_config.frames_per_tokens=2")
    assert res.exit_code != 0 and "unknown keys ['frames_per_tokens']" in res.output
    assert "Traceback" not in res.output


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_makefile_wires_the_recipes(tmp_path):
    out = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "all", f"OUT={tmp_path}/o"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cmds = out.stdout
    for name in ("reactface.yaml", "perfrdiff-gafrg.yaml", "perfrdiff-pssl.yaml", "perfrdiff-pwsg.yaml"):
        assert f"--config {HERE}/{name}" in cmds
    # one training per seed, scored on val; the test runs use the checkpoint the val selection chose
    for model, yaml_name in (("reactface", "reactface.yaml"), ("perfrdiff-gafrg", "perfrdiff-gafrg.yaml")):
        for s in (0, 1, 2):
            assert f"--config {HERE}/{yaml_name} --run {model}-s{s} --seed {s}" in cmds
            assert f"--run val-{model}-s{s} --split val" in cmds
        runs = " ".join(f"--run val-{model}-s{s}" for s in (0, 1, 2))
        assert (f"evaluate select --work {tmp_path}/o/work --split val --metrics-dir {tmp_path}/o/val-metrics {runs} "
                f"--out {tmp_path}/o/select-{model}.json") in cmds
    assert f"--gafrg-checkpoint $({REPO}/.venv/bin/python -c" in cmds
    assert f"{tmp_path}/o/select-perfrdiff-gafrg.json) --pssl-checkpoint" in cmds
    assert "--personalised" in cmds
    assert f"--identities {tmp_path}/o/corpus/truth/identities.json" in cmds  # who is who, from the corpus
    # few-step sampling starts at the last training step (SPACING_FEW=trailing), in the val
    # selection and the test runs; the DDIM_STEPS runs keep the checkpoint's spacing unless SPACING is set
    lines = cmds.replace("\\\n", " ").splitlines()  # join the recipe's continued lines
    few = [c for c in lines if " generate " in c and "--steps 2" in c]
    # the full runs take the checkpoint's DDIM steps (DDIM_STEPS empty: the recipe's 50)
    full = [c for c in lines if " generate " in c and "--run perfrdiff-" in c and "--steps" not in c]
    assert len(few) == 3 + 2 and all("--timestep-spacing trailing" in c for c in few)
    assert len(full) == 2 and not any("--timestep-spacing" in c for c in full)
    other = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "perfrdiff", f"OUT={tmp_path}/o", "SPACING=linspace",
                            "SPACING_FEW=", "DDIM_STEPS=10"], capture_output=True, text=True)
    assert other.returncode == 0, other.stderr
    lead = [c for c in other.stdout.replace("\\\n", " ").splitlines() if " generate " in c]
    full = [c for c in lead if "--steps 10" in c]
    assert len(full) == 2 and all("--timestep-spacing linspace" in c for c in full)
    assert not any("--timestep-spacing" in c for c in lead if "--steps 2" in c)
    # every PerFRDiff generation (val selection and test runs) takes PRECISION, fp32 by default
    assert all("--precision fp32" in c for c in lines if " generate " in c and "--checkpoint" in c
               and "reactface" not in c)
    low = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "perfrdiff", f"OUT={tmp_path}/o", "PRECISION=bf16"],
                         capture_output=True, text=True)
    gens = [c for c in low.stdout.replace("\\\n", " ").splitlines() if " generate " in c and "--checkpoint" in c]
    assert len(gens) == 3 + 4 and all("--precision bf16" in c for c in gens)
    # GAFRG_SET passes recipe overrides to every GAFRG training, and only to those
    patched = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "perfrdiff", f"OUT={tmp_path}/o",
                              "GAFRG_SET=model_config.frames_per_token=2 train.epochs=3"], capture_output=True, text=True)
    trains = [c for c in patched.stdout.splitlines() if " train " in c]
    sets = "--set model_config.frames_per_token=2 --set train.epochs=3"
    assert sum(sets in c for c in trains) == 3 and all(sets in c for c in trains if "perfrdiff-gafrg.yaml" in c)
    for b in ("mime", "random", "meanseq", "meanfr", "gt"):
        assert f"--baseline {b}" in cmds and f"--out-dir {tmp_path}/o/metrics" in cmds
    # the emotion-history personalisation: its own PSSL/PWSG runs, the same chosen GAFRG and generic runs
    emo = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "perfrdiff-emotion", f"OUT={tmp_path}/o", "PWSG_SEED=3"],
                         capture_output=True, text=True)
    assert emo.returncode == 0, emo.stderr
    cmds = emo.stdout
    assert f"--config {HERE}/perfrdiff-pssl-emotion.yaml --run perfrdiff-pssl-emotion" in cmds
    assert f"--config {HERE}/perfrdiff-pwsg-emotion.yaml --run perfrdiff-pwsg-emotion --seed 3" in cmds
    assert f"--pssl-checkpoint {tmp_path}/o/work/runs/perfrdiff-pssl-emotion/model.pt" in cmds
    assert f"--pwsg-checkpoint {tmp_path}/o/work/runs/perfrdiff-pwsg-emotion/model.pt --run perfrdiff-personalised-emotion " in cmds
    assert "--run perfrdiff-generic-few" in cmds and "summary-perfrdiff-emotion.txt" in cmds
    assert "perfrdiff-pwsg.yaml" not in cmds  # the paper's editor is not trained by this target
    # listener codes: a PWSG without a PSSL run, generated with the same chosen GAFRG
    codes = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "perfrdiff-codes", f"OUT={tmp_path}/o"], capture_output=True, text=True)
    assert codes.returncode == 0, codes.stderr
    cmds = codes.stdout
    assert f"--config {HERE}/perfrdiff-pwsg-codes.yaml --run perfrdiff-pwsg-codes --seed 0" in cmds
    assert "perfrdiff-pssl" not in cmds and "--pssl-checkpoint" not in cmds
    assert f"--pwsg-checkpoint {tmp_path}/o/work/runs/perfrdiff-pwsg-codes/model.pt --run perfrdiff-personalised-codes-few " in cmds
    assert "summary-perfrdiff-codes.txt" in cmds
    # a listener the editor has not met gets the generic reaction unless NEW_LISTENERS=read
    pers = [c for c in cmds.replace("\\\n", " ").splitlines() if " --personalised " in c]
    assert len(pers) == 2 and all(c.endswith("--new-listeners generic") for c in pers)
    assert "--new-listeners" not in emo.stdout  # the PSSL variants have no codes to choose
    read = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "perfrdiff-codes", f"OUT={tmp_path}/o", "NEW_LISTENERS=read"],
                          capture_output=True, text=True)
    assert read.stdout.count("--new-listeners read") == 2
    bad = subprocess.run(["make", "-n", "-C", str(MAKEDIR), "reactface"], capture_output=True, text=True)
    assert bad.returncode != 0 and "set OUT=DIR (the output folder)" in bad.stderr
