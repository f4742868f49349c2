"""Pump event -> WebSocket latency through a real Mosquitto, the API's pump link and the hub.

Processes (all on loopback, one host clock):

1. ``mosquitto`` on a free port (tests/fixtures/mqtt.py's MosquittoProcess, persistence on);
2. the API: ``uvicorn forecourt.app:create_app`` with the pump link connected to that broker
   (``FORECOURT_MQTT_URL``) and a SQLite file (or PostgreSQL with ``--database-url``);
3. a WebSocket client process: one connection per station to
   ``/api/v1/stations/{id}/nozzles/live``, stamping the receive time of every ``fp`` message;
4. a publisher process: one MQTT 5 gateway client per station playing every nozzle's cycle
   (Calling -> Authorised -> Fuelling, a progress report every second for 8-20 s, Idle, the
   sale, a 2-6 s pause), stamping the wall-clock time just before each progress publish.

Each progress report of a fuelling point carries a volume no other report of that point
carries (``k * 500 + cycle``), so the client's receive stamp and the publisher's send stamp are
joined on (station, fp, volume). Latency = receive - send, both ``time.time()`` on this host.

    .venv/bin/python bench/pump_live.py [--nozzles 200] [--stations 20] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # tests.fixtures.mqtt

from forecourt import migrate  # noqa: E402
from forecourt.db import Database  # noqa: E402
from forecourt.fuel.catalog import DEFAULT_GRADES  # noqa: E402
from forecourt.fuel.models import Grade, StationPrice  # noqa: E402
from forecourt.kit.money import amount_for_volume  # noqa: E402
from forecourt.pump import protocol  # noqa: E402
from forecourt.pump.models import Dispenser, FuellingPointRow, Nozzle, Tank  # noqa: E402
from forecourt.station.models import Station  # noqa: E402

PRICE_FEN = 776  # 92#
FLOW_ML_PER_S = 500


def _now() -> datetime:
    return datetime.now(UTC)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- set-up ------------------------------------------------------------------------------------


async def seed(url: str, *, stations: int, nozzles_per_station: int) -> list[tuple[int, str]]:
    """Migrate and insert stations, each with one fp per nozzle (all 92#); (id, code) pairs."""
    db = Database(url)
    await migrate.upgrade_engine(db.engine)
    out = []
    async with db.unit_of_work() as session:
        for spec in DEFAULT_GRADES:
            session.add(
                Grade(code=spec.code, name=spec.name, kind=spec.kind, sort_order=spec.sort_order)
            )
        await session.flush()
        for s in range(1, stations + 1):
            station = Station(
                code=f"BENCH{s:04d}",
                name=f"压测站{s}",
                brand="测试",
                address=f"测试路{s}号",
                province="云南省",
                city="昆明市",
                lat=25.0 + s / 1000,
                lng=102.7,
                services=[],
            )
            session.add(station)
            await session.flush()
            session.add(
                StationPrice(
                    station_id=station.id,
                    grade_code="92",
                    price_fen=PRICE_FEN,
                    effective_at=_now() - timedelta(days=1),
                )
            )
            tank = Tank(
                station_id=station.id,
                number=1,
                grade_code="92",
                capacity_ml=60_000_000,
                low_ml=3_000_000,
                out_ml=500_000,
                book_ml=50_000_000,
                book_since=_now() - timedelta(days=1),
            )
            dispenser = Dispenser(station_id=station.id, number=1)
            session.add_all([tank, dispenser])
            await session.flush()
            for n in range(1, nozzles_per_station + 1):
                fp = FuellingPointRow(
                    station_id=station.id, dispenser_id=dispenser.id, number=n, state=10
                )
                session.add(fp)
                await session.flush()
                session.add(
                    Nozzle(
                        station_id=station.id,
                        fp_id=fp.id,
                        number=n,
                        grade_code="92",
                        tank_id=tank.id,
                    )
                )
            out.append((station.id, station.code))
    await db.dispose()
    return out


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """uvicorn (uvloop, httptools) serving the app; waits for /readyz."""
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "forecourt.app:create_app",
        "--factory",
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
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return proc
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("API did not become ready")


# -- publisher ---------------------------------------------------------------------------------


class Gateway:
    """One station's gateway: a persistent MQTT 5 client and the pump state it reports."""

    def __init__(self, mqtt_url: str, station_id: int, code: str, fps: int) -> None:
        from forecourt.pump.link.mqtt import make_client

        self.station_id = station_id
        self.code = code
        self.fps = fps
        self.client = make_client(mqtt_url, f"fc-gw-{code}", persistent=False)
        self.event_seq = int(time.time() * 1000)
        self.sent: dict[str, float] = {}
        self.published = 0

    def _seq(self) -> int:
        self.event_seq += 1
        return self.event_seq

    async def _send(self, kind: protocol.TopicKind, n: int | None, msg: Any, **kw: Any) -> None:
        await self.client.publish(
            protocol.build_topic(kind, self.code, n), protocol.encode(msg), **kw
        )
        self.published += 1

    async def state(self, fp: int, state: int, nozzle: int | None) -> None:
        """Publish a StateReport (retained)."""
        report = protocol.StateReport(event_seq=self._seq(), ts=_now(), state=state, nozzle=nozzle)
        await self._send(protocol.TopicKind.FP_STATE, fp, report, retain=True)

    async def run_nozzle(self, fp: int, stop_at: float, rng: random.Random) -> None:
        """Play one nozzle's fuelling cycles until `stop_at` (monotonic)."""
        nozzle = fp
        seq = 0
        tot_v = tot_a = 0
        cycle = 0
        await asyncio.sleep(rng.uniform(0, 6))
        while time.monotonic() < stop_at:
            cycle += 1
            await self.state(fp, 4, nozzle)
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            await self.state(fp, 5, nozzle)
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            await self.state(fp, 8, nozzle)
            started = _now()
            volume = 0
            for k in range(1, rng.randint(8, 20) + 1):
                await asyncio.sleep(1.0)
                volume = k * FLOW_ML_PER_S + cycle % FLOW_ML_PER_S
                progress = protocol.FuellingProgress(
                    event_seq=self._seq(),
                    ts=_now(),
                    nozzle=nozzle,
                    grade="92",
                    volume_ml=volume,
                    amount_fen=amount_for_volume(volume, PRICE_FEN),
                    unit_price_fen=PRICE_FEN,
                )
                self.sent[f"{self.station_id}:{fp}:{volume}"] = time.time()
                await self._send(protocol.TopicKind.FP_PROGRESS, fp, progress)
            ended = _now()
            await self.state(fp, 3, None)
            seq += 1
            amount = amount_for_volume(volume, PRICE_FEN)
            tot_v += volume
            tot_a += amount
            sale = protocol.SaleReport(
                seq=seq,
                ts=_now(),
                nozzle=nozzle,
                grade="92",
                volume_ml=volume,
                amount_fen=amount,
                unit_price_fen=PRICE_FEN,
                totalizer_volume_ml=tot_v,
                totalizer_amount_fen=tot_a,
                started_at=started,
                ended_at=ended,
            )
            await self._send(protocol.TopicKind.FP_SALE, fp, sale)
            await asyncio.sleep(rng.uniform(2.0, 6.0))

    async def run(self, duration: float, seed: int) -> None:
        """Connect, report online and Idle everywhere, then play every nozzle."""
        await self.client.connect()
        await self._send(
            protocol.TopicKind.GATEWAY_ONLINE,
            None,
            protocol.DeviceStatus(online=True, ts=_now()),
            retain=True,
        )
        for fp in range(1, self.fps + 1):
            await self.state(fp, 3, None)
        await asyncio.sleep(1.0)  # let the server mirror the Idle states
        stop_at = time.monotonic() + duration
        rng = random.Random(seed)
        await asyncio.gather(
            *(
                self.run_nozzle(fp, stop_at, random.Random(rng.random()))
                for fp in range(1, self.fps + 1)
            )
        )
        await self.client.disconnect()


async def publisher(args: argparse.Namespace) -> None:
    """The publisher process: every station's gateway; writes the send stamps."""
    stations = json.loads(args.stations)
    gateways = [Gateway(args.mqtt, sid, code, args.fps) for sid, code in stations]
    await asyncio.gather(*(g.run(args.duration, i) for i, g in enumerate(gateways)))
    sent: dict[str, float] = {}
    for g in gateways:
        sent.update(g.sent)
    data = orjson.dumps({"sent": sent, "published": sum(g.published for g in gateways)})
    await asyncio.to_thread(Path(args.out).write_bytes, data)


# -- WebSocket client --------------------------------------------------------------------------


async def client(args: argparse.Namespace) -> None:
    """The client process: one WebSocket per station; writes the receive stamps."""
    import signal

    from websockets.asyncio.client import connect

    received: dict[str, tuple[float, float]] = {}
    counts = {"messages": 0, "snapshots": 0}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def watch(station_id: int) -> None:
        async with connect(f"{args.ws}/api/v1/stations/{station_id}/nozzles/live") as ws:
            async for data in ws:
                now = time.time()
                message = orjson.loads(data)
                counts["messages"] += 1
                if message["type"] == "snapshot":
                    counts["snapshots"] += 1
                elif message["type"] == "fp" and message.get("progress"):
                    key = f"{station_id}:{message['fp']}:{message['progress']['volume_ml']}"
                    server = datetime.fromisoformat(message["sent_at"]).timestamp()
                    received.setdefault(key, (now, server))

    stations = json.loads(args.stations)
    watchers = [asyncio.create_task(watch(sid)) for sid, _ in stations]
    await stop.wait()  # the orchestrator sends SIGTERM once the publisher is done
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    data = orjson.dumps({"received": received, **counts})
    await asyncio.to_thread(Path(args.out).write_bytes, data)


# -- orchestration -----------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main_run(args: argparse.Namespace) -> None:
    """Start everything, run, join the stamps and print the figures."""
    from tests.fixtures.mqtt import MosquittoProcess, mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("mosquitto is not installed")
    if args.nozzles % args.stations:
        raise SystemExit("--nozzles must be a multiple of --stations")
    fps = args.nozzles // args.stations
    with tempfile.TemporaryDirectory(prefix="pump-live-") as tmp_name:
        tmp = Path(tmp_name)
        broker = MosquittoProcess(tmp, binary=binary)
        broker.start()
        api: subprocess.Popen[bytes] | None = None
        try:
            db_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
            stations = asyncio.run(seed(db_url, stations=args.stations, nozzles_per_station=fps))
            port = _free_port()
            env = {
                **os.environ,
                "FORECOURT_ENV": "prod",
                "FORECOURT_DATABASE_URL": db_url,
                "FORECOURT_MQTT_URL": broker.url,
                "FORECOURT_MQTT_CLIENT_PREFIX": f"bench-{secrets.token_hex(3)}",
                "FORECOURT_JWT_SECRET": secrets.token_urlsafe(32),
                "FORECOURT_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "FORECOURT_RUN_SIMULATOR": "false",
                "FORECOURT_LOG_LEVEL": "WARNING",
                "FORECOURT_ACCESS_LOG": "false",
            }
            if args.redis_url:
                env["FORECOURT_REDIS_URL"] = args.redis_url
            else:
                env.pop("FORECOURT_REDIS_URL", None)
            api = start_api(env, port, tmp / "api.log")
            common = ["--stations-json", json.dumps(stations), "--duration"]
            me = [sys.executable, str(Path(__file__).resolve())]
            watcher = subprocess.Popen(
                [
                    *me,
                    "client",
                    "--ws",
                    f"ws://127.0.0.1:{port}",
                    "--stations-json",
                    json.dumps(stations),
                    "--out",
                    str(tmp / "client.json"),
                ]
            )
            time.sleep(2.0)  # WebSockets connected and snapshots sent before traffic starts
            started = time.monotonic()
            subprocess.run(
                [
                    *me,
                    "publish",
                    "--mqtt",
                    broker.url,
                    "--fps",
                    str(fps),
                    *common,
                    str(args.duration),
                    "--out",
                    str(tmp / "publisher.json"),
                ],
                check=True,
            )
            elapsed = time.monotonic() - started
            time.sleep(2.0)  # the last messages in flight
            watcher.terminate()
            watcher.wait(timeout=30)
            sent = orjson.loads((tmp / "publisher.json").read_bytes())
            got = orjson.loads((tmp / "client.json").read_bytes())
        finally:
            if api is not None:
                api.terminate()
                api.wait(timeout=15)
            broker.stop()
        report(args, sent, got, elapsed, db_url)


def report(
    args: argparse.Namespace, sent: dict[str, Any], got: dict[str, Any], elapsed: float, db: str
) -> None:
    """Print the latency figures."""
    stamps: dict[str, float] = sent["sent"]
    received: dict[str, tuple[float, float]] = got["received"]
    matched = [(t, *received[k]) for k, t in stamps.items() if k in received]
    latencies = [(recv - t) * 1000 for t, recv, _ in matched]
    to_hub = [(server - t) * 1000 for t, _, server in matched]
    to_client = [(recv - server) * 1000 for _, recv, server in matched]
    missing = len(stamps) - len(latencies)
    rate = sent["published"] / elapsed
    print(f"nozzles {args.nozzles} on {args.stations} stations; database {db.split(':')[0]}")
    print(f"MQTT messages published {sent['published']} in {elapsed:.1f} s ({rate:.0f}/s)")
    print(
        f"WebSocket messages received {got['messages']} ({got['snapshots']} snapshots);"
        f" progress reports matched {len(latencies)} of {len(stamps)} (missing {missing})"
    )
    if latencies:
        print(
            f"pump progress -> WebSocket latency ms: p50 {_percentile(latencies, 0.5):.1f}"
            f"  p90 {_percentile(latencies, 0.9):.1f}  p99 {_percentile(latencies, 0.99):.1f}"
            f"  max {max(latencies):.1f}  mean {statistics.fmean(latencies):.1f}"
        )
        for label, part in (
            ("publish -> hub publish (sent_at)", to_hub),
            ("hub -> client", to_client),
        ):
            print(
                f"  {label}: p50 {_percentile(part, 0.5):.1f}  p99 {_percentile(part, 0.99):.1f}"
                " (sent_at has 1 ms resolution)"
            )


def main() -> None:
    """Command line: `run` (default), or the `publish` / `client` child processes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run")
    for p in (parser, run):
        p.add_argument("--nozzles", type=int, default=200)
        p.add_argument("--stations", type=int, default=20)
        p.add_argument("--duration", type=float, default=60.0)
        p.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
        p.add_argument("--redis-url", default=None, help="fan out through Redis (RedisHub)")
    pub = sub.add_parser("publish")
    pub.add_argument("--mqtt", required=True)
    pub.add_argument("--fps", type=int, required=True)
    cli = sub.add_parser("client")
    cli.add_argument("--ws", required=True)
    pub.add_argument("--duration", type=float, required=True)
    for p in (pub, cli):
        p.add_argument("--stations-json", dest="stations", required=True)
        p.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "publish":
        asyncio.run(publisher(args))
    elif args.command == "client":
        asyncio.run(client(args))
    else:
        main_run(args)


if __name__ == "__main__":
    main()
