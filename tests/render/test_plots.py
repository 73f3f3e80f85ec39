"""Feature-curve plots: the lines hold exactly the data given; PNG written atomically; named errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from reactcli.errors import InputError
from reactcli.render.face2d import EMOTION_NAMES
from reactcli.render.plots import curves_figure, plot_curves

T, K, D = 40, 3, 25


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((T, D)), rng.random((K, T, D)), rng.random((T, D))


def _line(ax, gid):
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    return line


def test_lines_hold_the_given_curves(data) -> None:
    spk, smp, lis = data
    fig = curves_figure(spk, smp, lis, dims=[7, 15], names=EMOTION_NAMES, fps=25)
    axes = fig.get_axes()
    assert len(axes) == 2
    assert [ax.get_ylabel() for ax in axes] == ["AU12", "valence"]
    for ax, d in zip(axes, [7, 15]):
        assert np.allclose(_line(ax, "speaker").get_ydata(), spk[:, d])
        assert np.allclose(_line(ax, "listener").get_ydata(), lis[:, d])
        for k in range(K):
            assert np.allclose(_line(ax, f"sample{k}").get_ydata(), smp[k, :, d])
        assert np.allclose(_line(ax, "mean").get_ydata(), smp[:, :, d].mean(0))
        x = _line(ax, "speaker").get_xdata()
        assert x[0] == 0 and x[25] == pytest.approx(1.0)  # seconds at 25 fps


def test_plot_curves_writes_a_png(tmp_path, data) -> None:
    out = plot_curves(*data, dims=[0, 1, 2], names=None, out_png=tmp_path / "sub" / "c.png")
    img = Image.open(out)
    assert img.format == "PNG" and img.size == (1000, int(round((1.6 * 3 + 0.6) * 100)))
    arr = np.asarray(img.convert("RGB"))
    assert arr.std() > 10  # something was drawn
    assert os.listdir(tmp_path / "sub") == ["c.png"]  # no temp file left


def test_plot_errors_name_the_problem(tmp_path, data) -> None:
    spk, smp, lis = data
    with pytest.raises(InputError, match="outside"):
        plot_curves(spk, smp, lis, [25], None, tmp_path / "a.png")
    with pytest.raises(InputError, match="feature sizes"):
        plot_curves(spk[:, :3], smp, lis, [0], None, tmp_path / "a.png")
    bad = smp.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="samples contains NaN"):
        plot_curves(spk, bad, lis, [0], None, tmp_path / "a.png")
    with pytest.raises(InputError, match="names"):
        plot_curves(spk, smp, lis, [0], ["a", "b"], tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


def test_plot_velocity_draws_every_run_and_refuses_nothing(tmp_path):
    from reactcli.render.plots import plot_velocity

    real = np.full(299, 0.01)
    steps = np.full(299, 1e-4)
    steps[24::25] = 0.5  # a jump into every 25th frame
    path = plot_velocity({"real listeners": real, "steps": steps}, tmp_path / "v.png", frames=100)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[0] > 200 and img.std() > 5
    with pytest.raises(InputError, match="no profile"):
        plot_velocity({}, tmp_path / "w.png")
