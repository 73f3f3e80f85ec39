"""``reactcli extract``'s face and device options: the adapters' factories from the CLI, real
choices, and ``--device`` honoured where the shards run (not in the driver)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reactcli.errors import ConfigError
from reactcli.execution import ExecConfig
from reactcli.features.stage import ExtractConfig, extract_shard, plan_extractors, run_extract
from reactcli.manifest import ClipRecord, write_manifest
from reactcli.storage import FeatureStore
from tests.media.synth import write_frames_video

N = 8
FACTORY = """
import numpy as np
import torch


class ChannelMeans(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, x):
        return x.mean(dim=(2, 3)) @ self.w


def build(path):
    return ChannelMeans(torch.from_numpy(np.load(path)))
"""


def invoke(*args: object) -> tuple[int, str]:
    from reactcli.cli.main import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, " ".join(res.output.split())


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A work dir with two clips (uniform colours), a factory file and its weights."""
    base = tmp_path_factory.mktemp("extract_opts")
    colours = np.stack([np.arange(N) * 25, 255 - np.arange(N) * 20, np.full(N, 90)], 1).astype(np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (N, 48, 48, 3))
    records = []
    for i in (1, 2):
        video = write_frames_video(base / f"clip{i}.mp4", frames if i == 1 else frames[::-1].copy())
        records.append(ClipRecord(id=f"NoXI/s/Expert_video/{i}", site="NoXI", session="NoXI/s", person="Expert_video",
                                  index=i, start=0.0, end=N / 25, num_frames=N, split="train", video=str(video)))
    w = base / "w"
    write_manifest(w / "manifests" / "clips.jsonl", records)
    (base / "wrappers").mkdir()
    (base / "wrappers" / "emoca_wrapper.py").write_text(FACTORY)
    np.save(base / "weights.npy", np.random.default_rng(2).uniform(-1, 1, (3, 56)).astype(np.float32))
    return {"work": w, "factory": base / "wrappers" / "emoca_wrapper.py", "weights": base / "weights.npy",
            "colours": colours}


def test_factory_from_the_cli_in_two_jobs(work: dict[str, Path]) -> None:
    code, out = invoke("extract", "--work", work["work"], "--features", "emoca", "--num-jobs", 2,
                       "--emoca-factory", f"{work['factory']}:build", "--emoca-path", work["weights"],
                       "--face-crop", "center")
    assert code == 0, out
    store = FeatureStore(work["work"])
    w = np.load(work["weights"])
    for i, colours in ((1, work["colours"]), (2, work["colours"][::-1])):
        clip = f"NoXI/s/Expert_video/{i}"
        np.testing.assert_allclose(store.read(clip, "emoca"), colours / 255.0 @ w, atol=0.03)
        np.testing.assert_allclose(store.read(clip, "emoca_crop")[0], [16 / 256, 16 / 256, 240 / 256, 240 / 256, 0])
        config = json.loads(store.attrs(clip, "emoca")["config"])
        assert config["factory"] == f"{work['factory']}:build" and config["device"] == "cpu"
        assert config["crop"] == "center"


def test_choices_are_listed_and_bad_ones_exit_2(work: dict[str, Path]) -> None:
    from reactcli.cli.main import app

    res = CliRunner().invoke(app, ["extract", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for choice in ("face|center|resize", "mediapipe|fan", "sfd|mediapipe", "--emoca-factory", "--device"):
        assert choice in res.output, choice
    res = CliRunner().invoke(app, ["extract", "--work", str(work["work"]), "--features", "emoca",
                                   "--face-crop", "middle"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "'middle' is not one of 'face', 'center', 'resize'" in res.output


def test_missing_fan_weights_from_the_cli(work: dict[str, Path]) -> None:
    pytest.importorskip("face_alignment")
    code, out = invoke("extract", "--work", work["work"], "--features", "landmarks", "--landmarks-backend", "fan")
    assert code == 1 and "2DFAN4-11f355bf06.pth.tar" in out and "--fan-dir" in out


def test_bad_or_unavailable_device_is_one_named_line(work: dict[str, Path]) -> None:
    args = ("extract", "--work", work["work"], "--features", "emoca", "--emoca-factory", f"{work['factory']}:build",
            "--emoca-path", work["weights"], "--face-crop", "center")
    code, out = invoke(*args, "--device", "gpu0")
    assert code == 1 and "--device 'gpu0': expected cpu, cuda, cuda:N or auto" in out
    if not torch.cuda.is_available():
        code, out = invoke(*args, "--device", "cuda")
        assert code == 1 and "--device cuda: CUDA is not available on this machine" in out


def test_device_goes_to_every_network_extractor() -> None:
    plan = dict(plan_extractors(ExtractConfig(
        features=["mfcc", "wav2vec2", "landmarks", "emoca", "faceverse", "graphau", "emotion"], device="auto",
        options={"graphau": {"device": "cpu"}})))
    assert {k for k, o in plan.items() if "device" in o} == {"wav2vec2", "landmarks", "emoca", "faceverse", "graphau"}
    assert plan["emoca"]["device"] == "auto" and plan["graphau"]["device"] == "cpu"  # per-extractor wins
    assert "device" not in plan["mfcc"] and "device" not in plan["precomputed"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a driver without a GPU")
def test_device_is_resolved_in_the_shards_not_in_the_driver(work: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A Slurm driver on a login node has no GPU; its tasks do. The driver checks the assets on the
    CPU and hands ``--device cuda`` to the shards, where it is resolved (and here, with no GPU,
    refused: which shows where it happens)."""
    import reactcli.features.stage as stage

    sent = {}

    def fake_run_shards(fn, args, work_dir, name, exec_cfg, on_progress, **kw):
        sent.update(fn=fn, args=args)
        return []

    monkeypatch.setattr(stage, "run_shards", fake_run_shards)
    opts = {"emoca": {"factory": f"{work['factory']}:build", "path": str(work["weights"]), "crop": "center"}}
    cfg = ExtractConfig(features=["emoca"], options=opts, device="cuda")
    run_extract(work["work"], cfg, ExecConfig(executor="slurm", slurm_gpus=1, shard=(0, 1)))
    assert sent["fn"] is extract_shard and sent["args"][1]["device"] == "cuda"
    with pytest.raises(ConfigError, match="--device cuda: CUDA is not available"):
        extract_shard(*sent["args"], 0, 1)  # what the Slurm task runs
    # locally the same options fail at once, before any process starts
    with pytest.raises(ConfigError, match="--device cuda"):
        run_extract(work["work"], cfg, ExecConfig(executor="local"))
    # GPUs reserved but every extractor on the CPU: said so
    with caplog.at_level(logging.WARNING):
        run_extract(work["work"], ExtractConfig(features=["emoca"], options=opts),
                    ExecConfig(executor="slurm", slurm_gpus=2, shard=(0, 1)))
    assert "--slurm-gpus 2 reserves GPUs but every extractor runs on the CPU" in caplog.text


@pytest.mark.gpu
def test_extract_on_cuda_in_shards_matches_cpu(work: dict[str, Path], tmp_path: Path) -> None:
    """On a GPU machine: 2 local shards on cuda give the CPU features (float tolerance)."""
    import shutil

    results = {}
    for device in ("cpu", "cuda"):
        w = tmp_path / device
        shutil.copytree(work["work"] / "manifests", w / "manifests")
        code, out = invoke("extract", "--work", w, "--features", "emoca", "--num-jobs", 2, "--device", device,
                           "--emoca-factory", f"{work['factory']}:build", "--emoca-path", work["weights"])
        assert code == 0, out
        store = FeatureStore(w)
        results[device] = {c: store.read(c, "emoca") for c in store.clips("emoca")}
        assert all(json.loads(store.attrs(c, "emoca")["config"])["device"] == device for c in results[device])
    for clip, a in results["cpu"].items():
        np.testing.assert_allclose(results["cuda"][clip], a, atol=1e-4)
