"""The package's version: the ground floor, so any layer may read it without importing the API."""

__version__ = "0.1.0"
