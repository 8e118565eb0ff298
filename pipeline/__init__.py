"""nst-pipeline: neural style transfer and its sister methods over whole datasets."""

__version__ = "0.1.0"
