"""Stations: where drivers fuel."""
