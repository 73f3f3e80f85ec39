"""Metric tables that load into pandas: per-item terms, the per-item CSV and the summary of runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.errors import InputError
from reactcli.generation.baselines import generate_baseline
from reactcli.metrics import evaluate_arrays, evaluate_with_items
from reactcli.metrics.tables import summary_frame
from reactcli.metrics.tlcc import frsyn_scores
from reactcli.synthetic.react_layout import write_tiny_react


def test_per_item_terms_are_the_hand_computed_shares_of_the_official_values():
    rng = np.random.default_rng(7)
    N, K, T, D = 4, 3, 60, 25
    P = rng.random((N, K, T, D)).astype(np.float32)
    L = rng.random((N, T, D)).astype(np.float32)
    S = rng.random((N, T, D)).astype(np.float32)
    A = np.eye(N, dtype=np.uint8)
    A[0, 2] = 1
    res, items = evaluate_with_items(P, L, S, A)
    # the official values are the ones evaluate_arrays gives (timings aside), bit for bit
    plain = evaluate_arrays(P, L, S, A)
    for key in ("FRCorr", "FRCorr_per_sample", "FRdist", "FRdist_per_sample", "FRDiv", "FRDvs", "FRVar", "FRSyn"):
        assert res[key] == plain[key], key
        assert items[key].shape == (N,)
    assert float(items["FRCorr"].mean()) == res["FRCorr"] and float(items["FRdist"].mean()) == res["FRdist"]
    X = P.astype(np.float64)
    # FRDiv of an item: mean squared distance between two of its K samples
    div = [sum(((X[n, a] - X[n, b]) ** 2).sum() for a in range(K) for b in range(K) if a != b) / (K * (K - 1) * T * D)
           for n in range(N)]
    # FRDvs of an item: its spread from the mean over items, scaled so the mean over items is FRDvs
    dvs = 2 * N * ((X - X.mean(0)) ** 2).sum(axis=(1, 2, 3)) / ((N - 1) * K * T * D)
    var = X.var(axis=2, ddof=1).mean(axis=(1, 2))
    syn = frsyn_scores(P, S)[0].mean(axis=1)
    for key, want in (("FRDiv", div), ("FRDvs", dvs), ("FRVar", var), ("FRSyn", syn)):
        assert np.allclose(items[key], want, rtol=1e-9), key
        assert np.isclose(items[key].mean(), res[key], rtol=1e-9), key
    # an item's FRDiv term changes only with its own samples
    P2 = P.copy()
    P2[1, 0] += 1.0
    _, items2 = evaluate_with_items(P2, L, S, A, metrics=("FRDiv",))
    assert items2["FRDiv"][0] == items["FRDiv"][0] and items2["FRDiv"][1] > items["FRDiv"][1]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tables")
    root = write_tiny_react(tmp / "r", pairs_per_split=3, frames=61)
    work = tmp / "w"
    prepare_react(root, work, ReactConfig(frames=61))
    long = "random-with-a-name-longer-than-any-terminal-column-would-show-" + "x" * 40
    for name, run in (("gt", "gt"), ("random", long), ("meanseq", "meanseq")):
        generate_baseline(work, name, split="val", num_samples=2, frames=60, run=run)
    return work, long


def test_evaluate_run_writes_items_and_a_summary_pandas_reads(work, cli):
    work, long = work
    res = cli("evaluate", "run", "--work", work, "--split", "val", "--run", "gt", "--run", long, "--run", "meanseq")
    assert res.exit_code == 0, res.output
    folder = work / "metrics"
    stored = json.loads((folder / "gt-val.json").read_text())
    assert stored["reactcli_version"] and stored["generation"]["seed"] == 0 and stored["seed"] == 0
    assert stored["generation"]["options"]["mime_lag"] is not None or "model" in stored["generation"]
    items = pd.read_csv(folder / "gt-val-items.csv")
    assert list(items["item"]) == list(range(6)) and items["item_id"].str.startswith("val").all()
    assert {"FRCorr", "FRdist", "FRDiv", "FRDvs", "FRVar", "FRSyn"} <= set(items.columns)
    assert items["FRCorr"].mean() == pytest.approx(stored["FRCorr"], rel=1e-12)
    summary = pd.read_csv(folder / "summary.csv")
    assert len(summary) == 3 and sorted(summary["run"]) == sorted(["gt", long, "meanseq"])  # full names
    row = summary.set_index("run").loc["gt"]
    assert row["FRCorr"] == pytest.approx(stored["FRCorr"], rel=1e-12) and row["split"] == "val"
    assert summary["FRRea"].isna().all()  # n/a: an empty cell, not the text "n/a"
    for col in ("FRCorr", "FRdist", "FRDiv", "FRDvs", "FRVar", "FRSyn"):
        assert summary[col].dtype == np.float64, col


def test_summary_takes_new_metric_keys_and_personal_scores_and_prints_csv_when_piped(work, cli):
    work, long = work
    folder = work / "metrics"
    if not (folder / "gt-val.json").is_file():
        assert cli("evaluate", "run", "--work", work, "--split", "val", "--run", "gt", "--run", "meanseq").exit_code == 0
    data = json.loads((folder / "meanseq-val.json").read_text())
    data["FRNat"] = 0.25  # a metric another version adds
    data["naturalness"] = {"jerk": 1.5}
    (folder / "meanseq-val.json").write_text(json.dumps(data))
    assert cli("evaluate", "personal", "--work", work, "--split", "val", "--run", "gt").exit_code == 0
    pers = json.loads((folder / "gt-val-personal.json").read_text())
    assert pers["reactcli_version"] and pers["generation"]["seed"] == 0 and pers["generation"]["model"] == "baseline:gt"
    (folder / "compare-x.json").write_text(json.dumps({"groups": {}}))  # not a run: left out
    res = cli("evaluate", "summary", "--work", work, "--out", work / "s.csv")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(work / "s.csv")
    assert df.set_index("run").loc["meanseq", "FRNat"] == 0.25 and df.set_index("run").loc["meanseq", "naturalness.jerk"] == 1.5
    assert np.isnan(df.set_index("run").loc["gt", "FRNat"])
    assert df.set_index("run").loc["gt", "personal_FRCorr"] == pytest.approx(
        json.loads((folder / "gt-val-personal.json").read_text())["personal_FRCorr"])
    cols = list(df.columns)
    assert cols[0] == "run" and cols.index("FRCorr") < cols.index("FRNat")
    # CliRunner's stdout is not a terminal: the printed text is the CSV itself, whatever the width
    assert res.output.startswith(",".join(cols[:3])) and long in res.output
    assert summary_frame(folder).shape == df.shape


def test_summary_of_an_empty_folder_is_a_named_error(tmp_path, cli):
    (tmp_path / "metrics").mkdir()
    with pytest.raises(InputError, match="no metrics JSON"):
        summary_frame(tmp_path / "metrics")
    res = cli("evaluate", "summary", "--work", tmp_path)
    assert res.exit_code != 0 and "no metrics JSON" in res.output and "Traceback" not in res.output
