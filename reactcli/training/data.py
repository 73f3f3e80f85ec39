"""Training/generation data: speaker-listener items of a split, read from the feature store.

An :class:`~reactcli.manifest.items.ItemTable` is the split's items (``manifests/pairs.jsonl``) in challenge order plus
its appropriateness matrix (``appropriate/<split>.npy``; without one, each item's only
appropriate reaction is its own listener). :class:`ReactionDataset` turns an item into the
sample dict every model consumes (see ``docs`` in the model modules):

``speaker_audio (T,A)``, ``speaker_emotion (T,25)``, ``speaker_tdmm (T,58)``,
``listener_emotion``, ``listener_tdmm``, ``appropriate_emotion (M,T,25)``,
``appropriate_tdmm (M,T,58)``, ``appropriate_mask (M,)``, ``listener_id``,
``listener_history_tdmm (Th,58)``, ``listener_history_emotion (Th,25)``,
``speaker_history_tdmm``, ``speaker_history_emotion``, ``speaker_history_audio`` (the speaker the
listener answered in that history clip), ``index``. :func:`history_batch` turns the history
fields of a batch into an item of their own (the history clip as listener, its partner as
speaker).

Arrays are read lazily from the store (file handles per worker process) and cached in memory
per dataset instance, since a training run reads each clip many times.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from reactcli.config import PositiveInt
from reactcli.errors import InputError
from reactcli.manifest.items import ItemTable
from reactcli.storage import FeatureStore


@dataclass
class DataConfig:
    """What the dataset reads and how it crops."""

    audio: str = "mfcc"
    """Audio feature in the store: ``mfcc`` (78-d) or ``wav2vec2`` (1536-d)."""
    frames: PositiveInt = 750
    """Frames per clip used (the challenge uses the first 750 of 751)."""
    crop: PositiveInt | None = 256
    """Random crop length for training (None = whole clip)."""
    max_appropriate: PositiveInt = 20
    """At most this many appropriate reactions per item (own listener always kept)."""
    history: bool = True
    """Also return another clip of the same listener (personal style) and its speaker's side."""


class ReactionDataset(Dataset):
    """Items of a split as model samples (see module docstring)."""

    def __init__(self, work: str | os.PathLike, table: ItemTable, cfg: DataConfig, seed: int = 0, train: bool = True):
        self.store = FeatureStore(work)
        self.table = table
        self.cfg = cfg
        self.seed = seed
        self.train = train
        self.epoch = 0
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self._rows = table.rows()
        by_ident: dict[int, list[str]] = {}
        for i, p in enumerate(table.pairs):
            lid = table.listener_id(i)
            by_ident.setdefault(lid, [])
            if p.listener not in by_ident[lid]:
                by_ident[lid].append(p.listener)
        self._clips_of = by_ident
        # the speaker a listener clip answers (first item that pairs them: a clip is listener once per split)
        self._speaker_of: dict[str, str] = {}
        for p in table.pairs:
            self._speaker_of.setdefault(p.listener, p.speaker)
        feats = ["emotion", "tdmm", cfg.audio]
        for p in table.pairs[:1]:
            for f in feats:
                self.store.ref(p.speaker, f)  # fail early, naming the missing feature
        # every clip's arrays of a feature must have one width (and emotion/3DMM the challenge's):
        # a store mixing two extractions fails here, naming two clips, not in a collate traceback
        expected = {"emotion": 25, "tdmm": 58}
        clips = sorted({c for p in table.pairs for c in (p.speaker, p.listener)})
        for f in feats:
            first: tuple[str, int] | None = None
            for c in clips:
                ref = self.store.index.get((c, f))
                if ref is None:
                    continue
                width = int(ref.shape[-1]) if ref.shape else 0
                if f in expected and width != expected[f]:
                    raise InputError(f"{f} of clip {c} has {width} dims, expected {expected[f]} ({ref.store})")
                if first is None:
                    first = (c, width)
                elif width != first[1]:
                    raise InputError(f"{f} of clip {c} has {width} dims but clip {first[0]} has {first[1]}: "
                                     "the store mixes two extractions (redo `reactcli extract`)")

    def __len__(self) -> int:
        return self.table.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _get(self, clip: str, feature: str) -> np.ndarray:
        key = (clip, feature)
        arr = self._cache.get(key)
        if arr is None:
            arr = np.asarray(self.store.read(clip, feature), dtype=np.float32)[: self.cfg.frames]
            if arr.shape[0] < self.cfg.frames:
                raise InputError(f"{feature} of clip {clip} has {arr.shape[0]} frames, expected >= {self.cfg.frames}")
            if not np.isfinite(arr).all():
                raise InputError(f"{feature} of clip {clip} contains NaN/inf")
            self._cache[key] = arr
        return arr

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        pair = self.table.pairs[i]
        T = self.cfg.frames
        if self.train and self.cfg.crop and self.cfg.crop < T:
            start = int(rng.integers(0, T - self.cfg.crop + 1))
            sl = slice(start, start + self.cfg.crop)
        else:
            sl = slice(0, T)
        rows = self._rows[i]
        own = i
        others = rows[rows != own]
        if len(others) > self.cfg.max_appropriate - 1:
            others = rng.choice(others, self.cfg.max_appropriate - 1, replace=False) if self.train else others[: self.cfg.max_appropriate - 1]
        chosen = [own] + sorted(int(j) for j in others)
        lis = [self.table.pairs[j].listener for j in chosen]
        sample: dict[str, Any] = {
            "index": torch.tensor(i),
            "frame_offset": torch.tensor(sl.start, dtype=torch.long),  # clip frame of the crop's frame 0
            "speaker_audio": torch.from_numpy(self._get(pair.speaker, self.cfg.audio)[sl]),
            "speaker_emotion": torch.from_numpy(self._get(pair.speaker, "emotion")[sl]),
            "speaker_tdmm": torch.from_numpy(self._get(pair.speaker, "tdmm")[sl]),
            "listener_emotion": torch.from_numpy(self._get(pair.listener, "emotion")[sl]),
            "listener_tdmm": torch.from_numpy(self._get(pair.listener, "tdmm")[sl]),
            "appropriate_emotion": torch.from_numpy(np.stack([self._get(c, "emotion")[sl] for c in lis])),
            "appropriate_tdmm": torch.from_numpy(np.stack([self._get(c, "tdmm")[sl] for c in lis])),
            "appropriate_mask": torch.ones(len(lis), dtype=torch.bool),
            "listener_id": torch.tensor(self.table.listener_id(i), dtype=torch.long),
        }
        if self.cfg.history:
            lid = int(sample["listener_id"])
            clips = [c for c in self._clips_of.get(lid, []) if c != pair.listener] or [pair.listener]
            hist = clips[int(rng.integers(0, len(clips)))] if self.train else clips[0]
            sample["listener_history_tdmm"] = torch.from_numpy(self._get(hist, "tdmm"))
            sample["listener_history_emotion"] = torch.from_numpy(self._get(hist, "emotion"))
            partner = self._speaker_of[hist]
            sample["speaker_history_tdmm"] = torch.from_numpy(self._get(partner, "tdmm"))
            sample["speaker_history_emotion"] = torch.from_numpy(self._get(partner, "emotion"))
            sample["speaker_history_audio"] = torch.from_numpy(self._get(partner, self.cfg.audio))
        return sample


def history_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The history clips of a batch as items: ``listener_*`` = the history clip, ``speaker_*`` = the
    speaker it answered (whole clips, so ``frame_offset`` 0)."""
    out = {f"speaker_{k}": batch[f"speaker_history_{k}"] for k in ("audio", "emotion", "tdmm")}
    out.update({f"listener_{k}": batch[f"listener_history_{k}"] for k in ("emotion", "tdmm")})
    out["frame_offset"] = torch.zeros(out["speaker_audio"].shape[0], dtype=torch.long, device=out["speaker_audio"].device)
    return out


def collate(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack samples; pad the appropriate sets to the largest M with a mask."""
    out: dict[str, torch.Tensor] = {}
    m = max(s["appropriate_emotion"].shape[0] for s in samples)
    for key in samples[0]:
        vals = [s[key] for s in samples]
        if key in ("appropriate_emotion", "appropriate_tdmm", "appropriate_mask"):
            padded = []
            for v in vals:
                pad = m - v.shape[0]
                if pad:
                    v = torch.cat([v, torch.zeros((pad, *v.shape[1:]), dtype=v.dtype)], 0)
                padded.append(v)
            vals = padded
        out[key] = torch.stack(vals)
    return out
