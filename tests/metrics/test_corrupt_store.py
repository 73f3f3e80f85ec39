"""A corrupt stored array stops `reactcli evaluate run` with one line naming it (issue 27 item 8)."""

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from reactcli.cli.main import app


@pytest.mark.parametrize("nbytes", [1, 3000])
def test_evaluate_names_the_corrupt_array(tmp_path, nbytes):
    from reactcli.corpora.react import ReactConfig, prepare_react
    from reactcli.generation.store import write_generated
    from reactcli.manifest.items import load_items
    from reactcli.storage import FeatureStore
    from reactcli.synthetic.react_layout import write_tiny_react

    root = write_tiny_react(tmp_path / "root", pairs_per_split=2, frames=61, splits=("test",), seed=0)
    work = tmp_path / "work"
    prepare_react(root, work, ReactConfig(frames=61, splits=("test",)))
    table = load_items(work, "test")
    rng = np.random.default_rng(0)
    batches = ([[i], {"emotion": rng.random((1, 2, 60, 25)).astype(np.float32)}] for i in range(table.n))
    write_generated(work, "r1", "test", table, batches, num_samples=2, seed=0, meta={})
    ref = FeatureStore(work).ref(table.pairs[1].listener, "emotion")
    with h5py.File(work / ref.store, "r") as h5:
        off = h5[ref.key].id.get_offset()
    with open(work / ref.store, "r+b") as fh:
        fh.seek(off + 40)
        old = fh.read(nbytes)
        fh.seek(off + 40)
        fh.write(bytes(b ^ (0x01 if nbytes == 1 else 0xFF) for b in old))
    res = CliRunner().invoke(app, ["evaluate", "run", "--work", str(work), "--run", "r1", "--split", "test"])
    flat = " ".join(res.output.split())
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "corrupt" in flat and ref.store in flat and ref.key in flat
    bad = CliRunner().invoke(app, ["verify", str(work)])
    assert bad.exit_code == 1 and ref.key in " ".join(bad.output.split())
