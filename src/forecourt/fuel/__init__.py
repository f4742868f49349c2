"""Fuel grades, prices and caps."""
