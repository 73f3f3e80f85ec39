"""reactcli.training."""
