"""Checkpoint files: atomic, and byte-identical for equal contents (parents are recorded by SHA-1)."""

import pytest
import torch

from reactcli.errors import InputError
from reactcli.io import atomic_torch_save
from reactcli.models.checkpoint import load_checkpoint, save_checkpoint, save_model, sha1_of
from reactcli.models.perfrdiff import GAFRG, GAFRGConfig


def test_equal_contents_give_equal_bytes(tmp_path):
    payload = {"model": "tiny", "config": {}, "state_dict": {"w": torch.arange(6.0).view(2, 3)}, "epoch": 3}
    save_checkpoint(tmp_path / "a" / "model.pt", payload)
    save_checkpoint(tmp_path / "b" / "other.pt", payload)
    assert sha1_of(tmp_path / "a" / "model.pt") == sha1_of(tmp_path / "b" / "other.pt")
    assert torch.equal(load_checkpoint(tmp_path / "a" / "model.pt")["state_dict"]["w"], payload["state_dict"]["w"])
    # a different tensor value gives different bytes (the hash would see a retrained parent)
    save_checkpoint(tmp_path / "c.pt", {**payload, "state_dict": {"w": torch.ones(2, 3)}})
    assert sha1_of(tmp_path / "c.pt") != sha1_of(tmp_path / "a" / "model.pt")
    # the same for a model saved with its config (save_model)
    torch.manual_seed(0)
    model = GAFRG(GAFRGConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=16, emotion_hidden=8, window=4, speaker_lag=4))
    save_model(tmp_path / "g1.pt", "perfrdiff-gafrg", model, model.config.to_dict())
    save_model(tmp_path / "g2.pt", "perfrdiff-gafrg", model, model.config.to_dict())
    assert sha1_of(tmp_path / "g1.pt") == sha1_of(tmp_path / "g2.pt")


def test_a_failed_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "model.pt"
    atomic_torch_save({"x": 1}, path)
    before = sha1_of(path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"x": Unpicklable()}, path)
    assert sha1_of(path) == before and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    with pytest.raises(InputError, match="not a reactcli checkpoint"):
        load_checkpoint(path)
