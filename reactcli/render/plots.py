"""Feature curves over time: speaker vs the K generated samples vs the real listener.

Why: a video shows *whether* a reaction looks plausible; a curve shows *when* it moves relative
to the speaker (a lagged copy, a flat line, samples that all agree...). One subplot per chosen
feature dimension, time in seconds on a shared x axis: the speaker in grey, each sample as a
thin coloured line plus their mean in bold, the real listener in black dashes.

Drawn with matplotlib's Agg backend (no display needed) and saved atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from reactcli.errors import InputError
from reactcli.io import atomic_path

__all__ = ["plot_curves", "curves_figure", "plot_items", "plot_velocity", "DEFAULT_EMOTION_DIMS"]


def _check(speaker, samples, listener, dims) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    spk = np.asarray(speaker, np.float64)
    smp = np.asarray(samples, np.float64)
    lis = np.asarray(listener, np.float64)
    if smp.ndim == 2:
        smp = smp[None]
    if spk.ndim != 2 or lis.ndim != 2 or smp.ndim != 3:
        raise InputError(f"plot: expected speaker (T, D), samples (K, T, D), listener (T, D); got {spk.shape}, {smp.shape}, {lis.shape}")
    T, D = lis.shape
    if spk.shape[1] != D or smp.shape[2] != D:
        raise InputError(f"plot: feature sizes differ: speaker {spk.shape[1]}, samples {smp.shape[2]}, listener {D}")
    for name, a in (("speaker", spk), ("samples", smp), ("listener", lis)):
        if not np.isfinite(a).all():
            raise InputError(f"plot: {name} contains NaN or inf")
    dims = list(range(D)) if dims is None else [int(d) for d in dims]
    bad = [d for d in dims if not 0 <= d < D]
    if bad or not dims:
        raise InputError(f"plot: dims {bad or dims} are outside 0..{D - 1}")
    return spk, smp, lis, dims


def curves_figure(
    speaker: np.ndarray,
    samples: np.ndarray,
    listener: np.ndarray,
    dims: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    fps: float = 25.0,
    title: str | None = None,
):
    """The matplotlib Figure behind :func:`plot_curves` (for notebooks and tests).

    Each axis holds, in order: the speaker line, the K sample lines, the sample mean, the
    listener line (the ``gid`` of every line says which it is). Different lengths are drawn as
    they are (each against its own time axis).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    spk, smp, lis, dims = _check(speaker, samples, listener, dims)
    D = lis.shape[1]
    if names is not None and len(names) != D:
        raise InputError(f"plot: {len(names)} names for {D} feature dimensions")
    fig = Figure(figsize=(10, 1.6 * len(dims) + 0.6), dpi=100)
    axes = fig.subplots(len(dims), 1, sharex=True, squeeze=False)[:, 0]
    colours = matplotlib.colormaps["tab10"]
    for ax, d in zip(axes, dims):
        ax.plot(np.arange(spk.shape[0]) / fps, spk[:, d], color="0.6", lw=1.2, label="speaker", gid="speaker")
        for k in range(smp.shape[0]):
            ax.plot(np.arange(smp.shape[1]) / fps, smp[k, :, d], color=colours(k % 10), lw=0.7, alpha=0.6,
                    label="samples" if k == 0 else None, gid=f"sample{k}")
        ax.plot(np.arange(smp.shape[1]) / fps, smp[:, :, d].mean(0), color="tab:red", lw=1.8, label="sample mean", gid="mean")
        ax.plot(np.arange(lis.shape[0]) / fps, lis[:, d], color="black", lw=1.4, ls="--", label="real listener", gid="listener")
        ax.set_ylabel(names[d] if names is not None else f"dim {d}", rotation=0, ha="right", va="center")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7, ncol=4)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(
    speaker: np.ndarray,
    samples: np.ndarray,
    listener: np.ndarray,
    dims: Sequence[int] | None,
    names: Sequence[str] | None,
    out_png: str | os.PathLike,
    fps: float = 25.0,
    title: str | None = None,
) -> Path:
    """Save a PNG of the chosen feature dimensions over time; returns its path.

    Args:
        speaker: ``(T, D)`` speaker features.
        samples: ``(K, T, D)`` generated reactions (``(T, D)`` is taken as K = 1).
        listener: ``(T, D)`` real listener reaction.
        dims: dimension indices to plot (None: all D).
        names: a name for every one of the D dimensions (e.g. ``face2d.EMOTION_NAMES``), or None.
        out_png: output file.
    """
    fig = curves_figure(speaker, samples, listener, dims, names, fps, title)
    out = Path(out_png)
    with atomic_path(out, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png")
    return out


#: Emotion dimensions plotted when none are chosen: smile, lips part, valence, arousal.
DEFAULT_EMOTION_DIMS = (7, 13, 15, 16)


def plot_items(
    work: str | os.PathLike,
    run: str,
    split: str,
    items: Sequence[int] | None = None,
    *,
    feature: str = "emotion",
    dims: Sequence[int] | None = None,
    out_dir: str | os.PathLike | None = None,
    num_items: int | None = None,
) -> list[Path]:
    """One curves PNG per item of a generation run: ``<work>/plots/<run>/<split>/<index>.png``.

    Speaker and real listener come from the feature store, the samples from the run; all are
    cut to the generated length.
    """
    from reactcli.render.face2d import EMOTION_NAMES
    from reactcli.render.video import clip_features, generated_features, load_run, select_items
    from reactcli.storage import FeatureStore

    if feature not in ("emotion", "tdmm"):
        raise InputError(f"plot feature {feature!r}: expected emotion or tdmm")
    store = FeatureStore(work)
    out = Path(out_dir) if out_dir else Path(work) / "plots" / run / split
    if dims is None:
        dims = DEFAULT_EMOTION_DIMS if feature == "emotion" else (0, 1, 52, 53)
    names = list(EMOTION_NAMES) if feature == "emotion" else (
        [f"exp{i}" for i in range(52)] + ["pitch", "yaw", "roll", "tx", "ty", "tz"])
    paths = []
    for rec in select_items(load_run(work, run, split), items, num_items):
        gen, T = generated_features(store, rec, None)
        if feature not in gen:
            raise InputError(f"run {run!r} stores no {feature!r} for item {split}/{rec.index}")
        spk = clip_features(store, rec.speaker, T)[0 if feature == "emotion" else 1]
        lis = clip_features(store, rec.listener, T)[0 if feature == "emotion" else 1]
        if spk is None or lis is None:
            raise InputError(f"item {split}/{rec.index}: speaker or listener has no stored {feature!r}")
        paths.append(plot_curves(spk, gen[feature], lis, dims, names, out / f"{rec.index}.png",
                                 title=f"{run} {split}/{rec.index}: {rec.speaker} -> {rec.listener}"))
    return paths


def plot_velocity(
    profiles: dict[str, np.ndarray],
    out_png: str | os.PathLike,
    *,
    real: str = "real listeners",
    fps: float = 25.0,
    frames: int | None = 250,
    title: str | None = None,
) -> Path:
    """Frame-to-frame speed over time, one line per run: where a generator jumps at its window
    edges, its line spikes at every edge (and lies flat in between) while the real listeners' does
    not.

    Args:
        profiles: name -> ``(T - 1,)`` mean speed of each transition (e.g.
            :func:`reactcli.metrics.naturalness.speed_profile`); the entry named ``real`` is drawn
            in black on top.
        out_png: output file.
        frames: transitions drawn (the first ``frames``; None: all), so window edges stay visible.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if not profiles:
        raise InputError("velocity plot: no profile to draw")
    fig = Figure(figsize=(9.5, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    colours = matplotlib.colormaps["tab10"]
    for i, (name, prof) in enumerate(sorted(profiles.items(), key=lambda kv: kv[0] == real)):
        y = np.asarray(prof, np.float64)[:frames]
        t = (np.arange(y.size) + 1) / fps  # transition t -> t + 1 drawn at the frame it enters
        if name == real:
            ax.plot(t, y, color="black", lw=2.0, label=name, gid=name)
        else:
            ax.plot(t, y, color=colours(i % 10), lw=1.1, label=name, gid=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean |x(t+1) - x(t)|")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title or "frame-to-frame velocity, mean over items and samples")
    fig.tight_layout()
    out = Path(out_png)
    with atomic_path(out, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return out
