"""The built-in 2D face: every AU moves the part of the face it names, pose moves the head."""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.errors import InputError
from reactcli.render.face2d import (
    AU_NAMES,
    AU_REGIONS,
    region_mask,
    render,
    render_sequence,
)

SIZE = 128


def neutral() -> np.ndarray:
    e = np.zeros(25, np.float32)
    e[17] = 1.0  # Neutral probability
    return e


def face_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels that differ from the (uniform) background colour of the corner."""
    return np.abs(frame.astype(int) - frame[0, 0].astype(int)).sum(-1) > 30


@pytest.mark.parametrize("i,name", list(enumerate(AU_NAMES)))
def test_each_au_moves_its_region(i: int, name: str) -> None:
    off = render(neutral(), None, SIZE).astype(int)
    e = neutral()
    e[i] = 1.0
    on = render(e, None, SIZE).astype(int)
    diff = np.abs(on - off).sum(-1)
    changed = diff > 40
    # visible: at least ~0.25 % of the image changes clearly (40 px at 128x128)
    assert changed.sum() >= 40, f"{name} barely changes the face ({changed.sum()} px)"
    inside = region_mask(AU_REGIONS[name], SIZE)
    frac = diff[inside].sum() / diff.sum()
    assert frac >= 0.85, f"{name}: only {frac:.2f} of the change is in its region"


def test_regions_are_local_not_whole_face() -> None:
    # a region check is only meaningful if the regions are small parts of the image
    for name, box in AU_REGIONS.items():
        assert region_mask(box, SIZE).mean() < 0.45, name


def test_half_intensity_is_between_off_and_on() -> None:
    i = AU_NAMES.index("AU12")
    e0, e1, eh = neutral(), neutral(), neutral()
    e1[i], eh[i] = 1.0, 0.5
    f0, f1, fh = (render(e, None, SIZE).astype(int) for e in (e0, e1, eh))
    d_half, d_full = np.abs(fh - f0).sum(), np.abs(f1 - f0).sum()
    assert 0.1 * d_full < d_half < 0.95 * d_full


def test_translation_shifts_the_face() -> None:
    e = neutral()
    f0 = render(e, np.zeros(6), SIZE)
    f1 = render(e, np.array([0, 0, 0, 0.2, 0.0, 0.0]), SIZE)
    c0 = np.argwhere(face_mask(f0)).mean(0)
    c1 = np.argwhere(face_mask(f1)).mean(0)
    # tx = 0.2 shifts by 0.2 * SIZE / 2 pixels to the right (column index), rows unchanged
    assert c1[1] - c0[1] == pytest.approx(0.2 * SIZE / 2, abs=1.0)
    assert abs(c1[0] - c0[0]) < 1.0


def test_depth_translation_scales_the_face() -> None:
    e = neutral()
    a0 = face_mask(render(e, np.zeros(6), SIZE)).sum()
    a1 = face_mask(render(e, np.array([0, 0, 0, 0, 0, 0.3]), SIZE)).sum()
    # the area scales with exp(-tz)^2
    assert a1 / a0 == pytest.approx(np.exp(-0.6), rel=0.06)


def test_roll_rotates_and_yaw_moves_the_features() -> None:
    e = neutral()
    f0 = render(e, np.zeros(6), SIZE)
    roll = render(e, np.array([0, 0, 0.3, 0, 0, 0]), SIZE)
    mirrored_roll = render(e, np.array([0, 0, -0.3, 0, 0, 0]), SIZE)
    assert np.abs(roll.astype(int) - f0).sum() > 0
    # the cartoon is left-right symmetric: rolling by -r is the mirror image of rolling by +r
    assert np.abs(mirrored_roll[:, ::-1].astype(int) - roll).mean() < 0.5  # vs ~13 for roll vs upright
    # yaw shifts the protruding nose sideways relative to the outline
    yaw = render(e, np.array([0, 0.3, 0, 0, 0, 0]), SIZE)
    dark0 = np.argwhere(f0[SIZE // 2 - 10 : SIZE // 2 + 20].sum(-1) < 400)[:, 1].mean()
    dark1 = np.argwhere(yaw[SIZE // 2 - 10 : SIZE // 2 + 20].sum(-1) < 400)[:, 1].mean()
    assert dark1 != pytest.approx(dark0, abs=1.0)


def test_sequence_matches_single_frames_and_accepts_58d() -> None:
    rng = np.random.default_rng(0)
    emo = rng.random((5, 25)).astype(np.float32)
    tdmm = np.zeros((5, 58), np.float32)
    tdmm[:, 52:55] = rng.uniform(-0.2, 0.2, (5, 3))
    seq = render_sequence(emo, tdmm, SIZE)
    assert seq.shape == (5, SIZE, SIZE, 3) and seq.dtype == np.uint8
    for t in (0, 3):
        np.testing.assert_array_equal(seq[t], render(emo[t], tdmm[t, 52:58], SIZE))
    # (1, T, 58) as stored in some REACT files is accepted too
    np.testing.assert_array_equal(render_sequence(emo, tdmm[None], SIZE), seq)


def test_bad_inputs_raise_input_error() -> None:
    with pytest.raises(InputError, match=r"\(T, 25\)"):
        render_sequence(np.zeros((4, 24)), None, SIZE)
    bad = np.zeros((2, 25))
    bad[1, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        render_sequence(bad, None, SIZE)
    with pytest.raises(InputError, match="58"):
        render_sequence(np.zeros((2, 25)), np.zeros((3, 58)), SIZE)
    with pytest.raises(InputError, match="even"):
        render(neutral(), None, 63)
