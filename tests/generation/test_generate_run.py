"""train -> generate -> evaluate through the library on a tiny work dir (random MFCC stand-in)."""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.corpora.react import prepare_react
from reactcli.errors import ConfigError
from reactcli.generation.baselines import generate_baseline
from reactcli.generation.run import GenerateConfig, generate_run
from reactcli.generation.store import load_generated, manifest_path
from reactcli.manifest import read_manifest
from reactcli.metrics.store import evaluate_run
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react
from reactcli.models.checkpoint import sha1_of
from reactcli.training.run import train_recipe

TINY_REACTFACE = {
    "model": "reactface", "seed": 0,
    "data": {"split": "train", "audio": "mfcc", "crop": 40, "max_appropriate": 4, "frames": 60},
    "model_config": {"d_model": 16, "n_heads": 2, "ffn_dim": 32, "vae_heads": 2, "vae_ffn_dim": 32, "latent_dim": 8,
                     "train_window": 10, "generate_window": 10, "history_frames": 20},
    "step": {"stage1_epochs": 1},
    "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3},
}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    root = write_tiny_react(tmp / "r", pairs_per_split=3, frames=61)
    work = tmp / "w"
    prepare_react(root, work, __import__("reactcli.corpora.react", fromlist=["ReactConfig"]).ReactConfig(frames=61))
    store = FeatureStore(work)
    rng = np.random.default_rng(0)
    with store.writer("mfcc-standin") as w:
        for clip in store.clips("emotion"):
            w.write(clip, "mfcc", rng.standard_normal((61, 78)), fps=25, extractor="test-standin")
    store.refresh()
    return work


def test_train_generate_evaluate_roundtrip(work):
    ckpt = train_recipe(work, TINY_REACTFACE, device="cpu")
    ck = torch.load(ckpt, weights_only=False)
    assert ck["model"] == "reactface" and ck["recipe"]["model"] == "reactface" and ck["reactcli_version"]
    assert "manifests/pairs.jsonl" in " ".join(ck["inputs"]) and len(ck["history"]) == 2
    cfg = GenerateConfig(split="val", num_samples=3, batch_size=2, frames=60, seed=5)
    path = generate_run(work, ckpt, cfg, run="rf")
    recs = read_manifest(path)
    assert len(recs) == 6 and recs[0].num_samples == 3
    P = load_generated(work, "rf", "val", "emotion")
    assert P.shape == (6, 3, 60, 25) and np.isfinite(P).all()
    assert not np.allclose(P[:, 0], P[:, 1])  # the K samples differ
    # Same seed -> identical output, in a fresh run name.
    generate_run(work, ckpt, GenerateConfig(split="val", num_samples=3, batch_size=2, frames=60, seed=5), run="rf2")
    np.testing.assert_array_equal(load_generated(work, "rf2", "val", "emotion"), P)
    res = evaluate_run(work, "rf", "val", frames=60)
    assert res["K"] == 3 and res["N"] == 6 and np.isfinite(res["FRCorr"]) and res["FRDiv"] > 0


def test_generation_resumes_after_interruption(work):
    ckpt = train_recipe(work, {**TINY_REACTFACE, "train": {**TINY_REACTFACE["train"], "epochs": 1}}, run="rf-resume")
    full = GenerateConfig(split="test", num_samples=2, batch_size=2, frames=60, seed=1)
    generate_run(work, ckpt, full, run="whole")

    calls = {"n": 0}

    def boom(stage, done, total):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_run(work, ckpt, full, run="cut", on_progress=boom)
    assert not manifest_path(work, "cut", "test").exists()  # incomplete run has no manifest
    generate_run(work, ckpt, full, run="cut")
    np.testing.assert_array_equal(load_generated(work, "cut", "test", "emotion"),
                                  load_generated(work, "whole", "test", "emotion"))


def test_baselines_write_both_protocols(work):
    generate_baseline(work, "mime", split="val", num_samples=2, frames=60, mime_lag=3)
    generate_baseline(work, "meanseq", split="val", num_samples=2, frames=60)
    P = load_generated(work, "mime", "val", "emotion")
    store = FeatureStore(work)
    from reactcli.manifest.items import load_items

    t = load_items(work, "val")
    spk = np.asarray(store.read(t.pairs[0].speaker, "emotion"))[:60]
    np.testing.assert_array_equal(P[0, 0, 3:], spk[:57])
    assert load_generated(work, "meanseq", "val", "tdmm").shape == (6, 2, 60, 58)


def test_sharded_generation_equals_one_process(work, tmp_path):
    from reactcli.execution import ExecConfig

    ckpt = train_recipe(work, {**TINY_REACTFACE, "train": {**TINY_REACTFACE["train"], "epochs": 1}}, run="rf-shard")
    cfg = dict(split="val", num_samples=2, batch_size=2, frames=60, seed=3)
    generate_run(work, ckpt, GenerateConfig(**cfg), run="one")
    generate_run(work, ckpt, GenerateConfig(**cfg), run="two", exec_cfg=ExecConfig(num_jobs=2))
    generate_run(work, ckpt, GenerateConfig(**cfg), run="hand", exec_cfg=ExecConfig(shard=(1, 3)))
    assert not manifest_path(work, "hand", "val").exists()
    generate_run(work, ckpt, GenerateConfig(**cfg), run="hand", exec_cfg=ExecConfig(shard=(0, 3)))
    generate_run(work, ckpt, GenerateConfig(**cfg), run="hand", exec_cfg=ExecConfig(num_jobs=3))  # shard 2 + merge
    one = load_generated(work, "one", "val", "emotion")
    for run in ("two", "hand"):
        assert load_generated(work, run, "val", "emotion").tobytes() == one.tobytes()


def test_personalised_generation_from_relative_pwsg_layer_names(work):
    """A PWSG recipe naming layers relatively (``layers.-1.ffn1``) reloads for generation."""
    from reactcli.models.perfrdiff import load_pwsg

    data = {"split": "train", "audio": "mfcc", "crop": None, "frames": 60, "max_appropriate": 2}
    gafrg = {"d_model": 16, "num_layers": 2, "num_heads": 2, "ffn_dim": 32, "emotion_hidden": 16, "window": 20, "speaker_lag": 20}
    tiny_train = {"epochs": 1, "batch_size": 4, "max_steps": 1}
    train_recipe(work, {"model": "perfrdiff", "stage": "gafrg", "data": data, "model_config": gafrg, "train": tiny_train})
    train_recipe(work, {"model": "perfrdiff", "stage": "pssl", "data": data, "train": tiny_train,
                        "model_config": {"d_model": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 32, "style_dim": 16}})
    ck = train_recipe(work, {"model": "perfrdiff", "stage": "pwsg", "data": data, "train": tiny_train,
                             "model_config": {"style_dim": 16, "hidden": [16, 16], "rank": 2, "layers": ["layers.-1.ffn1"]},
                             "checkpoints": {"gafrg": "runs/perfrdiff-gafrg/model.pt", "pssl": "runs/perfrdiff-pssl/model.pt"}})
    assert load_pwsg(ck).config.layers == ("layers.1.ffn1",)
    cfg = GenerateConfig(split="val", num_samples=2, batch_size=3, frames=60, steps=2, guidance=1.0, seed=0, personalised=True)
    generate_run(work, ck, cfg, run="pers")
    assert load_generated(work, "pers", "val", "emotion").shape == (6, 2, 60, 25)


def test_bf16_generation_run_is_close_to_fp32_and_never_mixes_with_it(work):
    """--precision bf16 writes a run within bf16 rounding of the fp32 one, as a run of its own
    settings (a resume never mixes the two); a bad name or a ReactFace checkpoint is refused."""
    from reactcli.errors import InputError

    data = {"split": "train", "audio": "mfcc", "crop": None, "frames": 60, "max_appropriate": 2}
    gafrg = {"d_model": 16, "num_layers": 2, "num_heads": 2, "ffn_dim": 32, "emotion_hidden": 16, "window": 20,
             "speaker_lag": 20}
    ck = train_recipe(work, {"model": "perfrdiff", "stage": "gafrg", "data": data, "model_config": gafrg,
                             "train": {"epochs": 1, "batch_size": 4, "max_steps": 2}}, run="gafrg-precision")
    cfg = GenerateConfig(split="val", num_samples=2, batch_size=3, frames=60, steps=3, guidance=2.0, seed=0)
    generate_run(work, ck, cfg, run="p32")
    generate_run(work, ck, replace(cfg, precision="bf16"), run="p16")
    full = load_generated(work, "p32", "val", "emotion")
    low = load_generated(work, "p16", "val", "emotion")
    assert low.shape == full.shape == (6, 2, 60, 25) and not np.array_equal(low, full)
    assert np.abs(low - full).mean() < 0.02 * np.abs(full).mean()
    assert json.loads((work / "runs" / "p16" / "generate-val.json").read_text())["config"]["precision"] == "bf16"
    with pytest.raises(InputError, match="run 'p16' \\(val\\)"):
        generate_run(work, ck, cfg, run="p16")
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, got 'half'"):
        generate_run(work, ck, replace(cfg, precision="half"), run="bad")
    rf = train_recipe(work, {**TINY_REACTFACE, "train": {**TINY_REACTFACE["train"], "epochs": 1}}, run="rf-precision")
    with pytest.raises(ConfigError, match="PerFRDiff option"):
        generate_run(work, rf, replace(cfg, precision="bf16"), run="rf-bf16")


def test_personalised_generation_with_listener_codes(work, monkeypatch):
    """A PWSG with listener codes needs no PSSL: it learns a code per training identity, and at
    generation each item's code is read from its listener's history clip, whatever the batching."""
    from reactcli.generation.run import load_generator
    from reactcli.models.perfrdiff import load_pwsg
    from reactcli.manifest.items import load_items
    from reactcli.training.data import ReactionDataset, collate

    data = {"split": "train", "audio": "mfcc", "crop": None, "frames": 60, "max_appropriate": 2}
    gafrg = {"d_model": 16, "num_layers": 2, "num_heads": 2, "ffn_dim": 32, "emotion_hidden": 16, "window": 20, "speaker_lag": 20}
    tiny_train = {"epochs": 1, "batch_size": 4, "max_steps": 2}
    train_recipe(work, {"model": "perfrdiff", "stage": "gafrg", "data": data, "model_config": gafrg, "train": tiny_train},
                 run="codes-gafrg")
    recipe = {"model": "perfrdiff", "stage": "pwsg", "style": "codes", "optimizer": "adamw", "data": data, "train": tiny_train,
              "model_config": {"style_dim": 4, "hidden": [16, 16], "rank": 2, "layers": ["output"], "edit_bias": True},
              "checkpoints": {"gafrg": "runs/codes-gafrg/model.pt"}}
    ck = train_recipe(work, recipe, run="codes-pwsg")
    editor = load_pwsg(ck)
    train = load_items(work, "train")
    assert editor.code_identities == sorted(train.identities) and editor.codes.shape == (len(train.identities), 4)
    # the checkpoint names the codes training moved: the identities that are listeners in the split
    assert torch.load(ck, weights_only=False)["code_listeners"] == sorted({train.resolver(p.listener) for p in train.pairs})
    with pytest.raises(ConfigError, match="no PSSL"):
        train_recipe(work, {**recipe, "checkpoints": {**recipe["checkpoints"], "pssl": "runs/codes-gafrg/model.pt"}},
                     run="codes-pwsg-bad", overwrite=True)
    with pytest.raises(ConfigError, match="style: codes"):
        train_recipe(work, {**recipe, "model_config": {**recipe["model_config"], "codes": 3}}, run="codes-pwsg-bad",
                     overwrite=True)
    with torch.no_grad():  # a trained-for-2-steps editor barely moves: make the codes matter
        for p in editor.branches.parameters():
            p.normal_(0, 0.3)
    # the tiny corpus has the same people in every split: read every code from the history clip first
    cfg = GenerateConfig(split="val", num_samples=2, batch_size=3, frames=60, steps=2, guidance=1.0, seed=0,
                         personalised=True, own_codes=False)
    gen = load_generator(ck, cfg)
    assert gen.pssl is None and set(gen.sources) == {"pwsg", "gafrg"} and gen.meta["style"]["codes"] == editor.codes.shape[0]
    gen.editor = editor
    table = load_items(work, "val")
    ds = ReactionDataset(work, table, gen.data_config, seed=0, train=False)
    together = gen.read_codes(collate([ds[i] for i in range(3)]))
    alone = torch.cat([gen.read_codes(collate([ds[i]])) for i in range(3)])
    torch.testing.assert_close(together, alone)
    assert all(any(torch.equal(c, e) for e in editor.codes) for c in together)  # a listener's code is one of the codes
    generate_run(work, ck, cfg, run="pers-codes")
    assert load_generated(work, "pers-codes", "val", "emotion").shape == (6, 2, 60, 25)
    # the readings are kept in the work directory and reused by any later run, whatever its seed
    (cache,) = (work / "cache" / "code-readings").glob("*.json")
    stored = json.loads(cache.read_text())["readings"]
    assert stored and all(len(r["scores"]) == editor.codes.shape[0] and r["identity"] == editor.code_identities[r["row"]]
                          for r in stored.values())
    batch = collate([ds[i] for i in range(table.n)])
    cached = load_generator(ck, replace(cfg, seed=1))
    cached.use_work(work)
    fresh = load_generator(ck, replace(cfg, seed=2))  # no work directory: reads every clip itself
    torch.testing.assert_close(cached.read_codes(batch), fresh.read_codes(batch))
    assert cached.codes_read == 0 and fresh.codes_read == len(stored)
    assert fresh.readings == stored  # the same scores: a reading depends on the clip, not on --seed
    cache.write_text("{")  # an unreadable cache is read again and rewritten
    broken = load_generator(ck, cfg)
    broken.use_work(work)
    torch.testing.assert_close(broken.read_codes(batch), fresh.read_codes(batch))
    assert broken.codes_read == len(stored) and json.loads(cache.read_text())["readings"] == stored
    # by default a listener the PWSG was trained on gets their own code, and nothing is read
    own = load_generator(ck, replace(cfg, own_codes=True))
    own.use_work(work)
    assert own.identity_of == {i: who for who, i in table.identities.items()} and own.meta["style"]["own_codes"]
    rows = [editor.code_identities.index(table.resolver(p.listener)) for p in table.pairs]
    torch.testing.assert_close(own.read_codes(batch), own.editor.codes.detach()[rows])
    assert own.codes_own == table.n and own.codes_read == 0
    import reactcli.generation.base as gen_base
    import reactcli.generation.run as gen_run
    hashed = []
    for module in (gen_base, gen_run):
        monkeypatch.setattr(module, "sha1_of", lambda p: hashed.append(str(p)) or sha1_of(p))
    generate_run(work, ck, replace(cfg, own_codes=True), run="pers-own-codes")
    assert sorted(hashed) == sorted(map(str, own.sources.values()))  # each checkpoint hashed once per run
    record = json.loads((work / "runs" / "pers-own-codes" / "generate-val.json").read_text())
    assert record["checkpoint_sha1"] == sha1_of(ck) and record["checkpoint_sha1s"] == {r: sha1_of(p) for r, p in own.sources.items()}
    assert record["checkpoint_sha256"] == hashlib.sha256(Path(ck).read_bytes()).hexdigest()
    assert record["checkpoint_sha256s"] == {r: hashlib.sha256(Path(p).read_bytes()).hexdigest() for r, p in own.sources.items()}
    scored = evaluate_run(work, "pers-own-codes", "val", frames=60, out_dir=work / "m")
    stored = json.loads((work / "m" / "pers-own-codes-val.json").read_text())  # what made the run, in its metrics
    assert stored["checkpoint_sha256"] == record["checkpoint_sha256"] == stored["generation"]["checkpoint_sha256"]
    assert stored["generation"]["seed"] == cfg.seed and stored["generation"]["options"]["num_samples"] == 2
    assert stored["reactcli_version"] and scored["items_path"].endswith("pers-own-codes-val-items.csv")
    assert load_generated(work, "pers-own-codes", "val", "emotion").shape == (6, 2, 60, 25)
    assert own.meta["style"]["own"] == sorted({table.resolver(p.listener) for p in table.pairs})  # in the fingerprint
    off = load_generator(ck, cfg)
    off.use_work(work)
    assert off.identity_of == {} and off.meta["style"]["own_codes"] is False and "own" not in off.meta["style"]
    off.readings, off.trained_rows = {}, [2]  # a code training never moved is never read
    torch.testing.assert_close(off.read_codes(batch), off.editor.codes.detach()[[2] * table.n])
    with pytest.raises(ConfigError, match="use_work"):  # own codes without knowing who is who
        load_generator(ck, replace(cfg, own_codes=True)).read_codes(batch)
    # --new-listeners generic: a listener the PWSG has not met gets the generic reaction, exactly
    mix = load_generator(ck, replace(cfg, own_codes=True, new_listeners="generic"))
    mix.use_work(work)
    first = table.resolver(table.pairs[0].listener)
    mix.own_rows = {first: mix.own_rows[first]}  # as if only this listener had been met
    met = np.array([table.resolver(p.listener) == first for p in table.pairs])
    plain = load_generator(work / "runs" / "codes-gafrg" / "model.pt", replace(cfg, personalised=False))
    y_mix = mix(batch, 2, torch.Generator().manual_seed(0))["emotion"]
    y_gen = plain(batch, 2, torch.Generator().manual_seed(0))["emotion"]
    np.testing.assert_allclose(y_mix[~met], y_gen[~met], rtol=0, atol=1e-6)
    assert 0 < met.sum() < table.n and not np.allclose(y_mix[met], y_gen[met], rtol=0, atol=1e-6)
    assert mix.codes_read == 0 and mix.meta["style"]["new_listeners"] == "generic"
    old = torch.load(ck, weights_only=False)
    del old["code_listeners"]  # a checkpoint from before the record: own codes off, generic refused
    torch.save(old, work / "old-pwsg.pt")
    assert load_generator(work / "old-pwsg.pt", replace(cfg, own_codes=True, pwsg_checkpoint=None)).own_rows == {}
    with pytest.raises(ConfigError, match="code_listeners"):
        load_generator(work / "old-pwsg.pt", replace(cfg, own_codes=True, new_listeners="generic", pwsg_checkpoint=None))
    for bad, match in (({"new_listeners": "generic", "own_codes": False}, "needs --own-codes"),
                       ({"new_listeners": "guess"}, "read or generic")):
        with pytest.raises(ConfigError, match=match):
            load_generator(ck, replace(cfg, **bad))


@pytest.mark.parametrize("recipe", ["reactface", "gafrg"])
def test_training_is_reproducible_whatever_the_global_rng_state(work, recipe):
    """Same recipe and seed -> bit-identical weights, even when the process's global RNG was in a
    different state before training (as in two separate `reactcli train` processes). Regression:
    the model used to be built before the seed was set, so its initial weights were not seeded."""
    cfg = TINY_REACTFACE if recipe == "reactface" else {
        "model": "perfrdiff", "stage": "gafrg", "seed": 0,
        "data": {"split": "train", "audio": "mfcc", "crop": 40, "max_appropriate": 4, "frames": 60},
        "model_config": {"d_model": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 32, "window": 10,
                         "audio_dim": 78},
        "step": {"reactions_per_item": 2},
        "train": {"epochs": 1, "batch_size": 4, "lr": 1e-3},
    }
    states = []
    for i, disturb in enumerate((1, 2)):
        torch.manual_seed(disturb)
        np.random.seed(disturb)
        ckpt = train_recipe(work, cfg, run=f"repro-{recipe}-{i}", device="cpu")
        states.append(torch.load(ckpt, weights_only=False)["state_dict"])
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k], rtol=0, atol=0, msg=k)


def _store_files(work, stem):
    return sorted(p.name for p in (work / "features").glob(f"{stem}*.h5"))


def test_rerun_with_other_settings_never_mixes_outputs(work):
    """A retrained checkpoint (or another seed) under an existing run name must not resume onto the
    old items: it stops with a message naming the run, or replaces them with --overwrite."""
    from reactcli.errors import InputError

    ck_a = train_recipe(work, {**TINY_REACTFACE, "train": {**TINY_REACTFACE["train"], "epochs": 1}}, run="rf-a")
    ck_b = train_recipe(work, {**TINY_REACTFACE, "seed": 1, "train": {**TINY_REACTFACE["train"], "epochs": 1}}, run="rf-b")
    cfg = GenerateConfig(split="val", num_samples=2, batch_size=2, frames=60, seed=0)
    generate_run(work, ck_b, cfg, run="ref-b")
    generate_run(work, ck_a, cfg, run="swap")
    files = _store_files(work, "gen-swap-val")
    generate_run(work, ck_a, cfg, run="swap")  # same settings: complete already, nothing rewritten
    assert _store_files(work, "gen-swap-val") == files
    for other, kw in ((ck_b, {}), (ck_a, {"seed": 1}), (ck_a, {"num_samples": 3})):
        with pytest.raises(InputError, match="run 'swap' \\(val\\): 6 of the 6 stored items .*--overwrite"):
            generate_run(work, other, GenerateConfig(**{**cfg.__dict__, **kw}), run="swap")
    generate_run(work, ck_b, cfg, run="swap", overwrite=True)
    assert load_generated(work, "swap", "val", "emotion").tobytes() == load_generated(work, "ref-b", "val", "emotion").tobytes()
    assert len(_store_files(work, "gen-swap-val")) == 1
    # overwrite keeps items that already match (resume stays possible)
    generate_run(work, ck_b, cfg, run="swap", overwrite=True)
    assert len(_store_files(work, "gen-swap-val")) == 1


def test_baseline_rerun_keeps_or_replaces(work):
    from reactcli.errors import InputError

    generate_baseline(work, "random", split="val", num_samples=2, frames=60, seed=0, run="rnd")
    first = load_generated(work, "rnd", "val", "emotion")
    generate_baseline(work, "random", split="val", num_samples=2, frames=60, seed=0, run="rnd")
    assert _store_files(work, "gen-rnd-val") == ["gen-rnd-val.h5"]  # no second copy
    with pytest.raises(InputError, match="run 'rnd' \\(val\\)"):
        generate_baseline(work, "random", split="val", num_samples=2, frames=60, seed=1, run="rnd")
    generate_baseline(work, "random", split="val", num_samples=2, frames=60, seed=1, run="rnd", overwrite=True)
    second = load_generated(work, "rnd", "val", "emotion")
    assert second.shape == first.shape and not np.array_equal(second, first)
    assert _store_files(work, "gen-rnd-val") == ["gen-rnd-val.h5"]


def test_resume_only_continues_a_run_of_the_same_settings(work):
    """A changed recipe must not resume (and so silently keep) a finished run of the old one."""
    from reactcli.errors import InputError

    short = {**TINY_REACTFACE, "train": {**TINY_REACTFACE["train"], "epochs": 1}}
    ck = train_recipe(work, short, run="rf-change")
    first = torch.load(ck, weights_only=False)["state_dict"]
    # more epochs of the same recipe: resumes (history grows from 1 to 2 epochs)
    ck = train_recipe(work, {**short, "train": {**short["train"], "epochs": 2}}, run="rf-change")
    assert len(torch.load(ck, weights_only=False)["history"]) == 2
    changed = {**short, "train": {**short["train"], "lr": 5e-3}}
    with pytest.raises(InputError, match="run 'rf-change' was trained with other settings.*--overwrite"):
        train_recipe(work, changed, run="rf-change")
    ck = train_recipe(work, changed, run="rf-change", overwrite=True)
    again = torch.load(ck, weights_only=False)
    assert len(again["history"]) == 1 and again["recipe"]["train"]["lr"] == 5e-3
    assert any(not torch.equal(first[k], again["state_dict"][k]) for k in first)


def test_a_finished_training_still_resumes_after_generation(work):
    """Generated runs register arrays in manifests/arrays.jsonl; that must not make the training
    they came from look like one of other data (the demo's rerun was refused this way)."""
    short = {**TINY_REACTFACE, "train": {**TINY_REACTFACE["train"], "epochs": 1}}
    ck = train_recipe(work, short, run="rf-then-generate")
    before = torch.load(ck, weights_only=False)
    generate_run(work, ck, GenerateConfig(split="test", num_samples=2, batch_size=2, frames=60, seed=2), run="rf-gen-after")
    generate_baseline(work, "mime", split="test", num_samples=2, run="mime-after", frames=60)
    ck = train_recipe(work, {**short, "train": {**short["train"], "epochs": 2}}, run="rf-then-generate")
    after = torch.load(ck, weights_only=False)
    assert len(after["history"]) == 2 and after["settings_key"] == before["settings_key"]
    assert after["inputs"] == before["inputs"]

