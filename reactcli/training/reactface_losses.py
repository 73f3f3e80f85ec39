"""ReactFace losses and the per-batch training step (paper Sec. 4.2 and 4.4).

The lead's generic training loop calls :func:`reactface_training_step` once per batch and owns
everything else (optimiser, epochs, checkpoints, DDP).

Two stages (paper Sec. 4.4), chosen by the ``stage`` argument:

* **stage 1** -- one sample per speaker; the reaction is reconstructed against the item's *own*
  real listener, the speaker encoder reconstructs the speaker's own features (Eq. 12), plus
  KL and the smoothness loss (Eq. 14).
* **stage 2** -- ``config.diversity_samples`` (M = 2) samples per speaker; each is reconstructed
  against its *closest* appropriate real reaction (Eq. 5, at most ``max_neighbours``), plus KL,
  smoothness and the diversity loss (Eq. 15). The speaker reconstruction keeps weight
  ``speaker_recon_weight_stage2`` (0 by default, as Eq. 15).

How the listener history is fed: in both stages the model rolls out window by window exactly as
at inference (:meth:`ReactFace.rollout`), with its *own generated* previous windows as the
past-interaction input -- never teacher-forced ground truth. The authors' code trains with one
history and generates with another; here the two cannot differ because they are one code path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from reactcli.errors import ConfigError, InputError
from reactcli.models.reactface import FEATURE_DIMS, POSE_DIMS, ReactFace

__all__ = [
    "feature_weights",
    "weighted_smooth_l1",
    "appropriate_reconstruction_loss",
    "kl_standard_normal",
    "diversity_loss",
    "smoothness_loss",
    "reactface_training_step",
]


def feature_weights(feature: str, pose_weight: float, device: torch.device | None = None) -> torch.Tensor:
    """Per-dim loss weights: 1 everywhere, ``pose_weight`` on the 3DMM pose dims (52:58)."""
    w = torch.ones(FEATURE_DIMS[feature], device=device)
    if feature == "tdmm":
        w[POSE_DIMS] = pose_weight
    return w


def weighted_smooth_l1(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """SmoothL1 (beta 1) per element, times per-dim ``weights``, mean over the last two axes.

    ``pred`` and ``target`` broadcast against each other as ``(..., T, D)``; returns ``(...)``.
    """
    pred, target = torch.broadcast_tensors(pred, target)
    return (F.smooth_l1_loss(pred, target, reduction="none") * weights).mean(dim=(-2, -1))


def appropriate_reconstruction_loss(
    preds: dict[str, torch.Tensor],
    candidates: dict[str, torch.Tensor],
    mask: torch.Tensor,
    pose_weight: float = 10.0,
    max_neighbours: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5: for every sample, the smallest loss over the item's appropriate real reactions.

    Args:
        preds: head -> ``(B, K, T, D)`` generated reactions.
        candidates: head -> ``(B, M, T, D)`` appropriate real reactions (padded).
        mask: ``(B, M)`` bool, True for real (non-padding) candidates.
        pose_weight: weight of the 3DMM pose dims.
        max_neighbours: use at most this many valid candidates per item (the first ones).

    Returns:
        ``(loss, best)``: the mean over ``B, K`` of the per-sample minimum (heads summed), and
        ``(B, K)`` indices of the chosen candidates.
    """
    mask = mask.to(torch.bool)
    empty = ~mask.any(dim=1)
    if empty.any():
        raise InputError(f"appropriate_mask: item(s) {empty.nonzero().flatten().tolist()} have no appropriate reaction")
    if max_neighbours is not None:
        mask = mask & (mask.cumsum(dim=1) <= max_neighbours)
    total = None
    for head, pred in preds.items():
        if head not in candidates:
            raise InputError(f"appropriate_{head}: missing from the batch")
        cand = candidates[head]
        w = feature_weights(head, pose_weight, pred.device)
        per = weighted_smooth_l1(pred.unsqueeze(2), cand.unsqueeze(1), w)  # (B, K, M)
        total = per if total is None else total + per
    total = total.masked_fill(~mask.unsqueeze(1), float("inf"))
    best_val, best = total.min(dim=2)
    return best_val.mean(), best


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), averaged over every element (Eq. 7)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def diversity_loss(samples: torch.Tensor, sigma: float) -> torch.Tensor:
    """Eq. 6: mean over ordered pairs ``a != b`` of ``exp(-||y_a - y_b||^2 / sigma)``.

    ``samples`` is ``(B, K, T, D)``; the norm is over the flattened sequence; averaged over
    ``B``. Zero when ``K < 2`` (no pair).
    """
    b, k = samples.shape[:2]
    if k < 2:
        return samples.new_zeros(())
    flat = samples.reshape(b, k, -1)
    d2 = (flat.unsqueeze(2) - flat.unsqueeze(1)).pow(2).sum(-1)  # (B, K, K)
    off = ~torch.eye(k, dtype=torch.bool, device=samples.device)
    return torch.exp(-d2 / sigma)[:, off].mean()


def smoothness_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 13: mean |second difference of target - second difference of pred| over time/dims.

    ``pred`` and ``target`` broadcast as ``(..., T, D)``; needs ``T >= 3``.
    """
    if pred.shape[-2] < 3:
        return pred.new_zeros(())

    def dd(x: torch.Tensor) -> torch.Tensor:
        return x[..., 2:, :] - 2 * x[..., 1:-1, :] + x[..., :-2, :]

    return (dd(target) - dd(pred)).abs().mean()



def _get(batch: dict[str, Any], key: str) -> torch.Tensor:
    if key not in batch:
        raise InputError(f"training batch: missing key {key!r}")
    return batch[key]


def reactface_training_step(
    model: ReactFace,
    batch: dict[str, torch.Tensor],
    stage: int,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One ReactFace training step: rollout (as at inference) + the stage's losses.

    Args:
        model: a :class:`ReactFace` (in train mode, on the batch's device).
        batch: collated batch, see the data contract (``speaker_*``, ``listener_*``,
            ``appropriate_*`` with ``appropriate_mask``). Stage 1 needs ``listener_<head>``;
            stage 2 needs ``appropriate_<head>`` and ``appropriate_mask``.
        stage: 1 or 2 (paper Sec. 4.4, see the module docstring).
        generator / seed: randomness of the latent samples (one is required; the loop passes
            one generator for the whole run so steps differ but the run is reproducible).

    Returns:
        ``(loss, logs)``: the scalar to back-propagate and a dict of float loss terms.
    """
    if stage not in (1, 2):
        raise ConfigError(f"reactface_training_step: stage must be 1 or 2, got {stage!r}")
    if generator is None and seed is None:
        raise ConfigError("reactface_training_step: pass a torch.Generator or a seed")
    cfg = model.config
    audio = _get(batch, "speaker_audio")
    emo, tdmm = _get(batch, "speaker_emotion"), _get(batch, "speaker_tdmm")
    k = 1 if stage == 1 else cfg.diversity_samples
    out = model.rollout(audio, emo, tdmm, num_samples=k, generator=generator, seed=seed,
                        frame_offset=batch.get("frame_offset"))
    preds = out.outputs  # head -> (B, K, T, D)

    if stage == 1:
        targets = {h: _get(batch, f"listener_{h}").unsqueeze(1) for h in preds}
        rec = sum(
            weighted_smooth_l1(preds[h], targets[h], feature_weights(h, cfg.pose_weight, audio.device)).mean()
            for h in preds
        )
    else:
        cands = {h: _get(batch, f"appropriate_{h}") for h in preds}
        mask = _get(batch, "appropriate_mask")
        rec, best = appropriate_reconstruction_loss(preds, cands, mask, cfg.pose_weight, cfg.max_neighbours)
        idx = best  # (B, K) -> gather the chosen reaction for the smoothness target
        targets = {
            h: torch.gather(
                c, 1, idx.view(*idx.shape, 1, 1).expand(-1, -1, c.shape[2], c.shape[3])
            )
            for h, c in cands.items()
        }
    smooth = sum(smoothness_loss(preds[h], targets[h]) for h in preds)
    kl = kl_standard_normal(out.mu, out.logvar)
    spk_w = cfg.speaker_recon_weight if stage == 1 else cfg.speaker_recon_weight_stage2
    spk = sum(
        weighted_smooth_l1(out.speaker_recon[h], _get(batch, f"speaker_{h}"), feature_weights(h, cfg.pose_weight, audio.device)).mean()
        for h in out.speaker_recon
    )
    div = diversity_loss(torch.cat([preds[h] for h in preds], dim=-1), cfg.diversity_sigma) if stage == 2 else audio.new_zeros(())

    loss = rec + cfg.kl_weight * kl + cfg.smooth_weight * smooth + spk_w * spk
    if stage == 2:
        loss = loss + cfg.diversity_weight * div
    if not torch.isfinite(loss):
        raise InputError("reactface_training_step: non-finite loss (check the batch for NaN/inf features)")
    logs = {
        "loss": float(loss.detach()),
        "rec": float(rec.detach()),
        "kl": float(kl.detach()),
        "smooth": float(smooth.detach()),
        "speaker_recon": float(spk.detach()),
        "diversity": float(div.detach()),
    }
    return loss, logs
