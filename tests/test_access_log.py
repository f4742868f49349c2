"""The access log's fast path writes what `logging` + `JsonFormatter` would, scrubbed."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from forecourt import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The root logger set up by `logs.setup(json=True)`, writing to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.setup(level="INFO", json=True)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)
    logs._json_handler = None


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Only the JSON handler on the root logger (pytest adds its capture handlers per test)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [h for h in saved if h is logs._json_handler]
    try:
        yield
    finally:
        root.handlers[:] = saved


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines()]


async def test_fast_lines_match_the_formatter_and_are_scrubbed(stream: io.StringIO) -> None:
    access = logs.AccessLog("forecourt.access")
    path = "/api/v1/members/13812345678/cards/6222020200112233445"
    with alone():
        access.request(request_id="abc-123", method="GET", path=path, status=200, ms=1.25)
        access.request(request_id="def-456", method="POST", path="/x", status=201, ms=0.5)
        assert stream.getvalue() == ""  # written together, after this event-loop iteration
        await asyncio.sleep(0)
        fast = _lines(stream)
        stream.truncate(0)
        stream.seek(0)
        token = logs.request_id_var.set("abc-123")
        try:
            extra = {"method": "GET", "path": path, "status": 200, "ms": 1.25}
            logging.getLogger("forecourt.access").info("request", extra=extra)
        finally:
            logs.request_id_var.reset(token)
        slow = _lines(stream)
    assert len(fast) == 2
    assert list(fast[0]) == list(slow[0])  # the same keys in the same order
    assert {k: v for k, v in fast[0].items() if k != "ts"} == {
        k: v for k, v in slow[0].items() if k != "ts"
    }
    assert fast[0]["path"] == "/api/v1/members/138****5678/cards/[redacted]"
    assert fast[0]["request_id"] == "abc-123"
    assert (fast[1]["method"], fast[1]["status"], fast[1]["request_id"]) == ("POST", 201, "def-456")


def test_falls_back_to_logging_when_another_handler_listens(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="forecourt.access")
    logs.AccessLog("forecourt.access").request(
        request_id="r1", method="GET", path="/p/13812345678", status=404, ms=0.1
    )
    records = [r for r in caplog.records if r.name == "forecourt.access"]
    assert [(r.getMessage(), getattr(r, "status", None)) for r in records] == [("request", 404)]
    assert _lines(stream)[0]["path"] == "/p/138****5678"  # the JSON handler still scrubs


def test_nothing_below_the_configured_level(stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    with alone():
        logs.AccessLog("forecourt.access").request(
            request_id="r1", method="GET", path="/", status=200, ms=0.1
        )
    assert stream.getvalue() == ""
