"""Time ReactFace generation: O(T) fast path vs the per-window prefix re-encoding reference.

Same model (default config, random weights: timing does not depend on training), same inputs,
same seed, same process; checks the two outputs agree and prints the speed-up.

    python benchmarks/bench_reactface_generate.py [--frames 750] [--samples 10] [--window 8]
        [--audio-dim 78] [--threads N] [--device cpu] [--skip-reference]

Targets (2-core CPU): fast path <= 5 s for 750 frames x 10 samples, ratio >= 10x.
"""

from __future__ import annotations

import argparse
import time

import torch

from reactcli.models.reactface import ReactFace, ReactFaceConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=750)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--audio-dim", type=int, default=78)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="fast-path repeats; the best is reported")
    ap.add_argument("--skip-reference", action="store_true", help="time the fast path only")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ReactFace(ReactFaceConfig(audio_dim=args.audio_dim)).eval().to(args.device)
    g = torch.Generator().manual_seed(0)
    b, t = args.clips, args.frames
    audio = torch.randn(b, t, args.audio_dim, generator=g)
    emo = torch.rand(b, t, 25, generator=g)
    tdmm = torch.randn(b, t, 58, generator=g) * 0.1
    kw = dict(num_samples=args.samples, window=args.window, seed=0, device=args.device)

    def timed(fn):  # noqa: ANN001, ANN202
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn(audio, emo, tdmm, **kw)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    model.generate(audio[:, :32], emo[:, :32], tdmm[:, :32], **kw)  # warm-up
    fast_times, fast = [], None
    for _ in range(args.repeats):
        dt, fast = timed(model.generate)
        fast_times.append(dt)
    fast_t = min(fast_times)
    print(
        f"device={args.device} threads={torch.get_num_threads()} clips={b} frames={t} "
        f"samples={args.samples} window={args.window} audio_dim={args.audio_dim}"
    )
    print(f"fast path (encode once, cached history): {fast_t:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in fast_times)})")
    if args.skip_reference:
        return
    slow_t, slow = timed(model.generate_reencode_prefix)
    diff = max((fast[h] - slow[h]).abs().max().item() for h in fast)
    print(f"reference (re-encode prefix every window): {slow_t:.2f} s")
    print(f"speed-up: {slow_t / fast_t:.1f}x   max |fast - reference| = {diff:.2e}")


if __name__ == "__main__":
    main()
