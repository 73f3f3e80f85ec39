"""reactcli.appropriate."""
