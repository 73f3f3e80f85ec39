"""GAFRG: the generic appropriate facial reaction generator of PerFRDiff (a diffusion denoiser).

The denoiser sees a noisy window of ``w`` reaction frames and predicts its clean version (x0,
the supplementary's better choice) or the added noise. Its transformer decoder cross-attends to
a memory made of

* the diffusion-time token (sinusoidal embedding of the step -> MLP),
* a speaker-emotion summary token (GRU over the speaker's 25-d emotion window; the paper's
  Enc_emo is an RNN-based VAE, we keep the RNN encoder and drop the sampling, which only serves
  the VAE's own pre-training),
* the speaker audio tokens (MFCC 78-d per frame -> Linear; a 1536-d wav2vec2 frame can be split
  into two 768-d tokens per frame with ``audio_tokens_per_frame=2``),
* the speaker 3DMM tokens (58-d -> Linear),

each with a learned type embedding and learned positions. Which speaker frames a window sees is
decided by the caller (see :func:`speaker_window_frames`): in the online setting the reaction
window covering frames ``[s, s + w)`` sees speaker frames ``[s - lag, s - lag + w)`` with
``lag = w`` (the previous speaker window; zeros before the clip start).

Two things make generation cheap and are the reason for the split API (``encode_speaker`` ->
``static_kv`` -> ``forward``):

* the speaker part of the memory does not change across diffusion steps, so its cross-attention
  keys/values are computed once per generation, not once per step (:class:`CrossKV`, which also
  keeps them in attention-head layout with a slot for the per-step time token);
* the K samples of one (item, window) share their memory exactly, and cross-attention treats
  queries independently, so the K samples' queries are stacked into one longer query sequence
  against one copy of the memory (``group=K``) instead of K copies of it.

A third knob trades quality for speed: ``frames_per_token`` (P) feeds the decoder w/P tokens of
P concatenated frames instead of w one-frame tokens, which divides the dominant per-token work by
about P (see :class:`GAFRGConfig`).

All linear layers are :class:`EditableLinear`, which accept an optional per-sample weight shift
(PWSG, see ``pwsg.py``) applied functionally: the stored weights are never modified.

The authors' released decoder differs in four places, each a config option whose default keeps
reactcli's design (``released.py`` sets them when it imports their checkpoints): post-norm layers
(``norm_first``), a diffusers-style time embedding (``time_embedding``), one position table over a
memory ordered [time, audio, 3DMM, emotion token] with zero tokens as the null condition and
scaled audio (``memory_layout: concat``, ``audio_scale``), and the emotion GRU's state used as the
token as it is (``emotion_proj: identity``, their latent embedder's encoder).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

from reactcli.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, from_mapping
from reactcli.errors import ConfigError, InputError

__all__ = [
    "GAFRGConfig",
    "GAFRG",
    "EditableLinear",
    "CrossKV",
    "WeightShift",
    "sinusoidal_embedding",
    "window_starts",
    "speaker_window_frames",
    "gather_speaker_windows",
    "FUSED_CROSS",
]

FUSED_CROSS = "cross_qkv"
"""Edit-target suffix for a layer's cross-attention q, k and v projections taken as one (3 d, d)
matrix (see :meth:`GAFRG.edit_targets`)."""


@dataclass
class GAFRGConfig:
    """Sizes of the GAFRG denoiser. Defaults are the paper's (7 layers, d 512, 4 heads, FFN 1024)."""

    reaction_dim: PositiveInt = 25
    """Width of one reaction frame: 25 (emotion variant), 58 (3DMM / render variant) or 83 (both)."""
    audio_dim: PositiveInt = 78
    """Width of the per-video-frame speaker audio feature (78 MFCC, 1536 wav2vec2)."""
    audio_tokens_per_frame: PositiveInt = 1
    """Audio tokens per video frame: 1 (one token per frame) or 2 (split a 1536-d wav2vec2 frame
    into its two 768-d 50 Hz tokens). ``audio_dim`` must be divisible by it."""
    emotion_dim: PositiveInt = 25
    """Width of the speaker emotion frame (25-d challenge emotion)."""
    tdmm_dim: PositiveInt = 58
    """Width of the speaker 3DMM frame (58-d FaceVerse coefficients)."""
    window: PositiveInt = 50
    """Frames per denoised window (w = 50, i.e. 2 s at 25 fps); also the speaker window length."""
    frames_per_token: PositiveInt = 1
    """Reaction frames per denoiser token (temporal patch size P; must divide ``window``): the
    window of w frames becomes w/P tokens, each the concatenation of P frames -> Linear -> d, and
    the output head maps each token back to P frames. 1 = one token per frame. The per-token cost
    of the decoder (self-attention, cross-attention queries, FFN) dominates generation, so P
    divides generation FLOPs by about P: at the paper's sizes one token per frame costs 29 TFLOP
    for ten 750-frame samples with 50 guided DDIM steps, against the 1.78 TFLOP the PerFRDiff
    supplementary reports, which P between 10 and 25 matches (``benchmarks/
    bench_perfrdiff_generate.py`` prints both). The speaker memory keeps one token per frame."""
    speaker_lag: NonNegativeInt = 50
    """Online conditioning: the reaction window ``[s, s+w)`` sees speaker frames
    ``[s - speaker_lag, s - speaker_lag + w)``. ``window`` (default) = the previous speaker
    window, strictly causal; 0 = the same window (offline)."""
    d_model: PositiveInt = 512
    """Transformer width."""
    num_layers: PositiveInt = 7
    """Number of transformer decoder layers."""
    num_heads: PositiveInt = 4
    """Attention heads in self- and cross-attention."""
    ffn_dim: PositiveInt = 1024
    """Hidden width of the feed-forward block (GELU)."""
    dropout: Probability = 0.1
    """Dropout on attention weights, residual branches and the FFN hidden layer (training only)."""
    emotion_hidden: PositiveInt = 256
    """Hidden size of the GRU that summarises the speaker's emotion window into one token."""
    clip_position: bool = False
    """Add one memory token that encodes the window's start frame within the clip (sinusoidal
    code + MLP). Not in the paper, hence off by default. It gives the model the information the
    MeanSeq baseline uses: where behaviour follows a course locked to the clip grid (the synthetic
    corpus, whose patterns span exactly one 30 s clip), a model without it cannot tell frame 100
    from frame 600; on real clips cut at arbitrary times it is expected to carry little. It is a
    position, not a speaker condition: guidance never drops it."""
    time_on_queries: bool = False
    """Also add the diffusion-time embedding to every reaction token (a linear map of the
    normalised time token). Not in the paper, whose denoiser learns the noise level only by cross-attending
    to the time token. Measured on the synthetic recipe (``pipelines/synthetic/README.md``,
    eighth pass), 10 DDIM steps without guidance, three seeds: test FRdist 178.8 / 185.5 / 187.8
    against 203.1 for seed 0 without it, FRCorr 0.60-0.67 against 0.56. Samplers must then start
    at the last training step (``leading`` spacing at 2 steps starts at t = 500 on pure noise and
    the samples collapse, FRDiv 0.02)."""

    norm_first: bool = True
    """Decoder layers normalise before each block (pre-norm, reactcli's choice: stable at small
    batches without warm-up). False: after each residual sum (post-norm, the DETR-style layers of
    the authors' released ``TransformerDenoiser``, ``normalize_before: False``)."""
    time_embedding: str = "mlp"
    """How the diffusion step becomes the time token: ``mlp`` (a ``d_model``-wide sinusoid, then
    Linear-GELU-Linear) or ``diffusers`` (a ``time_channels``-wide sinusoid as diffusers'
    ``Timesteps``, then Linear-SiLU-Linear as its ``TimestepEmbedding``: the authors' released
    decoder, ``time_encoded_dim`` 64)."""
    time_channels: PositiveInt = 64
    """``time_embedding: diffusers`` only: width of the sinusoid (the authors' ``time_encoded_dim``)."""
    time_flip_sin_to_cos: bool = True
    """``time_embedding: diffusers`` only: cosines first (the authors' ``flip_sin_to_cos``)."""
    time_freq_shift: NonNegativeFloat = 0.0
    """``time_embedding: diffusers`` only: diffusers' ``downscale_freq_shift`` (the authors' ``freq_shift``)."""
    memory_layout: str = "typed"
    """How the cross-attention memory is laid out. ``typed`` (reactcli): [time, emotion summary,
    audio, 3DMM], each stream with its own learned positions and a learned type embedding, then a
    LayerNorm; a dropped condition is zeros in its raw feature space. ``concat`` (the authors'
    ``concat: concat_first`` token concatenation): [time, audio, 3DMM, emotion summary] plus one
    learned position table over the whole memory, no type embedding, no norm; a dropped condition
    is a zero token (the authors zero the projected features), so guidance's null memory is the
    position table alone."""
    audio_scale: PositiveFloat = 1.0
    """Factor on the audio tokens after their projection (the authors' ``s_audio_scale``, which
    their code sets to ``latent_dim ** -0.5`` when the config omits it, as the released one does)."""
    emotion_proj: str = "linear"
    """What turns the emotion GRU's last hidden state into the summary token: ``linear`` (a
    Linear to ``d_model``), ``identity`` (the state is the token: the authors' latent embedder,
    whose hidden size equals the decoder width, ``speaker_latent_proj`` = Identity) or
    ``relu_linear`` (ReLU then Linear: the authors' ``speaker_latent_proj`` when the sizes differ)."""

    def __post_init__(self) -> None:
        for name, allowed in (("time_embedding", ("mlp", "diffusers")), ("memory_layout", ("typed", "concat")),
                              ("emotion_proj", ("linear", "identity", "relu_linear"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"GAFRG {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.emotion_proj == "identity" and self.emotion_hidden != self.d_model:
            raise ConfigError(f"GAFRG emotion_proj: identity needs emotion_hidden == d_model, got "
                              f"{self.emotion_hidden} and {self.d_model}")
        if self.time_channels < 2:
            raise ConfigError(f"GAFRG time_channels must be >= 2, got {self.time_channels}")
        if self.d_model % self.num_heads:
            raise ConfigError(f"GAFRG d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        if self.audio_tokens_per_frame < 1 or self.audio_dim % self.audio_tokens_per_frame:
            raise ConfigError(
                f"GAFRG audio_dim={self.audio_dim} must be divisible by "
                f"audio_tokens_per_frame={self.audio_tokens_per_frame} (>= 1)"
            )
        for name in ("reaction_dim", "window", "frames_per_token", "num_layers", "ffn_dim", "emotion_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"GAFRG {name} must be >= 1, got {getattr(self, name)}")
        if self.window % self.frames_per_token:
            raise ConfigError(f"GAFRG frames_per_token={self.frames_per_token} must divide window={self.window}")
        if self.speaker_lag < 0:
            raise ConfigError(f"GAFRG speaker_lag must be >= 0 (no look-ahead), got {self.speaker_lag}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"GAFRG dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON / torch.load(weights_only=True) safe) that :meth:`from_dict` inverts."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GAFRGConfig":
        """Rebuild from :meth:`to_dict`; unknown keys are an error (a checkpoint from another model)."""
        return from_mapping(cls, data, "GAFRGConfig")


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer sinusoidal embedding of (integer or real) positions: (...,) -> (..., dim).

    Used for diffusion timesteps here and for the PSSL sequence positions.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    args = positions.to(torch.float32)[..., None] * freqs
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


@dataclass
class WeightShift:
    """A per-sample weight shift dW for one linear layer, either low-rank (dW = b @ a) or full.

    Shapes: ``a`` (G, r, in), ``b`` (G, out, r) or ``full`` (G, out, in), one shift per item g.
    The rows of the activations it is applied to must be ordered item-major: an input of N rows
    is read as G contiguous blocks of N/G rows (e.g. the K samples x windows of item g), so a
    batch can mix listeners without copying any weight.
    """

    a: torch.Tensor | None = None
    b: torch.Tensor | None = None
    full: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    """Optional per-item bias shift db (G, out): y = x (W + dW)^T + b + db."""

    @property
    def groups(self) -> int:
        return int((self.full if self.full is not None else self.a).shape[0])

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """x @ dW^T per item, computed as (x A^T) B^T for the low-rank form (never forms dW)."""
        g = self.groups
        n = x.shape[0]
        if n % g:
            raise ConfigError(f"weight shift for {g} items cannot be applied to {n} rows (not a multiple)")
        xg = x.reshape(g, -1, x.shape[-1])
        if self.full is not None:
            out = torch.einsum("gmi,goi->gmo", xg, self.full)
        else:
            out = torch.einsum("gmr,gor->gmo", torch.einsum("gmi,gri->gmr", xg, self.a), self.b)
        if self.bias is not None:
            out = out + self.bias[:, None, :]
        return out.reshape(*x.shape[:-1], out.shape[-1])

    def masked(self, keep: torch.Tensor) -> "WeightShift":
        """The same shifts with item g's zeroed where ``keep[g]`` is 0 (that item is not edited:
        its delta is exactly 0)."""
        k = keep.to(self.b.dtype if self.b is not None else self.full.dtype)
        scale = lambda t, n: None if t is None else t * k.view(-1, *([1] * n))  # noqa: E731
        return WeightShift(a=self.a, b=scale(self.b, 2), full=scale(self.full, 2), bias=scale(self.bias, 1))

    def to(self, dtype: torch.dtype) -> "WeightShift":
        """The same shifts in ``dtype`` (generation in bfloat16 runs the edited layers in it)."""
        cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
        return WeightShift(a=cast(self.a), b=cast(self.b), full=cast(self.full), bias=cast(self.bias))

    def select(self, index: torch.Tensor) -> "WeightShift":
        """The shifts of a subset of items (used to test mixed batches against single items)."""
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return WeightShift(a=pick(self.a), b=pick(self.b), full=pick(self.full), bias=pick(self.bias))


class EditableLinear(nn.Linear):
    """nn.Linear whose forward optionally adds a per-sample shift: y = x W^T + b + x dW^T (+ db)."""

    def forward(self, x: torch.Tensor, shift: WeightShift | None = None) -> torch.Tensor:  # type: ignore[override]
        y = F.linear(x, self.weight, self.bias)
        if shift is not None:
            y = y + shift.delta(x)
        return y


Shifts = dict[str, WeightShift]


class CrossKV:
    """One layer's cross-attention keys/values of the speaker memory, in attention-head layout.

    ``buf`` is (2, M, heads, 1 + S, d/heads): keys and values of the M memories' S speaker tokens
    at positions 1..S, with position 0 reserved for the diffusion-time token, which changes every
    step. Without autograd (generation) each step writes its time token into that slot in place,
    so the S speaker tokens are neither re-concatenated nor re-laid-out per step; with autograd
    (training) a fresh tensor is built instead, leaving ``buf`` untouched.
    """

    def __init__(self, kv: torch.Tensor, heads: int):
        m, s, d2 = kv.shape
        self.heads, self.dh = heads, d2 // 2 // heads
        self.buf = kv.new_empty(2, m, heads, 1 + s, self.dh)
        self.buf[:, :, :, 1:] = self._layout(kv)

    def _layout(self, kv: torch.Tensor) -> torch.Tensor:
        m, s, _ = kv.shape
        return kv.view(m, s, 2, self.heads, self.dh).permute(2, 0, 3, 1, 4)

    @property
    def rows(self) -> int:
        return int(self.buf.shape[1])

    def with_time(self, kv_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (M, heads, 1 + S, d/heads) with the time token's (M, 1, 2d) in front."""
        t = self._layout(kv_t)
        if torch.is_grad_enabled():
            kv = torch.cat([t, self.buf[:, :, :, 1:]], dim=3)
        else:
            self.buf[:, :, :, :1] = t
            kv = self.buf
        return kv[0], kv[1]


class _DecoderLayer(nn.Module):
    """Transformer decoder layer (self-attn, cross-attn, GELU FFN) with editable linears.

    Pre-norm by default rather than PyTorch's default post-norm: it trains stably at the small
    batches the paper uses (4 speakers) without warm-up; the paper does not fix the choice. The
    authors' released decoder is post-norm (``norm_first=False``): ``norm1..3`` then follow the
    three residual sums instead of preceding the three blocks.
    """

    def __init__(self, cfg: GAFRGConfig, prefix: str):
        super().__init__()
        d = cfg.d_model
        self.prefix = prefix
        self.heads = cfg.num_heads
        self.dropout = cfg.dropout
        self.norm_first = cfg.norm_first
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.self_qkv = EditableLinear(d, 3 * d)
        self.self_out = EditableLinear(d, d)
        self.cross_q = EditableLinear(d, d)
        self.cross_kv = EditableLinear(d, 2 * d)
        self.cross_out = EditableLinear(d, d)
        self.ffn1 = EditableLinear(d, cfg.ffn_dim)
        self.ffn2 = EditableLinear(cfg.ffn_dim, d)
        self.drop = nn.Dropout(cfg.dropout)

    def _s(self, shifts: Shifts | None, name: str) -> WeightShift | None:
        return None if shifts is None else shifts.get(f"{self.prefix}.{name}")

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        n, length, d = t.shape
        return t.view(n, length, self.heads, d // self.heads).transpose(1, 2)

    def _merge(self, t: torch.Tensor) -> torch.Tensor:
        n, h, length, dh = t.shape
        return t.transpose(1, 2).reshape(n, length, h * dh)

    def static_kv(self, memory: torch.Tensor, shifts: Shifts | None) -> CrossKV:
        """Cross-attention keys/values of the (step-independent) speaker memory (M, S, d)."""
        return CrossKV(self.cross_kv(memory, self._s(shifts, "cross_kv")), self.heads)

    def forward(
        self,
        x: torch.Tensor,
        time_token: torch.Tensor,
        static_kv: CrossKV,
        group: int,
        shifts: Shifts | None,
    ) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        pre = self.norm_first
        # self-attention over the window (no mask: the window is denoised jointly)
        h = self.norm1(x) if pre else x
        q, k, v = self.self_qkv(h, self._s(shifts, "self_qkv")).chunk(3, dim=-1)
        a = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v), dropout_p=p)
        x = x + self.drop(self.self_out(self._merge(a), self._s(shifts, "self_out")))
        x = x if pre else self.norm1(x)
        # cross-attention: rows come in groups of `group` that share one memory, stacked as one
        # longer query sequence (exactly equivalent: queries do not interact in attention)
        h = self.norm2(x) if pre else x
        q = self.cross_q(h, self._s(shifts, "cross_q"))
        n, length, d = q.shape
        qg = q.reshape(n // group, group * length, d)
        k, v = static_kv.with_time(self.cross_kv(time_token, self._s(shifts, "cross_kv")))  # time token (M, 1, 2d)
        a = F.scaled_dot_product_attention(self._heads(qg), k, v, dropout_p=p)
        a = self._merge(a).reshape(n, length, d)
        x = x + self.drop(self.cross_out(a, self._s(shifts, "cross_out")))
        x = x if pre else self.norm2(x)
        # feed-forward
        h = self.norm3(x) if pre else x
        h = self.drop(F.gelu(self.ffn1(h, self._s(shifts, "ffn1"))))
        x = x + self.drop(self.ffn2(h, self._s(shifts, "ffn2")))
        return x if pre else self.norm3(x)


class GAFRG(nn.Module):
    """Transformer-decoder denoiser over windows of ``window`` reaction frames (see module doc)."""

    def __init__(self, config: GAFRGConfig | None = None):
        super().__init__()
        cfg = config or GAFRGConfig()
        self.config = cfg
        d = cfg.d_model
        w = cfg.window
        n_audio = w * cfg.audio_tokens_per_frame
        # reaction window input: w / P tokens of P concatenated frames each
        patch = cfg.frames_per_token * cfg.reaction_dim
        self.in_proj = nn.Linear(patch, d)
        self.pos = nn.Parameter(torch.randn(w // cfg.frames_per_token, d) * 0.02)
        # condition encoders
        if cfg.time_embedding == "mlp":
            self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        else:
            self.time_mlp = nn.Sequential(nn.Linear(cfg.time_channels, d), nn.SiLU(), nn.Linear(d, d))
        self.audio_proj = nn.Linear(cfg.audio_dim // cfg.audio_tokens_per_frame, d)
        self.tdmm_proj = nn.Linear(cfg.tdmm_dim, d)
        self.emotion_rnn = nn.GRU(cfg.emotion_dim, cfg.emotion_hidden, batch_first=True)
        if cfg.emotion_proj == "linear":
            self.emotion_proj = nn.Linear(cfg.emotion_hidden, d)
        elif cfg.emotion_proj == "relu_linear":
            self.emotion_proj = nn.Sequential(nn.ReLU(), nn.Linear(cfg.emotion_hidden, d))
        else:
            self.emotion_proj = nn.Identity()
        if cfg.memory_layout == "typed":
            self.audio_pos = nn.Parameter(torch.randn(n_audio, d) * 0.02)
            self.tdmm_pos = nn.Parameter(torch.randn(w, d) * 0.02)
            # type embeddings: 0 time, 1 emotion summary, 2 audio, 3 3DMM
            self.type_emb = nn.Parameter(torch.randn(4, d) * 0.02)
            self.mem_norm = nn.LayerNorm(d)
        else:
            # one position table over [time, audio, 3DMM, emotion summary (, clip position)]
            self.mem_pos = nn.Parameter(torch.randn(1 + self.memory_length, d) * 0.02)
        self.layers = nn.ModuleList(_DecoderLayer(cfg, f"layers.{i}") for i in range(cfg.num_layers))
        self.final_norm = nn.LayerNorm(d)
        self.output = EditableLinear(d, patch)
        if cfg.clip_position:
            self.clip_pos_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
            self.clip_pos_type = nn.Parameter(torch.randn(d) * 0.02)
        if cfg.time_on_queries:
            self.time_in = nn.Linear(d, d)

    # ------------------------------------------------------------------ editing
    def editable_layers(self) -> dict[str, tuple[int, int]]:
        """Names of the linears PWSG may shift and their weight shapes (out, in)."""
        return {name: tuple(m.weight.shape) for name, m in self.named_modules() if isinstance(m, EditableLinear)}

    def edit_targets(self) -> dict[str, tuple[int, int]]:
        """:meth:`editable_layers` plus each layer's fused cross-attention projection
        ``layers.<i>.cross_qkv`` ((3 d, d): the rows of ``cross_q`` then those of ``cross_kv``, the
        layout of ``nn.MultiheadAttention.in_proj_weight``, which the authors' PWSG edits whole)."""
        targets = self.editable_layers()
        for i in range(self.config.num_layers):
            (q_out, d), (kv_out, _) = targets[f"layers.{i}.cross_q"], targets[f"layers.{i}.cross_kv"]
            targets[f"layers.{i}.{FUSED_CROSS}"] = (q_out + kv_out, d)
        return targets

    # ------------------------------------------------------------------ condition
    @property
    def memory_length(self) -> int:
        """Speaker memory tokens per window (without the time token)."""
        cfg = self.config
        return 1 + cfg.window * (cfg.audio_tokens_per_frame + 1) + int(cfg.clip_position)

    def check_speaker(self, audio: torch.Tensor, emotion: torch.Tensor, tdmm: torch.Tensor) -> None:
        """Raise :class:`InputError` unless the speaker sequences are (B, T, F) with this model's
        feature widths, one (B, T) for all three, and finite (training batches and generation)."""
        cfg = self.config
        for name, t, dim in (("speaker_audio", audio, cfg.audio_dim), ("speaker_emotion", emotion, cfg.emotion_dim),
                             ("speaker_tdmm", tdmm, cfg.tdmm_dim)):
            if t.dim() != 3 or t.shape[-1] != dim:
                raise InputError(f"{name} must be (B, T, {dim}), got {tuple(t.shape)}")
            if t.shape[:2] != audio.shape[:2]:
                raise InputError(f"{name} has (B, T) = {tuple(t.shape[:2])}, speaker_audio has {tuple(audio.shape[:2])}")
            if not torch.isfinite(t).all():
                raise InputError(f"{name} contains NaN or inf")

    def speaker_windows(self, audio: torch.Tensor, emotion: torch.Tensor, tdmm: torch.Tensor,
                        starts: torch.Tensor) -> list[torch.Tensor]:
        """Speaker sequences (B, T, F) -> the speaker windows seen by reaction windows starting at
        ``starts`` (n,) or (B, n), flattened to rows: audio (B*n, w, A), emotion (B*n, w, 25), tdmm
        (B*n, w, 58), in the order :meth:`encode_speaker` takes them (zeros outside the clip)."""
        cfg = self.config
        frames = speaker_window_frames(starts.reshape(-1), cfg.window, cfg.speaker_lag).view(*starts.shape, cfg.window)
        return [gather_speaker_windows(x, frames).reshape(-1, cfg.window, x.shape[-1]) for x in (audio, emotion, tdmm)]

    def encode_speaker(self, audio: torch.Tensor, emotion: torch.Tensor | None, tdmm: torch.Tensor,
                       starts: torch.Tensor | None = None, keep: torch.Tensor | None = None,
                       summary: torch.Tensor | None = None) -> torch.Tensor:
        """Speaker windows -> memory tokens (M, w*tpf + w + 1 [+ 1], d).

        audio (M, w, A), emotion (M, w, 25), tdmm (M, w, 58). ``keep`` (M, 3), 1 or 0 per window
        for audio, emotion and 3DMM: 0 drops that condition (classifier-free guidance, in training
        and for the null memory, :meth:`null_memory`). With the ``typed`` layout a dropped condition
        is all zeros in its raw feature space; with ``concat`` its tokens are zeros (the authors'
        null condition). ``starts`` (M,): the clip frame at which each reaction window starts;
        required with ``clip_position`` (appended as the last memory token), ignored without it.
        ``summary`` (M, 1, emotion_hidden): a ready emotion summary (what the GRU would return,
        e.g. the authors' latent embedding of the window) used instead of running the GRU over
        ``emotion``, which may then be None.
        """
        cfg = self.config
        m, w, _ = audio.shape
        typed = cfg.memory_layout == "typed"
        if (emotion is None) == (summary is None):
            raise ConfigError("encode_speaker needs the emotion window or a ready summary, not both")
        if keep is not None and typed:
            if emotion is None:  # the typed null is the GRU of a zero window, not a zero summary
                raise ConfigError("the typed memory layout drops the emotion window, not a ready summary")
            audio, emotion, tdmm = (x * keep[:, i, None, None] for i, x in enumerate((audio, emotion, tdmm)))
        tpf = cfg.audio_tokens_per_frame
        a = self.audio_proj(audio.reshape(m, w * tpf, cfg.audio_dim // tpf)) * cfg.audio_scale
        f = self.tdmm_proj(tdmm)
        if summary is None:
            summary = self.emotion_rnn(emotion)[1][-1][:, None, :]
        e = self.emotion_proj(summary)
        if keep is not None and not typed:
            a, e, f = (x * keep[:, i, None, None].to(x.dtype) for i, x in enumerate((a, e, f)))
        tokens = [e + self.type_emb[1], a + self.audio_pos + self.type_emb[2],
                  f + self.tdmm_pos + self.type_emb[3]] if typed else [a, f, e]
        if cfg.clip_position:
            if starts is None or starts.numel() != m:
                raise ConfigError(f"GAFRG built with clip_position needs the {m} window start frames, got "
                                  f"{None if starts is None else tuple(starts.shape)}")
            pos = sinusoidal_embedding(starts.reshape(m).to(audio.device), cfg.d_model)
            tokens.append((self.clip_pos_mlp(pos) + self.clip_pos_type)[:, None, :])
        memory = torch.cat(tokens, dim=1)
        return self.mem_norm(memory) if typed else memory + self.mem_pos[1:]

    def null_memory(self, n: int, starts: torch.Tensor | None = None,
                    device: torch.device | str | None = None) -> torch.Tensor:
        """The memory of ``n`` windows with every speaker condition dropped (guidance's
        unconditional branch); ``starts`` (n,) as in :meth:`encode_speaker`."""
        cfg = self.config
        dev = device if device is not None else self.pos.device
        zeros = [torch.zeros(n, cfg.window, dim, device=dev) for dim in (cfg.audio_dim, cfg.emotion_dim, cfg.tdmm_dim)]
        return self.encode_speaker(*zeros, starts=starts, keep=torch.zeros(n, 3, device=dev))

    def static_kv(self, memory: torch.Tensor, shifts: Shifts | None = None) -> list[CrossKV]:
        """Per-layer cross-attention keys/values of the speaker memory (computed once per generation)."""
        return [layer.static_kv(memory, shifts) for layer in self.layers]

    def time_token(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Diffusion-step token (M, 1, d) from integer timesteps (M,)."""
        cfg = self.config
        if cfg.time_embedding == "mlp":
            code = sinusoidal_embedding(timesteps, cfg.d_model)
        else:
            code = get_timestep_embedding(timesteps.reshape(-1), cfg.time_channels,
                                          flip_sin_to_cos=cfg.time_flip_sin_to_cos,
                                          downscale_freq_shift=cfg.time_freq_shift)
        emb = self.time_mlp(code.to(self.pos.dtype))
        if cfg.memory_layout == "typed":
            return self.mem_norm(emb + self.type_emb[0])[:, None, :]
        return (emb + self.mem_pos[0])[:, None, :]

    # ------------------------------------------------------------------ denoising
    def forward(
        self,
        x_t: torch.Tensor,
        timesteps: torch.Tensor,
        static_kv: list[CrossKV],
        group: int = 1,
        shifts: Shifts | None = None,
    ) -> torch.Tensor:
        """Predict x0 (or noise) for noisy windows x_t (N, w, D).

        ``static_kv`` (from :meth:`static_kv`) and ``timesteps`` have N / group rows: row j of the
        memory serves the ``group`` consecutive windows ``j*group .. (j+1)*group - 1``.
        """
        n, w, dim = x_t.shape
        if w != self.config.window:
            raise ConfigError(f"GAFRG was built for windows of {self.config.window} frames, got {w}")
        if n % group or static_kv[0].rows != n // group:
            raise ConfigError(f"{n} windows with group={group} need {n // max(group, 1)} memory rows, "
                              f"got {static_kv[0].rows}")
        t_tok = self.time_token(timesteps.reshape(-1).expand(n // group) if timesteps.numel() == 1
                                else timesteps)
        p = self.config.frames_per_token
        x = self.in_proj(x_t.reshape(n, w // p, p * dim)) + self.pos
        if self.config.time_on_queries:
            tq = self.time_in(t_tok)  # (N / group, 1, d)
            x = (x.view(n // group, group, *x.shape[1:]) + tq[:, None]).view(x.shape)
        for layer, kv in zip(self.layers, static_kv):
            x = layer(x, t_tok, kv, group, shifts)
        out = self.output(self.final_norm(x), None if shifts is None else shifts.get("output"))
        return out.reshape(n, w, dim)

    def denoise(
        self,
        x_t: torch.Tensor,
        timesteps: torch.Tensor,
        audio: torch.Tensor,
        emotion: torch.Tensor,
        tdmm: torch.Tensor,
        shifts: Shifts | None = None,
        starts: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One-row-one-memory convenience (training): encode the speaker windows and denoise.

        ``starts`` (N,): clip start frame of each window (used with ``clip_position``); ``keep``
        (N, 3): which conditions each row keeps (see :meth:`encode_speaker`)."""
        memory = self.encode_speaker(audio, emotion, tdmm, starts, keep)
        return self(x_t, timesteps, self.static_kv(memory, shifts), 1, shifts)


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """Start frames of the windows that cover ``num_frames`` (the last window may run past the end,
    the caller pads and crops)."""
    if stride < 1 or stride > window:
        raise ConfigError(f"window stride must be in [1, {window}], got {stride}")
    if num_frames <= window:
        return [0]
    n = math.ceil((num_frames - window) / stride) + 1
    return [i * stride for i in range(n)]


def speaker_window_frames(starts: torch.Tensor, window: int, lag: int) -> torch.Tensor:
    """Speaker frame indices seen by the reaction windows starting at ``starts``: (n, window).

    Window ``[s, s+w)`` sees ``[s - lag, s - lag + w)``; negative indices (before the clip) and
    indices past the end are filled with zeros by :func:`gather_speaker_windows`.
    """
    return starts[:, None] - lag + torch.arange(window, device=starts.device)


def gather_speaker_windows(seq: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """seq (B, T, F), frames (B, n, w) or (n, w) integer indices -> (B, n, w, F), zero outside [0, T)."""
    b, t, f = seq.shape
    if frames.dim() == 2:
        frames = frames.expand(b, *frames.shape)
    valid = (frames >= 0) & (frames < t)
    idx = frames.clamp(0, t - 1)
    out = seq[torch.arange(b, device=seq.device)[:, None, None], idx]
    return out * valid[..., None].to(seq.dtype)
