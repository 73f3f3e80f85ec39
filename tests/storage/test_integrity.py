"""Stored CRC32s are checked on read and by `reactcli verify` (issue 27 items 4 and 8)."""

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from reactcli.cli.main import app
from reactcli.errors import InputError
from reactcli.storage import FeatureStore, verify_store


def _store(tmp_path):
    store = FeatureStore(tmp_path)
    rng = np.random.default_rng(0)
    with store.writer("emo") as w:
        w.write("S/s/P1/1", "emotion", rng.random((751, 25)), fps=25.0)
        w.write("S/s/P1/2", "emotion", rng.random((751, 25)), fps=25.0)
    store.refresh()
    return tmp_path / "features/emo.h5"


def _flip(path, key, nbytes, offset_in_data=100):
    with h5py.File(path, "r") as h5:
        off = h5[key].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(off + offset_in_data)
        old = fh.read(nbytes)
        fh.seek(off + offset_in_data)
        fh.write(bytes(b ^ 0xFF for b in old) if nbytes > 1 else bytes([old[0] ^ 0x01]))


@pytest.mark.parametrize("nbytes", [1, 4000])
def test_bit_flip_is_a_named_error_on_read(tmp_path, nbytes):
    path = _store(tmp_path)
    _flip(path, "S/s/P1/2/emotion", nbytes)
    store = FeatureStore(tmp_path)
    assert store.read("S/s/P1/1", "emotion").shape == (751, 25)  # the intact array reads
    with pytest.raises(InputError) as err:
        store.read("S/s/P1/2", "emotion")
    msg = str(err.value)
    assert "emo.h5" in msg and "S/s/P1/2/emotion" in msg and "corrupt" in msg and "\n" not in msg
    # a slice of it is refused too (the check reads the whole array once)
    with pytest.raises(InputError, match="corrupt"):
        FeatureStore(tmp_path).read("S/s/P1/2", "emotion", slice(0, 10))


def test_verify_lists_every_corrupt_array_and_exits_1(tmp_path):
    path = _store(tmp_path)
    res = verify_store(tmp_path)
    assert res == {"files": 1, "arrays": 2, "superseded": 0, "problems": []}
    ok = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert ok.exit_code == 0 and "0 problems" in ok.output
    _flip(path, "S/s/P1/1/emotion", 1, offset_in_data=7)
    _flip(path, "S/s/P1/2/emotion", 1, offset_in_data=7000)
    res = verify_store(tmp_path)
    assert len(res["problems"]) == 2
    assert all("emo.h5" in p and "corrupt" in p for p in res["problems"])
    bad = CliRunner().invoke(app, ["verify", "--work", str(tmp_path)])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "S/s/P1/1/emotion" in bad.output and "S/s/P1/2/emotion" in bad.output


def test_damaged_file_header_is_a_named_error(tmp_path):
    path = _store(tmp_path)
    data = bytearray(path.read_bytes())
    data[0:2048] = bytes(2048)  # superblock and object headers gone
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="emo.h5"):
        FeatureStore(tmp_path).read("S/s/P1/1", "emotion")
    res = verify_store(tmp_path)
    assert len(res["problems"]) >= 1 and "emo.h5" in res["problems"][0]
    bad = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert bad.exit_code == 1 and "Traceback" not in bad.output


def test_short_or_mixed_arrays_are_named_not_stacked(tmp_path):
    from reactcli.storage.items import stack_clips

    store = FeatureStore(tmp_path)
    with store.writer("x") as w:
        w.write("a", "f", np.zeros((10, 3)), fps=25)
        w.write("b", "f", np.zeros((8, 3)), fps=25)
        w.write("c", "f", np.zeros((10, 4)), fps=25)
    store.refresh()
    assert stack_clips(store, ["a", "b"], "f", 8).shape == (2, 8, 3)
    assert stack_clips(store, ["a"], "f", 750).shape == (1, 10, 3)  # all shorter: their length
    with pytest.raises(InputError, match=r"clip 'b' gives \(8, 3\) for 10 frames, but clip 'a' gives \(10, 3\)"):
        stack_clips(store, ["a", "b"], "f", 10)
    with pytest.raises(InputError, match=r"clip 'c' gives \(10, 4\)"):
        stack_clips(store, ["a", "c"], "f", 10)
