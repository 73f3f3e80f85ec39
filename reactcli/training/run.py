"""``reactcli train``: one recipe file -> a trained checkpoint in ``<work>/runs/<run>/``.

A recipe is YAML (loaded with ``yaml.safe_load``, never executing anything)::

    model: reactface            # reactface | perfrdiff
    stage: gafrg                # perfrdiff only: gafrg | pssl | pwsg
    seed: 0
    data:    {split: train, audio: mfcc, crop: 256, max_appropriate: 20}   # DataConfig
    model_config: {...}         # ReactFaceConfig / GAFRGConfig / PSSLConfig / PWSGConfig fields
    diffusion: {...}            # perfrdiff: DiffusionConfig fields
    step: {...}                 # perfrdiff: PerFRDiffStepConfig; reactface: {stage1_epochs: n}
    train:   {epochs: 10, batch_size: 8, lr: 2e-5, ...}                    # TrainConfig
    checkpoints: {gafrg: runs/perfrdiff-gafrg/model.pt, pssl: runs/perfrdiff-pssl/model.pt}

Relative checkpoint paths are resolved against the work directory. The resolved recipe is saved
as ``runs/<run>/config.yaml`` and inside every checkpoint, with the reactcli version, the seed and
the SHA-1 of the manifests and matrices read.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.io import atomic_open, settings_fingerprint
from reactcli.manifest.identities import MANIFEST_NAME as IDENTITY_MANIFEST
from reactcli.storage import FeatureStore
from reactcli.training.checkpoint import input_record, sha1_of
from reactcli.manifest.items import ItemTable, load_items
from reactcli.training.data import DataConfig, ReactionDataset
from reactcli.training.loop import TrainConfig, seed_everything, train

MODELS = ("reactface", "perfrdiff")
PERFRDIFF_STAGES = ("gafrg", "pssl", "pwsg")


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: recipe not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a recipe must be a mapping of sections")
    return data


def apply_overrides(recipe: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """Set recipe values from ``section.key=value`` items (``reactcli train --set``), in place.

    The dotted path names nested mappings (created when missing); the value is read as YAML, so
    ``2``, ``1.0e-3``, ``true``, ``null`` and ``[a, b]`` get their types. A key the section does
    not know is refused later, by the section's own check, as in a recipe file."""
    for item in items:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. model_config.frames_per_token=2")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc})") from exc
        node = recipe
        for depth, key in enumerate(keys[:-1]):
            if node.get(key) is None:  # a missing (or empty) section
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(keys[:depth + 1])} is not a section")
        node[keys[-1]] = value
    return recipe


def _dc(cls: type, values: dict[str, Any] | None, where: str):
    values = dict(values or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {sorted(names)}")
    for f in fields(cls):  # YAML lists -> tuples where the dataclass wants tuples
        if f.name in values and isinstance(values[f.name], list) and "tuple" in str(f.type):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def run_name(recipe: dict[str, Any]) -> str:
    model = recipe.get("model")
    return f"{model}-{recipe['stage']}" if recipe.get("stage") else str(model)


def _resolve(work: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(p)
    return str(q if q.is_absolute() else work / q)


def _arrays_record(work: Path, table: ItemTable, store: FeatureStore) -> dict[str, str]:
    """Fingerprint of the feature-store references of the split's clips, which is what a training
    reads. The whole ``manifests/arrays.jsonl`` would not do: generating a run (``gen/...`` arrays)
    or extracting other clips registers new arrays there, and a finished training must not look
    like one of other data afterwards (resuming it with more epochs would then be refused)."""
    clips = {c for p in table.pairs for c in (p.speaker, p.listener)}
    refs = [r.to_dict() for (clip, _), r in sorted(store.index.items()) if clip in clips]
    return {f"{work / 'manifests/arrays.jsonl'}#{table.split}": settings_fingerprint(refs)}


def _settings_key(recipe: dict[str, Any], inputs: dict[str, str], extra: dict[str, Any]) -> str:
    """Hash of what makes two trainings the same run. The epoch budget is left out, so that a
    finished run can be resumed with more ``--epochs``."""
    r = copy.deepcopy(recipe)
    for k in ("epochs", "max_steps"):
        (r.get("train") or {}).pop(k, None)
    parents = {k: sha1_of(extra[k]) for k in ("gafrg_checkpoint", "pssl_checkpoint") if extra.get(k) and Path(extra[k]).is_file()}
    if parents:  # their paths do not matter once their contents are hashed
        r.pop("checkpoints", None)
    return settings_fingerprint({"recipe": r, "inputs": sorted(inputs.values()), "parents": parents})


def train_recipe(
    work: str | os.PathLike,
    recipe: dict[str, Any],
    *,
    run: str | None = None,
    device: str = "cpu",
    seed: int | None = None,
    resume: bool = True,
    overwrite: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> Path:
    """Train what ``recipe`` says; returns the final checkpoint ``runs/<run>/model.pt``.

    With ``resume``, an interrupted run continues from ``runs/<run>/last.pt``, but only if that
    run had the same settings (:func:`_settings_key`: the recipe but its epoch budget, the input
    manifests and, for PWSG, the GAFRG/PSSL checkpoints); otherwise an :class:`InputError`, or with
    ``overwrite`` the old run is discarded and training starts over.
    """
    work = Path(work)
    recipe = copy.deepcopy(recipe)
    model_name = recipe.get("model")
    if model_name not in MODELS:
        raise ConfigError(f"recipe model {model_name!r}: expected one of {MODELS}")
    if seed is not None:
        recipe["seed"] = seed
    seed_v = int(recipe.setdefault("seed", 0))
    # Seed before any model is built: initial weights come from the global RNG (train() seeds it
    # again, per DDP rank, for what happens during training).
    seed_everything(seed_v)
    run = run or run_name(recipe)
    run_dir = work / "runs" / run
    data_section = dict(recipe.get("data", {}))
    split = data_section.pop("split", "train")
    data_cfg = _dc(DataConfig, data_section, "data")
    train_cfg = _dc(TrainConfig, recipe.get("train"), "train")
    table = load_items(work, split)
    dataset = ReactionDataset(work, table, data_cfg, seed=seed_v, train=True)
    # identities.json (when the corpus has one) decides the PSSL labels and the history clips
    inputs = input_record([work / "manifests/pairs.jsonl", work / "appropriate" / f"{split}.npy",
                           work / "manifests" / IDENTITY_MANIFEST])
    inputs.update(_arrays_record(work, table, dataset.store))  # the dataset's store: its index is already read
    extra: dict[str, Any] = {"recipe": recipe, "run": run, "inputs": inputs, "reactcli_version": reactcli.__version__}
    parameters = None
    optimizer_factory = None

    if model_name == "reactface":
        from reactcli.models.reactface import ReactFace, ReactFaceConfig
        from reactcli.training.reactface_losses import reactface_training_step

        cfg = _dc(ReactFaceConfig, recipe.get("model_config"), "model_config")
        model: torch.nn.Module = ReactFace(cfg)
        stage1 = int((recipe.get("step") or {}).get("stage1_epochs", max(1, train_cfg.epochs // 2)))

        def step(net, batch, gen):
            # Paper Sec. 4.4: stage 1 for the first epochs, then stage 2 (dataset.epoch is set by
            # the loop on every rank, so DDP ranks switch together and resume keeps the stage).
            return reactface_training_step(net, batch, stage=1 if dataset.epoch < stage1 else 2, generator=gen)

        extra.update(model="reactface", kind="reactface", build=model.to_dict(), config=model.to_dict(),
                     stage1_epochs=stage1)
        epoch_cb = on_epoch
    else:
        from reactcli.models.perfrdiff import (
            GAFRG,
            DiffusionConfig,
            GAFRGConfig,
            PSSLConfig,
            PSSLEncoder,
            PWSGConfig,
            build_pwsg_training,
            make_scheduler,
            pwsg_extra,
        )
        from reactcli.training.perfrdiff_losses import (
            PerFRDiffStepConfig,
            gafrg_training_step,
            pssl_training_step,
            pwsg_training_step,
        )

        stage_name = recipe.get("stage")
        if stage_name not in PERFRDIFF_STAGES:
            raise ConfigError(f"perfrdiff needs stage: one of {PERFRDIFF_STAGES} (got {stage_name!r})")
        step_cfg = _dc(PerFRDiffStepConfig, recipe.get("step"), "step")
        dcfg = _dc(DiffusionConfig, recipe.get("diffusion"), "diffusion")
        scheduler = make_scheduler(dcfg)
        epoch_cb = on_epoch
        if stage_name == "gafrg":
            gcfg = _dc(GAFRGConfig, recipe.get("model_config"), "model_config")
            model = GAFRG(gcfg)

            def step(net, batch, gen):
                return gafrg_training_step(net, scheduler, batch, generator=gen, config=step_cfg)

            extra.update(model="perfrdiff-gafrg", kind="gafrg", build=gcfg.to_dict(), config=gcfg.to_dict(),
                         diffusion=dcfg.to_dict())
        elif stage_name == "pssl":
            pcfg = _dc(PSSLConfig, recipe.get("model_config"), "model_config")
            model = PSSLEncoder(pcfg)
            temp = float(recipe.get("temperature", 0.07))

            def step(net, batch, gen):
                return pssl_training_step(net, batch, temperature=temp)

            extra.update(model="perfrdiff-pssl", kind="pssl", build=pcfg.to_dict(), config=pcfg.to_dict())
        else:
            ck = recipe.get("checkpoints") or {}
            wcfg = _dc(PWSGConfig, recipe.get("model_config"), "model_config")
            style_source = recipe.get("style", "pssl")
            if style_source not in ("pssl", "codes"):
                raise ConfigError(f"pwsg style must be pssl or codes, got {style_source!r}")
            if wcfg.codes:
                raise ConfigError("model_config.codes is set by the trainer: write style: codes instead")
            code_ids = None
            if style_source == "codes":  # one code per identity of the split; listener_id indexes them
                code_ids = sorted(table.identities, key=table.identities.get)
                wcfg = replace(wcfg, codes=len(code_ids))
            setup = build_pwsg_training(_resolve(work, ck.get("gafrg")), _resolve(work, ck.get("pssl")), wcfg,
                                        device="cpu", code_identities=code_ids)
            scheduler = make_scheduler(setup.diffusion)
            model = setup.editor
            parameters = setup.trainable_parameters()
            opt_name = recipe.get("optimizer", "sgd")
            if opt_name not in ("sgd", "adamw"):
                raise ConfigError(f"pwsg optimizer must be sgd or adamw, got {opt_name!r}")
            code_lr = float(recipe.get("code_lr", 10 * train_cfg.lr))

            def optimizer_factory(ps):  # the codes get their own learning rate and no weight decay
                codes = [p for p in ps if p is model.codes]
                groups = [{"params": [p for p in ps if p is not model.codes]}]
                if codes:
                    groups.append({"params": codes, "lr": code_lr, "weight_decay": 0.0})
                if opt_name == "sgd":
                    return torch.optim.SGD(groups, lr=train_cfg.lr, momentum=0.9, weight_decay=1e-4)
                return torch.optim.AdamW(groups, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)

            def step(net, batch, gen):
                setup.gafrg.to(batch["speaker_audio"].device)
                if setup.pssl is not None:
                    setup.pssl.to(batch["speaker_audio"].device)
                return pwsg_training_step(setup, scheduler, batch, generator=gen, config=step_cfg)

            # the editor resolves relative layer names ("layers.-1.ffn1"); save what it resolved to,
            # so the checkpoint rebuilds with the same names as its layer_shapes
            if code_ids is not None:  # the codes that training moves: the split's listeners
                extra["code_listeners"] = sorted({table.resolver(p.listener) for p in table.pairs})
            extra.update(model="perfrdiff-pwsg", kind="pwsg", build=setup.editor.config.to_dict(),
                         config=setup.editor.config.to_dict(), **pwsg_extra(setup.editor),
                         gafrg_checkpoint=_resolve(work, ck.get("gafrg")), pssl_checkpoint=_resolve(work, ck.get("pssl")),
                         diffusion=setup.diffusion.to_dict())
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(run_dir / "config.yaml", "w") as fh:
        yaml.safe_dump({**recipe, "run": run, "reactcli_version": reactcli.__version__}, fh, sort_keys=False)
    extra["data_config"] = asdict(data_cfg)
    extra["split"] = split
    extra["settings_key"] = _settings_key(recipe, inputs, extra)
    train(model, step, dataset, train_cfg, run_dir, seed=seed_v, device=device, checkpoint_extra=extra,
          parameters=parameters, resume=resume, overwrite=overwrite, optimizer_factory=optimizer_factory, on_epoch=epoch_cb, on_step=on_step)
    return run_dir / "model.pt"
