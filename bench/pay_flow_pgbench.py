"""From the SQL one pay flow sends (bench/pay_flow_capture.py) to a pgbench script, and pgbench.

A captured flow is its three requests' units of work plus the background units that did its
work (those that carry one of its ids, or that wrote rows while it was the only flow in
flight); background units that only polled and found nothing are left out. Each unit becomes

    BEGIN; SELECT 1; ROLLBACK;     -- the pool's pre-ping at check-out (when it pings)
    BEGIN; <its statements, parameters as literals>; COMMIT;   (ROLLBACK for read-only units)

Per flow the script draws a station and a member (``\\set``), so the fuelling point and nozzle
ids follow (station * 100 + number), and a random number from which every id the flow
generated is derived afresh (``md5``), also inside JSON documents; ids the database assigned
(``RETURNING``) are taken with ``\\aset`` and used where the flow used them. Timestamps and
all other values are the captured ones.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

TOKEN = re.compile(r"^[A-Za-z0-9_.:|*-]{12,64}$")
PARAM = re.compile(r"\$(\d+)")
PGBENCH_NAME = re.compile(r":[A-Za-z_\x80-\uffff]")


@dataclass
class Stmt:
    """One statement as sent, with what came back."""

    sql: str
    params: list[Any]
    many: bool
    ms: float = 0.0
    rows: int = -1
    returned: list[list[Any]] | None = None

    @property
    def verb(self) -> str:
        """SELECT, INSERT, UPDATE, DELETE ..."""
        return self.sql.lstrip().split(None, 1)[0].upper()

    @property
    def writes(self) -> bool:
        """INSERT, UPDATE or DELETE (also inside a WITH)."""
        words = set(self.sql.upper().split())
        return self.verb in ("INSERT", "UPDATE", "DELETE") or (
            self.verb == "WITH" and bool(words & {"INSERT", "UPDATE", "DELETE"})
        )


@dataclass
class Unit:
    """One transaction on one connection."""

    who: dict[str, Any]
    at: float
    checkouts: int = 0
    stmts: list[Stmt] = field(default_factory=list)
    end: str = ""

    @property
    def request(self) -> str | None:
        """The request id when a request ran it."""
        rid = self.who.get("rid")
        return str(rid) if rid else None

    @property
    def wrote(self) -> bool:
        """Whether it changed rows (a WITH ... UPDATE claim that claimed something counts)."""
        return any(s.writes and s.rows != 0 for s in self.stmts)

    def strings(self) -> set[str]:
        """Every id-like string among its parameters."""
        out: set[str] = set()
        for s in self.stmts:
            rows = s.params if s.many else [s.params]
            for row in rows:
                for v in row:
                    if isinstance(v, str) and TOKEN.match(v):
                        out.add(v)
        return out

    def text(self) -> str:
        """All parameter text (for finding ids inside documents)."""
        return orjson.dumps([s.params for s in self.stmts]).decode()


@dataclass
class Flow:
    """The units of work of one captured flow, in order."""

    label: str
    units: list[Unit]
    tokens: set[str]

    @property
    def statement_count(self) -> int:
        """Statements, pre-pings and BEGIN/COMMIT excluded."""
        return sum(len(u.stmts) for u in self.units)


def load_capture(path: Path, *, skip_bytes: int = 0) -> list[Unit]:
    """The units of work recorded in `path` (after `skip_bytes`: start-up is not a flow)."""
    units: list[Unit] = []
    open_units: dict[int, Unit] = {}
    checkouts: Counter[str] = Counter()
    with path.open("rb") as fh:
        fh.seek(skip_bytes)
        for raw in fh:
            try:
                e = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # a line cut by the stop
            who = {k: e[k] for k in ("rid", "path", "task") if k in e}
            key = str(e.get("rid") or e.get("task"))
            kind, conn = e["k"], e["c"]
            if kind == "checkout":
                checkouts[key] += 1
            elif kind == "begin":
                unit = Unit(who=who, at=e["at"], checkouts=checkouts.pop(key, 0))
                open_units[conn] = unit
                units.append(unit)
            elif kind == "sql":
                current = open_units.get(conn)
                if current is None:
                    current = open_units[conn] = Unit(who=who, at=e["at"], end="autocommit")
                    units.append(current)
                current.stmts.append(Stmt(sql=e["sql"], params=e["params"], many=e["many"]))
            elif kind == "done":
                current = open_units.get(conn)
                if current is not None and current.stmts:
                    last = current.stmts[-1]
                    last.ms, last.rows, last.returned = e["ms"], e["rows"], e.get("returned")
            elif kind in ("commit", "rollback"):
                ended = open_units.pop(conn, None)
                if ended is not None:
                    ended.end = kind
    return [u for u in units if u.stmts]


LABEL = re.compile(r"^(.+-\d+)-[opn]$")  # <point>-<flow>-<step>, as bench/pay_flow.py sends


def split_flows(units: list[Unit]) -> list[Flow]:
    """Group units into flows: requests by their X-Request-ID, background work by ids and time.

    Flows were captured one at a time. An id-like string is a flow's id when it shows up in at
    most two flows' time windows (a delayed job may come in a later window); constants such
    as topics and handler names show up in all. A background unit belongs to the flow whose
    ids it carries; one that carries none but changed rows (outbox claims, for instance)
    belongs to the flow in flight; the ids it creates become that flow's.
    """
    starts: dict[str, float] = {}
    for u in units:
        m = LABEL.match(u.request or "")
        if m:
            starts.setdefault(m.group(1), u.at)
    labels = sorted(starts, key=starts.__getitem__)
    if not labels:
        return []

    def window(at: float) -> str | None:
        inside = [label for label in labels if starts[label] <= at]
        return inside[-1] if inside else None

    windows: dict[str, set[str]] = {}
    for u in units:
        w = window(u.at)
        if w is not None:
            for s in u.strings():
                windows.setdefault(s, set()).add(w)
    candidates = {s for s, seen in windows.items() if len(seen) <= 2}
    flows = {label: Flow(label=label, units=[], tokens=set()) for label in labels}
    for u in units:
        m = LABEL.match(u.request or "")
        if m:
            flow = flows[m.group(1)]
            flow.units.append(u)
            flow.tokens |= u.strings() & candidates
    for u in units:
        if u.request:
            continue
        text = u.text()
        hits = {f.label: sum(t in text for t in f.tokens) for f in flows.values()}
        best = max(hits, key=hits.__getitem__)
        owner = best if hits[best] else (window(u.at) if u.wrote else None)
        if owner is None:
            continue
        flows[owner].units.append(u)
        flows[owner].tokens |= u.strings() & candidates
    for flow in flows.values():
        flow.units.sort(key=lambda unit: unit.at)
    return [flows[label] for label in labels]


# -- the script --------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A SQL string literal that pgbench will not read variables from."""
    if PGBENCH_NAME.search(text) or "\\" in text:
        escaped = text.replace("\\", "\\\\").replace("'", "''").replace(":", "\\x3a")
        return f"E'{escaped}'"
    return "'" + text.replace("'", "''") + "'"


class Renderer:
    """Turns a captured flow's parameters into literals and pgbench expressions."""

    def __init__(self, flow: Flow, *, station: int, member: int, fp_factor: int) -> None:
        self.station = station
        self.member = member
        self.fp_factor = fp_factor
        self.tokens = sorted(flow.tokens, key=len, reverse=True)
        self.salt = {t: f"t{i}" for i, t in enumerate(self.tokens)}
        self.returned: dict[int, str] = {}  # value -> pgbench variable

    def token_expr(self, token: str) -> str:
        """A fresh string as long as `token`, the same within one flow."""
        salt = self.salt[token]
        md5 = f"md5(:u::text || '{salt}')"
        if len(token) > 32:
            md5 = f"{md5} || md5(:u::text || '{salt}x')"
        return f"substr({md5}, 1, {len(token)})"

    def string(self, text: str) -> str:
        """A string with every id of the flow in it replaced (and the station and member ids)."""
        found = [re.escape(t) for t in self.tokens if t in text]
        numbers = {str(self.station): "(:s)::text", str(self.member): "(:m)::text"}
        found += [rf"(?<!\d){n}(?!\d)" for n in numbers if n in text]
        if not found:
            return _quote(text)
        pattern = re.compile("|".join(found))
        parts: list[str] = []
        pos = 0
        for m in pattern.finditer(text):
            if m.start() > pos:
                parts.append(_quote(text[pos : m.start()]))
            hit = m.group(0)
            parts.append(numbers.get(hit) or self.token_expr(hit))
            pos = m.end()
        if pos < len(text):
            parts.append(_quote(text[pos:]))
        return "(" + " || ".join(parts) + ")"

    def integer(self, value: int) -> str:
        """An int, or the expression for the station, fuelling point, member or returned id."""
        if value == self.station:
            return "(:s)::int"
        if value == self.member:
            return "(:m)::int"
        if value // self.fp_factor == self.station and value > self.fp_factor:
            return f"((:s)::int * {self.fp_factor} + {value % self.fp_factor})"
        if value in self.returned:
            return f"(:{self.returned[value]})::bigint"
        return str(value)

    def value(self, v: Any) -> str:
        """One parameter as SQL."""
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return self.integer(v)
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, str):
            return self.string(v)
        kind, raw = v["t"], v["v"]
        if kind == "array":
            return "ARRAY[" + ", ".join(self.value(x) for x in raw) + "]"
        if kind == "bytea":
            return f"'\\x{raw}'::bytea"
        if kind in ("timestamptz", "timestamp", "date", "uuid", "numeric"):
            return f"'{raw}'::{kind}"
        return self.string(str(raw))

    def statement(self, stmt: Stmt, index: int) -> list[str]:
        """The statement (once per parameter row for executemany) with literals in place.

        An INSERT's RETURNING ids are kept in variables (`\\aset`) for the statements after it;
        several rows come back through a CTE that lists them in id order.
        """
        out = []
        for row in stmt.params if stmt.many else [stmt.params]:
            sql = " ".join(_substitute(stmt.sql, [self.value(v) for v in row]).split())
            returned = [
                r[0]
                for r in stmt.returned or []
                if r and isinstance(r[0], int) and not isinstance(r[0], bool) and r[0] > 0
            ]
            if stmt.verb != "INSERT" or not returned or len(returned) != len(stmt.returned or []):
                out.append(sql + ";")
                continue
            prefix = f"r{index}_"
            name = _returning_names(stmt.sql)[0]
            if len(returned) == 1:
                self.returned.setdefault(returned[0], f"{prefix}{name}")
                out.append(f"{sql} \\aset {prefix}")
                continue
            picks = ", ".join(
                f"(array_agg({name} ORDER BY {name}))[{i}] AS v{i}"
                for i in range(1, len(returned) + 1)
            )
            for i, value in enumerate(sorted(returned), start=1):
                self.returned.setdefault(value, f"{prefix}v{i}")
            script_line = f"WITH ins AS ({sql}) SELECT {picks} FROM ins \\aset {prefix}"  # noqa: S608
            out.append(script_line)
        return out


def _substitute(sql: str, values: list[str]) -> str:
    """`$n` placeholders replaced by the n-th value."""
    return PARAM.sub(lambda m: values[int(m.group(1)) - 1], sql)


def _returning_names(sql: str) -> list[str]:
    clause = sql.rsplit("RETURNING", 1)[1]
    return [part.strip().split(".")[-1].strip('"') for part in clause.split(",")]


def build_script(
    flows: list[Flow],
    *,
    fp_factor: int,
    stations: tuple[int, int],
    members: tuple[int, int],
) -> tuple[str, dict[str, Any]]:
    """The pgbench script of a typical captured flow and a description of its SQL."""
    if not flows:
        raise RuntimeError("no flow was captured")
    middle = flows[1:-1] or flows  # the first may do one-off work, the last is cut short
    typical = Counter(f.statement_count for f in middle).most_common(1)[0][0]
    flow = next(f for f in middle if f.statement_count == typical)
    first = next(u for u in flow.units if u.request)
    station = member = 0
    for s in first.stmts:  # the order's INSERT names both
        if s.verb == "INSERT" and "orders" in s.sql.split("(", 1)[0]:
            cols = [c.strip() for c in s.sql.split("(", 1)[1].split(")", 1)[0].split(",")]
            values = dict(zip(cols, s.params, strict=False))
            station, member = int(values["station_id"]), int(values["member_id"])
    if not station:
        raise RuntimeError("the captured flow has no order INSERT")
    r = Renderer(flow, station=station, member=member, fp_factor=fp_factor)
    lines = [
        f"-- pay flow {flow.label}: {len(flow.units)} units of work, {flow.statement_count} "
        "statements (generated by bench/pay_flow.py)",
        f"\\set s random({stations[0]}, {stations[1]})",
        f"\\set m random({members[0]}, {members[1]})",
        "\\set u random(1, 9000000000000000000)",
    ]
    index = 0
    units = []
    for unit in flow.units:
        what = unit.who.get("path") or f"background ({unit.who.get('task')})"
        lines.append(f"-- {what}")
        for _ in range(unit.checkouts):
            lines += ["BEGIN;", "SELECT 1;", "ROLLBACK;"]
        lines.append("BEGIN;")
        for stmt in unit.stmts:
            index += 1
            lines += r.statement(stmt, index)
        lines.append("ROLLBACK;" if unit.end == "rollback" else "COMMIT;")
        units.append(
            {
                "who": what,
                "request": unit.request,
                "checkouts": unit.checkouts,
                "end": unit.end,
                "statements": [
                    {"verb": s.verb, "table": _table(s.sql), "rows": s.rows, "ms": s.ms}
                    for s in unit.stmts
                ],
            }
        )
    described = {
        "flow": flow.label,
        "statement_counts": [f.statement_count for f in flows],
        "transactions": len(flow.units) + sum(u.checkouts for u in flow.units),
        "units": units,
        "statements": flow.statement_count,
        "round_trips": sum(len(u.stmts) + 2 + 3 * u.checkouts for u in flow.units),
        "db_ms": sum(s.ms for u in flow.units for s in u.stmts),
    }
    return "\n".join(lines) + "\n", described


def _table(sql: str) -> str:
    """The table a statement is about (INSERT INTO x, UPDATE x SET, DELETE FROM x, ... FROM x)."""
    for pattern in (r"\bINSERT\s+INTO\s+(\w+)", r"\bUPDATE\s+(\w+)\s+SET\b", r"\bFROM\s+(\w+)"):
        m = re.search(pattern, sql, re.IGNORECASE)
        if m:
            return m.group(1)
    return "?"


def describe_text(described: dict[str, Any]) -> str:
    """What one flow sends to PostgreSQL, unit by unit."""
    out = [
        f"one flow on PostgreSQL: {described['transactions']} transactions "
        f"({sum(u['checkouts'] for u in described['units'])} of them pre-pings), "
        f"{described['statements']} statements, {described['round_trips']} round trips, "
        f"{described['db_ms']:.1f} ms of statement time in the capture pass"
    ]
    for u in described["units"]:
        verbs = Counter(s["verb"] for s in u["statements"])
        tables = ", ".join(dict.fromkeys(s["table"] for s in u["statements"]))
        out.append(
            f"  {u['who'][:48]:<48} {len(u['statements']):>2} stmts "
            f"({', '.join(f'{n} {v}' for v, n in verbs.items())}) on {tables}"
        )
    return "\n".join(out)


def run_pgbench(
    cli: list[str],
    database: str,
    script: Path,
    *,
    clients: int,
    seconds: float,
    prefix: list[str] | None = None,
) -> dict[str, Any]:
    """`pgbench -n -M prepared -f script -c clients -j 2 -T seconds`; tps and latency."""
    cmd = [
        *(prefix or []),
        "pgbench",
        *cli,
        "-n",
        "-M",
        "prepared",
        "-f",
        str(script),
        "-c",
        str(clients),
        "-j",
        str(min(2, clients)),
        "-T",
        str(int(seconds)),
        database,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    text = out.stdout + out.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    latency = re.search(r"latency average = ([\d.]+) ms", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    if tps is None:
        raise RuntimeError(f"pgbench failed:\n{text[-3000:]}")
    return {
        "clients": clients,
        "tps": float(tps.group(1)),
        "latency_ms": float(latency.group(1)) if latency else float("nan"),
        "failed": int(failed.group(1)) if failed else 0,
        "command": " ".join(c for c in cmd if c not in cli),
    }
