"""The challenge's array conventions both ways: `export` writes what the authors' evaluators read,
`evaluate arrays` on it reproduces `evaluate run`, and `import predictions` brings arrays back
as a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.errors import InputError
from reactcli.generation.baselines import generate_baseline
from reactcli.generation.exchange import export_run, import_predictions
from reactcli.metrics.store import evaluate_run
from reactcli.synthetic.react_layout import write_tiny_react

KEYS = ("FRCorr", "FRCorr_per_sample", "FRdist", "FRdist_per_sample", "FRDiv", "FRDvs", "FRVar", "FRSyn")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xchg")
    root = write_tiny_react(tmp / "r", pairs_per_split=3, frames=61)  # 61 frames: the "751" of this corpus
    work = tmp / "w"
    prepare_react(root, work, ReactConfig(frames=61))
    generate_baseline(work, "random", split="val", num_samples=3, frames=60)
    return work


def test_export_layout_and_evaluate_arrays_reproduces_evaluate_run(work, tmp_path, cli):
    ref = evaluate_run(work, "random", "val", frames=60, out=tmp_path / "ref.json")
    rec = export_run(work, "random", "val", tmp_path / "x", frames=60)
    x = tmp_path / "x"
    names = sorted(p.name for p in x.iterdir())
    assert names == ["export.json", "items.csv", "listener_emotion.npy", "listener_tdmm.npy", "neighbour_emotion_val.npy",
                     "predictions_emotion.npy", "predictions_tdmm.npy", "speaker_emotion.npy", "speaker_tdmm.npy"]
    assert np.load(x / "predictions_emotion.npy").shape == (6, 3, 60, 25)  # 3 pairs, mirrored
    assert np.load(x / "listener_tdmm.npy").shape == (6, 60, 58) and np.load(x / "neighbour_emotion_val.npy").shape == (6, 6)
    rows = (x / "items.csv").read_text().splitlines()
    assert rows[0] == "index,speaker_path,listener_path,mirrored" and rows[4].endswith(",1")  # item 3: the first mirrored
    first, mirrored = rows[1].split(","), rows[4].split(",")
    assert (first[1], first[2]) == (mirrored[2], mirrored[1])  # the same pair with roles swapped
    assert json.loads((x / "export.json").read_text())["files"]["predictions_emotion.npy"]["shape"] == [6, 3, 60, 25]
    assert rec["run"] == "random" and not [p for p in tmp_path.iterdir() if p.name.startswith(".x.")]
    res = cli("evaluate", "arrays", "--pred", x / "predictions_emotion.npy", "--listener", x / "listener_emotion.npy",
              "--speaker", x / "speaker_emotion.npy", "--appropriate", x / "neighbour_emotion_val.npy",
              "--out", tmp_path / "arr.json")
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "arr.json").read_text())
    for k in KEYS:
        assert got[k] == ref[k], k


def test_evaluate_arrays_takes_751_frame_ground_truth_with_frames(work, tmp_path, cli):
    x = tmp_path / "x"
    export_run(work, "random", "val", x, frames=60)
    # the real data at 61 frames (the corpus's "751") against 60-frame predictions
    L61 = np.concatenate([np.load(x / "listener_emotion.npy"), np.load(x / "listener_emotion.npy")[:, -1:]], axis=1)
    S61 = np.concatenate([np.load(x / "speaker_emotion.npy"), np.load(x / "speaker_emotion.npy")[:, -1:]], axis=1)
    np.save(tmp_path / "L61.npy", L61)
    np.save(tmp_path / "S61.npy", S61)
    args = ["evaluate", "arrays", "--pred", x / "predictions_emotion.npy", "--listener", tmp_path / "L61.npy",
            "--speaker", tmp_path / "S61.npy", "--appropriate", x / "neighbour_emotion_val.npy"]
    res = cli(*args, "--out", tmp_path / "no.json")
    assert res.exit_code == 1 and not (tmp_path / "no.json").exists()
    res = cli(*args, "--out", tmp_path / "yes.json", "--frames", "60")
    assert res.exit_code == 0, res.output
    res = cli(*args, "--out", tmp_path / "long.json", "--frames", "70")
    assert res.exit_code == 1 and "fewer than --frames 70" in " ".join(res.output.split())


def test_export_errors_are_named_and_write_nothing(work, tmp_path):
    with pytest.raises(InputError, match="has 60 frames per item; the export needs 750"):
        export_run(work, "random", "val", tmp_path / "a")
    assert not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        export_run(work, "random", "val", tmp_path / "b", frames=60)
    with pytest.raises(InputError, match="generation run 'nope'"):
        export_run(work, "nope", "val", tmp_path / "c", frames=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_imported_predictions_score_like_the_run_they_came_from(work, tmp_path, cli):
    x = tmp_path / "x"
    export_run(work, "random", "val", x, frames=60)
    res = cli("import", "predictions", "--work", work, "--run", "theirs", "--split", "val",
              "--emotion", x / "predictions_emotion.npy", "--tdmm", x / "predictions_tdmm.npy")
    assert res.exit_code == 0, res.output
    a = evaluate_run(work, "random", "val", frames=60, out=tmp_path / "a.json")
    b = evaluate_run(work, "theirs", "val", frames=60, out=tmp_path / "b.json")
    for k in KEYS:
        assert a[k] == b[k], k
    # the same files again resume; other files need --overwrite
    import_predictions(work, "theirs", "val", {"emotion": x / "predictions_emotion.npy", "tdmm": x / "predictions_tdmm.npy"})
    P = np.load(x / "predictions_emotion.npy")
    np.save(tmp_path / "other.npy", P[:, :2])
    with pytest.raises(InputError, match="other settings"):
        import_predictions(work, "theirs", "val", {"emotion": tmp_path / "other.npy"})


@pytest.mark.parametrize("shape, message", [((5, 2, 60, 25), r"expected \(6, K, T, 25\)"),
                                            ((6, 2, 60, 24), r"expected \(6, K, T, 25\)"),
                                            ((6, 60, 25), r"expected \(6, K, T, 25\)")])
def test_import_checks_the_arrays(work, tmp_path, shape, message):
    np.save(tmp_path / "p.npy", np.zeros(shape, np.float32))
    with pytest.raises(InputError, match=message):
        import_predictions(work, "bad", "val", {"emotion": tmp_path / "p.npy"})


def test_import_refuses_nan_and_keeps_the_first_frames(work, tmp_path):
    P = np.random.default_rng(0).random((6, 2, 61, 25)).astype(np.float32)
    P[2, 1, 5, 7] = np.nan
    np.save(tmp_path / "nan.npy", P)
    with pytest.raises(InputError, match="NaN/inf \\(first at item 2, sample 1, frame 5, dim 7\\)"):
        import_predictions(work, "nan", "val", {"emotion": tmp_path / "nan.npy"})
    P[2, 1, 5, 7] = 0.5
    np.save(tmp_path / "p61.npy", P)
    import_predictions(work, "p61", "val", {"emotion": tmp_path / "p61.npy"}, frames=60)
    from reactcli.generation.store import load_generated

    np.testing.assert_array_equal(load_generated(work, "p61", "val", "emotion"), P[:, :, :60])
