"""Plug the real FaceVerse v2 into ``reactcli extract --features faceverse``.

The challenge's ``3D_FV_files`` are FaceVerse v2 coefficients (58 per frame: ``[0:52]`` the
expression weights, which v2 fits to Apple's 52 blendshapes, ``[52:55]`` head rotation, ``[55:58]``
translation). FaceVerse v2 has no encoder network: its tracker *fits* the model to each frame,
first to 2D landmarks, then by differentiable rendering. This wrapper does the landmark stage on
the face crops reactcli gives it (``(N, 3, 224, 224)`` RGB in [0, 1]), with FaceVerse's own model,
landmark loss and regularisers and the defaults of its ``tracking_offline.py`` (500 Adam steps on
the first frame, 50 on each next one, warm-started from the previous frame, as its tracker
does; expression weights kept >= 0 as v2 requires). The landmarks are face-alignment's FAN
points (reactcli's ``fan`` backend) in FaceVerse's 66-point layout, the iBUG 68 without the two
inner mouth corners (60 and 64), which is what OpenSeeFace, FaceVerse's tracker, outputs.
Add the photometric stage from FaceVerse's ``tracking_offline.py`` if you need its refinement
(it needs pytorch3d).

The fitter keeps its state between calls (identity and last pose), like FaceVerse's tracker
across a video: extract one participant's clips in order for the identity to carry over.

Setup, once:

1. clone https://github.com/LizhenWangT/FaceVerse, install its requirements and put the checkout
   on ``PYTHONPATH`` (``from model.FaceVerseModel import FaceVerseModel`` must work; note that
   OpenGraphAU also calls its package ``model``: run ``graphau`` in a separate ``extract``);
2. put ``faceverse_simple_v2.npy`` (FaceVerse v2 download) and face-alignment's
   ``2DFAN4-11f355bf06.pth.tar`` in one folder and extract::

       reactcli extract --work W --features faceverse --device cuda \\
           --faceverse-factory examples/adapters/faceverse.py:build --faceverse-path /models/faceverse
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

MODEL_FILE = "faceverse_simple_v2.npy"
#: FaceVerse's 66 landmarks = the iBUG 68 without the inner mouth corners
KEEP_68_TO_66 = tuple(i for i in range(68) if i not in (60, 64))
FIRST_ITERS, NEXT_ITERS, LR = 500, 50, 1e-2  # tracking_offline.py: first/rest_rf_iters, rf_lr
LM_W, ID_REG_W, EXP_REG_W = 3e3, 1e-3, 1.5e-4  # tracking_offline.py: lm_loss_w, id_reg_w, exp_reg_w


class FaceVerseLandmarkFitter(torch.nn.Module):
    """``(N, 3, S, S)`` crops in [0, 1] -> ``(N, 58)`` FaceVerse v2 expression, rotation, translation.

    Args:
        faceverse: a FaceVerse ``FaceVerseModel`` (batch size 1, ``img_size=S``).
        losses: FaceVerse's ``model.losses`` module (``lm_loss``, ``get_l2``, ``get_lm_weights``).
        landmarker: ``frames (N, S, S, 3) uint8 -> (points (N, 68, 2) as fractions, valid (N,))``.
    """

    def __init__(self, faceverse: Any, losses: Any, landmarker: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                 first_iters: int = FIRST_ITERS, next_iters: int = NEXT_ITERS) -> None:
        super().__init__()
        self.faceverse, self.losses, self.landmarker = faceverse, losses, landmarker
        self.first_iters, self.next_iters = first_iters, next_iters
        self.fitted_once = False

    def _fit(self, target: torch.Tensor, iters: int) -> None:
        fv, losses = self.faceverse, self.losses
        params = [fv.get_rot_tensor(), fv.get_trans_tensor(), fv.get_id_tensor(), fv.get_exp_tensor()]
        optimizer = torch.optim.Adam(params, lr=LR)
        weights = losses.get_lm_weights(target.device)
        for _ in range(iters):
            optimizer.zero_grad()
            pred = fv(fv.get_packed_tensors(), render=False)["lms_proj"]
            loss = (LM_W * losses.lm_loss(pred, target, weights, img_size=fv.img_size)
                    + ID_REG_W * losses.get_l2(fv.get_id_tensor()) + EXP_REG_W * losses.get_l2(fv.get_exp_tensor()))
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                fv.exp_tensor.clamp_(min=0)  # v2's expression weights are blendshape weights

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = images.shape[-1]
        frames = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        points, valid = self.landmarker(frames)
        fv = self.faceverse
        out = []
        with torch.inference_mode(False), torch.enable_grad():  # reactcli calls models in inference mode
            for pts, ok in zip(points, valid):
                if ok:
                    target = torch.from_numpy(pts[list(KEEP_68_TO_66)] * size).float()[None].to(fv.device)
                    self._fit(target, self.next_iters if self.fitted_once else self.first_iters)
                    self.fitted_once = True
                # a frame without a face repeats the last fit (zeros before the first one)
                out.append(torch.cat([fv.get_exp_tensor(), fv.get_rot_tensor(), fv.get_trans_tensor()], 1)
                           .detach().clone())
        return torch.cat(out).to(images.device)


def build(path: str | None) -> torch.nn.Module:
    """The factory reactcli calls (``--faceverse-factory examples/adapters/faceverse.py:build``).

    ``path``: a folder with :data:`MODEL_FILE` and face-alignment's FAN weights. The fitter runs on
    the CPU here; move it with ``--device`` (reactcli calls ``.to(device)`` on the module).
    """
    folder = Path(path or ".")
    if not (folder / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{folder / MODEL_FILE} not found (give --faceverse-path the folder holding it)")
    import model.losses as losses  # FaceVerse's checkout on PYTHONPATH (ImportError otherwise)
    from model.FaceVerseModel import FaceVerseModel

    from reactcli.features.fan import FanLandmarker

    device = "cuda" if torch.cuda.is_available() else "cpu"
    faceverse = FaceVerseModel(np.load(folder / MODEL_FILE, allow_pickle=True).item(), batch_size=1,
                               focal=1315, img_size=224, device=device)
    # the crops are faces already: MediaPipe boxes them for FAN, no S3FD file needed
    landmarker = FanLandmarker(folder, detector="mediapipe", device=device)
    return FaceVerseLandmarkFitter(faceverse, losses, landmarker)
