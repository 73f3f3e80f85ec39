"""FaceVerse v2 3DMM coefficients: the challenge's 58-d "3D_FV" feature.

Layout (data.md): ``[0:52]`` expression, ``[52:55]`` head rotation, ``[55:58]`` translation.
(The issue text mentions 56-d as well: that is EMOCA's size, see :mod:`reactcli.features.emoca`;
the challenge's FaceVerse files are 58-d.) Models work on offsets from ``mean_face.npy``; this
extractor returns the raw coefficients, subtracting the mean is the model stage's business.

The FaceVerse fitting code and model file are the user's: give ``--faceverse-path`` a
TorchScript wrapper mapping ``(N,3,224,224)`` RGB crops in [0,1] to ``(N,58)``, or a
``factory`` (``--faceverse-factory``). See :mod:`reactcli.features.facemodel` and
``examples/adapters/faceverse.py``.
"""

from __future__ import annotations

from reactcli.features.facemodel import FaceModelExtractor
from reactcli.features.registry import register_extractor

EXPRESSION = slice(0, 52)
ROTATION = slice(52, 55)
TRANSLATION = slice(55, 58)


@register_extractor("faceverse")
class FaceVerseExtractor(FaceModelExtractor):
    """58-d FaceVerse v2 coefficients per frame from a user-supplied model."""

    asset = "FaceVerse model"
    option = "--faceverse-path"
    factory_option = "--faceverse-factory"
    feature = "tdmm"
    dim = 58
