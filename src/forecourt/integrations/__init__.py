"""Thin wire clients for outside services, each with a local sandbox emulator."""
