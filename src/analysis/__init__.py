"""Reproducible evaluation of prefectural support for municipal comprehensive support systems."""
__version__ = "0.1.0"
