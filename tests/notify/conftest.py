"""Fixtures for the notify tests."""

from tests.fixtures.mqtt import mosquitto_broker  # noqa: F401 (a fixture for these tests)
