"""A full disk while training: the error names the path, and after space is freed the resumed run
equals the uninterrupted one, with every epoch once in log.jsonl (issue 27)."""

from __future__ import annotations

import errno
import os

import pytest
import torch

import reactcli.io as rio
from reactcli.models.checkpoint import load_checkpoint

from .test_resume import _log, _train


def test_full_disk_at_a_checkpoint_then_rerun_is_identical(tmp_path, monkeypatch):
    _train(tmp_path / "straight")
    real = rio.tempfile.mkstemp
    saves = {"n": 0}

    def mkstemp(*a, **kw):
        if str(kw.get("suffix", "")).endswith(".pt"):
            saves["n"] += 1
            if saves["n"] == 3:  # the third checkpoint write finds the disk full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(kw.get("dir")))
        return real(*a, **kw)

    with monkeypatch.context() as m:
        m.setattr(rio.tempfile, "mkstemp", mkstemp)
        with pytest.raises(OSError) as err:
            _train(tmp_path / "split")
    assert err.value.errno == errno.ENOSPC and str(tmp_path / "split") in err.value.filename
    assert not [p for p in (tmp_path / "split").iterdir() if ".tmp" in p.name]  # no temp file left
    _train(tmp_path / "split")  # space freed: rerun resumes
    a = load_checkpoint(tmp_path / "straight" / "model.pt")
    b = load_checkpoint(tmp_path / "split" / "model.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert _log(tmp_path / "split") == _log(tmp_path / "straight")  # no duplicate epoch lines
