"""EMOCA / FaceVerse / GraphAU adapters with tiny TorchScript stand-ins honouring the interface
``(N, 3, S, S)`` RGB in [0, 1] -> ``(N, D)``."""

from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.features import ClipInputs, get_extractor
from tests.media.synth import write_frames_video

N = 12


class ChannelMeans(torch.nn.Module):
    """Stand-in model: mean of each colour channel times a fixed (3, D) matrix."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) @ self.w


def _colours() -> np.ndarray:
    i = np.arange(N)
    return np.stack([(i * 20) % 256, 255 - i * 15, np.full(N, 128)], axis=1).astype(np.uint8)


@pytest.fixture(scope="module")
def colour_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # uniform frames: any crop/resize keeps the channel means, so the expected output is exact
    frames = np.broadcast_to(_colours()[:, None, None, :], (N, 64, 64, 3))
    return write_frames_video(tmp_path_factory.mktemp("v") / "colours.mp4", frames)


def _script(tmp: Path, d: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    w = torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (3, d)).astype(np.float32))
    p = tmp / f"model{d}.pt"
    torch.jit.save(torch.jit.script(ChannelMeans(w)), str(p))
    return p, w.numpy()


@pytest.mark.parametrize("name,dim,feature,option", [
    ("emoca", 56, "emoca", "--emoca-path"),
    ("faceverse", 58, "tdmm", "--faceverse-path"),
])
def test_adapter_with_torchscript_standin(name: str, dim: int, feature: str, option: str,
                                          colour_video: Path, tmp_path: Path) -> None:
    p, w = _script(tmp_path, dim)
    ext = get_extractor(name, path=str(p), batch_size=5)
    assert ext.dims == {feature: dim} and ext.requires == ("video",)
    out = ext.extract(ClipInputs("c", video=colour_video, num_frames=N))[feature]
    expected = (_colours() / 255.0) @ w
    assert out.shape == (N, dim) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=0.03)  # yuv420 coding error
    # pad the boundary frame, not more
    out13 = ext.extract(ClipInputs("c", video=colour_video, num_frames=N + 1))[feature]
    np.testing.assert_array_equal(out13[-1], out13[-2])
    with pytest.raises(InputError, match="colours.mp4"):
        ext.extract(ClipInputs("c", video=colour_video, num_frames=N + 3))
    with pytest.raises(MissingAssetError, match=option):
        get_extractor(name)
    with pytest.raises(MissingAssetError, match=f"{option}"):
        get_extractor(name, path=str(tmp_path / "missing.pt"))


def test_wrong_output_width_and_bad_file(colour_video: Path, tmp_path: Path) -> None:
    p, _ = _script(tmp_path, 50)
    with pytest.raises(ConfigError, match=r"returned \(12, 50\).*expected \(12, 56\)"):
        get_extractor("emoca", path=str(p)).extract(ClipInputs("c", video=colour_video, num_frames=N))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(MissingAssetError, match="--emoca-path"):
        get_extractor("emoca", path=str(junk))


def test_graphau_binarises_aus(colour_video: Path, tmp_path: Path) -> None:
    p, w = _script(tmp_path, 25, seed=3)
    expected = (_colours() / 255.0) @ w
    out = get_extractor("graphau", path=str(p)).extract(ClipInputs("c", video=colour_video, num_frames=N))["emotion"]
    clear = np.abs(expected[:, :15] - 0.5) > 0.05  # away from the threshold
    np.testing.assert_array_equal(out[:, :15][clear], (expected[:, :15] >= 0.5)[clear].astype(np.float32))
    np.testing.assert_allclose(out[:, 15:], expected[:, 15:], atol=0.03)
    raw = get_extractor("graphau", path=str(p), binarize_aus=False).extract(
        ClipInputs("c", video=colour_video, num_frames=N))["emotion"]
    np.testing.assert_allclose(raw, expected, atol=0.03)


def test_factory_interface(colour_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    w = np.eye(3, 58, dtype=np.float32)
    mod = types.ModuleType("fake_faceverse_install")
    mod.build = lambda path: ChannelMeans(torch.from_numpy(w))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_faceverse_install", mod)
    ext = get_extractor("faceverse", factory="fake_faceverse_install:build")
    out = ext.extract(ClipInputs("c", video=colour_video, num_frames=N))["tdmm"]
    np.testing.assert_allclose(out[:, :3], _colours() / 255.0, atol=0.03)
    with pytest.raises(MissingAssetError, match="--faceverse-path"):
        get_extractor("faceverse", factory="no_such_module_xyz:build")
