"""Tank tests use the station fixture from tests/fixtures/tanks.py."""

from tests.fixtures.tanks import site

__all__ = ["site"]
