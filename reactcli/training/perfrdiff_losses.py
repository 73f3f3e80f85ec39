"""One optimisation step of each PerFRDiff stage: the loss and its logs (the loop lives elsewhere).

* Stage 1a, GAFRG (:func:`gafrg_training_step`): the target x0 is a window of an *appropriate*
  real reaction of the speaker item, drawn from the item's appropriateness set with the mask
  (``reactions_per_item`` draws per item with replacement; the paper uses 10 and replicates
  when fewer exist), so the model learns the distribution of appropriate reactions, not the one
  reaction the item's own listener happened to show. Each condition (audio, emotion, 3DMM) is
  replaced by zeros with ``cond_drop_prob`` independently (classifier-free guidance).
* Stage 1b, PSSL (:func:`pssl_training_step`): supervised contrastive loss over the style
  vectors of the listener's history clip and of the item's own listener clip (two clips of the
  same listener, so every listener in the batch has a positive), labels = listener id.
* Stage 2, PWSG (:func:`pwsg_training_step`): GAFRG and PSSL frozen; the editor's shifts
  personalise GAFRG, and the target is the item's *own* listener's reaction (the personal one).

Batches follow the shared data contract (dict of float32 tensors with a leading batch dim, see
the models' docs). Randomness comes from ``generator`` (torch.Generator; ``None`` = torch's
global RNG, seeded by the loop); dropout inside the networks uses the global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from reactcli.config import PositiveInt, Probability
from reactcli.errors import ConfigError, InputError
from reactcli.models.perfrdiff.gafrg import GAFRG, WeightShift
from reactcli.models.perfrdiff.pssl import PSSLEncoder, supcon_loss
from reactcli.models.perfrdiff.pwsg import PWSGTraining

__all__ = ["PerFRDiffStepConfig", "gafrg_training_step", "pssl_training_step", "pwsg_training_step", "code_scores"]

Batch = dict[str, torch.Tensor]


@dataclass
class PerFRDiffStepConfig:
    """What a GAFRG/PWSG step learns from a batch."""

    target: Literal["emotion", "tdmm", "both"] = "emotion"
    """Reaction features: 25-d emotion, 58-d 3DMM, or both concatenated (emotion first); must
    match the GAFRG's ``reaction_dim``."""
    reactions_per_item: PositiveInt = 1
    """Windows (each with its own appropriate reaction, start frame, timestep and noise) per item
    and step; the paper uses 10 appropriate reactions per speaker."""
    cond_drop_prob: Probability = 0.2
    """Probability of nulling (zeroing) each speaker condition independently (guidance training)."""

    def __post_init__(self) -> None:
        if self.target not in ("emotion", "tdmm", "both"):
            raise ConfigError(f"target must be emotion, tdmm or both, got {self.target!r}")
        if self.reactions_per_item < 1:
            raise ConfigError(f"reactions_per_item must be >= 1, got {self.reactions_per_item}")
        if not 0.0 <= self.cond_drop_prob <= 1.0:
            raise ConfigError(f"cond_drop_prob must be in [0, 1], got {self.cond_drop_prob}")


def _dev(gen: torch.Generator | None, device: torch.device) -> torch.device:
    return gen.device if gen is not None else device


def _randint(high: int, shape: tuple[int, ...], gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=gen, device=_dev(gen, device)).to(device)


def _rand(shape: tuple[int, ...], gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=_dev(gen, device)).to(device)


def _randn(shape: tuple[int, ...], gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=_dev(gen, device)).to(device)


def _get(batch: Batch, key: str) -> torch.Tensor:
    if key not in batch:
        raise InputError(f"batch has no {key!r} (keys: {sorted(batch)})")
    return batch[key]


def _reaction(batch: Batch, prefix: str, target: str) -> torch.Tensor:
    """Reaction features of ``prefix`` ("appropriate" or "listener") for the configured target."""
    if target == "emotion":
        return _get(batch, f"{prefix}_emotion")
    if target == "tdmm":
        return _get(batch, f"{prefix}_tdmm")
    return torch.cat([_get(batch, f"{prefix}_emotion"), _get(batch, f"{prefix}_tdmm")], dim=-1)


def _speaker_windows(model: GAFRG, batch: Batch, starts: torch.Tensor) -> list[torch.Tensor]:
    """Speaker windows (N, w, F) seen by reaction windows starting at ``starts`` (B, n)."""
    seqs = [_get(batch, key) for key in ("speaker_audio", "speaker_emotion", "speaker_tdmm")]
    model.check_speaker(*seqs)
    return model.speaker_windows(*seqs, starts)


def _prediction_and_target(model: GAFRG, scheduler: Any, x0: torch.Tensor, speaker: list[torch.Tensor],
                           t: torch.Tensor, noise: torch.Tensor, shifts: dict[str, WeightShift] | None,
                           starts: torch.Tensor | None, keep: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The denoiser's output for x0 noised with ``noise`` at steps ``t``, and what it should be
    (``keep`` (N, 3): the conditions each row keeps, dropped as the model's memory layout says)."""
    pred = model.denoise(scheduler.add_noise(x0, noise, t), t, *speaker, shifts, starts, keep)
    return pred, _denoiser_target(scheduler, x0, noise, t)


def _denoiser_target(scheduler: Any, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the denoiser should output for x0 noised with ``noise`` at ``t`` (its prediction type)."""
    kind = scheduler.config.prediction_type
    if kind == "sample":
        return x0
    if kind == "epsilon":
        return noise
    return scheduler.get_velocity(x0, noise, t)


def loss_weights(scheduler: Any, t: torch.Tensor) -> torch.Tensor | None:
    """Per-window loss weights of steps ``t`` (N,), or None for the plain mean (``uniform``).

    ``min_snr`` (``DiffusionConfig.loss_weighting``): ``min(SNR, gamma)`` in x0 terms
    (``clamped_snr``: ``clamp(SNR, 1, gamma)``), i.e. that
    divided by ``SNR`` for an epsilon target and by ``SNR + 1`` for a v target (the MSE of those
    targets is ``SNR`` and ``SNR + 1`` times the x0 MSE)."""
    kind_w = getattr(scheduler, "loss_weighting", "uniform")
    if kind_w == "uniform":
        return None
    ab = scheduler.alphas_cumprod.to(t.device)[t].to(torch.float32)
    snr = ab / (1 - ab).clamp_min(1e-12)
    w = snr.clamp(min=1.0 if kind_w == "clamped_snr" else None, max=float(scheduler.min_snr_gamma))
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        w = w / snr
    elif kind == "v_prediction":
        w = w / (snr + 1)
    return w


def _diffusion_loss(
    model: GAFRG,
    scheduler: Any,
    x0: torch.Tensor,
    speaker: list[torch.Tensor],
    gen: torch.Generator | None,
    drop_prob: float,
    shifts: dict[str, WeightShift] | None = None,
    starts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Noise x0 at a random step, null conditions at random, regress the scheduler's target.

    ``starts`` (N,): clip start frame of each window (for GAFRGs built with ``clip_position``)."""
    n = x0.shape[0]
    dev = x0.device
    t = _randint(scheduler.config.num_train_timesteps, (n,), gen, dev)
    noise = _randn(tuple(x0.shape), gen, dev)
    keep = (_rand((n, 3), gen, dev) >= drop_prob).to(x0.dtype)
    pred, target = _prediction_and_target(model, scheduler, x0, speaker, t, noise, shifts, starts, keep)
    weights = loss_weights(scheduler, t)
    if weights is None:
        loss = F.mse_loss(pred, target)
    else:
        loss = ((pred - target).pow(2).flatten(1).mean(1) * weights.to(pred.dtype)).mean()
    return loss, {"loss": float(loss.detach()), "cond_kept": float(keep.mean())}


def _clip_starts(batch: Batch, starts: torch.Tensor) -> torch.Tensor:
    """Window starts within the crop (B, n) -> clip frames (B*n,), using the crop's ``frame_offset``."""
    off = batch.get("frame_offset")
    if off is None:
        return starts.reshape(-1)
    return (starts + torch.as_tensor(off, device=starts.device).reshape(-1, 1)).reshape(-1)


def _starts(batch_size: int, n: int, length: int, window: int, gen: torch.Generator | None,
            device: torch.device) -> torch.Tensor:
    if length < window:
        raise InputError(f"training crops of {length} frames are shorter than the {window}-frame window")
    return _randint(length - window + 1, (batch_size, n), gen, device)


def gafrg_training_step(
    model: GAFRG,
    scheduler: Any,
    batch: Batch,
    generator: torch.Generator | None = None,
    config: PerFRDiffStepConfig | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Diffusion loss of GAFRG on windows of appropriate real reactions (see module doc).

    Returns the scalar loss (with graph) and float logs; the caller does backward/step.
    """
    cfg = config or PerFRDiffStepConfig()
    app = _reaction(batch, "appropriate", cfg.target)  # (B, M, T, D)
    mask = _get(batch, "appropriate_mask").bool()
    if app.dim() != 4 or mask.shape != app.shape[:2]:
        raise InputError(f"appropriate reactions must be (B, M, T, D) with mask (B, M), got "
                         f"{tuple(app.shape)} and {tuple(mask.shape)}")
    if app.shape[-1] != model.config.reaction_dim:
        raise ConfigError(f"target {cfg.target!r} has {app.shape[-1]} dims, GAFRG outputs {model.config.reaction_dim}")
    empty = (~mask.any(1)).nonzero().flatten().tolist()
    if empty:
        raise InputError(f"batch rows {empty} have no appropriate reaction in appropriate_mask")
    b, _, length, _ = app.shape
    n, w, dev = cfg.reactions_per_item, model.config.window, app.device
    gen_dev = _dev(generator, dev)
    pick = torch.multinomial(mask.float().to(gen_dev), n, replacement=True, generator=generator).to(dev)  # (B, n)
    starts = _starts(b, n, length, w, generator, dev)
    frames = starts[..., None] + torch.arange(w, device=dev)  # (B, n, w)
    x0 = app[torch.arange(b, device=dev)[:, None, None], pick[..., None], frames].reshape(b * n, w, -1)
    loss, logs = _diffusion_loss(model, scheduler, x0, _speaker_windows(model, batch, starts), generator,
                                 cfg.cond_drop_prob, starts=_clip_starts(batch, starts))
    logs["appropriate_per_item"] = float(mask.sum(1).float().mean())
    return loss, logs


def pssl_training_step(
    encoder: PSSLEncoder,
    batch: Batch,
    temperature: float = 0.07,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SupCon loss over style vectors of two clips per item (history + own reaction), labels = listener id.

    With a dyadic encoder each view also carries its speaker's side (the history clip's partner,
    and the item's own speaker).
    """
    ids = _get(batch, "listener_id").long().reshape(-1)
    hist = encoder.encode(batch, "history")
    own = encoder.encode(batch, "own")
    if ids.shape[0] != hist.shape[0] or own.shape[0] != hist.shape[0]:
        keys = encoder.config.input_keys("history") + encoder.config.input_keys("own")
        raise InputError(f"listener_id ({ids.shape[0]}) and the PSSL inputs {keys} ({hist.shape[0]}, "
                         f"{own.shape[0]}) disagree on the batch size")
    z = torch.cat([hist, own], dim=0)
    labels = torch.cat([ids, ids])
    loss = supcon_loss(z, labels, temperature)
    return loss, {"loss": float(loss.detach()), "listeners": float(ids.unique().numel())}


def pwsg_training_step(
    setup: PWSGTraining,
    scheduler: Any,
    batch: Batch,
    generator: torch.Generator | None = None,
    config: PerFRDiffStepConfig | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Diffusion loss of the *edited* GAFRG on the item's own listener reaction.

    GAFRG and PSSL stay frozen (only ``setup.editor`` gets gradients); the style comes from the
    listener's history clip, so the editor learns how this listener departs from the generic
    appropriate reaction. An editor with listener codes uses the code of the item's listener
    (``listener_id`` indexes the codes) and trains it with its weights.
    """
    cfg = config or PerFRDiffStepConfig()
    gafrg = setup.gafrg
    own = _reaction(batch, "listener", cfg.target)  # (B, T, D)
    if own.dim() != 3 or own.shape[-1] != gafrg.config.reaction_dim:
        raise InputError(f"listener reaction must be (B, T, {gafrg.config.reaction_dim}), got {tuple(own.shape)}")
    b, length, _ = own.shape
    n, w, dev = cfg.reactions_per_item, gafrg.config.window, own.device
    if setup.editor.codes is not None:  # listener codes: learned with the editor, indexed by identity
        ids = _get(batch, "listener_id").long()
        if int(ids.min()) < 0 or int(ids.max()) >= setup.editor.codes.shape[0]:
            raise InputError(f"listener ids {ids.tolist()} outside the editor's {setup.editor.codes.shape[0]} codes")
        style = setup.editor.codes[ids]
    else:
        with torch.no_grad():
            style = setup.pssl.encode(batch, "history")
    shifts = setup.editor(style)
    starts = _starts(b, n, length, w, generator, dev)
    frames = starts[..., None] + torch.arange(w, device=dev)
    x0 = own[torch.arange(b, device=dev)[:, None, None], frames].reshape(b * n, w, -1)  # item-major rows
    loss, logs = _diffusion_loss(gafrg, scheduler, x0, _speaker_windows(gafrg, batch, starts), generator,
                                 cfg.cond_drop_prob, shifts, _clip_starts(batch, starts))
    return loss, logs


def code_scores(
    gafrg: GAFRG,
    editor: Any,
    scheduler: Any,
    batch: Batch,
    target: str = "emotion",
    windows: int = 32,
    draws: int = 8,
    generator: torch.Generator | None = None,
    chunk: int = 64,
) -> torch.Tensor:
    """How well each listener code explains each item's listener reaction: (B, K) mean diffusion loss.

    Analysis by synthesis: the edited GAFRG of the code that fits a listener's own reaction to
    this speaker best is the code to generate with. ``batch`` holds the reaction
    (``listener_<target>``) and the speaker it answered (``speaker_*``), as in training. Every
    code sees the same windows, timesteps and noise (common random numbers, no condition
    dropout), so the comparison between codes is not blurred by the draws; ``draws`` rounds of
    ``windows`` windows per item are averaged. Codes are scored ``chunk`` at a time.
    """
    codes = editor.codes
    if codes is None:
        raise ConfigError("code_scores needs a PWSG with listener codes (codes > 0)")
    own = _reaction(batch, "listener", target)
    if own.dim() != 3 or own.shape[-1] != gafrg.config.reaction_dim:
        raise InputError(f"listener reaction must be (B, T, {gafrg.config.reaction_dim}), got {tuple(own.shape)}")
    b, length, _ = own.shape
    k, w, dev = codes.shape[0], gafrg.config.window, own.device
    total = torch.zeros(b, k, device=dev)
    with torch.no_grad():
        shifts_all = [(lo, editor(codes[lo:lo + chunk])) for lo in range(0, k, chunk)]
        for _ in range(draws):
            starts = _starts(b, windows, length, w, generator, dev)
            frames = starts[..., None] + torch.arange(w, device=dev)
            x0 = own[torch.arange(b, device=dev)[:, None, None], frames]  # (B, n, w, D)
            # the speaker memory does not depend on the code: encode it once per draw
            memory = gafrg.encode_speaker(*_speaker_windows(gafrg, batch, starts), _clip_starts(batch, starts))
            memory = memory.reshape(b, windows, *memory.shape[1:])
            t = _randint(scheduler.config.num_train_timesteps, (b, windows), generator, dev)
            noise = _randn(tuple(x0.shape), generator, dev)
            x_t = scheduler.add_noise(x0.flatten(0, 1), noise.flatten(0, 1), t.flatten()).reshape(x0.shape)
            tgt = _denoiser_target(scheduler, x0.flatten(0, 1), noise.flatten(0, 1), t.flatten()).reshape(x0.shape)
            for i in range(b):
                for lo, shifts in shifts_all:
                    g = next(iter(shifts.values())).groups
                    # item i's windows once per code, code-major (the rows WeightShift expects)
                    x_i, t_i, mem_i = (v[i].repeat(g, *([1] * (v.dim() - 2))) for v in (x_t, t, memory))
                    pred = gafrg(x_i, t_i, gafrg.static_kv(mem_i, shifts), 1, shifts)
                    err = (pred.reshape(g, windows, *pred.shape[1:]) - tgt[i]).pow(2).reshape(g, -1).mean(1)
                    total[i, lo:lo + g] += err
    return total / draws
