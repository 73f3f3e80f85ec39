"""FRRea: Fréchet Inception Distance between generated and real listener frames.

Feature extractor: torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF-FID-compatible
InceptionV3 with 2048-d pool features, the one FID numbers in papers come from), loaded from a LOCAL
weights file (``weights-inception-2015-12-05-6726825d.pth`` in torch-fidelity's state-dict format).
Nothing is downloaded: without the file we raise :class:`MissingAssetError` and the report says
"unavailable".

Why the import dance: ``import torch_fidelity`` imports its CLIP/VGG/DINOv2 extractors, which import
torchvision at module level, and torchvision cannot be used here. The InceptionV3 module itself
needs only torch, so when the package import fails we register a bare package object for
``torch_fidelity`` (pointing at the installed files) and import just that submodule.
torch-fidelity is an optional dependency (``pip install --no-deps torch-fidelity==0.4.0``).

The Fréchet distance itself is ours: ``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})`` with the
trace of the matrix square root taken from the eigenvalues of ``S1^{1/2} S2 S1^{1/2}`` (symmetric
PSD, so eigh is stable and no complex parts appear).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from reactcli.errors import ConfigError, InputError, MissingAssetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


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


def load_inception(weights_path: str | Path | None, device: str = "cpu"):
    """The InceptionV3 feature extractor (2048-d pool features) with local weights."""
    if weights_path is None:
        raise MissingAssetError("InceptionV3 weights", "--inception-weights")
    path = Path(weights_path)
    if not path.is_file():
        raise MissingAssetError("InceptionV3 weights", "--inception-weights", path)
    cls = _inception_class()
    try:
        model = cls("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    except (RuntimeError, KeyError, EOFError, OSError) as exc:
        raise InputError(f"{path}: not an InceptionV3 state dict in torch-fidelity format ({exc})") from None
    return model.to(device)


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


def inception_features(model, frames: np.ndarray, *, batch_size: int = 32, device: str = "cpu") -> np.ndarray:
    """(N, 2048) float64 pool features of uint8 frames (N, H, W, 3)."""
    import torch

    feats = []
    with torch.no_grad():
        for a in range(0, len(frames), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(frames[a : a + batch_size])).permute(0, 3, 1, 2)
            out = model(x.to(device))
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


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if feats.shape[0] < 2:
        raise InputError(f"FID needs at least 2 frames per set, got {feats.shape[0]}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def fid_from_frames(
    real: Any,
    fake: Any,
    weights_path: str | Path | None,
    *,
    stride: int = 1,
    batch_size: int = 32,
    device: str = "cpu",
) -> dict:
    """FID between real and generated frames (directories or (N, H, W, 3) uint8 arrays).

    Raises MissingAssetError when ``weights_path`` is None or not a file (nothing is downloaded).
    Returns {"fid", "n_real", "n_fake", "weights"}.
    """
    model = load_inception(weights_path, device=device)
    fr = load_frames(real, stride=stride)
    ff = load_frames(fake, stride=stride)
    mu1, s1 = feature_stats(inception_features(model, fr, batch_size=batch_size, device=device))
    mu2, s2 = feature_stats(inception_features(model, ff, batch_size=batch_size, device=device))
    return {"fid": frechet_distance(mu1, s1, mu2, s2), "n_real": int(len(fr)), "n_fake": int(len(ff)),
            "weights": str(weights_path)}


def random_inception_weights(path: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised InceptionV3 state dict in torch-fidelity's format (tests only).

    The numbers it produces are meaningless; it exercises the local-file loading path.
    """
    import torch

    cls = _inception_class()
    torch.manual_seed(seed)
    original = cls.load_state_dict
    cls.load_state_dict = lambda self, sd, *a, **k: None  # build the module without any weights
    try:
        import unittest.mock as mock

        with mock.patch("torch.load", return_value={}):
            model = cls("inception-v3-compat", ["2048"], feature_extractor_weights_path="unused")
    finally:
        cls.load_state_dict = original
    from reactcli.io import atomic_torch_save

    return atomic_torch_save(model.state_dict(), path)


__all__: Sequence[str] = (
    "fid_from_frames",
    "frechet_distance",
    "inception_features",
    "load_frames",
    "load_inception",
    "random_inception_weights",
)
