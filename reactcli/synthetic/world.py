"""The synthetic world: a generative model of dyadic conversations with a known truth.

Why: RECOLA and NoXI are under licence, so nothing real is available to develop or test against.
This module generates small corpora that look like them on disk (see data.md) *and* come with the
answers that the real data never gives: which speakers behaved alike, which response mode each
listener chose, each listener's delay and personal style. Tests of readers, feature stores,
appropriateness builders, models and metrics can then check results against that truth.

The generative model
====================

Sessions hold two people (NoXI ``Expert``/``Novice``, RECOLA ``P25``/``P26`` ...). A session is a
sequence of segments of ``clip_seconds`` (30 s = 750 frames); segment ``i`` covers frames
``[i*750, (i+1)*750)``, exactly the official clipping grid, so clipping a raw session reproduces
the clip-level truth. In every segment *both* participants get

* a **speaking pattern** ``p`` drawn from ``n_patterns`` prototypes (default 6). A prototype is a
  set of knot trajectories over normalised segment time: 8 expression logits (2-4 episodes, each
  holding one dominant expression for 1-4 of the 7 knots), a speaking propensity and a head pose.
  The prototypes are the ``n_patterns`` most mutually distant (greedy max-min DTW on their
  valence/arousal + expression signature) of many random candidates, so no two are
  near-duplicates. A participant's *own* behaviour in a segment is that prototype read through a
  random monotone time warp ``u + a sin(pi u) + b sin(2 pi u)`` plus smooth noise: "speakers k
  and j behaved alike" is exactly "same pattern".
* a **response mode** ``m`` among ``n_modes`` (default 3) for reacting to the *other* person's
  pattern. Mode ``(p, m)`` has a preferred expression (different for each mode of a pattern), a
  mimicry gain with an expression mapping (a permutation: "answer their surprise with a smile"),
  and a head-nod gain. The reaction is driven by the other person's own behaviour **delayed by
  the listener's personal delay** ``d`` (8-12 frames, 320-480 ms), and its strength follows the
  other person's (delayed) speaking activity. Reactions respond only to the other's *own*
  component, never to their reaction, so there is no feedback loop and the truth stays simple.
* **brow flashes**: short emphasis gestures while talking (about 1.5 per second of speech, AU1/AU2
  and a brief surprise); the other person answers each one ``d`` frames later with a flash of
  its mode's preferred expression. These sharp events give the coupling its timing.

Why own and reaction act on different channels: every person is the speaker of one item and the
listener of its mirrored twin, so the same features must carry both the own pattern (for the
appropriateness truth to be recoverable from speaker features, issue 3) and the reaction (for a
model to learn). The *felt affect* (valence/arousal, the heaviest group of the FRdist distance)
follows only the person's own expression course; the reaction shows in the *displayed*
expression and AUs. Mixing both into one channel (the first version: ``0.5 * own + reaction``)
let the reaction swamp the pattern (built-matrix F1 about 0.2).

The participant's displayed expression logits are ``own + reaction + flashes``, then:

* expression probabilities = softmax(logits) (8, sum to 1);
* AU intensities = (1.6 x probabilities + back-channel displays: the preferred expression while
  the other talks, mimicry of the other's mapped expression, the flash answers) @ an EMFACS-like
  table (Happy -> AU6+AU12, Sad -> AU1+AU4+AU15 ..., see ``AU_TABLE``) times the person's AU
  gain, plus the person's AU offsets, the speech mouth movement (lips part AU25, jaw drop AU26),
  own brow flashes and a little noise; AU occurrence is intensity > 0.5;
* valence/arousal = the *own* expression probabilities, smoothed (sigma 8 frames), @ a circumplex
  table + personal bias (+ arousal while talking) + a little noise, clipped to [-1, 1];
* 3DMM: expression [0:52] = ``mean_face[:52]`` + AU intensities @ a fixed 15x52 basis + the
  person's fixed offset; rotation [52:55] = personal rest pose + the pattern's head motion + the
  response's nods (pitch); translation [55:58] = slow drift;
* audio: a harmonic (sawtooth) voice at the person's f0 through two formant resonators, plus
  noise bursts at syllable onsets, multiplied by the same mouth envelope that drives AU25/AU26,
  so the audio carries the speaking activity a listener reacts to.

Each person has a **consistent style** across all their clips (AU offsets and gain, nod amplitude,
valence/arousal bias, a 52-d 3DMM expression offset, rest pose, delay, voice): a personalised
model can learn it. In the emotion features only the AU levels carry it clearly (the +-0.06
valence/arousal bias is small against clip-to-clip variation); ``personal_affect`` adds stronger
person-level valence/arousal and expression biases. For the REACT direction Expert -> Novice (speaker -> listener) the truth is:
speaker pattern = Expert's pattern, listener mode/style = Novice's; the mirrored direction uses
the same construction with roles swapped (Novice's pattern, Expert's mode). Appropriateness:
``A[k, j] = 1`` iff speaker items k and j have the same pattern (so each row holds at least its
own listener). Reactions at the first ``d`` frames of a segment still follow the previous
segment's speaker: a deliberate, realistic blur at segment edges.

Randomness: the seed fixes everything (``numpy.random.default_rng([seed, ...])`` streams per
purpose and per session); the physics (AU table, 3DMM basis, mean face) is fixed independent of
the seed. Same seed -> identical features, audio and (with the bundled ffmpeg) video bytes.

The files written from it are described in :mod:`reactcli.synthetic.corpus`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import iirpeak, lfilter

from reactcli.errors import ConfigError

__all__ = [
    "SynthConfig",
    "make_world",
    "make_person",
    "simulate_session",
    "EMOTION_COLUMNS",
    "PERSON_P1P2",
    "AU_TABLE",
    "VA_TABLE",
    "MEAN_FACE",
]

AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12",
            "AU14", "AU15", "AU17", "AU23", "AU24", "AU25", "AU26")
EXPR_NAMES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
EMOTION_COLUMNS: tuple[str, ...] = AU_NAMES + ("valence", "arousal") + EXPR_NAMES
_AU = {n: i for i, n in enumerate(AU_NAMES)}

#: 2024 release: Emotion files name persons P1/P2 (data.md).
PERSON_P1P2 = {"Expert_video": "P1", "Novice_video": "P2", "P25": "P1", "P26": "P2",
               "P41": "P1", "P42": "P2", "P45": "P1", "P46": "P2"}
RECOLA_GROUPS = (("group-1", "P25", "P26"), ("group-2", "P41", "P42"), ("group-3", "P45", "P46"))
CITIES = ("Paris", "Nottingham", "Augsburg")
SPLIT_CYCLE = ("train", "val", "test", "train", "train")


def _build_au_table() -> np.ndarray:
    """(8, 15) AU intensity produced by each basic expression (EMFACS-like prototypes)."""
    rows = {
        "Neutral": {},
        "Happy": {"AU6": 0.8, "AU12": 1.0, "AU25": 0.3},
        "Sad": {"AU1": 0.8, "AU4": 0.6, "AU15": 0.9, "AU17": 0.5},
        "Surprise": {"AU1": 0.9, "AU2": 0.9, "AU25": 0.7, "AU26": 0.8},
        "Fear": {"AU1": 0.8, "AU2": 0.6, "AU4": 0.6, "AU7": 0.6, "AU25": 0.6, "AU26": 0.3},
        "Disgust": {"AU9": 0.9, "AU10": 0.8, "AU15": 0.4, "AU17": 0.4},
        "Anger": {"AU4": 1.0, "AU7": 0.8, "AU23": 0.8, "AU24": 0.6},
        "Contempt": {"AU12": 0.5, "AU14": 0.9},
    }
    table = np.zeros((8, 15))
    for e, name in enumerate(EXPR_NAMES):
        for au, v in rows[name].items():
            table[e, _AU[au]] = v
    return table


AU_TABLE = _build_au_table()
#: valence, arousal of each basic expression (circumplex model).
VA_TABLE = np.array([[0.0, 0.0], [0.7, 0.4], [-0.6, -0.4], [0.3, 0.7],
                      [-0.6, 0.6], [-0.6, 0.2], [-0.7, 0.6], [-0.4, 0.1]])
_PHYSICS = np.random.default_rng(20240607)
#: fixed AU -> 52-d 3DMM expression basis (sparse-ish), independent of the user seed.
_AU_TO_3DMM = _PHYSICS.normal(0, 0.6, (15, 52)) * (_PHYSICS.random((15, 52)) < 0.3)
#: stand-in for the challenge's ``mean_face.npy`` (pose part zero).
MEAN_FACE = np.concatenate([_PHYSICS.normal(0, 0.2, 52), np.zeros(6)]).astype(np.float32)


@dataclass
class SynthConfig:
    """Everything that defines a synthetic corpus (saved into ``truth/truth.json``)."""

    layout: Literal["react", "raw"] = "react"
    """``react``: clipped REACT 2023/24 layout with split CSVs; ``raw``: whole sessions."""
    sessions: int = 6
    """Number of two-person sessions (every third one RECOLA-like, at most three of those)."""
    minutes: float = 2.0
    """Length of each session in minutes (REACT: full clips only, i.e. floor(minutes*60/30))."""
    fps: int = 25
    """Video / feature frame rate."""
    size: int = 128
    """Width = height of the face videos in pixels (REACT used 256)."""
    seed: int = 0
    """Master seed: same seed, same corpus."""
    clip_seconds: int = 30
    """Segment (clip) length in seconds; also the length of one behaviour-pattern episode."""
    video: bool = True
    """Write face videos (off: features, audio and truth only, much faster)."""
    audio_rate: int = 16000
    """WAV sample rate in Hz."""
    n_patterns: int = 6
    """Number of speaker behaviour prototypes (fewer = more appropriate neighbours per item)."""
    n_modes: int = 3
    """Appropriate response modes per speaker pattern."""
    delay_range: tuple[int, int] = (8, 12)
    """Inclusive range of per-listener reaction delays in frames."""
    workers: int = 2
    """Processes for video encoding (1 = in-process)."""
    preset: str = "ultrafast"
    """x264 preset for the face videos."""
    crf: int = 23
    """x264 constant-rate factor for the face videos."""
    mux_audio: bool = False
    """Also mux each participant's WAV into their mp4 as AAC (slower; the WAV is always written)."""
    personal_affect: float = 0.0
    """Strength x of an extra person-level affect style (0 = none: the default corpus, unchanged).
    Each person gets a valence/arousal bias in +-x on top of the +-0.06 one and a bias of the
    expression logits with std 4x, so that listeners differ in their emotion levels and a
    personalised generator has something to learn there (drawn from a separate random stream:
    everything else in the corpus stays as with 0)."""
    personal_mode: float = 0.0
    """Probability q that a listener answers a segment with their own preferred response mode
    (one per person, drawn uniformly) instead of a uniformly drawn one: a habitual *way* of
    reacting, which shapes the time course of the reaction, not its level. 0 = none (the
    default corpus, unchanged; drawn from separate random streams). Over all persons the modes
    stay equally likely, so the population mean reaction does not move."""
    recurring_experts: int = 0
    """NoXI-like sessions take their Expert from a pool of this many recurring people (cycled in
    session order), as the NoXI experts recur across many sessions and across the REACT splits;
    0 = every participant appears in one session only (the default corpus, unchanged). A
    recurring expert keeps one style in every session, so a personalised model can meet a test
    listener it saw in training. Who is who is written to ``truth/identities.json``."""

    def validate(self) -> None:
        """Raise ConfigError for values that cannot give a sensible corpus."""
        if self.layout not in ("react", "raw"):
            raise ConfigError(f"layout must be 'react' or 'raw', got {self.layout!r}")
        if self.sessions < 1:
            raise ConfigError(f"sessions must be >= 1, got {self.sessions}")
        if self.layout == "react" and self.sessions < 3:
            raise ConfigError(
                f"layout 'react' needs sessions >= 3 so that train, val and test each get one, got {self.sessions}"
            )
        if self.clip_seconds <= 0 or self.fps <= 0 or self.audio_rate <= 0:
            raise ConfigError("clip_seconds, fps and audio_rate must be positive")
        if self.minutes * 60 < self.clip_seconds:
            raise ConfigError(
                f"minutes={self.minutes} is shorter than one clip of {self.clip_seconds} s"
            )
        if self.size < 16 or self.size % 2:
            raise ConfigError(f"size must be an even number >= 16, got {self.size}")
        if self.n_patterns < 1 or self.n_modes < 1:
            raise ConfigError("n_patterns and n_modes must be >= 1")
        lo, hi = self.delay_range
        if not 0 <= lo <= hi:
            raise ConfigError(f"delay_range must satisfy 0 <= lo <= hi, got {self.delay_range}")
        if self.n_modes > 7:
            raise ConfigError("n_modes must be <= 7 (one preferred non-neutral expression per mode)")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if not 0.0 <= self.personal_affect <= 1.0:
            raise ConfigError(f"personal_affect must be in [0, 1], got {self.personal_affect}")
        if not 0.0 <= self.personal_mode <= 1.0:
            raise ConfigError(f"personal_mode must be in [0, 1], got {self.personal_mode}")
        if self.recurring_experts < 0:
            raise ConfigError(f"recurring_experts must be >= 0, got {self.recurring_experts}")


# ------------------------------------------------------------------------------------------------
# the world: prototypes and response modes
# ------------------------------------------------------------------------------------------------
_KNOTS = 7


@dataclass
class _World:
    expr_knots: np.ndarray  # (P, K, 8) own expression logits
    speech_knots: np.ndarray  # (P, K) speaking propensity
    head_knots: np.ndarray  # (P, K, 3) own head rotation
    resp_expr: np.ndarray  # (P, M) preferred response expression index
    resp_mix: np.ndarray  # (P, M, 8, 8) permutation: speaker expression -> listener expression
    resp_mimic: np.ndarray  # (P, M) mimicry gain
    resp_nod: np.ndarray  # (P, M) nod gain


#: Behaviour mixing weights in expression-logit space (see the module docstring for the why).
_OWN_WEIGHT = 1.0
"""Weight of a person's own (speaking-pattern) logits."""
_REACT_BIAS = 2.0
"""Logit boost of the response mode's preferred expression at full strength of the other's speech."""
_REACT_FLOOR = 0.0
"""Reaction strength while the other person is silent (1.0 while they speak)."""
_MIMIC_GAIN = 2.0
"""Scale of the (mapped) mimicry of the other person's expression probabilities."""
_DISPLAY_GAIN = 2.0
"""AU display of the preferred response expression at full strength of the other's speech."""
_MIMIC_AU_GAIN = 1.2
"""AU display of the (mapped) expression the other person shows."""
_FLASH_RATE = 1.5
"""Brow flashes per second of speech."""
_FLASH_GAIN = 0.8
"""AU1/AU2 intensity of a brow flash at its peak."""
_ACK_GAIN = 1.5
"""Intensity of the acknowledgement display (preferred expression) answering the other's flash."""
_FLASH_LOGIT = 2.5
"""Surprise logit boost of a brow flash at its peak."""
_ACK_LOGIT = 3.0
"""Logit boost of the preferred expression answering the other's flash."""
_VA_BIAS = 0.06
"""Range (+-) of a person's valence/arousal bias."""
_TALK_AROUSAL = 0.1
"""Arousal added while talking."""
_VA_NOISE = 0.05
"""Std of the smooth valence/arousal noise."""
_VA_SMOOTH = 8.0
"""Gaussian sigma (frames) of the expression probabilities that valence/arousal follow."""
_AU_NOISE = 0.07
"""Std of the fast AU intensity noise."""
_LOGIT_NOISE = 0.3
"""Std of the smooth noise added to a person's own logits."""
_CANDIDATES_PER_PATTERN = 60
"""Random prototype candidates drawn per requested pattern before the max-min selection."""


def _dtw_one_to_many(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """DTW (sqrt of the summed squared-Euclidean path cost) of x (L, F) to each of ys (C, L2, F).

    Tiny and vectorised over the candidates: the prototype selection only compares sequences of a
    few dozen points, so a numpy recursion over the cells is fast enough and keeps this module
    free of the compiled metric kernels.
    """
    cost = ((x[None, :, None, :] - ys[:, None, :, :]) ** 2).sum(-1)  # (C, L, L2)
    C, L, L2 = cost.shape
    acc = np.full((C, L + 1, L2 + 1), np.inf)
    acc[:, 0, 0] = 0.0
    for i in range(1, L + 1):
        for j in range(1, L2 + 1):
            best = np.minimum(np.minimum(acc[:, i - 1, j], acc[:, i, j - 1]), acc[:, i - 1, j - 1])
            acc[:, i, j] = cost[:, i - 1, j - 1] + best
    return np.sqrt(acc[:, L, L2])


def _prototype_signature(expr_knots: np.ndarray) -> np.ndarray:
    """(C, L, 10) what a prototype looks like in the emotion features: VA course + expressions/8.

    The knots are interpolated (in logit space, as the simulation does) to 4 points per knot gap,
    then read through the softmax and the circumplex table. The expression part carries the
    FRdist group weight 1/8 so the selection sees distances as the appropriateness builder will.
    """
    u = np.linspace(0, _KNOTS - 1, 4 * (_KNOTS - 1) + 1)
    lo = np.floor(u).astype(int).clip(0, _KNOTS - 2)
    fr = (u - lo)[None, :, None]
    logits = expr_knots[:, lo] * (1 - fr) + expr_knots[:, lo + 1] * fr
    probs = _softmax(_OWN_WEIGHT * logits)
    return np.concatenate([probs @ VA_TABLE, probs / 8], -1)


def make_world(cfg: SynthConfig) -> _World:
    """Prototypes (well separated) and response modes, from the seed.

    Each prototype is a sequence of dominant expressions over its knots (a palette of 2-3
    expressions, at most two knots in a row on the same one, sometimes a neutral knot), so it has
    a distinct expression sequence, AU signature and valence/arousal course. Many random
    candidates are drawn and ``n_patterns`` of them kept by greedy max-min selection under DTW
    on their emotion signature: random prototypes alone are sometimes near-duplicates (Fear and
    Anger, say, sit close on the circumplex), which would make "same pattern" ill-defined.
    """
    rng = np.random.default_rng([cfg.seed, 0])
    P, M = cfg.n_patterns, cfg.n_modes
    n_cand = max(int(_CANDIDATES_PER_PATTERN * P), 32)
    cand = np.full((n_cand, _KNOTS, 8), -1.0)
    cand[:, :, 0] = 1.0
    for c in range(n_cand):
        # 2-4 episodes, each holding one expression (neutral allowed) for 1-4 knots
        n_ep = int(rng.integers(2, 5))
        cuts = np.sort(rng.choice(np.arange(1, _KNOTS), size=n_ep - 1, replace=False))
        prev = -1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, _KNOTS]):
            e = int(rng.choice([q for q in range(8) if q != prev]))
            prev = e
            cand[c, lo:hi, e] += rng.uniform(4.0, 5.0, hi - lo) if e else 0.0
    sig = _prototype_signature(cand)
    chosen = [0]
    mind = _dtw_one_to_many(sig[0], sig)
    for _ in range(1, P):
        mind[chosen] = -np.inf
        nxt = int(np.argmax(mind))
        chosen.append(nxt)
        mind = np.minimum(mind, _dtw_one_to_many(sig[nxt], sig))
    expr = cand[chosen]
    speech = rng.uniform(0.1, 0.9, (P, _KNOTS))
    head = rng.uniform(-0.12, 0.12, (P, _KNOTS, 3))
    head[:, :, 2] *= 0.5
    resp_expr = np.stack([rng.choice(np.arange(1, 8), size=M, replace=False) for _ in range(P)])
    resp_mix = np.zeros((P, M, 8, 8))
    for p in range(P):
        for m in range(M):
            perm = np.concatenate([[0], 1 + rng.permutation(7)])
            resp_mix[p, m, np.arange(8), perm] = 1.0
    resp_mimic = rng.uniform(0.3, 1.0, (P, M))
    resp_nod = rng.uniform(0.2, 1.0, (P, M))
    return _World(expr, speech, head, resp_expr, resp_mix, resp_mimic, resp_nod)


@dataclass
class PersonStyle:
    """A participant's consistent personal style (all values saved in the truth JSON)."""

    person: str
    au_offset: list[float]
    au_gain: float
    nod_amp: float
    va_bias: list[float]
    expr_offset: list[float]
    head_rest: list[float]
    delay: int
    f0: float
    formants: list[float]
    expr_logit_bias: list[float] = field(default_factory=lambda: [0.0] * 8)
    """Added to the person's expression logits (``SynthConfig.personal_affect``; zeros by default)."""
    preferred_mode: int = -1
    """The response mode this person takes with probability ``SynthConfig.personal_mode``
    (-1: none, every mode equally likely)."""


def make_person(person: str, rng: np.random.Generator, cfg: SynthConfig) -> PersonStyle:
    off = np.zeros(15)
    picks = rng.choice(15, size=3, replace=False)
    off[picks] = rng.uniform(-0.3, 0.3, 3)
    return PersonStyle(
        person=person,
        au_offset=off.round(4).tolist(),
        au_gain=round(float(rng.uniform(0.75, 1.25)), 4),
        nod_amp=round(float(rng.uniform(0.03, 0.10)), 4),
        va_bias=rng.uniform(-_VA_BIAS, _VA_BIAS, 2).round(4).tolist(),
        expr_offset=rng.normal(0, 0.3, 52).round(4).tolist(),
        head_rest=(rng.uniform(-0.08, 0.08, 3) * [1, 1, 0.5]).round(4).tolist(),
        delay=int(rng.integers(cfg.delay_range[0], cfg.delay_range[1] + 1)),
        f0=round(float(rng.uniform(95, 230)), 2),
        formants=[round(float(rng.uniform(500, 800)), 1), round(float(rng.uniform(1100, 1900)), 1)],
    )


# ------------------------------------------------------------------------------------------------
# simulation
# ------------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Unit-variance Gaussian noise low-passed along axis 0 (sigma in frames)."""
    white = rng.standard_normal(shape)
    if sigma <= 0:
        return white
    out = gaussian_filter1d(white, sigma, axis=0, mode="reflect")
    return out * np.sqrt(2 * np.sqrt(np.pi) * sigma)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _delayed(x: np.ndarray, d: int) -> np.ndarray:
    """x(t - d), holding the first value for t < d."""
    if d <= 0:
        return x
    return np.concatenate([np.repeat(x[:1], d, axis=0), x[:-d]], axis=0)


def _segments(n_frames: int, seg_len: int) -> list[tuple[int, int]]:
    """[start, end) of each pattern episode: the clip grid; a trailing 1-frame tail joins the last."""
    bounds = list(range(0, n_frames, seg_len))
    segs = [(s, min(s + seg_len, n_frames)) for s in bounds]
    if len(segs) > 1 and segs[-1][1] - segs[-1][0] <= 1:
        last = segs.pop()
        segs[-1] = (segs[-1][0], last[1])
    return segs


def _own_behaviour(world: _World, segs, pats, rng, T: int, fps: int, seg_len: int):
    """Own (speaking) component of one person: logits (T,8), speaking (T,), mouth (T,), head (T,3)."""
    logits = np.empty((T, 8))
    speak_p = np.empty(T)
    head = np.empty((T, 3))
    warps = []
    knots = np.linspace(0, 1, _KNOTS)
    for (s, e), p in zip(segs, pats):
        a, b = rng.uniform(-0.08, 0.08, 2)
        warps.append([round(float(a), 4), round(float(b), 4)])
        u = np.arange(e - s) / seg_len
        w = np.clip(u + a * np.sin(np.pi * np.minimum(u, 1)) + b * np.sin(2 * np.pi * np.minimum(u, 1)), 0, 1)
        idx = np.interp(w, knots, np.arange(_KNOTS))
        lo = np.floor(idx).astype(int).clip(0, _KNOTS - 2)
        fr = (idx - lo)[:, None]
        logits[s:e] = world.expr_knots[p, lo] * (1 - fr) + world.expr_knots[p, lo + 1] * fr
        speak_p[s:e] = world.speech_knots[p, lo] * (1 - fr[:, 0]) + world.speech_knots[p, lo + 1] * fr[:, 0]
        head[s:e] = world.head_knots[p, lo] * (1 - fr) + world.head_knots[p, lo + 1] * fr
    logits += _LOGIT_NOISE * _smooth_noise(rng, (T, 8), 10)
    speaking = (speak_p + 0.35 * _smooth_noise(rng, (T,), 8) > 0.5).astype(float)
    speaking = gaussian_filter1d(speaking, 1.5)
    f_syl = 4.0 * (1 + 0.2 * _smooth_noise(rng, (T,), 10))
    phase = np.cumsum(2 * np.pi * f_syl / fps) + rng.uniform(0, 2 * np.pi)
    mouth = speaking * 0.5 * (1 - np.cos(phase))
    head = head + 0.02 * _smooth_noise(rng, (T, 3), 6)
    # brow flashes: short emphasis gestures while talking (Poisson, _FLASH_RATE per second of speech)
    events = (rng.random(T) < _FLASH_RATE / fps * speaking).astype(float)
    flash = np.clip(gaussian_filter1d(events, 2.5) * (np.sqrt(2 * np.pi) * 2.5), 0, 1)
    return logits, speaking, mouth, head, warps, flash


def simulate_session(world: _World, cfg: SynthConfig, persons: tuple[PersonStyle, PersonStyle],
                      T: int, n_audio: int, session_seed: list[int]) -> dict:
    """Full behaviour of both participants of one session (index 0 = Expert/P25 side)."""
    rng = np.random.default_rng(session_seed)
    seg_len = cfg.clip_seconds * cfg.fps
    segs = _segments(T, seg_len)
    n_seg = len(segs)
    pats = rng.integers(0, cfg.n_patterns, (2, n_seg))
    modes = rng.integers(0, cfg.n_modes, (2, n_seg))
    if cfg.personal_mode > 0:  # separate stream: everything else as with personal_mode = 0
        habit = np.random.default_rng(session_seed + [8]).random((2, n_seg)) < cfg.personal_mode
        for i in range(2):
            modes[i, habit[i]] = persons[i].preferred_mode
    own = [_own_behaviour(world, segs, pats[i], rng, T, cfg.fps, seg_len) for i in range(2)]
    seg_of_t = np.zeros(T, int)
    for j, (s, e) in enumerate(segs):
        seg_of_t[s:e] = j
    out: dict = {"segments": [], "people": []}
    for i in range(2):
        me, other, st = own[i], own[1 - i], persons[i]
        d = st.delay
        o_probs = _delayed(_softmax(other[0]), d)
        o_speak = _delayed(gaussian_filter1d(other[1], 5), d)
        p_o = pats[1 - i][seg_of_t]
        m_me = modes[i][seg_of_t]
        env = _REACT_FLOOR + (1 - _REACT_FLOOR) * o_speak
        bias = np.zeros((T, 8))
        bias[np.arange(T), world.resp_expr[p_o, m_me]] = _REACT_BIAS
        mix = world.resp_mix[p_o, m_me]  # (T, 8, 8)
        mapped = np.einsum("ti,tij->tj", o_probs, mix)  # the other's expressions, as this mode answers them
        mimic = world.resp_mimic[p_o, m_me][:, None] * _MIMIC_GAIN * mapped
        react = bias * env[:, None] + mimic
        logits = _OWN_WEIGHT * me[0] + react + np.asarray(st.expr_logit_bias)
        logits[:, 3] += _FLASH_LOGIT * me[5]  # a brow flash reads as a brief surprise
        logits[np.arange(T), world.resp_expr[p_o, m_me]] += _ACK_LOGIT * _delayed(other[5], d)
        probs = _softmax(logits)
        # listening displays (back-channel): the preferred expression's AUs while the other talks,
        # and AU mimicry of the other's (mapped) expression
        shown = np.zeros((T, 8))
        shown[np.arange(T), world.resp_expr[p_o, m_me]] = _DISPLAY_GAIN * env
        shown += _MIMIC_AU_GAIN * world.resp_mimic[p_o, m_me][:, None] * mapped
        shown[:, world.resp_expr[p_o, m_me]] += _ACK_GAIN * _delayed(other[5], d)
        shown[:, 0] = 0.0
        inten = (1.6 * (probs @ AU_TABLE) + shown @ AU_TABLE) * st.au_gain + np.asarray(st.au_offset)
        inten[:, _AU["AU25"]] += 0.9 * me[2]
        inten[:, _AU["AU26"]] += 0.55 * me[2]
        inten[:, _AU["AU1"]] += _FLASH_GAIN * me[5]
        inten[:, _AU["AU2"]] += 0.8 * _FLASH_GAIN * me[5]
        inten += _AU_NOISE * _smooth_noise(rng, (T, 15), 2)
        aus = (inten > 0.5).astype(np.float32)
        # felt affect (valence/arousal) follows the person's own course, smoothly; the social
        # displays (reaction, flashes) change the shown expression and AUs but not the affect
        own_probs = _softmax(_OWN_WEIGHT * me[0])
        va = gaussian_filter1d(own_probs, _VA_SMOOTH, axis=0, mode="nearest") @ VA_TABLE + np.asarray(st.va_bias)
        va[:, 1] += _TALK_AROUSAL * (me[1] - 0.4)
        va = np.clip(va + _VA_NOISE * _smooth_noise(rng, (T, 2), 4), -1, 1)
        emotion = np.concatenate([aus, va, probs], 1).astype(np.float32)
        t_sec = np.arange(T) / cfg.fps
        nod = st.nod_amp * world.resp_nod[p_o, m_me] * np.sin(2 * np.pi * 1.7 * t_sec) * o_speak
        rot = np.asarray(st.head_rest) + me[3]
        rot[:, 0] += nod
        trans = 0.03 * _smooth_noise(rng, (T, 3), 25)
        expr = MEAN_FACE[:52] + np.clip(inten, 0, 1.2) @ _AU_TO_3DMM + np.asarray(st.expr_offset)
        expr = expr + 0.03 * _smooth_noise(rng, (T, 52), 2)
        tdmm = np.concatenate([expr, rot, trans], 1).astype(np.float32)
        audio = _speech_audio(me[2], va[:, 1], st, cfg.fps, cfg.audio_rate, n_audio, rng)
        out["people"].append({"emotion": emotion, "tdmm": tdmm, "audio": audio, "warps": own[i][4]})
    for j, (s, e) in enumerate(segs):
        out["segments"].append({
            "start": s, "end": e,
            "pattern": [int(pats[0, j]), int(pats[1, j])],
            "mode": [int(modes[0, j]), int(modes[1, j])],
            "warp": [out["people"][0]["warps"][j], out["people"][1]["warps"][j]],
        })
    return out


def _speech_audio(mouth: np.ndarray, arousal: np.ndarray, st: PersonStyle, fps: int, sr: int,
                  n: int, rng: np.random.Generator) -> np.ndarray:
    """Speech-like mono signal whose envelope is the mouth (AU25/26) speech movement."""
    T = mouth.shape[0]
    tf = np.clip((np.arange(n, dtype=np.float64) + 0.5) * (fps / sr) - 0.5, 0, T - 1)
    frames = np.arange(T)
    env = np.interp(tf, frames, mouth).astype(np.float32)
    # f0 in float64 (the phase accumulates over minutes), the rest in float32 for speed
    f0 = st.f0 * (1 + 0.08 * np.interp(tf, frames, arousal) + 0.04 * np.sin((2 * np.pi * 0.6 / sr) * np.arange(n)))
    phase = np.cumsum(f0 / sr)
    saw = (2 * (phase % 1.0) - 1).astype(np.float32)
    voiced = np.zeros(n, np.float32)
    for f, g in zip(st.formants, (1.0, 0.6)):
        b, a = iirpeak(f, 4.0, fs=sr)
        voiced += np.float32(g) * lfilter(b.astype(np.float32), a.astype(np.float32), saw)
    onset = np.clip(np.diff(env, prepend=env[0]) * np.float32(sr / fps), 0, 1)
    noise = rng.standard_normal(n + 1, dtype=np.float32)
    fric = (noise[1:] - noise[:-1]) * onset
    sig = env * voiced + np.float32(0.25) * fric + np.float32(0.002) * noise[:-1]
    peak = float(np.max(np.abs(sig)))
    return (sig * (0.8 / peak if peak > 0 else 1.0)).astype(np.float32)


