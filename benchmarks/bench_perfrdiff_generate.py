"""Benchmark PerFRDiff generation: batched K samples vs the authors' sequential pattern.

Measures, for one 750-frame clip with K = 10 samples and classifier-free guidance:

1. ``reactcli``'s :func:`generate`: K samples x 15 windows x (cond, uncond) in ONE batch per
   DDIM step (windows depend only on speaker windows, never on generated output, so they can
   all be denoised together);
2. the authors' pattern: 10 sequential runs with batch 1, each walking the 15 windows one after
   another (same network, same number of steps; only the batching differs);
3. the same as 1 but 10 sequential ``generate(num_samples=1)`` calls (isolates the K batching);
4. the parameter count of the low-rank (rank 8) vs full-rank PWSG editor at paper size;
5. the wall time of 1 at the paper's sizes and the requested number of DDIM steps, for each
   patch size P in ``--frames-per-token`` (reaction frames per denoiser token) and each
   ``--precision`` (the dtype the denoiser runs in: fp32, or bf16, which CPUs with AVX512-BF16 /
   AMX and bf16 GPUs run several times faster), with the analytic TFLOP of 50 guided steps
   beside the 1.78 TFLOP the PerFRDiff supplementary reports, and bf16's mean deviation from
   the fp32 output of the same seed (relative to the output's mean magnitude). Items 1-3 use
   the first P of the list, in fp32; item 1 is also timed in each other precision, against the
   authors' pattern in fp32 (their code's precision).

Per-step cost is constant, so the comparison (1-3) can run with fewer steps (``--compare-steps``)
and still give the right ratio. Usage::

    python benchmarks/bench_perfrdiff_generate.py                 # paper size, 50 steps, P = 1, 10, 25, fp32 and bf16
    python benchmarks/bench_perfrdiff_generate.py --steps 10 --compare-steps 2 --frames-per-token 10
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from reactcli.models.perfrdiff import GAFRG, GAFRGConfig, PWSGConfig, editor_parameter_count, generate, make_scheduler
from reactcli.models.perfrdiff.diffusion import guided
from reactcli.models.perfrdiff.gafrg import window_starts
from reactcli.models.perfrdiff.pwsg import resolve_layer_names


def authors_pattern(model: GAFRG, audio, emotion, tdmm, num_samples: int, steps: int, guidance: float,
                    seed: int, device: torch.device, recompute_conditions: bool = True) -> torch.Tensor:
    """K sequential runs of batch 1, each window after the other (the released code's loop).

    ``recompute_conditions``: like the released denoiser (a standard transformer decoder whose
    forward takes the encoded conditions as memory), the speaker encoders and the cross-attention
    key/value projections of the memory run inside every denoising step. ``False`` gives the
    charitable variant that computes them once per window (as ``generate`` does). Neither variant
    runs the released config's prior, whose output the decoder discards: its cost is not counted.
    """
    cfg = model.config
    w = cfg.window
    t_len = audio.shape[1]
    starts = window_starts(t_len, w, w)
    gen = torch.Generator().manual_seed(seed)
    samples = []
    with torch.inference_mode():
        null = model.encode_speaker(*(torch.zeros(1, w, x.shape[-1], device=device) for x in (audio, emotion, tdmm)))
        for _ in range(num_samples):
            windows = []
            for s in starts:
                win = model.speaker_windows(audio, emotion, tdmm, torch.tensor([s], device=device))
                mem = torch.cat([model.encode_speaker(*win), null])  # (2, S, d): cond, uncond
                kv = model.static_kv(mem)
                sch = make_scheduler()
                sch.set_timesteps(steps, device=device)
                x = torch.randn(1, w, cfg.reaction_dim, generator=gen).to(device)
                for t in sch.timesteps.tolist():
                    if recompute_conditions:
                        zeros = [torch.zeros_like(v) for v in win]
                        kv = model.static_kv(torch.cat([model.encode_speaker(*win), model.encode_speaker(*zeros)]))
                    out = model(x.expand(2, -1, -1), torch.tensor([t], device=device), kv, group=1)
                    x = sch.step(guided(out[:1], out[1:], guidance), t, x).prev_sample
                windows.append(x)
            samples.append(torch.cat(windows, dim=1)[:, :t_len])
    return torch.stack(samples, dim=1)


def flops_per_step(model: GAFRG, samples: int, windows: int, guidance: bool) -> float:
    """Analytic FLOPs of one batched denoiser call (matmuls and attention only).

    The speaker memory's keys/values are computed once per generation (not per step) and are not
    counted; the time token's are, once per memory row."""
    cfg = model.config
    d, f, w = cfg.d_model, cfg.ffn_dim, cfg.window
    length = w // cfg.frames_per_token  # query tokens per window
    mem = 1 + model.memory_length  # time token + speaker memory
    per_token = 3 * d * d + 3 * d * d + 2 * d * f + 2 * (length + mem) * d  # qkv, out, cross q/out, FFN, scores
    branches = 2 if guidance else 1
    per_row = 2 * d * d  # time-token cross-attention keys/values, one per (window, branch) and layer
    time_in = d * d if cfg.time_on_queries else 0  # time -> query tokens, once per (window, branch)
    io = 2 * d * cfg.frames_per_token * cfg.reaction_dim  # input projection + output head per token
    tokens = samples * windows * length * branches
    rows = windows * branches
    return 2.0 * ((per_token * cfg.num_layers + io) * tokens + (per_row * cfg.num_layers + time_in) * rows)


def _timed(fn, device: torch.device) -> tuple[float, object]:
    """Seconds ``fn()`` took (the device synchronised on both ends) and what it returned."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def _time(fn, device: torch.device) -> float:
    return _timed(fn, device)[0]


def _warm_up(model: GAFRG, audio, emotion, tdmm, precision: str = "fp32") -> None:
    """One tiny generation, so that kernel set-up (bf16 kernels on first use) is not timed."""
    generate(model, audio[:, :100], emotion[:, :100], tdmm[:, :100], num_samples=2, steps=1, generator=0,
             precision=precision)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=750)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50, help="DDIM steps for the paper-size timing")
    ap.add_argument("--compare-steps", type=int, default=5, help="DDIM steps for the batched vs sequential comparison")
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-paper", action="store_true", help="skip the full-steps timing (5.)")
    ap.add_argument("--skip-authors", action="store_true", help="skip the authors'-pattern timing")
    ap.add_argument("--frames-per-token", default="1,10,25",
                    help="comma-separated patch sizes P (GAFRGConfig.frames_per_token; 1 = one token per "
                         "frame) timed at --steps; the batched-vs-sequential comparison uses the first")
    ap.add_argument("--precision", default="fp32,bf16",
                    help="comma-separated generation precisions (fp32, bf16) timed at --steps for every P")
    ap.add_argument("--size", choices=("paper", "recipe"), default="paper",
                    help="GAFRG size: paper (d 512, 7 layers, FFN 1024) or the synthetic recipe's "
                         "(d 64, 2 layers, FFN 128, pipelines/synthetic/perfrdiff-gafrg.yaml)")
    ap.add_argument("--time-on-queries", action="store_true",
                    help="build the GAFRGs with GAFRGConfig.time_on_queries (the synthetic recipe's setting)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    size = {} if args.size == "paper" else dict(d_model=64, num_layers=2, num_heads=4, ffn_dim=128, emotion_hidden=64)
    patches = [int(p) for p in args.frames_per_token.split(",")]
    precisions = args.precision.split(",")

    def build(patch: int) -> GAFRG:
        torch.manual_seed(0)
        return GAFRG(GAFRGConfig(**size, frames_per_token=patch, time_on_queries=args.time_on_queries)).to(dev).eval()

    model = build(patches[0])
    g = torch.Generator().manual_seed(1)
    audio = torch.randn(1, args.frames, 78, generator=g).to(dev)
    emotion = torch.rand(1, args.frames, 25, generator=g).to(dev)
    tdmm = torch.randn(1, args.frames, 58, generator=g).to(dev)
    k, cs = args.samples, args.compare_steps
    res: dict[str, object] = {"size": args.size, "device": str(dev), "threads": torch.get_num_threads(), "frames": args.frames,
                              "samples": k, "frames_per_token": patches[0], "time_on_queries": args.time_on_queries,
                              "gafrg_params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)}

    _warm_up(model, audio, emotion, tdmm)
    nw = len(window_starts(args.frames, model.config.window, model.config.window))
    res["gflop_per_ddim_step"] = round(flops_per_step(model, k, nw, args.guidance != 1.0) / 1e9, 1)
    res["compare_steps"] = cs
    res["batched_s"] = _time(lambda: generate(model, audio, emotion, tdmm, num_samples=k, steps=cs,
                                              guidance=args.guidance, generator=0), dev)
    res["sequential_k1_s"] = _time(lambda: [generate(model, audio, emotion, tdmm, num_samples=1, steps=cs,
                                                     guidance=args.guidance, generator=i) for i in range(k)], dev)
    res["speedup_vs_sequential_k1"] = res["sequential_k1_s"] / res["batched_s"]
    if not args.skip_authors:
        res["authors_pattern_s"] = _time(lambda: authors_pattern(model, audio, emotion, tdmm, k, cs, args.guidance,
                                                                 0, dev), dev)
        res["speedup_vs_authors_pattern"] = res["authors_pattern_s"] / res["batched_s"]
        res["authors_pattern_cached_conditions_s"] = _time(lambda: authors_pattern(
            model, audio, emotion, tdmm, k, cs, args.guidance, 0, dev, recompute_conditions=False), dev)
        res["speedup_vs_authors_cached_conditions"] = res["authors_pattern_cached_conditions_s"] / res["batched_s"]
    for prec in precisions:
        if prec == "fp32":
            continue  # the rows above
        _warm_up(model, audio, emotion, tdmm, prec)
        res[f"batched_{prec}_s"] = _time(lambda prec=prec: generate(
            model, audio, emotion, tdmm, num_samples=k, steps=cs, guidance=args.guidance, generator=0,
            precision=prec), dev)
        if not args.skip_authors:  # the authors' code runs in fp32
            res[f"speedup_{prec}_vs_authors_pattern"] = res["authors_pattern_s"] / res[f"batched_{prec}_s"]

    shapes = model.editable_layers()
    names = resolve_layer_names(PWSGConfig().layers, model.config)
    sel = {n: shapes[n] for n in names}
    res["editor_layers"] = names
    res["editor_params_rank8"] = editor_parameter_count(sel, 8)
    res["editor_params_full"] = editor_parameter_count(sel, None)
    res["editor_full_over_rank8"] = res["editor_params_full"] / res["editor_params_rank8"]

    if not args.skip_paper:
        res["steps"] = args.steps
        res["tflop_paper_reported"] = 1.78  # PerFRDiff supplementary, ten 750 x 25 reactions, 50 steps
        timing = {}
        for p in patches:
            m = model if p == patches[0] else build(p)
            gflop = flops_per_step(m, k, nw, args.guidance != 1.0) / 1e9
            outs = {}
            for prec in precisions:
                _warm_up(m, audio, emotion, tdmm, prec)
                secs, outs[prec] = _timed(lambda m=m, prec=prec: generate(
                    m, audio, emotion, tdmm, num_samples=k, steps=args.steps, guidance=args.guidance, generator=0,
                    precision=prec), dev)
                # compute-bound check: the sustained rate, and the seconds 50 steps need at that rate
                row = {"tflop_at_50_steps": round(gflop * 50 / 1e3, 2), "s_at_steps": round(secs, 2),
                       "achieved_gflop_per_s": round(gflop * args.steps / secs, 1),
                       "projected_s_at_50_steps": round(secs * 50 / args.steps, 1)}
                if prec != "fp32" and "fp32" in outs:
                    ref = outs["fp32"]
                    row["mean_abs_diff_vs_fp32_rel"] = round(float((outs[prec] - ref).abs().mean() / ref.abs().mean()), 4)
                    row["speedup_vs_fp32"] = round(timing[f"P={p} fp32"]["s_at_steps"] / secs, 2)
                timing[f"P={p} {prec}"] = row
        res["paper_size_generation"] = timing
    print(json.dumps({key: (round(v, 3) if isinstance(v, float) else v) for key, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
