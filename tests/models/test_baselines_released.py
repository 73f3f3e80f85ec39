"""The challenge's released Trans-VAE and BeLFusion checkpoints load into reactcli and reproduce the
authors' networks (``tests/fixtures/make_baselines_fixture.py``: their code at commit c5a8ff85,
random weights, fixed inputs and noise) within 1e-4; broken checkpoints are one named error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from reactcli.errors import InputError
from reactcli.models.belfusion import load_released_autoencoder, load_released_belfusion
from reactcli.models.transvae import load_released_transvae
from reactcli.training.belfusion_losses import autoencoder_loss, training_windows
from reactcli.training.transvae_losses import kl_to_standard_normal, pair_diversity, reaction_mse

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "baselines"
TOL = 1e-4


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return torch.load(FIX / "baselines_io.pt", weights_only=True)


def close(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max())


def test_fixture_records_the_pinned_commit(io):
    assert bytes(io["meta/commit"].tolist()).decode() == "c5a8ff8563284e311f89fdf10558f3ae8f0082dd"


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_transvae_reproduces_the_authors(io, mode):
    m = load_released_transvae(FIX / f"transvae_{mode}.pth").eval()
    assert m.config.online == (mode == "online") and m.config.visual_encoder == "video"
    assert m.config.feature_dim == 16 and m.config.audio_dim == 78
    video, audio = io["transvae/video"].float(), io["transvae/audio"].float()
    eps = io[f"transvae/{mode}/eps"]  # (windows, B, d), one latent per window
    with torch.no_grad():
        out = m(audio, num_samples=1, window=4, speaker_video=video, noise=eps)
    assert close(out.mu[:, 0], io[f"transvae/{mode}/mu"]) < TOL
    for f in ("tdmm", "emotion"):
        assert close(out.outputs[f][:, 0], io[f"transvae/{mode}/{f}"]) < TOL


def test_transvae_loss_terms_match_the_authors(io):
    p = {"emotion": io["transvae_loss/pred_emotion"], "tdmm": io["transvae_loss/pred_tdmm"]}
    g = {"emotion": io["transvae_loss/gt_emotion"], "tdmm": io["transvae_loss/gt_tdmm"]}
    rec = reaction_mse(p, g, 10.0).mean()
    assert abs(float(rec - io["transvae_loss/rec"])) < TOL
    kl = kl_to_standard_normal(io["transvae_loss/mu"], io["transvae_loss/logvar"])
    assert abs(float(rec + 1e-3 * kl - io["transvae_loss/total"])) < TOL  # their VAELoss(kl_p=1e-3)
    assert (
        abs(float(kl_to_standard_normal(io["transvae_loss/mu"], io["transvae_loss/logvar"]) - io["transvae_loss/kld"]))
        < TOL
    )
    div = pair_diversity(io["transvae_loss/other_tdmm"], p["tdmm"], 100.0) + pair_diversity(
        io["transvae_loss/other_emotion"], p["emotion"], 100.0
    )
    assert float(io["transvae_loss/div"]) > 0.05 and abs(float(div - io["transvae_loss/div"])) < TOL


def test_belfusion_autoencoder_reproduces_the_authors(io):
    ae, stats = load_released_autoencoder(FIX / "belfusion_vae" / "checkpoint_0.pth")
    assert ae.config.window == 5 and ae.config.hidden_dim == 16 and ae.config.mlp_dims == (8, 8)
    assert set(stats) >= {"min", "max", "mean", "var"}
    lis, lis3 = io["belfusion/listener_emotion"].float(), io["belfusion/listener_tdmm"].float()
    win = ae.windows(lis)
    with torch.no_grad():
        out = ae.eval()(win)  # the authors' evaluation: z = mu
        assert close(ae.hidden(win), io["belfusion_ae/hidden"]) < TOL
    assert close(out["prediction"].reshape(2, 20, 25), io["belfusion_ae/prediction"]) < TOL
    assert close(out["coefficients"].reshape(2, 20, 58), io["belfusion_ae/coefficients"]) < TOL
    assert close(out["mu"], io["belfusion_ae/mu"]) < TOL and close(out["logvar"], io["belfusion_ae/logvar"]) < TOL
    losses = autoencoder_loss(out, win, ae.windows(lis3), clips=2, kl_weight=1e-3, coeff_weight=0.5)
    for k in ("loss", "mse", "kld", "coeff"):
        assert abs(float(losses[k] - io[f"belfusion_ae/{k}"])) < TOL, k


def test_belfusion_denoiser_reproduces_the_authors(io):
    m = load_released_belfusion(FIX / "belfusion_ldm" / "checkpoint_0.pth")
    with torch.no_grad():
        out = m.denoiser(io["belfusion_mlp/x"], io["belfusion_mlp/t"], io["belfusion_mlp/cond"])
    assert close(out, io["belfusion_mlp/out"]) < TOL


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_belfusion_generation_reproduces_the_authors(io, mode):
    """Their ``LatentMLPMatcher.forward`` in eval mode: 4 windows, 10 DDIM steps from saved noise."""
    m = load_released_belfusion(FIX / "belfusion_ldm" / "checkpoint_0.pth", online=mode == "online")
    assert m.config.diffusion_steps == 10 and m.config.k == 3 and m.config.num_layers == 3
    noise = io[f"belfusion/{mode}/noise"].view(2, 1, 4, 16)  # their rows: item-major, then windows
    out = m.generate(speaker_emotion=io["belfusion/speaker_emotion"].float(), num_samples=1, noise=noise)
    assert close(out["emotion"][:, 0], io[f"belfusion/{mode}/emotion"]) < TOL
    assert close(out["tdmm"][:, 0], io[f"belfusion/{mode}/tdmm"]) < TOL


def test_belfusion_training_losses_match_the_authors(io):
    """Their ``LatentDiffusion.denoise`` (k = 3) + ``BeLFusionLoss`` on a fixed window, steps and noise."""
    m = load_released_belfusion(FIX / "belfusion_ldm" / "checkpoint_0.pth").train()
    lis_w, spk_w = training_windows(
        m,
        io["belfusion/speaker_emotion"].float(),
        io["belfusion/listener_emotion"].float(),
        int(io["belfusion_train/start"]),
    )
    with torch.no_grad():
        out = m(lis_w, spk_w, io["belfusion_train/t"], io["belfusion_train/noise"])
    for k in ("loss", "l1_encoded", "mse_decoded"):
        assert abs(float(out[k] - io[f"belfusion_train/{k}"])) < TOL, k


# ---- strict loading -------------------------------------------------------------------------


def edited(tmp_path: Path, src: Path, edit) -> Path:
    ck = torch.load(src, weights_only=True)
    edit(ck["state_dict"])
    dst = tmp_path / src.name
    torch.save(ck, dst)
    return dst


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda s: s.pop(
                "reaction_decoder.tdmm_head.weight", s.pop("reaction_decoder.listener_reaction_3dmm_map_layer.weight")
            ),
            "missing tdmm_head.weight",
        ),
        (
            lambda s: s.__setitem__("reaction_decoder.extra.weight", torch.zeros(2)),
            "unexpected reaction_decoder.extra.weight",
        ),
        (
            lambda s: s.__setitem__("reaction_decoder.listener_reaction_3dmm_map_layer.bias", torch.zeros(57)),
            "wrong shape reaction_decoder.listener_reaction_3dmm_map_layer.bias",
        ),
        (lambda s: s.__setitem__("reaction_decoder.PE.pe", torch.zeros(10, 1, 16)), "PE.pe"),
    ],
)
def test_transvae_strict_errors(tmp_path, edit, message):
    path = edited(tmp_path, FIX / "transvae_online.pth", edit)
    with pytest.raises(InputError) as err:
        load_released_transvae(path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_transvae_loader_rejects_other_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        load_released_transvae(junk)
    torch.save({"epoch": 1}, tmp_path / "nostate.pth")
    with pytest.raises(InputError, match="state_dict"):
        load_released_transvae(tmp_path / "nostate.pth")
    with pytest.raises(InputError, match="not a REACT Trans-VAE"):
        load_released_transvae(FIX / "belfusion_ldm" / "checkpoint_0.pth")
    with pytest.raises(InputError, match="online"):
        load_released_transvae(FIX / "transvae_offline.pth", online=True)
    with pytest.raises(InputError, match="not found"):
        load_released_transvae(tmp_path / "absent.pth")


def copy_belfusion(tmp_path: Path) -> Path:
    dst = tmp_path / "results"
    shutil.copytree(FIX, dst, ignore=shutil.ignore_patterns("transvae_*", "*.pt"))
    return dst


@pytest.mark.parametrize(
    "which, edit, message",
    [
        ("belfusion_ldm", lambda s: s.pop("layers.1.norm.bias"), "missing denoiser.blocks.1.norm.bias"),
        (
            "belfusion_ldm",
            lambda s: s.__setitem__("layers.0.cond_layers.1.bias", torch.zeros(32)),
            "layers.0.cond_layers.1.bias (differs from layers.0.linear_emb.bias)",
        ),
        (
            "belfusion_ldm",
            lambda s: s.__setitem__("layers.9.linear.weight", torch.zeros(2, 2)),
            "unexpected layers.9.linear.weight",
        ),
        ("belfusion_vae", lambda s: s.__setitem__("fc_z_dec.bias", torch.zeros(3)), "wrong shape fc_z_dec.bias"),
        ("belfusion_vae", lambda s: s.pop("coeff_reg.2.weight"), "missing coeff.2.weight"),
    ],
)
def test_belfusion_strict_errors(tmp_path, which, edit, message):
    root = copy_belfusion(tmp_path)
    target = root / which / "checkpoint_0.pth"
    edited(target.parent, target, edit)
    with pytest.raises(InputError) as err:
        load_released_belfusion(root / "belfusion_ldm" / "checkpoint_0.pth")
    assert message in str(err.value) and str(target) in str(err.value) and "\n" not in str(err.value)


def test_belfusion_finds_its_autoencoder_and_needs_statistics(tmp_path):
    root = copy_belfusion(tmp_path)
    ldm = root / "belfusion_ldm" / "checkpoint_0.pth"
    assert load_released_belfusion(ldm).config.autoencoder.window == 5  # found via config.yaml's emb_emotion_path
    ck = torch.load(root / "belfusion_vae" / "checkpoint_0.pth", weights_only=True)
    del ck["statistics"]
    torch.save(ck, root / "belfusion_vae" / "checkpoint_0.pth")
    with pytest.raises(InputError, match="statistics"):
        load_released_belfusion(ldm)
    (root / "belfusion_ldm" / "config.yaml").unlink()
    with pytest.raises(Exception, match="autoencoder_checkpoint"):
        load_released_belfusion(ldm)
