"""Area-free helpers."""
