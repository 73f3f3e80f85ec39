"""reactcli: from raw dyadic sessions to generated, scored and rendered listener reactions."""

__version__ = "0.1.0"
