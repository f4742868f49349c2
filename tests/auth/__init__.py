"""Auth area tests."""
