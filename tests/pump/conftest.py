"""Pump link fixture: a runtime whose outbox dispatcher and pump link really run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from forecourt.runtime import Runtime
from tests.fixtures.mqtt import mosquitto_broker  # noqa: F401 (a fixture for these tests)


@pytest.fixture
async def link(runtime: Runtime) -> AsyncIterator[Runtime]:
    """The runtime with its dispatcher and pump link started (stopped after the test)."""
    await runtime.tasks.start(dispatcher=True, scheduler=False)
    runtime.pumps.start()
    await asyncio.wait_for(runtime.pumps.connected.wait(), timeout=10)
    try:
        yield runtime
    finally:
        await runtime.tasks.stop()
        await runtime.pumps.stop()
