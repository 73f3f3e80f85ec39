"""Trans-VAE: the REACT challenge's transformer-VAE baseline, offline and online (windowed).

Source: the challenge's baseline code (``reactmultimodalchallenge/baseline_react2023`` at commit
``c5a8ff8563284e311f89fdf10558f3ae8f0082dd``, ``model/TransformerVAE.py``, ``model/losses.py``,
``train.py``; the 2024 release has the same model). The REACT 2023 baseline paper was not
available here, so the network follows the code; the options below say where reactcli departs.

Public API (what the model registry wires):

* :class:`TransVAEConfig` -- build arguments and loss weights (``to_dict`` / ``from_dict``);
* :class:`TransVAE` -- the network; ``forward`` is the differentiable training rollout,
  :meth:`TransVAE.generate` gives ``{"emotion": (B, K, T, 25), "tdmm": (B, K, T, 58)}``;
* ``reactcli.training.transvae_losses.transvae_training_step`` -- the step function;
* :func:`load_released_transvae` -- the challenge's released checkpoint (``best_checkpoint.pth``,
  ``{"state_dict": ...}``) as a :class:`TransVAE`, strictly (a missing, extra or wrong-shaped
  tensor is one named :class:`~reactcli.errors.InputError`).

The network, in the authors' structure (their module names in brackets):

* **speaker encoder** [``SpeakerBehaviourEncoder``] -- per-frame visual tokens and audio tokens
  (``Linear(78, d)``), concatenated and fused by a ``Linear(2d, d)``. The authors' visual tokens
  come from raw 224x224 speaker frames through a 2D CNN applied frame by frame (a ``Conv3d``
  stack with temporal kernel 1) whose instance norms take statistics over the whole (prefix of
  the) clip; reactcli batches carry extracted features, so the default visual encoder is a
  per-frame MLP over the stored speaker 3DMM / emotion (``visual_encoder="features"``).
  ``visual_encoder="video"`` is the authors' CNN, used by their released weights; it takes
  ``speaker_video`` ``(B, T, 3, H, W)`` and runs here (CPU or GPU), but no reactcli stage stores
  frames yet.
* **latent head** [``VAEModel``] -- ``Linear(d, d)`` over the frame tokens, then one post-norm
  transformer encoder layer (4 heads, FFN 2d) over ``[mu_token, logvar_token, frames...]``; the
  two learned tokens' outputs are ``mu`` and ``logvar`` of ONE latent ``z`` per clip (offline) or
  per window (online), ``z = mu + sigma * eps``.
* **reaction decoder** [``Decoder``] -- sinusoidal time queries (positions 0..L-1 of the window,
  with dropout) go through a causal transformer decoder layer whose memory is ``z`` (one
  token), then a second causal layer whose memory is the first layer's output; ``Linear(d, 58)``
  gives the 3DMM and ``Linear(d + 58, d) -> Linear(d, 25)`` over ``[3DMM, features]`` the emotion.
* **online mode** -- window ``i`` (frames ``[iw, (i+1)w)``) sees the speaker prefix
  ``[0, (i+1)w)``, whose frame tokens are fused (``Linear(d + 58 + 25, d)``) with the reaction
  generated so far (zeros for the current window); from the second window on, the previously
  generated 3DMM frames (``Linear(58, d)``) and the window's features (``Linear(d, d)``) pass a
  causal transformer decoder layer, then an LSTM started from the last past frame's embedding,
  before the 3DMM head. So reaction frame ``t`` depends on speaker frames before the end of its
  window (window-level causality; frame-level within a window is not what the authors built).

How reactcli runs it, and where it departs from the authors' code:

* **K samples in one batch** (``B*K`` rows, speaker encoded once), the latent noise drawn up
  front from an explicit ``torch.Generator``: same seed, same reactions.
* **O(T) online windows with the features encoder.** The authors re-encode the whole speaker
  prefix and re-run the latent head and the history decoder over every frame so far at every
  window. Their per-frame tokens never change once a frame is generated (the speaker encoder is
  per-frame and the only attention that reads them is the two latent tokens' and the current
  window's), so reactcli caches their attention keys/values and computes only the new queries:
  the same numbers, a fraction of the work. With the video encoder the instance norms change
  the tokens with every window, so that path re-encodes the prefix as the authors do.
* **The last partial window is generated.** With ``T`` not a multiple of ``w`` the authors'
  online loop leaves the last ``T mod w`` frames at zero (744 of 750 frames at ``w = 8``);
  reactcli decodes a shorter last window.
* Options keep the authors' choices where reactcli offers another: ``reconstruction`` (their
  own-listener MSE, or the minimum over the appropriate reactions), ``diversity_gradient``
  (theirs: the second sample of the diversity loss carries no gradient), ``detach_history``
  (theirs: gradients flow through all earlier windows).
* **Window edges** (issue 29; off by default, on in the shipped recipes). The authors draw a new
  latent for every 8-frame window, independently, and switch to it at the window's first frame:
  every window edge jumps (seam score 27 on the synthetic recipe) and the motion is 2.7x the real
  listeners'. ``crossfade`` lets each latent also decode the next window's frames and fades the
  new latent in over them (linear weights); ``noise_correlation`` makes a sample's latent noise
  AR(1) across windows (``rho = 1 - generate_window / window`` = 0.5 in the recipes: the noise
  then changes per frame as fast as in training, where every 16-frame window drew its own), each
  window's latent keeping the model's N(mu, sigma). The decoder's self-attention layer reads its
  whole (longer) window as memory, so a crossfaded window's own frames also differ from the hard
  switch's; window-level causality is unchanged (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from reactcli.config import NonNegativeFloat, PositiveFloat, PositiveInt, Range
from reactcli.errors import ConfigError, InputError
from reactcli.models.checkpoint import tensor_mismatch
from reactcli.models.layers import sinusoidal_encoding

__all__ = [
    "FEATURE_DIMS",
    "TransVAE",
    "TransVAEConfig",
    "TransVAEOutput",
    "load_released_transvae",
    "released_state_dict",
    "window_noise",
]

#: Per-frame size of each reaction feature (data.md).
FEATURE_DIMS: dict[str, int] = {"emotion": 25, "tdmm": 58}
_TDMM, _EMO = FEATURE_DIMS["tdmm"], FEATURE_DIMS["emotion"]


@dataclass
class TransVAEConfig:
    """Build arguments and loss weights of :class:`TransVAE` (defaults: the authors' code and README).

    Every field is plain data, so a checkpoint rebuilds the model from :meth:`to_dict`.
    """

    audio_dim: PositiveInt = 78
    """Per-frame speaker audio feature size (78 = the challenge's MFCC + deltas)."""
    visual_encoder: Literal["features", "video"] = "features"
    """``features``: per-frame MLP over the stored speaker features named in ``visual_inputs``;
    ``video``: the authors' CNN over raw frames (``speaker_video``), as in their released weights."""
    visual_inputs: tuple[Literal["tdmm", "emotion"], ...] = ("tdmm", "emotion")
    """Stored speaker features of the ``features`` encoder: any of ``tdmm`` (58-d), ``emotion`` (25-d)."""
    feature_dim: Annotated[int, Range(min=4)] = 128
    """Token width ``d`` everywhere (authors: 128); also the CNN's channel count."""
    n_heads: PositiveInt = 4
    """Attention heads of every transformer layer (authors: 4)."""
    ffn_dim: PositiveInt = 256
    """Feed-forward width of every transformer layer (authors: 2 d)."""
    dropout: Annotated[float, Range(min=0, max=1, open_max=True)] = 0.1
    """Dropout of the transformer layers and of the time queries (authors: 0.1)."""
    online: bool = False
    """Generate window by window from the speaker prefix (challenge task 2) instead of the whole clip."""
    window: PositiveInt = 16
    """Online training window ``w`` (authors' README: 16)."""
    generate_window: PositiveInt = 8
    """Online generation window (authors' evaluation: 8)."""
    crossfade: bool = False
    """Online generation: each window's latent also decodes the next window's frames, and those
    frames are the crossfade (weights rising linearly) of that decoding and the next window's own,
    so a new latent fades in over a window instead of switching on at its first frame (False: the
    authors' hard switch, a jump at every window edge: seam score 27 on the synthetic recipe,
    issue 29). A frame still depends only on the speaker before the end of its window."""
    noise_correlation: Annotated[float, Range(min=0, max=1)] = 0.0
    """Online generation: correlation ``rho`` of one sample's latent noise between consecutive
    windows, ``eps_i = rho eps_{i-1} + sqrt(1 - rho^2) xi_i`` (each ``eps_i`` is still N(0, I), so
    every window's latent has the model's distribution). 0: independent windows (authors'); 1: one
    noise for the whole clip."""
    detach_history: bool = False
    """Online training: stop gradients through the generated history fed to later windows
    (authors: not stopped, gradients run back through every window)."""
    reconstruction: Literal["listener", "appropriate"] = "listener"
    """``listener``: MSE to the item's own real listener (authors); ``appropriate``: the smallest
    such loss over the item's appropriate real reactions."""
    pose_weight: NonNegativeFloat = 10.0
    """Weight of the 3DMM pose dims (52:58) in the reconstruction loss (authors: 10)."""
    kl_weight: NonNegativeFloat = 1e-5
    """Weight of KL(N(mu, sigma) || N(0, I)) (authors' README command: 1e-5; their default 2e-4)."""
    diversity_weight: NonNegativeFloat = 10.0
    """Weight of the diversity loss between two samples (authors: 10; 0 draws one sample only)."""
    diversity_sigma: PositiveFloat = 100.0
    """Kernel width of the diversity loss ``exp(-||y_1 - y_2||^2 / sigma)`` (authors: 100)."""
    diversity_gradient: Literal["one", "both"] = "one"
    """``one``: the second sample is drawn without gradient (authors' no-grad second pass);
    ``both``: both samples are differentiated."""

    def __post_init__(self) -> None:
        self.visual_inputs = tuple(self.visual_inputs)
        if self.visual_encoder not in ("features", "video"):
            raise ConfigError(f"TransVAEConfig.visual_encoder must be features or video, got {self.visual_encoder!r}")
        bad = [v for v in self.visual_inputs if v not in FEATURE_DIMS]
        if bad or (self.visual_encoder == "features" and not self.visual_inputs):
            raise ConfigError(
                f"TransVAEConfig.visual_inputs must name features of {list(FEATURE_DIMS)}, got "
                f"{list(self.visual_inputs)}"
            )
        if len(set(self.visual_inputs)) != len(self.visual_inputs):
            raise ConfigError(f"TransVAEConfig.visual_inputs has duplicates: {list(self.visual_inputs)}")
        if self.feature_dim < 4 or self.feature_dim % self.n_heads or self.feature_dim % 2:
            raise ConfigError(
                f"TransVAEConfig.feature_dim {self.feature_dim} must be even, >= 4 and divisible by "
                f"n_heads {self.n_heads}"
            )
        if self.visual_encoder == "video" and self.feature_dim % 4:
            raise ConfigError("TransVAEConfig.feature_dim must be divisible by 4 with the video encoder")
        for name in ("audio_dim", "n_heads", "ffn_dim", "window", "generate_window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TransVAEConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"TransVAEConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.reconstruction not in ("listener", "appropriate"):
            raise ConfigError(
                f"TransVAEConfig.reconstruction must be listener or appropriate, got {self.reconstruction!r}"
            )
        if self.diversity_gradient not in ("one", "both"):
            raise ConfigError(f"TransVAEConfig.diversity_gradient must be one or both, got {self.diversity_gradient!r}")
        if self.diversity_sigma <= 0:
            raise ConfigError(f"TransVAEConfig.diversity_sigma must be > 0, got {self.diversity_sigma}")
        if not 0.0 <= self.noise_correlation <= 1.0:
            raise ConfigError(f"TransVAEConfig.noise_correlation must be in [0, 1], got {self.noise_correlation}")

    @property
    def visual_dim(self) -> int:
        """Size of the concatenated stored speaker features (``features`` encoder)."""
        return sum(FEATURE_DIMS[v] for v in self.visual_inputs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["visual_inputs"] = list(self.visual_inputs)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransVAEConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"TransVAEConfig: unknown key(s) {unknown}")
        return cls(**data)


@dataclass
class TransVAEOutput:
    """A rollout: ``outputs`` feature -> ``(B, K, T, D)``; ``mu`` / ``logvar`` ``(B, K, W, d)``
    with ``W`` = 1 offline, the number of windows online."""

    outputs: dict[str, torch.Tensor]
    mu: torch.Tensor
    logvar: torch.Tensor


# --------------------------------------------------------------------------------------------
# attention with cached keys/values, on nn.MultiheadAttention's own parameters


def window_noise(windows: int, rows: int, dim: int, rho: float, generator: torch.Generator) -> torch.Tensor:
    """Latent noise ``(windows, rows, dim)``: N(0, I) for every window, correlated ``rho`` between
    consecutive windows of a row (AR(1): ``eps_i = rho eps_{i-1} + sqrt(1 - rho^2) xi_i``). ``rho = 0``
    is one plain ``torch.randn`` draw (the authors' independent windows, the same numbers)."""
    noise = torch.randn(windows, rows, dim, generator=generator, device=generator.device)
    if rho > 0:
        for i in range(1, windows):
            noise[i] = rho * noise[i - 1] + math.sqrt(max(0.0, 1 - rho * rho)) * noise[i]
    return noise


def _kv(attn: nn.MultiheadAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value projections of tokens ``x`` ``(N, L, d)`` (the module's packed in-projection)."""
    d = attn.embed_dim
    w, b = attn.in_proj_weight, attn.in_proj_bias
    return F.linear(x, w[d : 2 * d], b[d : 2 * d]), F.linear(x, w[2 * d :], b[2 * d :])


def _attend(
    attn: nn.MultiheadAttention, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """``attn`` for queries ``x`` ``(N, Lq, d)`` over projected keys/values ``(N, Lk, d)``.

    Equals ``attn(x, mem, mem, attn_mask=mask)`` when ``k, v = _kv(attn, mem)``; ``mask`` is an
    additive ``(Lq, Lk)`` float mask or None.
    """
    d, h = attn.embed_dim, attn.num_heads
    n, lq, _ = x.shape
    q = F.linear(x, attn.in_proj_weight[:d], attn.in_proj_bias[:d])

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(n, t.shape[1], h, d // h).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        heads(q), heads(k), heads(v), attn_mask=mask, dropout_p=attn.dropout if attn.training else 0.0
    )
    return attn.out_proj(out.transpose(1, 2).reshape(n, lq, d))


def _causal(lq: int, lk: int, device: torch.device) -> torch.Tensor:
    """Additive mask for the last ``lq`` of ``lk`` tokens: query ``j`` sees keys ``<= lk - lq + j``."""
    q = torch.arange(lk - lq, lk, device=device).view(-1, 1)
    k = torch.arange(lk, device=device).view(1, -1)
    return torch.zeros(lq, lk, device=device).masked_fill(k > q, float("-inf"))


def _post_norm_tail(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feed-forward block of a post-norm torch transformer layer (ReLU, dropout, last norm)."""
    norm = layer.norm3 if hasattr(layer, "norm3") else layer.norm2
    drop = layer.dropout3 if hasattr(layer, "dropout3") else layer.dropout2
    return norm(x + drop(layer.linear2(layer.dropout(F.relu(layer.linear1(x))))))


# --------------------------------------------------------------------------------------------
# building blocks


class FeatureEncoder(nn.Module):
    """Per-frame visual tokens from stored speaker features: ``Linear -> ReLU -> Linear``.

    Stands where the authors' frame CNN stands; per frame, so trivially causal."""

    def __init__(self, in_dim: int, d: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, d), nn.ReLU(), nn.Linear(d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, in) -> (B, T, d)
        return self.net(x)


class VideoEncoder(nn.Module):
    """The authors' frame encoder: five ``Conv3d`` with temporal kernel 1 (a 2D CNN per frame),
    instance norms, a residual fourth block, spatial mean, ``Linear(d, d)``.

    The instance norms take their statistics over time and space of the clip it is given, so a
    frame's token depends on the other frames of that clip (the online rollout re-encodes each
    prefix, as the authors do)."""

    def __init__(self, d: int):
        super().__init__()
        c = d // 4
        self.conv1 = nn.Conv3d(3, c, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False)
        self.conv2 = nn.Conv3d(c, d, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False)
        self.conv3 = nn.Conv3d(d, d, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv4 = nn.Conv3d(d, d, (1, 3, 3), stride=(1, 1, 1), padding=(0, 1, 1), bias=False)
        self.conv5 = nn.Conv3d(d, d, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.fc = nn.Linear(d, d)

    def forward(self, video: torch.Tensor) -> torch.Tensor:  # (B, T, 3, H, W) -> (B, T, d)
        def block(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
            return F.relu(F.instance_norm(conv(x)))

        x = video.transpose(1, 2)
        x = F.max_pool3d(block(self.conv1, x), (1, 3, 3), (1, 2, 2))
        x = block(self.conv2, x)
        x = block(self.conv3, x)
        x = x + block(self.conv4, x)
        x = block(self.conv5, x)
        return self.fc(x.mean(dim=(-2, -1)).transpose(1, 2))


class LatentHead(nn.Module):
    """The authors' ``VAEModel``: learned mu/logvar tokens read the frame tokens through one
    post-norm transformer encoder layer; only those two tokens' outputs are used, so only they
    are computed (keys/values of the frames come from :meth:`keys_values`, cacheable)."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout)
        self.mu_token = nn.Parameter(torch.randn(d))
        self.logvar_token = nn.Parameter(torch.randn(d))

    def keys_values(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention keys/values of frame tokens ``(N, L, d)``."""
        return _kv(self.layer.self_attn, self.proj(tokens))

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` ``(N, d)`` from the frames' keys/values ``(N, L, d)``."""
        n = k.shape[0]
        tok = torch.stack([self.mu_token, self.logvar_token]).unsqueeze(0).expand(n, -1, -1)
        attn = self.layer.self_attn
        tk, tv = _kv(attn, tok)
        a = _attend(attn, tok, torch.cat([tk, k], 1), torch.cat([tv, v], 1), None)
        x = self.layer.norm1(tok + self.layer.dropout1(a))
        x = _post_norm_tail(self.layer, x)
        return x[:, 0], x[:, 1]


@dataclass
class _History:
    """Online state of the past reaction: the history decoder's keys/values of the past 3DMM
    embeddings (self- and cross-attention) and the last embedding (the LSTM's initial state)."""

    sk: torch.Tensor
    sv: torch.Tensor
    ck: torch.Tensor
    cv: torch.Tensor
    last: torch.Tensor

    def extend(self, layer: nn.TransformerDecoderLayer, emb: torch.Tensor) -> _History:
        sk, sv = _kv(layer.self_attn, emb)
        ck, cv = _kv(layer.multihead_attn, emb)
        return _History(
            torch.cat([self.sk, sk], 1),
            torch.cat([self.sv, sv], 1),
            torch.cat([self.ck, ck], 1),
            torch.cat([self.cv, cv], 1),
            emb[:, -1],
        )


# --------------------------------------------------------------------------------------------
# the model


class TransVAE(nn.Module):
    """Trans-VAE generator built from a :class:`TransVAEConfig` (see the module docstring)."""

    def __init__(self, config: TransVAEConfig | None = None, **overrides: Any):
        super().__init__()
        cfg = config or TransVAEConfig()
        if overrides:
            cfg = TransVAEConfig.from_dict({**cfg.to_dict(), **overrides})
        self.config = cfg
        d, h, f, p = cfg.feature_dim, cfg.n_heads, cfg.ffn_dim, cfg.dropout
        self.visual: nn.Module = VideoEncoder(d) if cfg.visual_encoder == "video" else FeatureEncoder(cfg.visual_dim, d)
        self.audio_proj = nn.Linear(cfg.audio_dim, d)
        self.speaker_fusion = nn.Linear(2 * d, d)
        self.latent = LatentHead(d, h, f, p)
        self.query_dropout = nn.Dropout(p)
        self.latent_decoder = nn.TransformerDecoderLayer(d, h, f, p, batch_first=True)
        self.self_decoder = nn.TransformerDecoderLayer(d, h, f, p, batch_first=True)
        self.tdmm_head = nn.Linear(d, _TDMM)
        self.emotion_head = nn.Sequential(nn.Linear(d + _TDMM, d), nn.Linear(d, _EMO))
        if cfg.online:
            self.reaction_fusion = nn.Linear(d + _TDMM + _EMO, d)
            self.history_proj = nn.Linear(_TDMM, d)
            self.window_proj = nn.Linear(d, d)
            self.history_decoder = nn.TransformerDecoderLayer(d, h, f, p, batch_first=True)
            self.lstm = nn.LSTM(d, d, 1, batch_first=True)

    # ---- checkpoint helpers --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Build arguments: ``{"model": "transvae", "config": {...}}`` (JSON-ready)."""
        return {"model": "transvae", "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransVAE:
        """A freshly initialised model from :meth:`to_dict` output."""
        if data.get("model", "transvae") != "transvae" or "config" not in data:
            raise ConfigError(
                f"TransVAE.from_dict: expected {{'model': 'transvae', 'config': ...}}, got keys {sorted(data)}"
            )
        return cls(TransVAEConfig.from_dict(data["config"]))

    # ---- speaker encoder -----------------------------------------------------------------

    def encode_speaker(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Speaker tokens ``(B, T, d)`` from audio ``(B, T, A)`` and the visual input: stored
        features ``(B, T, visual_dim)`` or, with the video encoder, frames ``(B, T, 3, H, W)``."""
        return self.speaker_fusion(torch.cat([self.visual(visual), self.audio_proj(audio)], dim=-1))

    # ---- decoder -------------------------------------------------------------------------

    def _decode_window(self, z: torch.Tensor, length: int, hist: _History | None) -> tuple[torch.Tensor, torch.Tensor]:
        """3DMM ``(N, L, 58)`` and emotion ``(N, L, 25)`` of one window (the whole clip offline)."""
        n, d = z.shape
        pe = sinusoidal_encoding(torch.arange(length, device=z.device), d).to(z.dtype)
        q = self.query_dropout(pe.unsqueeze(0).repeat(n, 1, 1))
        causal = _causal(length, length, z.device)
        x = self.latent_decoder(q, z.unsqueeze(1), tgt_mask=causal)
        x = self.self_decoder(x, x, tgt_mask=causal)
        if hist is None:
            tdmm = self.tdmm_head(x)
        else:
            tdmm = self.tdmm_head(self._history_step(self.window_proj(x), hist))
        return tdmm, self.emotion_head(torch.cat([tdmm, x], dim=-1))

    def _history_step(self, cur: torch.Tensor, hist: _History) -> torch.Tensor:
        """History decoder (causal over past + current tokens; its memory is the same tokens,
        unmasked) for the current window's queries only, then the LSTM from the last past frame."""
        layer = self.history_decoder
        length = cur.shape[1]
        sk, sv = _kv(layer.self_attn, cur)
        k, v = torch.cat([hist.sk, sk], 1), torch.cat([hist.sv, sv], 1)
        x = layer.norm1(
            cur + layer.dropout1(_attend(layer.self_attn, cur, k, v, _causal(length, k.shape[1], cur.device)))
        )
        ck, cv = _kv(layer.multihead_attn, cur)
        a = _attend(layer.multihead_attn, x, torch.cat([hist.ck, ck], 1), torch.cat([hist.cv, cv], 1), None)
        x = _post_norm_tail(layer, layer.norm2(x + layer.dropout2(a)))
        h0 = hist.last.unsqueeze(0).contiguous()
        out, _ = self.lstm(x, (h0, h0))
        return out

    # ---- rollout -------------------------------------------------------------------------

    def _rollout(
        self,
        encode: Callable[[int], torch.Tensor],
        n_rows: int,
        t: int,
        window: int,
        noise: torch.Tensor,
        detach_history: bool,
        prefix_stable: bool,
        crossfade: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Online windows for ``n_rows`` rows. ``encode(e)`` gives speaker tokens ``(n_rows, >= e, d)``
        of the prefix ``[0, e)``; ``prefix_stable``: a frame's token does not depend on ``e``
        (features encoder), so the latent head's keys/values of past frames are cached."""
        d = self.config.feature_dim
        tdmm_out: list[torch.Tensor] = []
        emo_out: list[torch.Tensor] = []
        mus, logvars = [], []
        empty = noise.new_zeros(n_rows, 0, d)
        cache_k, cache_v = empty, empty  # latent-head keys/values of the generated frames
        hist: _History | None = None
        pending: tuple[torch.Tensor, torch.Tensor] | None = None  # the previous latent's decoding of this window
        for wi, s in enumerate(range(0, t, window)):
            e = min(s + window, t)
            enc = encode(e)
            zeros = noise.new_zeros(n_rows, e - s, _TDMM + _EMO)
            cur_k, cur_v = self.latent.keys_values(self.reaction_fusion(torch.cat([enc[:, s:e], zeros], -1)))
            if not prefix_stable and s > 0:
                past = torch.cat([torch.cat(tdmm_out, 1), torch.cat(emo_out, 1)], -1)
                past = past.detach() if detach_history else past
                cache_k, cache_v = self.latent.keys_values(self.reaction_fusion(torch.cat([enc[:, :s], past], -1)))
            mu, logvar = self.latent(torch.cat([cache_k, cur_k], 1), torch.cat([cache_v, cur_v], 1))
            z = mu + torch.exp(0.5 * logvar) * noise[wi]
            if not crossfade:
                tdmm, emo = self._decode_window(z, e - s, hist)
            else:
                ext = min(e + window, t)  # this latent also decodes the next window's frames
                tdmm_all, emo_all = self._decode_window(z, ext - s, hist)
                tdmm, emo = tdmm_all[:, : e - s], emo_all[:, : e - s]
                if pending is not None:
                    lam = (torch.arange(1, e - s + 1, device=z.device, dtype=z.dtype) / (window + 1))[None, :, None]
                    tdmm = (1 - lam) * pending[0][:, : e - s] + lam * tdmm
                    emo = (1 - lam) * pending[1][:, : e - s] + lam * emo
                pending = (tdmm_all[:, e - s :], emo_all[:, e - s :])
            tdmm_out.append(tdmm)
            emo_out.append(emo)
            mus.append(mu)
            logvars.append(logvar)
            fed_tdmm, fed_emo = (tdmm.detach(), emo.detach()) if detach_history else (tdmm, emo)
            if prefix_stable:
                k, v = self.latent.keys_values(self.reaction_fusion(torch.cat([enc[:, s:e], fed_tdmm, fed_emo], -1)))
                cache_k, cache_v = torch.cat([cache_k, k], 1), torch.cat([cache_v, v], 1)
            emb = self.history_proj(fed_tdmm)
            if hist is None:
                hist = _History(empty, empty, empty, empty, emb[:, -1]).extend(self.history_decoder, emb)
            else:
                hist = hist.extend(self.history_decoder, emb)
        return torch.cat(tdmm_out, 1), torch.cat(emo_out, 1), torch.stack(mus, 1), torch.stack(logvars, 1)

    def _visual_input(
        self,
        speaker_emotion: torch.Tensor | None,
        speaker_tdmm: torch.Tensor | None,
        speaker_video: torch.Tensor | None,
    ) -> torch.Tensor:
        cfg = self.config
        if cfg.visual_encoder == "video":
            if speaker_video is None:
                raise InputError("TransVAE (visual_encoder=video): speaker_video (B, T, 3, H, W) is required")
            return speaker_video
        feats = {"emotion": speaker_emotion, "tdmm": speaker_tdmm}
        missing = [f"speaker_{v}" for v in cfg.visual_inputs if feats[v] is None]
        if missing:
            raise InputError(f"TransVAE: {', '.join(missing)} required (visual_inputs={list(cfg.visual_inputs)})")
        lead = {tuple(feats[v].shape[:-1]) for v in cfg.visual_inputs}
        for v in cfg.visual_inputs:
            x = feats[v]
            if x.ndim != 3 or x.shape[-1] != FEATURE_DIMS[v] or len(lead) > 1:
                raise InputError(
                    f"speaker_{v}: expected (B, T, {FEATURE_DIMS[v]}) like the other speaker inputs, "
                    f"got {tuple(x.shape)}"
                )
        return torch.cat([feats[v] for v in cfg.visual_inputs], dim=-1)

    def _check(self, audio: torch.Tensor, visual: torch.Tensor) -> None:
        cfg = self.config
        if audio.ndim != 3 or audio.shape[-1] != cfg.audio_dim or audio.shape[1] < 1:
            raise InputError(f"speaker_audio: expected (B, T>=1, {cfg.audio_dim}), got {tuple(audio.shape)}")
        b, t = audio.shape[:2]
        if cfg.visual_encoder == "video":
            if visual.ndim != 5 or tuple(visual.shape[:3]) != (b, t, 3):
                raise InputError(f"speaker_video: expected ({b}, {t}, 3, H, W), got {tuple(visual.shape)}")
        elif tuple(visual.shape) != (b, t, cfg.visual_dim):
            raise InputError(
                f"speaker {'+'.join(cfg.visual_inputs)}: expected ({b}, {t}, {cfg.visual_dim}), "
                f"got {tuple(visual.shape)}"
            )
        for name, x in (("speaker_audio", audio), ("speaker visual input", visual)):
            if not torch.isfinite(x).all():
                raise InputError(f"{name}: contains NaN or inf")

    def forward(
        self,
        speaker_audio: torch.Tensor,
        speaker_emotion: torch.Tensor | None = None,
        speaker_tdmm: torch.Tensor | None = None,
        *,
        num_samples: int = 1,
        window: int | None = None,
        generator: torch.Generator | None = None,
        speaker_video: torch.Tensor | None = None,
        detach_history: bool | None = None,
        noise: torch.Tensor | None = None,
        crossfade: bool = False,
    ) -> TransVAEOutput:
        """Differentiable rollout of ``num_samples`` reactions per clip (training and
        :meth:`generate` share it). ``window`` defaults to ``config.window`` (online only).

        The latent noise ``eps`` (``z = mu + sigma * eps``) comes from ``generator``, or is given
        as ``noise`` ``(W, B*K, d)``: one row per window (``W = 1`` offline) and per sample, rows
        ordered item-major (item ``b``'s samples are rows ``b*K .. b*K+K-1``). With ``noise`` and
        the video encoder this is the authors' ``TransformerVAE.forward(video, audio)``.
        """
        cfg = self.config
        if generator is None and noise is None:
            raise ConfigError("TransVAE: pass a torch.Generator or the latent noise (never unseeded)")
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        window = cfg.window if window is None else int(window)
        if window < 1:
            raise ConfigError(f"window must be >= 1, got {window}")
        visual = self._visual_input(speaker_emotion, speaker_tdmm, speaker_video)
        self._check(speaker_audio, visual)
        b, t = speaker_audio.shape[:2]
        n = b * num_samples
        n_windows = math.ceil(t / window) if cfg.online else 1
        if noise is None:
            noise = window_noise(n_windows, n, cfg.feature_dim, cfg.noise_correlation if cfg.online else 0.0, generator)
        elif tuple(noise.shape) != (n_windows, n, cfg.feature_dim):
            raise InputError(
                f"noise: expected ({n_windows}, {n}, {cfg.feature_dim}) (windows, B*K, d), got {tuple(noise.shape)}"
            )
        noise = noise.to(speaker_audio.device, speaker_audio.dtype)
        video = cfg.visual_encoder == "video"
        if not cfg.online:
            enc = self.encode_speaker(speaker_audio, visual).repeat_interleave(num_samples, 0)
            mu, logvar = self.latent(*self.latent.keys_values(enc))
            z = mu + torch.exp(0.5 * logvar) * noise[0]
            tdmm, emo = self._decode_window(z, t, None)
            mu, logvar = mu.unsqueeze(1), logvar.unsqueeze(1)
        else:
            full = None if video else self.encode_speaker(speaker_audio, visual).repeat_interleave(num_samples, 0)

            def encode(e: int) -> torch.Tensor:
                if full is not None:
                    return full
                return self.encode_speaker(speaker_audio[:, :e], visual[:, :e]).repeat_interleave(num_samples, 0)

            detach = cfg.detach_history if detach_history is None else detach_history
            tdmm, emo, mu, logvar = self._rollout(encode, n, t, window, noise, detach, prefix_stable=not video,
                                                  crossfade=crossfade)
        w = mu.shape[1]
        return TransVAEOutput(
            outputs={"emotion": emo.reshape(b, num_samples, t, _EMO), "tdmm": tdmm.reshape(b, num_samples, t, _TDMM)},
            mu=mu.reshape(b, num_samples, w, -1),
            logvar=logvar.reshape(b, num_samples, w, -1),
        )

    @torch.no_grad()
    def generate(
        self,
        speaker_audio: torch.Tensor,
        speaker_emotion: torch.Tensor | None = None,
        speaker_tdmm: torch.Tensor | None = None,
        *,
        num_samples: int = 10,
        window: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        device: str | torch.device | None = None,
        speaker_video: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``num_samples`` reactions per clip as one ``B*K`` batch, in eval mode without gradients.

        Args:
            speaker_audio: ``(B, T, audio_dim)``.
            speaker_emotion / speaker_tdmm: ``(B, T, 25)`` / ``(B, T, 58)``; those named in
                ``config.visual_inputs`` are required by the features encoder.
            num_samples: ``K``.
            window: online window (default ``config.generate_window``); ignored offline.
            generator / seed: the latent noise (one is required); same seed, same output.
            device: where to run (the model moves there); default the model's device.
            speaker_video: ``(B, T, 3, H, W)`` frames, for the video encoder only.

        Returns:
            ``{"emotion": (B, K, T, 25), "tdmm": (B, K, T, 58)}`` float32 on ``device``.
        """
        if generator is None:
            if seed is None:
                raise ConfigError("TransVAE.generate: pass a seed or a torch.Generator")
            generator = torch.Generator().manual_seed(int(seed))
        dev = torch.device(device) if device is not None else next(self.parameters()).device
        self.to(dev)

        def prep(x: Any) -> torch.Tensor | None:
            return None if x is None else torch.as_tensor(x, dtype=torch.float32).to(dev)

        was_training = self.training
        self.eval()
        try:
            out = self(
                prep(speaker_audio),
                prep(speaker_emotion),
                prep(speaker_tdmm),
                num_samples=num_samples,
                window=self.config.generate_window if window is None else window,
                generator=generator,
                speaker_video=prep(speaker_video),
                detach_history=True,
                crossfade=self.config.crossfade,
            )
        finally:
            self.train(was_training)
        return out.outputs


# --------------------------------------------------------------------------------------------
# the challenge's released checkpoints


def _released_names(online: bool) -> dict[str, str]:
    """Prefix map: the authors' ``TransformerVAE`` state-dict names -> reactcli's."""
    dec = "reaction_decoder."
    names = {
        "speaker_behaviour_encoder.video_encoder.Conv3D.": "visual.",
        "speaker_behaviour_encoder.video_encoder.fc.": "visual.fc.",
        "speaker_behaviour_encoder.audio_feature_map.": "audio_proj.",
        "speaker_behaviour_encoder.fusion_layer.": "speaker_fusion.",
        dec + "vae_model.linear.": "latent.proj.",
        dec + "vae_model.seqTransEncoder.layers.0.": "latent.layer.",
        dec + "vae_model.mu_token": "latent.mu_token",
        dec + "vae_model.logvar_token": "latent.logvar_token",
        dec + "listener_reaction_decoder_1.layers.0.": "latent_decoder.",
        dec + "listener_reaction_decoder_2.layers.0.": "self_decoder.",
        dec + "listener_reaction_3dmm_map_layer.": "tdmm_head.",
        dec + "listener_reaction_emotion_map_layer.": "emotion_head.",
    }
    if online:
        names.update(
            {
                "fusion.": "reaction_fusion.",
                dec + "lstm.": "lstm.",
                dec + "linear_3d.": "history_proj.",
                dec + "linear_reaction.": "window_proj.",
                dec + "listener_reaction_decoder_3d.layers.0.": "history_decoder.",
            }
        )
    return names


def _read_released(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise InputError(
            f"{path}: cannot read as a torch checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    state = ck.get("state_dict", ck) if isinstance(ck, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a released checkpoint (expected a dict with a 'state_dict' of tensors)")
    return state


def released_state_dict(state: dict[str, torch.Tensor], model: TransVAE, where: str) -> dict[str, torch.Tensor]:
    """The authors' ``TransformerVAE`` state dict renamed into ``model``'s, strictly.

    Every tensor must be used and every parameter of ``model`` given, with its shape; the
    offline model's unused ``fusion`` layer and the positional-encoding table (checked against
    the sinusoidal formula) are the only tensors read and dropped. Otherwise one
    :class:`InputError` naming ``where`` and the offending keys.
    """
    online = model.config.online
    names = _released_names(online)
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    unexpected, shapes = [], []
    for key, val in state.items():
        if key == "reaction_decoder.PE.pe":
            d = model.config.feature_dim
            ref = sinusoidal_encoding(torch.arange(val.shape[0]), d)
            if val.shape[1:] != (1, d) or (val[:, 0] - ref).abs().max() > 1e-4:
                shapes.append(f"{key} (not the sinusoidal table of width {d})")
            continue
        if not online and key.startswith("fusion."):
            continue  # built but unused by the authors' offline model
        new = next((new + key[len(old) :] for old, new in names.items() if key.startswith(old)), None)
        if new is None or new not in own:
            unexpected.append(key)
        elif tuple(val.shape) != tuple(own[new].shape):
            shapes.append(f"{key} {tuple(val.shape)} != {tuple(own[new].shape)}")
        else:
            out[new] = val
    missing = sorted(set(own) - set(out))
    problems = tensor_mismatch(missing, unexpected, shapes)
    if problems:
        raise InputError(
            f"{where}: not a REACT Trans-VAE ({'online' if online else 'offline'}) checkpoint: "
            + problems
        )
    return out


def load_released_transvae(
    path: str | Path, *, online: bool | None = None, generate_window: int = 8, n_heads: int = 4, **config: Any
) -> TransVAE:
    """The challenge's released Trans-VAE (``train.py``'s ``{"state_dict": ...}``) as a :class:`TransVAE`.

    Widths are read from the tensors (``feature_dim``, ``audio_dim``, ``ffn_dim``); online or
    offline from the presence of the online layers (``online`` may insist on one). The model has
    the authors' video encoder and takes ``speaker_video`` frames as their evaluation feeds them
    (224x224 crops normalised with mean/std 0.5). Extra ``config`` fields (loss weights, ...)
    go into the :class:`TransVAEConfig`. Loading is strict, see :func:`released_state_dict`.
    """
    path = Path(path)
    state = _read_released(path)
    key = "speaker_behaviour_encoder.audio_feature_map.weight"
    ffn = "reaction_decoder.vae_model.seqTransEncoder.layers.0.linear1.weight"
    if key not in state or ffn not in state:
        raise InputError(f"{path}: not a REACT Trans-VAE checkpoint (no {key if key not in state else ffn})")
    is_online = "reaction_decoder.lstm.weight_ih_l0" in state
    if online is not None and online != is_online:
        raise InputError(
            f"{path}: an {'online' if is_online else 'offline'} Trans-VAE checkpoint, but online={online} was asked for"
        )
    d, audio = state[key].shape
    cfg = TransVAEConfig(
        visual_encoder="video",
        visual_inputs=(),
        feature_dim=int(d),
        audio_dim=int(audio),
        ffn_dim=int(state[ffn].shape[0]),
        n_heads=n_heads,
        online=is_online,
        generate_window=generate_window,
        **config,
    )
    model = TransVAE(cfg)
    model.load_state_dict(released_state_dict(state, model, str(path)))
    return model
