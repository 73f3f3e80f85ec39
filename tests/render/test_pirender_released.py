"""The challenge's PIRender as released: reactcli reproduces the authors' FaceGenerator.

The fixture files under ``tests/fixtures/pirender/`` were written by
``tests/fixtures/make_pirender_fixture.py`` with THE AUTHORS' code (baseline_react2023 at
c5a8ff8563284e311f89fdf10558f3ae8f0082dd); these tests only load them through reactcli:

- ``small/``: their generator at small widths (their constructors, their init), its
  ``cur_model_fold.pth``-layout checkpoint and their renderer pipeline's outputs;
- ``released/``: the released widths' tensor names and shapes as their ``FaceGenerator()``
  reports them, and its outputs with the documented rule weights of ``pirender_weights.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reactcli.errors import InputError, MissingAssetError
from reactcli.render.pirender import (
    PIRenderConfig,
    center_crop,
    coefficient_windows,
    expected_state_shapes,
    load_pirender,
    source_tensor,
)
from reactcli.render.renderers import make_renderer
from tests.fixtures.pirender_weights import rule_state_dict

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "pirender"
SMALL, RELEASED = FIX / "small", FIX / "released"
TOL = 1e-4


def _small_config() -> PIRenderConfig:
    return PIRenderConfig(**json.loads((SMALL / "meta.json").read_text())["pirender_config"])


def _picture() -> np.ndarray:
    return np.asarray(Image.open(SMALL / "source.png").convert("RGB"))


def _coefficients() -> np.ndarray:
    return np.load(SMALL / "offsets.npy") + np.load(SMALL / "mean_face.npy")


@pytest.fixture(scope="module")
def small_net():
    return load_pirender(SMALL / "cur_model_fold.pth", config=_small_config())


@pytest.fixture(scope="module")
def released_shapes() -> dict[str, tuple[int, ...]]:
    data = json.loads((RELEASED / "state_shapes.json").read_text())
    assert data["commit"] == "c5a8ff8563284e311f89fdf10558f3ae8f0082dd"
    return {k: tuple(v) for k, v in data["shapes"].items()}


@pytest.fixture(scope="module")
def released_ckpt(tmp_path_factory, released_shapes) -> Path:
    """The rule weights in the released layout (``{"state_dict": ...}``), ~90 MB in a temp dir."""
    path = tmp_path_factory.mktemp("released") / "cur_model_fold.pth"
    torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in rule_state_dict(released_shapes).items()}}, path)
    return path


def test_released_layout_is_theirs_key_for_key(released_shapes) -> None:
    mine = expected_state_shapes()
    assert list(mine) and set(mine) == set(released_shapes)
    assert {k: v for k, v in mine.items() if released_shapes[k] != v} == {}
    assert len(mine) == 306 and sum(int(np.prod(s)) for s in mine.values()) == 22_523_416


def test_inputs_are_the_authors(small_net) -> None:
    out = np.load(SMALL / "outputs.npz")
    c = _small_config()
    # the 64 px source: their Transform (Resize, CenterCrop, ToTensor, Normalize) of the same PNG
    assert np.abs(source_tensor(_picture(), c).numpy() - out["source"]).max() < 1e-6
    # the 27-frame windows (radius 13, clamped at both ends) of offsets + mean face
    w = coefficient_windows(_coefficients(), out["semantic_frames"], c.window)
    assert w.shape == (7, 58, 27) and np.abs(w - out["semantics"]).max() < 1e-6
    # the released framing: shorter side 256, centre crop 224
    want = np.load(RELEASED / "outputs_224.npz")["source_u8"]
    assert np.array_equal(center_crop(_picture()), want)


def test_small_generator_matches_the_authors(small_net) -> None:
    out = np.load(SMALL / "outputs.npz")
    c = _small_config()
    coeffs = torch.from_numpy(coefficient_windows(_coefficients(), None, c.window))
    src = source_tensor(_picture(), c)
    with torch.no_grad():
        desc = small_net.descriptor(coeffs).numpy()
        f = out["float_frames"]
        got = small_net(src.expand(len(f), -1, -1, -1), coeffs[f])
    assert np.abs(desc - out["descriptor"]).max() < TOL
    assert np.abs(got["flow_field"].numpy() - out["flow"]).max() < TOL
    err = np.abs(got["fake_image"].numpy() - out["fake"]).max()
    assert err < TOL, err
    assert out["fake"].std() > 0.1  # not a saturated or constant picture


def test_renderer_frames_match_the_authors_pipeline(tmp_path) -> None:
    """make_renderer + mean face + source picture -> the authors' uint8 frames (all 30)."""
    ck = torch.load(SMALL / "cur_model_fold.pth", weights_only=True)
    ck["config"] = json.loads((SMALL / "meta.json").read_text())["pirender_config"]
    torch.save(ck, tmp_path / "small.pth")
    r = make_renderer("pirender", pirender_checkpoint=tmp_path / "small.pth", mean_face=SMALL / "mean_face.npy",
                      size=64, batch_size=7)
    want = np.load(SMALL / "outputs.npz")["frames"]
    got = r.render(None, np.load(SMALL / "offsets.npy"), source=_picture())
    diff = np.abs(got.astype(int) - want.astype(int))
    # truncation to uint8 can flip a value that lies within float error of an integer
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    # chunks and frame subsets: the windows are cut from the whole clip. Another batch size may take
    # another convolution kernel (CI's CPU did), so the same +-1 truncation tolerance holds here.
    def close(a: np.ndarray, b: np.ndarray) -> bool:
        d = np.abs(a.astype(int) - b.astype(int))
        return a.shape == b.shape and d.max() <= 1 and (d > 0).mean() < 1e-3

    assert close(np.concatenate(list(r.iter_render(None, np.load(SMALL / "offsets.npy"),
                                                   source=_picture(), chunk=8))), got)
    assert close(r.render_frames(None, np.load(SMALL / "offsets.npy"), [29, 0], source=_picture()),
                 got[[29, 0]])


def test_released_widths_match_the_authors_at_64px(released_ckpt) -> None:
    net = load_pirender(released_ckpt)  # the released layout, no config: the released widths
    assert net.config == PIRenderConfig()
    out = np.load(RELEASED / "outputs_64.npz")
    c = PIRenderConfig(image_size=64, source_resize=80)
    coeffs = torch.from_numpy(coefficient_windows(_coefficients(), out["frames"]))
    with torch.no_grad():
        got = net(source_tensor(_picture(), c).expand(len(out["frames"]), -1, -1, -1), coeffs)
        assert np.abs(net.descriptor(coeffs).numpy() - out["descriptor"]).max() < TOL
    assert np.abs(got["flow_field"].numpy() - out["flow"]).max() < TOL
    assert np.abs(got["fake_image"].numpy() - out["fake"]).max() < TOL


def test_released_renderer_matches_the_authors_at_224px(released_ckpt) -> None:
    out = np.load(RELEASED / "outputs_224.npz")
    r = make_renderer("pirender", pirender_checkpoint=released_ckpt, mean_face=SMALL / "mean_face.npy",
                      size=224, batch_size=1)
    offsets = np.load(SMALL / "offsets.npy")
    coeffs = torch.from_numpy(coefficient_windows(_coefficients(), out["frames"]))
    with torch.no_grad():
        got = r.net(source_tensor(_picture()), coeffs)
    assert np.abs(got["fake_image"].numpy() - out["fake"]).max() < TOL
    frame = r.render_frames(None, offsets, out["frames"], source=_picture())
    assert np.abs(frame.astype(int) - out["frames_u8"].astype(int)).max() <= 1


# ---- strict loading: named one-line errors ---------------------------------------------------


def _tiny_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.zeros(1) for k in shapes}


def test_missing_and_unexpected_keys_are_named(tmp_path) -> None:
    shapes = expected_state_shapes()
    state = _tiny_state(shapes)
    del state["mapping_net.pre.weight"]
    state["mapping_net.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, tmp_path / "keys.pth")
    with pytest.raises(InputError) as e:
        load_pirender(tmp_path / "keys.pth")
    msg = str(e.value)
    assert "\n" not in msg and "1 missing (mapping_net.pre.weight)" in msg
    assert "1 unexpected (mapping_net.extra.weight)" in msg
    # PIRender's trainer layout and a DataParallel prefix are read too
    torch.save({"net_G_ema": {"module." + k: v for k, v in state.items()}}, tmp_path / "ema.pth")
    with pytest.raises(InputError, match=r"1 missing \(mapping_net.pre.weight\)"):
        load_pirender(tmp_path / "ema.pth")


def test_wrong_shapes_and_non_checkpoints_are_named(tmp_path) -> None:
    torch.save({"state_dict": _tiny_state(expected_state_shapes())}, tmp_path / "shape.pth")
    with pytest.raises(InputError, match=r"306 tensor\(s\) of the wrong shape: mapping_net.pre.weight \(1,\) "
                                         r"!= \(73, 58, 1\)"):
        load_pirender(tmp_path / "shape.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a PIRender checkpoint") as e:
        load_pirender(tmp_path / "junk.pth")
    assert "\n" not in str(e.value)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(InputError, match="expected a dict, got list"):
        load_pirender(tmp_path / "list.pth")
    torch.save({"optimizer": {"lr": 1}}, tmp_path / "opt.pth")
    with pytest.raises(InputError, match="no generator state dict under state_dict or net_G_ema"):
        load_pirender(tmp_path / "opt.pth")
    with pytest.raises(MissingAssetError, match="--pirender-checkpoint"):
        load_pirender(tmp_path / "none.pth")


def test_mean_face_asset_errors(tmp_path) -> None:
    with pytest.raises(MissingAssetError, match="--mean-face"):
        make_renderer("face2d", mean_face=tmp_path / "none.npy")
    np.save(tmp_path / "short.npy", np.zeros(57, np.float32))
    with pytest.raises(InputError, match="58 numbers"):
        make_renderer("face2d", mean_face=tmp_path / "short.npy")
    np.save(tmp_path / "ok.npy", np.ones((1, 1, 58), np.float64))
    r = make_renderer("face2d", mean_face=tmp_path / "ok.npy")
    assert r.mean_face.shape == (58,) and np.array_equal(r.offsets(np.ones((2, 58))), np.zeros((2, 58)))
