"""68-point face landmarks with face-alignment's FAN (2D-FAN-4), from weights the user supplies.

Why this backend: EMOCA (and DECA before it) crop faces from the 68 landmarks of
`face-alignment <https://github.com/1adrianb/face-alignment>`_'s FAN, so researchers who compare
with EMOCA results want the same points. MediaPipe (:mod:`reactcli.features.landmarks`) stays the
default: it ships its models in its wheel and needs no file.

Weights. face-alignment downloads its networks on first use into torch's hub cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``) under the file
name of each URL in its source: ``2DFAN4-11f355bf06.pth.tar`` for FAN in version 1.5 and
``s3fd-619a316812.pth`` for its default face detector (S3FD). reactcli never downloads: the user
gives ``--fan-dir``, a folder holding those files (the ``checkpoints`` folder itself, or the hub
folder or ``TORCH_HOME`` above it), and :func:`locate_fan_files` finds them there, with the names
read from the installed face-alignment's own URL tables (so they follow its version). The FAN
state dict is loaded from that path and the detector is given its file explicitly, so nothing is
looked up in torch's cache and no URL is ever opened. ``torch.compile`` is off (no cache files
written to the home directory), and so is test-time flipping (``flip_input``), as in EMOCA's FAN.

Face boxes (``fan_detector``): ``sfd`` runs face-alignment's S3FD (its default, needs the second
file); ``mediapipe`` takes the box of MediaPipe's face mesh (no second file; the mesh reaches the
forehead, so its boxes are a little taller than S3FD's). FAN then crops around the box as
face-alignment does (its centre shifted up by 12% of the box height, scale ``(w + h) / 195``).

Output: ``(N, 68, 2)`` points, x and y as fractions of the frame's width and height (the
MediaPipe backend's convention), in the iBUG 68-point order; frames with no face get zeros and
``valid = False``. With several faces the largest box wins.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from reactcli.errors import ConfigError, MissingAssetError, ReactcliError
from reactcli.features.device import resolve_device

OPTION = "--fan-dir"
NETWORK = "2DFAN-4"
NUM_POINTS = 68
DETECTORS = ("sfd", "mediapipe")


def _face_alignment() -> Any:
    try:
        import face_alignment
    except ImportError as exc:
        raise ConfigError(
            "the fan landmark backend needs the face-alignment package "
            f"(pip install -e '.[faces]' in the reactcli checkout): {exc}"
        ) from None
    if not hasattr(face_alignment.FaceAlignment, "_load_native"):
        raise ConfigError(
            f"the fan landmark backend needs face-alignment 1.5 (found {face_alignment.__version__})")
    return face_alignment


def fan_file_names(detector: str = "sfd") -> dict[str, str]:
    """role (``fan``, ``sfd``) -> the file name face-alignment would download it as."""
    if detector not in DETECTORS:
        raise ConfigError(f"--fan-detector {detector!r}: expected one of {', '.join(DETECTORS)}")
    _face_alignment()
    from face_alignment import api
    from face_alignment.detection.sfd import sfd_detector

    names = {"fan": os.path.basename(urlparse(api.models_urls[NETWORK]).path)}
    if detector == "sfd":
        names["sfd"] = os.path.basename(urlparse(sfd_detector.models_urls["s3fd"]).path)
    return names


def locate_fan_files(fan_dir: str | os.PathLike[str] | None, detector: str = "sfd") -> dict[str, Path]:
    """The weight files in ``fan_dir`` (or its ``checkpoints`` / ``hub/checkpoints`` folder).

    Raises:
        MissingAssetError: no folder given, or a file is missing; the message names the files
            and ``--fan-dir``.
    """
    names = fan_file_names(detector)
    asset = "face-alignment weights " + " + ".join(names.values())
    if fan_dir is None:
        raise MissingAssetError(asset, OPTION)
    root = Path(fan_dir)
    for folder in (root, root / "checkpoints", root / "hub" / "checkpoints"):
        found = {role: folder / name for role, name in names.items()}
        if all(p.is_file() for p in found.values()):
            return found
    raise MissingAssetError(asset, OPTION, root)


def _fan_class() -> type:
    """A FaceAlignment that loads FAN from a given file instead of face-alignment's URL cache."""
    fa = _face_alignment()

    class LocalFaceAlignment(fa.FaceAlignment):
        def __init__(self, fan_file: Path, **kwargs: Any) -> None:
            self._fan_file = fan_file
            super().__init__(**kwargs)

        def _load_native(self, network_name: str, network_size: int, device: str, dtype: Any) -> Any:
            import torch
            from face_alignment.models import FAN

            net = FAN(network_size)
            try:
                state = torch.load(self._fan_file, map_location=device, weights_only=True)
                net.load_state_dict(state)
            except Exception as exc:  # unreadable file, or not FAN-4 weights
                raise MissingAssetError(f"FAN weights ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                                        OPTION, self._fan_file) from None
            return net.to(device, dtype=dtype).eval()

        def _load_native_depth(self, device: str, dtype: Any) -> Any:  # 3D landmarks: not used
            raise ConfigError("reactcli uses face-alignment's 2D landmarks only")

    return LocalFaceAlignment


class FanLandmarker:
    """``frames (N, H, W, 3) uint8 RGB -> (points (N, 68, 2), valid (N,))`` with face-alignment."""

    num_points = NUM_POINTS
    point_dims = 2

    def __init__(self, fan_dir: str | os.PathLike[str] | None, detector: str = "sfd", device: str = "cpu",
                 flip_input: bool = False) -> None:
        files = locate_fan_files(fan_dir, detector)
        fa = _face_alignment()
        self.detector = detector
        self.device = resolve_device(device)
        kwargs: dict[str, Any] = {"face_detector": "folder"}  # boxes given per frame (mediapipe)
        if detector == "sfd":
            kwargs = {"face_detector": "sfd", "face_detector_kwargs": {"path_to_detector": str(files["sfd"])}}
        try:
            self._fa = _fan_class()(files["fan"], landmarks_type=fa.LandmarksType.TWO_D, device=str(self.device),
                                    flip_input=flip_input, compile=False, **kwargs)
        except ReactcliError:
            raise
        except Exception as exc:  # face-alignment builds the detector first: its file is unreadable
            raise MissingAssetError(f"S3FD weights ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                                    OPTION, files.get("sfd")) from None
        self._mesh = None
        if detector == "mediapipe":
            from reactcli.features.facemesh import MediaPipeLandmarker

            self._mesh = MediaPipeLandmarker(refine_landmarks=False)

    def _boxes(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """Per frame the face box ``[x0, y0, x1, y1]`` in pixels, or None: the detector's choice."""
        if self._mesh is None:
            return [None] * len(frames)  # face-alignment runs S3FD itself
        pts, valid = self._mesh(frames)
        h, w = frames.shape[1:3]
        out: list[np.ndarray | None] = []
        for p, ok in zip(pts, valid):
            if not ok:
                out.append(np.zeros((0, 4), np.float32))
                continue
            x, y = p[:, 0] * w, p[:, 1] * h
            out.append(np.array([[x.min(), y.min(), x.max(), y.max()]], np.float32))
        return out

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, h, w = frames.shape[:3]
        points = np.zeros((n, NUM_POINTS, 2), np.float32)
        valid = np.zeros(n, bool)
        for i, (frame, box) in enumerate(zip(frames, self._boxes(frames))):
            if box is not None and len(box) == 0:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "No faces were detected."
                lms, _, boxes = self._fa.get_landmarks_from_image(
                    np.ascontiguousarray(frame), detected_faces=None if box is None else list(box),
                    return_bboxes=True, return_landmark_score=True)
            if not lms:
                continue
            areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
            best = np.asarray(lms[int(np.argmax(areas))], np.float32)[:, :2]
            points[i] = best / np.array([w, h], np.float32)
            valid[i] = True
        return points, valid
