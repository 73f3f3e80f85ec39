"""Appropriateness sets: build from speaker similarity, import official matrices, check against a truth."""

from reactcli.appropriate.build import (
    BuildConfig,
    apply_rule,
    build_matrix,
    import_matrix,
    load_truth,
    otsu_threshold,
    pairwise_distances,
    precision_recall,
    row_stats,
    sweep,
)

__all__ = ["BuildConfig", "apply_rule", "build_matrix", "import_matrix", "load_truth", "otsu_threshold",
           "pairwise_distances", "precision_recall", "row_stats", "sweep"]
