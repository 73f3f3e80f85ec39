"""reactcli.manifest."""
