"""Naive baselines: shapes, hand-computed values, seeding, the uniform-noise identities."""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.errors import ConfigError, InputError
from reactcli.models.baselines import BASELINES, make_baseline


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    n, t, d = 4, 30, 25
    spk = rng.random((n, t, d)).astype(np.float32)
    lis = rng.random((n, t, d)).astype(np.float32)
    app = np.eye(n, dtype=bool)
    app[0, 1] = app[0, 2] = True
    return spk, lis, app


def test_all_registered_shapes(split):
    spk, lis, app = split
    for name in BASELINES:
        b = make_baseline(name)
        b.fit(lis)
        out = b.generate(spk, lis, app, num_samples=3, seed=0)
        assert out.shape == (4, 3, 30, 25) and out.dtype == np.float32, name


def test_gt_own_copies_listener(split):
    spk, lis, app = split
    out = make_baseline("gt").generate(spk, lis, app, num_samples=2)
    assert np.array_equal(out[:, 0], lis) and np.array_equal(out[:, 1], lis)


def test_gt_appropriate_draws_from_the_row(split):
    spk, lis, app = split
    out = make_baseline("gt", mode="appropriate").generate(spk, lis, app, num_samples=5, seed=3)
    for k in range(4):
        allowed = np.flatnonzero(app[k])
        for i in range(5):
            hits = [j for j in allowed if np.array_equal(out[k, i], lis[j])]
            assert hits, (k, i)
    # row 0 has 3 reactions: the first 3 samples are a permutation of all of them
    firsts = {int(np.flatnonzero([np.array_equal(out[0, i], lis[j]) for j in range(4)])[0]) for i in range(3)}
    assert firsts == {0, 1, 2}
    again = make_baseline("gt", mode="appropriate").generate(spk, lis, app, num_samples=5, seed=3)
    assert np.array_equal(out, again)


def test_mime_lag_by_hand(split):
    spk, lis, app = split
    out = make_baseline("mime", lag=5).generate(spk, lis, app, num_samples=2)
    assert np.array_equal(out[:, 0, 5:], spk[:, :-5])
    assert np.array_equal(out[:, 1, :5], np.repeat(spk[:, :1], 5, axis=1))
    assert np.array_equal(make_baseline("mime", lag=0).generate(spk, lis, app, num_samples=1)[:, 0], spk)
    with pytest.raises(ConfigError):
        make_baseline("mime", lag=-1).generate(spk, lis, app)


def test_random_uniform_identities():
    n, k, t, d = 20, 10, 200, 25
    z = np.zeros((n, t, d), np.float32)
    out = make_baseline("random").generate(z, z, np.eye(n, dtype=bool), num_samples=k, seed=1)
    assert out.min() >= 0.0 and out.max() < 1.0
    frvar = out.var(axis=2, ddof=1).mean()
    assert frvar == pytest.approx(1 / 12, rel=0.02)  # metrics.md: FRVar ~ 1/12
    flat = out.reshape(n, k, -1)
    d2 = ((flat[:, :, None] - flat[:, None]) ** 2).sum(-1)
    frdiv = d2.sum(axis=(1, 2)).mean() / (k * (k - 1) * t * d)
    assert frdiv == pytest.approx(1 / 6, rel=0.02)  # FRDiv ~ 1/6
    assert np.array_equal(out, make_baseline("random").generate(z, z, None, num_samples=k, seed=1))
    assert not np.array_equal(out, make_baseline("random").generate(z, z, None, num_samples=k, seed=2))
    with pytest.raises(ConfigError, match="seed"):
        make_baseline("random").generate(z, z, None, seed=None)


def test_means_by_hand():
    train = np.stack([np.zeros((6, 3)), np.full((6, 3), 2.0), np.arange(18.0).reshape(6, 3)])
    seq = make_baseline("meanseq").fit(train)
    fr = make_baseline("meanfr").fit(train)
    z = np.zeros((2, 6, 3), np.float32)
    out_s = seq.generate(z, z, None, num_samples=2)
    out_f = fr.generate(z, z, None, num_samples=2)
    exp_seq = (2.0 + np.arange(18.0).reshape(6, 3)) / 3
    assert np.allclose(out_s[1, 1], exp_seq)
    exp_fr = np.array([(2 * 6 + sum(range(0, 18, 3))) / 18, (2 * 6 + sum(range(1, 18, 3))) / 18, (2 * 6 + sum(range(2, 18, 3))) / 18])
    assert np.allclose(out_f[0, 0], np.tile(exp_fr, (6, 1)))


def test_errors(split):
    spk, lis, app = split
    with pytest.raises(ConfigError, match="unknown baseline"):
        make_baseline("oracle")
    with pytest.raises(ConfigError, match="fit"):
        make_baseline("meanseq").generate(spk, lis, app)
    bad = app.copy()
    bad[3] = False
    with pytest.raises(InputError, match="rows \\[3\\]"):
        make_baseline("gt", mode="appropriate").generate(spk, lis, bad)
    with pytest.raises(InputError, match="shapes differ"):
        make_baseline("random").generate(spk, lis[:, :10], app)
    with pytest.raises(InputError):
        make_baseline("meanseq").fit(lis[:, :10]).generate(spk, lis, app)
