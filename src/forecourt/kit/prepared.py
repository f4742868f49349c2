"""Hot statements compiled once and run on the driver itself (asyncpg) on PostgreSQL.

SQLAlchemy's execution path (cache key, compiled-cache lookup, execution context, result
object) costs about 130 µs of CPU per statement on top of asyncpg's 40–70 µs. A `Prepared`
statement is built once with `bindparam()`s and compiled once per dialect. On PostgreSQL it runs
on the session's own asyncpg connection, inside the session's transaction (begun the way
SQLAlchemy's adapter begins it), with the statement's bind and result type processing, the
engine's `before_cursor_execute`/`after_cursor_execute` events and SQLAlchemy's exception
classes. On SQLite it runs through the session's connection (`Connection.execute`).

Checked when compiled, on every dialect: no expanding IN (write `in_([literal(a), ...])`), no
column default or onupdate computed in Python (pass every value), and no WHERE parameter named
like a column of the table an INSERT or UPDATE writes (SQLAlchemy reserves those names).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Update, ValuesBase
from sqlalchemy.sql.expression import ClauseElement, Executable

Build = Callable[[str], Executable]
_COUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


class _Cursor:
    """What `after_cursor_execute` listeners read: the row count and the fetched rows."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount = rowcount
        self._rows = rows


@dataclass(slots=True)
class _Plan:
    """One dialect's compiled form of a statement."""

    sql: str
    order: tuple[str, ...]
    fixed: dict[str, Any]
    binds: dict[str, Callable[[Any], Any]]
    row: Any
    types: tuple[Any, ...]
    results: tuple[Callable[[Any], Any] | None, ...] | None = field(default=None)

    def check(self, params: dict[str, Any]) -> None:
        """Refuse a parameter the statement does not have."""
        unknown = params.keys() - self.order
        if unknown:
            raise TypeError(f"unknown parameters {sorted(unknown)} for {self.sql[:60]}")

    def args(self, params: dict[str, Any]) -> list[Any]:
        """Positional driver arguments from named parameters."""
        self.check(params)
        out = []
        for name in self.order:
            value = params[name] if name in params else self.fixed[name]
            proc = self.binds.get(name)
            out.append(proc(value) if proc is not None else value)
        return out


def _plan(stmt: Executable, dialect: Dialect) -> _Plan:
    compiled = cast(ClauseElement, stmt).compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.post_compile_params:
        raise TypeError("expanding IN is not supported here: use in_([literal(a), ...])")
    if compiled.insert_prefetch or compiled.update_prefetch:
        names = [c.name for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        raise TypeError(f"columns {names} have Python-side defaults: pass their values")
    order = tuple(compiled.positiontup or ())
    if isinstance(stmt, ValuesBase | Update):
        try:  # as SQLAlchemy compiles it when given these parameters (the SQLite path)
            cast(ClauseElement, stmt).compile(dialect=dialect, column_keys=list(order))
        except exc.CompileError as error:
            raise TypeError(f"{error}".split(" (Background")[0]) from error
    fixed = {key: bind.effective_value for key, bind in compiled.binds.items() if not bind.required}
    columns = compiled._result_columns
    row = namedtuple("Row", [c.keyname for c in columns], rename=True) if columns else None
    return _Plan(
        sql=compiled.string,
        order=order,
        fixed=fixed,
        binds=cast(dict[str, Callable[[Any], Any]], dict(compiled._bind_processors)),
        row=row,
        types=tuple(c.type for c in columns),
    )


class Prepared:
    """A Core statement run with little per-call overhead; see the module docstring."""

    __slots__ = ("_build", "_plans", "_statements")

    def __init__(self, build: Executable | Build) -> None:
        self._build = build
        self._plans: dict[str, _Plan] = {}
        self._statements: dict[str, Executable] = {}

    def statement(self, dialect: str) -> Executable:
        """The statement as built for a dialect ('sqlite' or 'postgresql')."""
        stmt = self._statements.get(dialect)
        if stmt is None:
            stmt = self._build(dialect) if callable(self._build) else self._build
            self._statements[dialect] = stmt
        return stmt

    async def all(self, session: AsyncSession, **params: Any) -> list[Any]:
        """Every row (attribute access by column key)."""
        return await self._rows(session, params)

    async def first(self, session: AsyncSession, **params: Any) -> Any | None:
        """The first row, or None."""
        rows = await self._rows(session, params)
        return rows[0] if rows else None

    async def scalar(self, session: AsyncSession, **params: Any) -> Any:
        """The first column of the first row, or None."""
        rows = await self._rows(session, params)
        return rows[0][0] if rows else None

    async def run(self, session: AsyncSession, **params: Any) -> int:
        """Execute; the number of rows it matched."""
        conn = await session.connection()
        sync = conn.sync_connection
        assert sync is not None
        if sync.dialect.name != "postgresql":
            self._plan_for(sync.dialect).check(params)  # the same checks on every dialect
            result = await conn.execute(self.statement(sync.dialect.name), params)
            return int(getattr(result, "rowcount", -1))
        count, _ = await self._pg(sync, params)
        return count

    async def _rows(self, session: AsyncSession, params: dict[str, Any]) -> list[Any]:
        conn = await session.connection()
        sync = conn.sync_connection
        assert sync is not None
        if sync.dialect.name != "postgresql":
            self._plan_for(sync.dialect).check(params)  # the same checks on every dialect
            result = await conn.execute(self.statement(sync.dialect.name), params)
            return list(result.all())
        _, rows = await self._pg(sync, params)
        return rows

    def _plan_for(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _plan(self.statement(dialect.name), dialect)
        return plan

    async def _pg(self, sync: Connection, params: dict[str, Any]) -> tuple[int, list[Any]]:
        plan = self._plan_for(sync.dialect)
        args = plan.args(params)
        adapt: Any = sync.connection.dbapi_connection
        raw = adapt._connection
        dispatch = sync.dispatch
        if dispatch.before_cursor_execute:
            for listener in dispatch.before_cursor_execute:
                listener(sync, None, plan.sql, tuple(args), None, False)
        try:
            async with adapt._execute_mutex:
                if adapt._transaction is None:
                    await adapt._start_transaction()  # as SQLAlchemy's adapter does first
                if plan.row is None:
                    status = await raw.execute(plan.sql, *args)
                    found = _COUNT.match(status or "")
                    count, rows = (int(found.group(1)) if found else -1), []
                else:
                    if plan.results is None:
                        plan.results = await _result_processors(raw, plan, sync.dialect)
                    rows = _convert(plan, await raw.fetch(plan.sql, *args))
                    count = len(rows)
        except Exception as error:
            _reraise(sync, adapt, plan.sql, args, error)
        if dispatch.after_cursor_execute:
            cursor = _Cursor(count, rows)
            for listener in dispatch.after_cursor_execute:
                listener(sync, cursor, plan.sql, tuple(args), None, False)
        return count, rows


async def _result_processors(
    raw: Any, plan: _Plan, dialect: Dialect
) -> tuple[Callable[[Any], Any] | None, ...]:
    """The dialect's result processor per column, chosen by the driver's column type."""
    attributes = (await raw.prepare(plan.sql)).get_attributes()
    return tuple(
        type_._cached_result_processor(dialect, attr.type.oid)
        for type_, attr in zip(plan.types, attributes, strict=True)
    )


def _convert(plan: _Plan, records: list[Any]) -> list[Any]:
    make = plan.row._make
    results = plan.results
    assert results is not None
    if not any(results):
        return [make(r) for r in records]
    return [
        make(v if p is None else p(v) for p, v in zip(results, r, strict=True)) for r in records
    ]


def _reraise(sync: Connection, adapt: Any, sql: str, args: list[Any], error: Exception) -> Any:
    """Raise what SQLAlchemy would: its DBAPIError subclass; a lost connection is invalidated."""
    try:
        adapt._handle_exception(error)
    except adapt.dbapi.Error as dbapi_error:
        lost = sync.dialect.is_disconnect(dbapi_error, adapt, None)
        wrapped = exc.DBAPIError.instance(
            sql,
            tuple(args),
            dbapi_error,
            adapt.dbapi.Error,
            connection_invalidated=lost,
            dialect=sync.dialect,
        )
        if lost and not sync.invalidated:
            sync.engine.pool._invalidate(sync.connection, dbapi_error)
            sync.invalidate(dbapi_error)
        raise wrapped from error
    raise error
