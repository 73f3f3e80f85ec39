"""Model selection on a validation split (reactcli.metrics.select / `evaluate select`)."""

from __future__ import annotations

import json

import pytest

from reactcli.errors import ConfigError, InputError
from reactcli.metrics.select import select_run

SCORES = {  # run -> (FRdist, FRCorr, FRDiv)
    "s0": (175.3, 0.81, 0.013),
    "s1": (152.4, 0.79, 0.016),
    "s2": (140.0, 0.70, 0.0),  # best FRdist but K identical samples
    "s3": (176.6, 0.82, 0.012),
}


@pytest.fixture
def work(tmp_path):
    for run, (dist, corr, div) in SCORES.items():
        (tmp_path / "metrics").mkdir(exist_ok=True)
        (tmp_path / "metrics" / f"{run}-val.json").write_text(json.dumps({"FRdist": dist, "FRCorr": corr, "FRDiv": div}))
        (tmp_path / "runs" / run).mkdir(parents=True)
        (tmp_path / "runs" / run / "generate-val.json").write_text(
            json.dumps({"split": "val", "checkpoint": f"/ck/{run}.pt"}))
    return tmp_path


def test_lowest_frdist_with_diversity_wins(work):
    res = select_run(work, ["s0", "s1", "s2", "s3"], out=work / "sel.json")
    assert res["chosen"] == "s1" and res["checkpoint"] == "/ck/s1.pt" and res["value"] == 152.4
    assert json.loads((work / "sel.json").read_text())["chosen"] == "s1"
    assert [c["run"] for c in res["candidates"]] == ["s0", "s1", "s2", "s3"]
    # without the diversity requirement the collapsed run wins
    assert select_run(work, ["s0", "s1", "s2"], require_diversity=False)["chosen"] == "s2"


def test_higher_is_better_metrics_and_ties(work):
    assert select_run(work, ["s0", "s1", "s3"], metric="FRCorr")["chosen"] == "s3"
    assert select_run(work, ["s1", "s1"])["chosen"] == "s1"


def test_errors_name_the_run(work):
    with pytest.raises(InputError, match="scores of run 'nope'"):
        select_run(work, ["s0", "nope"])
    with pytest.raises(InputError, match="no candidate has FRDiv > 0"):
        select_run(work, ["s2"])
    with pytest.raises(ConfigError, match="--metric 'FRVar'"):
        select_run(work, ["s0"], metric="FRVar")
    (work / "runs" / "s3" / "generate-val.json").write_text(json.dumps({"split": "test", "checkpoint": "x"}))
    with pytest.raises(InputError, match="run 's3' was generated for split 'test'"):
        select_run(work, ["s3"])


def test_cli(work, cli):
    res = cli("evaluate", "select", "--work", work, "--run", "s0", "--run", "s1", "--out", work / "c.json")
    assert res.exit_code == 0, res.output
    assert "chosen: s1 (/ck/s1.pt)" in res.output
    bad = cli("evaluate", "select", "--work", work, "--run", "zz")
    assert bad.exit_code != 0 and "scores of run 'zz'" in bad.output and "Traceback" not in bad.output


def test_candidates_scored_on_other_protocols_are_refused(work):
    """The official FRCorr/FRdist sum over K (FRdist also grows with T): no choice across them."""
    for run, k in (("s0", 10), ("s1", 5)):
        path = work / "metrics" / f"{run}-val.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "K": k, "T": 750, "feature": "emotion"}))
    with pytest.raises(InputError, match=r"candidates differ in samples per item \(K\) \(s0: 10, s1: 5\)"):
        select_run(work, ["s0", "s1"])
