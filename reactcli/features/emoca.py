"""EMOCA (FLAME) coefficients: 56 per frame, the 3D face code of ReactFace's paper.

Layout (the wrapper the user supplies must return it in this order): ``[0:50]`` FLAME
expression coefficients, ``[50:56]`` EMOCA's pose vector (``[50:53]`` global head rotation and
``[53:56]`` jaw rotation, axis-angle). data.md summarises this as "50 expression + jaw rotation
= 56"; EMOCA's own pose code is 6-d (head + jaw), which is what fills the 6 remaining slots.

EMOCA, its ``gdl`` package and FLAME are not on PyPI (FLAME needs registration), so this is an
adapter: give ``--emoca-path`` a TorchScript wrapper of your EMOCA encoder (``(N,3,224,224)``
RGB crops in [0,1] -> ``(N,56)``), or ``--emoca-factory your.module:build`` (or
``path/to/file.py:build``) to build it from your installation. See :mod:`reactcli.features.facemodel`
and ``examples/adapters/emoca.py``.
"""

from __future__ import annotations

from reactcli.features.facemodel import FaceModelExtractor
from reactcli.features.registry import register_extractor

EXPRESSION = slice(0, 50)
POSE = slice(50, 56)


@register_extractor("emoca")
class EmocaExtractor(FaceModelExtractor):
    """56-d EMOCA coefficients per frame from a user-supplied model."""

    asset = "EMOCA model"
    option = "--emoca-path"
    factory_option = "--emoca-factory"
    feature = "emoca"
    dim = 56
