"""reactcli.features."""
