"""Compiled numeric kernels shared by stages of different layers: the exact DTW of the REACT
metrics (:mod:`.dtw`), which both the metrics (FRdist) and the appropriateness builder (speaker
similarity) use. A kernel knows arrays only: no manifests, files or stages."""
