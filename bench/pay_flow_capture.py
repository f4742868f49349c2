"""The API as `bench/pay_flow.py` runs it for its capture and profile passes.

    uvicorn --factory bench.pay_flow_capture:create_app ...

The application is `forecourt.app.create_app()` unchanged. With PAY_FLOW_CAPTURE=<file> every
SQL statement any engine of the process sends (requests and background loops alike) is
appended to <file> as a JSON line with its parameters, the transaction events (begin, commit,
rollback), pool check-outs when the pool pings at check-out, the connection, and who sent it:
the request id and path for a request, the asyncio task name otherwise.

With PAY_FLOW_PROFILE=<file> the event-loop thread runs under cProfile (process CPU time) from
the first request whose X-Request-ID starts with PAY_FLOW_PROFILE_FROM (start-up and warm-up
left out) and the statistics are written to <file> at shutdown.

Neither is on in the measured runs.
"""

from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import decimal
import os
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import IO, Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import Pool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forecourt.app import create_app as forecourt_app
from forecourt.config import get_settings
from forecourt.logs import request_id_var

_path: ContextVar[str | None] = ContextVar("path", default=None)


def encode(value: Any) -> Any:
    """A parameter as JSON: plain values as they are, others tagged with their type."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return {"t": "timestamptz" if value.tzinfo else "timestamp", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"t": "date", "v": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"t": "numeric", "v": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"t": "bytea", "v": bytes(value).hex()}
    if isinstance(value, uuid.UUID):
        return {"t": "uuid", "v": str(value)}
    if isinstance(value, list | tuple):
        return {"t": "array", "v": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"t": "json", "v": orjson.dumps(value).decode()}
    return {"t": type(value).__name__, "v": str(value)}


class Recorder:
    """Appends one JSON line per database event."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.started: dict[int, float] = {}

    def who(self) -> dict[str, Any]:
        """The request (id, path) or the background task behind the current event."""
        rid = request_id_var.get()
        if rid:
            return {"rid": rid, "path": _path.get()}
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        return {"task": task.get_name() if task is not None else None}

    def write(self, kind: str, conn: object, **fields: Any) -> None:
        """One event line."""
        line = {"k": kind, "c": id(conn), "at": time.time(), **self.who(), **fields}
        self.out.write(orjson.dumps(line) + b"\n")

    def install(self) -> None:
        """Listen on every engine and pool of the process."""

        @event.listens_for(Engine, "before_cursor_execute")
        def before(
            conn: Connection,
            cursor: Any,
            statement: str,
            parameters: Any,
            context: Any,
            executemany: bool,
        ) -> None:
            # A true executemany has rows; "insertmanyvalues" batches come as one flat row.
            rows = executemany and bool(parameters) and isinstance(parameters[0], list | tuple)
            try:
                if rows:
                    params: list[Any] = [[encode(v) for v in row] for row in parameters]
                else:
                    params = [encode(v) for v in parameters or ()]
                self.write("sql", conn, sql=statement, params=params, many=rows)
            except Exception as exc:  # never fail the request being recorded
                self.write("error", conn, sql=statement, error=repr(exc))
            self.started[id(conn)] = time.perf_counter()

        @event.listens_for(Engine, "after_cursor_execute")
        def after(
            conn: Connection,
            cursor: Any,
            statement: str,
            parameters: Any,
            context: Any,
            executemany: bool,
        ) -> None:
            started = self.started.pop(id(conn), None)
            if started is None:
                return
            ms = (time.perf_counter() - started) * 1000
            fields: dict[str, Any] = {"ms": round(ms, 3), "rows": cursor.rowcount}
            buffered = getattr(cursor, "_rows", None)  # the asyncpg adapter's fetched rows
            if "RETURNING" in statement and buffered is not None:
                try:
                    fields["returned"] = [[encode(v) for v in row] for row in list(buffered)[:5]]
                except Exception as exc:  # never fail the request being recorded
                    fields["error"] = repr(exc)
            self.write("done", conn, **fields)

        @event.listens_for(Engine, "begin")
        def begin(conn: Connection) -> None:
            self.write("begin", conn)

        @event.listens_for(Engine, "commit")
        def commit(conn: Connection) -> None:
            self.write("commit", conn)

        @event.listens_for(Engine, "rollback")
        def rollback(conn: Connection) -> None:
            self.write("rollback", conn)

        if get_settings().database_pre_ping:  # a check-out costs a ping only then

            @event.listens_for(Pool, "checkout")
            def checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
                self.write("checkout", dbapi_conn)


class Wrapper:
    """Outermost ASGI layer: remembers the request path, starts the profiler at the first
    request whose X-Request-ID starts with `profile_from`, and runs `at_shutdown` after the
    lifespan's shutdown (uvicorn re-raises SIGTERM after a graceful stop, so `atexit` would
    not run)."""

    def __init__(
        self,
        app: ASGIApp,
        at_shutdown: list[Callable[[], None]],
        profiler: cProfile.Profile | None = None,
        profile_from: bytes = b"",
    ) -> None:
        self.app = app
        self.at_shutdown = at_shutdown
        self.profiler = profiler
        self.profile_from = profile_from

    def _maybe_profile(self, scope: Scope) -> None:
        if self.profiler is None:
            return
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id" and value.startswith(self.profile_from):
                self.profiler.enable()
                self.profiler = None  # on from now until shutdown
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Set the path, then run the application."""
        if scope["type"] == "lifespan":

            async def send_and_finish(message: Message) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    for fn in self.at_shutdown:
                        fn()
                await send(message)

            await self.app(scope, receive, send_and_finish)
            return
        self._maybe_profile(scope)
        token = _path.set(scope.get("path"))
        try:
            await self.app(scope, receive, send)
        finally:
            _path.reset(token)


def create_app() -> ASGIApp:
    """`forecourt.app.create_app()`, recorded and/or profiled as the environment asks."""
    capture = os.environ.get("PAY_FLOW_CAPTURE")
    profile = os.environ.get("PAY_FLOW_PROFILE")
    at_shutdown: list[Callable[[], None]] = []
    if capture:
        out = open(capture, "ab")  # noqa: SIM115 - closed at shutdown
        Recorder(out).install()
        at_shutdown.append(out.close)
    profiler = None
    if profile:
        profiler = cProfile.Profile(time.process_time)  # CPU time: other processes don't count
        running = profiler

        def dump() -> None:
            running.disable()
            running.dump_stats(profile)

        at_shutdown.append(dump)
    label = os.environ.get("PAY_FLOW_PROFILE_FROM", "").encode()
    return Wrapper(forecourt_app(), at_shutdown, profiler, label)
