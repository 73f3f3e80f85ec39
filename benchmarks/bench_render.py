"""Benchmark the render stage: face2d frames/s, and seconds to compose one item's video.

Builds a tiny REACT work directory (placeholder media, so every panel is drawn from features,
the slowest path) with one generation run of K samples x 750 frames, then times
(1) face2d alone at the panel and cell sizes and (2) ``render_items`` for one item (speaker +
K-sample grid + listener, encoded with x264). Run:

    .venv/bin/python benchmarks/bench_render.py [--size 128] [--samples 10] [--frames 750]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--frames", type=int, default=750)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from reactcli.corpora.react import ReactConfig, prepare_react
    from reactcli.generation.store import write_generated
    from reactcli.render.face2d import render_sequence
    from reactcli.render.video import RenderConfig, grid_layout, render_items
    from reactcli.synthetic.react_layout import write_tiny_react
    from reactcli.manifest.items import load_items

    rng = np.random.default_rng(0)
    T, K = args.frames, args.samples
    emo = rng.random((T, 25)).astype(np.float32)
    lay = grid_layout(K, args.size)
    for size in sorted({args.size, lay.cell}):
        t0 = time.perf_counter()
        render_sequence(emo, None, size)
        dt = time.perf_counter() - t0
        print(f"face2d {size}x{size}: {T / dt:,.0f} frames/s")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = write_tiny_react(tmp / "root", pairs_per_split=1, frames=T + 1, splits=("test",))
        work = tmp / "work"
        prepare_react(root, work, ReactConfig(frames=T + 1, splits=("test",)))
        table = load_items(work, "test")
        batches = (([i], {"emotion": rng.random((1, K, T, 25)).astype(np.float32),
                          "tdmm": (0.1 * rng.standard_normal((1, K, T, 58))).astype(np.float32)})
                   for i in range(table.n))
        write_generated(work, "bench", "test", table, batches, num_samples=K, seed=0, meta={})
        t0 = time.perf_counter()
        (p,) = render_items(work, "bench", "test", [0], RenderConfig(size=args.size, audio=False))
        dt = time.perf_counter() - t0
        panels = 2 + K
        print(f"render one item ({T} frames, {panels} panels, {lay.width}x{lay.height}): {dt:.1f} s "
              f"= {T / dt:.0f} video frames/s = {T / 25 / dt:.2f}x real time; {p.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
