"""rr: a run-record recorder for computational work, DataLad-compatible on disk."""

__version__ = "0.1.0"
