"""The ``clip`` stage: cut every raw session into challenge clips for both participants.

Input: ``<work>/manifests/sessions.jsonl`` (written by ``reactcli prepare recola|noxi|synthetic|
mars``). Output, under ``<work>/clips/`` in the REACT 2023/24 clip layout (so the folder can also
be read as a REACT root's split folder by other tools)::

    clips/Video_files/<site>/<session>/<person>/<i>.mp4   (exactly `frames` frames at `fps`)
    clips/Audio_files/<site>/<session>/<person>/<i>.wav   (mono PCM at `sample_rate`)
    clips/Emotion/<site>/<session>/<person>/<i>.csv       (header + `frames` x 25; if the session has it)
    clips/3D_FV_files/<site>/<session>/<person>/<i>.npy   (`frames` x 58; if the session has it)

plus ``manifests/clips.jsonl`` (one :class:`ClipRecord` per clip and person; its ``sidecars``
point at the per-clip emotion/3DMM files, which is what the extract stage's ``precomputed``
extractor reads), ``manifests/pairs.jsonl`` and ``reports/clip.json``. ``<person>`` follows the
REACT naming (NoXI ``Expert_video``/``Novice_video``, RECOLA ``P25``...), so clip ids look like
``NoXI/010_2016-03-25_Paris/Expert_video/3``.

Why per-clip sidecar *files* rather than arrays straight into the store: the clip folder is then a
self-contained REACT-style corpus (features next to media, inspectable, reusable by
``prepare react``-like tools), and the extract stage stays the one place that validates and
stores features. Values are written with 9 significant digits, which round-trips float32 exactly.

Cutting rule (data.md): clip ``i`` (1-based) starts at ``(i-1)*stride`` s and holds ``frames``
frames (751 = 30 s at 25 fps plus the boundary frame); both participants are cut on the same
windows (lock step), the windows planned from the shorter participant video. A final partial
window is dropped (``remainder="drop"``, every clip full length) or, with ``remainder="keep"``,
kept if at least ``min_remainder_s`` long with the frames it has. Video and sidecars use the one
time -> frame rule of :mod:`reactcli.media.clip` (the frame at 30.00 s of a 25 fps session is
frame 0 of clip 2; 30 fps inputs are converted with the same nearest-frame map).

Pairs: for every clip index of a session, speaker = the first participant (NoXI Expert, RECOLA
P25/P41/P45, MARS speaker), listener = the second. Items of a split are numbered in session
order; splits in ``mirror_splits`` (val, test) then repeat every item with roles swapped as items
``n..2n-1`` (the challenge's evaluation order). MARS work dirs also get appropriateness by
session (``manifests/appropriate_<split>.jsonl``): every listener of the same MARS session fits.

Execution: sessions are sharded (:func:`reactcli.manifest.shard_records`) and run through
:func:`reactcli.execution.run_shards` (``--num-jobs``, ``--shard i/N``, ``--executor slurm``).
A shard writes its clip records to ``features/shards/clip/<i>-of-<N>.jsonl`` (+ a summary JSON)
and then an empty committed HDF5 marker at the contract's shard path, which is what tells the
executors that the shard is done. The merge concatenates the shard manifests in shard order, so
the manifests do not depend on the job count. Every file is written to a temp name and renamed;
a clip whose files exist is not cut again (rerun = resume); a session that fails with a bad
input has the files it wrote in that run removed, then fails the stage or (``on_error="skip"``)
is reported by name and left out.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

import reactcli
from reactcli.appropriate.mars import session_appropriateness
from reactcli.corpora.common import EMOTION_COLUMNS, EMOTION_DIM, load_emotion_csv, load_tdmm_npy
from reactcli.errors import ConfigError, InputError
from reactcli.execution import ExecConfig, run_shards, shard_dir, shard_path, stage_lock
from reactcli.io import atomic_open, atomic_path, file_stamp, save_npy, stamp_changed, write_json
from reactcli.manifest import (
    ClipRecord,
    PairRecord,
    SessionRecord,
    read_manifest,
    shard_records,
    write_manifest,
)
from reactcli.manifest.ids import clip_person, participant_id
from reactcli.manifest.splitmap import read_split_map, resolve_splits
from reactcli.media.clip import ClipConfig, ClipSpan, cut_clip, plan_clips, slice_frames
from reactcli.media.probe import probe
from reactcli.progress import ProgressFn, worker_progress
from reactcli.storage import ShardWriter

log = logging.getLogger(__name__)

STAGE = "clip"
EMOTION_HEADER = ",".join(EMOTION_COLUMNS)
#: sidecar kind -> (REACT folder, extension)
SIDECAR_DIRS = {"emotion": ("Emotion", ".csv"), "tdmm": ("3D_FV_files", ".npy")}
_EPS = 1e-3


@dataclass
class ClipStageConfig:
    """Options of ``reactcli clip``."""

    clip_seconds: float = 30.0
    """Window length in seconds (the challenge's 30 s)."""
    stride_seconds: float = 30.0
    """Distance between window starts (30 s: consecutive, non-overlapping)."""
    frames: int = 751
    """Video frames per clip (751 = 30 s at 25 fps plus the shared boundary frame)."""
    fps: float = 25.0
    """Clip frame rate; other input rates are converted (nearest frame)."""
    sample_rate: int = 44100
    """WAV sample rate in Hz. 44100 is the official release's rate, so the default clips give the
    challenge's 78-d MFCC (which depends on the rate: the features of a 16 kHz WAV differ).
    wav2vec2 resamples to 16 kHz itself, whatever the clips' rate."""
    remainder: str = "drop"
    """``drop``: every partial final window is dropped; ``keep``: keep one of at least
    ``min_remainder_s`` seconds, with the frames it has."""
    min_remainder_s: float = 0.3
    """Shortest partial window kept with ``remainder="keep"`` (0.3 s in the official cut)."""
    mode: str = "reencode"
    """``reencode`` (frame-exact H.264) or ``copy`` (stream copy: fast, keyframe-bound)."""
    crf: int = 18
    """libx264 quality for re-encoding (lower = better, bigger)."""
    preset: str = "veryfast"
    """libx264 preset (speed/size only; the frames written do not depend on it)."""
    max_pad_frames: int = 1
    """Missing final frames (video and sidecars) that may be filled by repeating the last one."""
    max_audio_pad_s: float = 0.5
    """Audio may end this much before a clip's end (padded with silence); more is an error."""
    sidecar_fps: float | None = None
    """Rows per second of the session sidecar files; ``None``: the participant video's rate."""
    on_error: str = "fail"
    """``fail``: a bad session stops the stage; ``skip``: report it by name and go on."""
    mirror_splits: tuple[str, ...] = ("val", "test")
    """Splits whose items are repeated with roles swapped (the challenge's evaluation order)."""
    out_dir: str = "clips"
    """Folder of the clip files, relative to the work directory."""
    split_map: str | None = None
    """A session-to-split map (CSV ``session,split`` or JSON; :mod:`reactcli.manifest.splitmap`)
    whose splits replace the ones ``prepare`` gave the sessions (by a cycle or a hash); every
    session must be in it."""
    overwrite: bool = False
    """Cut again the sessions whose clips were cut with other settings, instead of stopping with an
    error naming the setting that differs."""

    def settings(self) -> dict[str, Any]:
        """The options that decide the clip files (recorded per session, compared on a rerun)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("preset", "on_error", "mirror_splits", "out_dir", "overwrite", "split_map")}

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the option for impossible values."""
        if self.clip_seconds <= 0 or self.stride_seconds <= 0:
            raise ConfigError("--clip-seconds and --stride must be > 0")
        if self.frames < 1 or self.fps <= 0 or self.sample_rate <= 0:
            raise ConfigError("--frames, --fps and --sample-rate must be > 0")
        if self.remainder not in ("drop", "keep"):
            raise ConfigError(f"--remainder {self.remainder!r}: expected drop or keep")
        if self.mode not in ("reencode", "copy"):
            raise ConfigError(f"--mode {self.mode!r}: expected reencode or copy")
        if self.on_error not in ("fail", "skip"):
            raise ConfigError(f"--on-error {self.on_error!r}: expected fail or skip")

    def clip_config(self, frames: int | None = None) -> ClipConfig:
        return ClipConfig(fps=self.fps, num_frames=frames or self.frames, sample_rate=self.sample_rate,
                          mode=self.mode, crf=self.crf, preset=self.preset,  # type: ignore[arg-type]
                          max_pad_frames=self.max_pad_frames, max_audio_pad_s=self.max_audio_pad_s)


def load_sidecar(kind: str, path: str | os.PathLike) -> np.ndarray:
    """A session-level sidecar: emotion (.csv or .npy, T x 25) or tdmm (.npy, T x 58)."""
    p = Path(path)
    if kind == "tdmm":
        return load_tdmm_npy(p)
    if kind != "emotion":
        raise ConfigError(f"unknown sidecar kind {kind!r} (expected emotion or tdmm)")
    if p.suffix == ".npy":
        return load_tdmm_npy(p, dims=EMOTION_DIM)  # same checks: (T, 25) or (1, T, 25), finite
    return load_emotion_csv(p)


def _write_emotion(path: Path, arr: np.ndarray) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        np.savetxt(fh, arr, fmt="%.9g", delimiter=",", header=EMOTION_HEADER, comments="")


def _span_frames(span: ClipSpan, cfg: ClipStageConfig) -> int:
    if span.duration >= cfg.clip_seconds - _EPS:
        return cfg.frames
    return max(1, min(cfg.frames, int(np.floor(span.duration * cfg.fps + 1e-6)) + 1))


def plan_session(session: SessionRecord, cfg: ClipStageConfig) -> tuple[list[ClipSpan], list[dict[str, Any]]]:
    """Probe a session's media and plan its windows; raises ``InputError`` for bad inputs.

    Returns the spans and, per participant, ``{"video", "audio", "fps", "sidecars": {kind: array}}``.
    Everything a cut could trip over (unreadable or too-short video/audio, sidecars too short)
    is checked here, before any file is written.
    """
    if len(session.participants) != 2:
        raise InputError(f"{session.id}: expected 2 participants, got {len(session.participants)}")
    parts: list[dict[str, Any]] = []
    for p in session.participants:
        if not p.video:
            raise InputError(f"{session.id}: participant {p.person} has no video")
        vinfo = probe(p.video)
        if not vinfo.has_video or not vinfo.fps:
            raise InputError(f"{p.video}: has no video stream")
        frames = vinfo.num_frames or int(round(vinfo.duration_s * vinfo.fps))
        src = p.audio or p.video
        ainfo = probe(src)
        if not ainfo.has_audio:
            raise InputError(f"{src}: has no audio stream (expected the participant's audio)")
        parts.append({"person": p.person, "video": p.video, "audio": p.audio, "fps": float(vinfo.fps),
                      "seconds": frames / float(vinfo.fps), "audio_seconds": ainfo.duration_s,
                      "sidecar_files": dict(p.sidecars)})
    duration = min(x["seconds"] for x in parts)
    spans = plan_clips(duration, cfg.clip_seconds, cfg.stride_seconds,
                       cfg.min_remainder_s if cfg.remainder == "keep" else None)
    if not spans:
        lasts = ", ".join(f"{x['seconds']:.2f}" for x in parts)
        raise InputError(f"{session.id}: too short for one {cfg.clip_seconds:g} s clip (videos last {lasts} s)")
    last = spans[-1]
    need = last.start + _span_frames(last, cfg) / cfg.fps
    for x in parts:
        short = need - x["audio_seconds"]
        if short > cfg.max_audio_pad_s + _EPS:
            raise InputError(f"{x['audio'] or x['video']}: audio lasts {x['audio_seconds']:.3f} s but the video "
                             f"lasts {x['seconds']:.3f} s; the last clip needs audio to {need:.3f} s "
                             f"({short:.3f} s missing, at most {cfg.max_audio_pad_s} s may be padded)")
        x["sidecars"] = {}
        for kind, f in x["sidecar_files"].items():
            if kind not in SIDECAR_DIRS:
                continue
            arr = load_sidecar(kind, f)
            src_fps = cfg.sidecar_fps or x["fps"]
            # check the last window fits (raises naming the file); earlier windows then fit too
            slice_frames(arr, last.start, _span_frames(last, cfg), fps=cfg.fps, src_fps=src_fps,
                         max_pad_frames=cfg.max_pad_frames, name=str(f))
            x["sidecars"][kind] = (arr, src_fps)
    return spans, parts


def _manifest_path(p: Path, work: Path | None = None) -> str:
    """How a clip file is named in clips.jsonl: by its absolute path, so that every stage, run from
    any directory, reads the same file (:func:`reactcli.manifest.records.resolve_path`)."""
    return str(p.absolute())


SOURCES_DIR = "manifests/clip-sources"
"""Per session, how its clips were cut (settings, input stamps): ``<work>/manifests/clip-sources/<session id>.json``
(outside the clip folder, which stays a plain REACT layout)."""


def _session_inputs(session: SessionRecord) -> dict[str, str]:
    files: dict[str, str] = {}
    for p in session.participants:
        for kind, f in (("video", p.video), ("audio", p.audio), *sorted(p.sidecars.items())):
            if f:
                files[f"{p.person}/{kind}"] = f
    return files


def _check_sources(session: SessionRecord, out_root: Path, cfg: ClipStageConfig, work: Path | None = None) -> Path:
    """Compare the session's record of how its clips were cut (settings, input stamps) with now.

    Other settings stop with a :class:`ConfigError` naming them (``overwrite``: the session's clip
    files are removed and cut again); a changed input file removes them (they are cut again).
    Returns the record's path."""
    rec_path = (work if work is not None else out_root.parent) / SOURCES_DIR / f"{session.id}.json"
    if not rec_path.is_file():
        return rec_path
    try:
        old = json.loads(rec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    redo = None
    now = cfg.settings()
    if old.get("settings") != now:
        diff = "; ".join(f"{k}: stored {old.get('settings', {}).get(k)!r}, now {v!r}"
                         for k, v in now.items() if old.get("settings", {}).get(k) != v) or "settings differ"
        if not cfg.overwrite:
            raise ConfigError(f"{session.id}: its clips in {out_root} were cut with other settings ({diff}); rerun "
                              "with --overwrite to cut them again, or with the same options")
        redo = f"other settings ({diff})"
    else:
        stamps = old.get("inputs", {})
        for key, f in _session_inputs(session).items():
            if key not in stamps or stamp_changed(stamps[key], f):
                redo = f"{f} changed"
                break
        if redo is None and set(stamps) - set(_session_inputs(session)):
            redo = "an input file was removed"
    if redo:
        log.info("%s: cutting its clips again: %s", session.id, redo)
        for p in session.participants:
            pid = participant_id(session, p.person)
            for sub in ("Video_files", "Audio_files", *(d for d, _ in SIDECAR_DIRS.values())):
                shutil.rmtree(out_root / sub / pid, ignore_errors=True)
        rec_path.unlink(missing_ok=True)
    return rec_path


def cut_session(session: SessionRecord, out_root: Path, cfg: ClipStageConfig,
                work: Path | None = None) -> tuple[list[ClipRecord], int, int]:
    """Cut one session into clips for both participants; returns (records, cut, reused).

    Clips whose files already exist are reused (not re-encoded). On an ``InputError`` the files
    written by this call are removed before the error propagates (earlier runs' files stay).
    """
    spans, parts = plan_session(session, cfg)
    sources = _check_sources(session, out_root, cfg, work)
    site = session.site
    created: list[Path] = []
    records: list[ClipRecord] = []
    n_cut = n_reused = 0
    try:
        for span in spans:
            nf = _span_frames(span, cfg)
            ccfg = cfg.clip_config(nf)
            for x in parts:
                person = clip_person(site, x["person"])
                pid = participant_id(session, x["person"])
                rel = Path(pid)
                video = out_root / "Video_files" / rel / f"{span.index}.mp4"
                audio = out_root / "Audio_files" / rel / f"{span.index}.wav"
                todo_v, todo_a = not video.is_file(), not audio.is_file()
                if todo_v or todo_a:
                    cut_clip(x["video"], span.start, video if todo_v else None, audio if todo_a else None,
                             audio_in=x["audio"], config=ccfg)
                    created += [p for p, t in ((video, todo_v), (audio, todo_a)) if t]
                    n_cut += 1
                else:
                    n_reused += 1
                sidecars: dict[str, str] = {}
                for kind, (arr, src_fps) in x["sidecars"].items():
                    sub, ext = SIDECAR_DIRS[kind]
                    path = out_root / sub / rel / f"{span.index}{ext}"
                    if not path.is_file():
                        rows = slice_frames(arr, span.start, nf, fps=cfg.fps, src_fps=src_fps,
                                            max_pad_frames=cfg.max_pad_frames, name=x["sidecar_files"][kind])
                        if kind == "emotion":
                            _write_emotion(path, rows)
                        else:
                            save_npy(path, rows.astype(np.float32))
                        created.append(path)
                    sidecars[kind] = _manifest_path(path, work)
                records.append(ClipRecord(
                    id=f"{pid}/{span.index}", site=site, session=session.id, person=person,
                    index=span.index, start=span.start, end=span.start + nf / cfg.fps, fps=cfg.fps,
                    num_frames=nf, split=session.split, video=_manifest_path(video, work),
                    audio=_manifest_path(audio, work),
                    sidecars=sidecars, corpus=session.corpus))
    except InputError:
        for p in created:
            p.unlink(missing_ok=True)
        raise
    if n_cut or not sources.is_file():
        write_json(sources, {"session": session.id, "settings": cfg.settings(),
                             "inputs": {k: file_stamp(f) for k, f in _session_inputs(session).items()}})
    return records, n_cut, n_reused


def _shard_files(work: Path, i: int, n: int) -> tuple[Path, Path]:
    d = shard_dir(work, STAGE)
    return d / f"{i:04d}-of-{n:04d}.jsonl", d / f"{i:04d}-of-{n:04d}.summary.json"


def _sessions(work: Path, cfg: ClipStageConfig) -> list[SessionRecord]:
    """The work directory's sessions, with the splits of ``cfg.split_map`` when one is given."""
    sessions = read_manifest(work / "manifests" / "sessions.jsonl", SessionRecord)
    if cfg.split_map:
        splits = resolve_splits([s.id for s in sessions], read_split_map(cfg.split_map), cfg.split_map)
        for s in sessions:
            s.split = splits[s.id]
    return sessions


def clip_shard(work: str, cfg_dict: dict[str, Any], index: int, count: int,
               on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Cut the sessions of shard ``index`` of ``count``: the unit of work of every executor."""
    progress = worker_progress(on_progress)
    cfg = ClipStageConfig(**{**cfg_dict, "mirror_splits": tuple(cfg_dict.get("mirror_splits", ("val", "test")))})
    work_p = Path(work)
    sessions = [s.resolved(work_p) for s in _sessions(work_p, cfg)]
    mine = shard_records(sessions, index, count)
    out_root = work_p / cfg.out_dir
    records: list[ClipRecord] = []
    skipped: list[str] = []
    n_cut = n_reused = 0
    for k, s in enumerate(mine):
        if progress:
            progress(f"clip shard {index}/{count}: sessions", k, len(mine))
        try:
            recs, c, r = cut_session(s, out_root, cfg, work=work_p)
        except InputError as exc:
            if cfg.on_error != "skip":
                raise
            log.warning("skipping session %s: %s", s.id, exc)
            skipped.append(f"{s.id}: {exc}")
            continue
        records += recs
        n_cut += c
        n_reused += r
    if progress:
        progress(f"clip shard {index}/{count}: sessions", len(mine), len(mine))
    summary = {"shard": index, "count": count, "sessions": len(mine), "clips": len(records),
               "cut": n_cut, "reused": n_reused, "skipped": skipped}
    man, summ = _shard_files(work_p, index, count)
    write_manifest(man, records)
    write_json(summ, summary)
    with ShardWriter(shard_path(work_p, STAGE, index, count), work=work_p,
                     stage_settings=json.dumps(cfg.settings(), sort_keys=True)):
        pass  # empty committed marker: the contract's "this shard is done"
    return summary


def build_pairs(clips: list[ClipRecord], sessions: list[SessionRecord], mirror_splits: tuple[str, ...]) -> list[PairRecord]:
    """Speaker/listener items per split in session order (mirrored splits: + swapped items)."""
    by_key: dict[tuple[str, int], dict[str, ClipRecord]] = {}
    for c in clips:
        by_key.setdefault((c.session, c.index), {})[c.person] = c
    order = {"train": 0, "val": 1, "test": 2}
    splits = sorted({s.split or "train" for s in sessions}, key=lambda x: (order.get(x, 3), x))
    pairs: list[PairRecord] = []
    for split in splits:
        base: list[tuple[str, str]] = []
        for s in sessions:
            if (s.split or "train") != split:
                continue
            spk, lis = (clip_person(s.site, p.person) for p in s.participants)
            idx = sorted(i for (sid, i) in by_key if sid == s.id)
            for i in idx:
                got = by_key[(s.id, i)]
                if spk in got and lis in got:
                    base.append((got[spk].id, got[lis].id))
        items = [(a, b, False, r) for r, (a, b) in enumerate(base)]
        if split in mirror_splits:
            items += [(b, a, True, r) for r, (a, b) in enumerate(base)]
        pairs += [PairRecord(id=f"{split}/{k}", split=split, index=k, speaker=a, listener=b, mirrored=m, row=r)
                  for k, (a, b, m, r) in enumerate(items)]
    return pairs


def merge_clip_shards(work: str | os.PathLike, n: int, cfg: ClipStageConfig) -> dict[str, Any]:
    """Concatenate the ``n`` shard manifests into clips.jsonl + pairs.jsonl; remove the shards."""
    work = Path(work)
    missing = [shard_path(work, STAGE, i, n) for i in range(n) if not shard_path(work, STAGE, i, n).exists()]
    if missing:
        raise InputError(f"cannot merge {STAGE}: {len(missing)} shard(s) not done, first {missing[0]}; run them first")
    clips: list[ClipRecord] = []
    shards: list[dict[str, Any]] = []
    for i in range(n):
        man, summ = _shard_files(work, i, n)
        clips += read_manifest(man, ClipRecord)
        shards.append(json.loads(summ.read_text(encoding="utf-8")))
    sessions = _sessions(work, cfg)
    pairs = build_pairs(clips, sessions, cfg.mirror_splits)
    if cfg.split_map:  # sessions.jsonl tells the splits the clips and items got
        write_manifest(work / "manifests" / "sessions.jsonl", sessions)
    write_manifest(work / "manifests" / "clips.jsonl", clips)
    write_manifest(work / "manifests" / "pairs.jsonl", pairs)
    appropriate = {}
    if sessions and all(s.corpus == "mars" for s in sessions) and pairs:
        appropriate = session_appropriateness(work, pairs, {c.id: c.session for c in clips})
    for i in range(n):
        for p in (*_shard_files(work, i, n), shard_path(work, STAGE, i, n)):
            p.unlink(missing_ok=True)
    d = shard_dir(work, STAGE)
    for folder in (d, d.parent):
        if folder.exists() and not any(folder.iterdir()):
            shutil.rmtree(folder)
    per_split: dict[str, int] = {}
    for p in pairs:
        per_split[p.split] = per_split.get(p.split, 0) + 1
    return {"clips": len(clips), "pairs": per_split, "appropriate": appropriate,
            "cut": sum(s["cut"] for s in shards), "reused": sum(s["reused"] for s in shards),
            "skipped": [x for s in shards for x in s["skipped"]], "shards": shards}


def run_clip(work: str | os.PathLike, cfg: ClipStageConfig | None = None, exec_cfg: ExecConfig | None = None,
             on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Cut every session of ``work`` into clips; returns a summary (also ``reports/clip.json``)."""
    cfg = cfg or ClipStageConfig()
    cfg.validate()
    exec_cfg = exec_cfg or ExecConfig()
    work = Path(work)
    sess_path = work / "manifests" / "sessions.jsonl"
    if not sess_path.is_file():
        raise InputError(f"{sess_path}: no sessions (run `reactcli prepare recola|noxi|synthetic|mars` first)")
    out_root = work / cfg.out_dir
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_root / ".write-test"):
            pass
        (out_root / ".write-test").unlink()
    except OSError as exc:
        raise ConfigError(f"{out_root}: clip output folder is not writable ({exc.strerror or exc})") from exc
    if cfg.split_map:  # checked once here (every session mapped) before any shard runs
        cfg = replace(cfg, split_map=str(Path(cfg.split_map).resolve()))
        _sessions(work, cfg)
    with stage_lock(work, STAGE, exec_cfg):
        results = run_shards(clip_shard, (str(work), asdict(cfg)), work, STAGE, exec_cfg, on_progress,
                             settings=json.dumps(cfg.settings(), sort_keys=True), overwrite=cfg.overwrite)
        summary: dict[str, Any] = {"stage": STAGE, "config": asdict(cfg), "executor": exec_cfg.executor,
                                   "reactcli_version": reactcli.__version__}
        if exec_cfg.shard is not None:
            summary.update({"shards": results, "merged": False,
                            "skipped": [x for r in results for x in r.get("skipped", [])]})
            return summary
        summary.update(merge_clip_shards(work, exec_cfg.num_jobs, cfg))
        summary["merged"] = True
        write_json(work / "reports" / "clip.json", summary)
        return summary
