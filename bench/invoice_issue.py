"""E-invoice benchmark: request -> issued at a fixed rate, sandbox delay included (R8).

One flow is what a driver's app and the platform do after paying for fuel:

1. ``POST /api/v1/invoices`` (one completed fuel order, a company title, an e-mail,
   Idempotency-Key) -> 201, status ``requested``;
2. after the commit the outbox hands the invoice to ``invoice.submit``, which sends a signed
   ``requestBillingNew`` to the Nuonuo sandbox (in-process, as in the embedded default) and
   stores the ``invoiceSerialNum`` (status ``issuing``);
3. the sandbox issues after a random 0.2-2 s and POSTs its callback over loopback HTTP to
   ``/api/v1/invoices/notify/nuonuo``; the API confirms it with ``queryInvoiceResult`` and
   commits status ``issued``. The PDF is then rendered and e-mailed to a local SMTP server.

Latency per invoice = the server's ``status_at`` of ``issued`` (its clock) minus the moment the
load generator sent the request (the same host's clock). Requests are sent open-loop: request
``i`` leaves at ``start + i / rate`` whatever the answers, so a slow server cannot slow the
offered load. Split: ``issued_at`` is the sandbox's issue time, so "issued -> known" is the
callback, the query and our commit.

Processes, all on loopback: the API (``uvicorn forecourt.app:create_app``, uvloop, httptools,
one worker, dispatcher and scheduler on, pump link and speakers off) pinned to core 0; this
script (load, SMTP server) on core 1.

    .venv/bin/python bench/invoice_issue.py [--rate 20] [--duration 30]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/forecourt_bench_invoice]
        [--json results.json]

Without ``--database-url`` a new SQLite file is used; a PostgreSQL database named there is
dropped and created again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent

from forecourt import migrate  # noqa: E402
from forecourt.auth.models import Member  # noqa: E402
from forecourt.auth.tokens import issue_access  # noqa: E402
from forecourt.db import Database, make_engine  # noqa: E402
from forecourt.invoice.models import Invoice  # noqa: E402
from forecourt.order.models import Order  # noqa: E402
from forecourt.station.models import Station  # noqa: E402

PRICE_FEN = 776  # 92#
TARGET_S = 3.0
SANDBOX_SECRET = "bench-only-nuonuo-secret"  # noqa: S105 (test-only sandbox credential)
BUYER = {"kind": "company", "name": "深圳市腾讯计算机系统有限公司", "tax_id": "91440300708461136T"}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def taskset(core: str) -> list[str]:
    """`taskset -c core` when taskset exists (nothing otherwise)."""
    return ["taskset", "-c", core] if core and shutil.which("taskset") else []


class Mailbox:
    """An aiosmtpd handler that counts messages."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        """Count and accept."""
        self.count += 1
        return "250 OK"


# -- database --------------------------------------------------------------------------------


async def fresh_database(url: str | None, workdir: Path) -> str:
    """A new empty database: a SQLite file, or the named PostgreSQL database recreated."""
    if url is None:
        return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    name = make_url(url).database
    admin = make_engine(str(make_url(url).set(database="postgres")))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return url


async def seed(url: str, *, orders: int, drivers: int) -> tuple[list[int], list[tuple[int, str]]]:
    """Migrate; one station, `drivers` members, `orders` completed 92# post-pay orders."""
    db = Database(url)
    await migrate.upgrade_engine(db.engine)
    now = datetime.now(UTC)
    async with db.unit_of_work() as session:
        station = Station(
            code="BENCH1", name="压测站", brand="测试", address="测试路1号", province="云南省",
            city="昆明市", lat=25.04, lng=102.71, services=[],
        )  # fmt: skip
        session.add(station)
        members = [Member(openid=f"bench-invoice-{i}") for i in range(drivers)]
        session.add_all(members)
        await session.flush()
        made: list[tuple[int, str]] = []
        for i in range(orders):
            volume = 20_000 + (i * 137) % 30_000
            amount = (volume * PRICE_FEN + 500) // 1000
            member = members[i % drivers]
            order_id = f"BENCHINVOICE{i:08d}".ljust(32, "X")
            session.add(
                Order(
                    id=order_id,
                    member_id=member.id,
                    station_id=station.id,
                    kind="postpay",
                    status="completed",
                    grade_code="92",
                    unit_price_fen=PRICE_FEN,
                    volume_ml=volume,
                    list_fen=amount,
                    discount_fen=0,
                    payable_fen=amount,
                    paid_fen=amount,
                    settled_fen=amount,
                    refunded_fen=0,
                    lines=[],
                    created_at=now,
                    expires_at=now + timedelta(minutes=15),
                    paid_at=now,
                    completed_at=now,
                )
            )
            made.append((member.id, order_id))
        ids = [m.id for m in members]
    await db.dispose()
    return ids, made


async def outcomes(url: str) -> dict[str, tuple[str, datetime, datetime | None]]:
    """invoice_no -> (status, status_at, issued_at)."""
    db = Database(url)
    async with db.read_only() as session:
        rows = (
            await session.execute(
                select(Invoice.invoice_no, Invoice.status, Invoice.status_at, Invoice.issued_at)
            )
        ).all()
    await db.dispose()
    return {no: (status, at, issued) for no, status, at, issued in rows}


# -- the API process -------------------------------------------------------------------------


def platform_env(
    url: str,
    *,
    port: int,
    smtp_port: int,
    jwt: str,
    data_key: str,
    sandbox: str | None,
    broker: str | None,
) -> dict[str, str]:
    """The settings every process of the platform shares."""
    env = {
        **os.environ,
        "FORECOURT_ENV": "dev",
        "FORECOURT_DATABASE_URL": url,
        "FORECOURT_JWT_SECRET": jwt,
        "FORECOURT_DATA_KEY": data_key,
        "FORECOURT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FORECOURT_RUN_PUMP_LINK": "false",
        "FORECOURT_RUN_SPEAKER": "false",
        "FORECOURT_SMTP_HOST": "127.0.0.1",
        "FORECOURT_SMTP_PORT": str(smtp_port),
        "FORECOURT_DATABASE_POOL_SIZE": "20",
    }
    if sandbox:
        env |= {"FORECOURT_NUONUO_API_BASE": sandbox, "FORECOURT_NUONUO_APP_SECRET": SANDBOX_SECRET}
    if broker:
        env["FORECOURT_TASK_BROKER_URL"] = broker
    return env


def start_api(
    env: dict[str, str], port: int, *, core: str, log: Path, profile: Path | None = None
) -> subprocess.Popen[bytes]:
    """uvicorn with one worker, uvloop and httptools, the dispatcher and scheduler on."""
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [
        *taskset(core), sys.executable, *profiler, "-m", "uvicorn", "forecourt.app:create_app",
        "--factory", "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
        "--http", "httptools",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited: see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the API did not start")


def start_worker(env: dict[str, str], *, core: str, log: Path) -> subprocess.Popen[bytes]:
    """`forecourt worker`: outbox handlers from the Redis broker, in their own process.

    Returns once it has logged that it listens: load sent before that would measure the
    worker's start-up (about 3 s of imports here), not the service.
    """
    cmd = [*taskset(core), str(Path(sys.executable).parent / "forecourt"), "worker"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while b"worker started" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError(f"the worker did not start; see {log}")
        time.sleep(0.2)
    return proc


def start_redis(port: int, *, core: str, log: Path) -> subprocess.Popen[bytes]:
    """A throw-away Redis (no persistence) for the task broker."""
    cmd = [
        *taskset(core), "redis-server", "--port", str(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_port(port, proc, "redis")
    return proc


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Wait until something listens on the loopback port."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"{what} did not start")


def start_sandbox(port: int, *, core: str, log: Path) -> subprocess.Popen[bytes]:
    """The Nuonuo sandbox as its own server (the provider is outside our process)."""
    env = {
        **os.environ,
        "FORECOURT_NUONUO_APP_SECRET": SANDBOX_SECRET,
        "FORECOURT_ENV": "dev",
        "FORECOURT_LOG_LEVEL": "WARNING",
    }
    cmd = [
        *taskset(core), sys.executable, "-m", "uvicorn",
        "forecourt.integrations.nuonuo.sandbox:create_app", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_port(port, proc, "the sandbox")
    return proc


# -- load ------------------------------------------------------------------------------------


async def load(
    base: str, jwt: str, work: list[tuple[int, str]], *, rate: float
) -> tuple[dict[str, float], list[float], int]:
    """Send one request per order at `rate`/s; (invoice_no -> send time, response times, errors)."""
    key = jwt.encode()
    tokens = {
        m: issue_access(key, kind="member", subject_id=m, role=None, ttl=3600) for m, _ in work
    }
    sent: dict[str, float] = {}
    answers: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def one(i: int, member_id: int, order_id: str) -> None:
            nonlocal errors
            body = {"order_ids": [order_id], "title": BUYER, "email": f"fleet{i}@bench.example"}
            headers = {"Authorization": f"Bearer {tokens[member_id]}", "Idempotency-Key": f"b-{i}"}
            t0 = time.time()
            try:
                resp = await http.post("/api/v1/invoices", json=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                return
            answers.append(time.time() - t0)
            if resp.status_code != 201:
                errors += 1
                return
            sent[resp.json()["invoice_no"]] = t0

        start = time.monotonic() + 0.5
        tasks = []
        for i, (member_id, order_id) in enumerate(work):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, member_id, order_id)))
        await asyncio.gather(*tasks)
    return sent, answers, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max in seconds."""
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Seed, start the API, load it, wait for every invoice, measure."""
    workdir = Path(tempfile.mkdtemp(prefix="invoice-bench-"))
    count = int(args.rate * args.duration)
    url = await fresh_database(args.database_url, workdir)
    _, work = await seed(url, orders=count, drivers=args.drivers)
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    jwt = secrets.token_urlsafe(32)
    data_key = base64.b64encode(secrets.token_bytes(32)).decode()
    port = free_port()
    log = workdir / "api.log"
    procs: list[subprocess.Popen[bytes]] = []
    sandbox = broker = None
    workers = args.topology == "workers"
    if args.external_sandbox or workers:
        sandbox_port = free_port()
        procs.append(
            start_sandbox(sandbox_port, core=args.client_core, log=workdir / "sandbox.log")
        )
        sandbox = f"http://127.0.0.1:{sandbox_port}"
    if workers:
        redis_port = free_port()
        procs.append(start_redis(redis_port, core=args.client_core, log=workdir / "redis.log"))
        broker = f"redis://127.0.0.1:{redis_port}"
    env = platform_env(
        url,
        port=port,
        smtp_port=smtp_port,
        jwt=jwt,
        data_key=data_key,
        sandbox=sandbox,
        broker=broker,
    )
    proc = start_api(env, port, core=args.api_core, log=log, profile=args.profile)
    if workers:
        procs.append(
            start_worker(env, core=args.worker_core or args.client_core, log=workdir / "worker.log")
        )
    load_before = os.getloadavg()[0]
    try:
        cpu_before = cpu_seconds(proc.pid)
        sent, answers, errors = await load(f"http://127.0.0.1:{port}", jwt, work, rate=args.rate)
        deadline = time.monotonic() + args.wait
        while True:
            seen = await outcomes(url)
            open_ = [s for s, _, _ in seen.values() if s in ("requested", "issuing")]
            if not open_ or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # let the last e-mails go
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly (and cProfile writes)
        proc.wait(timeout=60)
        for other in procs:
            other.terminate()
            other.wait(timeout=30)
        smtp.stop()
    total = [
        seen[no][1].timestamp() - t0
        for no, t0 in sent.items()
        if seen.get(no, ("",))[0] == "issued"
    ]
    after = [
        (seen[no][1] - issued).total_seconds()
        for no in sent
        if seen.get(no, ("",))[0] == "issued" and (issued := seen[no][2]) is not None
    ]
    statuses: dict[str, int] = {}
    for status, _, _ in seen.values():
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "database": "postgresql" if args.database_url else "sqlite",
        "topology": args.topology,
        "sandbox": "own process" if sandbox else "in-process",
        "rate": args.rate,
        "requests": count,
        "http_errors": errors,
        "statuses": statuses,
        "within_target": sum(1 for t in total if t <= TARGET_S),
        "request_to_issued_s": summary(total),
        "http_response_s": summary(answers),
        "provider_issued_to_known_s": summary(after),
        "emails": mailbox.count,
        "api_cpu_ms_per_invoice": round(cpu / max(1, count) * 1000, 1),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "api_log": str(log),
    }


def main() -> None:
    """Parse arguments, run, print (and save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--drivers", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--wait", type=float, default=60.0, help="max seconds to wait at the end")
    parser.add_argument("--api-core", default="0", help="taskset core of the API ('' = none)")
    parser.add_argument("--client-core", default="1", help="taskset core of the other processes")
    parser.add_argument(
        "--worker-core",
        default=None,
        help="taskset cores of `forecourt worker` (default: client's)",
    )
    parser.add_argument(
        "--topology",
        choices=["embedded", "workers"],
        default="embedded",
        help="embedded: one API process does everything; workers: API + `forecourt worker` (Redis)",
    )
    parser.add_argument(
        "--external-sandbox",
        action="store_true",
        help="run the Nuonuo sandbox as its own server (as the real provider is)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the API into PATH")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
