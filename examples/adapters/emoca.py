"""Plug the real EMOCA into ``reactcli extract --features emoca``.

reactcli feeds the wrapper ``(N, 3, 224, 224)`` RGB face crops with values in [0, 1] (cropped
around each frame's landmarks with EMOCA's scale 1.25; add ``--landmarks-backend fan --fan-dir
DIR`` to crop with the same face-alignment FAN landmarks EMOCA's own demos use) and expects
``(N, 56)`` back: ``[0:50]`` FLAME expression, ``[50:56]`` EMOCA's pose code (``[50:53]`` global
head rotation, ``[53:56]`` jaw, axis-angle): the layout of :mod:`reactcli.features.emoca`.
EMOCA's encoder takes exactly such crops (its ``encode`` reads ``batch["image"]``).

Setup, once (EMOCA is not on PyPI and FLAME needs a registration):

1. install EMOCA from https://github.com/radekd91/emoca into this environment (``import gdl``
   and ``import gdl_apps`` must work), accept the FLAME licence and run its
   ``gdl_apps/EMOCA/demos/download_assets.sh``: it fetches the FLAME assets and the models,
   e.g. ``assets/EMOCA/models/EMOCA_v2_lr_mse_20``;
2. extract, pointing ``--emoca-path`` at that model folder::

       reactcli extract --work W --features emoca --device cuda \\
           --emoca-factory examples/adapters/emoca.py:build \\
           --emoca-path /path/to/emoca/assets/EMOCA/models/EMOCA_v2_lr_mse_20

Or freeze the wrapper into a TorchScript file once (then extraction needs no ``gdl``)::

    python examples/adapters/emoca.py /path/to/.../EMOCA_v2_lr_mse_20 emoca.pt
    reactcli extract --work W --features emoca --emoca-path emoca.pt

(tracing follows the encoder's operations on an example batch; check the traced file against
the wrapper on a few frames, as ``main`` does.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

EXPRESSION_DIM = 50
POSE_DIM = 6


class EmocaWrapper(torch.nn.Module):
    """``(N, 3, 224, 224)`` crops in [0, 1] -> ``(N, 56)``: expression code then pose code."""

    def __init__(self, emoca: torch.nn.Module) -> None:
        super().__init__()
        self.emoca = emoca

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        codes = self.emoca.encode({"image": images}, training=False)
        expression, pose = codes["expcode"], codes["posecode"]
        if expression.shape[1] != EXPRESSION_DIM or pose.shape[1] != POSE_DIM:
            raise ValueError(f"EMOCA returned expcode {tuple(expression.shape)} and posecode {tuple(pose.shape)}, "
                             f"expected (N, {EXPRESSION_DIM}) and (N, {POSE_DIM})")
        return torch.cat([expression, pose], dim=1)


def build(path: str | None) -> torch.nn.Module:
    """The factory reactcli calls (``--emoca-factory examples/adapters/emoca.py:build``).

    ``path``: an EMOCA model folder (``.../EMOCA/models/<run name>``, holding ``cfg.yaml`` and
    ``detail/checkpoints``). reactcli moves the module to ``--device`` and calls ``eval()``.
    """
    if path is None:
        raise FileNotFoundError("give --emoca-path: the EMOCA model folder, e.g. .../EMOCA/models/EMOCA_v2_lr_mse_20")
    from gdl_apps.EMOCA.utils.load import load_model  # EMOCA's own loader (ImportError: not installed)

    folder = Path(path)
    emoca, _conf = load_model(str(folder.parent), folder.name, "detail")
    return EmocaWrapper(emoca)


def main(argv: list[str]) -> None:
    """``python emoca.py MODEL_DIR OUT.pt``: trace the wrapper into a TorchScript file."""
    model_dir, out = argv
    wrapper = build(model_dir).eval()
    example = torch.rand(4, 3, 224, 224)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, example, check_trace=False)
        err = (traced(example) - wrapper(example)).abs().max().item()
    torch.jit.save(traced, out)
    print(f"wrote {out}; max difference traced vs wrapper on random crops: {err:.2e}")


if __name__ == "__main__":
    main(sys.argv[1:])
