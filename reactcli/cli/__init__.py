"""reactcli.cli."""
