"""Notifications: station speakers and (later) subscribe messages."""
