"""Paired comparison of two runs (reactcli.metrics.compare / `evaluate compare`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.errors import ConfigError, InputError
from reactcli.generation.baselines import generate_baseline
from reactcli.metrics.compare import compare_runs, item_scores, paired_difference
from reactcli.metrics.core import frcorr, frcorr_items, frdist, frdist_items
from reactcli.metrics.personal import evaluate_personal, listener_ids
from reactcli.synthetic.react_layout import write_tiny_react
from reactcli.manifest.items import load_items


def test_item_terms_average_to_the_official_metrics():
    rng = np.random.default_rng(3)
    P = rng.random((5, 3, 40, 25)).astype(np.float32)
    L = rng.random((5, 40, 25)).astype(np.float32)
    A = (rng.random((5, 5)) < 0.5) | np.eye(5, dtype=bool)
    c, d = frcorr_items(P, L, A), frdist_items(P, L, A)
    assert c.shape == d.shape == (5,)
    assert np.isclose(c.mean(), frcorr(P, L, A)[0]) and np.isclose(d.mean(), frdist(P, L, A)[0])
    # an item's term only depends on its own samples and candidates
    A2 = A.copy()
    A2[1:] = True
    assert np.isclose(frcorr_items(P, L, A2)[0], c[0]) and not np.allclose(frcorr_items(P, L, A2)[1:], c[1:])


def test_a_constant_shift_is_better_with_an_exact_interval():
    base = np.array([1.0, 2.0, 3.0, 4.0])
    r = paired_difference(base, base + 0.5, higher_is_better=True)
    assert r["diff"] == pytest.approx(0.5) and r["ci"] == pytest.approx([0.5, 0.5])
    assert r["verdict"] == "better" and r["items_better"] == 4 and r["N"] == 4
    assert r["base"] == pytest.approx(2.5) and r["run"] == pytest.approx(3.0)
    # the same shift on a lower-is-better metric (FRdist) is worse
    assert paired_difference(base, base + 0.5, higher_is_better=False)["verdict"] == "worse"
    assert paired_difference(base, base - 0.5, higher_is_better=False)["verdict"] == "better"


def test_symmetric_differences_are_no_clear_difference():
    base = np.zeros(8)
    other = np.array([1.0, -1.0] * 4)
    r = paired_difference(base, other, higher_is_better=True, n_boot=2000, seed=1)
    assert r["diff"] == 0 and r["ci"][0] < 0 < r["ci"][1] and r["verdict"] == "no clear difference"
    assert r["items_better"] == 4
    assert paired_difference(base, other, higher_is_better=True, n_boot=2000, seed=1) == r  # seeded


def test_repeats_are_averaged_per_item_and_their_spread_reported():
    base = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])  # two sampling seeds of one model
    other = np.array([[3.0, 4.0, 5.0]])
    r = paired_difference(base, other, higher_is_better=True)
    assert r["diff"] == pytest.approx(1.0) and r["repeats"] == [2, 1]
    assert r["repeat_sd"][0] == pytest.approx(np.std([2.0, 4.0], ddof=1)) and r["repeat_sd"][1] == 0.0


def test_bad_inputs_are_named():
    with pytest.raises(InputError, match="same items"):
        paired_difference(np.zeros(3), np.zeros(4), higher_is_better=True)
    with pytest.raises(InputError, match="NaN"):
        paired_difference(np.zeros(3), np.array([0.0, np.nan, 1.0]), higher_is_better=True)
    with pytest.raises(InputError, match="at least 2 items"):
        paired_difference(np.zeros(1), np.ones(1), higher_is_better=True)
    with pytest.raises(ConfigError, match="n_boot"):
        paired_difference(np.zeros(3), np.ones(3), higher_is_better=True, n_boot=10)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    root = write_tiny_react(tmp / "r", pairs_per_split=3, frames=61)
    work = tmp / "w"
    prepare_react(root, work, ReactConfig(frames=61))
    for name in ("gt", "random", "meanseq"):
        generate_baseline(work, name, split="val", num_samples=2, frames=60)
    generate_baseline(work, "random", split="val", num_samples=2, frames=60, run="random-s1", seed=1)
    generate_baseline(work, "random", split="val", num_samples=3, frames=60, run="random-k3")
    generate_baseline(work, "random", split="val", num_samples=2, frames=40, run="random-t40")
    return work


def test_runs_of_other_k_or_frames_are_refused(work):
    """FRCorr and FRdist sum over K and FRdist grows with T: such runs would compare unfairly."""
    with pytest.raises(InputError, match=r"runs differ in samples per item \(K\) \(random: 2, random-k3: 3\)"):
        compare_runs(work, "val", ["random"], ["random-k3"], frames=60, n_boot=500)
    with pytest.raises(InputError, match=r"runs differ in frames per item \(T\) \(random: 60, random-t40: 40\)"):
        compare_runs(work, "val", ["random"], ["random-t40"], frames=60, n_boot=500)
    ok = compare_runs(work, "val", ["random"], ["random-s1"], frames=60, n_boot=500)
    assert ok["K"] == 2 and ok["T"] == 60


def test_item_scores_match_the_stored_metrics(work):
    s = item_scores(work, "random", "val", identities=listener_ids(load_items(work, "val")), frames=60)
    res = evaluate_personal(work, "random", "val", frames=60, out=work / "p.json")
    assert np.isclose(s["FRCorr"].mean(), res["personal_FRCorr"]) and np.isclose(s["FRdist"].mean(), res["personal_FRdist"])


def test_copying_the_real_reaction_beats_random_and_a_run_ties_itself(work):
    res = compare_runs(work, "val", ["random", "random-s1"], ["gt"], frames=60, n_boot=500)
    for metric in ("FRCorr", "FRdist"):
        assert res["groups"]["all"][metric]["verdict"] == "better", res["groups"]["all"][metric]
    assert res["groups"]["all"]["FRCorr"]["repeats"] == [2, 1]
    assert json.loads((work / "metrics" / "compare-gt-vs-random-val.json").read_text())["runs"] == ["gt"]
    same = compare_runs(work, "val", ["meanseq"], ["meanseq"], personal=True, frames=60, n_boot=500)
    for r in same["groups"]["all"].values():
        assert r["diff"] == 0 and r["ci"] == [0, 0] and r["verdict"] == "no clear difference"
    assert same["path"].endswith("compare-meanseq-vs-meanseq-val-personal.json")


def test_cli_prints_the_table_and_names_a_missing_run(work, cli):
    res = cli("evaluate", "compare", "--work", work, "--split", "val", "--base", "random", "--run", "gt",
              "--boot", "500", "--out", work / "c.json")
    assert res.exit_code == 0, res.output
    assert "gt vs random (val)" in res.output and "all (6)" in res.output and "better" in res.output
    assert json.loads((work / "c.json").read_text())["groups"]["all"]["FRdist"]["verdict"] == "better"
    res = cli("evaluate", "compare", "--work", work, "--split", "val", "--base", "nope", "--run", "gt")
    assert res.exit_code != 0 and "nope" in res.output and "Traceback" not in res.output


def test_evaluate_personal_cli_prints_the_scores(work, cli):
    res = cli("evaluate", "personal", "--work", work, "--split", "val", "--run", "random", "--out-dir", work / "pp")
    assert res.exit_code == 0, res.output
    stored = json.loads((work / "pp" / "random-val-personal.json").read_text())
    assert f"personal FRCorr {stored['personal_FRCorr']:.4g}" in res.output and "nan" not in res.output
