import numpy as np
import pytest

from reactcli.appropriate import (
    BuildConfig,
    apply_rule,
    otsu_threshold,
    pairwise_distances,
    precision_recall,
    row_stats,
)
from reactcli.synthetic.react_layout import write_tiny_react


def _textbook_dtw(x, y):
    T1, T2 = len(x), len(y)
    D = np.full((T1 + 1, T2 + 1), np.inf)
    D[0, 0] = 0
    for i in range(1, T1 + 1):
        for j in range(1, T2 + 1):
            c = ((x[i - 1] - y[j - 1]) ** 2).sum()
            D[i, j] = c + min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])
    return np.sqrt(D[T1, T2])


def test_dtw_distance_is_grouped_frdist_construction():
    rng = np.random.default_rng(1)
    x = rng.random((3, 12, 25)).astype(np.float32)
    d = pairwise_distances(x, BuildConfig(downsample=1))
    want = (_textbook_dtw(x[0, :, :15], x[1, :, :15]) / 15 + _textbook_dtw(x[0, :, 15:17], x[1, :, 15:17])
            + _textbook_dtw(x[0, :, 17:], x[1, :, 17:]) / 8)
    assert d[0, 1] == pytest.approx(want, rel=1e-5)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)


def test_downsampling_pools_frames():
    x = np.arange(2 * 10 * 3, dtype=np.float32).reshape(2, 10, 3)
    d1 = pairwise_distances(x, BuildConfig(feature="other", distance="euclidean", downsample=5))
    pooled = x.reshape(2, 2, 5, 3).mean(2)
    assert d1[0, 1] == pytest.approx(np.linalg.norm(pooled[0] - pooled[1]))


def test_corr_distance_hand_values():
    t = np.linspace(0, 1, 20, dtype=np.float32)
    a = np.stack([t, t], 1)
    b = np.stack([t, -t], 1)  # dim0 r=1, dim1 r=-1 -> mean 0 -> distance 1
    c = np.stack([t, np.ones_like(t)], 1)  # constant dim ignored: r = 1 -> distance 0
    d = pairwise_distances(np.stack([a, b, c]), BuildConfig(feature="x", distance="corr", downsample=1))
    assert d[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert d[0, 2] == pytest.approx(0.0, abs=1e-6)


def test_rules_on_two_clusters():
    # items 0-2 close together, 3-5 close together, far apart across
    pts = np.array([0, 0.1, 0.2, 10, 10.1, 10.3])
    dist = np.abs(pts[:, None] - pts[None, :])
    truth = (np.arange(6)[:, None] // 3 == np.arange(6)[None, :] // 3).astype(int)
    a, thr = apply_rule(dist, BuildConfig(rule="auto"))
    assert 0.3 <= thr < 9.7
    assert np.array_equal(a, truth)
    a, _ = apply_rule(dist, BuildConfig(rule="topk", top_k=1))
    assert a.sum(1).tolist() == [2] * 6 and a[0, 1] == 1 and a[3, 4] == 1
    a, _ = apply_rule(dist, BuildConfig(rule="threshold", threshold=0.15))
    assert a[0].tolist() == [1, 1, 0, 0, 0, 0] and a[2].tolist() == [0, 1, 1, 0, 0, 0]


def test_otsu_separates_bimodal_log_values():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.lognormal(0, 0.1, 500), rng.lognormal(3, 0.1, 500)])
    thr = otsu_threshold(v)
    assert np.exp(0.3) < thr < np.exp(2.7)


def test_precision_recall_hand_computed():
    truth = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    pred = np.array([[1, 1, 1], [0, 1, 0], [0, 0, 1]])
    pr = precision_recall(pred, truth)
    # off-diagonal: truth positives (0,1),(1,0); pred positives (0,1),(0,2): tp 1, fp 1, fn 1
    assert (pr["tp"], pr["fp"], pr["fn"]) == (1, 1, 1)
    assert pr["precision"] == pytest.approx(0.5) and pr["recall"] == pytest.approx(0.5) and pr["f1"] == pytest.approx(0.5)
    st = row_stats(pred)
    assert st["mean"] == pytest.approx(5 / 3) and st["min"] == 1 and st["max"] == 3 and st["histogram"] == {1: 2, 3: 1}


def test_cli_build_import_check(cli, tmp_path):
    root = write_tiny_react(tmp_path / "r", pairs_per_split=4)
    work = tmp_path / "w"
    assert cli("prepare", "react", "--root", root, "--work", work).exit_code == 0
    res = cli("appropriate", "build", "--work", work, "--split", "val", "--rule", "topk", "--top-k", "2")
    assert res.exit_code == 0, res.output
    a = np.load(work / "appropriate/val.npy")
    assert a.shape == (8, 8) and (a.sum(1) == 3).all() and (np.diag(a) == 1).all()
    assert "mean 3.00" in res.output
    assert list((work / "appropriate").glob("val-emotion-dtw-ds5-*.npy"))  # distances cached
    np.save(tmp_path / "truth.npy", a)
    res = cli("appropriate", "check", "--work", work, "--split", "val", "--truth", tmp_path / "truth.npy")
    assert res.exit_code == 0 and "F1 1.000" in res.output
    assert res.output.count("\n") == 1  # one plain line, not wrapped to a console width (Makefiles tee it)
    # import: validated against the split's items
    np.save(tmp_path / "bad.npy", np.eye(7))
    res = cli("appropriate", "import", "--work", work, "--split", "val", "--matrix", tmp_path / "bad.npy")
    assert res.exit_code == 1 and "is 7x7, expected 8x8 for split 'val'" in " ".join(res.output.split())
    m = np.eye(8)
    m[3, 3] = 0
    np.save(tmp_path / "empty.npy", m)
    res = cli("appropriate", "import", "--work", work, "--split", "val", "--matrix", tmp_path / "empty.npy")
    assert res.exit_code == 1 and "row 3 (item val/3) is empty" in " ".join(res.output.split())
    res = cli("appropriate", "import", "--work", work, "--split", "val", "--matrix", root / "neighbour_emotion_val.npy")
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.load(work / "appropriate/val.npy"), np.load(root / "neighbour_emotion_val.npy"))
