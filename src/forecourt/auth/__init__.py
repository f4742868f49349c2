"""Drivers, staff, tokens and login."""
