"""PerFRDiff's generator (registry entries ``perfrdiff-gafrg`` and ``perfrdiff-pwsg``): the
generic GAFRG, or GAFRG edited per listener by a PWSG (style from the PSSL, or listener codes),
all K samples and windows in one batched DDIM pass (:func:`reactcli.models.perfrdiff.generate`).

Listener codes of listeners the PWSG has not met are read from their history clip
(:meth:`PerFRDiffGenerator.read_codes`) and kept in ``<work>/cache/code-readings/`` for any
later run, split or seed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from reactcli.errors import ConfigError
from reactcli.generation.base import GenerateConfig, Generator, seeded
from reactcli.io import file_lock, settings_fingerprint, write_json
from reactcli.manifest.items import load_items
from reactcli.models.perfrdiff import DiffusionConfig, generate, load_pssl, make_scheduler
from reactcli.models.perfrdiff.diffusion import precision_dtype
from reactcli.models.registry import load_model
from reactcli.training.data import DataConfig, history_batch
from reactcli.training.perfrdiff_losses import code_scores

__all__ = ["PerFRDiffGenerator", "CODE_READING"]

EMOTION_DIM = 25

CODE_READING = {"windows": 32, "draws": 8, "version": 2}
"""How a listener code is read from a history clip: ``draws`` rounds of ``windows`` random 50-frame
windows, the same for every code (see ``code_scores``). Version 2 seeds the draws by the clip's
content alone (version 1 also used ``--seed``), so a reading is a property of the clip and the
PWSG, like a PSSL style, and can be kept in ``<work>/cache/code-readings/``."""


class PerFRDiffGenerator(Generator):
    def __init__(self, ck: dict[str, Any], path: str, cfg: GenerateConfig, dev: torch.device):
        precision_dtype(cfg.precision)  # a bad name stops before any checkpoint is read
        if cfg.eta is not None:
            raise ConfigError("--eta is a BeLFusion option; PerFRDiff samples with deterministic DDIM (eta 0)")
        if ck["model"] == "perfrdiff-pwsg":  # a PWSG checkpoint generates personalised reactions
            cfg = replace(cfg, personalised=True, pwsg_checkpoint=cfg.pwsg_checkpoint or path)
        self.cfg, self.dev = cfg, dev
        self.editor = self.pssl = None
        if cfg.personalised:
            pw = cfg.pwsg_checkpoint
            if pw is None:
                raise ConfigError("--personalised needs --pwsg-checkpoint (a trained PWSG)")
            editor, pck = load_model(pw, ("perfrdiff-pwsg",), asset="PWSG checkpoint", option="--pwsg-checkpoint")
            self.editor = editor.to(dev).eval()
            gpath = pck.get("gafrg_checkpoint")
            self.sources = {"pwsg": str(pw)}
            if self.editor.codes is None:
                self.pssl = load_pssl(pck.get("pssl_checkpoint"), option="the PWSG checkpoint's pssl_checkpoint").to(dev).eval()
                self.sources["pssl"] = str(pck.get("pssl_checkpoint"))
        else:
            gpath = path
            self.sources = {}
        self.sources["gafrg"] = str(gpath)
        gafrg, gck = load_model(gpath, ("perfrdiff-gafrg",), asset="GAFRG checkpoint",
                                option="the PWSG checkpoint's gafrg_checkpoint" if cfg.personalised else "--checkpoint")
        self.gafrg = gafrg.to(dev).eval()
        self.diffusion = DiffusionConfig.from_dict(gck.get("diffusion", {}))
        if cfg.timestep_spacing is not None:
            self.diffusion = replace(self.diffusion, timestep_spacing=cfg.timestep_spacing)  # validated again
        # sampler options left out take the values the GAFRG was trained for (its recipe)
        # an explicit --context N > 0 asks for continued windows, so it turns the checkpoint's overlap off
        overlap = (self.diffusion.overlap and not cfg.context) if cfg.overlap is None else cfg.overlap
        cfg = replace(cfg, steps=self.diffusion.num_inference_steps if cfg.steps is None else cfg.steps,
                      guidance=self.diffusion.guidance_scale if cfg.guidance is None else cfg.guidance,
                      overlap=overlap,
                      context=(0 if overlap else self.diffusion.context_frames) if cfg.context is None else cfg.context)
        if not 0 <= cfg.context < gafrg.config.window:
            raise ConfigError(f"--context must be in [0, {gafrg.config.window - 1}] (the GAFRG's window is "
                              f"{gafrg.config.window} frames), got {cfg.context}")
        if cfg.context and cfg.overlap:
            raise ConfigError("--overlap and --context are two ways to avoid seams; choose one (--context 0 --overlap)")
        self.cfg = cfg
        self.scheduler = make_scheduler(self.diffusion)
        target = ((gck.get("recipe") or {}).get("step") or {}).get("target", "emotion")
        self.target = target
        self.features = {"emotion": ["emotion"], "tdmm": ["tdmm"], "both": ["emotion", "tdmm"]}[target]
        self.data_config = DataConfig(**{**gck.get("data_config", {}), "crop": None})
        self.meta = {"model": "perfrdiff", "personalised": cfg.personalised, "steps": cfg.steps,
                     "guidance": cfg.guidance, "overlap": cfg.overlap, "context": cfg.context, "gafrg_checkpoint": str(gpath),
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
                                     generator=seeded(0, int(key[:12], 16), torch.device("cpu")), **reading)[0]
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
                         editor=editor, generator=gen, device=self.dev, overlap=self.cfg.overlap, context=self.cfg.context,
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


