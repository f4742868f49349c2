"""Transactional outbox and background work."""
