"""Trans-VAE losses and the per-batch training step (the challenge's ``train.py`` / ``VAELoss``).

The generic loop (:mod:`reactcli.training.loop`) calls :func:`transvae_training_step` once per
batch. One step, as the authors train:

* a rollout of the speaker crop (the whole crop offline, windows of ``config.window`` online)
  with two latent samples per item when the diversity loss is on (one batch of ``2B`` rows; the
  authors run a second forward pass without gradient);
* **reconstruction** of the first sample: MSE on the emotion + MSE on the 3DMM expression dims
  + ``pose_weight`` x MSE on the 3DMM pose dims (52:58), against the item's own real listener
  (``reconstruction="listener"``, the authors') or the closest of its appropriate reactions
  (``"appropriate"``);
* **KL** of each window's ``N(mu, sigma)`` to ``N(0, I)``, averaged over items, latent dims and
  windows, weight ``kl_weight``;
* **diversity** ``exp(-||y_1 - y_2||^2 / sigma)`` between the two samples' flattened 3DMM
  sequences plus the same for emotion, averaged over items, weight ``diversity_weight``; the
  second sample carries no gradient unless ``diversity_gradient="both"``.
"""

from __future__ import annotations

from typing import Any

import torch

from reactcli.errors import ConfigError, InputError
from reactcli.models.transvae import TransVAE

__all__ = ["kl_to_standard_normal", "pair_diversity", "reaction_mse", "transvae_training_step"]


def reaction_mse(pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor], pose_weight: float) -> torch.Tensor:
    """The authors' reconstruction: ``mse(emotion) + mse(3DMM[:52]) + pose_weight * mse(3DMM[52:])``.

    Tensors broadcast as ``(..., T, D)``; the means are over the last two axes, so the result
    has the leading shape (``(B,)`` for one sample per item, ``(B, M)`` against M candidates).
    """

    def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = torch.broadcast_tensors(a, b)
        return (a - b).pow(2).mean(dim=(-2, -1))

    p3, t3 = pred["tdmm"], target["tdmm"]
    return (
        mse(pred["emotion"], target["emotion"])
        + mse(p3[..., :52], t3[..., :52])
        + pose_weight * mse(p3[..., 52:], t3[..., 52:])
    )


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) averaged over every element (items, windows, dims)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def pair_diversity(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """``mean_items exp(-||a_i - b_i||^2 / sigma)`` over flattened ``(B, T, D)`` sequences."""
    d2 = (a.reshape(a.shape[0], -1) - b.reshape(b.shape[0], -1)).pow(2).sum(-1)
    return torch.exp(-d2 / sigma).mean()


def _get(batch: dict[str, Any], key: str) -> torch.Tensor:
    if key not in batch:
        raise InputError(f"training batch: missing key {key!r}")
    return batch[key]


def transvae_training_step(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """One Trans-VAE step (see the module docstring): ``(loss, logs)``.

    ``model`` is a :class:`TransVAE` (or a DDP wrapper of one: it is called, not reached into);
    ``batch`` a collated :class:`~reactcli.training.data.ReactionDataset` batch; ``generator``
    draws the latent noise.
    """
    net: TransVAE = getattr(model, "module", model)
    if not isinstance(net, TransVAE):
        raise ConfigError(f"transvae_training_step: expected a TransVAE, got {type(net).__name__}")
    cfg = net.config
    if cfg.visual_encoder == "video":
        raise ConfigError(
            "transvae_training_step: reactcli batches carry no speaker frames; train with visual_encoder=features"
        )
    k = 2 if cfg.diversity_weight > 0 else 1
    out = model(
        _get(batch, "speaker_audio"),
        batch.get("speaker_emotion"),
        batch.get("speaker_tdmm"),
        num_samples=k,
        generator=generator,
    )
    first = {h: y[:, 0] for h, y in out.outputs.items()}
    if cfg.reconstruction == "listener":
        rec = reaction_mse(first, {h: _get(batch, f"listener_{h}") for h in first}, cfg.pose_weight).mean()
    else:
        mask = _get(batch, "appropriate_mask").to(torch.bool)
        if not mask.any(dim=1).all():
            raise InputError("training batch: an item has no appropriate reaction (appropriate_mask row empty)")
        cands = {h: _get(batch, f"appropriate_{h}") for h in first}
        per = reaction_mse({h: y.unsqueeze(1) for h, y in first.items()}, cands, cfg.pose_weight)  # (B, M)
        rec = per.masked_fill(~mask, float("inf")).min(dim=1).values.mean()
    kl = kl_to_standard_normal(out.mu[:, 0], out.logvar[:, 0])
    loss = rec + cfg.kl_weight * kl
    div = rec.new_zeros(())
    if k == 2:
        for y in out.outputs.values():
            other = y[:, 1] if cfg.diversity_gradient == "both" else y[:, 1].detach()
            div = div + pair_diversity(other, y[:, 0], cfg.diversity_sigma)
        loss = loss + cfg.diversity_weight * div
    logs = {"rec": float(rec.detach()), "kl": float(kl.detach()), "diversity": float(div.detach())}
    return loss, logs
