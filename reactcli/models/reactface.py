"""ReactFace: an online transformer VAE that generates K listener reactions window by window.

Paper: Luo et al., "ReactFace: Online Multiple Appropriate Facial Reaction Generation in Dyadic
Interactions" (seed ``000_d67b1737d51a9c3d``). Module names follow the paper:

* **speaker encoder** -- audio tokens (``k = 2`` per video frame, Linear -> d) and visual tokens
  (stored speaker 3DMM / emotion -> Linear -> causal temporal conv). Visual tokens attend to
  earlier visual tokens and to the audio tokens of the same and earlier frames (frame ``i`` sees
  audio tokens ``<= 2i+1``) through the alignment bias of Eq. 11. Output: aligned facial
  embeddings ``F_bar``; a linear head reconstructs the speaker's own features from them.
* **past-interaction encoder** -- the previously *generated* listener frames (Linear + periodic
  positional encoding, period ``p``) attend to each other causally and to speaker motion (VIM)
  and speech (MIM), Eq. 8-9.
* **CIE / VAE head** -- a 2-layer transformer encoder over ``[mu_token, logvar_token, H_bar]``
  gives ``N(mu_t, sigma_t)`` over a latent per window; ``z*_t`` is sampled.
* **smoothing** -- ``z_t = a z_{t-w} + (1 - a) z*_t`` (``a`` = momentum, *used*, unlike the
  authors' code) and Eq. 3's linear interpolation from ``z_{t-w}`` to ``z_t`` over the window.
* **reaction decoder** -- sinusoidal time queries of the window's absolute frames attend to the
  interpolated latents (2 layers), then cross-attend to the window's speaker motion (last ``w``
  frames) and speech (last ``2w`` tokens) with the alignment bias; Linear -> output heads.

Design choices that differ from the authors' code (see spec/models.md, "Defects"):

* **One code path for training and inference.** Both call :meth:`ReactFace.rollout`, which
  feeds the past-interaction encoder the model's *own generated* previous windows (never the
  ground-truth listener), so the history seen in training is distributed like the one seen at
  inference. In training the history is detached by default (``detach_history``): gradients do
  not flow back through earlier windows, which keeps the cost of a step linear in the number of
  windows and avoids exploding rollout gradients.
* **O(T) generation.** The speaker encoder is causal, so encoding the whole clip once equals
  encoding every prefix; :meth:`ReactFace.generate` encodes once per clip and slices per window.
  The history fed to the past-interaction encoder / CIE is bounded to the last
  ``history_frames`` frames, so every window costs the same. (The authors re-encode the whole
  prefix every window and every sample: :meth:`ReactFace.generate_reencode_prefix` keeps that
  behaviour as a reference for the benchmark and an equivalence test.)
* **Continuous decoding** (``decoder_band``, issue 29): the paper's decoder sees only its own
  window (time queries over that window's latents, speaker frames of that window), so its context
  changes abruptly at every window edge and the reaction jumps there (seam score ~7-9 on the demo
  at the 25-frame windows). Here every decoder attention of frame ``i`` sees frames
  ``[i - band, i]`` across window edges, and a window is decoded with the frames before it as
  context: the output is a smooth function of the (continuous, interpolated) latent path and of
  the speaker, wherever the windows start, and the same in training (64-frame windows) and
  generation (8-frame windows). ``decoder_band: 0`` restores the paper's decoder.
* **K samples in one batch** (``B*K``), explicit ``torch.Generator``/seed, the momentum is a
  real argument, and the checkpoint carries its own build arguments.

The speaker visual tokens come from extracted features (3DMM and/or emotion), not raw frames:
the 3D CNN of the paper needs video and weights that the challenge pipeline does not store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reactcli.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, from_mapping
from reactcli.errors import ConfigError, InputError
from reactcli.models.layers import alignment_bias, periodic_encoding, sinusoidal_encoding

__all__ = [
    "FEATURE_DIMS",
    "POSE_DIMS",
    "ReactFaceConfig",
    "ReactFace",
    "SpeakerEncoding",
    "RolloutOutput",
    "make_generator",
]

#: Per-frame size of each feature kind (data.md).
FEATURE_DIMS: dict[str, int] = {"emotion": 25, "tdmm": 58}
#: 3DMM dims holding head rotation (52:55) and translation (55:58): the pose, weighted x10.
POSE_DIMS = slice(52, 58)


@dataclass
class ReactFaceConfig:
    """Build arguments (and loss weights) of :class:`ReactFace`.

    Every field is JSON-serialisable so a checkpoint can rebuild the model on its own.
    """

    audio_dim: PositiveInt = 78
    """Per-video-frame speaker audio feature size: 78 (MFCC + deltas) or 1536 (2 x wav2vec2)."""
    audio_tokens_per_frame: PositiveInt = 2
    """``k``: audio tokens per video frame. The frame vector is split into ``k`` equal chunks
    (2 MFCC frames, or 2 wav2vec2 tokens at 50 Hz), each projected to ``d_model``."""
    visual_inputs: tuple[str, ...] = ("tdmm", "emotion")
    """Stored speaker features that make the visual tokens: any of ``"tdmm"``, ``"emotion"``."""
    output_heads: tuple[str, ...] = ("emotion", "tdmm")
    """Generated reaction features: ``"emotion"`` (25-d) and/or ``"tdmm"`` (58-d)."""
    d_model: PositiveInt = 128
    """Feature width of every token."""
    n_heads: PositiveInt = 8
    """Attention heads of the speaker encoder, past encoder and decoder."""
    ffn_dim: PositiveInt = 256
    """Feed-forward width of those layers."""
    dropout: Probability = 0.1
    """Dropout inside the speaker encoder, past encoder and decoder layers."""
    speaker_layers: PositiveInt = 1
    """Layers of the speaker encoder (causal self-attention + audio cross-attention + FFN)."""
    conv_kernel: PositiveInt = 3
    """Kernel of the causal temporal convolution over the speaker's visual features."""
    past_layers: PositiveInt = 1
    """Layers of the past-interaction encoder (causal self-attention + VIM + MIM + FFN)."""
    vae_layers: PositiveInt = 2
    """Transformer encoder layers of the CIE (VAE distribution head)."""
    vae_heads: PositiveInt = 4
    """Attention heads of the CIE."""
    vae_ffn_dim: PositiveInt = 1024
    """Feed-forward width of the CIE."""
    vae_dropout: Probability = 0.1
    """Dropout of the CIE."""
    latent_dim: PositiveInt = 128
    """Size of the sampled latent ``z_t`` (one per window)."""
    latent_layers: PositiveInt = 2
    """Decoder layers in which the time queries attend to the interpolated latents."""
    sync_layers: PositiveInt = 1
    """Decoder layers of cross-attention to speaker motion (VIM) and speech (MIM)."""
    period: PositiveInt = 8
    """``p`` of Eq. 11 and of the periodic positional encoding."""
    train_window: PositiveInt = 64
    """Window ``w`` used by :meth:`ReactFace.rollout` in training (authors: 64)."""
    generate_window: PositiveInt = 8
    """Default window ``w`` at generation (authors: 8)."""
    momentum: Probability = 0.9
    """Default ``alpha`` of ``z_t = alpha z_{t-w} + (1 - alpha) z*_t``."""
    decoder_band: NonNegativeInt = 25
    """Continuous decoding (not in the paper): every attention of the reaction decoder (time
    queries to each other and to the interpolated latents, VIM/MIM to the speaker) sees the
    frames ``[i - decoder_band, i]`` of output frame ``i``, across window edges, and each window
    is decoded with the ``decoder_band * latent_layers`` frames before it as context (their
    outputs are dropped), so a frame's output is the same function of the frames before it
    wherever the window edges fall. 0: the paper's window-local decoder, whose queries see only
    their own window's latents and speaker frames: the context changes abruptly at every window
    edge and the output jumps there (measured on the demo: seam score ~9 at the 25-frame
    generation windows). Costs ``1 + decoder_band * latent_layers / w`` times the decoder work of
    a window of ``w`` frames. Checkpoints written before this field existed load with 0."""
    history_frames: PositiveInt = 128
    """Past listener frames (and the speaker frames they align with) seen by the
    past-interaction encoder; bounds the cost of a window so a clip costs O(T)."""
    bound_emotion: bool = True
    """Squash the emotion head into its ranges: sigmoid for the 15 AUs, tanh for
    valence/arousal, softmax for the 8 expression probabilities."""
    detach_history: bool = True
    """In training, stop gradients through the generated history fed back to later windows."""
    pose_weight: NonNegativeFloat = 10.0
    """Weight of the 3DMM pose dims (52:58) in the SmoothL1 reconstruction losses."""
    kl_weight: NonNegativeFloat = 1e-3
    """lambda_kl: weight of KL(N(mu, sigma) || N(0, I)) (mean over latent dims and windows)."""
    smooth_weight: NonNegativeFloat = 10.0
    """lambda_smo: weight of the second-difference smoothness loss (Eq. 13)."""
    diversity_weight: NonNegativeFloat = 100.0
    """lambda_div: weight of the diversity loss (Eq. 6); stage 2 only."""
    diversity_sigma: PositiveFloat = 100.0
    """sigma_d of the RBF kernel of the diversity loss."""
    diversity_samples: PositiveInt = 2
    """Samples per speaker drawn in stage 2 for the diversity loss (paper: M = 2)."""
    speaker_recon_weight: NonNegativeFloat = 1.0
    """Weight of the speaker-feature reconstruction loss in stage 1 (Eq. 12)."""
    speaker_recon_weight_stage2: NonNegativeFloat = 0.0
    """Weight of the speaker reconstruction loss in stage 2 (Eq. 15 has none)."""
    max_neighbours: PositiveInt = 80
    """At most this many appropriate reactions per item enter the min of Eq. 5."""

    def __post_init__(self) -> None:
        self.visual_inputs = tuple(self.visual_inputs)
        self.output_heads = tuple(self.output_heads)
        bad = [n for n in self.visual_inputs + self.output_heads if n not in FEATURE_DIMS]
        if bad:
            raise ConfigError(f"ReactFaceConfig: unknown feature(s) {bad}; expected {list(FEATURE_DIMS)}")
        if not self.visual_inputs or not self.output_heads:
            raise ConfigError("ReactFaceConfig: visual_inputs and output_heads must each name at least one feature")
        if len(set(self.output_heads)) != len(self.output_heads) or len(set(self.visual_inputs)) != len(self.visual_inputs):
            raise ConfigError("ReactFaceConfig: visual_inputs / output_heads contain duplicates")
        if self.audio_tokens_per_frame < 1 or self.audio_dim % self.audio_tokens_per_frame:
            raise ConfigError(
                f"ReactFaceConfig: audio_dim {self.audio_dim} must split into "
                f"audio_tokens_per_frame={self.audio_tokens_per_frame} equal tokens"
            )
        if self.d_model % self.n_heads or self.d_model % self.vae_heads or self.d_model % 2:
            raise ConfigError("ReactFaceConfig: d_model must be even and divisible by n_heads and vae_heads")
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"ReactFaceConfig: momentum must be in [0, 1], got {self.momentum}")
        for name in ("train_window", "generate_window", "period", "history_frames", "diversity_samples", "max_neighbours"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ReactFaceConfig: {name} must be >= 1, got {getattr(self, name)}")

    @property
    def output_dim(self) -> int:
        """Size of the concatenated output heads (the listener-frame vector the history uses)."""
        return sum(FEATURE_DIMS[h] for h in self.output_heads)

    @property
    def visual_dim(self) -> int:
        """Size of the concatenated speaker visual inputs."""
        return sum(FEATURE_DIMS[v] for v in self.visual_inputs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["visual_inputs"] = list(self.visual_inputs)
        d["output_heads"] = list(self.output_heads)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReactFaceConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`. A stored config
        without ``decoder_band`` (a checkpoint from before it existed) was trained with the
        window-local decoder and gets ``decoder_band = 0``."""
        if isinstance(d, dict) and "decoder_band" not in d:
            d = {**d, "decoder_band": 0}
        return from_mapping(cls, d, "ReactFaceConfig")


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """Return ``generator`` or a CPU generator seeded with ``seed``; one of them is required.

    Noise is drawn on the generator's device and moved to the model's, so a seed gives the same
    samples on CPU and CUDA (up to kernel rounding).
    """
    if generator is not None:
        return generator
    if seed is None:
        raise ConfigError("pass an explicit seed or torch.Generator: generation is never unseeded")
    return torch.Generator().manual_seed(int(seed))


# --------------------------------------------------------------------------------------------
# building blocks


def _row_encoding(encode: Callable[[torch.Tensor], torch.Tensor], pos: torch.Tensor,
                  offset: torch.Tensor | None) -> torch.Tensor:
    """Positional code of frames ``pos``, shifted per row by ``offset`` (``(N,)`` frames) if given.

    Returns ``(n, d)`` without an offset and ``(N, n, d)`` with one. Training crops pass their
    start frame as the offset, so that the positions a model sees in training are the clip
    positions it sees in generation (a crop of frames 400..599 is *not* frames 0..199).
    """
    if offset is None:
        return encode(pos)
    rows = offset.to(pos.device).view(-1, 1) + pos.view(1, -1)
    return encode(rows.reshape(-1)).view(rows.shape[0], rows.shape[1], -1)


def _band(bias: torch.Tensor, query_frames: torch.Tensor, key_frames: torch.Tensor, width: int) -> torch.Tensor:
    """Mask (``-inf``) keys more than ``width`` frames before their query."""
    return bias.masked_fill(key_frames.view(1, -1) < query_frames.view(-1, 1) - width, float("-inf"))


class BiasedAttention(nn.Module):
    """Multi-head attention whose logits get an additive bias ``B / sqrt(d_k)`` (Eq. 10).

    ``B`` is shared by all heads (as in the paper), so it is ``(Lq, Lk)``.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.h = n_heads
        self.dk = d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.o = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mem: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, lq, d = x.shape
        lk = mem.shape[1]
        q = self.q(x).view(b, lq, self.h, self.dk).transpose(1, 2)
        k, v = self.kv(mem).view(b, lk, 2, self.h, self.dk).permute(2, 0, 3, 1, 4)
        mask = (bias / math.sqrt(self.dk)).to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.o(out.transpose(1, 2).reshape(b, lq, d))


class FeedForward(nn.Module):
    """Pre-norm position-wise feed-forward block (residual added by the caller)."""

    def __init__(self, d_model: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model), nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SyncBlock(nn.Module):
    """VIM then MIM (Eq. 8-9): cross-attention to speaker motion, then to speaker speech.

    Pre-norm residual cross-attentions with the alignment bias, then a feed-forward. No
    self-attention: a frame's output depends only on itself and speaker tokens up to its time.
    """

    def __init__(self, cfg: ReactFaceConfig):
        super().__init__()
        self.n_vim = nn.LayerNorm(cfg.d_model)
        self.vim = BiasedAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.n_mim = nn.LayerNorm(cfg.d_model)
        self.mim = BiasedAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)

    def forward(self, x, visual, vis_bias, audio, aud_bias):  # noqa: ANN001 - tensors
        x = x + self.vim(self.n_vim(x), visual, vis_bias)
        x = x + self.mim(self.n_mim(x), audio, aud_bias)
        return x + self.ffn(x)


class CausalSelfBlock(nn.Module):
    """Pre-norm self-attention with the (causal) VIM bias, optional cross-attention, FFN."""

    def __init__(self, cfg: ReactFaceConfig, cross: bool):
        super().__init__()
        self.n_self = nn.LayerNorm(cfg.d_model)
        self.self_attn = BiasedAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.cross = cross
        if cross:
            self.n_cross = nn.LayerNorm(cfg.d_model)
            self.cross_attn = BiasedAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)

    def forward(self, x, self_bias, mem=None, mem_bias=None):  # noqa: ANN001
        h = self.n_self(x)
        x = x + self.self_attn(h, h, self_bias)
        if self.cross:
            x = x + self.cross_attn(self.n_cross(x), mem, mem_bias)
        return x + self.ffn(x)


class CachedSelfBlock(nn.Module):
    """Pre-norm self-attention + FFN that processes only *new* tokens against a cache.

    Keys/values are the normalised layer inputs of earlier tokens (``cache``) plus the new
    ones; with a causal bias, the output of a token never changes once computed, so an online
    rollout computes every history frame exactly once (O(w * C) work per window instead of
    re-running the whole history).
    """

    def __init__(self, d_model: int, n_heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.attn = BiasedAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(N, n, d)`` new tokens, ``cache`` ``(N, c, d)``, ``bias`` ``(n, c + n)``.

        Returns the new tokens' outputs and the extended key cache ``(N, c + n, d)``.
        """
        h = self.norm(x)
        kv = torch.cat([cache, h], dim=1)
        x = x + self.drop(self.attn(h, kv, bias))
        return x + self.drop(self.ffn(x)), kv

    def summary(self, tokens: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
        """Tokens that attend to themselves and to every cached token (the mu/logvar tokens)."""
        h = self.norm(tokens)
        kv = torch.cat([h, cache], dim=1)
        bias = tokens.new_zeros(tokens.shape[1], kv.shape[1])
        x = tokens + self.drop(self.attn(h, kv, bias))
        return x + self.drop(self.ffn(x))


class CausalConv1d(nn.Module):
    """Temporal convolution padded on the left only, so output ``t`` sees inputs ``<= t``."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.pad = kernel - 1
        self.conv = nn.Conv1d(channels, channels, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        y = F.pad(x.transpose(1, 2), (self.pad, 0))
        return self.conv(y).transpose(1, 2)


@dataclass
class SpeakerEncoding:
    """Speaker encoder outputs for frames ``[0, T)``: ``audio`` ``(B, kT, d)`` speech tokens,
    ``visual`` ``(B, T, d)`` aligned facial embeddings ``F_bar``."""

    audio: torch.Tensor
    visual: torch.Tensor


@dataclass
class RolloutOutput:
    """What one rollout produces (tensors keep the ``B*K`` sample axis flattened as ``(B, K)``).

    ``outputs``: head -> ``(B, K, T, D)``; ``mu``/``logvar``: ``(B, K, n_windows, latent)``;
    ``speaker_recon``: head -> ``(B, T, D)`` reconstruction of the speaker's own features.
    """

    outputs: dict[str, torch.Tensor]
    mu: torch.Tensor
    logvar: torch.Tensor
    speaker_recon: dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------
# the model


class ReactFace(nn.Module):
    """ReactFace generator built from a :class:`ReactFaceConfig` (see the module docstring)."""

    def __init__(self, config: ReactFaceConfig | None = None, **overrides: Any):
        super().__init__()
        cfg = config or ReactFaceConfig()
        if overrides:
            cfg = ReactFaceConfig.from_dict({**cfg.to_dict(), **overrides})
        self.config = cfg
        d = cfg.d_model
        k = cfg.audio_tokens_per_frame
        # speaker encoder
        self.audio_proj = nn.Linear(cfg.audio_dim // k, d)
        self.visual_proj = nn.Linear(cfg.visual_dim, d)
        self.visual_conv = CausalConv1d(d, cfg.conv_kernel)
        self.speaker_layers = nn.ModuleList([CausalSelfBlock(cfg, cross=True) for _ in range(cfg.speaker_layers)])
        self.speaker_norm = nn.LayerNorm(d)
        self.speaker_recon = nn.ModuleDict({h: nn.Linear(d, FEATURE_DIMS[h]) for h in cfg.output_heads})
        # past-interaction encoder (incremental: each history frame is encoded once)
        self.history_proj = nn.Linear(cfg.output_dim, d)
        self.past_self = nn.ModuleList(
            [CachedSelfBlock(d, cfg.n_heads, cfg.ffn_dim, cfg.dropout) for _ in range(cfg.past_layers)]
        )
        self.past_sync = nn.ModuleList([SyncBlock(cfg) for _ in range(cfg.past_layers)])
        # CIE (VAE head): history tokens are causal (cacheable); mu/logvar tokens see them all
        self.mu_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.logvar_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.cie = nn.ModuleList(
            [CachedSelfBlock(d, cfg.vae_heads, cfg.vae_ffn_dim, cfg.vae_dropout) for _ in range(cfg.vae_layers)]
        )
        self.cie_norm = nn.LayerNorm(d)
        self.mu_head = nn.Linear(d, cfg.latent_dim)
        self.logvar_head = nn.Linear(d, cfg.latent_dim)
        # reaction decoder
        self.latent_proj = nn.Linear(cfg.latent_dim, d)
        self.latent_layers = nn.ModuleList(
            [
                nn.TransformerDecoderLayer(d, cfg.n_heads, cfg.ffn_dim, cfg.dropout, batch_first=True, norm_first=True)
                for _ in range(cfg.latent_layers)
            ]
        )
        self.decoder_sync = nn.ModuleList([SyncBlock(cfg) for _ in range(cfg.sync_layers)])
        self.out_norm = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, cfg.output_dim)

    # ---- speaker encoder -----------------------------------------------------------------

    def encode_speaker(self, audio: torch.Tensor, visual: torch.Tensor) -> SpeakerEncoding:
        """Encode a speaker clip (or prefix). Causal: frame ``i`` depends on frames ``<= i``.

        Args:
            audio: ``(B, T, audio_dim)``.
            visual: ``(B, T, visual_dim)``, the concatenated ``visual_inputs``.
        """
        cfg = self.config
        b, t, _ = audio.shape
        k = cfg.audio_tokens_per_frame
        a = self.audio_proj(audio.reshape(b, t * k, cfg.audio_dim // k))
        v = self.visual_proj(visual)
        v = v + F.gelu(self.visual_conv(v))
        frames = torch.arange(t, device=audio.device)
        self_bias = alignment_bias(frames, frames, cfg.period, 1)
        aud_bias = alignment_bias(frames, torch.arange(t * k, device=audio.device), cfg.period, k)
        for layer in self.speaker_layers:
            v = layer(v, self_bias, a, aud_bias)
        return SpeakerEncoding(audio=a, visual=self.speaker_norm(v))

    # ---- per-window pieces ---------------------------------------------------------------

    def _encode_history(
        self,
        new: torch.Tensor,
        start: int,
        enc: SpeakerEncoding,
        past_cache: list[torch.Tensor],
        cie_cache: list[torch.Tensor],
        cache_lo: int,
        offset: torch.Tensor | None = None,
    ) -> None:
        """Encode newly generated listener frames ``[start, start + n)`` into the caches.

        Past-interaction encoder (Eq. 8-9): periodic-PE frame tokens, causal self-attention,
        then VIM/MIM cross-attention to the speaker; then the CIE layers. Every attention of
        frame ``j`` is limited to frames ``[j - C, j]`` (``C = history_frames``), so a frame's
        encoding never changes later and is computed once. ``enc`` covers frames ``[0, >=
        start + n)``; the caches hold frames ``[cache_lo, start)`` and are extended in place.
        ``offset`` (``(N,)``, optional) shifts each row's clip position (training crops).
        """
        cfg = self.config
        c, k, dev = cfg.history_frames, cfg.audio_tokens_per_frame, new.device
        n = new.shape[1]
        pos = torch.arange(start, start + n, device=dev)
        keys = torch.arange(cache_lo, start + n, device=dev)
        vis_lo = max(0, start - c)
        vpos = torch.arange(vis_lo, start + n, device=dev)
        apos = torch.arange(vis_lo * k, (start + n) * k, device=dev)
        self_bias = _band(alignment_bias(pos, keys, cfg.period, 1), pos, keys, c)
        vis_bias = _band(alignment_bias(pos, vpos, cfg.period, 1), pos, vpos, c)
        aud_bias = _band(alignment_bias(pos, apos, cfg.period, k), pos, torch.div(apos, k, rounding_mode="floor"), c)
        visual = enc.visual[:, vis_lo : start + n]
        audio = enc.audio[:, vis_lo * k : (start + n) * k]
        x = self.history_proj(new) + _row_encoding(lambda q: periodic_encoding(q, cfg.d_model, cfg.period), pos, offset)
        for i, (sa, sync) in enumerate(zip(self.past_self, self.past_sync)):
            x, past_cache[i] = sa(x, past_cache[i], self_bias)
            x = sync(x, visual, vis_bias, audio, aud_bias)
        causal = _band(torch.zeros(n, keys.numel(), device=dev), pos, keys, c).masked_fill(
            keys.view(1, -1) > pos.view(-1, 1), float("-inf")
        )
        last = len(self.cie) - 1
        for i, layer in enumerate(self.cie):
            if i == last:  # the last layer's history outputs are never read: keys suffice
                cie_cache[i] = torch.cat([cie_cache[i], layer.norm(x)], dim=1)
            else:
                x, cie_cache[i] = layer(x, cie_cache[i], causal)

    def _distribution(self, cie_cache: list[torch.Tensor], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """CIE read-out: learned mu/logvar tokens attend to the cached history -> ``(N, latent)``.

        With an empty history (first window) they attend only to each other: a learned prior.
        """
        tokens = torch.cat([self.mu_token.expand(n, -1, -1), self.logvar_token.expand(n, -1, -1)], dim=1)
        for layer, cache in zip(self.cie, cie_cache):
            tokens = layer.summary(tokens, cache)
        out = self.cie_norm(tokens)
        return self.mu_head(out[:, 0]), self.logvar_head(out[:, 1])

    def _decode(self, z_frames: torch.Tensor, start: int, enc: SpeakerEncoding,
                offset: torch.Tensor | None = None) -> torch.Tensor:
        """Reaction decoder for frames ``[start, start + n)`` -> ``(N, n, output_dim)``.

        ``enc`` holds the speaker encodings of exactly these frames (``n`` frames and ``k n``
        audio tokens). Time queries attend to the interpolated latents first; only then come the
        speaker cross-attentions, which have no self-attention after them, so output frame ``i``
        depends on speaker frames ``<= i`` only. With ``decoder_band`` every attention of frame
        ``i`` is limited to frames ``[i - decoder_band, i]`` (see the config).
        """
        cfg = self.config
        n_frames = z_frames.shape[1]
        dev = z_frames.device
        pos = torch.arange(start, start + n_frames, device=dev)
        pe = _row_encoding(lambda q: sinusoidal_encoding(q, cfg.d_model), pos, offset)
        mem = self.latent_proj(z_frames) + pe
        x = pe.expand(z_frames.shape[0], -1, -1)
        band = cfg.decoder_band
        lat_mask = None
        if band:
            lat_mask = _band(torch.zeros(n_frames, n_frames, device=dev), pos, pos, band).masked_fill(
                pos.view(1, -1) > pos.view(-1, 1), float("-inf")).to(z_frames.dtype)
        for layer in self.latent_layers:
            x = layer(x, mem, tgt_mask=lat_mask, memory_mask=lat_mask)
        k = cfg.audio_tokens_per_frame
        apos = torch.arange(start * k, (start + n_frames) * k, device=dev)
        vis_bias = alignment_bias(pos, pos, cfg.period, 1)
        aud_bias = alignment_bias(pos, apos, cfg.period, k)
        if band:
            vis_bias = _band(vis_bias, pos, pos, band)
            aud_bias = _band(aud_bias, pos, torch.div(apos, k, rounding_mode="floor"), band)
        for sync in self.decoder_sync:
            x = sync(x, enc.visual, vis_bias, enc.audio, aud_bias)
        return self._activate(self.out_proj(self.out_norm(x)))

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        """Squash the emotion head into its ranges when ``bound_emotion`` (see the config)."""
        if not self.config.bound_emotion or "emotion" not in self.config.output_heads:
            return y
        parts = []
        off = 0
        for h in self.config.output_heads:
            seg = y[..., off : off + FEATURE_DIMS[h]]
            if h == "emotion":
                seg = torch.cat([torch.sigmoid(seg[..., :15]), torch.tanh(seg[..., 15:17]), torch.softmax(seg[..., 17:], -1)], -1)
            parts.append(seg)
            off += FEATURE_DIMS[h]
        return torch.cat(parts, -1)

    def split_heads(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a concatenated ``(..., output_dim)`` tensor into head -> ``(..., D_head)``."""
        out, off = {}, 0
        for h in self.config.output_heads:
            out[h] = y[..., off : off + FEATURE_DIMS[h]]
            off += FEATURE_DIMS[h]
        return out

    # ---- rollout (shared by training and generation) -------------------------------------

    def _rollout(
        self,
        encode_upto: Callable[[int], SpeakerEncoding],
        batch: int,
        num_frames: int,
        num_samples: int,
        window: int,
        momentum: float,
        noise: torch.Tensor,
        detach_history: bool,
        recompute_history: bool = False,
        offset: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Window-by-window generation for ``N = batch * num_samples`` rows.

        ``encode_upto(e)`` returns speaker encodings (rows expanded to ``N``) covering frames
        ``[0, e)`` at least; window ``[s, e)`` uses only frames ``< e``. ``noise`` is
        ``(n_windows, N, latent)`` standard normal, drawn up front so that any two paths that
        share a generator state also share their samples. ``recompute_history`` re-encodes the
        whole generated history every window instead of extending the caches (the reference
        path; same result, O(T^2 / w) work). ``offset`` (``(N,)`` frames, optional) is the clip
        position of each row's frame 0 (a training crop's start).

        Returns ``(y (N, T, output_dim), mu (N, W, latent), logvar (N, W, latent))``.
        """
        cfg = self.config
        k = cfg.audio_tokens_per_frame
        n_rows = noise.shape[1]
        n_windows = math.ceil(num_frames / window)
        empty = noise.new_zeros(n_rows, 0, cfg.d_model)
        past_cache = [empty] * len(self.past_self)
        cie_cache = [empty] * len(self.cie)
        cache_lo = 0  # first frame held by the caches
        mus, logvars = [], []
        z_prev: torch.Tensor | None = None
        generated: torch.Tensor | None = None  # (N, s, output_dim)
        # continuous decoding: each window is decoded with this many frames before it as context
        context = cfg.decoder_band * len(self.latent_layers)
        z_hist: torch.Tensor | None = None  # interpolated latents of the last `context` frames
        for wi in range(n_windows):
            s, e = wi * window, min((wi + 1) * window, num_frames)
            enc = encode_upto(e)
            if generated is not None and recompute_history:
                # reference path: rebuild every history encoding from frame 0 each window
                past_cache = [empty] * len(self.past_self)
                cie_cache = [empty] * len(self.cie)
                self._encode_history(generated.detach() if detach_history else generated, 0, enc, past_cache, cie_cache, 0, offset)
                lo = max(0, s - cfg.history_frames)
                past_cache = [c[:, lo:] for c in past_cache]
                cie_cache = [c[:, lo:] for c in cie_cache]
                cache_lo = lo
            elif generated is not None:
                prev = (wi - 1) * window
                new = generated[:, prev:s]
                self._encode_history(new.detach() if detach_history else new, prev, enc, past_cache, cie_cache, cache_lo, offset)
                lo = max(0, s - cfg.history_frames)
                past_cache = [c[:, lo - cache_lo :] for c in past_cache]
                cie_cache = [c[:, lo - cache_lo :] for c in cie_cache]
                cache_lo = lo
            mu, logvar = self._distribution(cie_cache, n_rows)
            z_star = mu + torch.exp(0.5 * logvar) * noise[wi]
            if z_prev is None:
                z_prev = z_star  # first window: nothing to smooth towards
                z = z_star
            else:
                z = momentum * z_prev + (1.0 - momentum) * z_star
            frac = torch.arange(1, e - s + 1, device=z.device, dtype=z.dtype) / window  # Eq. 3
            z_frames = z_prev.unsqueeze(1) + frac.view(1, -1, 1) * (z - z_prev).unsqueeze(1)
            lo = s
            if context and z_hist is not None:
                lo = s - z_hist.shape[1]
                z_frames_ctx = torch.cat([z_hist, z_frames], dim=1)
            else:
                z_frames_ctx = z_frames
            cur = SpeakerEncoding(audio=enc.audio[:, lo * k : e * k], visual=enc.visual[:, lo:e])
            y = self._decode(z_frames_ctx, lo, cur, offset)[:, s - lo :]
            if context:
                z_hist = z_frames_ctx[:, -context:]
            generated = y if generated is None else torch.cat([generated, y], dim=1)
            mus.append(mu)
            logvars.append(logvar)
            z_prev = z
        return generated, torch.stack(mus, 1), torch.stack(logvars, 1)

    def _visual(self, speaker_emotion: torch.Tensor | None, speaker_tdmm: torch.Tensor | None) -> torch.Tensor:
        feats = {"emotion": speaker_emotion, "tdmm": speaker_tdmm}
        parts = []
        for name in self.config.visual_inputs:
            if feats[name] is None:
                raise InputError(f"ReactFace: speaker_{name} is required (visual_inputs={list(self.config.visual_inputs)})")
            parts.append(feats[name])
        return torch.cat(parts, dim=-1)

    def _check_inputs(self, audio: torch.Tensor, **feats: torch.Tensor | None) -> None:
        cfg = self.config
        if audio.ndim != 3 or audio.shape[-1] != cfg.audio_dim:
            raise InputError(f"speaker_audio: expected (B, T, {cfg.audio_dim}), got {tuple(audio.shape)}")
        b, t, _ = audio.shape
        for name, x in feats.items():
            if x is None:
                continue
            want = (b, t, FEATURE_DIMS[name.removeprefix("speaker_")])
            if tuple(x.shape) != want:
                raise InputError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
        for name, x in {"speaker_audio": audio, **feats}.items():
            if x is not None and not torch.isfinite(x).all():
                raise InputError(f"{name}: contains NaN or inf")
        if t < 1:
            raise InputError("speaker_audio: zero frames")

    def rollout(
        self,
        speaker_audio: torch.Tensor,
        speaker_emotion: torch.Tensor | None = None,
        speaker_tdmm: torch.Tensor | None = None,
        *,
        num_samples: int = 1,
        window: int | None = None,
        momentum: float | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        detach_history: bool | None = None,
        frame_offset: torch.Tensor | None = None,
    ) -> RolloutOutput:
        """Differentiable window-by-window generation (training and :meth:`generate` share it).

        The speaker is encoded once for the whole crop and sliced per window. Defaults:
        ``window = config.train_window``, ``momentum = config.momentum``,
        ``detach_history = config.detach_history``. ``frame_offset`` (``(B,)`` ints) is the clip
        frame at which each row's input starts: training crops pass their start so the decoder and
        history positions match the ones generation uses (default: every row starts at frame 0).
        """
        cfg = self.config
        self._check_inputs(speaker_audio, speaker_emotion=speaker_emotion, speaker_tdmm=speaker_tdmm)
        window = cfg.train_window if window is None else int(window)
        momentum = cfg.momentum if momentum is None else float(momentum)
        if window < 1:
            raise ConfigError(f"window must be >= 1, got {window}")
        if not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"momentum must be in [0, 1], got {momentum}")
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        gen = make_generator(seed, generator)
        b, t, _ = speaker_audio.shape
        enc = self.encode_speaker(speaker_audio, self._visual(speaker_emotion, speaker_tdmm))
        recon = {h: head(enc.visual) for h, head in self.speaker_recon.items()}
        n_windows = math.ceil(t / window)
        noise = torch.randn(n_windows, b * num_samples, cfg.latent_dim, generator=gen, device=gen.device)
        noise = noise.to(speaker_audio.device)
        offset = None
        if frame_offset is not None:
            fo = torch.as_tensor(frame_offset, dtype=torch.long, device=speaker_audio.device).reshape(-1)
            if fo.numel() != b or bool((fo < 0).any()):
                raise InputError(f"frame_offset: expected {b} non-negative frame indices, got {fo.tolist()}")
            offset = fo.repeat_interleave(num_samples) if bool(fo.any()) else None
        full = SpeakerEncoding(
            audio=enc.audio.repeat_interleave(num_samples, 0), visual=enc.visual.repeat_interleave(num_samples, 0)
        )
        y, mu, logvar = self._rollout(
            lambda e: full,
            b,
            t,
            num_samples,
            window,
            momentum,
            noise,
            cfg.detach_history if detach_history is None else detach_history,
            offset=offset,
        )
        outputs = {h: v.reshape(b, num_samples, t, -1) for h, v in self.split_heads(y).items()}
        w = mu.shape[1]
        return RolloutOutput(
            outputs=outputs,
            mu=mu.reshape(b, num_samples, w, -1),
            logvar=logvar.reshape(b, num_samples, w, -1),
            speaker_recon=recon,
        )

    # ---- generation ----------------------------------------------------------------------

    @torch.no_grad()
    def _generate_impl(
        self,
        reencode: bool,
        speaker_audio: torch.Tensor,
        speaker_emotion: torch.Tensor | None,
        speaker_tdmm: torch.Tensor | None,
        num_samples: int,
        window: int | None,
        momentum: float | None,
        generator: torch.Generator | None,
        seed: int | None,
        device: str | torch.device | None,
    ) -> dict[str, torch.Tensor]:
        cfg = self.config
        dev = torch.device(device) if device is not None else next(self.parameters()).device
        self.to(dev)

        def prep(x: Any) -> torch.Tensor | None:
            return None if x is None else torch.as_tensor(x, dtype=torch.float32).to(dev)

        audio, emo, tdmm = prep(speaker_audio), prep(speaker_emotion), prep(speaker_tdmm)
        self._check_inputs(audio, speaker_emotion=emo, speaker_tdmm=tdmm)
        window = cfg.generate_window if window is None else int(window)
        momentum = cfg.momentum if momentum is None else float(momentum)
        if window < 1:
            raise ConfigError(f"window must be >= 1, got {window}")
        if not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"momentum must be in [0, 1], got {momentum}")
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        gen = make_generator(seed, generator)
        was_training = self.training
        self.eval()
        try:
            b, t, _ = audio.shape
            visual = self._visual(emo, tdmm)
            n_windows = math.ceil(t / window)
            noise = torch.randn(n_windows, b * num_samples, cfg.latent_dim, generator=gen, device=gen.device).to(dev)
            if reencode:
                # the authors' way: every window re-encodes the whole speaker prefix, per sample
                audio_k = audio.repeat_interleave(num_samples, 0)
                visual_k = visual.repeat_interleave(num_samples, 0)

                def encode_upto(e: int) -> SpeakerEncoding:
                    return self.encode_speaker(audio_k[:, :e], visual_k[:, :e])

            else:
                enc = self.encode_speaker(audio, visual)
                full = SpeakerEncoding(
                    audio=enc.audio.repeat_interleave(num_samples, 0),
                    visual=enc.visual.repeat_interleave(num_samples, 0),
                )

                def encode_upto(e: int) -> SpeakerEncoding:
                    return full

            y, _, _ = self._rollout(encode_upto, b, t, num_samples, window, momentum, noise, True, recompute_history=reencode)
        finally:
            self.train(was_training)
        return {h: v.reshape(b, num_samples, t, -1) for h, v in self.split_heads(y).items()}

    def generate(
        self,
        speaker_audio: torch.Tensor,
        speaker_emotion: torch.Tensor | None = None,
        speaker_tdmm: torch.Tensor | None = None,
        *,
        num_samples: int = 10,
        window: int | None = None,
        momentum: float | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        device: str | torch.device | None = None,
    ) -> dict[str, torch.Tensor]:
        """Online generation of ``num_samples`` reactions per clip, O(T) per clip.

        The speaker encodings are computed once per clip (causal, so identical to encoding each
        prefix) and sliced per window; the ``K`` samples are one ``B*K`` batch; noise comes from
        ``generator`` (or a CPU generator seeded with ``seed``), so the same seed gives the same
        output. Runs in eval mode without gradients.

        Args:
            speaker_audio: ``(B, T, audio_dim)``.
            speaker_emotion / speaker_tdmm: ``(B, T, 25)`` / ``(B, T, 58)``, those named in
                ``config.visual_inputs`` are required.
            num_samples: ``K``.
            window: ``w`` (default ``config.generate_window``).
            momentum: ``alpha`` (default ``config.momentum``).
            generator / seed: the randomness; one is required.
            device: where to run (the model is moved there); default the model's device.

        Returns:
            head -> ``(B, K, T, D_head)`` float32 tensors on ``device``.
        """
        return self._generate_impl(
            False, speaker_audio, speaker_emotion, speaker_tdmm, num_samples, window, momentum, generator, seed, device
        )

    def generate_reencode_prefix(
        self,
        speaker_audio: torch.Tensor,
        speaker_emotion: torch.Tensor | None = None,
        speaker_tdmm: torch.Tensor | None = None,
        *,
        num_samples: int = 10,
        window: int | None = None,
        momentum: float | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        device: str | torch.device | None = None,
    ) -> dict[str, torch.Tensor]:
        """Deliberately naive reference: at every window, re-encodes the speaker prefix ``[0, e)``
        for every sample and the whole generated listener history from frame 0 (O(T^2 / w)
        work, as the authors' code does).

        Same arguments and, for the same generator state, the same output as :meth:`generate`
        (up to float rounding): kept for the benchmark and the equivalence test only.
        """
        return self._generate_impl(
            True, speaker_audio, speaker_emotion, speaker_tdmm, num_samples, window, momentum, generator, seed, device
        )
