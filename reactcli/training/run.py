"""``reactcli train``: one recipe -> a trained checkpoint in ``<work>/runs/<run>/``.

The recipe (:mod:`reactcli.training.recipe`) names a registry entry
(:mod:`reactcli.models.registry`); its preset checks the sections and builds the module and the
step; :func:`reactcli.training.loop.train` runs it. Relative checkpoint paths in a recipe are
resolved against the work directory. The resolved recipe is saved as ``runs/<run>/config.yaml``
and inside every checkpoint (:mod:`reactcli.models.checkpoint`), with the reactcli version, the
seed and the SHA-1 of the manifests and matrices read.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import yaml

import reactcli
from reactcli.io import atomic_open, check_name, process_lock, settings_fingerprint
from reactcli.manifest.identities import MANIFEST_NAME as IDENTITY_MANIFEST
from reactcli.manifest.items import ItemTable, load_items
from reactcli.models.checkpoint import input_record, sha1_of
from reactcli.storage import FeatureStore
from reactcli.training.data import ReactionDataset
from reactcli.training.loop import seed_everything, train
from reactcli.training.recipe import TrainContext, apply_overrides, load_recipe, parse_recipe

__all__ = ["train_recipe", "run_name", "load_recipe", "apply_overrides"]


def run_name(recipe: dict[str, Any]) -> str:
    model = recipe.get("model")
    return f"{model}-{recipe['stage']}" if recipe.get("stage") else str(model)


def _arrays_record(work: Path, table: ItemTable, store: FeatureStore) -> dict[str, str]:
    """Fingerprint of the feature-store references of the split's clips, which is what a training
    reads. The whole ``manifests/arrays.jsonl`` would not do: generating a run (``gen/...`` arrays)
    or extracting other clips registers new arrays there, and a finished training must not look
    like one of other data afterwards (resuming it with more epochs would then be refused)."""
    clips = {c for p in table.pairs for c in (p.speaker, p.listener)}
    refs = [r.to_dict() for (clip, _), r in sorted(store.index.items()) if clip in clips]
    return {f"{work / 'manifests/arrays.jsonl'}#{table.split}": settings_fingerprint(refs)}


def _settings_key(recipe: dict[str, Any], inputs: dict[str, str], parents: dict[str, str | None]) -> str:
    """Hash of what makes two trainings the same run. The epoch budget is left out, so that a
    finished run can be resumed with more ``--epochs``; empty sections are left out (they mean
    the defaults); parent checkpoints count by content, not path."""
    r = {k: v for k, v in copy.deepcopy(recipe).items() if v is not None and v != {}}
    for k in ("epochs", "max_steps"):
        (r.get("train") or {}).pop(k, None)
    hashed = {k: sha1_of(v) for k, v in parents.items() if v and Path(v).is_file()}
    if hashed:  # their paths do not matter once their contents are hashed
        r.pop("checkpoints", None)
    return settings_fingerprint({"recipe": r, "inputs": sorted(inputs.values()), "parents": hashed})


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
    if seed is not None:
        recipe["seed"] = seed
    recipe.setdefault("seed", 0)
    parsed = parse_recipe(recipe)  # every section and key checked before anything runs
    # Seed before any model is built: initial weights come from the global RNG (train() seeds it
    # again, per DDP rank, for what happens during training).
    seed_everything(parsed.seed)
    run = check_name(run or run_name(recipe), "--run")
    check_name(parsed.split, "split")
    run_dir = work / "runs" / run
    table = load_items(work, parsed.split)
    dataset = ReactionDataset(work, table, parsed.data, seed=parsed.seed, train=True)
    # identities.json (when the corpus has one) decides the PSSL labels and the history clips
    inputs = input_record([work / "manifests/pairs.jsonl", work / "appropriate" / f"{parsed.split}.npy",
                           work / "manifests" / IDENTITY_MANIFEST])
    inputs.update(_arrays_record(work, table, dataset.store))  # the dataset's store: its index is already read
    plan = parsed.preset.build(TrainContext(work=work, recipe=recipe, sections=parsed.sections, options=parsed.options,
                                            train=parsed.train, table=table, dataset=dataset))
    extra: dict[str, Any] = {"model": parsed.name, "config": plan.config, **plan.meta, **plan.parents,
                             "recipe": recipe, "run": run, "inputs": inputs, "reactcli_version": reactcli.__version__,
                             "data_config": asdict(parsed.data), "split": parsed.split,
                             "settings_key": _settings_key(recipe, inputs, plan.parents)}
    # one process per run: a second `train --run` of the same run stops at once (the lock is
    # outside the run folder, which --overwrite may replace)
    with process_lock(work / "locks" / f"train-{run}.lock", f"run {run!r}"):
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_open(run_dir / "config.yaml", "w") as fh:
            yaml.safe_dump({**recipe, "run": run, "reactcli_version": reactcli.__version__}, fh, sort_keys=False)
        train(plan.model, plan.step, dataset, parsed.train, run_dir, seed=parsed.seed, device=device,
              checkpoint_extra=extra, parameters=plan.parameters, resume=resume, overwrite=overwrite,
              optimizer_factory=plan.optimizer_factory, on_epoch=on_epoch, on_step=on_step)
    return run_dir / "model.pt"
