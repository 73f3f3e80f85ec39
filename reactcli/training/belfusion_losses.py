"""BeLFusion's two training steps (the challenge's ``train_belfusion.py`` with ``MSELoss_AE_v2`` and
``BeLFusionLoss``), for the generic loop's ``step(model, batch, generator) -> (loss, logs)``.

* :func:`belfusion_autoencoder_step` (stage 1): every whole window of the listener's emotion
  crop is autoencoded with a sampled latent; loss = MSE(emotion) + ``kl_weight`` x KL (summed
  over latent dims and windows, divided by the number of clips, as the authors) +
  ``coeff_weight`` x MSE of the 3DMM regressed from the reconstructed emotion (target: the
  listener's 3DMM, or zeros as the authors' training effectively had, ``coeff_target``).
* :func:`belfusion_diffusion_step` (stage 2): one window per item (one start per batch, as the
  authors), online with the speaker shifted one window into the past; a step per item and
  ``k`` noises per item; the losses of :meth:`~reactcli.models.belfusion.BeLFusion.forward`.
  After stage 1, compute :func:`~reactcli.models.belfusion.latent_statistics` and build stage 2
  with :meth:`~reactcli.models.belfusion.BeLFusion.from_autoencoder`.
"""

from __future__ import annotations

from typing import Any

import torch

from reactcli.errors import ConfigError, InputError
from reactcli.models.belfusion import BehaviourAutoencoder, BeLFusion

__all__ = ["autoencoder_loss", "belfusion_autoencoder_step", "belfusion_diffusion_step", "training_windows"]


def _get(batch: dict[str, Any], key: str) -> torch.Tensor:
    if key not in batch:
        raise InputError(f"training batch: missing key {key!r}")
    return batch[key]


def autoencoder_loss(
    out: dict[str, torch.Tensor],
    target: torch.Tensor,
    target_coefficients: torch.Tensor,
    clips: int,
    kl_weight: float,
    coeff_weight: float,
) -> dict[str, torch.Tensor]:
    """The authors' ``MSELoss_AE_v2``: ``mse + kl_weight * kld + coeff_weight * coeff``.

    ``out``: :meth:`BehaviourAutoencoder.forward` output for ``N`` windows; ``target`` ``(N, w, 25)``;
    ``target_coefficients`` broadcastable to ``(N, w, 58)``; ``clips``: the batch's clip count
    (the KL sum is divided by it, not by the windows)."""
    mse = (out["prediction"] - target).pow(2).mean()
    mu, logvar = out["mu"], out["logvar"]
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / clips
    coeff = (out["coefficients"] - target_coefficients).pow(2).mean()
    return {"loss": mse + kl_weight * kld + coeff_weight * coeff, "mse": mse, "kld": kld, "coeff": coeff}


def belfusion_autoencoder_step(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage 1 step on the listener side of a batch (see the module docstring)."""
    net = getattr(model, "module", model)
    if not isinstance(net, BehaviourAutoencoder):
        raise ConfigError(f"belfusion_autoencoder_step: expected a BehaviourAutoencoder, got {type(net).__name__}")
    cfg = net.config
    emotion = _get(batch, "listener_emotion")
    windows = net.windows(emotion, "listener_emotion")
    if cfg.coeff_target == "listener":
        tdmm = net.windows(_get(batch, "listener_tdmm"), "listener_tdmm")
    else:
        tdmm = windows.new_zeros(())
    eps = torch.randn(windows.shape[0], cfg.z_dim, generator=generator, device=generator.device).to(windows)
    out = model(windows, eps)
    losses = autoencoder_loss(out, windows, tdmm, emotion.shape[0], cfg.kl_weight, cfg.coeff_weight)
    return losses["loss"], {k: float(v.detach()) for k, v in losses.items() if k != "loss"}


def training_windows(
    model: BeLFusion, speaker_emotion: torch.Tensor, listener_emotion: torch.Tensor, start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(listener_window, speaker_window)`` of the training window starting at ``start``: the same
    frames offline; online the listener frames ``[start + w, start + 2w)`` of the crop against the
    speaker's ``[start, start + w)`` (the authors' shift)."""
    w = model.config.window
    if model.config.online:
        speaker_emotion, listener_emotion = speaker_emotion[:, :-w], listener_emotion[:, w:]
    if start < 0 or start + w > listener_emotion.shape[1]:
        raise InputError(
            f"training window [{start}, {start + w}) outside the {listener_emotion.shape[1]} usable frames"
        )
    return listener_emotion[:, start : start + w], speaker_emotion[:, start : start + w]


def belfusion_diffusion_step(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage 2 step (see the module docstring); the autoencoder stays frozen."""
    net = getattr(model, "module", model)
    if not isinstance(net, BeLFusion):
        raise ConfigError(f"belfusion_diffusion_step: expected a BeLFusion, got {type(net).__name__}")
    cfg = net.config
    spk, lis = _get(batch, "speaker_emotion"), _get(batch, "listener_emotion")
    w = cfg.window
    usable = lis.shape[1] - (w if cfg.online else 0)
    need = 2 * w - 1 if cfg.window_start == "authors" else w
    if usable < need:
        raise InputError(
            f"belfusion_diffusion_step: crops of {lis.shape[1]} frames are too short for window {w} "
            f"(online={cfg.online}, window_start={cfg.window_start}); use data.crop >= {need + lis.shape[1] - usable}"
        )
    dev = generator.device
    high = w if cfg.window_start == "authors" else usable - w + 1
    start = int(torch.randint(0, high, (1,), generator=generator, device=dev))
    b = lis.shape[0]
    t = torch.randint(0, cfg.diffusion_steps, (b,), generator=generator, device=dev).to(lis.device)
    noise = torch.randn(b * cfg.k, cfg.channels, generator=generator, device=dev).to(lis)
    drop = cfg.cond_dropout > 0 and float(torch.rand((), generator=generator, device=dev)) < cfg.cond_dropout
    lis_w, spk_w = training_windows(net, spk, lis, start)
    out = model(lis_w, spk_w, t, noise, drop)
    return out["loss"], {
        "l1_encoded": float(out["l1_encoded"].detach()),
        "mse_decoded": float(out["mse_decoded"].detach()),
    }
