"""reactcli.corpora."""
