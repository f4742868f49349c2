"""Forecourt: the digital business of a fuel station."""

__version__ = "0.1.0"
