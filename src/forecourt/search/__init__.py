"""Nearby station search: coordinates, spatial index, PostGIS."""
