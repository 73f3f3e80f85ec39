"""reactcli.models."""
