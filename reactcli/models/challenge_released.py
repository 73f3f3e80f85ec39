"""``reactcli import transvae`` / ``reactcli import belfusion``: the REACT challenge's released
baseline checkpoints as reactcli runs.

The authors' layout is read by :func:`reactcli.models.transvae.load_released_transvae` and
:func:`reactcli.models.belfusion.load_released_belfusion` (strict: every tensor used, every shape
checked, one named error otherwise); the module they return is written as ``WORK/runs/RUN/model.pt``
in reactcli's one checkpoint format (:mod:`reactcli.models.checkpoint`, registry names
``transvae`` and ``belfusion-diffusion``) with ``import.json`` (the source files' SHA-1, the
authors' commit, the settings). The run folder appears whole or not at all.

* BeLFusion: the stage-2 ``checkpoint_*.pth`` (its ``config.yaml`` beside it names the stage-1
  checkpoint; or give it) -> one self-contained checkpoint (denoiser, frozen autoencoder, latent
  statistics), which ``reactcli generate`` samples from the stored speaker emotion.
* Trans-VAE: the released ``best_checkpoint.pth`` -> a checkpoint with the authors' video encoder
  (raw 224x224 speaker frames). reactcli loads it and reproduces the authors' outputs from frames
  (``TransVAE.generate(..., speaker_video=...)``), but its stores hold no frames, so
  ``reactcli generate`` refuses it with a named error; a Trans-VAE trained by reactcli encodes the
  stored speaker features instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.io import atomic_directory, write_json
from reactcli.models.checkpoint import save_checkpoint, sha1_of

__all__ = ["AUTHORS_COMMIT", "import_released_transvae", "import_released_belfusion"]

AUTHORS_COMMIT = "c5a8ff8563284e311f89fdf10558f3ae8f0082dd"
"""The reactmultimodalchallenge/baseline_react2023 commit whose layout the loaders read."""


def _check_run(run: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run):
        raise ConfigError(f"--run {run!r}: use letters, digits, '.', '_' and '-'")


def _write(run_dir: Path, payload: dict[str, Any], record: dict[str, Any], overwrite: bool) -> Path:
    """``model.pt`` and ``import.json`` into a temporary folder beside ``run_dir``, renamed into place."""
    with atomic_directory(run_dir, overwrite) as tmp:
        save_checkpoint(tmp / "model.pt", payload)
        write_json(tmp / "import.json", record)
    return run_dir


def _record(model: str, sources: dict[str, Path], settings: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "source": {k: {"path": str(p.resolve()), "sha1": sha1_of(p)} for k, p in sources.items()},
            "authors_commit": AUTHORS_COMMIT, "settings": settings, "reactcli_version": reactcli.__version__}


def _pth(source: Path, what: str) -> Path:
    """A checkpoint file, or the newest ``checkpoint_*.pth`` / ``best_checkpoint.pth`` of a folder."""
    if source.is_file():
        return source
    if source.is_dir():
        found = sorted(source.glob("best_checkpoint.pth")) or sorted(
            source.glob("checkpoint_*.pth"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
        if found:
            return found[-1]
        raise InputError(f"{source}: no best_checkpoint.pth or checkpoint_*.pth in this folder (expected {what})")
    raise InputError(f"{source}: not found (expected {what})")


def import_released_transvae(source: str | os.PathLike, work: str | os.PathLike, run: str, *,
                             online: bool | None = None, generate_window: int = 8, n_heads: int = 4,
                             overwrite: bool = False) -> Path:
    """The released Trans-VAE ``source`` (a ``.pth`` or its folder) -> ``WORK/runs/RUN/model.pt``."""
    from reactcli.models.transvae import load_released_transvae

    _check_run(run)
    if generate_window < 1 or n_heads < 1:
        raise ConfigError("--generate-window and --heads must be >= 1")
    path = _pth(Path(source), "the released Trans-VAE checkpoint")
    model = load_released_transvae(path, online=online, generate_window=generate_window, n_heads=n_heads)
    settings = {"online": model.config.online, "generate_window": generate_window, "n_heads": n_heads}
    record = _record("transvae", {"checkpoint": path}, settings)
    payload = {"model": "transvae", "config": model.config.to_dict(), "state_dict": model.state_dict(),
               "run": run, "released": record}
    return _write(Path(work) / "runs" / run, payload, record, overwrite)


def import_released_belfusion(source: str | os.PathLike, work: str | os.PathLike, run: str, *,
                              autoencoder: str | os.PathLike | None = None, online: bool | None = None,
                              overwrite: bool = False) -> Path:
    """The released BeLFusion stage 2 ``source`` (a ``.pth`` or its run folder) and its stage 1
    (``autoencoder``, default: the one its ``config.yaml`` names) -> ``WORK/runs/RUN/model.pt``."""
    from reactcli.models.belfusion import load_released_belfusion
    from reactcli.models.belfusion.released import _arch_args, _find_autoencoder

    _check_run(run)
    path = _pth(Path(source), "the released BeLFusion stage-2 (LDM) checkpoint")
    ae = _pth(Path(autoencoder), "the released BeLFusion stage-1 (VAE) checkpoint") if autoencoder is not None \
        else _find_autoencoder(path, _arch_args(path.parent))
    model = load_released_belfusion(path, ae, online=online)
    record = _record("belfusion-diffusion", {"checkpoint": path, "autoencoder": ae}, {"online": model.config.online})
    payload = {"model": "belfusion-diffusion", "config": model.config.to_dict(), "state_dict": model.state_dict(),
               "run": run, "released": record}
    return _write(Path(work) / "runs" / run, payload, record, overwrite)
