"""FRRea: Fréchet Inception Distance between generated and real listener frames.

The REACT challenge computes FRRea with pytorch-fid (``python -m pytorch_fid real/ fake/`` on
the PNG frames its renderer wrote, every 30th frame of each clip). reactcli computes the same
number without pytorch-fid or torchvision:

- **Network**: torch-fidelity's ``FeatureExtractorInceptionV3``, the TF-FID InceptionV3 ported to
  PyTorch. Its state-dict layout is pytorch-fid's ``fid_inception_v3`` one key for key (566
  tensors), so either weights file loads: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
  or torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` (both converted from the
  same TensorFlow graph). The file is the user's (``--inception-weights``), read with
  ``torch.load(..., weights_only=True)`` and loaded strictly; nothing is downloaded: without it
  :class:`MissingAssetError` is raised and the report says "unavailable".
- **Pre-processing** (``preprocess``): ``"pytorch-fid"`` (default, the challenge's) takes the
  frames to [0, 1] (``/255``), resizes them to 299 x 299 with PyTorch's bilinear interpolation
  (``align_corners=False``, no antialiasing) and maps to [-1, 1] with ``2x - 1``.
  ``"tensorflow"`` is torch-fidelity's: TF1's bilinear resize of the 0..255 values and
  ``(x - 128) / 128``, which reproduces the original TensorFlow FID (TTUR). The two give different
  pool features and so different FIDs on the same frames; ``tests/metrics/test_fid_pytorch_fid.py``
  measures both against pytorch-fid's own code.
- **Statistics**: float64 mean and covariance of the 2048-d pool features (as pytorch-fid).
- **Distance**: ``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})``. With fewer frames than
  2048 features the trace of the square root is the sum of the singular values of
  ``X1 X2^T`` (the centred, scaled feature sets; :func:`frechet_distance_from_features`), exact
  and cheap; otherwise it comes from the eigenvalues of ``S1^{1/2} S2 S1^{1/2}`` (symmetric PSD:
  ``eigh`` is stable and real). pytorch-fid uses ``scipy.linalg.sqrtm(S1 @ S2)``, the same
  quantity by a route that is less accurate when the covariances are singular.

Why the import dance: ``import torch_fidelity`` imports its CLIP/VGG/DINOv2 extractors, which import
torchvision at module level, and torchvision cannot be used here. The InceptionV3 module itself
needs only torch, so when the package import fails we register a bare package object for
``torch_fidelity`` (pointing at the installed files) and import just that submodule.
torch-fidelity is an optional dependency (``pip install --no-deps torch-fidelity==0.4.0``).

Cartoons are not photos: a frames folder exported by ``reactcli render --fid-frames`` carries a
``frames.json``; when it says the generated frames were drawn by a renderer that is not
photo-like and the real ones came from video, :func:`fid_from_frames` refuses with a
:class:`ConfigError` instead of returning a number that measures the drawing style.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any, Sequence
from unittest import mock

import numpy as np

from reactcli.errors import ConfigError, InputError, MissingAssetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
PREPROCESS = ("pytorch-fid", "tensorflow")
"""Pre-processing styles: the challenge's pytorch-fid, or the original TensorFlow FID's."""
INCEPTION_SIZE = 299
_POOL_LAYERS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool",
)
"""InceptionV3's layers from the 299 px input to the 2048-d pool (pytorch-fid's blocks 0-3)."""


def _inception_class():
    """torch-fidelity's FeatureExtractorInceptionV3 class, imported without torchvision."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        return FeatureExtractorInceptionV3
    except ModuleNotFoundError as exc:
        if exc.name == "torch_fidelity":
            raise ConfigError(
                "FID needs torch-fidelity: pip install --no-deps torch-fidelity==0.4.0"
            ) from None
        if exc.name != "torchvision":
            raise
    for key in [k for k in sys.modules if k == "torch_fidelity" or k.startswith("torch_fidelity.")]:
        del sys.modules[key]
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("FID needs torch-fidelity: pip install --no-deps torch-fidelity==0.4.0")
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["torch_fidelity"] = pkg
    module = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
    return module.FeatureExtractorInceptionV3


def _bare_inception(device: str | None = None):
    """torch-fidelity's InceptionV3 built without reading any weights file.

    ``device="meta"`` skips the (slow) random initialisation; load a state dict after
    ``to_empty``. Otherwise the weights are PyTorch's random init.
    """
    import torch

    cls = _inception_class()
    with mock.patch.object(cls, "load_state_dict", lambda self, *a, **k: None), \
            mock.patch("torch.load", return_value={}):
        if device == "meta":
            with torch.device("meta"):
                return cls("inception-v3-compat", ["2048"], feature_extractor_weights_path="unused")
        return cls("inception-v3-compat", ["2048"], feature_extractor_weights_path="unused")


def load_inception(weights_path: str | Path | None, device: str = "cpu"):
    """The InceptionV3 feature extractor (2048-d pool features) with the user's local weights.

    Accepts pytorch-fid's and torch-fidelity's files (the same 566 tensors); the file is read
    with ``weights_only=True`` and must match the network exactly.
    """
    import torch

    if weights_path is None:
        raise MissingAssetError("InceptionV3 weights", "--inception-weights")
    path = Path(weights_path)
    if not path.is_file():
        raise MissingAssetError("InceptionV3 weights", "--inception-weights", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one holding arbitrary objects
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: not an InceptionV3 weights file (torch.load failed: {first[:160]})") from None
    model = _bare_inception("meta")
    own = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(own):
        keys = set(state) if isinstance(state, dict) else set()
        raise InputError(f"{path}: not an InceptionV3 FID state dict ({len(set(own) - keys)} tensors missing, "
                         f"{len(keys - set(own))} unexpected; expected pytorch-fid's pt_inception-2015-12-05 or "
                         f"torch-fidelity's weights-inception-2015-12-05 file)")
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise InputError(f"{path}: InceptionV3 tensor {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, "
                         f"expected {tuple(own[wrong[0]].shape)}")
    model = model.to_empty(device="cpu")
    model.load_state_dict(state, strict=True)
    return model.float().eval().requires_grad_(False).to(device)


def load_frames(source: Any, *, stride: int = 1) -> np.ndarray:
    """(N, H, W, 3) uint8 frames from an array or a directory of images (sorted by name).

    Args:
        source: array (N, H, W, 3) uint8, or a directory of .png/.jpg images (searched recursively).
        stride: keep every ``stride``-th frame (the official run uses every 30th).
    """
    if isinstance(source, (str, Path)):
        root = Path(source)
        if not root.is_dir():
            raise InputError(f"{root}: expected a directory of frames")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[::stride]
        if not files:
            raise InputError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
        from PIL import Image

        frames = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise InputError(f"{root}: frames have different sizes {sorted(shapes)[:3]}")
        return np.stack(frames)
    arr = np.asarray(source)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise InputError(f"frames: expected (N, H, W, 3) uint8, got {arr.shape} {arr.dtype}")
    return arr[::stride]


def _pool_features(model, x):
    """Run InceptionV3's layers on a pre-processed (B, 3, 299, 299) batch -> (B, 2048)."""
    for name in _POOL_LAYERS:
        x = getattr(model, name)(x)
    return x.flatten(1)


def inception_features(model, frames: np.ndarray, *, batch_size: int = 32, device: str = "cpu",
                       preprocess: str = "pytorch-fid") -> np.ndarray:
    """(N, 2048) float64 pool features of uint8 frames (N, H, W, 3) (``preprocess``: module docstring)."""
    import torch
    import torch.nn.functional as F

    if preprocess not in PREPROCESS:
        raise ConfigError(f"FID pre-processing {preprocess!r}: expected one of {', '.join(PREPROCESS)}")
    feats = []
    with torch.no_grad():
        for a in range(0, len(frames), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[a : a + batch_size])).permute(0, 3, 1, 2).to(device)
            if preprocess == "pytorch-fid":
                x = x.float().div(255)
                x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
                out = _pool_features(model, 2 * x - 1)
            else:
                out = model(x)
                out = out[0] if isinstance(out, (tuple, list)) else out
            feats.append(out.reshape(out.shape[0], -1).double().cpu().numpy())
    return np.concatenate(feats)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    w1, v1 = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    s1h = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    m = s1h @ sigma2 @ s1h
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def frechet_distance_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """The Fréchet distance of the Gaussians fitted to two feature sets (N1, D) and (N2, D).

    Equal to ``frechet_distance(*feature_stats(f1), *feature_stats(f2))``. With fewer samples
    than dimensions (the usual case: a few hundred frames, 2048 features) the covariances are
    ``S = X^T X`` of the centred, ``1/sqrt(N - 1)``-scaled features, and
    ``tr((S1 S2)^{1/2})`` is the sum of the singular values of ``X1 X2^T`` (N1 x N2): exact,
    and far cheaper than a D x D eigendecomposition.
    """
    n1, d = f1.shape
    n2 = f2.shape[0]
    if n1 < 2 or n2 < 2:
        raise InputError(f"FID needs at least 2 frames per set, got {min(n1, n2)}")
    if max(n1, n2) >= d:
        return frechet_distance(*feature_stats(f1), *feature_stats(f2))
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    x1 = (f1 - mu1) / np.sqrt(n1 - 1)
    x2 = (f2 - mu2) / np.sqrt(n2 - 1)
    tr_covmean = float(np.linalg.svd(x1 @ x2.T, compute_uv=False).sum())
    diff = mu1 - mu2
    return float(diff @ diff + (x1 * x1).sum() + (x2 * x2).sum() - 2.0 * tr_covmean)


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if feats.shape[0] < 2:
        raise InputError(f"FID needs at least 2 frames per set, got {feats.shape[0]}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def check_frame_sets(real: Any, fake: Any) -> dict | None:
    """Refuse a cartoon-vs-video pair exported by ``render --fid-frames`` (see the module docstring).

    Returns the export's ``frames.json`` (None when the folders did not come from one export).
    """
    if not isinstance(real, (str, Path)) or not isinstance(fake, (str, Path)):
        return None
    parent = Path(real).resolve().parent
    meta_path = parent / "frames.json"
    if Path(fake).resolve().parent != parent or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{meta_path}: unreadable frames record ({exc})") from None
    if not meta.get("photoreal", True) and int(meta.get("real_from_video", 0)) > 0:
        raise ConfigError(f"{parent}: generated frames drawn by the {meta.get('renderer')} renderer against real "
                          f"video: FID would measure the drawing style, not the reactions; export with "
                          f"--renderer pirender, or draw both sets (--fid-real render)")
    return meta


def fid_from_frames(
    real: Any,
    fake: Any,
    weights_path: str | Path | None,
    *,
    stride: int = 1,
    batch_size: int = 32,
    device: str = "cpu",
    preprocess: str = "pytorch-fid",
) -> dict:
    """FID between real and generated frames (directories or (N, H, W, 3) uint8 arrays).

    Raises MissingAssetError when ``weights_path`` is None or not a file (nothing is downloaded),
    ConfigError for a cartoon-vs-video export (:func:`check_frame_sets`).
    Returns {"fid", "n_real", "n_fake", "weights", "preprocess", "frames"}.
    """
    if preprocess not in PREPROCESS:
        raise ConfigError(f"FID pre-processing {preprocess!r}: expected one of {', '.join(PREPROCESS)}")
    meta = check_frame_sets(real, fake)
    model = load_inception(weights_path, device=device)
    fr = load_frames(real, stride=stride)
    ff = load_frames(fake, stride=stride)
    kw = {"batch_size": batch_size, "device": device, "preprocess": preprocess}
    value = frechet_distance_from_features(inception_features(model, fr, **kw), inception_features(model, ff, **kw))
    return {"fid": value, "n_real": int(len(fr)), "n_fake": int(len(ff)),
            "weights": str(weights_path), "preprocess": preprocess, "frames": meta}


def random_inception_weights(path: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised InceptionV3 state dict in torch-fidelity's format (tests only).

    The numbers it produces are meaningless; it exercises the local-file loading path.
    """
    import torch

    from reactcli.io import atomic_torch_save

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _bare_inception()
    return atomic_torch_save(model.state_dict(), path)


__all__: Sequence[str] = (
    "PREPROCESS",
    "check_frame_sets",
    "fid_from_frames",
    "frechet_distance",
    "frechet_distance_from_features",
    "inception_features",
    "load_frames",
    "load_inception",
    "random_inception_weights",
)
