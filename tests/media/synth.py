"""Synthetic media for the media/feature tests: videos whose frames encode their own index.

Each frame of a ``size x size`` video is split into an 8x8 grid of blocks; the first 12 blocks
(row-major) hold the frame index in binary (white = 1, black = 0), so the index survives lossy
H.264 coding and can be read back with :func:`decode_index`. Audio is a linear ramp so a sample's
value says which time it came from.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

NBITS = 12


def index_frame(i: int, size: int = 64) -> np.ndarray:
    """An RGB uint8 frame encoding ``i`` in its first :data:`NBITS` blocks."""
    b = size // 8
    img = np.full((size, size, 3), 96, np.uint8)
    for k in range(NBITS):
        r, c = divmod(k, 8)
        img[r * b:(r + 1) * b, c * b:(c + 1) * b] = 255 if (i >> k) & 1 else 0
    return img


def decode_index(frame: np.ndarray) -> int:
    """Read back the index written by :func:`index_frame` (frame: H x W x 3 uint8)."""
    size = frame.shape[0]
    b = size // 8
    g = frame.astype(np.float32).mean(axis=2)
    value = 0
    for k in range(NBITS):
        r, c = divmod(k, 8)
        block = g[r * b + 2:(r + 1) * b - 2, c * b + 2:(c + 1) * b - 2]
        if block.mean() > 128:
            value |= 1 << k
    return value


def write_index_video(
    path: Path,
    num_frames: int,
    fps: int | Fraction = 25,
    size: int = 64,
    audio_rate: int | None = None,
    gop: int | None = None,
) -> Path:
    """Write an H.264 mp4 whose frame i shows index i; optionally with an AAC ramp audio track.

    ``gop`` sets the keyframe interval (None: x264's default), used to test stream copy.
    """
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps))
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        opts = {"crf": "10", "preset": "ultrafast"}
        if gop is not None:
            opts.update({"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
        vs.options = opts
        as_ = None
        if audio_rate:
            as_ = out.add_stream("aac", rate=audio_rate)
            as_.layout = "mono"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_frame(i, size), format="rgb24")
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if as_ is not None:
            n = int(round(num_frames / float(fps) * audio_rate))
            sig = (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / audio_rate)).astype(np.float32)
            step = 1024
            for s in range(0, n, step):
                chunk = sig[s:s + step][None, :]
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate = audio_rate
                af.pts = s
                for pkt in as_.encode(af):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
    return path


def write_ramp_wav(path: Path, duration_s: float, rate: int = 16000) -> np.ndarray:
    """Write a mono WAV whose sample n equals n / (rate * duration_s) * 0.9 (float, exact in
    32-bit float WAV). Returns the samples."""
    import soundfile as sf

    n = int(round(duration_s * rate))
    x = (np.arange(n) / n * 0.9).astype(np.float32)
    sf.write(str(path), x, rate, subtype="FLOAT")
    return x


def decode_indices(path: Path) -> list[int]:
    """Decode every frame of a video and read back its index."""
    import av

    with av.open(str(path)) as c:
        return [decode_index(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def write_frames_video(path: Path, frames: np.ndarray, fps: int = 25, crf: int = 10) -> Path:
    """Write ``(N, H, W, 3)`` uint8 RGB frames as an H.264 mp4."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.height, vs.width = frames.shape[1:3]
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "ultrafast"}
        for f in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path
