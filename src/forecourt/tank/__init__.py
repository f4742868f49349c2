"""Tanks: gauge readings and deliveries, derived book stock, variance alerts, availability."""
