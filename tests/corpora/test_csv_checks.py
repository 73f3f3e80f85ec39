"""Split and Emotion CSVs (issue 27: missing split, duplicated row, reordered header; read with pandas)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from reactcli.cli.main import app
from reactcli.corpora.common import EMOTION_COLUMNS, load_emotion_csv
from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.errors import InputError
from reactcli.synthetic.react_layout import write_tiny_react


def test_explicit_split_list_fails_on_a_missing_csv(tmp_path):
    root = write_tiny_react(tmp_path / "r", pairs_per_split=2, splits=("train", "val"))
    with pytest.raises(InputError, match=r"test\.csv: split CSV not found.*--splits train,test"):
        prepare_react(root, tmp_path / "w", ReactConfig(splits=("train", "test")))
    res = CliRunner().invoke(app, ["prepare", "react", "--root", str(root), "--work", str(tmp_path / "w"),
                                   "--splits", "train,val,test"])
    assert res.exit_code == 1 and "test.csv" in res.output and "Traceback" not in res.output
    s = prepare_react(root, tmp_path / "w")  # default: the splits the root has
    assert set(s.items) == {"train", "val"}


def test_duplicated_split_row_is_an_error(tmp_path):
    root = write_tiny_react(tmp_path / "r", pairs_per_split=2)
    lines = (root / "train.csv").read_text().splitlines()
    (root / "train.csv").write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(InputError, match=rf"train\.csv:{len(lines) + 1}: duplicate row.*line 2"):
        prepare_react(root, tmp_path / "w")


def _emotion(path, arr, header):
    np.savetxt(path, arr, delimiter=",", header=",".join(header), comments="", fmt="%.4f")


def test_emotion_columns_are_taken_by_name(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.random((5, 25)).round(4)
    cols = list(EMOTION_COLUMNS)
    _emotion(tmp_path / "a.csv", arr, cols)
    perm = list(range(25))
    perm[15], perm[16] = 16, 15  # valence and arousal swapped, columns named
    _emotion(tmp_path / "b.csv", arr[:, perm], [cols[i] for i in perm])
    a, b = load_emotion_csv(tmp_path / "a.csv"), load_emotion_csv(tmp_path / "b.csv")
    np.testing.assert_array_equal(a, arr.astype(np.float32))
    np.testing.assert_array_equal(b, a)
    # an unnamed index column in front of named columns is dropped
    np.savetxt(tmp_path / "c.csv", np.c_[np.arange(5), arr], delimiter=",", header="," + ",".join(cols), comments="", fmt="%.4f")
    np.testing.assert_array_equal(load_emotion_csv(tmp_path / "c.csv"), a)
    # other names: by position, as before
    _emotion(tmp_path / "d.csv", arr, [f"c{i}" for i in range(25)])
    np.testing.assert_array_equal(load_emotion_csv(tmp_path / "d.csv"), a)


def test_emotion_header_with_some_challenge_names_missing_is_an_error(tmp_path):
    cols = list(EMOTION_COLUMNS)
    cols[16] = "arousl"
    _emotion(tmp_path / "e.csv", np.zeros((3, 25)), cols)
    with pytest.raises(InputError, match=r"e\.csv: emotion CSV header .*lacks \['arousal'\]"):
        load_emotion_csv(tmp_path / "e.csv")
    (tmp_path / "f.csv").write_text(",".join(EMOTION_COLUMNS) + "\n" + ",".join(["0.1"] * 24 + ["x"]) + "\n")
    with pytest.raises(InputError, match=r"f\.csv: emotion CSV has non-numeric"):
        load_emotion_csv(tmp_path / "f.csv")
