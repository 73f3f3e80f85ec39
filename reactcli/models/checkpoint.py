"""The one checkpoint format of every reactcli model.

A checkpoint is one ``torch.save`` dict, written atomically, that holds only plain data (dicts,
lists, strings, numbers, booleans, None) and tensors, so it is read with
``torch.load(weights_only=True)``: nothing is ever unpickled. Its keys:

- ``format_version``: :data:`FORMAT_VERSION`;
- ``model``: the registry name (:mod:`reactcli.models.registry`: ``reactface``,
  ``perfrdiff-gafrg``, ``perfrdiff-pssl``, ``perfrdiff-pwsg``, ...);
- ``config``: the model's constructor config as plain data (its config dataclass's ``to_dict``),
  so the checkpoint rebuilds its own model without the training recipe, as diffusers keeps
  ``config.json`` beside the weights;
- ``state_dict``: the weights;
- anything else a model needs to be rebuilt or a run records (plain data): ``recipe``, ``run``,
  ``inputs`` (the files read, with SHA-1), ``seed``, ``history``, ``reactcli_version``,
  ``diffusion`` (PerFRDiff's schedule), ``layer_shapes`` (PWSG), ...; a training's ``last.pt``
  also holds ``optimizer``, ``epoch``, ``step`` and the random states needed to resume.

:func:`load_checkpoint` also reads the two formats reactcli 0.1.0 wrote (the trainer's, with the
constructor arguments under ``build`` and a ``kind``, and ``perfrdiff.save_checkpoint``'s
``{kind, config, ...}``) and returns them in this layout.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable

import torch

import reactcli
from reactcli.errors import InputError, MissingAssetError
from reactcli.io import atomic_torch_save

__all__ = ["FORMAT_VERSION", "save_checkpoint", "save_model", "load_checkpoint", "load_state_strict", "sha1_of", "input_record"]

FORMAT_VERSION = 2

#: 0.1.0 trainer ``kind`` / ``perfrdiff.save_checkpoint`` kinds -> registry names.
_LEGACY_KINDS = {"reactface": "reactface", "gafrg": "perfrdiff-gafrg", "pssl": "perfrdiff-pssl",
                 "pwsg": "perfrdiff-pwsg"}


def sha1_of(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (checkpoints, manifests and matrices are recorded by it)."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (the checksum the metrics JSON records for a run's checkpoints)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_record(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``{path: sha1}`` of the files among ``paths`` that exist."""
    return {str(p): sha1_of(p) for p in paths if Path(p).is_file()}


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint key {where}.{k!r} is a {type(k).__name__}; keys must be str or int")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not (value is None or isinstance(value, (str, int, float, bool, torch.Tensor, torch.Size))):
        raise TypeError(f"checkpoint entry {where} is a {type(value).__name__}: only plain data and tensors are "
                        "allowed (the file is read with weights_only=True)")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (needs ``model``, ``config``, ``state_dict``) atomically in the format
    above; ``format_version`` and ``reactcli_version`` are added. Raises ``TypeError`` for an entry
    that is not plain data (a programming error: it could not be loaded with ``weights_only``)."""
    missing = [k for k in ("model", "config", "state_dict") if k not in payload]
    if missing:
        raise TypeError(f"a checkpoint needs {missing}")
    payload = {"format_version": FORMAT_VERSION, **payload}
    payload.setdefault("reactcli_version", reactcli.__version__)
    _check_plain(payload, "checkpoint")
    return atomic_torch_save(payload, path)


def save_model(path: str | os.PathLike, model: str, module: torch.nn.Module, config: dict[str, Any],
               **extra: Any) -> Path:
    """Save ``module``'s weights as registry model ``model`` with its plain ``config`` and ``extra`` entries."""
    return save_checkpoint(path, {"model": model, "config": config, "state_dict": module.state_dict(), **extra})


def _upgrade(ck: dict[str, Any], path: Path) -> dict[str, Any]:
    """0.1.0 layouts -> this one (returns ``ck`` itself when it is already current)."""
    if ck.get("format_version") == FORMAT_VERSION:
        return ck
    if ck.get("format_version") is not None:
        raise InputError(f"{path}: checkpoint format {ck['format_version']!r} is newer than this reactcli reads "
                         f"({FORMAT_VERSION}); upgrade reactcli")
    ck = dict(ck)
    if "build" in ck:  # the 0.1.0 trainer's layout
        build = ck.pop("build")
        if ck.get("model") == "reactface" and isinstance(build, dict) and "config" in build:
            build = build["config"]  # ReactFace nested its config as {"model", "config"}
        ck["config"] = build
    elif "kind" in ck and "model" not in ck:  # perfrdiff.save_checkpoint's {kind, config, ...}
        ck["model"] = _LEGACY_KINDS.get(ck["kind"], ck["kind"])
    ck.pop("kind", None)
    ck["format_version"] = FORMAT_VERSION
    return ck


def load_checkpoint(path: str | os.PathLike | None, map_location: str | torch.device = "cpu", *,
                    expect: Iterable[str] | None = None, asset: str = "checkpoint",
                    option: str = "--checkpoint") -> dict[str, Any]:
    """Read a checkpoint of any reactcli release in the current layout (``weights_only=True``).

    ``expect``: the registry names that are acceptable here (e.g. ``("perfrdiff-gafrg",)``);
    another model is a named :class:`InputError`. A missing file raises
    :class:`MissingAssetError` naming ``asset`` and ``option``; a file that is not a reactcli
    checkpoint raises :class:`InputError` naming it.
    """
    if path is None or not Path(path).is_file():
        raise MissingAssetError(asset, option, path)
    path = Path(path)
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupt or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {first})") from exc
    if not isinstance(ck, dict) or "state_dict" not in ck or not ({"build", "config"} & set(ck)):
        raise InputError(f"{path}: not a reactcli checkpoint (needs 'model', 'config' and 'state_dict')")
    ck = _upgrade(ck, path)
    if expect is not None:
        expect = tuple(expect)
        if ck.get("model") not in expect:
            raise InputError(f"{path}: expected a {' or '.join(map(repr, expect))} checkpoint, found {ck.get('model')!r}")
    return ck


def tensor_mismatch(missing: list[str], unexpected: list[str], shapes: list[str], limit: int = 4) -> str:
    """One line naming the tensors a released checkpoint lacks, has extra and has misshapen
    (``"missing a, b (+3 more); wrong shape c"``); ``""`` when all three lists are empty."""
    def short(names: list[str]) -> str:
        return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")

    return "; ".join(f"{label} {short(keys)}" for label, keys in
                     (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys)


def load_state_strict(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """``module.load_state_dict(state_dict)`` with every tensor used and none left over; a missing,
    unexpected or wrongly shaped tensor is one :class:`InputError` naming the file and the keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k} {tuple(state_dict[k].shape)} (expected {tuple(own[k].shape)})"
                    for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise InputError(f"{path}: weights do not fit the model ({'; '.join(problems)})")
    module.load_state_dict(state_dict)
