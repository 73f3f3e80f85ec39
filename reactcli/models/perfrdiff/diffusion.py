"""Noise schedule, classifier-free guidance and the batched window sampler of PerFRDiff.

The schedule and the DDIM update come from diffusers' ``DDIMScheduler`` (cosine schedule =
``squaredcos_cap_v2``), so nothing here re-derives alphas; this module only decides *what* is
denoised together:

* **K samples in one pass.** The authors' code runs the generator 10 times for 10 samples;
  here the K samples are K rows of one batch (and share the speaker memory, see ``gafrg.py``).
* **All windows in one pass** (``context_frames = 0``). A window's condition is the *speaker*
  window before it (never a previously generated reaction window), so the 15 windows of a 750-frame clip are independent
  given the speaker and are denoised as one batch. Causality is kept by what each window sees:
  the reaction window ``[s, s+w)`` sees speaker frames ``[s - lag, s - lag + w)`` with
  ``lag = config.speaker_lag`` (= w: the previous speaker window). Window 0 therefore sees only
  zeros (the null condition) in the online setting: the first 2 s are generated
  unconditionally, as in the paper's ``F_[t-w+1:t]`` given ``B^s_[1:t-w]``.
* **Guidance in one forward.** Conditional and unconditional rows (null condition = zeros) are
  concatenated into one batch; the combination is ``u + s * (c - u)``. With scale 1 the
  unconditional half is skipped (it cancels exactly).
* **Overlapping windows** (render variant; ``DiffusionConfig.overlap``, the shipped recipes'
  default for every feature since issue 29): windows of w frames with stride w/2, all cut from ONE
  initial noise sequence (so overlapping frames start identical), and after every DDIM step the
  overlapping predictions are blended back into one sequence with triangular weights, so the
  windows never drift apart and no seam appears at window edges. The blending lets a frame
  feel windows that start up to ``w - stride`` frames later, so this mode is not strictly online
  (``--context`` / the independent windows are causal, and tested to be).

* **Continued windows** (``context_frames`` / ``context`` > 0; online, unlike overlap): the
  windows are sampled one after the other with stride ``w - c``; the first ``c`` frames of a window
  are the last ``c`` frames already generated, re-noised to every DDIM step's level with the noise
  the shared noise sequence gave them, so the new frames continue them (no step at window edges)
  and generation stays online (a window sees earlier reaction frames and the speaker window before
  its start only). Independent windows (``c = 0``) put a step at every edge: measured on the demo,
  seam score 35 at the 50-frame windows (see ``reactcli.metrics.naturalness``).

* **Precision.** ``precision="bf16"`` runs the per-step denoiser in bfloat16 (a bf16 copy of
  GAFRG, the per-item weight shifts cast to it) while the speaker memory (encoded once per
  generation), the noise, the DDIM update and the blending stay in float32. On CPUs with
  AVX512-BF16 or AMX (and on bf16 GPUs) its matmuls are several times faster; the default
  ``fp32`` is bit-for-bit the same on every machine.

Seeds: the initial noise is drawn from one ``torch.Generator`` (a CPU generator for an integer
seed, so CPU and CUDA runs start from the same noise). Same seed -> same output.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from diffusers import DDIMScheduler

from reactcli.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, from_mapping
from reactcli.errors import ConfigError, InputError

from ..windows import blend_weights, fold_windows
from .gafrg import GAFRG, window_starts

__all__ = ["DiffusionConfig", "ClampedDDIMScheduler", "make_scheduler", "as_generator", "guided", "generate", "EMOTION_DIM", "PRECISIONS",
           "precision_dtype"]

EMOTION_DIM = 25
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
"""Generation precisions: the dtype the denoiser runs in (the sampler's state is always float32)."""


def precision_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a generation precision name (``fp32`` or ``bf16``)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


@dataclass
class DiffusionConfig:
    """Diffusion process of GAFRG (training and sampling). Defaults follow the paper/code."""

    num_train_timesteps: PositiveInt = 1000
    """Forward-process length used in training."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers name of the noise schedule; ``squaredcos_cap_v2`` is the cosine schedule."""
    prediction_type: Literal["sample", "epsilon", "v_prediction"] = "sample"
    """What the network predicts: ``sample`` = x0 (the supplementary's better-appropriateness
    choice), ``epsilon`` = the added noise (more diverse per the supplementary)."""
    num_inference_steps: PositiveInt = 50
    """DDIM steps at generation."""
    eta: NonNegativeFloat = 0.0
    """DDIM stochasticity (0 = deterministic DDIM)."""
    guidance_scale: NonNegativeFloat = 7.5
    """Classifier-free guidance scale (1 = plain conditional model)."""
    cond_drop_prob: Probability = 0.2
    """Training: probability of replacing each condition (audio, emotion, 3DMM) independently by
    its null (zeros), which trains the unconditional model used by guidance."""
    timestep_spacing: Literal["leading", "trailing", "linspace"] = "leading"
    """How the DDIM steps are spread over the training steps (diffusers option)."""
    clip_sample: bool = False
    """Clamp the predicted x0 to [-clip_sample_range, clip_sample_range] at every DDIM step and
    take the step's noise from the clamped x0 (the authors' sampler, ``clip_denoised=True``;
    diffusers' own ``clip_sample`` keeps the noise of the unclamped x0). ``sample`` prediction only."""
    clip_sample_range: PositiveFloat = 1.0
    """Bound of ``clip_sample``."""
    set_alpha_to_one: bool = True
    """The last DDIM step goes to alpha_bar = 1, i.e. returns the predicted x0 (diffusers option).
    False: to alpha_bar of step 0 (the authors' sampler, whose step t = 0 then leaves the sample
    as it is)."""
    context_frames: NonNegativeInt = 0
    """Generation: windows continue the reaction generated so far (not in the paper). With
    ``c > 0`` windows of ``w`` frames start every ``w - c`` frames and are sampled one after the
    other; the first ``c`` frames of a window are the last ``c`` frames already generated, put back
    into the window at every DDIM step at that step's noise level (with the same noise the shared
    noise sequence gave those frames), so the new frames are denoised to continue them: no jump
    at window edges, and still online (a window sees only earlier reaction frames and the
    speaker window before it). 0: windows are sampled independently in one batch (the paper's
    emotion variant), which puts a step at every window edge. Needs a denoiser that reads its
    noisy input (x0 prediction models that learned only the conditional mean cannot continue
    anything, see ``prediction_type`` and ``loss_weighting``). Measured on the demo corpus with
    the paper's plain x0 loss (issue 29): seam score 14-23, because the denoiser ignores the known
    frames; the shipped recipes use ``overlap`` instead."""
    overlap: bool = False
    """Generation default: overlapping windows (stride w/2, one shared noise sequence, the
    windows blended after every DDIM step; the paper's render variant). No seams and, unlike
    ``context_frames``, it works with a denoiser that barely reads its noisy input, but a frame
    then feels windows that start up to w/2 frames later (not strictly online). ``reactcli
    generate --overlap/--no-overlap`` overrides it; the shipped recipes set it (issue 29)."""
    loss_weighting: Literal["uniform", "min_snr", "clamped_snr"] = "uniform"
    """Training: how the per-window losses of different noise levels are weighted, in x0 terms
    (converted for epsilon / v targets). ``uniform``: the paper's plain MSE. ``min_snr`` (Hang et
    al., ICCV 2023): ``min(SNR(t), gamma)``. ``clamped_snr``: ``clamp(SNR(t), 1, gamma)``, min-SNR
    with the floor of Salimans & Ho's truncated-SNR weighting, so high noise levels keep the
    uniform loss's weight. Measured (issue 29, README.md "Natural motion"): with ``uniform`` the
    small GAFRG ignores ``x_t`` even at ``t = 1`` and its samples hold one expression per window;
    ``min_snr`` makes it read ``x_t`` but lets noise through at high noise levels (jitter)."""
    min_snr_gamma: PositiveFloat = 5.0
    """``gamma`` of ``min_snr`` (the paper's 5)."""
    clamp_emotion: bool = True
    """``reactcli generate`` clips an emotion output to its valid ranges after sampling (AUs and
    expression probabilities in [0, 1], valence/arousal in [-1, 1]). False for the authors'
    released model, which clamps x0 to [-1, 1] at each step (``clip_sample``) and nothing after."""

    def __post_init__(self) -> None:
        if self.clip_sample and self.prediction_type != "sample":
            raise ConfigError(f"clip_sample needs prediction_type sample (x0), got {self.prediction_type!r}")
        if self.clip_sample_range <= 0:
            raise ConfigError(f"clip_sample_range must be > 0, got {self.clip_sample_range}")
        if self.prediction_type not in ("sample", "epsilon", "v_prediction"):
            raise ConfigError(f"prediction_type must be sample, epsilon or v_prediction, got {self.prediction_type!r}")
        if not 0.0 <= self.cond_drop_prob <= 1.0:
            raise ConfigError(f"cond_drop_prob must be in [0, 1], got {self.cond_drop_prob}")
        if self.timestep_spacing not in ("leading", "trailing", "linspace"):
            raise ConfigError(f"timestep_spacing must be leading, trailing or linspace, got {self.timestep_spacing!r}")
        if self.overlap and self.context_frames:
            raise ConfigError("DiffusionConfig: overlap and context_frames are two ways to avoid seams; set one")
        if self.loss_weighting not in ("uniform", "min_snr", "clamped_snr"):
            raise ConfigError(f"loss_weighting must be uniform, min_snr or clamped_snr, got {self.loss_weighting!r}")
        if self.min_snr_gamma <= 0:
            raise ConfigError(f"min_snr_gamma must be > 0, got {self.min_snr_gamma}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ConfigError(f"num_inference_steps must be in [1, {self.num_train_timesteps}], got "
                              f"{self.num_inference_steps}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints; inverted by :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DiffusionConfig":
        """Rebuild from :meth:`to_dict`; unknown keys are an error."""
        return from_mapping(cls, data, "DiffusionConfig")


class ClampedDDIMScheduler(DDIMScheduler):
    """DDIM that clamps the model's x0 prediction before the step (``DiffusionConfig.clip_sample``).

    Clamping the model output itself, rather than setting diffusers' ``clip_sample``, makes the
    step derive its noise from the clamped x0, as the authors' sampler does."""

    x0_range: float = 1.0

    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, *args: Any, **kwargs: Any):
        return super().step(model_output.clamp(-self.x0_range, self.x0_range), timestep, sample, *args, **kwargs)


def make_scheduler(config: DiffusionConfig | None = None) -> DDIMScheduler:
    """A fresh diffusers DDIM scheduler for ``config`` (no clamping by default: 3DMM values exceed
    [-1, 1]; see ``clip_sample``).

    ``set_alpha_to_one=True`` (default) makes the last DDIM step return the predicted x0 itself.
    """
    cfg = config or DiffusionConfig()
    cls = ClampedDDIMScheduler if cfg.clip_sample else DDIMScheduler
    scheduler = cls(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule=cfg.beta_schedule,
        prediction_type=cfg.prediction_type,
        clip_sample=False,
        set_alpha_to_one=cfg.set_alpha_to_one,
        timestep_spacing=cfg.timestep_spacing,
    )
    if cfg.clip_sample:
        scheduler.x0_range = cfg.clip_sample_range
    # read by the training losses (reactcli.training.perfrdiff_losses.loss_weights)
    scheduler.loss_weighting = cfg.loss_weighting
    scheduler.min_snr_gamma = cfg.min_snr_gamma
    return scheduler


def as_generator(generator: torch.Generator | int | None) -> torch.Generator:
    """A torch.Generator from a generator or an integer seed (CPU, device-independent noise)."""
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None:
        raise ConfigError("an explicit seed or torch.Generator is required (results must be reproducible)")
    return torch.Generator(device="cpu").manual_seed(int(generator))


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device, then moved to ``device``."""
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def guided(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: uncond + scale * (cond - uncond)."""
    return uncond + scale * (cond - uncond)


def _speaker_memory(gafrg: GAFRG, speaker: tuple[torch.Tensor, ...], starts: torch.Tensor,
                    style: torch.Tensor | None, editor: Any | None, b: int, c: int, dev: torch.device,
                    dtype: torch.dtype) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """The speaker memory of every window, ``(b, c, nw, ...)`` (``c`` = 2 adds one null memory per
    window for classifier-free guidance, keeping the window's clip position if the model has one),
    and the personalised weight shifts of ``style`` (None without one). The memory is encoded once
    per generation, in float32 whatever the precision (this also keeps the emotion GRU off bf16,
    which cuDNN supports only in recent versions)."""
    nw = len(starts)
    win = gafrg.speaker_windows(*(x.to(dev, torch.float32) for x in speaker), starts)
    shifts = None
    if style is not None:
        shifts = {name: s.to(dtype) for name, s in editor.to(dev)(style.to(dev, torch.float32)).items()}
    mem = gafrg.encode_speaker(*win, starts=starts.repeat(b))
    mem = mem.reshape(b, 1, nw, *mem.shape[1:])
    if c == 2:
        null = gafrg.null_memory(nw, starts=starts, device=dev)
        mem = torch.cat([mem, null[None, None].expand(b, 1, nw, *null.shape[1:])], dim=1)
    return mem, shifts


def generate(
    gafrg: GAFRG,
    speaker_audio: torch.Tensor,
    speaker_emotion: torch.Tensor,
    speaker_tdmm: torch.Tensor,
    num_samples: int = 10,
    steps: int = 50,
    guidance: float = 7.5,
    style: torch.Tensor | None = None,
    editor: Any | None = None,
    generator: torch.Generator | int | None = None,
    device: str | torch.device | None = None,
    overlap: bool = False,
    stride: int | None = None,
    diffusion: DiffusionConfig | None = None,
    clamp_emotion: bool = False,
    precision: str = "fp32",
    context: int | None = None,
) -> torch.Tensor:
    """Generate K reactions per speaker item in one batched pass: (B, K, T, reaction_dim).

    Args:
        gafrg: the denoiser (moved to ``device``; its weights are never modified).
        speaker_audio, speaker_emotion, speaker_tdmm: (B, T, A), (B, T, 25), (B, T, 58).
        num_samples: K samples per item, all in the same batch (B*K rows per window).
        steps: DDIM steps (fewer = faster, see the benchmark).
        guidance: classifier-free guidance scale; 1 disables the unconditional half.
        style: optional (B, 512) personal style vectors (PSSL); needs ``editor``.
        editor: a PWSG module (moved to ``device``): ``editor(style)`` -> per-item weight shifts,
            applied functionally (batch items may belong to different listeners).
        generator: torch.Generator or integer seed (required).
        device: where to run (default: the model's device).
        overlap: overlapping windows (stride ``stride`` or w/2, shared noise, blended each step).
        diffusion: schedule settings (prediction type must match training); steps/guidance above
            override its ``num_inference_steps``/``guidance_scale``.
        clamp_emotion: clip the first 25 dims to the emotion ranges (AUs and expression
            probabilities in [0, 1], valence/arousal in [-1, 1]).
        precision: ``fp32`` (default) or ``bf16``: the dtype the denoiser runs in (a bfloat16
            copy of ``gafrg``; ``gafrg`` itself is left in float32). The noise, the DDIM update
            and the output stay float32.
        context: frames of the reaction generated so far that each window continues (see
            ``DiffusionConfig.context_frames``, the default when None); 0 = independent windows.
    """
    cfg = gafrg.config
    gafrg.check_speaker(speaker_audio, speaker_emotion, speaker_tdmm)
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    if (style is None) != (editor is None):
        raise ConfigError("personalised generation needs both style (B, 512) and editor (a PWSG)")
    dtype = precision_dtype(precision)
    dcfg = diffusion or DiffusionConfig()
    gen = as_generator(generator)
    dev = torch.device(device) if device is not None else next(gafrg.parameters()).device
    b, t_len, _ = speaker_audio.shape
    if style is not None and style.shape[0] != b:
        raise InputError(f"style has {style.shape[0]} rows for {b} speaker items")
    k, w, d_out = num_samples, cfg.window, cfg.reaction_dim
    ctx = dcfg.context_frames if context is None else int(context)
    if not 0 <= ctx < w:
        raise ConfigError(f"context frames must be in [0, {w - 1}] for windows of {w} frames, got {ctx}")
    if ctx and overlap:
        raise ConfigError("overlapping windows and continued windows (context frames) are two ways to avoid "
                          "seams; choose one")
    if ctx:
        return _generate_continued(gafrg, speaker_audio, speaker_emotion, speaker_tdmm, k, steps, guidance, style,
                                   editor, gen, dev, dcfg, clamp_emotion, dtype, ctx)
    stride = (stride or w // 2) if overlap else w
    starts = torch.tensor(window_starts(t_len, w, stride), device=dev)
    nw = len(starts)
    t_pad = int(starts[-1]) + w
    idx = starts[:, None] + torch.arange(w, device=dev)  # reaction frames of each window (nw, w)
    c = 1 if guidance == 1.0 else 2
    scheduler = _scheduler(dcfg, steps, dev)
    blend = blend_weights(w, dev)

    with _denoiser(gafrg, dev, dtype) as net:
        mem, shifts = _speaker_memory(gafrg, (speaker_audio, speaker_emotion, speaker_tdmm), starts,
                                      style, editor, b, c, dev, dtype)
        # memory rows ordered (item, cond/uncond, window): item-major for the per-item shifts
        kv = net.static_kv(mem.reshape(b * c * nw, *mem.shape[3:]).to(dtype), shifts)

        seq = randn((b, k, t_pad, d_out), gen, dev)  # one shared noise sequence per sample
        x = seq[:, :, idx].permute(0, 2, 1, 3, 4)  # (B, nw, K, w, D)
        for t in scheduler.timesteps.tolist():
            pred = _predict(net, x, t, kv, c, k, shifts, guidance, dtype)
            variance = None
            if dcfg.eta > 0:
                variance = randn((b, k, t_pad, d_out), gen, dev)[:, :, idx].permute(0, 2, 1, 3, 4)
            x = scheduler.step(pred, t, x, eta=dcfg.eta, variance_noise=variance).prev_sample
            if overlap:
                x = fold_windows(x.permute(0, 2, 1, 3, 4), idx, t_pad, blend)[:, :, idx].permute(0, 2, 1, 3, 4)
        out_seq = _finish(fold_windows(x.permute(0, 2, 1, 3, 4), idx, t_pad, blend)[:, :, :t_len], cfg,
                          clamp_emotion)
    return out_seq.clone()


def _scheduler(dcfg: DiffusionConfig, steps: int, dev: torch.device) -> DDIMScheduler:
    """A fresh DDIM scheduler of ``dcfg`` set to ``steps`` steps on ``dev``."""
    scheduler = make_scheduler(dcfg)
    scheduler.set_timesteps(steps, device=dev)
    return scheduler


@contextlib.contextmanager
def _denoiser(gafrg: GAFRG, dev: torch.device, dtype: torch.dtype) -> Iterator[GAFRG]:
    """``gafrg`` on ``dev`` in eval mode (its train mode restored afterwards), under inference
    mode, yielding the network that denoises: GAFRG itself, or a low-precision copy (its own
    weights stay untouched)."""
    was_training = gafrg.training
    gafrg.to(dev).eval()
    try:
        net = gafrg if dtype == torch.float32 else copy.deepcopy(gafrg).to(dtype)
        with torch.inference_mode():
            yield net
    finally:
        gafrg.train(was_training)


def _predict(net: GAFRG, x: torch.Tensor, t: int, kv: Any, c: int, k: int, shifts: Any, guidance: float,
             dtype: torch.dtype) -> torch.Tensor:
    """The (guided) float32 prediction for the noisy windows ``x`` ``(B, ..., w, D)`` at step ``t``:
    each row goes through the denoiser once per memory (``c`` = 1: conditional only; 2: with the
    null memory, combined by :func:`guided`), the ``k`` samples of a memory row grouped."""
    b, w, d = x.shape[0], x.shape[-2], x.shape[-1]
    rows = x[:, None].expand(b, c, *x.shape[1:]).reshape(-1, w, d)
    t_row = torch.full((1,), t, dtype=torch.long, device=x.device)
    out = net(rows.to(dtype), t_row, kv, group=k, shifts=shifts).float().reshape(b, c, *x.shape[1:])
    return out[:, 0] if c == 1 else guided(out[:, 0], out[:, 1], guidance)


def _finish(y: torch.Tensor, cfg: Any, clamp_emotion: bool) -> torch.Tensor:
    """The generated sequence, its first 25 dims clipped to the emotion ranges (AUs and expression
    probabilities in [0, 1], valence/arousal in [-1, 1]) when asked and the output holds emotion."""
    if not clamp_emotion or y.shape[-1] not in (EMOTION_DIM, EMOTION_DIM + cfg.tdmm_dim):
        return y
    y = y.clone()
    y[..., :15] = y[..., :15].clamp(0, 1)
    y[..., 15:17] = y[..., 15:17].clamp(-1, 1)
    y[..., 17:25] = y[..., 17:25].clamp(0, 1)
    return y


def _generate_continued(gafrg: GAFRG, speaker_audio: torch.Tensor, speaker_emotion: torch.Tensor,
                        speaker_tdmm: torch.Tensor, k: int, steps: int, guidance: float, style: torch.Tensor | None,
                        editor: Any | None, gen: torch.Generator, dev: torch.device, dcfg: DiffusionConfig,
                        clamp_emotion: bool, dtype: torch.dtype, ctx: int) -> torch.Tensor:
    """:func:`generate` with continued windows (``DiffusionConfig.context_frames`` = ``ctx``).

    Windows of w frames start every ``w - ctx`` frames (window j at ``s_j``) and are denoised one
    after the other, all items and K samples of a window in one batch. Window j's first ``ctx``
    frames are known (generated by the windows before it): before every denoiser call they are
    replaced by the known frames noised to the current step, ``sqrt(ab_t) y + sqrt(1 - ab_t) n``,
    where ``n`` is the shared noise sequence at those frames (the noise window j - 1 started those
    frames from), so the model denoises the new frames as the continuation of the known ones. The
    speaker condition of a window is the one it was trained with (speaker frames
    ``[s_j - lag, s_j - lag + w)``), so frame ``t`` depends on reaction frames ``< t`` and speaker
    frames before its window's start only: online.
    """
    cfg = gafrg.config
    b, t_len, _ = speaker_audio.shape
    w, d_out = cfg.window, cfg.reaction_dim
    starts_l = window_starts(t_len, w, w - ctx)
    starts = torch.tensor(starts_l, device=dev)
    t_pad = starts_l[-1] + w
    c = 1 if guidance == 1.0 else 2
    scheduler = _scheduler(dcfg, steps, dev)
    alphas = scheduler.alphas_cumprod.to(dev)
    with _denoiser(gafrg, dev, dtype) as net:
        mem, shifts = _speaker_memory(gafrg, (speaker_audio, speaker_emotion, speaker_tdmm), starts,
                                      style, editor, b, c, dev, dtype)
        seq = randn((b, k, t_pad, d_out), gen, dev)  # one shared noise sequence per sample
        y = torch.zeros(b, k, t_pad, d_out, device=dev)  # the reaction generated so far
        for j, s in enumerate(starts_l):
            kv = net.static_kv(mem[:, :, j].reshape(b * c, *mem.shape[3:]).to(dtype), shifts)
            x = seq[:, :, s:s + w].clone()  # (B, K, w, D)
            known = y[:, :, s:s + ctx] if j else None
            for t in scheduler.timesteps.tolist():
                if known is not None:
                    ab = alphas[t]
                    x[:, :, :ctx] = ab.sqrt() * known + (1 - ab).sqrt() * seq[:, :, s:s + ctx]
                pred = _predict(net, x, t, kv, c, k, shifts, guidance, dtype)
                variance = randn((b, k, w, d_out), gen, dev) if dcfg.eta > 0 else None
                x = scheduler.step(pred, t, x, eta=dcfg.eta, variance_noise=variance).prev_sample
            lo = ctx if j else 0
            y[:, :, s + lo:s + w] = x[:, :, lo:]
        out_seq = _finish(y[:, :, :t_len], cfg, clamp_emotion)
    return out_seq.clone()
