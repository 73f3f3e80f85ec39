"""Which torch device a model-running extractor uses (``reactcli extract --device``).

Extractors that run a network (wav2vec2, the EMOCA/FaceVerse/GraphAU adapters, face-alignment's
FAN landmarks) take a ``device`` option. It is resolved where the extractor is built, i.e. inside
each shard's worker process: a Slurm array task started with ``--slurm-gpus 1`` sees its GPU
there, while the driver on a login node may have none. ``auto`` picks ``cuda`` when the worker
sees a GPU and ``cpu`` otherwise. The MFCC (kaldi-native-fbank), MediaPipe landmarks and the
corpus sidecars run on the CPU whatever the option says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactcli.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

OPTION = "--device"


def check_device_name(device: str, option: str = OPTION) -> str:
    """``device`` if it names a torch device kind reactcli can use (``cpu``, ``cuda``, ``cuda:N``,
    ``auto``), else :class:`ConfigError` naming ``option``. Checks the spelling only, not the
    hardware (the driver may run where the workers' GPUs are not)."""
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "auto") or (index and (kind != "cuda" or not index.isdigit())):
        raise ConfigError(f"{option} {device!r}: expected cpu, cuda, cuda:N or auto")
    return device


def resolve_device(device: str, option: str = OPTION) -> "torch.device":
    """The :class:`torch.device` for ``device`` in this process (``auto``: cuda if available).

    Raises:
        ConfigError: a CUDA device is asked for and this process sees none (or not that index).
    """
    import torch

    check_device_name(device, option)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {device}: CUDA is not available on this machine (use {option} cpu or auto)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{option} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(device)
