"""The challenge's 25-d emotion feature (GraphAU action units + valence/arousal + expressions).

Order (data.md, what the metrics use): ``[0:15]`` occurrence (0/1) of AU1, AU2, AU4, AU6,
AU7, AU9, AU10, AU12, AU14, AU15, AU17, AU23, AU24, AU25, AU26; ``[15:17]`` valence, arousal
in [-1, 1]; ``[17:25]`` probabilities of Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger,
Contempt. In the challenge the AUs came from GraphAU and the rest from an emotion network
(EmoNet); the adapter takes one wrapper that returns all 25 in this order (combine your two
models inside it). Give ``--graphau-path`` a TorchScript file mapping ``(N,3,224,224)`` RGB
crops in [0,1] to ``(N,25)``, or a ``factory`` (``--graphau-factory``). See
:mod:`reactcli.features.facemodel` and ``examples/adapters/graphau.py``.

``binarize_aus`` thresholds the AU part at 0.5 (GraphAU outputs probabilities; the challenge
files hold 0/1 occurrences).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reactcli.features.facemodel import FaceModelConfig, FaceModelExtractor
from reactcli.features.registry import ClipInputs, register_extractor

AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17",
            "AU23", "AU24", "AU25", "AU26")
EXPRESSIONS = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
AUS = slice(0, 15)
VALENCE_AROUSAL = slice(15, 17)
EXPRESSION_PROBS = slice(17, 25)


@dataclass
class GraphAUConfig(FaceModelConfig):
    """Face-model options plus the AU binarisation switch."""

    binarize_aus: bool = True
    """Threshold AU probabilities at 0.5 into 0/1 occurrences (the challenge's files)."""


@register_extractor("graphau")
class GraphAUExtractor(FaceModelExtractor):
    """25-d emotion feature per frame from a user-supplied model."""

    Config = GraphAUConfig
    asset = "GraphAU/emotion model"
    option = "--graphau-path"
    factory_option = "--graphau-factory"
    feature = "emotion"
    dim = 25

    def extract(self, inputs: ClipInputs) -> dict[str, np.ndarray]:
        out = super().extract(inputs)
        if self.cfg.binarize_aus:
            e = out["emotion"]
            e[:, AUS] = (e[:, AUS] >= 0.5).astype(np.float32)
        return out
