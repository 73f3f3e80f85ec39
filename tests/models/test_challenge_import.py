"""`reactcli import transvae` / `import belfusion`: the challenge's released baseline checkpoints
(the fixtures of tests/fixtures/make_baselines_fixture.py: the authors' code at commit c5a8ff85,
random weights) become reactcli checkpoints that the registry loads and that reproduce the
authors' outputs within 1e-4; an imported BeLFusion generates through `reactcli generate`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from reactcli.models.registry import load_model
from tests.models.test_baselines_released import FIX, TOL, close


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return torch.load(FIX / "baselines_io.pt", weights_only=True)


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_imported_transvae_reproduces_the_authors(io, mode, tmp_path, cli):
    res = cli("import", "transvae", "--from", str(FIX / f"transvae_{mode}.pth"), "--work", str(tmp_path), "--run", "tv")
    assert res.exit_code == 0, res.output
    model, ck = load_model(tmp_path / "runs" / "tv" / "model.pt", ("transvae",))
    assert ck["released"]["authors_commit"].startswith("c5a8ff85") and model.config.online == (mode == "online")
    record = json.loads((tmp_path / "runs" / "tv" / "import.json").read_text())
    assert record["source"]["checkpoint"]["sha1"] == ck["released"]["source"]["checkpoint"]["sha1"]
    with torch.no_grad():
        out = model.eval()(io["transvae/audio"].float(), num_samples=1, window=4,
                           speaker_video=io["transvae/video"].float(), noise=io[f"transvae/{mode}/eps"])
    assert close(out.mu[:, 0], io[f"transvae/{mode}/mu"]) < TOL
    for f in ("tdmm", "emotion"):
        assert close(out.outputs[f][:, 0], io[f"transvae/{mode}/{f}"]) < TOL


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_imported_belfusion_reproduces_the_authors(io, mode, tmp_path, cli):
    res = cli("import", "belfusion", "--from", str(FIX / "belfusion_ldm"), "--work", str(tmp_path), "--run", "bf",
              f"--{mode}")
    assert res.exit_code == 0, res.output
    model, ck = load_model(tmp_path / "runs" / "bf" / "model.pt", ("belfusion-diffusion",))
    assert set(ck["released"]["source"]) == {"checkpoint", "autoencoder"}  # the stage-1 file found via config.yaml
    noise = io[f"belfusion/{mode}/noise"].view(2, 1, 4, 16)
    out = model.generate(speaker_emotion=io["belfusion/speaker_emotion"].float(), num_samples=1, noise=noise)
    assert close(out["emotion"][:, 0], io[f"belfusion/{mode}/emotion"]) < TOL
    assert close(out["tdmm"][:, 0], io[f"belfusion/{mode}/tdmm"]) < TOL


def test_import_errors_are_one_line(tmp_path, cli):
    res = cli("import", "belfusion", "--from", str(FIX / "transvae_online.pth"), "--work", str(tmp_path))
    assert res.exit_code == 1 and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(FIX / "belfusion_ldm" / "checkpoint_0.pth", lone / "checkpoint_0.pth")  # no config.yaml beside it
    res = cli("import", "belfusion", "--from", str(lone), "--work", str(tmp_path))
    assert res.exit_code == 1 and "autoencoder" in res.output
    res = cli("import", "transvae", "--from", str(FIX / "belfusion_ldm"), "--work", str(tmp_path))
    assert res.exit_code == 1 and "not a REACT Trans-VAE" in res.output
    assert not (tmp_path / "runs").exists()  # nothing written by a failed import
    ok = cli("import", "transvae", "--from", str(FIX / "transvae_offline.pth"), "--work", str(tmp_path), "--run", "x")
    assert ok.exit_code == 0
    again = cli("import", "transvae", "--from", str(FIX / "transvae_offline.pth"), "--work", str(tmp_path), "--run", "x")
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_imported_belfusion_generates_through_the_cli(tmp_path, cli):
    """The imported checkpoint is a run like a trained one: `generate` (K samples, seeded) and `evaluate run`."""
    from reactcli.corpora.react import ReactConfig, prepare_react
    from reactcli.generation.store import load_generated
    from reactcli.storage import FeatureStore
    from reactcli.synthetic.react_layout import write_tiny_react

    root = write_tiny_react(tmp_path / "r", pairs_per_split=3, frames=61)
    work = tmp_path / "w"
    prepare_react(root, work, ReactConfig(frames=61))
    store = FeatureStore(work)
    with store.writer("mfcc-standin") as w:
        for clip in store.clips("emotion"):
            w.write(clip, "mfcc", np.zeros((61, 78)), fps=25, extractor="test-standin")
    store.refresh()
    assert cli("import", "belfusion", "--from", str(FIX / "belfusion_ldm"), "--work", str(work)).exit_code == 0
    ck = work / "runs" / "belfusion-released" / "model.pt"
    res = cli("generate", "--work", str(work), "--checkpoint", str(ck), "--split", "test", "--num-samples", "3",
              "--frames", "60", "--seed", "4")
    assert res.exit_code == 0, res.output
    gen = {f: load_generated(work, "belfusion-released", "test", f) for f in ("emotion", "tdmm")}
    assert gen["emotion"].shape[1:] == (3, 60, 25) and gen["tdmm"].shape[1:] == (3, 60, 58)
    assert not np.allclose(gen["emotion"][:, 0], gen["emotion"][:, 1])  # K distinct samples
    res = cli("evaluate", "run", "--work", str(work), "--run", "belfusion-released", "--split", "test")
    assert res.exit_code == 0, res.output
    tv = cli("import", "transvae", "--from", str(FIX / "transvae_online.pth"), "--work", str(work))
    assert tv.exit_code == 0
    res = cli("generate", "--work", str(work), "--checkpoint", str(work / "runs" / "transvae-released" / "model.pt"),
              "--split", "test", "--frames", "40")
    assert res.exit_code == 1 and "speaker frames" in res.output and "Traceback" not in res.output
