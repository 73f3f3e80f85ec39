"""Checkpoint format shared by every model.

A checkpoint is one ``torch.save`` dict written atomically:

- ``model``: registry name (``reactface``, ``perfrdiff-gafrg``, ...);
- ``build``: the model's constructor arguments (``model.config_dict()``), so
  :func:`load_model` rebuilds it without the training config;
- ``state_dict``; ``optimizer``/``epoch``/``step``/``rng`` for resuming;
- ``config``: the resolved training config; ``inputs``: the manifests and matrices read, with
  their SHA-1, and ``<work>/manifests/arrays.jsonl#<split>``: a fingerprint of the feature
  references of the split's clips only; ``reactcli_version``; ``seed``; ``history``: per-epoch
  losses.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

import reactcli
from reactcli.errors import InputError
from reactcli.io import atomic_torch_save


def sha1_of(path: str | os.PathLike) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_record(paths: list[str | os.PathLike]) -> dict[str, str]:
    return {str(p): sha1_of(p) for p in paths if Path(p).is_file()}


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    payload = dict(payload)
    payload.setdefault("reactcli_version", reactcli.__version__)
    atomic_torch_save(payload, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise InputError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "build" not in ckpt:
        raise InputError(f"{path}: not a reactcli checkpoint (needs 'model', 'build', 'state_dict')")
    return ckpt
