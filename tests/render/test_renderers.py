"""Renderers behind one interface: face2d AUs, the z-buffer rasteriser, FaceVerse and PIRender stand-ins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.render.face2d import AU_NAMES, AU_REGIONS, region_mask
from reactcli.render.faceverse import (
    euler_to_matrix,
    load_faceverse_model,
    rasterize_flat,
    write_tiny_faceverse_model,
)
from reactcli.render.pirender import (
    PIRenderConfig,
    build_pirender,
    coefficient_windows,
    save_pirender,
    source_tensor,
    to_uint8,
)
from reactcli.render.renderers import RENDERERS, check_features, make_renderer, neutral_emotion

SIZE = 64


# ---- face2d through the interface ----------------------------------------------------------


@pytest.mark.parametrize("i,name", list(enumerate(AU_NAMES)))
def test_face2d_every_au_moves_its_region(i: int, name: str) -> None:
    r = make_renderer("face2d", size=SIZE)
    emo = neutral_emotion(2)
    emo[1, i] = 1.0  # frame 0: AU off, frame 1: AU on
    f = r.render(emo).astype(int)
    diff = np.abs(f[1] - f[0]).sum(-1)
    assert (diff > 40).sum() >= 10, f"{name} does not visibly move the face"
    inside = region_mask(AU_REGIONS[name], SIZE)
    assert diff[inside].sum() >= 0.8 * diff.sum(), name


def test_interface_validation_and_registry() -> None:
    assert {"face2d", "faceverse", "pirender"} <= set(make_renderer("face2d") and RENDERERS)
    with pytest.raises(ConfigError, match="blender"):
        make_renderer("blender")
    with pytest.raises(ConfigError, match="even"):
        make_renderer("face2d", size=63)
    with pytest.raises(InputError, match="emotion"):
        check_features(None, np.zeros((3, 58)), ("emotion",))
    with pytest.raises(InputError, match=r"\(T, 25\)"):
        check_features(np.zeros((3, 24)), None, ())
    with pytest.raises(InputError, match="NaN"):
        check_features(np.full((3, 25), np.nan), None, ())
    with pytest.raises(InputError, match="different lengths"):
        check_features(np.zeros((3, 25)), np.zeros((4, 58)), ())


def test_chunks_and_frame_subsets_equal_a_full_render() -> None:
    r = make_renderer("face2d", size=32)
    rng = np.random.default_rng(0)
    emo, tdm = rng.random((9, 25)).astype(np.float32), 0.1 * rng.standard_normal((9, 58)).astype(np.float32)
    full = r.render(emo, tdm)
    assert np.array_equal(np.concatenate(list(r.iter_render(emo, tdm, chunk=4))), full)
    assert np.array_equal(r.render_frames(emo, tdm, [8, 0, 3]), full[[8, 0, 3]])


# ---- rasteriser ----------------------------------------------------------------------------


def _quad(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float), np.array([[0, 1, 2], [0, 2, 3]])


def test_rasterizer_fills_exactly_the_covered_pixel_centres() -> None:
    xy, tri = _quad(10, 10, 30, 30)
    img = rasterize_flat(xy, np.zeros(4), tri, np.array([[255, 0, 0]] * 2), 40)
    ys, xs = np.nonzero(img[..., 0] == 255)
    assert len(ys) == 21 * 21 and (ys.min(), ys.max(), xs.min(), xs.max()) == (10, 30, 10, 30)
    # half-pixel offsets: centres 11..29 inside a quad from 10.5 to 29.5
    xy, tri = _quad(10.5, 10.5, 29.5, 29.5)
    img = rasterize_flat(xy, np.zeros(4), tri, np.array([[9, 9, 9]] * 2), 40)
    assert (img[..., 0] == 9).sum() == 19 * 19
    # a triangle: x >= y below the diagonal of a right triangle (0,0),(20,0),(20,20) -> 21*22/2 centres
    img = rasterize_flat(np.array([[0, 0], [20, 0], [20, 20]], float), np.zeros(3), np.array([[0, 1, 2]]),
                         np.array([[1, 2, 3]]), 32)
    assert (img[..., 0] == 1).sum() == 21 * 22 // 2


def test_rasterizer_z_buffer_keeps_the_nearest_whatever_the_order() -> None:
    a_xy, tri = _quad(0, 0, 20, 20)
    b_xy, _ = _quad(10, 10, 30, 30)
    xy = np.concatenate([a_xy, b_xy])
    tris = np.concatenate([tri, tri + 4])
    red, blue = [255, 0, 0], [0, 0, 255]
    for near_first in (True, False):
        depth = np.r_[np.full(4, 1.0), np.full(4, 0.0)] if near_first else np.r_[np.full(4, 0.0), np.full(4, 1.0)]
        img = rasterize_flat(xy, depth, tris, np.array([red, red, blue, blue]), 32)
        overlap = img[10:21, 10:21].reshape(-1, 3)
        want = red if near_first else blue
        assert (overlap == want).all()
    # a larger triangle than any bucket boundary still draws (whole image)
    xy, tri = _quad(-5, -5, 70, 70)
    assert (rasterize_flat(xy, np.zeros(4), tri, np.array([[7, 7, 7]] * 2), 64) == 7).all()


def test_euler_rotation_matrices() -> None:
    R = euler_to_matrix(np.array([[0, 0, np.pi / 2], [0.3, -0.2, 0.1]]))
    assert np.allclose(R[0] @ [1, 0, 0], [0, 1, 0])  # roll 90 deg maps x to y
    assert np.allclose(R[1] @ R[1].T, np.eye(3)) and np.isclose(np.linalg.det(R[1]), 1)


# ---- FaceVerse stand-in ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fv_model(tmp_path_factory):
    return write_tiny_faceverse_model(tmp_path_factory.mktemp("fv") / "faceverse_tiny.npy")


def test_faceverse_expression_pose_and_zoom(fv_model) -> None:
    r = make_renderer("faceverse", faceverse_model=fv_model, size=SIZE)
    t = np.zeros((5, 58), np.float32)
    t[1, 0] = 1.0  # "jaw" expression column: lower third moves down
    t[2, 53], t[3, 53] = 0.4, -0.4  # yaw left / right
    t[4, 57] = 3.0  # toward the camera
    f = r.render(None, t)
    assert f.shape == (5, SIZE, SIZE, 3) and f.dtype == np.uint8
    bg = f[0, 0, 0]
    face = lambda img: np.abs(img.astype(int) - bg).sum(-1) > 0  # noqa: E731
    d = np.abs(f[1].astype(int) - f[0]).sum(-1)
    assert d.sum() > 0 and d[: SIZE // 2].sum() < 0.05 * d.sum()  # the change is in the lower half
    assert face(f[1]).sum() > face(f[0]).sum()  # the jaw opened: the face got longer
    # the stand-in mesh is left-right symmetric: yaw +a is the mirror image of yaw -a
    # (silhouettes; the shading is not mirrored because every quad is split along the same diagonal)
    m2, m3 = face(f[2]), face(f[3])
    assert (m2 != m3[:, ::-1]).mean() < 0.01 < (m2 != m3).mean()
    assert (m2 != face(f[0])).mean() > 0.02
    assert face(f[4]).sum() > 1.3 * face(f[0]).sum()  # nearer = bigger


def test_faceverse_model_errors(tmp_path, fv_model) -> None:
    with pytest.raises(MissingAssetError, match="FaceVerse v2 model.*--faceverse-model"):
        make_renderer("faceverse", faceverse_model=tmp_path / "missing.npy")
    with pytest.raises(MissingAssetError):
        make_renderer("faceverse")
    d = np.load(fv_model, allow_pickle=True).item()
    bad = dict(d)
    del bad["exBase"]
    np.save(tmp_path / "nokey.npy", bad, allow_pickle=True)
    with pytest.raises(InputError, match="exBase"):
        load_faceverse_model(tmp_path / "nokey.npy")
    bad = dict(d, exBase=d["exBase"][:, :10])
    np.save(tmp_path / "shape.npy", bad, allow_pickle=True)
    with pytest.raises(InputError, match=r"\(3N, 52\)"):
        load_faceverse_model(tmp_path / "shape.npy")
    bad = dict(d, tri=d["tri"] + 10_000)
    np.save(tmp_path / "tri.npy", bad, allow_pickle=True)
    with pytest.raises(InputError, match="tri indices"):
        load_faceverse_model(tmp_path / "tri.npy")
    with pytest.raises(InputError, match="tdmm"):
        make_renderer("faceverse", faceverse_model=fv_model, size=32).render(np.zeros((2, 25)))


# ---- PIRender at tiny widths (the released layout is tested in test_pirender_released.py) -----

TINY = PIRenderConfig(coeff_nc=8, descriptor_nc=8, adain_hidden=8, warp_base_nc=4, warp_max_nc=8,
                      warp_encoder_layers=3, warp_decoder_layers=2, edit_base_nc=4, edit_max_nc=8, edit_layers=2,
                      edit_res_blocks=1, image_size=32, source_resize=40)


@pytest.fixture(scope="module")
def pir_ckpt(tmp_path_factory):
    return save_pirender(tmp_path_factory.mktemp("pir") / "pirender.pt", build_pirender(TINY, seed=0))


def test_coefficient_windows_are_centred_with_edge_repeat() -> None:
    x = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    w = coefficient_windows(x, np.array([0, 5, 9]), 5)
    assert w.shape == (3, 2, 5)
    assert w[0, 0].tolist() == [0, 0, 0, 1, 2]
    assert w[1, 1].tolist() == [3, 4, 5, 6, 7]
    assert w[2, 0].tolist() == [7, 8, 9, 9, 9]
    # the challenge's radius 13 by default, every frame when no frames are given
    assert coefficient_windows(x).shape == (10, 2, 27)


def test_pirender_loads_weights_and_matches_the_network(pir_ckpt) -> None:
    r = make_renderer("pirender", pirender_checkpoint=pir_ckpt, size=32, batch_size=4)
    assert r.config == TINY and r.photoreal
    rng = np.random.default_rng(1)
    tdm = rng.standard_normal((6, 58)).astype(np.float32)
    src = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    f = r.render(None, tdm, source=src)
    assert f.shape == (6, 32, 32, 3) and f.dtype == np.uint8
    # independent reference: the saved network, run directly on frame 3
    net = build_pirender(TINY, seed=0).eval()
    with torch.no_grad():
        x = source_tensor(src, TINY)
        w = torch.from_numpy(coefficient_windows(tdm, np.array([3]), TINY.window))
        ref = to_uint8(net(x, w)["fake_image"])[0]
    assert np.abs(f[3].astype(int) - ref.astype(int)).max() <= 1
    # chunking and frame subsets give the same frames; the source picture matters
    assert np.array_equal(np.concatenate(list(r.iter_render(None, tdm, source=src, chunk=4))), f)
    assert np.array_equal(r.render_frames(None, tdm, [5, 1], source=src), f[[5, 1]])
    assert not np.array_equal(r.render(None, tdm, source=255 - src), f)
    # without a source: a face2d neutral face is re-animated (deterministic)
    assert np.array_equal(r.render(None, tdm[:2]), r.render(None, tdm[:2]))


def test_pirender_mean_face_turns_offsets_into_coefficients(pir_ckpt, tmp_path) -> None:
    rng = np.random.default_rng(2)
    mean = (np.round(8 * rng.standard_normal(58)) / 8).astype(np.float32)  # exact in float32: offsets + mean == tdm
    np.save(tmp_path / "mean_face.npy", mean)
    tdm = (np.round(8 * rng.standard_normal((4, 58))) / 8).astype(np.float32)
    src = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    plain = make_renderer("pirender", pirender_checkpoint=pir_ckpt, size=32)
    offs = make_renderer("pirender", pirender_checkpoint=pir_ckpt, size=32, mean_face=tmp_path / "mean_face.npy")
    assert np.array_equal(offs.render(None, tdm - mean, source=src), plain.render(None, tdm, source=src))
    assert not np.array_equal(offs.render(None, tdm, source=src), plain.render(None, tdm, source=src))


def test_pirender_checkpoint_errors(tmp_path, pir_ckpt) -> None:
    with pytest.raises(MissingAssetError, match="PIRender checkpoint.*--pirender-checkpoint"):
        make_renderer("pirender", pirender_checkpoint=tmp_path / "none.pt")
    ck = torch.load(pir_ckpt, weights_only=True)
    ck["state_dict"] = {("x." + k): v for k, v in ck["state_dict"].items()}
    torch.save(ck, tmp_path / "renamed.pt")
    with pytest.raises(InputError, match="does not match the challenge's FaceGenerator"):
        make_renderer("pirender", pirender_checkpoint=tmp_path / "renamed.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a PIRender checkpoint"):
        make_renderer("pirender", pirender_checkpoint=tmp_path / "junk.pt")
    ck = torch.load(pir_ckpt, weights_only=True)
    ck["config"]["bogus"] = 1
    torch.save(ck, tmp_path / "cfg.pt")
    with pytest.raises(InputError, match="unknown PIRender config fields"):
        make_renderer("pirender", pirender_checkpoint=tmp_path / "cfg.pt")
    with pytest.raises(ConfigError, match="window"):
        build_pirender(PIRenderConfig(window=13))
    with pytest.raises(ConfigError, match="at least 64"):
        build_pirender(PIRenderConfig(image_size=32))


def test_registry_resolves_lazily_without_an_import_cycle() -> None:
    """Renderers import the base module only; the registry imports a renderer when it is built."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import reactcli.render.pirender, reactcli.render.faceverse\n"
        "assert 'reactcli.render.renderers' not in sys.modules, 'a renderer imported the registry'\n"
        "del sys.modules['reactcli.render.pirender'], sys.modules['reactcli.render.faceverse']\n"
        "from reactcli.render.renderers import RENDERERS, make_renderer, resolve_renderer\n"
        "assert 'reactcli.render.pirender' not in sys.modules and 'reactcli.render.faceverse' not in sys.modules\n"
        "assert RENDERERS['pirender'] == 'reactcli.render.pirender:PIRenderRenderer'\n"
        "from reactcli.render.pirender import PIRenderRenderer\n"
        "assert resolve_renderer('pirender') is PIRenderRenderer\n"
        "import numpy as np\n"
        "assert make_renderer('face2d', size=32).render(np.zeros((1, 25))).shape == (1, 32, 32, 3)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_register_renderer_forms() -> None:
    from reactcli.render.renderers import Face2DRenderer, register_renderer, resolve_renderer

    try:
        register_renderer("alias2d", "reactcli.render.renderers:Face2DRenderer")
        assert resolve_renderer("alias2d") is Face2DRenderer
        register_renderer("fn2d")(lambda cfg: Face2DRenderer(cfg))
        assert isinstance(make_renderer("fn2d", size=32), Face2DRenderer)
    finally:
        RENDERERS.pop("alias2d", None)
        RENDERERS.pop("fn2d", None)
