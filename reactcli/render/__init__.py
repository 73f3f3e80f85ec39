"""reactcli.render."""
