"""Naive baselines of the REACT challenge, behind one ``generate`` interface.

They put the metrics in context (metrics.md "Reference values"): a generator that does not beat
Mime or MeanSeq on appropriateness has learned nothing about the speaker.

Every baseline takes the speaker features of the split ``(N, T, D)``, the real listener
features of the split ``(N, T, D)`` and the appropriateness matrix ``(N, N)``, and returns
``(N, K, T, D)`` float32. Those that need training statistics (MeanSeq, MeanFr) are ``fit`` on
the training listeners first. Randomness comes from an explicit seed / ``numpy`` Generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reactcli.errors import ConfigError, InputError

__all__ = [
    "Baseline",
    "GroundTruthBaseline",
    "MimeBaseline",
    "RandomBaseline",
    "MeanSequenceBaseline",
    "MeanFrameBaseline",
    "BASELINES",
    "make_baseline",
]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if seed is None:
        raise ConfigError("baseline: pass an explicit seed or numpy Generator")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))


def _check(speaker: np.ndarray, listener: np.ndarray, appropriate: np.ndarray | None, num_samples: int) -> None:
    if speaker.ndim != 3 or listener.ndim != 3:
        raise InputError(f"baseline: speaker and listener must be (N, T, D), got {speaker.shape} and {listener.shape}")
    if speaker.shape != listener.shape:
        raise InputError(f"baseline: speaker {speaker.shape} and listener {listener.shape} shapes differ")
    n = speaker.shape[0]
    if appropriate is not None:
        if appropriate.shape != (n, n):
            raise InputError(f"baseline: appropriateness matrix must be ({n}, {n}), got {appropriate.shape}")
        empty = np.flatnonzero(~np.asarray(appropriate, bool).any(axis=1))
        if empty.size:
            raise InputError(f"baseline: appropriateness rows {empty[:10].tolist()} are empty")
    if num_samples < 1:
        raise ConfigError(f"baseline: num_samples must be >= 1, got {num_samples}")


@dataclass
class Baseline:
    """Common interface: ``fit`` (optional) then ``generate``."""

    name: str = "baseline"
    """Registry name, used in reports."""

    def fit(self, train_listener: np.ndarray) -> Baseline:
        """Learn training-set statistics (no-op for most baselines)."""
        return self

    def generate(
        self,
        speaker: np.ndarray,
        listener: np.ndarray,
        appropriate: np.ndarray | None = None,
        num_samples: int = 10,
        seed: int | np.random.Generator | None = 0,
    ) -> np.ndarray:
        """Return ``(N, K, T, D)`` float32 reactions for the ``N`` speaker items."""
        raise NotImplementedError


@dataclass
class GroundTruthBaseline(Baseline):
    """Copy real listener reactions: the ceiling for appropriateness metrics.

    ``mode="own"`` repeats the item's own listener ``K`` times (FRCorr = K, FRDiv = 0);
    ``mode="appropriate"`` draws the ``K`` samples from the item's appropriate real reactions
    (with replacement when there are fewer than ``K``), a GT with diversity.
    """

    name: str = "gt"
    mode: str = "own"
    """``"own"`` or ``"appropriate"`` (see the class docstring)."""

    def generate(self, speaker, listener, appropriate=None, num_samples=10, seed=0):  # noqa: ANN001
        _check(speaker, listener, appropriate, num_samples)
        lis = np.asarray(listener, np.float32)
        if self.mode == "own":
            return np.repeat(lis[:, None], num_samples, axis=1)
        if self.mode != "appropriate":
            raise ConfigError(f"GroundTruthBaseline: mode must be 'own' or 'appropriate', got {self.mode!r}")
        if appropriate is None:
            raise InputError("GroundTruthBaseline(mode='appropriate'): needs the appropriateness matrix")
        rng = _rng(seed)
        app = np.asarray(appropriate, bool)
        # uniform choice per row, vectorised: random keys, -inf off the row's set, take top-K
        # (a permutation without replacement) and wrap around when the row has fewer than K
        keys = np.where(app, rng.random(app.shape), -np.inf)
        order = np.argsort(-keys, axis=1)
        counts = app.sum(axis=1, keepdims=True)
        picks = order[np.arange(len(app))[:, None], np.arange(num_samples)[None, :] % counts]
        return lis[picks]


@dataclass
class MimeBaseline(Baseline):
    """Copy the speaker's own behaviour, lagged: reaction frame ``t`` = speaker frame ``t - lag``.

    The first ``lag`` frames hold the speaker's first frame (nothing earlier exists). Every
    sample is the same. Meaningful when speaker and listener features are the same kind.
    """

    name: str = "mime"
    lag: int = 25
    """Delay in frames (25 = 1 s at 25 fps); 0 copies the speaker exactly."""

    def generate(self, speaker, listener, appropriate=None, num_samples=10, seed=0):  # noqa: ANN001
        _check(speaker, listener, appropriate, num_samples)
        if self.lag < 0:
            raise ConfigError(f"MimeBaseline: lag must be >= 0, got {self.lag}")
        spk = np.asarray(speaker, np.float32)
        t = spk.shape[1]
        src = np.clip(np.arange(t) - self.lag, 0, None)
        return np.repeat(spk[:, src][:, None], num_samples, axis=1)


@dataclass
class RandomBaseline(Baseline):
    """Uniform ``[low, high)`` noise per element, as the challenge's Random baseline ([0, 1))."""

    name: str = "random"
    low: float = 0.0
    """Lower bound of the uniform distribution."""
    high: float = 1.0
    """Upper bound (exclusive)."""

    def generate(self, speaker, listener, appropriate=None, num_samples=10, seed=0):  # noqa: ANN001
        _check(speaker, listener, appropriate, num_samples)
        n, t, d = np.shape(listener)
        rng = _rng(seed)
        return rng.uniform(self.low, self.high, size=(n, num_samples, t, d)).astype(np.float32)


@dataclass
class MeanSequenceBaseline(Baseline):
    """The mean training listener sequence (frame-by-frame mean over clips), for every item."""

    name: str = "meanseq"
    mean_: np.ndarray | None = field(default=None, repr=False)
    """Fitted ``(T, D)`` mean sequence."""

    def fit(self, train_listener: np.ndarray) -> MeanSequenceBaseline:
        x = np.asarray(train_listener, np.float64)
        if x.ndim != 3 or len(x) == 0:
            raise InputError(f"MeanSequenceBaseline.fit: expected (N, T, D) with N > 0, got {x.shape}")
        self.mean_ = x.mean(axis=0).astype(np.float32)
        return self

    def generate(self, speaker, listener, appropriate=None, num_samples=10, seed=0):  # noqa: ANN001
        _check(speaker, listener, appropriate, num_samples)
        if self.mean_ is None:
            raise ConfigError("MeanSequenceBaseline: call fit(train_listener) first")
        n, t, d = np.shape(listener)
        if self.mean_.shape[1] != d or self.mean_.shape[0] < t:
            raise InputError(f"MeanSequenceBaseline: fitted mean is {self.mean_.shape}, split needs ({t}, {d}) or longer")
        return np.broadcast_to(self.mean_[:t], (n, num_samples, t, d)).copy()


@dataclass
class MeanFrameBaseline(Baseline):
    """The mean training listener frame (over all clips and frames), repeated everywhere."""

    name: str = "meanfr"
    mean_: np.ndarray | None = field(default=None, repr=False)
    """Fitted ``(D,)`` mean frame."""

    def fit(self, train_listener: np.ndarray) -> MeanFrameBaseline:
        x = np.asarray(train_listener, np.float64)
        if x.ndim != 3 or x.shape[0] * x.shape[1] == 0:
            raise InputError(f"MeanFrameBaseline.fit: expected non-empty (N, T, D), got {x.shape}")
        self.mean_ = x.reshape(-1, x.shape[-1]).mean(axis=0).astype(np.float32)
        return self

    def generate(self, speaker, listener, appropriate=None, num_samples=10, seed=0):  # noqa: ANN001
        _check(speaker, listener, appropriate, num_samples)
        if self.mean_ is None:
            raise ConfigError("MeanFrameBaseline: call fit(train_listener) first")
        n, t, d = np.shape(listener)
        if self.mean_.shape != (d,):
            raise InputError(f"MeanFrameBaseline: fitted mean has {self.mean_.shape[0]} dims, split has {d}")
        return np.broadcast_to(self.mean_, (n, num_samples, t, d)).copy()


BASELINES: dict[str, type[Baseline]] = {
    "gt": GroundTruthBaseline,
    "mime": MimeBaseline,
    "random": RandomBaseline,
    "meanseq": MeanSequenceBaseline,
    "meanfr": MeanFrameBaseline,
}


def make_baseline(name: str, **options: object) -> Baseline:
    """Build a baseline by registry name (``gt``, ``mime``, ``random``, ``meanseq``, ``meanfr``)."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    try:
        return BASELINES[name](**options)
    except TypeError as exc:
        raise ConfigError(f"baseline {name!r}: bad option(s) {sorted(options)}: {exc}") from None
