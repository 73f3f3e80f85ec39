"""reactcli.storage."""
