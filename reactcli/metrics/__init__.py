"""reactcli.metrics."""
