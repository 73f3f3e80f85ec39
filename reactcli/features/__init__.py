"""Per-frame feature extractors (audio MFCC / wav2vec2, face landmarks, 3DMM and emotion
adapters, corpus sidecars) behind one registry; see :mod:`reactcli.features.registry`."""

from reactcli.features.registry import (
    ClipInputs,
    Extractor,
    available_extractors,
    extract_clip,
    get_extractor,
    register_extractor,
)

__all__ = [
    "ClipInputs",
    "Extractor",
    "available_extractors",
    "extract_clip",
    "get_extractor",
    "register_extractor",
]
