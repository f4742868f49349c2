"""JSON logs with the request id; phone and card numbers never reach a log line."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_CARD = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def scrub(text: str) -> str:
    """Mask mainland mobile numbers and redact any 13-19 digit run (possible card numbers)."""
    return _CARD.sub("[redacted]", _PHONE.sub(r"\1****\2", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as scrubbed JSON."""
        entry: dict[str, object] = {
            "ts": _iso_ms(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return scrub(orjson.dumps(entry, default=str).decode())


class TextFormatter(logging.Formatter):
    """Human-readable lines, scrubbed the same way."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as scrubbed text."""
        rid = request_id_var.get()
        prefix = f"[{rid}] " if rid else ""
        return scrub(prefix + super().format(record))


_json_handler: logging.StreamHandler[IO[str]] | None = None
"""The root handler `setup` installed with JSON output (the access log's fast path)."""


def _iso_ms(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class AccessLog:
    """The access log line of every request, without the generic logging machinery per line.

    Writes exactly what `logging` plus `JsonFormatter` would (same keys in the same order, the
    request id, the same `scrub`) straight to the JSON handler's stream, and writes the lines
    of one event-loop iteration together (one write and flush, not one per request). Whenever
    the logging set-up is not the one `setup(json=True)` made (another handler, such as a
    test's log capture, a filter, text output, a level above INFO) it logs through `logging`.
    """

    def __init__(self, name: str = "forecourt.access") -> None:
        self.name = name
        self.logger = logging.getLogger(name)
        self.lost = 0
        self._lines: list[str] = []

    def _stream(self) -> IO[str] | None:
        handler = _json_handler
        logger = self.logger
        if handler is None or not logger.isEnabledFor(logging.INFO):
            return None
        root = logging.getLogger()
        if (
            logger.handlers
            or logger.filters
            or not logger.propagate
            or len(root.handlers) != 1
            or root.handlers[0] is not handler
            or root.filters
            or handler.filters
            or handler.level > logging.INFO
        ):
            return None
        return handler.stream

    def request(
        self, *, request_id: str, method: str, path: str | None, status: int, ms: float
    ) -> None:
        """Log one finished request (`msg` "request" with method, path, status and ms)."""
        stream = self._stream()
        if stream is None:
            extra = {"method": method, "path": path, "status": status, "ms": ms}
            self.logger.info("request", extra=extra)
            return
        entry = {
            "ts": _iso_ms(time.time()),
            "level": "INFO",
            "logger": self.name,
            "msg": "request",
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "ms": ms,
        }
        if not request_id:
            del entry["request_id"]
        self._lines.append(scrub(orjson.dumps(entry, default=str).decode()))
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self._write, stream)
            except RuntimeError:  # no event loop: write at once
                self._write(stream)

    def _write(self, stream: IO[str]) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        handler = _json_handler
        if handler is not None:
            handler.acquire()
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except Exception:  # like logging: a broken log stream never fails a request
            self.lost += len(lines)
        finally:
            if handler is not None:
                handler.release()


def setup(*, level: str = "INFO", json: bool = True) -> None:
    """Configure the root logger once for the process."""
    global _json_handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json else TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    _json_handler = handler if json else None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
