"""reactcli.generation."""
