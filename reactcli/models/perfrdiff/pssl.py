"""PSSL: personalised style space learning (a listener's "cognitive style" vector).

A transformer encoder reads a listener's historical clip of 3DMM coefficients (identity-free
expression/pose, 30 s = 750 frames) and returns one L2-normalised 512-d vector. Training pulls
together the vectors of clips of the same listener and pushes apart different listeners with
the supervised contrastive loss of Khosla et al. (2020), labels = listener id, temperature 0.07.

Options beyond the paper (:class:`PSSLConfig`): read the 25-d emotion history instead of 3DMM
(``history_feature``), read the speaker side of the history clip too (``dyadic``), and z-score
each channel over the clip (``standardise``). :meth:`PSSLEncoder.encode` builds the input from a
batch dict for every caller (PSSL and PWSG training, generation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reactcli.config import PositiveInt, Probability, from_mapping
from reactcli.errors import ConfigError, InputError

from .gafrg import sinusoidal_embedding

__all__ = ["PSSLConfig", "PSSLEncoder", "interleaved_positions", "supcon_loss"]


@dataclass
class PSSLConfig:
    """Sizes of the PSSL style encoder (defaults: the paper's)."""

    input_dim: PositiveInt = 58
    """Width of one history frame: 58 for the 3DMM history (the paper), 25 for emotion."""
    history_feature: str = "tdmm"
    """Which feature of the listener's historical clip the encoder reads: ``tdmm`` (the paper's
    identity-free 3DMM) or ``emotion`` (the scored 25-d vector; it shows a listener's habitual
    valence/arousal levels, which 3DMM does not carry). ``input_dim`` must match it."""
    d_model: PositiveInt = 512
    """Transformer width (input Linear 58 -> d_model)."""
    num_layers: PositiveInt = 4
    """Transformer encoder layers."""
    num_heads: PositiveInt = 4
    """Attention heads."""
    ffn_dim: PositiveInt = 1024
    """Feed-forward hidden width (not given in the paper)."""
    dropout: Probability = 0.1
    """Dropout inside the encoder layers (training only)."""
    style_dim: PositiveInt = 512
    """Width of the L2-normalised style vector."""
    dyadic: bool = False
    """Also read the other side of the history clip: the speaker the listener was answering, frame
    by frame beside the listener (input width doubles). Not the paper, whose encoder sees only the
    listener. A habitual way of answering is a mapping from what the speaker does to what the
    listener shows, which the listener's side alone does not reveal."""
    standardise: bool = False
    """Z-score every input channel over the clip's own (valid) frames before encoding. Removes a
    person's static levels and gains (AU offsets, a valence bias), which identify a listener so
    easily that the contrastive loss needs nothing else; what is left is how they move, and, when
    dyadic, how they answer the speaker."""

    norm_first: bool = True
    """Encoder layers normalise before each block (pre-norm). False: after (post-norm, PyTorch's
    default, which the authors' released PSSL uses)."""
    activation: str = "gelu"
    """Feed-forward activation of the encoder layers: ``gelu`` or ``relu`` (the authors')."""
    final_norm: bool = True
    """LayerNorm on the CLS output before the projection (the authors' encoder has none)."""
    proj_head: str = "linear"
    """Projection to the style vector: ``linear`` or ``mlp`` (Linear-ReLU-Linear, d -> d ->
    style_dim: the authors' ``proj_head: mlp``)."""
    positions: str = "concat"
    """Sinusoidal position code layout: ``concat`` (all sines, then all cosines) or
    ``interleave`` (sine and cosine of each frequency side by side: the authors'
    ``PositionalEncoding``; the same frequencies)."""

    def __post_init__(self) -> None:
        for name, allowed in (("activation", ("gelu", "relu")), ("proj_head", ("linear", "mlp")),
                              ("positions", ("concat", "interleave"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"PSSL {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.positions == "interleave" and self.d_model % 2:
            raise ConfigError(f"PSSL positions: interleave needs an even d_model, got {self.d_model}")
        widths = {"tdmm": 58, "emotion": 25}
        if self.history_feature not in widths:
            raise ConfigError(f"PSSL history_feature must be tdmm or emotion, got {self.history_feature!r}")
        width = widths[self.history_feature] * (2 if self.dyadic else 1)
        if self.input_dim != width:
            raise ConfigError(f"PSSL input_dim={self.input_dim} does not match history_feature="
                              f"{self.history_feature!r}{' with dyadic' if self.dyadic else ''} ({width}-d)")
        if self.d_model % self.num_heads:
            raise ConfigError(f"PSSL d_model={self.d_model} must be divisible by num_heads={self.num_heads}")

    def input_keys(self, view: str = "history") -> list[str]:
        """Batch keys this encoder reads, concatenated on the feature axis in this order.

        ``view="history"``: the listener's historical clip (``listener_history_<feature>``,
        preceded by ``speaker_history_<feature>`` when dyadic); ``view="own"``: the item's own
        clip (``listener_<feature>`` [after ``speaker_<feature>``]), PSSL training's second view.
        """
        if view not in ("history", "own"):
            raise ConfigError(f"PSSL view must be history or own, got {view!r}")
        suffix = f"_history_{self.history_feature}" if view == "history" else f"_{self.history_feature}"
        return (["speaker" + suffix] if self.dyadic else []) + ["listener" + suffix]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for checkpoints; inverted by :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PSSLConfig":
        """Rebuild from :meth:`to_dict`; unknown keys are an error."""
        return from_mapping(cls, data, "PSSLConfig")


class PSSLEncoder(nn.Module):
    """Linear in (58, 25, or twice that when dyadic) -> d, CLS token, sinusoidal positions, transformer encoder, CLS -> style (L2-norm)."""

    def __init__(self, config: PSSLConfig | None = None):
        super().__init__()
        cfg = config or PSSLConfig()
        self.config = cfg
        self.in_proj = nn.Linear(cfg.input_dim, cfg.d_model)
        self.cls = nn.Parameter(torch.randn(1, 1, cfg.d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.dropout,
                                           activation=cfg.activation, batch_first=True, norm_first=cfg.norm_first)
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model) if cfg.final_norm else nn.Identity()
        if cfg.proj_head == "linear":
            self.proj = nn.Linear(cfg.d_model, cfg.style_dim)
        else:
            self.proj = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.ReLU(), nn.Linear(cfg.d_model, cfg.style_dim))

    def forward(self, history: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """history (B, Th, 58) [+ valid (B, Th) bool for padded clips] -> style (B, style_dim), unit norm."""
        return F.normalize(self.proj(self.cls_feature(history, valid)), dim=-1)

    def cls_feature(self, history: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's CLS output (B, d_model) that the projection turns into the style (after the
        final LayerNorm when the config has one)."""
        if history.dim() != 3 or history.shape[-1] != self.config.input_dim:
            raise InputError(f"listener history must be (B, Th, {self.config.input_dim}), got {tuple(history.shape)}")
        b, th, _ = history.shape
        if self.config.standardise:
            history = _standardise(history, valid)
        if self.config.positions == "interleave":
            pos = interleaved_positions(th + 1, self.config.d_model, history.device)
        else:
            pos = sinusoidal_embedding(torch.arange(th + 1, device=history.device), self.config.d_model)
        x = torch.cat([self.cls.expand(b, -1, -1), self.in_proj(history)], dim=1) + pos
        pad = None
        if valid is not None:
            pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=history.device), ~valid.bool()], dim=1)
        h = self.encoder(x, src_key_padding_mask=pad)
        return self.norm(h[:, 0])

    def encode(self, batch: dict[str, torch.Tensor], view: str = "history") -> torch.Tensor:
        """Style vectors of a batch dict: reads :meth:`PSSLConfig.input_keys` (on this encoder's device)."""
        keys = self.config.input_keys(view)
        missing = [k for k in keys if k not in batch]
        if missing:
            raise InputError(f"PSSL input {missing[0]!r} missing from the batch (has {sorted(batch)})")
        dev = self.in_proj.weight.device
        parts = [batch[k].to(dev) for k in keys]
        if len({tuple(p.shape[:2]) for p in parts}) > 1:
            raise InputError(f"PSSL inputs {keys} disagree on (batch, frames): {[tuple(p.shape) for p in parts]}")
        return self(torch.cat(parts, dim=-1))


def interleaved_positions(n: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Sinusoidal codes of positions 0..n-1 (n, dim) with sin and cos of frequency i at columns 2i
    and 2i+1, computed as ``pos / 10000 ** (2i / dim)`` (the transformer paper's form, the
    arithmetic of the authors' ``PositionalEncoding``, so an imported PSSL sees the same codes)."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    div = 10000 ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    return torch.stack([torch.sin(pos / div), torch.cos(pos / div)], dim=-1).flatten(1)


def _standardise(x: torch.Tensor, valid: torch.Tensor | None, eps: float = 1e-3) -> torch.Tensor:
    """Per clip and channel: (x - mean) / (std + eps) over the valid frames; padded frames -> 0."""
    w = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device) if valid is None else valid.to(x.dtype)
    n = w.sum(1, keepdim=True).clamp_min(1.0)[..., None]
    mean = (x * w[..., None]).sum(1, keepdim=True) / n
    var = (((x - mean) ** 2) * w[..., None]).sum(1, keepdim=True) / n
    return (x - mean) / (var.sqrt() + eps) * w[..., None]


def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, the "L_out" form), mean over anchors.

    For anchor i with positives P(i) = {p != i : y_p = y_i} and all others A(i) = {a != i}:
    ``L_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / tau) / sum_{a in A(i)} exp(z_i.z_a / tau) )``.
    Anchors without any positive are left out of the mean (they carry no supervised signal); a
    batch where no anchor has a positive is an input error, since the loss would be undefined.

    Args:
        features: (N, D) embeddings; L2-normalised here (so the caller may pass raw vectors).
        labels: (N,) integer class (listener) ids.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise InputError(f"supcon_loss needs features (N, D) and labels (N,), got {tuple(features.shape)} "
                         f"and {tuple(labels.shape)}")
    z = F.normalize(features, dim=-1)
    logits = z @ z.T / temperature
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))  # drop i == a from the denominator
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    n_pos = pos.sum(1)
    has_pos = n_pos > 0
    if not has_pos.any():
        raise InputError("supcon_loss: no two samples share a label (every listener appears once); "
                         "the batch needs at least one positive pair")
    per_anchor = -(log_prob.masked_fill(~pos, 0.0)).sum(1)[has_pos] / n_pos[has_pos]
    return per_anchor.mean()
