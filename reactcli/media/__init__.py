"""reactcli.media."""
