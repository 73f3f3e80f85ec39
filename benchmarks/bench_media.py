"""Benchmark clip cutting (re-encode, stream copy) and MFCC extraction on this machine.

Builds a synthetic 256x256, 25 fps session with a 44.1 kHz audio track, cuts 30 s / 751-frame
clips and extracts the 78-d MFCC, and prints each as seconds per clip and multiples of real
time (clip seconds processed per wall-clock second). Run:

    .venv/bin/python benchmarks/bench_media.py [--session-s 95] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_session(path: Path, seconds: float, size: int = 256, fps: int = 25, sr: int = 44100) -> Path:
    """A moving-gradient video with a noise+tone AAC track (keyframe every 250 frames)."""
    import av

    n = int(seconds * fps)
    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "ultrafast", "g": "250"}
        as_ = out.add_stream("aac", rate=sr)
        as_.layout = "mono"
        for i in range(n):
            img = np.stack([(xx + 3 * i) % 256, (yy + 2 * i) % 256, (xx + yy + i) % 256], -1).astype(np.uint8)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        total = int(seconds * sr)
        t = np.arange(total) / sr
        sig = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(total)).astype(np.float32)
        for s in range(0, total, 1024):
            af = av.AudioFrame.from_ndarray(sig[None, s:s + 1024], format="flt", layout="mono")
            af.sample_rate = sr
            af.pts = s
            af.time_base = Fraction(1, sr)
            for pkt in as_.encode(af):
                out.mux(pkt)
        for pkt in as_.encode():
            out.mux(pkt)
    return path


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from reactcli.features import get_extractor
    from reactcli.features.registry import ClipInputs
    from reactcli.media.clip import ClipConfig, cut_clip, plan_clips
    from reactcli.media.probe import probe

    ap = argparse.ArgumentParser()
    ap.add_argument("--session-s", type=float, default=95.0)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args(argv)
    clip_s = 751 / 25
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t0 = time.perf_counter()
        src = make_session(d / "session.mp4", a.session_s)
        print(f"synthetic session: {probe(src).duration_s:.1f} s, built in {time.perf_counter() - t0:.1f} s")
        spans = [s for s in plan_clips(a.session_s, min_remainder_s=None) if s.start + clip_s <= a.session_s]
        rows = []
        for label, cfg, audio in [
            ("cut video, re-encode (libx264 veryfast)", ClipConfig(), False),
            ("cut video, stream copy", ClipConfig(mode="copy"), False),
            ("cut audio -> 16 kHz WAV", ClipConfig(), True),
            ("cut audio -> 44.1 kHz WAV", ClipConfig(sample_rate=44100), True),
        ]:
            times = []
            for _ in range(a.repeats):
                for s in spans:
                    t = time.perf_counter()
                    if audio:
                        cut_clip(src, s.start, audio_out=d / f"{s.index}_{cfg.sample_rate}.wav", config=cfg)
                    else:
                        cut_clip(src, s.start, video_out=d / f"{s.index}_{cfg.mode}.mp4", config=cfg)
                    times.append(time.perf_counter() - t)
            rows.append((label, float(np.median(times))))
        for sr in (16000, 44100):
            ext = get_extractor("mfcc")
            wav = d / f"1_{sr}.wav"
            times = []
            for _ in range(max(3, a.repeats)):
                t = time.perf_counter()
                ext.extract(ClipInputs("bench", audio=wav, num_frames=751))
                times.append(time.perf_counter() - t)
            rows.append((f"MFCC 78-d from {sr} Hz WAV (incl. read)", float(np.median(times))))
        print(f"{'stage':45s} {'s/clip':>8s} {'x real time':>12s}")
        for label, s in rows:
            print(f"{label:45s} {s:8.3f} {clip_s / s:12.1f}")


if __name__ == "__main__":
    main()
