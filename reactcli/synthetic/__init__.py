"""The synthetic dyadic corpus: a generative world with a known truth (:mod:`.world`), written
to disk in the REACT or raw-session layouts (:mod:`.corpus`), and a tiny REACT layout for reader
tests (:mod:`.react_layout`). It backs ``reactcli synth``, the demo and the tests."""

from reactcli.synthetic.corpus import SynthSummary, read_truth, synthesize
from reactcli.synthetic.world import (
    AU_TABLE,
    EMOTION_COLUMNS,
    MEAN_FACE,
    PERSON_P1P2,
    VA_TABLE,
    SynthConfig,
)

__all__ = ["AU_TABLE", "EMOTION_COLUMNS", "MEAN_FACE", "PERSON_P1P2", "VA_TABLE", "SynthConfig", "SynthSummary",
           "read_truth", "synthesize"]
