"""Demo and benchmark data."""
