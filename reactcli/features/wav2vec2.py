"""wav2vec2 audio features from a local checkpoint (ReactFace's audio input).

The user supplies a Hugging Face checkpoint directory (``config.json`` + weights, e.g. a local
copy of ``facebook/wav2vec2-base``); nothing is downloaded. The clip audio is read mono,
resampled to 16 kHz, fitted to ``num_frames / fps`` seconds (zero padding as for MFCC),
optionally normalised to zero mean / unit variance (what ``Wav2Vec2FeatureExtractor`` does for
the base model), and encoded once. The encoder emits one token per 20 ms (50 Hz), i.e. about
two per 40 ms video frame but one short at the end (``floor((L - 400) / 320) + 1`` tokens for
``L`` samples), so the token sequence is resampled to exactly ``2 * num_frames`` tokens by
linear interpolation over time (align_corners, as FaceFormer-style code does) and video frame
``i`` gets tokens ``2i`` and ``2i+1`` concatenated: ``(num_frames, 2 * hidden_size)``
(1536 for the base model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reactcli.errors import ConfigError, MissingAssetError
from reactcli.features.device import resolve_device
from reactcli.features.registry import ClipInputs, Extractor, fit_length, read_audio, register_extractor

SAMPLE_RATE = 16000


@dataclass
class Wav2Vec2Config:
    """Options of the ``wav2vec2`` extractor."""

    path: str | None = None
    """Local checkpoint directory (``--wav2vec2-path``); required."""
    fps: float = 25.0
    """Video frame rate: rows per second of output."""
    tokens_per_frame: int = 2
    """Tokens concatenated per video frame (2 = 50 Hz tokens at 25 fps)."""
    layer: int = -1
    """Hidden state to return: -1 = last layer output; k = ``hidden_states[k]``."""
    normalize: bool = True
    """Zero-mean/unit-variance input normalisation (wav2vec2-base's feature extractor does it)."""
    max_pad_s: float = 0.5
    """Most audio (seconds) that may be missing at the end and padded with silence."""
    num_threads: int | None = None
    """torch intra-op threads for this worker (None: leave torch's setting)."""
    device: str = "cpu"
    """Torch device of the model: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (resolved in the worker)."""


@register_extractor("wav2vec2")
class Wav2Vec2Extractor(Extractor):
    """``(num_frames, tokens_per_frame * hidden)`` wav2vec2 features; loads the model once."""

    requires = ("audio",)
    Config = Wav2Vec2Config
    cfg: Wav2Vec2Config

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        p = self.cfg.path
        if p is None or not Path(p).is_dir() or not (Path(p) / "config.json").is_file():
            raise MissingAssetError("wav2vec2 checkpoint", "--wav2vec2-path", p)
        if self.cfg.tokens_per_frame < 1:
            raise ConfigError("wav2vec2: tokens_per_frame must be >= 1")
        import torch
        from transformers import Wav2Vec2Model

        if self.cfg.num_threads:
            torch.set_num_threads(self.cfg.num_threads)
        try:
            self.model = Wav2Vec2Model.from_pretrained(str(p), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MissingAssetError("wav2vec2 checkpoint (weights unreadable: " f"{exc})", "--wav2vec2-path", p) from exc
        self.device = resolve_device(self.cfg.device)
        self.model.to(self.device).eval()
        self.hidden = int(self.model.config.hidden_size)

    @property
    def dims(self) -> dict[str, int]:
        return {"wav2vec2": self.cfg.tokens_per_frame * self.hidden}

    def features_from_samples(self, x: np.ndarray, num_frames: int, what: str = "audio") -> np.ndarray:
        """Features from mono float samples at 16 kHz."""
        import torch

        c = self.cfg
        n = int(round(num_frames / c.fps * SAMPLE_RATE))
        x = fit_length(np.asarray(x, np.float32), n, int(round(c.max_pad_s * SAMPLE_RATE)), what)
        if c.normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x)[None].to(self.device), output_hidden_states=c.layer != -1)
            h = out.last_hidden_state if c.layer == -1 else out.hidden_states[c.layer]
            want = c.tokens_per_frame * num_frames
            h = torch.nn.functional.interpolate(h.transpose(1, 2), size=want, mode="linear", align_corners=True)
            h = h.transpose(1, 2)[0]  # (want, hidden)
        return h.reshape(num_frames, -1).float().cpu().numpy().astype(np.float32)

    def extract(self, inputs: ClipInputs) -> dict[str, np.ndarray]:
        path = inputs.need("audio")
        x, _ = read_audio(path, SAMPLE_RATE)
        return {"wav2vec2": self.features_from_samples(x, inputs.num_frames, f"{inputs.clip_id}: {path}")}
