"""``reactcli evaluate``: score generated reactions with the REACT metrics (thin layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import numpy as np
import typer

from reactcli.cli.common import handle_errors, out
from reactcli.errors import ConfigError, InputError

app = typer.Typer(help="Score generated listener reactions with the REACT challenge metrics.",
                  no_args_is_help=True)


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found (expected a .npy array)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{path}: cannot read {what} as a .npy array ({exc})") from None


@app.command("arrays")
@handle_errors
def arrays(
    pred: Path = typer.Option(..., "--pred", help="Generated reactions P, .npy of shape (N, K, T, D)."),
    listener: Path = typer.Option(..., "--listener", help="Real listener reactions L, .npy (N, T, D)."),
    speaker: Path = typer.Option(..., "--speaker", help="Speaker behaviour S, .npy (N, T, D) (FRSyn)."),
    appropriate: Path = typer.Option(..., "--appropriate", help="Appropriateness matrix A, .npy (N, N) 0/1."),
    out_path: Path = typer.Option(..., "--out", help="Where to write the metrics JSON."),
    compat: Literal["default", "official"] = typer.Option("default", "--compat", help="default | official (FRSyn quirks only)."),
    feature: Literal["emotion", "tdmm"] = typer.Option("emotion", "--feature", help="emotion (3 grouped DTWs) | tdmm (one DTW)."),
    allow_single_sample: bool = typer.Option(False, "--allow-single-sample", help="Accept K = 1 (FRDiv = 0)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads for the compiled kernels."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights",
                                                     help="Local InceptionV3 weights for FRRea (FID)."),
    real_frames: Optional[Path] = typer.Option(None, "--real-frames", help="Directory of real listener frames."),
    fake_frames: Optional[Path] = typer.Option(None, "--fake-frames", help="Directory of generated frames."),
    frame_stride: int = typer.Option(30, "--frame-stride", help="Use every n-th frame for FID (official: 30; 1 for folders from `render --fid-frames`)."),
    fid_preprocess: Literal["pytorch-fid", "tensorflow"] = typer.Option("pytorch-fid", "--fid-preprocess", help="FRRea resizing: pytorch-fid (the challenge's) or tensorflow (the original TF FID)."),
    name: str = typer.Option("predictions", "--name", help="Row label in the printed table."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Score the first N frames of every array (e.g. 750: the challenge's 751-frame ground truth against 750-frame predictions)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="The checkpoint that generated --pred: its SHA-256 is recorded in the JSON (provenance)."),
    generation_seed: Optional[int] = typer.Option(None, "--generation-seed", help="The seed that generated --pred (recorded in the JSON)."),
) -> None:
    """Compute all metrics from .npy arrays, write JSON atomically, print a table."""
    from reactcli.io import check_output

    check_output(out_path, "--out")
    from reactcli.metrics import evaluate_arrays
    from reactcli.metrics.report import print_table, write_report

    fid = None
    if real_frames is not None or fake_frames is not None:
        if real_frames is None or fake_frames is None:
            raise ConfigError("FRRea needs both --real-frames and --fake-frames")
        from reactcli.metrics.fid import fid_from_frames

        fid = fid_from_frames(real_frames, fake_frames, inception_weights, stride=frame_stride,
                              preprocess=fid_preprocess)
    P, L, S = _load_npy(pred, "predictions"), _load_npy(listener, "listener"), _load_npy(speaker, "speaker")
    if frames is not None:
        for path, arr, axis in ((pred, P, 2), (listener, L, 1), (speaker, S, 1)):
            if arr.ndim > axis and arr.shape[axis] < frames:
                raise InputError(f"{path}: {arr.shape[axis]} frames, fewer than --frames {frames}")
        P, L, S = P[:, :, :frames], L[:, :frames], S[:, :frames]
    metrics = evaluate_arrays(
        P,
        L,
        S,
        _load_npy(appropriate, "appropriateness"),
        feature=feature,
        compat=compat,
        num_threads=threads,
        fid=fid,
        allow_single_sample=allow_single_sample,
    )
    if fid is not None:
        metrics["FRRea_detail"] = fid
    if checkpoint is not None and not checkpoint.is_file():
        raise InputError(f"{checkpoint}: --checkpoint file not found")
    from reactcli.models.checkpoint import sha256_of

    sha256 = sha256_of(checkpoint) if checkpoint is not None else None
    metrics["generation"] = {"checkpoint": str(checkpoint) if checkpoint else None, "checkpoint_sha256": sha256,
                             "seed": generation_seed, "options": None}
    metrics["seed"], metrics["checkpoint_sha256"] = generation_seed, sha256
    write_report(metrics, out_path)
    print_table({name: metrics}, out)
    out.print(f"wrote {out_path}")
