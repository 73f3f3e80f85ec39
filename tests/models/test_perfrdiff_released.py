"""PerFRDiff's released checkpoints, read through reactcli, reproduce the authors' code.

The fixture (``tests/fixtures/perfrdiff_released``) was made by
``tests/fixtures/make_perfrdiff_fixture.py`` with the authors' own code (xk0720/PerFRDiff at
commit 8f08853a): their networks with seeded random weights, saved in the released ``checkpoints/``
layout, and their outputs on fixed inputs (``expected.pt``). These tests read those files with
reactcli only and compare within 1e-4.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.errors import ConfigError, InputError
from reactcli.models.perfrdiff import (
    GAFRG,
    PWSG,
    DiffusionConfig,
    GAFRGConfig,
    PSSLConfig,
    PSSLEncoder,
    PWSGConfig,
    generate,
    load_gafrg,
    load_pssl,
    load_pwsg,
)
from reactcli.models.perfrdiff import released as R
from reactcli.training.perfrdiff_losses import _diffusion_loss

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "perfrdiff_released"
CKPT = FIXTURE / "checkpoints"
TOL = 1e-4


@pytest.fixture(scope="module")
def expected():
    return torch.load(FIXTURE / "expected.pt", weights_only=True)


def _file(role: str) -> Path:
    return CKPT / R.RELEASED_FILES[role]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max())


# ------------------------------------------------------------------ networks against the authors' outputs
def test_denoiser_prediction_matches_authors(expected):
    den = R.load_denoiser(_file("decoder"), _file("embedder"))
    e = expected["denoiser"]
    kwargs = {"speaker_audio_encodings": e["speaker_audio"], "speaker_3dmm_encodings": e["speaker_tdmm"],
              "speaker_latent_embed": e["emotion_token"]}
    raw = {**kwargs, "speaker_emotion_encodings": e["speaker_emotion"]}
    del raw["speaker_latent_embed"]
    with torch.no_grad():
        assert _max_diff(den.emotion_token(e["speaker_emotion"]), e["emotion_token"]) < TOL
        assert _max_diff(den(e["x_t"], e["timesteps"], kwargs), e["cond"]) < TOL
        for name, scale in (("cond", 1.0), ("uncond", 0.0), ("guided", 7.5)):
            den.guidance_scale = scale
            for kw in (kwargs, raw):  # the token given, or made from the raw window by the imported GRU
                assert _max_diff(den.forward_with_cond_scale(e["x_t"], e["timesteps"], kw), e[name]) < TOL, name
    # guidance changes the prediction, so the comparison above can fail
    assert _max_diff(e["guided"], e["cond"]) > 1e-2


def test_pssl_style_matches_authors(expected):
    pssl = R.load_pssl(_file("pssl"))
    e = expected["pssl"]
    with torch.no_grad():
        feature, style = pssl(e["history"])
    assert _max_diff(feature, e["feature"]) < TOL
    assert _max_diff(style, e["style"]) < TOL
    assert torch.allclose(style.norm(dim=-1), torch.ones(2))


def test_pwsg_weight_shifts_match_authors(expected):
    base = R.load_denoiser(_file("editor_decoder"), _file("embedder"))
    e = expected["pwsg"]
    editor = R.load_editor(_file("editor"), base.gafrg, style_dim=e["style"].shape[1])
    assert editor.layers == e["layers"]
    with torch.no_grad():
        shifts = editor(e["style"])
    assert [list(s.shape) for s in shifts] == e["shapes"]
    for got, want in zip(shifts, e["shifts"]):
        assert _max_diff(got, want) < TOL
    assert editor.editor.config.rank is None and editor.editor.config.activation == "relu"


def _noise_check(case: dict) -> None:
    """The fixture's decoder noise is the noise reactcli's sampler draws for ``case['seed']``."""
    drawn = torch.randn(case["noise"].shape, generator=torch.Generator().manual_seed(int(case["seed"])))
    assert torch.equal(drawn, case["noise"]), "the sampler's noise scheme changed: regenerate the fixture"


def test_generic_generation_matches_authors(expected):
    case = expected["generic"]
    _noise_check(case)
    den = R.load_denoiser(_file("decoder"), _file("embedder"))
    y = generate(den.gafrg, case["speaker_audio"], case["speaker_emotion_input"], case["speaker_3dmm_input"],
                 num_samples=int(case["k"]), steps=50, guidance=7.5, generator=int(case["seed"]),
                 diffusion=R.released_diffusion(), clamp_emotion=False)
    assert _max_diff(y, case["prediction"]) < TOL
    # the authors' step-wise x0 clamp is active here (their guided predictions leave [-1, 1])
    assert float(expected["denoiser"]["guided"].abs().max()) > 1.0


def test_personalised_generation_matches_authors(expected):
    case = expected["personalised"]
    _noise_check(case)
    base = R.load_denoiser(_file("editor_decoder"), _file("embedder"))
    pssl = R.load_pssl(_file("pssl")).pssl
    editor = R.load_editor(_file("editor"), base.gafrg, style_dim=pssl.config.style_dim).editor
    with torch.no_grad():
        style = pssl(case["listener_personal_input"][:1])
    args = (base.gafrg, case["speaker_audio"], case["speaker_emotion_input"], case["speaker_3dmm_input"])
    kw = {"num_samples": int(case["k"]), "steps": 50, "guidance": 7.5, "generator": int(case["seed"]),
          "diffusion": R.released_diffusion(), "clamp_emotion": False}
    y = generate(*args, style=style, editor=editor, **kw)
    assert _max_diff(y, case["prediction"]) < TOL
    assert _max_diff(generate(*args, **kw), case["prediction"]) > 1e-3  # the edit matters


# ------------------------------------------------------------------ the importer and its run
def test_import_writes_a_run_that_generates_like_the_authors(tmp_path, expected):
    run_dir = R.import_released(FIXTURE, tmp_path / "w", "rel")  # the repository root is accepted too
    assert sorted(p.name for p in run_dir.iterdir()) == ["gafrg-rewrite.pt", "gafrg.pt", "import.json", "pssl.pt",
                                                         "pwsg.pt"]
    gafrg, dcfg = load_gafrg(run_dir / "gafrg.pt")
    assert dcfg.clip_sample and not dcfg.set_alpha_to_one and not dcfg.clamp_emotion
    case = expected["generic"]
    y = generate(gafrg, case["speaker_audio"], case["speaker_emotion_input"], case["speaker_3dmm_input"],
                 num_samples=int(case["k"]), steps=50, guidance=7.5, generator=int(case["seed"]), diffusion=dcfg,
                 clamp_emotion=False)
    assert _max_diff(y, case["prediction"]) < TOL
    ck = torch.load(run_dir / "pwsg.pt", weights_only=True)
    assert ck["gafrg_checkpoint"] == str(run_dir / "gafrg-rewrite.pt") and ck["pssl_checkpoint"] == str(run_dir / "pssl.pt")
    editor, pssl = load_pwsg(run_dir / "pwsg.pt").eval(), load_pssl(run_dir / "pssl.pt").eval()
    base, _ = load_gafrg(ck["gafrg_checkpoint"])
    case = expected["personalised"]
    with torch.no_grad():
        style = pssl.encode({"listener_history_tdmm": case["listener_personal_input"][:1]})
    y = generate(base, case["speaker_audio"], case["speaker_emotion_input"], case["speaker_3dmm_input"],
                 num_samples=1, steps=50, guidance=7.5, generator=int(case["seed"]), diffusion=dcfg,
                 clamp_emotion=False, style=style, editor=editor)
    assert _max_diff(y, case["prediction"]) < TOL


def test_import_cli(tmp_path, cli):
    res = cli("import", "perfrdiff", "--from", CKPT, "--work", tmp_path, "--run", "rel")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs/rel/pwsg.pt").is_file()
    again = cli("import", "perfrdiff", "--from", CKPT, "--work", tmp_path, "--run", "rel")
    assert again.exit_code == 1 and "exists" in again.output
    assert cli("import", "perfrdiff", "--from", CKPT, "--work", tmp_path, "--run", "rel", "--overwrite").exit_code == 0


def _copy_fixture(tmp_path: Path) -> Path:
    dst = tmp_path / "checkpoints"
    shutil.copytree(CKPT, dst)
    return dst


def _edit(path: Path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload["state_dict"])
    torch.save(payload, path)


@pytest.mark.parametrize("role, change, message", [
    ("decoder", lambda sd: sd.pop("decoder.layers.3.linear1.bias"), "1 missing tensor(s) [decoder.layers.3.linear1.bias]"),
    ("decoder", lambda sd: sd.__setitem__("decoder.extra.weight", torch.zeros(2)), "1 unexpected tensor(s) [decoder.extra.weight]"),
    ("decoder", lambda sd: sd.__setitem__("decoder.layers.2.norm3.weight", torch.zeros(17)),
     "tensor decoder.layers.2.norm3.weight of the diffusion decoder (TransformerDenoiser) has shape (17,), expected (16,)"),
    ("embedder", lambda sd: sd.pop("fc_mu_enc.bias"), "missing tensor(s) [fc_mu_enc.bias]"),
    ("pssl", lambda sd: sd.__setitem__("cls_token", torch.zeros(1, 2, 16)), "tensor cls_token"),
    ("editor", lambda sd: sd.__setitem__("branches.1.weight", torch.zeros(10, 32)), "tensor branches.1.weight"),
    ("editor_decoder", lambda sd: sd.pop("mem_pos.pe"), "missing tensor(s) [mem_pos.pe]"),
])
def test_bad_released_tensor_is_a_named_error_and_writes_nothing(tmp_path, role, change, message):
    src = _copy_fixture(tmp_path)
    _edit(src / R.RELEASED_FILES[role], change)
    with pytest.raises(InputError) as err:
        R.import_released(src, tmp_path / "w", "rel")
    text = str(err.value)
    assert message in text and str(src / R.RELEASED_FILES[role]) in text and "\n" not in text
    assert not (tmp_path / "w" / "runs").exists() or not any((tmp_path / "w" / "runs").iterdir())


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint at all\n", "not a released diffusion decoder (TransformerDenoiser) checkpoint"),
    ("pickle-object", "weights_only=True"),
    ("no-state-dict", "expected a dict with a 'state_dict'"),
])
def test_a_file_that_is_not_a_checkpoint_is_a_named_error(tmp_path, cli, content, message):
    src = _copy_fixture(tmp_path)
    path = src / R.RELEASED_FILES["decoder"]
    if content == "pickle-object":  # a pickle that needs code to load
        torch.save({"state_dict": {}, "args": argparse.Namespace(a=1)}, path)
    elif content == "no-state-dict":
        torch.save({"model": {}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        R.import_released(src, tmp_path / "w", "rel")
    assert message in str(err.value) and "\n" not in str(err.value)
    res = cli("import", "perfrdiff", "--from", src, "--work", tmp_path / "w", "--run", "rel")
    assert res.exit_code == 1 and message in res.output
    assert not (tmp_path / "w" / "runs").exists() or not any((tmp_path / "w" / "runs").iterdir())


def test_missing_files_and_bad_settings(tmp_path):
    src = _copy_fixture(tmp_path)
    (src / R.RELEASED_FILES["pssl"]).unlink()
    with pytest.raises(InputError, match="missing released PSSL"):  # the editor needs its style encoder
        R.import_released(src, tmp_path / "w", "rel")
    with pytest.raises(ConfigError, match="to_emotion_embed"):  # reactcli's input projection is not editable
        R.import_released(CKPT, tmp_path / "w", "rel", R.ReleasedSettings(edit_layers=("to_emotion_embed",)))
    with pytest.raises(InputError, match="branches"):  # 2 layers named, 3 branches stored
        R.import_released(CKPT, tmp_path / "w", "rel", R.ReleasedSettings(edit_layers=R.RELEASED_EDIT_LAYERS[:2]))
    with pytest.raises(ConfigError, match="divisible"):
        R.import_released(CKPT, tmp_path / "w", "rel", R.ReleasedSettings(decoder_heads=3))
    assert not (tmp_path / "w" / "runs").exists() or not any((tmp_path / "w" / "runs").iterdir())
    # without the personalised part, the generic run alone
    for role in ("editor", "editor_decoder", "pssl"):
        (src / R.RELEASED_FILES[role]).unlink(missing_ok=True)
    run_dir = R.import_released(src, tmp_path / "w", "generic")
    assert sorted(p.name for p in run_dir.iterdir()) == ["gafrg.pt", "import.json"]


# ------------------------------------------------------------------ the new options themselves
RELEASED_STYLE = {"reaction_dim": 25, "window": 10, "speaker_lag": 10, "d_model": 16, "num_layers": 2, "num_heads": 2,
                  "ffn_dim": 32, "emotion_hidden": 16, "norm_first": False, "time_embedding": "diffusers",
                  "time_channels": 8, "memory_layout": "concat", "audio_scale": 0.25, "emotion_proj": "identity"}


def test_concat_layout_null_condition_is_zero_tokens():
    torch.manual_seed(0)
    g = GAFRG(GAFRGConfig(**RELEASED_STYLE)).eval()
    a, e, f = torch.randn(3, 10, 78), torch.rand(3, 10, 25), torch.randn(3, 10, 58)
    null = g.null_memory(3)
    assert torch.equal(null, g.mem_pos[1:].expand(3, -1, -1))
    # one condition dropped: only its tokens become zeros (+ positions)
    mem = g.encode_speaker(a, e, f, keep=torch.tensor([[1.0, 1.0, 0.0]] * 3))
    full = g.encode_speaker(a, e, f)
    assert torch.equal(mem[:, 10:20], null[:, 10:20]) and torch.equal(mem[:, :10], full[:, :10])
    # typed layout: a dropped condition is zeros in the raw space, as before
    t = GAFRG(GAFRGConfig(window=10, speaker_lag=10, d_model=16, num_layers=1, num_heads=2, ffn_dim=32)).eval()
    assert torch.equal(t.null_memory(2), t.encode_speaker(torch.zeros(2, 10, 78), torch.zeros(2, 10, 25),
                                                          torch.zeros(2, 10, 58)))


def test_released_style_gafrg_trains():
    """The authors' architecture options train with reactcli's loss (falling loss on a fixed batch)."""
    torch.manual_seed(0)
    g = GAFRG(GAFRGConfig(**{**RELEASED_STYLE, "dropout": 0.0}))
    from reactcli.models.perfrdiff import make_scheduler

    sched = make_scheduler(DiffusionConfig(clip_sample=True, set_alpha_to_one=False))
    x0 = torch.rand(8, 10, 25)
    speaker = [torch.randn(8, 10, 78), torch.rand(8, 10, 25), torch.randn(8, 10, 58)]
    opt = torch.optim.AdamW(g.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        gen = torch.Generator().manual_seed(step % 4)
        loss, _ = _diffusion_loss(g, sched, x0, speaker, gen, 0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8])


def test_fused_cross_qkv_low_rank_shift_splits_into_q_and_kv():
    torch.manual_seed(0)
    g = GAFRG(GAFRGConfig(**RELEASED_STYLE))
    editor = PWSG.for_gafrg(g, PWSGConfig(style_dim=8, hidden=(16, 16), layers=("layers.-1.cross_qkv",), rank=2))
    with torch.no_grad():
        for p in editor.parameters():
            p.normal_(std=0.1)
        shifts = editor(torch.randn(3, 8))
    assert sorted(shifts) == ["layers.1.cross_kv", "layers.1.cross_q"]
    q, kv = shifts["layers.1.cross_q"], shifts["layers.1.cross_kv"]
    assert torch.equal(q.a, kv.a) and q.b.shape == (3, 16, 2) and kv.b.shape == (3, 32, 2)
    x = torch.randn(6, 16)
    whole = torch.einsum("gmi,goi->gmo", x.view(3, 2, 16), torch.cat([q.b, kv.b], 1) @ q.a).reshape(6, 48)
    assert torch.allclose(torch.cat([q.delta(x), kv.delta(x)], dim=-1), whole, atol=1e-5)
    with pytest.raises(ConfigError, match="twice"):
        PWSG.for_gafrg(g, PWSGConfig(style_dim=8, hidden=(16, 16), layers=("layers.1.cross_qkv", "layers.1.cross_q")))


def test_new_option_values_are_checked():
    with pytest.raises(ConfigError, match="memory_layout"):
        GAFRGConfig(memory_layout="stack")
    with pytest.raises(ConfigError, match="emotion_hidden == d_model"):
        GAFRGConfig(emotion_proj="identity", emotion_hidden=256, d_model=512)
    with pytest.raises(ConfigError, match="proj_head"):
        PSSLConfig(proj_head="deep")
    with pytest.raises(ConfigError, match="activation"):
        PWSGConfig(activation="tanh")
    with pytest.raises(ConfigError, match="clip_sample needs prediction_type sample"):
        DiffusionConfig(clip_sample=True, prediction_type="epsilon")


def test_interleaved_positions_are_the_concat_codes_reordered():
    from reactcli.models.perfrdiff.gafrg import sinusoidal_embedding
    from reactcli.models.perfrdiff.pssl import interleaved_positions

    inter, cat = interleaved_positions(20, 8), sinusoidal_embedding(torch.arange(20), 8)
    assert torch.allclose(inter[:, 0::2], cat[:, :4], atol=1e-6) and torch.allclose(inter[:, 1::2], cat[:, 4:], atol=1e-6)
    enc = PSSLEncoder(PSSLConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=32, style_dim=8, norm_first=False,
                                 activation="relu", final_norm=False, proj_head="mlp", positions="interleave")).eval()
    assert enc(torch.randn(2, 30, 58)).shape == (2, 8)


def test_imported_run_generates_through_reactcli_generate(tmp_path):
    """``reactcli generate`` reads the imported run (generic and personalised) and keeps the
    authors' output as it is (no clipping to the emotion ranges after sampling)."""
    from reactcli.corpora.react import ReactConfig, prepare_react
    from reactcli.generation.run import GenerateConfig, generate_run
    from reactcli.generation.store import load_generated
    from reactcli.storage import FeatureStore
    from reactcli.synthetic.react_layout import write_tiny_react

    root = write_tiny_react(tmp_path / "r", pairs_per_split=2, frames=61)
    work = tmp_path / "w"
    prepare_react(root, work, ReactConfig(frames=61))
    store = FeatureStore(work)
    rng = np.random.default_rng(0)
    with store.writer("mfcc-standin") as w:
        for clip in store.clips("emotion"):
            w.write(clip, "mfcc", rng.standard_normal((61, 78)), fps=25, extractor="test-standin")
    store.refresh()
    run_dir = R.import_released(CKPT, work, "released")
    cfg = GenerateConfig(split="val", num_samples=2, batch_size=2, frames=60, steps=5, seed=3)
    generate_run(work, run_dir / "gafrg.pt", cfg, run="gen")
    generate_run(work, run_dir / "pwsg.pt", GenerateConfig(**{**cfg.__dict__, "personalised": True}), run="pers")
    generic, personal = load_generated(work, "gen", "val", "emotion"), load_generated(work, "pers", "val", "emotion")
    assert generic.shape == personal.shape == (4, 2, 60, 25) and np.isfinite(generic).all()
    assert generic[..., :15].min() < 0  # not clipped to the AU range [0, 1] afterwards
    assert np.abs(generic - personal).max() > 1e-3
