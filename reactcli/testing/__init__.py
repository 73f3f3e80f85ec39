"""reactcli.testing."""
