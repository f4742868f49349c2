"""Pay-flow benchmark on PostgreSQL: order -> prepay -> notification -> paid, against pgbench.

One flow is what a driver's phone and WeChat Pay do for a pay-at-pump order:

1. ``POST /api/v1/orders`` (prepay, 200.00 yuan preset, Idempotency-Key) -> 201;
2. ``POST /api/v1/orders/{id}/payments`` ``{"provider": "wechatpay"}`` -> 201 with the JSAPI
   ``client_params`` (the API signs a prepay request to the sandbox, verifies its signed answer
   and signs ``paySign``);
3. the payer pays: the WeChat Pay sandbox (own process) sends the AES-GCM encrypted, RSA-signed
   TRANSACTION.SUCCESS notification to ``POST /api/v1/payments/notify/wechatpay``; the API
   verifies, decrypts, posts the payment, moves the order to paid and authorises the pump
   (a command through the outbox), answering 204.

After the response the API's background loops do the rest of a flow, as in production: the
outbox dispatcher publishes the ``authorise`` command over MQTT, the station gateway acknowledges
it (the API applies the ack), and the ``order.paid`` announcement goes to the station speaker,
which acknowledges it. Gateways and speakers are a small stub process on a real Mosquitto.

Processes, all on loopback: the API (``uvicorn forecourt.app:create_app``, uvloop, httptools,
one worker, access log on, dispatcher, scheduler, pump link and speaker sender on) pinned to
core 0; the load generator, the WeChat Pay sandbox (``bench/pay_flow_peer.py``), the device stub
and Mosquitto pinned to core 1; PostgreSQL is the machine's server (not pinned).

Per step, the server-side time is the ``ms`` of the API's access log line (from the moment the
application gets the parsed request until its whole response has been handed to the server),
joined to the flow by ``X-Request-ID`` (the sandbox's notification carries one too); client-side
times are taken as well. Each flow takes a fuelling point no earlier flow used (an authorised
pump stays busy), so the pump is online and idle and the order ends in ``fuelling``, not refunded.
``FORECOURT_ENV=dev`` only because Alipay and UnionPay are not configured (in prod the API refuses
to run their in-process sandboxes); WeChat Pay is configured as in production.

A capture pass first records every SQL statement one flow makes (requests and background
work, ``bench/pay_flow_capture.py``); ``bench/pay_flow_pgbench.py`` turns them into a pgbench
script (one transaction per unit of work, fresh ids per flow) that is replayed with
``pgbench -M prepared`` against a copy of the database made after the HTTP runs.

    .venv/bin/python bench/pay_flow.py [--rates 5,10,15] [--concurrency 16] [--duration 20]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/forecourt_bench_pay]
        [--pgbench-clients 1,8,16] [--profile [--py-spy PATH]] [--nice -10]
        [--wait-quiet 120] [--keep] [--json results.json] [--topology embedded|workers]

The database named in ``--database-url`` (and ``<name>_pgbench``) is dropped and created again.
Every point is bounded in time (``--duration``, at most 60 s; a flow waits at most 30 s per
request); the whole run takes about 6 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # bench.*, tests.fixtures.mqtt

from bench import pay_flow_pgbench as pgb  # noqa: E402
from bench import pay_flow_profile as prof  # noqa: E402
from forecourt import migrate  # noqa: E402
from forecourt.db import Database  # noqa: E402
from forecourt.fuel.catalog import DEFAULT_GRADES  # noqa: E402

PRICE_FEN = 776  # 92#
PRESET_FEN = 20_000  # 200.00 yuan
FP_ID_FACTOR = 100  # fuelling point / nozzle id = station id * 100 + number
STATION_ID_BASE = 10_000
MEMBER_ID_BASE = 500_000
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/forecourt_bench_pay"
PY_SPY_RATE = 250  # samples per second
TARGET_P99_MS = 30.0  # server-side p99 of the pay path
TARGET_RATIO = 0.25  # HTTP flows/s against pgbench's
CLOSED_LOOP_MAX_RATE = 60  # flows/s the one-core API cannot exceed (fuelling points to seed)


def _now() -> datetime:
    return datetime.now(UTC)


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


NICE = [0]  # niceness of the bench's processes (--nice), set once by main_run


def taskset(core: str) -> list[str]:
    """`taskset -c core` (nothing when core is empty), under `nice -n N` when --nice is given."""
    prefix = ["nice", "-n", str(NICE[0])] if NICE[0] else []
    return prefix + (["taskset", "-c", core] if core else [])


# -- database ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pg:
    """Where PostgreSQL is and which database the bench owns."""

    url: str  # postgresql+asyncpg://user@host:port/db

    @property
    def parts(self) -> tuple[str, int, str, str]:
        """host, port, user, database."""
        u = urlsplit(self.url.replace("postgresql+asyncpg", "postgresql", 1))
        return u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres", u.path[1:]

    @property
    def name(self) -> str:
        """The database name."""
        return self.parts[3]

    def with_name(self, name: str) -> Pg:
        """The same server, another database."""
        return Pg(self.url.rsplit("/", 1)[0] + "/" + name)

    def cli(self) -> list[str]:
        """Connection options for psql and pgbench."""
        host, port, user, _ = self.parts
        return ["-h", host, "-p", str(port), "-U", user]

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL with psql (unaligned, tuples only); its output."""
        out = subprocess.run(
            ["psql", *self.cli(), "-d", database, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return out.stdout.strip()

    def recreate(self, *, template: str | None = None) -> None:
        """Drop this database (closing its sessions) and create it again."""
        name = self.name
        terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        self.psql(f"{terminate}'{name}' AND pid <> pg_backend_pid()")
        self.psql(f'DROP DATABASE IF EXISTS "{name}"')
        self.psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


async def seed(url: str, *, stations: int, fps: int, members: int) -> None:
    """Grades; stations with a price, a tank, a dispenser, an online gateway and idle fps; members.

    Ids are explicit: station 10001.., its fuelling points and nozzles station * 100 + number,
    members 500001.. (so the pgbench script can derive one from the other).
    """
    from sqlalchemy import insert, text

    from forecourt.auth.models import Member
    from forecourt.fuel.models import Grade, StationPrice
    from forecourt.pump.models import Dispenser, FuellingPointRow, Gateway, Nozzle, Tank
    from forecourt.station.models import Station

    db = Database(url)
    await migrate.upgrade_engine(db.engine)
    now = _now()
    day_ago = now - timedelta(days=1)
    sids = [STATION_ID_BASE + i for i in range(1, stations + 1)]
    async with db.unit_of_work() as session:
        await session.execute(
            insert(Grade),
            [
                {"code": g.code, "name": g.name, "kind": g.kind, "sort_order": g.sort_order}
                for g in DEFAULT_GRADES
            ],
        )
        await session.execute(
            insert(Station),
            [
                {
                    "id": sid,
                    "code": f"PAY{sid}",
                    "name": f"压测站{sid}",
                    "brand": "测试",
                    "address": f"测试路{sid}号",
                    "province": "云南省",
                    "city": "昆明市",
                    "lat": 25.0 + (sid % 1000) / 2000,
                    "lng": 102.7 + (sid % 997) / 2000,
                    "open_24h": True,
                    "services": [],
                    "status": "active",
                    "created_at": day_ago,
                    "updated_at": day_ago,
                }
                for sid in sids
            ],
        )
        await session.execute(
            insert(StationPrice),
            [
                {
                    "station_id": sid,
                    "grade_code": "92",
                    "price_fen": PRICE_FEN,
                    "effective_at": day_ago,
                    "created_at": day_ago,
                }
                for sid in sids
            ],
        )
        await session.execute(
            insert(Tank),
            [
                {
                    "id": sid,
                    "station_id": sid,
                    "number": 1,
                    "grade_code": "92",
                    "capacity_ml": 60_000_000,
                    "low_ml": 3_000_000,
                    "out_ml": 500_000,
                    "book_ml": 50_000_000,
                    "book_since": day_ago,
                    "variance_alert_ml": 200_000,
                    "active": True,
                }
                for sid in sids
            ],
        )
        await session.execute(
            insert(Dispenser), [{"id": sid, "station_id": sid, "number": 1} for sid in sids]
        )
        await session.execute(
            insert(Gateway),
            [
                {
                    "station_id": sid,
                    "online": True,
                    "last_seen_at": now,
                    "last_event_seq": 0,
                    "volume_resolution_ml": 1,
                    "price_version": 0,
                }
                for sid in sids
            ],
        )
        fp_rows = [
            {
                "id": sid * FP_ID_FACTOR + n,
                "station_id": sid,
                "dispenser_id": sid,
                "number": n,
                "state": 3,  # Idle
                "last_seq": 0,
                "missing_seqs": [],
                "last_event_seq": 0,
                "state_changed_at": day_ago,
                "updated_at": day_ago,
            }
            for sid in sids
            for n in range(1, fps + 1)
        ]
        await session.execute(insert(FuellingPointRow), fp_rows)
        await session.execute(
            insert(Nozzle),
            [
                {
                    "id": row["id"],
                    "station_id": row["station_id"],
                    "fp_id": row["id"],
                    "number": row["number"],
                    "grade_code": "92",
                    "tank_id": row["station_id"],
                    "totalizer_volume_ml": 0,
                    "totalizer_amount_fen": 0,
                    "active": True,
                }
                for row in fp_rows
            ],
        )
        await session.execute(
            insert(Member),
            [
                {
                    "id": MEMBER_ID_BASE + i,
                    "openid": f"o-bench-{MEMBER_ID_BASE + i}",
                    "status": "active",
                    "created_at": day_ago,
                }
                for i in range(1, members + 1)
            ],
        )
        # Every sequence starts far from the seeded ids and from each other, so an id the
        # database assigns during a flow is recognisable in the capture.
        await session.execute(
            text(
                "SELECT setval(c.oid::regclass, 10000000 * row_number() OVER (ORDER BY c.relname))"
                " FROM pg_class c WHERE c.relkind = 'S'"
            )
        )
    async with db.engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        await conn.execute(text("ANALYZE"))
    await db.dispose()


def orders_by_status(pg: Pg) -> dict[str, int]:
    """How many orders (and refunds) the bench database holds, by status."""
    rows = pg.psql(
        "SELECT 'order:' || status, count(*) FROM orders GROUP BY status "
        "UNION ALL SELECT 'refund:' || status, count(*) FROM refunds GROUP BY status "
        "UNION ALL SELECT 'command:' || status, count(*) FROM pump_commands GROUP BY status "
        "UNION ALL SELECT 'announcement:' || status, count(*) FROM speaker_announcements "
        "GROUP BY status",
        database=pg.name,
    )
    out: dict[str, int] = {}
    for line in rows.splitlines():
        key, _, value = line.partition("|")
        out[key] = int(value)
    return out


# -- processes ---------------------------------------------------------------------------------


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    """Poll `url` until it answers 200 (fail if the process exits)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def uvicorn(factory: str, port: int, *, core: str) -> list[str]:
    """uvicorn, one worker, uvloop and httptools, pinned with taskset."""
    return [
        *taskset(core),
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--app-dir",
        str(ROOT),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 60) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        print(f"  process {proc.pid} did not stop within {timeout_s:g} s: killed", flush=True)
        proc.kill()
        proc.wait(timeout=timeout_s)


@dataclass
class Platform:
    """The processes of one run besides the API."""

    workdir: Path
    pg: Pg
    client_core: str
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    peer_url: str = ""
    mqtt_url: str = ""
    broker: Any = None
    pool_size: int = 10

    def start(self) -> None:
        """Mosquitto, the WeChat Pay sandbox and the device stub; the API's environment."""
        from tests.fixtures.mqtt import MosquittoProcess, mosquitto_binary

        from forecourt.integrations.wechatpay import crypto
        from forecourt.integrations.wechatpay.sandbox import TestMerchant

        binary = mosquitto_binary()
        if binary is None:
            raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
        self.broker = MosquittoProcess(self.workdir, binary=binary)
        self.broker.start()
        proc = self.broker._process
        if self.client_core and proc is not None:
            os.sched_setaffinity(proc.pid, {int(c) for c in self.client_core.split(",")})
        if NICE[0] and proc is not None:
            os.setpriority(os.PRIO_PROCESS, proc.pid, NICE[0])
        self.mqtt_url = self.broker.url
        merchant = TestMerchant.generate()  # test-only keys, generated per run
        merchant_env = {
            "FORECOURT_WECHATPAY_PRIVATE_KEY": crypto.private_pem(merchant.key),
            "FORECOURT_WECHATPAY_CERT_SERIAL": merchant.serial,
            "FORECOURT_WECHATPAY_APIV3_KEY": merchant.apiv3_key,
        }
        port = free_port()
        self.peer_url = f"http://127.0.0.1:{port}"
        log = self.workdir / "peer.log"
        self.procs["peer"] = subprocess.Popen(
            uvicorn("bench.pay_flow_peer:create_app", port, core=self.client_core),
            env={**os.environ, **merchant_env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.peer_url}/bench/orders", self.procs["peer"], log)
        with urllib.request.urlopen(f"{self.peer_url}/sandbox/keys", timeout=5) as resp:  # noqa: S310
            keys = json.loads(resp.read())
        log = self.workdir / "devices.log"
        self.procs["devices"] = subprocess.Popen(
            [
                *taskset(self.client_core),
                sys.executable,
                __file__,
                "devices",
                "--mqtt",
                self.mqtt_url,
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.env = {
            **os.environ,
            **merchant_env,
            # dev only because Alipay and UnionPay are not configured: in prod the API refuses
            # to start their in-process sandboxes. WeChat Pay is configured as in production.
            "FORECOURT_ENV": "dev",
            "FORECOURT_DATABASE_URL": self.pg.url,
            "FORECOURT_JWT_SECRET": secrets.token_urlsafe(32),
            "FORECOURT_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "FORECOURT_WECHATPAY_API_BASE": self.peer_url,
            "FORECOURT_WECHATPAY_PLATFORM_PUBLIC_KEY": keys["platform_public_key"],
            "FORECOURT_WECHATPAY_PLATFORM_KEY_ID": keys["public_key_id"],
            "FORECOURT_MQTT_URL": self.mqtt_url,
            "FORECOURT_MQTT_CLIENT_PREFIX": f"paybench-{secrets.token_hex(3)}",
            "FORECOURT_RUN_DISPATCHER": "true",
            "FORECOURT_RUN_SCHEDULER": "true",
            "FORECOURT_RUN_PUMP_LINK": "true",
            "FORECOURT_RUN_SPEAKER": "true",
            "FORECOURT_RUN_SIMULATOR": "false",
            "FORECOURT_ACCESS_LOG": "true",
            "FORECOURT_LOG_JSON": "true",
            "FORECOURT_LOG_LEVEL": "INFO",
            "FORECOURT_DATABASE_POOL_SIZE": str(self.pool_size),
        }
        for name in ("FORECOURT_REDIS_URL", "FORECOURT_TASK_BROKER_URL"):
            self.env.pop(name, None)

    def api(
        self, name: str, *, core: str, extra: dict[str, str] | None = None, factory: str = ""
    ) -> tuple[subprocess.Popen[bytes], str, Path]:
        """Start an API process; (process, base URL, its log file)."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **self.env,
            "FORECOURT_PUBLIC_URL": base,
            "FORECOURT_PORT": str(port),
            **(extra or {}),
        }
        log = self.workdir / f"{name}.log"
        proc = subprocess.Popen(
            uvicorn(factory or "forecourt.app:create_app", port, core=core),
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{base}/readyz", proc, log)
        return proc, base, log

    def stop(self) -> None:
        """Stop everything this platform started."""
        for proc in self.procs.values():
            stop(proc)
        if self.broker is not None:
            self.broker.stop()


# -- device stub (child process) ----------------------------------------------------------------


async def devices(mqtt_url: str) -> None:
    """Every station's gateway and speaker: acknowledge each command and announcement at once."""
    import signal

    from forecourt.pump import protocol
    from forecourt.pump.link.mqtt import make_client
    from forecourt.pump.protocol import TopicKind

    client = make_client(mqtt_url, f"paybench-devices-{secrets.token_hex(3)}", persistent=False)
    await client.connect()
    await client.subscribe(protocol.topic_filter(TopicKind.COMMAND))
    await client.subscribe(protocol.topic_filter(TopicKind.SPEAKER_SAY))
    stop_event = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop_event.set)
    counts = {"commands": 0, "announcements": 0}

    async def serve() -> None:
        async for message in client.messages():
            topic = protocol.parse_topic(message.topic)
            data = orjson.loads(message.payload)
            reply: protocol.CommandAck | protocol.SpeakerAck
            if topic.kind is TopicKind.COMMAND:
                counts["commands"] += 1
                reply = protocol.CommandAck(command_id=data["command_id"], status="ok", ts=_now())
                kind, number = TopicKind.COMMAND_ACK, None
            else:
                counts["announcements"] += 1
                reply = protocol.SpeakerAck(
                    message_id=data["message_id"], status="played", ts=_now()
                )
                kind, number = TopicKind.SPEAKER_ACK, topic.number
            await client.publish(
                protocol.build_topic(kind, topic.station, number), protocol.encode(reply)
            )

    task = asyncio.create_task(serve())
    await stop_event.wait()
    task.cancel()
    print(json.dumps(counts), flush=True)
    await client.disconnect()


# -- load generator (child process) -------------------------------------------------------------


@dataclass
class FlowResult:
    """One flow as the client saw it."""

    label: str
    started: float  # seconds since the point started
    ok: bool
    error: str | None = None
    order_ms: float = math.nan
    pay_ms: float = math.nan
    complete_ms: float = math.nan  # the payer's call to the sandbox, notification included
    notify_ms: float = math.nan  # the sandbox's notification POST to the API
    total_ms: float = math.nan


class Driver:
    """Drivers (bearer tokens) and one-shot fuelling points; runs flows against the API."""

    def __init__(self, args: argparse.Namespace) -> None:
        import httpx

        from forecourt.auth.tokens import issue_access

        key = os.environ["FORECOURT_JWT_SECRET"].encode()
        self.tokens = [
            issue_access(key, kind="member", subject_id=m, role=None, ttl=7200)
            for m in range(args.member_first, args.member_first + args.members)
        ]
        self.pairs: list[list[int]] = json.loads(Path(args.pairs).read_text())[args.pairs_from :]
        self.used = 0
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
        self.api = httpx.AsyncClient(base_url=args.api, limits=limits, timeout=30, trust_env=False)
        self.peer = httpx.AsyncClient(
            base_url=args.peer, limits=limits, timeout=30, trust_env=False
        )
        self.rng = random.Random(args.seed)

    def take(self) -> list[int] | None:
        """The next unused (station id, nozzle), or None when all are used."""
        if self.used >= len(self.pairs):
            return None
        pair = self.pairs[self.used]
        self.used += 1
        return pair

    async def flow(self, label: str, pair: list[int], t0: float) -> FlowResult:
        """Order -> prepay -> the payer pays (notification) for one nozzle."""
        started = time.perf_counter()
        result = FlowResult(label=label, started=started - t0, ok=False)
        auth = {"Authorization": f"Bearer {self.rng.choice(self.tokens)}"}
        try:
            resp = await self.api.post(
                "/api/v1/orders",
                json={
                    "kind": "prepay",
                    "station_id": pair[0],
                    "nozzle": pair[1],
                    "amount_fen": PRESET_FEN,
                },
                headers={**auth, "X-Request-ID": f"{label}-o", "Idempotency-Key": uuid4()},
            )
            t1 = time.perf_counter()
            result.order_ms = (t1 - started) * 1000
            if resp.status_code != 201:
                result.error = f"order {resp.status_code} {resp.text[:200]}"
                return result
            order_id = resp.json()["id"]
            resp = await self.api.post(
                f"/api/v1/orders/{order_id}/payments",
                json={"provider": "wechatpay"},
                headers={**auth, "X-Request-ID": f"{label}-p", "Idempotency-Key": uuid4()},
            )
            t2 = time.perf_counter()
            result.pay_ms = (t2 - t1) * 1000
            if resp.status_code != 201:
                result.error = f"payment {resp.status_code} {resp.text[:200]}"
                return result
            payment = resp.json()
            if not payment["client_params"].get("paySign"):
                result.error = "payment without paySign"
                return result
            resp = await self.peer.post(
                "/bench/complete", json={"out_trade_no": payment["id"], "label": label}
            )
            t3 = time.perf_counter()
            result.complete_ms = (t3 - t2) * 1000
            result.total_ms = (t3 - started) * 1000
            answer = resp.json()
            if resp.status_code != 200 or answer.get("status") != 204:
                result.error = f"notification {resp.status_code} {answer}"
                return result
            result.notify_ms = float(answer["notify_ms"])
            result.ok = True
        except Exception as exc:  # counted, not fatal: the point goes on
            result.error = f"{type(exc).__name__}: {exc}"
        return result

    async def fixed_rate(
        self, name: str, rate: float, duration: float, max_in_flight: int
    ) -> dict[str, Any]:
        """Open loop: flow i starts at start + i / rate whatever the API does (bounded)."""
        results: list[FlowResult] = []
        tasks: set[asyncio.Task[None]] = set()
        lags: list[float] = []
        dropped = 0
        t0 = time.perf_counter()
        i = 0
        while True:
            due = t0 + i / rate
            if due - t0 >= duration:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(max(0.0, time.perf_counter() - due) * 1000)
            i += 1
            pair = self.take()
            if pair is None:
                break
            if len(tasks) >= max_in_flight:
                dropped += 1
                continue

            async def one(label: str, pair: list[int]) -> None:
                results.append(await self.flow(label, pair, t0))

            task = asyncio.create_task(one(f"{name}-{i}", pair))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        elapsed = time.perf_counter() - t0
        return {
            "mode": "fixed",
            "rate": rate,
            "elapsed_s": elapsed,
            "offered": i,
            "dropped": dropped,
            "lag_ms_p99": percentile(lags, 99),
            "lag_ms_max": max(lags, default=0.0),
            "flows": [r.__dict__ for r in results],
        }

    async def closed_loop(
        self,
        name: str,
        concurrency: int,
        duration: float,
        pause: float = 0.0,
        max_flows: int = 10**9,
    ) -> dict[str, Any]:
        """`concurrency` drivers, each starting its next flow when the last one ended."""
        results: list[FlowResult] = []
        t0 = time.perf_counter()
        counter = iter(range(1, max_flows + 1))

        async def worker() -> None:
            while time.perf_counter() - t0 < duration:
                n = next(counter, None)
                if n is None:
                    return
                pair = self.take()
                if pair is None:
                    return
                results.append(await self.flow(f"{name}-{n}", pair, t0))
                if pause:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {
            "mode": "closed",
            "concurrency": concurrency,
            "elapsed_s": time.perf_counter() - t0,
            "flows": [r.__dict__ for r in results],
        }

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.api.aclose()
        await self.peer.aclose()


def uuid4() -> str:
    """A random Idempotency-Key."""
    return uuid.uuid4().hex


def cpu_snapshot(pids: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each process of each named group; "machine" is pid 0 (all CPUs)."""
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[str, dict[int, float]] = {}
    for name, group in pids.items():
        seconds: dict[int, float] = {}
        for pid in group:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # utime + stime; for "pg_exited" (the postmaster) the reaped backends' cutime + cstime
            at = 13 if name == "pg_exited" else 11
            seconds[pid] = (int(fields[at]) + int(fields[at + 1])) / hz
        out[name] = seconds
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(cpu[i]) for i in (0, 1, 2, 5, 6))  # user, nice, system, irq, softirq
    out["machine"] = {0: busy / hz}
    return out


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds per group between two snapshots (a process started since counts from 0)."""
    return {
        name: sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in group.items())
        for name, group in after.items()
    }


def process_groups(named: dict[str, int], database: str) -> dict[str, list[int]]:
    """The named pids, the PostgreSQL backends of `database`, the server's WAL writer,
    checkpointer and background writer (shared with whatever else the server does) and, as
    "pg_exited", the postmaster, whose children's time counts backends that ended (a pool's
    overflow connections)."""
    groups = {name: [pid] for name, pid in named.items()}
    backends, aux, postmaster = [], [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f" {database} " in cmdline:
            backends.append(int(entry.name))
        elif " -D " in cmdline:
            postmaster.append(int(entry.name))
        elif any(k in cmdline for k in ("walwriter", "checkpointer", "background writer")):
            aux.append(int(entry.name))
    groups["postgres"] = backends
    groups["pg_aux"] = aux
    groups["pg_exited"] = postmaster
    return groups


async def drive(args: argparse.Namespace) -> None:
    """The load-generator process: run the planned points, write the results as JSON."""
    driver = Driver(args)
    plan = json.loads(args.plan)
    named = {k: int(v) for k, v in json.loads(args.pids).items()}
    named["loadgen"] = os.getpid()
    out: list[dict[str, Any]] = []
    try:
        for point in plan:
            before = cpu_snapshot(process_groups(named, args.database))
            load = os.getloadavg()[0]
            wall0 = time.time()
            if point["mode"] == "idle":  # no flows: what the background loops cost alone
                t0 = time.perf_counter()
                await asyncio.sleep(point["duration"])
                result = {"mode": "idle", "elapsed_s": time.perf_counter() - t0, "flows": []}
            elif point["mode"] == "fixed":
                result = await driver.fixed_rate(
                    point["name"], point["rate"], point["duration"], point.get("max_in_flight", 400)
                )
            else:
                result = await driver.closed_loop(
                    point["name"],
                    point["concurrency"],
                    point["duration"],
                    point.get("pause", 0.0),
                    point.get("max_flows", 10**9),
                )
            used = cpu_used(before, cpu_snapshot(process_groups(named, args.database)))
            # Whatever else ran on the machine meanwhile (the bench's own processes excluded).
            used["others"] = used["machine"] - sum(v for k, v in used.items() if k != "machine")
            result["cpu_s"] = used
            result["load_before"] = load
            result["name"] = point["name"]
            result["wall"] = [wall0, time.time()]
            result["measure"] = point.get("measure", True)
            out.append(result)
            await asyncio.sleep(point.get("settle", 1.0))
    finally:
        await driver.aclose()
    data = orjson.dumps({"points": out, "pairs_used": driver.used})
    await asyncio.to_thread(Path(args.out).write_bytes, data)


# -- analysis ----------------------------------------------------------------------------------


def access_log(path: Path) -> dict[str, float]:
    """request id -> server-side ms, from the API's JSON access log lines."""
    out: dict[str, float] = {}
    with path.open("rb") as fh:
        for raw in fh:
            if b'"forecourt.access"' not in raw:
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            rid = line.get("request_id")
            if rid and "ms" in line:
                out[rid] = float(line["ms"])
    return out


def stats(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p99, max and mean."""
    clean = [v for v in values if not math.isnan(v)]
    return {
        "n": len(clean),
        "p50": percentile(clean, 50),
        "p90": percentile(clean, 90),
        "p99": percentile(clean, 99),
        "max": max(clean, default=math.nan),
        "mean": statistics.fmean(clean) if clean else math.nan,
    }


def summarise(
    point: dict[str, Any], server_ms: dict[str, float], idle: dict[str, float] | None = None
) -> dict[str, Any]:
    """Flows per second, client- and server-side times per step, CPU per flow."""
    flows = point["flows"]
    ok = [f for f in flows if f["ok"]]
    errors: dict[str, int] = {}
    for f in flows:
        if not f["ok"]:
            key = (f["error"] or "?")[:80]
            errors[key] = errors.get(key, 0) + 1
    server: dict[str, list[float]] = {"order": [], "pay": [], "notify": [], "flow": []}
    missing = 0
    for f in ok:
        parts = [server_ms.get(f"{f['label']}-{s}") for s in ("o", "p", "n")]
        if any(p is None for p in parts):
            missing += 1
            continue
        o, p, n = (float(x) for x in parts if x is not None)
        server["order"].append(o)
        server["pay"].append(p)
        server["notify"].append(n)
        server["flow"].append(o + p + n)
    # Throughput over the window in which flows were started and finished.
    if ok:
        first = min(f["started"] for f in ok)
        last = max(f["started"] + f["total_ms"] / 1000 for f in ok)
        window = max(1e-9, last - first)
    else:
        window = point["elapsed_s"]
    cpu = point["cpu_s"]
    n_ok = max(1, len(ok))
    return {
        "name": point["name"],
        "mode": point["mode"],
        "rate": point.get("rate"),
        "concurrency": point.get("concurrency"),
        "flows_ok": len(ok),
        "flows_failed": len(flows) - len(ok),
        "errors": errors,
        "dropped": point.get("dropped", 0),
        "lag_ms_max": point.get("lag_ms_max"),
        "flows_per_s": len(ok) / window,
        "window_s": window,
        "server_ms": {k: stats(v) for k, v in server.items()},
        "server_missing": missing,
        "client_ms": {
            "order": stats([f["order_ms"] for f in ok]),
            "pay": stats([f["pay_ms"] for f in ok]),
            "payer+notify": stats([f["complete_ms"] for f in ok]),
            "notify (seen by sandbox)": stats([f["notify_ms"] for f in ok]),
            "flow": stats([f["total_ms"] for f in ok]),
        },
        "load_before": point.get("load_before"),
        "cpu_ms_per_flow": {k: v / n_ok * 1000 for k, v in cpu.items()},
        # Less what the background loops use with no flows at all (idle point).
        "cpu_ms_per_flow_net": {
            k: (cpu[k] - (idle or {}).get(k, 0.0) * point["elapsed_s"]) / n_ok * 1000
            for k in ("api", "postgres")
            if k in cpu
        },
        "cpu_utilisation": {k: v / point["elapsed_s"] for k, v in cpu.items()},
    }


def server_cpu(http: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU per flow of the server side (API, worker, PostgreSQL) at the best closed-loop point
    against pgbench's whole-machine CPU per flow at its best client count."""
    closed = [p for p in http if p["mode"] != "fixed" and p["flows_ok"]]
    if not closed or not runs:
        return {}
    point = max(closed, key=lambda p: p["flows_per_s"])
    parts = {
        k: v
        for k, v in point["cpu_ms_per_flow"].items()
        if k in ("api", "worker", "postgres", "pg_exited", "redis")
    }
    best = max(runs, key=lambda r: r["tps"])
    pgbench_ms = best["machine_busy"] * (os.cpu_count() or 1) * 1000 / best["tps"]
    http_ms = sum(parts.values())
    return {
        "http_ms": http_ms,
        "http_parts": ", ".join(f"{k} {v:.1f}" for k, v in parts.items()),
        "pgbench_ms": pgbench_ms,
        "ratio": pgbench_ms / http_ms,
    }


def print_point(s: dict[str, Any]) -> None:
    """One point's figures."""
    what = (
        f"fixed {s['rate']:g} flows/s"
        if s["mode"] == "fixed"
        else f"closed, {s['concurrency']} drivers"
    )
    print(
        f"  {s['name']:<8} {what}: {s['flows_per_s']:.1f} flows/s ({s['flows_ok']} ok, "
        f"{s['flows_failed']} failed, {s['dropped']} not started; schedule lag max "
        f"{(s['lag_ms_max'] or 0):.0f} ms; 1-min load average before {s['load_before']:.2f})",
        flush=True,
    )
    for step in ("order", "pay", "notify", "flow"):
        v = s["server_ms"][step]
        print(
            f"    server {step:<7} p50 {v['p50']:7.2f}  p90 {v['p90']:7.2f}  p99 {v['p99']:7.2f}"
            f"  max {v['max']:7.2f} ms"
        )
    c = s["client_ms"]["flow"]
    print(f"    client flow    p50 {c['p50']:7.2f}  p90 {c['p90']:7.2f}  p99 {c['p99']:7.2f} ms")
    cpu = s["cpu_ms_per_flow"]
    util = s["cpu_utilisation"]
    print(
        "    CPU ms/flow (share of one core): "
        + ", ".join(f"{k} {cpu[k]:.2f} ({util[k]:.0%})" for k in cpu if k in util)
    )
    net = s["cpu_ms_per_flow_net"]
    print("    CPU ms/flow less idle: " + ", ".join(f"{k} {v:.2f}" for k, v in net.items()))
    if s["errors"]:
        print(f"    errors: {s['errors']}")


def start_workers(platform: Platform, args: argparse.Namespace) -> dict[str, str]:
    """Redis and `forecourt worker` for the workers topology; the API's extra environment.

    The API keeps the outbox dispatcher (woken by its own commits) and the scheduler; the
    worker takes the handlers from Redis and runs the pump link and the speaker sender.
    """
    from bench.invoice_issue import start_redis, start_worker

    core = args.worker_core or args.client_core
    port = free_port()
    platform.procs["redis"] = start_redis(port, core=core, log=platform.workdir / "redis.log")
    broker = {"FORECOURT_TASK_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    worker_env = {**platform.env, **broker, "FORECOURT_RUN_DISPATCHER": "false"}
    platform.procs["worker"] = start_worker(
        worker_env, core=core, log=platform.workdir / "worker.log"
    )
    return {**broker, "FORECOURT_RUN_PUMP_LINK": "false", "FORECOURT_RUN_SPEAKER": "false"}


def run_drive(
    platform: Platform,
    *,
    api: str,
    api_pid: int,
    plan: list[dict[str, Any]],
    pairs: Path,
    pairs_from: int,
    members: int,
    core: str,
    seed: int,
) -> dict[str, Any]:
    """Run the load generator on `core` with `plan`; its JSON output."""
    out = platform.workdir / f"drive-{secrets.token_hex(3)}.json"
    pids = {"api": api_pid, **{k: p.pid for k, p in platform.procs.items()}}
    if platform.broker is not None and platform.broker._process is not None:
        pids["mosquitto"] = platform.broker._process.pid
    budget = sum(p["duration"] + p.get("settle", 1.0) + 60 for p in plan) + 60
    subprocess.run(
        [
            *taskset(core),
            sys.executable,
            __file__,
            "drive",
            "--api",
            api,
            "--peer",
            platform.peer_url,
            "--plan",
            json.dumps(plan),
            "--pairs",
            str(pairs),
            "--pairs-from",
            str(pairs_from),
            "--member-first",
            str(MEMBER_ID_BASE + 1),
            "--members",
            str(members),
            "--pids",
            json.dumps(pids),
            "--database",
            platform.pg.name,
            "--seed",
            str(seed),
            "--out",
            str(out),
        ],
        env=platform.env,
        check=True,
        timeout=budget,
    )
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


# -- orchestration -----------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, and whether the working tree had changes on top of it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + {len(changed)} changed files" if changed else head


def machine_busy(seconds: float = 3.0) -> float:
    """Share of all CPUs busy over `seconds` (0..1)."""
    before = cpu_snapshot({})["machine"][0]
    time.sleep(seconds)
    return (cpu_snapshot({})["machine"][0] - before) / seconds / (os.cpu_count() or 1)


def wait_quiet(limit_s: float, threshold: float = 0.15) -> None:
    """Wait (at most `limit_s`) until the machine is nearly idle three checks in a row."""
    deadline = time.monotonic() + limit_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        busy = machine_busy()
        quiet = quiet + 1 if busy < threshold else 0
        if quiet == 0:
            print(f"  machine {busy:.0%} busy with other work; waiting", flush=True)
    if quiet < 3:
        print("  the machine did not become quiet; measuring anyway", flush=True)


def main_run(args: argparse.Namespace) -> None:
    """Set up, capture, measure, profile, replay with pgbench; print and keep the figures."""
    for tool in ("pgbench", "psql", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found")
    duration = max(1.0, min(60.0, args.duration))
    NICE[0] = args.nice
    pg = Pg(args.database_url)
    pgbench_db = pg.with_name(pg.name + "_pgbench")
    rates = [float(r) for r in args.rates.split(",") if r]
    warm_flows = args.warmup_rate * args.warmup
    needed = int(
        1.1
        * (
            args.capture_flows
            + warm_flows
            + sum(rates) * duration
            + CLOSED_LOOP_MAX_RATE * duration  # the closed loop: at most this many per second
            + (warm_flows + args.profile_rate * duration if args.profile else 0)
        )
        + 100
    )
    fps = args.fps_per_station
    stations = max(args.stations, math.ceil(needed / fps))
    report: dict[str, Any] = {
        "started": _now().isoformat(timespec="seconds"),
        "stations": stations,
        "fps_per_station": fps,
        "members": args.members,
        "duration_s": duration,
        "server_core": args.server_core,
        "client_core": args.client_core,
        "nice": args.nice,
        "access_log": True,
        "topology": args.topology,
        "code": code_version(),
    }
    print(f"code: {report['code']}", flush=True)
    print(
        f"seeding {pg.name}: {stations} stations x {fps} idle fuelling points "
        f"(online gateways), {args.members} members",
        flush=True,
    )
    t = time.perf_counter()
    pg.recreate()
    asyncio.run(seed(pg.url, stations=stations, fps=fps, members=args.members))
    print(f"  done in {time.perf_counter() - t:.1f} s", flush=True)
    rng = random.Random(args.seed)
    pairs = [[STATION_ID_BASE + s, n] for s in range(1, stations + 1) for n in range(1, fps + 1)]
    rng.shuffle(pairs)
    workdir = Path(tempfile.mkdtemp(prefix="pay-flow-"))
    pairs_file = workdir / "pairs.json"
    pairs_file.write_text(json.dumps(pairs))
    used = 0
    platform = Platform(
        workdir=workdir, pg=pg, client_core=args.client_core, pool_size=args.pool_size
    )
    try:
        platform.start()
        # 1. Capture: a few flows one at a time, every statement recorded.
        capture = workdir / "capture.jsonl"
        proc, base, log = platform.api(
            "api-capture",
            core=args.server_core,
            extra={"PAY_FLOW_CAPTURE": str(capture)},
            factory="bench.pay_flow_capture:create_app",
        )
        try:
            time.sleep(2.0)
            capture_mark = capture.stat().st_size
            plan = [
                {
                    "name": "cap",
                    "mode": "closed",
                    "concurrency": 1,
                    "duration": 60.0,
                    "max_flows": args.capture_flows,
                    "pause": 1.5,
                    "settle": 12.0,  # each command's resend check is due 10 s after it
                }
            ]
            result = run_drive(
                platform,
                api=base,
                api_pid=proc.pid,
                plan=plan,
                pairs=pairs_file,
                pairs_from=used,
                members=args.members,
                core=args.client_core,
                seed=args.seed,
            )
            used += result["pairs_used"]
        finally:
            stop(proc)
        cap = summarise(result["points"][0], access_log(log))
        if cap["flows_ok"] == 0 or cap["flows_failed"]:
            raise RuntimeError(f"capture pass failed: {cap['errors']} (see {log})")
        captured = pgb.load_capture(capture, skip_bytes=capture_mark)
        flows = pgb.split_flows(captured)
        print(
            f"capture: {len(flows)} flows recorded; statements per flow: "
            + ", ".join(str(f.statement_count) for f in flows),
            flush=True,
        )
        script, described = pgb.build_script(
            flows,
            fp_factor=FP_ID_FACTOR,
            stations=(STATION_ID_BASE + 1, STATION_ID_BASE + stations),
            members=(MEMBER_ID_BASE + 1, MEMBER_ID_BASE + args.members),
        )
        script_path = workdir / "pay_flow.pgbench.sql"
        script_path.write_text(script)
        report["flow_sql"] = described
        print(pgb.describe_text(described), flush=True)

        # 2. The measured runs.
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        extra = start_workers(platform, args) if args.topology == "workers" else {}
        proc, base, log = platform.api("api", core=args.server_core, extra=extra)
        points: list[dict[str, Any]] = []
        try:
            time.sleep(2.0)
            plan = [
                {
                    "name": "warm",
                    "mode": "fixed",
                    "rate": args.warmup_rate,
                    "duration": args.warmup,
                    "measure": False,
                },
                {"name": "idle", "mode": "idle", "duration": 10.0, "measure": False, "settle": 0},
                *(
                    {
                        "name": f"r{r:g}",
                        "mode": "fixed",
                        "rate": r,
                        "duration": duration,
                        "settle": 3.0,
                    }
                    for r in rates
                ),
                {
                    "name": f"c{args.concurrency}",
                    "mode": "closed",
                    "concurrency": args.concurrency,
                    "duration": duration,
                    "settle": 3.0,
                },
            ]
            print(
                f"HTTP ({args.topology}): API on core {args.server_core}, load generator, "
                f"sandbox, devices and broker on core {args.client_core}"
                + (
                    f", worker and Redis on core {args.worker_core or args.client_core}"
                    if args.topology == "workers"
                    else ""
                )
                + f"; {duration:g} s per point",
                flush=True,
            )
            result = run_drive(
                platform,
                api=base,
                api_pid=proc.pid,
                plan=plan,
                pairs=pairs_file,
                pairs_from=used,
                members=args.members,
                core=args.client_core,
                seed=args.seed + 1,
            )
            used += result["pairs_used"]
            time.sleep(2.0)
        finally:
            stop(proc)
            for name in ("worker", "redis"):  # the profile pass runs embedded
                stop(platform.procs.pop(name, None))
        server_ms = access_log(log)
        idle = next(pt for pt in result["points"] if pt["mode"] == "idle")
        idle_per_s = {k: v / idle["elapsed_s"] for k, v in idle["cpu_s"].items()}
        report["idle_cpu_per_s"] = idle_per_s
        print(
            "  idle (no flows, background loops only), CPU share: "
            + ", ".join(f"{k} {v:.1%}" for k, v in idle_per_s.items() if k != "machine"),
            flush=True,
        )
        for point in result["points"]:
            if not point["measure"]:
                continue
            s = summarise(point, server_ms, idle_per_s)
            points.append(s)
            print_point(s)
        report["http"] = points
        report["database_after_http"] = orders_by_status(pg)
        print(f"  database after the runs: {report['database_after_http']}", flush=True)

        # 3. Optional profile pass: where the API's CPU goes at a fixed rate.
        if args.profile:
            report["profile"] = profile_pass(
                args, platform, pairs_file, used, duration, workdir, seed=args.seed + 2
            )
    finally:
        platform.stop()

    # 4. pgbench on a copy of the database as the HTTP runs left it.
    pgbench_db.recreate(template=pg.name)
    pg.psql("ANALYZE", database=pgbench_db.name)
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    print(
        f"pgbench: {script_path.name} ({described['transactions']} transactions, "
        f"{described['statements']} statements per flow) on {pgbench_db.name}, "
        f"-M prepared -j 2, {duration:g} s per client count",
        flush=True,
    )
    bench_runs = []
    for clients in [int(c) for c in args.pgbench_clients.split(",") if c]:
        load = os.getloadavg()[0]
        before = cpu_snapshot({})["machine"][0]
        run = pgb.run_pgbench(
            pgbench_db.cli(),
            pgbench_db.name,
            script_path,
            clients=clients,
            seconds=duration,
            prefix=taskset(""),
        )
        busy = (cpu_snapshot({})["machine"][0] - before) / duration / (os.cpu_count() or 1)
        run["machine_busy"] = busy
        run["load_before"] = load
        bench_runs.append(run)
        print(
            f"  -c {clients:>2}: {run['tps']:.0f} flows/s, latency avg {run['latency_ms']:.2f} ms"
            f" ({run['failed']} failed; machine {busy:.0%} busy, 1-min load average before "
            f"{load:.2f})",
            flush=True,
        )
    report["pgbench"] = bench_runs
    best = max((r["tps"] for r in bench_runs), default=math.nan)
    # Points where (nearly) every flow went through; a few failures under overload are allowed.
    clean = [p for p in report["http"] if p["flows_failed"] <= 0.01 * (p["flows_ok"] + 1)]
    http_best = max((p["flows_per_s"] for p in clean), default=math.nan)
    report["ratio"] = http_best / best
    print("targets:")
    for p in report["http"]:
        if p["mode"] != "fixed":
            continue
        flow, steps = (
            p["server_ms"]["flow"],
            [p["server_ms"][k] for k in ("order", "pay", "notify")],
        )
        print(
            f"  {p['name']:<6} server-side p99: pay path (3 requests) {flow['p99']:.1f} ms, "
            f"worst step {max(v['p99'] for v in steps):.1f} ms: "
            + ("met" if flow["p99"] <= TARGET_P99_MS else "NOT met")
            + f" (target <= {TARGET_P99_MS:g} ms)"
        )
    ratio_ok = http_best / best >= TARGET_RATIO
    print(
        f"  HTTP best {http_best:.1f} flows/s (one API core) vs pgbench best {best:.0f} flows/s: "
        f"{http_best / best:.1%} of the database's limit: "
        + ("met" if ratio_ok else "NOT met")
        + f" (target >= {TARGET_RATIO:.0%})",
        flush=True,
    )
    report["server_cpu"] = server_cpu(report["http"], bench_runs)
    if report["server_cpu"]:
        c = report["server_cpu"]
        print(
            f"  (for scaling, not the target) server CPU per flow at saturation: HTTP path "
            f"{c['http_ms']:.1f} ms ({c['http_parts']}) vs pgbench {c['pgbench_ms']:.1f} ms "
            f"(pgbench and PostgreSQL, whole machine): {c['ratio']:.1%}",
            flush=True,
        )
    if args.keep:
        print(f"logs and files kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


def profile_pass(
    args: argparse.Namespace,
    platform: Platform,
    pairs: Path,
    used: int,
    duration: float,
    workdir: Path,
    *,
    seed: int,
) -> dict[str, Any]:
    """A warm-up, then one fixed-rate point under py-spy (outside the API) or cProfile (inside)."""
    stats_path = workdir / ("api.pyspy" if args.py_spy else "api.prof")
    extra, factory = {}, ""
    if not args.py_spy:
        extra = {"PAY_FLOW_PROFILE": str(stats_path), "PAY_FLOW_PROFILE_FROM": "prof-"}
        factory = "bench.pay_flow_capture:create_app"
    proc, base, _log = platform.api(
        "api-profile", core=args.server_core, extra=extra, factory=factory
    )
    spy: subprocess.Popen[bytes] | None = None
    warm = {"name": "warm", "mode": "fixed", "rate": args.warmup_rate, "duration": args.warmup}
    point = {"name": "prof", "mode": "fixed", "rate": args.profile_rate, "duration": duration}

    def drive_once(plan: list[dict[str, Any]], start: int) -> dict[str, Any]:
        return run_drive(
            platform,
            api=base,
            api_pid=proc.pid,
            plan=plan,
            pairs=pairs,
            pairs_from=start,
            members=args.members,
            core=args.client_core,
            seed=seed + start,
        )

    try:
        time.sleep(2.0)
        result = drive_once([warm], used)
        used += result["pairs_used"]
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    *taskset(args.client_core),
                    args.py_spy,
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--nonblocking",
                    "--function",
                    "--format",
                    "raw",
                    "--rate",
                    str(PY_SPY_RATE),
                    "--duration",
                    str(int(duration)),
                    "--output",
                    str(stats_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
        result = drive_once([point], used)
        if spy is not None:
            spy.wait(timeout=duration + 30)
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        stop(proc)
    flows = sum(1 for f in result["points"][0]["flows"] if f["ok"])
    if not stats_path.exists():
        print("  no profile was written", flush=True)
        return {}
    what = f"{flows} flows at {args.profile_rate:g} flows/s"
    if args.py_spy:
        summary = prof.pyspy_summary(stats_path, flows, PY_SPY_RATE)
    else:
        summary = prof.cprofile_summary(stats_path, flows, ROOT)
    prof.print_summary(summary, what)
    return summary


def main() -> None:
    """Command line: `run` (default), or the `drive` / `devices` child processes."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    for p in (parser, run):
        p.add_argument("--database-url", default=DEFAULT_DB, help="dropped and created again")
        p.add_argument("--rates", default="5,10,15", help="fixed offered rates, flows/s")
        p.add_argument("--concurrency", type=int, default=16, help="drivers of the closed loop")
        p.add_argument("--duration", type=float, default=20.0, help="seconds per point (max 60)")
        p.add_argument("--warmup", type=float, default=5.0)
        p.add_argument("--warmup-rate", type=float, default=10.0)
        p.add_argument("--capture-flows", type=int, default=6)
        p.add_argument("--stations", type=int, default=400)
        p.add_argument("--fps-per-station", type=int, default=12)
        p.add_argument("--members", type=int, default=5000)
        p.add_argument("--pgbench-clients", default="1,8,16")
        p.add_argument("--server-core", default="0")
        p.add_argument("--client-core", default="1")
        p.add_argument("--profile", action="store_true", help="also a cProfile pass")
        p.add_argument("--profile-rate", type=float, default=10.0)
        p.add_argument("--py-spy", default=None, help="py-spy binary: sample instead of cProfile")
        p.add_argument("--seed", type=int, default=7)
        p.add_argument(
            "--pool-size", type=int, default=10, help="API PostgreSQL pool (+ as many overflow)"
        )
        p.add_argument("--keep", action="store_true", help="keep the work directory")
        p.add_argument(
            "--wait-quiet", type=float, default=0, help="wait up to N s for an idle machine"
        )
        p.add_argument(
            "--nice",
            type=int,
            default=0,
            help="run the bench's processes (API, load generator, peers, pgbench) at this "
            "niceness, e.g. -10 on a machine shared with other work (needs root)",
        )
        p.add_argument("--json", type=Path, help="also write the results here")
        p.add_argument(
            "--topology",
            choices=["embedded", "workers"],
            default="embedded",
            help="HTTP points: embedded (one API process does everything) or workers (the API "
            "serves requests and dispatches; `forecourt worker` on a Redis broker runs the "
            "handlers, pump link and speaker sender)",
        )
        p.add_argument("--worker-core", default="", help="taskset cores of the worker (client's)")
    drv = sub.add_parser("drive")
    drv.add_argument("--api", required=True)
    drv.add_argument("--peer", required=True)
    drv.add_argument("--plan", required=True)
    drv.add_argument("--pairs", required=True)
    drv.add_argument("--pairs-from", type=int, default=0)
    drv.add_argument("--member-first", type=int, required=True)
    drv.add_argument("--members", type=int, required=True)
    drv.add_argument("--pids", default="{}")
    drv.add_argument("--database", default="")
    drv.add_argument("--seed", type=int, default=7)
    drv.add_argument("--out", required=True)
    dev = sub.add_parser("devices")
    dev.add_argument("--mqtt", required=True)
    args = parser.parse_args()
    if args.command in ("drive", "devices"):
        import uvloop

        coro = drive(args) if args.command == "drive" else devices(args.mqtt)
        uvloop.run(coro)
    else:
        main_run(args)


if __name__ == "__main__":
    main()
