"""The training data refuses a store that mixes two extractions (issue 27: options checked
against the data), naming the clips, before any batch is built."""

import numpy as np
import pytest

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.errors import InputError
from reactcli.manifest.items import load_items
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react
from reactcli.training.data import DataConfig, ReactionDataset


def _work(tmp_path, widths):
    root = write_tiny_react(tmp_path / "r", pairs_per_split=2, frames=61, splits=("train",))
    work = tmp_path / "w"
    prepare_react(root, work, ReactConfig(frames=61, splits=("train",)))
    store = FeatureStore(work)
    clips = store.clips("emotion")
    with store.writer("mfcc") as w:
        for c, d in zip(clips, widths):
            w.write(c, "mfcc", np.zeros((61, d)), fps=25)
    store.refresh()
    return work, clips


def test_mixed_audio_widths_are_named(tmp_path):
    work, clips = _work(tmp_path, [78, 78, 78, 40])
    table = load_items(work, "train")
    with pytest.raises(InputError, match=r"mfcc of clip .* has 40 dims but clip .* has 78"):
        ReactionDataset(work, table, DataConfig(frames=60, crop=None))


def test_consistent_store_is_accepted(tmp_path):
    work, clips = _work(tmp_path, [78, 78, 78, 78])
    ds = ReactionDataset(work, load_items(work, "train"), DataConfig(frames=60, crop=None))
    assert ds[0]["speaker_audio"].shape == (60, 78)
