"""data-pipeline-example: the reference cloaca Python package (see README.md)."""

__version__ = "1.0.0"
