"""reactcli.metrics: the REACT challenge metrics (pure, vectorised) and the evaluation report.

Entry point: :func:`evaluate_arrays`. Definitions: spec/metrics.md.
"""

from reactcli.metrics.core import (
    EMOTION_GROUPS,
    EMOTION_WEIGHTS,
    MAX_LAG,
    evaluate_arrays,
    evaluate_with_items,
    frcorr,
    frcorr_items,
    frdist,
    frdist_items,
    frdiv,
    frdiv_items,
    frdvs,
    frdvs_items,
    frsyn,
    frvar,
    frvar_items,
    validate_inputs,
)
from reactcli.kernels.dtw import dtw_one_to_many, dtw_pairs

__all__ = [
    "EMOTION_GROUPS",
    "EMOTION_WEIGHTS",
    "MAX_LAG",
    "dtw_one_to_many",
    "dtw_pairs",
    "evaluate_arrays",
    "evaluate_with_items",
    "frcorr",
    "frcorr_items",
    "frdist",
    "frdist_items",
    "frdiv",
    "frdiv_items",
    "frdvs",
    "frdvs_items",
    "frsyn",
    "frvar",
    "frvar_items",
    "validate_inputs",
]
