"""BeLFusion stage 1: the behaviour autoencoder (the challenge's ``AutoencoderRNN_VAE_v2``).

A recurrent VAE over windows of ``w`` emotion frames (25-d): a GRU reads the window, its last
hidden state ``h`` gives ``mu`` and ``logvar``; the decoder maps a latent through
``Linear(z, H)`` and unrolls a GRU cell ``w`` steps, each fed the latent features and its own
previous output (zeros first), through a tanh MLP to the next emotion frame. A separate
``Linear(25, H) -> tanh -> Linear(H, 58)`` regresses the 3DMM coefficients of each emotion frame.

Stage 2 works on a latent of each window, which the authors' ``encode`` takes to be the GRU's
last hidden state ``h`` -- not ``mu`` -- and decodes through the same ``Linear(z, H)`` (so
``z_dim`` must equal ``hidden_dim``). That is ``latent="hidden"`` here (the default, which their
released weights need); ``latent="mu"`` uses the VAE mean the decoder was trained on.

Departures from the authors' code (options keep theirs): their stage-1 training never loads the
3DMM targets (``load_3dmm_l=False``), so the 3DMM regressor learns to output zeros, i.e. the mean
face; reactcli regresses the listener's real 3DMM (``coeff_target="listener"``), ``"zeros"``
reproduces theirs. Their encoder GRU cell loop is the same arithmetic as the ``nn.GRU`` used here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any, Literal

import torch
from torch import nn

from reactcli.config import NonNegativeFloat, PositiveInt, Range
from reactcli.errors import ConfigError, InputError

__all__ = ["EMOTION_DIM", "TDMM_DIM", "BehaviourAEConfig", "BehaviourAutoencoder", "latent_statistics"]

EMOTION_DIM = 25
TDMM_DIM = 58
LATENTS = ("hidden", "mu")


@dataclass
class BehaviourAEConfig:
    """Build arguments and loss weights of :class:`BehaviourAutoencoder` (defaults: the challenge's
    ``config/1_belfusion_vae.yaml``)."""

    window: PositiveInt = 50
    """Frames per encoded window ``w`` (2 s at 25 fps)."""
    hidden_dim: PositiveInt = 128
    """GRU width ``H`` of encoder and decoder, and of the 3DMM regressor's hidden layer."""
    z_dim: PositiveInt = 128
    """VAE latent size (equal to ``hidden_dim`` when stage 2 diffuses the hidden state)."""
    mlp_dims: tuple[PositiveInt, ...] = (64, 64)
    """Widths of the decoder's tanh MLP between the GRU cell and the emotion output."""
    dropout: Annotated[float, Range(min=0, max=1, open_max=True)] = 0.0
    """Dropout on the decoder's latent features."""
    kl_weight: NonNegativeFloat = 1e-5
    """Weight of the KL term (sum over latent dims and windows, divided by the clips of the batch)."""
    coeff_weight: NonNegativeFloat = 1.0
    """Weight of the 3DMM regression MSE."""
    coeff_target: Literal["listener", "zeros"] = "listener"
    """``listener``: regress the listener's 3DMM; ``zeros``: the authors' effective target (zeros)."""

    def __post_init__(self) -> None:
        self.mlp_dims = tuple(int(m) for m in self.mlp_dims)
        for name in ("window", "hidden_dim", "z_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"BehaviourAEConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.mlp_dims or min(self.mlp_dims) < 1:
            raise ConfigError(f"BehaviourAEConfig.mlp_dims must be positive widths, got {list(self.mlp_dims)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"BehaviourAEConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.coeff_target not in ("listener", "zeros"):
            raise ConfigError(f"BehaviourAEConfig.coeff_target must be listener or zeros, got {self.coeff_target!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["mlp_dims"] = list(self.mlp_dims)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BehaviourAEConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"BehaviourAEConfig: unknown key(s) {unknown}")
        return cls(**data)


class BehaviourAutoencoder(nn.Module):
    """The windowed recurrent VAE of BeLFusion's stage 1 (see the module docstring)."""

    def __init__(self, config: BehaviourAEConfig | None = None, **overrides: Any):
        super().__init__()
        cfg = config or BehaviourAEConfig()
        if overrides:
            cfg = BehaviourAEConfig.from_dict({**cfg.to_dict(), **overrides})
        self.config = cfg
        h = cfg.hidden_dim
        self.encoder = nn.GRU(EMOTION_DIM, h, batch_first=True)
        self.fc_mu = nn.Linear(h, cfg.z_dim)
        self.fc_logvar = nn.Linear(h, cfg.z_dim)
        self.fc_z = nn.Linear(cfg.z_dim, h)
        self.dropout = nn.Dropout(cfg.dropout)
        self.decoder_cell = nn.GRUCell(h + EMOTION_DIM, h)
        layers: list[nn.Module] = []
        last = h
        for width in cfg.mlp_dims:
            layers += [nn.Linear(last, width), nn.Tanh()]
            last = width
        self.decoder_mlp = nn.Sequential(*layers)
        self.decoder_out = nn.Linear(last, EMOTION_DIM)
        self.coeff = nn.Sequential(nn.Linear(EMOTION_DIM, h), nn.Tanh(), nn.Linear(h, TDMM_DIM))

    def to_dict(self) -> dict[str, Any]:
        """Build arguments: ``{"model": "belfusion-ae", "config": {...}}``."""
        return {"model": "belfusion-ae", "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BehaviourAutoencoder:
        """A freshly initialised autoencoder from :meth:`to_dict` output."""
        if data.get("model", "belfusion-ae") != "belfusion-ae" or "config" not in data:
            raise ConfigError(
                f"BehaviourAutoencoder.from_dict: expected {{'model': 'belfusion-ae', 'config': ...}}, "
                f"got keys {sorted(data)}"
            )
        return cls(BehaviourAEConfig.from_dict(data["config"]))

    # ---- windows ---------------------------------------------------------------------------

    def windows(self, seq: torch.Tensor, name: str = "emotion") -> torch.Tensor:
        """``(B, T, D)`` -> ``(B * (T // w), w, D)``: the consecutive whole windows (a remainder is dropped)."""
        w = self.config.window
        if seq.ndim != 3 or seq.shape[1] < w:
            raise InputError(f"{name}: expected (B, T >= {w}, D) for windows of {w} frames, got {tuple(seq.shape)}")
        b, t, d = seq.shape
        n = t // w
        return seq[:, : n * w].reshape(b * n, w, d)

    def _check_windows(self, x: torch.Tensor) -> None:
        w = self.config.window
        if x.ndim != 3 or x.shape[1:] != (w, EMOTION_DIM):
            raise InputError(f"emotion windows: expected (N, {w}, {EMOTION_DIM}), got {tuple(x.shape)}")

    # ---- encoder / decoder -----------------------------------------------------------------

    def hidden(self, windows: torch.Tensor) -> torch.Tensor:
        """The encoder GRU's last hidden state ``(N, H)`` of emotion windows ``(N, w, 25)``."""
        self._check_windows(windows)
        _, h = self.encoder(windows)
        return h[-1]

    def encode(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mu, logvar, hidden)`` of emotion windows ``(N, w, 25)``."""
        h = self.hidden(windows)
        return self.fc_mu(h), self.fc_logvar(h), h

    def latent(self, windows: torch.Tensor, kind: str = "hidden") -> torch.Tensor:
        """Stage 2's latent of each window: ``hidden`` (the authors') or ``mu``."""
        if kind not in LATENTS:
            raise ConfigError(f"latent must be one of {LATENTS}, got {kind!r}")
        h = self.hidden(windows)
        return h if kind == "hidden" else self.fc_mu(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Emotion windows ``(N, w, 25)`` from latents ``(N, z_dim)``, autoregressively."""
        feats = self.dropout(self.fc_z(z))
        hx = feats.new_zeros(feats.shape[0], self.config.hidden_dim)
        y = feats.new_zeros(feats.shape[0], EMOTION_DIM)
        out = []
        for _ in range(self.config.window):
            hx = self.decoder_cell(torch.cat([feats, y], dim=1), hx)
            y = self.decoder_out(self.decoder_mlp(hx))
            out.append(y)
        return torch.stack(out, dim=1)

    def coefficients(self, emotion: torch.Tensor) -> torch.Tensor:
        """3DMM coefficients ``(..., 58)`` regressed from emotion frames ``(..., 25)``."""
        return self.coeff(emotion)

    def forward(self, windows: torch.Tensor, eps: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Autoencode emotion windows ``(N, w, 25)``: ``z = mu + sigma * eps`` (``eps`` given, as in
        training) or ``z = mu`` (the authors' evaluation). Returns ``prediction`` ``(N, w, 25)``,
        ``coefficients`` ``(N, w, 58)``, ``mu``, ``logvar``."""
        mu, logvar, _ = self.encode(windows)
        z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps
        pred = self.decode(z)
        return {"prediction": pred, "coefficients": self.coefficients(pred), "mu": mu, "logvar": logvar}


@torch.no_grad()
def latent_statistics(
    autoencoder: BehaviourAutoencoder, emotion: Iterable[torch.Tensor], latent: str = "hidden"
) -> dict[str, torch.Tensor]:
    """Per-dimension ``min``, ``max``, ``mean``, ``std``, ``var`` of the latents of every whole
    window of the given emotion sequences (each ``(B, T, 25)``), as the authors'
    ``compute_statistics`` stores them after stage 1 (they pass every training clip, speaker and
    listener side, whole). Stage 2 normalises its latents with them."""
    was_training = autoencoder.training
    autoencoder.eval()
    try:
        dev = next(autoencoder.parameters()).device
        parts = [autoencoder.latent(autoencoder.windows(e.to(dev, torch.float32)), latent) for e in emotion]
    finally:
        autoencoder.train(was_training)
    if not parts:
        raise InputError("latent_statistics: no emotion sequences given")
    x = torch.cat(parts)
    if x.shape[0] < 2:
        raise InputError("latent_statistics: needs at least two windows")
    return {"min": x.min(0).values, "max": x.max(0).values, "mean": x.mean(0), "std": x.std(0), "var": x.var(0)}
