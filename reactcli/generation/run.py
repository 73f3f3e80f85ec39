"""``reactcli generate``: K reactions per speaker item of a split, from a checkpoint or a baseline.

Items are processed in batches of ``batch_size`` clips, and the K samples of each clip are one
batch inside the model (never K sequential runs). Each batch draws its noise from a generator
seeded with ``(seed, first item index)``, so the same seed (and batch size) gives identical
output, and a resumed run (items already stored are skipped) continues exactly where the
interrupted one stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from reactcli.errors import ConfigError, InputError
from reactcli.generation.store import check_stored_run, pending_items
from reactcli.io import file_lock, settings_fingerprint, write_json
from reactcli.training.checkpoint import load_checkpoint, sha1_of
from reactcli.training.data import DataConfig, ReactionDataset, collate, history_batch, load_items
from reactcli.training.loop import resolve_device

EMOTION_DIM, TDMM_DIM = 25, 58
CODE_READING = {"windows": 32, "draws": 8, "version": 2}
"""How a listener code is read from a history clip: ``draws`` rounds of ``windows`` random 50-frame
windows, the same for every code (see ``code_scores``). Version 2 seeds the draws by the clip's
content alone (version 1 also used ``--seed``), so a reading is a property of the clip and the
PWSG, like a PSSL style, and can be kept in ``<work>/cache/code-readings/``."""


@dataclass
class GenerateConfig:
    """Options of ``reactcli generate``."""

    split: str = "test"
    """Split whose speaker items get reactions."""
    num_samples: int = 10
    """K reactions per item."""
    batch_size: int = 4
    """Clips per model call (x K samples each)."""
    frames: int = 750
    """Frames generated per clip."""
    window: int | None = None
    """ReactFace: online window size (default: the checkpoint's generate_window)."""
    momentum: float | None = None
    """ReactFace: latent momentum alpha (default: the checkpoint's)."""
    steps: int = 50
    """PerFRDiff: DDIM steps."""
    guidance: float = 7.5
    """PerFRDiff: classifier-free guidance scale (1 = conditional only)."""
    overlap: bool = False
    """PerFRDiff: overlapping windows (stride w/2, shared noise) to avoid seams."""
    timestep_spacing: str | None = None
    """PerFRDiff: how the DDIM steps are placed over the training steps (``leading``,
    ``trailing``, ``linspace``); default: the checkpoint's diffusion config."""
    personalised: bool = False
    """PerFRDiff: edit GAFRG per listener with PSSL style + PWSG (needs --pwsg-checkpoint); a PWSG
    with listener codes uses a code per listener instead (see ``own_codes``)."""
    pwsg_checkpoint: str | None = None
    """PerFRDiff personalised: the trained PWSG (its checkpoint names GAFRG and PSSL)."""
    own_codes: bool = True
    """PerFRDiff personalised, PWSG with listener codes: a listener the PWSG was trained on (the
    same identity in ``manifests/identities.json``, a listener of its training split) gets their
    own learned code, fitted on all their training clips; the others' codes are read from their
    history clip. False: read every listener's code from the history clip."""
    new_listeners: str = "read"
    """PerFRDiff personalised, PWSG with listener codes, with ``own_codes``: what a listener the
    PWSG was not trained on gets: ``read`` (the code that best explains their history clip) or
    ``generic`` (no edit: the generic GAFRG's reaction, as no code is known for them)."""
    precision: str = "fp32"
    """PerFRDiff: the dtype the denoiser runs in: ``fp32`` (the same bits on every machine) or
    ``bf16`` (several times faster on CPUs with AVX512-BF16 / AMX and on bf16 GPUs; the noise and
    the DDIM update stay float32). Listener-code readings are always made in float32."""
    seed: int = 0
    """Noise seed."""
    device: str = "cpu"
    """cpu, cuda or auto."""


def _seeded(seed: int, first: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device if device.type == "cuda" else "cpu")
    g.manual_seed(int(hashlib.sha1(f"{seed}:{first}".encode()).hexdigest()[:12], 16))
    return g


class _Model:
    """A loaded generator: ``features`` it writes and ``__call__(batch, K, gen) -> {feature: (B,K,T,D)}``."""

    features: list[str]
    meta: dict[str, Any]
    data_config: DataConfig
    sources: dict[str, str]
    """Role -> path of every checkpoint the output depends on (their checksums enter the fingerprint)."""

    def __call__(self, batch: dict[str, torch.Tensor], k: int, gen: torch.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def use_work(self, work: str | os.PathLike) -> None:
        """Keep what is expensive to recompute (e.g. read listener codes) in the work directory."""

    @cached_property
    def checksums(self) -> dict[str, str]:
        """Role -> SHA-1 of every checkpoint in ``sources``, hashed once per loaded model (a
        paper-size checkpoint is ~100 MB; the cache key, the fingerprint and the record share them)."""
        return {role: sha1_of(p) for role, p in sorted(self.sources.items())}


class _ReactFace(_Model):
    def __init__(self, ck: dict[str, Any], path: str, cfg: GenerateConfig, dev: torch.device):
        from reactcli.models.reactface import ReactFace

        if cfg.precision != "fp32":
            raise ConfigError(f"--precision {cfg.precision} is a PerFRDiff option; ReactFace generates in fp32")
        self.model = ReactFace.from_dict(ck["build"])
        self.model.load_state_dict(ck["state_dict"])
        self.model.to(dev).eval()
        self.cfg, self.dev = cfg, dev
        self.sources = {"reactface": str(path)}
        self.features = list(self.model.config.output_heads)
        self.data_config = DataConfig(**{**ck.get("data_config", {}), "crop": None})
        self.meta = {"model": "reactface", "window": cfg.window or self.model.config.generate_window,
                     "momentum": cfg.momentum if cfg.momentum is not None else self.model.config.momentum}

    def __call__(self, batch, k, gen):
        with torch.no_grad():
            out = self.model.generate(batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"],
                                      num_samples=k, window=self.cfg.window, momentum=self.cfg.momentum,
                                      generator=gen, device=self.dev)
        return {f: v.float().cpu().numpy() for f, v in out.items()}


class _PerFRDiff(_Model):
    def __init__(self, ck: dict[str, Any], path: str, cfg: GenerateConfig, dev: torch.device):
        from reactcli.models.perfrdiff import load_gafrg, load_pssl, load_pwsg, make_scheduler
        from reactcli.models.perfrdiff.diffusion import precision_dtype

        precision_dtype(cfg.precision)  # a bad name stops before any checkpoint is read
        self.cfg, self.dev = cfg, dev
        self.editor = self.pssl = None
        if cfg.personalised:
            pw = cfg.pwsg_checkpoint or (path if ck.get("kind") == "pwsg" else None)
            if pw is None:
                raise ConfigError("--personalised needs --pwsg-checkpoint (a trained PWSG)")
            pck = load_checkpoint(pw)
            self.editor = load_pwsg(pw).to(dev).eval()
            gpath = pck.get("gafrg_checkpoint")
            self.sources = {"pwsg": str(pw)}
            if self.editor.codes is None:
                self.pssl = load_pssl(pck.get("pssl_checkpoint"), option="the PWSG checkpoint's pssl_checkpoint").to(dev).eval()
                self.sources["pssl"] = str(pck.get("pssl_checkpoint"))
        else:
            gpath = path
            self.sources = {}
        self.sources["gafrg"] = str(gpath)
        self.gafrg, self.diffusion = load_gafrg(gpath)
        if cfg.timestep_spacing is not None:
            self.diffusion = replace(self.diffusion, timestep_spacing=cfg.timestep_spacing)  # validated again
        self.gafrg.to(dev).eval()
        self.scheduler = make_scheduler(self.diffusion)
        gck = load_checkpoint(gpath)
        target = ((gck.get("recipe") or {}).get("step") or {}).get("target", "emotion")
        self.target = target
        self.features = {"emotion": ["emotion"], "tdmm": ["tdmm"], "both": ["emotion", "tdmm"]}[target]
        self.data_config = DataConfig(**{**gck.get("data_config", {}), "crop": None})
        self.meta = {"model": "perfrdiff", "personalised": cfg.personalised, "steps": cfg.steps,
                     "guidance": cfg.guidance, "overlap": cfg.overlap, "gafrg_checkpoint": str(gpath),
                     "pwsg_checkpoint": cfg.pwsg_checkpoint}
        if self.editor is not None and self.editor.codes is not None:
            if cfg.new_listeners not in ("read", "generic"):
                raise ConfigError(f"--new-listeners must be read or generic, got {cfg.new_listeners!r}")
            if cfg.new_listeners == "generic" and not cfg.own_codes:
                raise ConfigError("--new-listeners generic needs --own-codes (else no listener would be edited)")
            self.meta["style"] = {"codes": len(self.editor.code_identities), **CODE_READING, "own_codes": cfg.own_codes,
                                  "new_listeners": cfg.new_listeners}
            self.readings: dict[str, dict[str, Any]] = {}  # history clip content -> code row, scores
            self.readings_path: Path | None = None
            self.codes_read = 0  # readings computed (not found in the cache) by this process
            self.codes_own = 0  # items given their own listener's trained code
            self.identity_of: dict[int, str] | None = None  # split listener id -> identity (use_work)
            # codes that training moved (their identity was a listener of the training split);
            # a checkpoint from before this was recorded gives no own codes and reads all codes
            trained = pck.get("code_listeners")
            if trained is None and cfg.new_listeners == "generic":
                raise ConfigError(f"{pw}: this PWSG checkpoint does not record which codes were trained "
                                  "(code_listeners), so --new-listeners generic would edit no one; retrain it")
            ids = self.editor.code_identities
            if trained is None:
                self.trained_rows, self.own_rows = list(range(self.editor.codes.shape[0])), {}
            else:
                trained = set(trained)
                self.trained_rows = [r for r, who in enumerate(ids) if who in trained]
                self.own_rows = {ids[r]: r for r in self.trained_rows}

    def use_work(self, work: str | os.PathLike) -> None:
        """Reuse the code readings made earlier with the same PWSG, GAFRG and reading settings (any
        run, split or seed): ``<work>/cache/code-readings/<key>.json``. A cache that cannot be read is
        ignored (read again and rewritten)."""
        if self.editor is None or self.editor.codes is None:
            return
        key = settings_fingerprint({"checkpoints": self.checksums,
                                    "reading": CODE_READING})
        self.readings_path = Path(work) / "cache" / "code-readings" / f"{key}.json"
        self.readings.update(self._stored_readings())
        self.identity_of = {}
        if self.cfg.own_codes:
            table = load_items(work, self.cfg.split)
            self.identity_of = {i: who for who, i in table.identities.items()}
            # who gets their own code is part of what the output depends on (resume fingerprint)
            self.meta["style"]["own"] = sorted({table.resolver(p.listener) for p in table.pairs} & set(self.own_rows))

    def _stored_readings(self) -> dict[str, dict[str, Any]]:
        if self.readings_path is None or not self.readings_path.is_file():
            return {}
        try:
            stored = json.loads(self.readings_path.read_text(encoding="utf-8"))["readings"]
            k = self.editor.codes.shape[0]
            return {h: r for h, r in stored.items() if 0 <= int(r["row"]) < k and len(r["scores"]) == k}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def read_codes(self, batch, with_keep: bool = False):
        """Each item's listener code. A listener the PWSG was trained on gets their own code
        (``own_codes``, once :meth:`use_work` told who is who). Any other listener gets no edit
        with ``new_listeners="generic"`` (``with_keep`` also returns the (B,) 0/1 mask of the items
        to edit), or else the code whose edited GAFRG best explains their history clip
        (:func:`~reactcli.training.perfrdiff_losses.code_scores`). The windows and noise are seeded
        by the history clip's content, so the choice depends only on the clip (not on the
        batching or the seed), and a clip is read once (kept in the work directory's cache)."""
        from reactcli.training.perfrdiff_losses import code_scores

        if self.cfg.own_codes and self.identity_of is None:
            raise ConfigError("own_codes needs to know who is who: call use_work(work) before generating")
        hist = history_batch(batch)
        picks, new, keep = [], 0, []
        reading = {k: v for k, v in CODE_READING.items() if k != "version"}
        ids = self.editor.code_identities
        own = self.own_rows if self.identity_of else {}
        for j in range(batch["index"].shape[0]):
            who = self.identity_of.get(int(batch["listener_id"][j])) if own else None
            if who in own:  # a listener the PWSG was trained on: their own code
                picks.append(own[who])
                keep.append(1.0)
                self.codes_own += 1
                continue
            if self.cfg.new_listeners == "generic":  # not edited: any code, masked out
                picks.append(self.trained_rows[0])
                keep.append(0.0)
                continue
            keep.append(1.0)
            one = {key: v[j:j + 1] for key, v in hist.items()}
            digest = hashlib.sha1()
            for key in sorted(one):
                arr = one[key].detach().cpu().numpy()
                digest.update(f"{key}:{arr.dtype}:{arr.shape};".encode())
                digest.update(arr.tobytes())
            key = digest.hexdigest()
            if key not in self.readings:
                # drawn on the CPU whatever the device, so a reading does not depend on it
                scores = code_scores(self.gafrg, self.editor, self.scheduler, one, target=self.target,
                                     generator=_seeded(0, int(key[:12], 16), torch.device("cpu")), **reading)[0]
                row = self.trained_rows[int(scores[self.trained_rows].argmin())]  # never an untrained code
                self.readings[key] = {"row": row, "identity": ids[row] if row < len(ids) else None,
                                      "scores": [round(float(x), 8) for x in scores]}
                new += 1
            picks.append(int(self.readings[key]["row"]))
        self.codes_read += new
        if new and self.readings_path is not None:  # merge with what other processes wrote meanwhile
            with file_lock(self.readings_path):
                merged = {**self._stored_readings(), **self.readings}
                write_json(self.readings_path, {"pwsg": self.sources["pwsg"], "gafrg": self.sources["gafrg"],
                                                "reading": CODE_READING, "readings": merged})
        codes = self.editor.codes.detach()[torch.tensor(picks, device=self.dev)]
        return (codes, torch.tensor(keep, device=self.dev)) if with_keep else codes

    def __call__(self, batch, k, gen):
        from reactcli.models.perfrdiff import generate

        style, editor = None, self.editor
        with torch.no_grad():
            if self.editor is not None and self.editor.codes is not None:
                style, keep = self.read_codes(batch, with_keep=True)
                if not bool(keep.all()):
                    editor = _MaskedEditor(self.editor, keep)
            elif self.editor is not None:
                style = self.pssl.encode(batch, "history")
            y = generate(self.gafrg, batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"],
                         num_samples=k, steps=self.cfg.steps, guidance=self.cfg.guidance, style=style,
                         editor=editor, generator=gen, device=self.dev, overlap=self.cfg.overlap,
                         diffusion=self.diffusion, clamp_emotion=self.target != "tdmm" and self.diffusion.clamp_emotion,
                         precision=self.cfg.precision)
        y = y.float().cpu().numpy()
        if self.target == "both":
            return {"emotion": y[..., :EMOTION_DIM], "tdmm": y[..., EMOTION_DIM:]}
        return {self.target: y}


class _MaskedEditor(torch.nn.Module):
    """A PWSG whose shifts are zero for the items with ``keep`` 0 (they get the generic reaction)."""

    def __init__(self, editor: torch.nn.Module, keep: torch.Tensor):
        super().__init__()
        self.editor = editor
        self.register_buffer("keep", keep)

    def forward(self, style: torch.Tensor) -> dict[str, Any]:
        return {name: shift.masked(self.keep) for name, shift in self.editor(style).items()}


def load_generator(checkpoint: str | os.PathLike, cfg: GenerateConfig) -> _Model:
    dev = resolve_device(cfg.device)
    ck = load_checkpoint(checkpoint)
    kind = ck.get("kind") or ck.get("model")
    if kind == "reactface":
        return _ReactFace(ck, str(checkpoint), cfg, dev)
    if kind in ("gafrg", "pwsg"):
        if kind == "pwsg":
            cfg.personalised = True
            cfg.pwsg_checkpoint = cfg.pwsg_checkpoint or str(checkpoint)
        return _PerFRDiff(ck, str(checkpoint), cfg, dev)
    raise InputError(f"{checkpoint}: checkpoint of kind {kind!r} cannot generate (expected reactface, gafrg or pwsg)")


def item_batches(n: int, batch_size: int) -> list[list[int]]:
    """The fixed batches of a split: item ``i`` is always in batch ``i // batch_size``.

    Noise is seeded per batch, so fixing the batches (not just the items still to do) keeps the
    output identical whether a run is resumed, split into shards or run in one go.
    """
    if batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def _generate_batches(work: Path, gen_model: _Model, cfg: GenerateConfig, run: str, batches: list[list[int]],
                      on_progress: Callable[[str, int, int], None] | None, pending: set[int] | None = None):
    """Generate the batches holding an item still ``pending`` (default: read from the store)."""
    table = load_items(work, cfg.split)
    data_cfg = DataConfig(**{**asdict(gen_model.data_config), "frames": cfg.frames, "crop": None, "max_appropriate": 1})
    ds = ReactionDataset(work, table, data_cfg, seed=cfg.seed, train=False)
    if pending is None:
        pending = set(pending_items(work, run, cfg.split, table, gen_model.features))
    todo = [b for b in batches if any(i in pending for i in b)]
    dev = resolve_device(cfg.device)
    for n, idx in enumerate(todo, 1):
        batch = collate([ds[i] for i in idx])
        batch = {k: v.to(dev) for k, v in batch.items()}
        outs = gen_model(batch, cfg.num_samples, _seeded(cfg.seed, idx[0], dev))
        if on_progress:
            on_progress(f"generate {run}", n, len(todo))
        yield idx, outs


def _meta(gen_model: _Model, checkpoint, cfg: GenerateConfig) -> dict[str, Any]:
    """The run's settings record; ``fingerprint`` identifies what determines the output (checkpoint
    checksums and every option but the device and the paths), so a resume never mixes two runs."""
    sums = gen_model.checksums
    # an option at the value it had before it existed is left out, so older runs keep their fingerprint
    # (timestep_spacing None: the checkpoint's; precision fp32)
    options = {k: v for k, v in asdict(cfg).items() if k not in ("device", "pwsg_checkpoint", "own_codes", "new_listeners")
               and not (k == "timestep_spacing" and v is None) and not (k == "precision" and v == "fp32")}
    # own_codes / new_listeners only matter to a PWSG with codes, whose meta["style"] records them
    fp = settings_fingerprint({"checkpoints": sums, "options": options,
                               "model": {k: v for k, v in gen_model.meta.items() if not k.endswith("checkpoint")}})
    known = {gen_model.sources[role]: digest for role, digest in sums.items()}
    return {**gen_model.meta, "checkpoint": str(checkpoint), "checkpoint_sha1": known.get(str(checkpoint)) or sha1_of(checkpoint),
            "checkpoint_sha1s": sums, "config": asdict(cfg), "fingerprint": fp}


def generate_shard(work: str, checkpoint: str, cfg_dict: dict[str, Any], run: str, index: int, count: int) -> dict[str, Any]:
    """Shard ``index`` of ``count`` of a generation run (whole batches), into a shard store file."""
    from reactcli.execution import shard_path
    from reactcli.manifest import shard_records
    from reactcli.storage import ShardWriter

    from reactcli.generation.store import store_batches

    cfg = GenerateConfig(**cfg_dict)
    work_p = Path(work)
    gen_model = load_generator(checkpoint, cfg)
    gen_model.use_work(work_p)
    table = load_items(work_p, cfg.split)
    mine = shard_records(item_batches(table.n, cfg.batch_size), index, count)
    stage = f"generate-{run}-{cfg.split}"
    with ShardWriter(shard_path(work_p, stage, index, count), work=work_p) as w:
        store_batches(w, run, cfg.split, _generate_batches(work_p, gen_model, cfg, run, mine, None),
                      num_samples=cfg.num_samples, seed=cfg.seed, meta=_meta(gen_model, checkpoint, cfg))
    return {"shard": index, "batches": len(mine)}


def generate_run(
    work: str | os.PathLike,
    checkpoint: str | os.PathLike,
    cfg: GenerateConfig,
    run: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    exec_cfg: Any = None,
    overwrite: bool = False,
) -> Path:
    """Generate ``cfg.num_samples`` reactions for every item of ``cfg.split``; returns the manifest path.

    ``exec_cfg`` (:class:`reactcli.execution.ExecConfig`) splits the run into shards of whole
    batches (local processes, ``--shard i/N`` or a Slurm array); the result is identical.
    Items already stored for ``run`` are kept (resume) if they were made with the same settings;
    otherwise an :class:`InputError`, or with ``overwrite`` the old items are deleted first.
    """
    from reactcli.generation.store import finalize_run, store_batches

    work = Path(work)
    gen_model = load_generator(checkpoint, cfg)
    gen_model.use_work(work)
    run = run or Path(checkpoint).parent.name + ("-personalised" if cfg.personalised else "")
    table = load_items(work, cfg.split)
    meta = _meta(gen_model, checkpoint, cfg)
    check_stored_run(work, run, cfg.split, meta["fingerprint"], overwrite=overwrite)
    sharded = exec_cfg is not None and (exec_cfg.num_jobs > 1 or exec_cfg.shard is not None or exec_cfg.executor != "local")
    if not sharded:
        from reactcli.storage import FeatureStore

        pending = set(pending_items(work, run, cfg.split, table, gen_model.features))
        if not pending:  # all stored: just (re)write the manifest
            return finalize_run(work, run, cfg.split, table, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta,
                                features=gen_model.features)
        batches = _generate_batches(work, gen_model, cfg, run, item_batches(table.n, cfg.batch_size), on_progress,
                                    pending)
        with FeatureStore(work).writer(f"gen-{run}-{cfg.split}") as w:
            feats = store_batches(w, run, cfg.split, batches, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta)
        return finalize_run(work, run, cfg.split, table, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta,
                            features=feats or gen_model.features)
    from reactcli.execution import merge_shards, run_shards

    stage = f"generate-{run}-{cfg.split}"
    run_shards(generate_shard, (str(work), str(checkpoint), asdict(cfg), run), work, stage, exec_cfg, on_progress)
    if exec_cfg.shard is not None:
        return work / "features" / "shards" / stage
    merge_shards(work, stage, exec_cfg.num_jobs, name=f"gen-{run}-{cfg.split}")
    return finalize_run(work, run, cfg.split, table, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta,
                        features=gen_model.features)
