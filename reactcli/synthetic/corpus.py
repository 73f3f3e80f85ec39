"""The synthetic corpus writer: the world of :mod:`reactcli.synthetic.world` on disk, in the REACT
or the raw-session layouts (``reactcli synth``, the demo and the tests read what it writes).

Files written
=============

``layout="react"`` (the clipped REACT 2023/24 layout, data.md)::

    <root>/{train,val,test}/Video_files/<site>/<session>/<person>/<clip>.mp4   (if video=True)
    <root>/{split}/Audio_files/<site>/<session>/<person>/<clip>.wav           (30 s, audio_rate)
    <root>/{split}/Emotion/<site>/<session>/<P1|P2>/<clip>.csv                (header + 751 x 25)
    <root>/{split}/3D_FV_files/<site>/<session>/<person>/<clip>.npy           (751,58) or (1,751,58)
    <root>/{train,val,test}.csv            index,speaker_path,listener_path (no extension)
    <root>/neighbour_emotion_{val,test}.npy   (2n, 2n) float32 0/1, mirrored item order
    <root>/mean_face.npy                   (58,) float32 stand-in for the challenge asset
    <root>/truth/appropriate_{split}.npy   same rule, every split (train included)
    <root>/truth/truth.json                config, persons (styles), every clip's truth
    <root>/truth/identities.json           participant folder -> identity (recurring experts)

  ``<site>/<session>/<person>``: NoXI ``NoXI/003_2016-03-19_Augsburg/Expert_video`` and
  ``Novice_video``; RECOLA ``RECOLA/group-1/P25`` and ``P26`` (group-2: P41/P42, group-3:
  P45/P46). Emotion files use ``P1`` (Expert/P25/P41/P45) and ``P2``. Clips are numbered from 1
  per session; clip ``c`` holds session frames ``[(c-1)*750, (c-1)*750 + 751)`` and audio
  ``[(c-1)*30 s, c*30 s)``. The 3DMM file of clip ``c`` of side ``s`` (0 = Expert/P25 side,
  1 = other) is saved as ``(1, 751, 58)`` when ``(c + s) % 3 == 0`` and ``(751, 58)`` otherwise.
  Sessions go to splits by index, cycling ``train, val, test, train, train``; session ``k`` is
  RECOLA-like when ``k % 3 == 2`` (at most 3 groups), else NoXI-like.

``layout="raw"`` (whole sessions, before clipping)::

    <root>/NoXI/<sid>_<date>_<city>/{Expert,Novice}/video.mp4, audio.wav, emotion.csv, 3dmm.npy
    <root>/RECOLA/group-<g>/<P>/<P>.mp4, <P>.wav, <P>_emotion.csv, <P>_3dmm.npy
    <root>/mean_face.npy, <root>/truth/truth.json   (sessions with per-segment truth)
    <root>/truth/identities.json                    participant folder -> identity

  A raw session lasts ``minutes`` minutes plus one frame: ``round(minutes*60*fps) + 1`` frames
  and ``round(minutes*60*audio_rate) + audio_rate // fps`` samples, so the official cutter yields
  ``minutes*60/clip_seconds`` clips of 751 frames and drops the 40 ms remainder.

CSV header: ``AU1,...,AU26,valence,arousal,Neutral,Happy,Sad,Surprise,Fear,Disgust,Anger,
Contempt`` (data.md order). Audio: mono 16-bit PCM at ``audio_rate`` (16 kHz by default; the
official release used 44.1 kHz).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from reactcli.errors import ConfigError, InputError
from reactcli.synthetic.world import (
    CITIES,
    RECOLA_GROUPS,
    SPLIT_CYCLE,
    EMOTION_COLUMNS,
    MEAN_FACE,
    PERSON_P1P2,
    SynthConfig,
    make_person,
    make_world,
    simulate_session,
)

__all__ = ["SynthSummary", "synthesize", "read_truth"]


@dataclass
class SynthSummary:
    """What :func:`synthesize` wrote."""

    root: Path
    layout: str
    paths: dict[str, Path]
    """Key files: ``truth``, ``identities``, ``mean_face``, and for REACT ``train_csv``/``val_csv``/``test_csv``,
    ``neighbour_val``/``neighbour_test``."""
    counts: dict[str, int]
    """Numbers of sessions, clips per split (react), files per kind."""
    audio_rate: int
    fps: int
    size: int
    seconds: float
    """Wall-clock time of the whole generation."""
    truth: dict = field(repr=False)
    """The content of ``truth/truth.json``."""



# ------------------------------------------------------------------------------------------------
# corpus plan
# ------------------------------------------------------------------------------------------------
@dataclass
class _Session:
    index: int
    site: str  # NoXI | RECOLA
    name: str  # NoXI session folder or RECOLA group
    persons: tuple[str, str]  # folder names: Expert/Novice or P25/P26 (raw layout)
    split: str
    expert: str | None = None  # identity of a recurring expert (SynthConfig.recurring_experts)


def _plan_sessions(cfg: SynthConfig) -> list[_Session]:
    out = []
    n_recola = n_noxi = 0
    for k in range(cfg.sessions):
        split = SPLIT_CYCLE[k % len(SPLIT_CYCLE)]
        if k % 3 == 2 and n_recola < len(RECOLA_GROUPS):
            g, a, b = RECOLA_GROUPS[n_recola]
            n_recola += 1
            out.append(_Session(k, "RECOLA", g, (a, b), split))
        else:
            day = np.datetime64("2016-03-17") + np.timedelta64(k, "D")
            name = f"{k + 1:03d}_{day}_{CITIES[k % len(CITIES)]}"
            expert = f"NoXI/expert-{n_noxi % cfg.recurring_experts + 1}" if cfg.recurring_experts else None
            n_noxi += 1
            out.append(_Session(k, "NoXI", name, ("Expert", "Novice"), split, expert))
    return out


def _person_id(sess: _Session, side: int) -> str:
    """The participant's identity: ``<site>/<session>/<person>``, or the recurring expert's."""
    if side == 0 and sess.expert:
        return sess.expert
    return f"{sess.site}/{sess.name}/{sess.persons[side]}"


def _react_person(sess: _Session, side: int) -> str:
    return f"{sess.persons[side]}_video" if sess.site == "NoXI" else sess.persons[side]


# ------------------------------------------------------------------------------------------------
# writers
# ------------------------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, write: Callable[[Path], None]) -> None:
    from reactcli.media.encode import atomic_tmp_path  # noqa: PLC0415

    tmp = atomic_tmp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_emotion_csv(path: Path, emotion: np.ndarray) -> None:
    def w(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            np.savetxt(fh, emotion, fmt="%.6g", delimiter=",", header=",".join(EMOTION_COLUMNS), comments="")

    _atomic_write_bytes(path, w)


def _write_npy(path: Path, arr: np.ndarray) -> None:
    def w(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)

    _atomic_write_bytes(path, w)


def _write_text(path: Path, text: str) -> None:
    def w(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    _atomic_write_bytes(path, w)


def _video_job(args: tuple) -> str:
    """Render a face video from features and encode it (runs in a worker process)."""
    from reactcli.media.encode import VideoWriter  # noqa: PLC0415
    from reactcli.render.face2d import iter_frames  # noqa: PLC0415

    path, emotion, tdmm, size, fps, preset, crf, wav = args
    with VideoWriter(path, size, size, fps, preset=preset, crf=crf, audio=wav) as vw:
        for chunk in iter_frames(emotion, tdmm, size, chunk=256):
            vw.write(chunk)
    return str(path)


def _start_method() -> str:
    """'spawn' (safe whatever threads the parent runs) unless the main module cannot be re-imported.

    Spawned workers re-import ``__main__``; when that is stdin, ``python -c`` or a notebook there
    is no file to import, so fall back to 'fork' where the platform has it.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and os.path.isfile(path):
        return "spawn"
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _run_video_jobs(jobs: list[tuple], workers: int, on_done: Callable[[int, int], None] | None) -> None:
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        for k, job in enumerate(jobs):
            _video_job(job)
            if on_done:
                on_done(k + 1, len(jobs))
        return
    ctx = multiprocessing.get_context(_start_method())
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        futures = [ex.submit(_video_job, job) for job in jobs]
        for k, fut in enumerate(cf.as_completed(futures)):
            try:
                fut.result()
            except cf.process.BrokenProcessPool as exc:
                raise InputError(
                    f"a video worker process died ({exc}); rerun with workers=1 to see the error"
                ) from None
            if on_done:
                on_done(k + 1, len(jobs))


def _appropriateness(patterns: np.ndarray) -> np.ndarray:
    return (patterns[:, None] == patterns[None, :]).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------------
def synthesize(
    out_dir: str | os.PathLike,
    layout: Literal["react", "raw"] = "react",
    sessions: int = 6,
    minutes: float = 2.0,
    fps: int = 25,
    size: int = 128,
    seed: int = 0,
    clip_seconds: int = 30,
    video: bool = True,
    *,
    config: SynthConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **overrides,
) -> SynthSummary:
    """Generate a synthetic corpus under ``out_dir`` and return what was written.

    Pass either the keyword arguments (plus any other :class:`SynthConfig` field in
    ``overrides``) or a ready ``config``. ``progress(stage, done, total)`` is called as work
    completes (the CLI hooks a progress bar onto it). Existing files are overwritten.
    """
    t0 = time.perf_counter()
    if config is None:
        config = SynthConfig(layout=layout, sessions=sessions, minutes=minutes, fps=fps, size=size,
                             seed=seed, clip_seconds=clip_seconds, video=video)
    for k, v in overrides.items():
        if not hasattr(config, k):
            raise ConfigError(f"unknown synth option {k!r}")
        setattr(config, k, v)
    if isinstance(config.delay_range, list):
        config.delay_range = tuple(config.delay_range)
    config.validate()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    if not os.access(root, os.W_OK):
        raise InputError(f"output folder {root} is not writable")

    world = make_world(config)
    plan = _plan_sessions(config)
    person_rng = np.random.default_rng([config.seed, 1])
    styles = {}
    for sess in plan:
        for side in (0, 1):
            pid = _person_id(sess, side)
            if pid not in styles:  # a recurring expert keeps the style of their first session
                styles[pid] = make_person(pid, person_rng, config)
    if config.personal_affect > 0:
        affect_rng = np.random.default_rng([config.seed, 7])
        for pid in sorted(styles):
            st = styles[pid]
            x = config.personal_affect
            st.va_bias = (np.asarray(st.va_bias) + affect_rng.uniform(-x, x, 2)).round(4).tolist()
            st.expr_logit_bias = affect_rng.normal(0.0, 4.0 * x, 8).round(4).tolist()
    if config.personal_mode > 0:
        mode_rng = np.random.default_rng([config.seed, 9])
        for pid in sorted(styles):
            styles[pid].preferred_mode = int(mode_rng.integers(0, config.n_modes))
    report = progress or (lambda *_: None)

    seg_len = config.clip_seconds * config.fps
    if config.layout == "react":
        n_clips = int(config.minutes * 60 // config.clip_seconds)
        T = n_clips * seg_len + 1
        n_audio = n_clips * config.clip_seconds * config.audio_rate + config.audio_rate // config.fps
    else:
        T = int(round(config.minutes * 60 * config.fps)) + 1
        n_audio = int(round(config.minutes * 60 * config.audio_rate)) + config.audio_rate // config.fps

    video_jobs: list[tuple] = []
    counts: dict[str, int] = {"sessions": len(plan)}
    truth: dict = {"config": _jsonable(asdict(config)), "layout": config.layout,
                   "emotion_columns": list(EMOTION_COLUMNS), "audio_rate": config.audio_rate,
                   "persons": {k: asdict(v) for k, v in styles.items()}}
    paths: dict[str, Path] = {}
    _write_npy(root / "mean_face.npy", MEAN_FACE)
    paths["mean_face"] = root / "mean_face.npy"

    clips_truth: list[dict] = []
    sessions_truth: list[dict] = []
    split_rows: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    split_pats: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    for si, sess in enumerate(plan):
        st = (styles[_person_id(sess, 0)], styles[_person_id(sess, 1)])
        sim = simulate_session(world, config, st, T, n_audio, [config.seed, 2, sess.index])
        if config.layout == "react":
            _emit_react_session(root, config, sess, sim, st, video_jobs, clips_truth, split_rows, split_pats)
        else:
            _emit_raw_session(root, config, sess, sim, st, video_jobs, sessions_truth)
        report("features", si + 1, len(plan))

    if config.layout == "react":
        for split in ("train", "val", "test"):
            rows = split_rows[split]
            lines = ["index,speaker_path,listener_path"] + [f"{i},{a},{b}" for i, (a, b) in enumerate(rows)]
            _write_text(root / f"{split}.csv", "\n".join(lines) + "\n")
            paths[f"{split}_csv"] = root / f"{split}.csv"
            pats = np.array(split_pats[split], dtype=int).reshape(-1, 2)
            mirrored = np.concatenate([pats[:, 0], pats[:, 1]])
            A = _appropriateness(mirrored)
            _write_npy(root / "truth" / f"appropriate_{split}.npy", A)
            if split in ("val", "test"):
                _write_npy(root / f"neighbour_emotion_{split}.npy", A)
                paths[f"neighbour_{split}"] = root / f"neighbour_emotion_{split}.npy"
            counts[f"clips_{split}"] = len(rows)
        truth["clips"] = clips_truth
    else:
        truth["sessions"] = sessions_truth

    if config.video:
        _run_video_jobs(video_jobs, config.workers, lambda d, n: report("videos", d, n))
    counts["videos"] = len(video_jobs) if config.video else 0
    # who is who: participant folder (as clip ids name it) -> identity; `prepare react --identities`
    people = {}
    for sess in plan:
        for side in (0, 1):
            folder = _react_person(sess, side) if config.layout == "react" else sess.persons[side]
            people[f"{sess.site}/{sess.name}/{folder}"] = _person_id(sess, side)
    _write_text(root / "truth" / "identities.json", json.dumps(people, indent=1, sort_keys=True) + "\n")
    paths["identities"] = root / "truth" / "identities.json"
    truth_path = root / "truth" / "truth.json"
    _write_text(truth_path, json.dumps(truth, indent=1))
    paths["truth"] = truth_path
    return SynthSummary(root=root, layout=config.layout, paths=paths, counts=counts,
                        audio_rate=config.audio_rate, fps=config.fps, size=config.size,
                        seconds=time.perf_counter() - t0, truth=truth)


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _emit_react_session(root, cfg, sess, sim, styles, video_jobs, clips_truth, split_rows, split_pats):
    seg_len = cfg.clip_seconds * cfg.fps
    clip_samples = cfg.clip_seconds * cfg.audio_rate
    split = sess.split
    for j, seg in enumerate(sim["segments"]):
        if seg["start"] + seg_len + 1 > sim["people"][0]["emotion"].shape[0]:
            break
        c = j + 1
        rel = [f"{sess.site}/{sess.name}/{_react_person(sess, s)}/{c}" for s in (0, 1)]
        for s in (0, 1):
            person = _react_person(sess, s)
            ppl = sim["people"][s]
            sl = slice(seg["start"], seg["start"] + seg_len + 1)
            base = Path(sess.site) / sess.name
            wav = root / split / "Audio_files" / base / person / f"{c}.wav"
            _write_wav(wav, ppl["audio"][j * clip_samples:(j + 1) * clip_samples], cfg.audio_rate)
            _write_emotion_csv(_mk(root / split / "Emotion" / base / PERSON_P1P2[person] / f"{c}.csv"), ppl["emotion"][sl])
            tdmm = ppl["tdmm"][sl]
            if (c + s) % 3 == 0:
                tdmm = tdmm[None]
            _write_npy(_mk(root / split / "3D_FV_files" / base / person / f"{c}.npy"), tdmm)
            if cfg.video:
                mp4 = _mk(root / split / "Video_files" / base / person / f"{c}.mp4")
                video_jobs.append((mp4, ppl["emotion"][sl], ppl["tdmm"][sl], cfg.size, cfg.fps,
                                   cfg.preset, cfg.crf, wav if cfg.mux_audio else None))
        split_rows[split].append((rel[0], rel[1]))
        split_pats[split].append((seg["pattern"][0], seg["pattern"][1]))
        item = len(split_rows[split]) - 1
        sides = []
        for s in (0, 1):
            sides.append({"person": _person_id(sess, s), "pattern": seg["pattern"][s],
                          "mode": seg["mode"][s], "delay": styles[s].delay, "warp": seg["warp"][s]})
        clips_truth.append({
            "split": split, "index": item, "site": sess.site, "session": sess.name, "clip": c,
            "speaker_path": rel[0], "listener_path": rel[1], "start_frame": seg["start"],
            "speaker": sides[0], "listener": sides[1],
        })


def _emit_raw_session(root, cfg, sess, sim, styles, video_jobs, sessions_truth):
    folder = root / sess.site / sess.name
    names = {}
    for s in (0, 1):
        p = sess.persons[s]
        d = folder / p
        if sess.site == "NoXI":
            files = {"video": d / "video.mp4", "audio": d / "audio.wav",
                     "emotion": d / "emotion.csv", "tdmm": d / "3dmm.npy"}
        else:
            files = {"video": d / f"{p}.mp4", "audio": d / f"{p}.wav",
                     "emotion": d / f"{p}_emotion.csv", "tdmm": d / f"{p}_3dmm.npy"}
        ppl = sim["people"][s]
        _write_wav(files["audio"], ppl["audio"], cfg.audio_rate)
        _write_emotion_csv(_mk(files["emotion"]), ppl["emotion"])
        _write_npy(_mk(files["tdmm"]), ppl["tdmm"])
        if cfg.video:
            video_jobs.append((_mk(files["video"]), ppl["emotion"], ppl["tdmm"], cfg.size, cfg.fps,
                               cfg.preset, cfg.crf, files["audio"] if cfg.mux_audio else None))
        names[p] = {k: str(v.relative_to(root)) for k, v in files.items() if k != "video" or cfg.video}
    sessions_truth.append({
        "site": sess.site, "session": sess.name, "split": sess.split,
        "persons": [_person_id(sess, 0), _person_id(sess, 1)], "files": names,
        "frames": int(sim["people"][0]["emotion"].shape[0]),
        "segments": sim["segments"],
    })


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    from reactcli.media.encode import write_wav  # noqa: PLC0415

    write_wav(_mk(path), samples, rate)


def read_truth(root: str | os.PathLike) -> dict:
    """Load ``<root>/truth/truth.json`` written by :func:`synthesize`."""
    path = Path(root) / "truth" / "truth.json"
    if not path.is_file():
        raise InputError(f"synthetic truth not found: {path} (was this corpus made by reactcli synth?)")
    return json.loads(path.read_text(encoding="utf-8"))
