"""The face-model adapters' shared interface (EMOCA, FaceVerse, GraphAU).

EMOCA, FaceVerse and GraphAU are not on PyPI and their weights need registration, so reactcli
does not ship them: the user plugs in their own installation through one small interface, a
callable that maps a float32 tensor ``(N, 3, S, S)`` of RGB face crops with values in [0, 1] to
``(N, D)`` coefficients in the documented order. Any normalisation or parameter packing is the
callable's job. Two ways to supply it (``examples/adapters/`` has one documented wrapper per
model):

* ``path`` = a TorchScript file (``torch.jit.save`` of a wrapper module), loaded with
  ``torch.jit.load`` (no Python code of the user's install needed at run time), or
* ``factory`` = ``"package.module:function"`` importable in this environment, or
  ``"path/to/file.py:function"`` (the user's installation, e.g. EMOCA's ``gdl``); it is called
  as ``function(path)`` and returns the callable (``path`` then points at its weights file or
  folder). A returned ``torch.nn.Module`` is moved to ``device``.

Before the model, every frame is cropped around the face (:mod:`reactcli.features.facecrop`):
the crop box of every frame is stored beside the features as ``<extractor>_crop`` ``(N, 5)``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from reactcli.errors import ConfigError, InputError, MissingAssetError, ReactcliError
from reactcli.features.device import check_device_name, resolve_device
from reactcli.features.facecrop import CROP_MODES, box_record, boxes_from_landmarks, crop_faces, crop_fixed
from reactcli.features.registry import ClipInputs, Extractor, read_video_frames


@dataclass
class FaceModelConfig:
    """Options shared by the face-model adapters (``emoca``, ``faceverse``, ``graphau``)."""

    path: str | None = None
    """TorchScript file, or the weights given to ``factory``; required without a factory."""
    factory: str | None = None
    """Optional ``"module:function"`` or ``"file.py:function"`` building the model from ``path``."""
    device: str = "cpu"
    """Torch device of the model (and of FAN landmarks): ``cpu``, ``cuda``, ``cuda:N`` or ``auto``."""
    input_size: int = 224
    """Side S of the square crops fed to the model."""
    crop: str = "face"
    """``face``: a square around each frame's face landmarks (see :mod:`reactcli.features.facecrop`);
    ``center``: resize to ``round(S*256/224)`` then centre-crop S (the challenge's
    Resize(256)/CenterCrop(224), for inputs that are face crops already); ``resize``: resize to S."""
    landmarks: str = "mediapipe"
    """Landmarks that find the face for ``crop="face"``: ``mediapipe`` (no files) or ``fan``."""
    fan_dir: str | None = None
    """Folder with face-alignment's weights, for ``landmarks="fan"`` (``--fan-dir``)."""
    fan_detector: str = "sfd"
    """Face boxes for FAN: ``sfd`` (face-alignment's S3FD, its file in ``fan_dir``) or ``mediapipe``."""
    face_scale: float = 1.25
    """Crop side = ``face_scale * 1.1 * (w + h) / 2`` of the landmarks' box (DECA/EMOCA: 1.25)."""
    batch_size: int = 32
    """Frames per forward pass."""
    fps: float = 25.0
    """Video frame rate (rows per second)."""
    max_pad_frames: int = 1
    """Missing final frames that may be filled by repeating the last one."""


def load_factory(spec: str, option: str, asset: str) -> Callable[..., Any]:
    """The function named by ``"package.module:function"`` or ``"path/to/file.py:function"``.

    Raises:
        ConfigError: ``spec`` is not of that form.
        MissingAssetError: the module or function cannot be found (message names ``option``).
    """
    mod_name, sep, fn = spec.rpartition(":")
    if not sep or not mod_name or not fn.isidentifier():
        raise ConfigError(f"{option} {spec!r}: expected package.module:function or path/to/file.py:function")
    try:
        if mod_name.endswith(".py"):
            file = Path(mod_name).expanduser().resolve()
            if not file.is_file():
                raise MissingAssetError(f"{asset} factory file", option, file)
            name = f"reactcli_factory_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
            module = sys.modules.get(name)
            if module is None:
                loader_spec = importlib.util.spec_from_file_location(name, file)
                assert loader_spec is not None and loader_spec.loader is not None
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[name] = module
                try:
                    loader_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
        else:
            module = importlib.import_module(mod_name)
        return getattr(module, fn)
    except ReactcliError:
        raise
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise MissingAssetError(f"{asset} factory ({spec}: {type(exc).__name__}: {exc})", option) from None


class FaceModelExtractor(Extractor):
    """Base of the face-model adapters: decode, crop around the face, batch, call the model,
    check ``(N, D)``; also returns the crop boxes.

    Subclasses set ``name``, ``asset`` (asset name for messages), ``option`` (the CLI flag of
    ``path``), ``factory_option`` (the CLI flag of ``factory``), ``feature`` and ``dim``.
    """

    requires = ("video",)
    Config = FaceModelConfig
    cfg: FaceModelConfig
    asset: ClassVar[str] = ""
    option: ClassVar[str] = ""
    factory_option: ClassVar[str] = ""
    feature: ClassVar[str] = ""
    dim: ClassVar[int] = 0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        c = self.cfg
        if c.crop not in CROP_MODES:
            raise ConfigError(f"{self.name}: crop must be one of {', '.join(CROP_MODES)}, got {c.crop!r}")
        check_device_name(c.device)
        self.device = resolve_device(c.device)
        self.landmarker = None
        if c.crop == "face":
            from reactcli.features.landmarks import make_landmarker

            self.landmarker = make_landmarker(c.landmarks, fan_dir=c.fan_dir, fan_detector=c.fan_detector,
                                              device=c.device, **({"refine_landmarks": False}
                                                                  if c.landmarks == "mediapipe" else {}))
        self.model = self._load()

    def _load(self) -> Callable[[Any], Any]:
        import torch

        p = self.cfg.path
        if self.cfg.factory:
            build = load_factory(self.cfg.factory, self.factory_option, self.asset)
            if p is not None and not Path(p).exists():
                raise MissingAssetError(self.asset, self.option, p)
            try:
                model = build(p)
            except ReactcliError:
                raise
            except (ImportError, OSError) as exc:  # the user's installation or weights are missing
                raise MissingAssetError(f"{self.asset} ({self.cfg.factory}: {type(exc).__name__}: {exc})",
                                        self.option, p) from None
            if isinstance(model, torch.nn.Module):
                model = model.to(self.device)
        else:
            if p is None or not Path(p).is_file():
                raise MissingAssetError(self.asset, self.option, p)
            try:
                model = torch.jit.load(str(p), map_location=self.device)
            except (RuntimeError, ValueError) as exc:
                raise MissingAssetError(f"{self.asset} (not a TorchScript file: {exc})", self.option, p) from exc
        if hasattr(model, "eval"):
            model.eval()
        return model

    @property
    def crop_feature(self) -> str:
        """Store name of the per-frame crop boxes."""
        return f"{self.name}_crop"

    @property
    def dims(self) -> dict[str, int]:
        return {self.feature: self.dim, self.crop_feature: 5}

    def crops(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, H, W, 3)`` uint8 -> (``(N, 3, S, S)`` float32 in [0, 1], ``(N, 5)`` crop record)."""
        s = self.cfg.input_size
        if self.landmarker is None:
            x, boxes = crop_fixed(frames, self.cfg.crop, s)
            return x, np.concatenate([boxes, np.zeros((len(frames), 1), np.float32)], axis=1)
        points, valid = self.landmarker(frames)
        h, w = frames.shape[1:3]
        boxes = boxes_from_landmarks(points, valid, w, h, self.cfg.face_scale)
        return crop_faces(frames, boxes, s), box_record(boxes)

    def extract(self, inputs: ClipInputs) -> dict[str, np.ndarray]:
        import torch

        path = inputs.need("video")
        frames = read_video_frames(path, inputs.num_frames, max_pad_frames=self.cfg.max_pad_frames,
                                   what=f"{inputs.clip_id}: {path}")
        x, record = self.crops(frames)
        outs = []
        with torch.inference_mode():
            for b in range(0, len(x), self.cfg.batch_size):
                y = self.model(torch.from_numpy(x[b:b + self.cfg.batch_size]).to(self.device))
                outs.append(np.asarray(y.detach().cpu().float().numpy() if hasattr(y, "detach") else y, np.float32))
        y = np.concatenate(outs)
        if y.shape != (inputs.num_frames, self.dim):
            raise ConfigError(
                f"{self.asset} at {self.cfg.factory or self.cfg.path} returned {y.shape} for {inputs.num_frames} "
                f"frames, expected ({inputs.num_frames}, {self.dim}); check the model wrapper"
            )
        if not np.isfinite(y).all():
            raise InputError(f"{inputs.clip_id}: {self.asset} produced NaN/inf")
        return {self.feature: y, self.crop_feature: record}
