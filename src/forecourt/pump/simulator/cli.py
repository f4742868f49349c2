"""`forecourt simulate`: simulated gateways and speakers of real stations on a real broker."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from rich.console import Console

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.pump.simulator.equipment import equipped_station_codes, load_stations
from forecourt.pump.simulator.gateway import GatewayConfig
from forecourt.pump.simulator.host import Fault, HostOptions, SimulatorHost
from forecourt.pump.simulator.links import mqtt_connector
from forecourt.pump.simulator.pump import PumpConfig

ALL_DEMO_LIMIT = 200


@dataclass(frozen=True)
class SimulateArgs:
    """Options of `forecourt simulate`."""

    stations: tuple[str, ...] = ()
    all_demo: bool = False
    mqtt_url: str | None = None
    speed: float = 1.0
    traffic: bool = True
    auto_authorise: bool = True
    faults: tuple[str, ...] = ()
    fault_after: float = 30.0
    fault_every: float | None = None
    fault_duration: float = 15.0
    seed: int | None = None


def options(args: SimulateArgs) -> HostOptions:
    """Host options from the command line (ValueError for an unknown fault)."""
    try:
        faults = tuple(Fault(f) for f in args.faults)
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault in {list(args.faults)}; use {known}") from None
    gateway = GatewayConfig(
        pump=dataclasses.replace(PumpConfig(), auto_authorise=args.auto_authorise)
    )
    return HostOptions(
        speed=args.speed,
        traffic=args.traffic,
        gateway=gateway,
        faults=faults,
        fault_after_seconds=args.fault_after,
        fault_every_seconds=args.fault_every,
        fault_duration_seconds=args.fault_duration,
        seed=args.seed,
    )


async def run_simulate(settings: Settings, args: SimulateArgs, *, console: Console) -> None:
    """Load the stations' equipment, connect every gateway and speaker, run until cancelled."""
    url = args.mqtt_url or settings.mqtt_url
    if url is None:
        raise ValueError("a broker is needed: --mqtt-url mqtt://host:1883 or FORECOURT_MQTT_URL")
    if not args.stations and not args.all_demo:
        raise ValueError("name stations with --station CODE (repeatable) or use --all-demo")
    host_options = options(args)
    db = Database(settings.database_url)
    try:
        async with db.read_only() as session:
            codes = list(args.stations)
            if args.all_demo:
                codes += await equipped_station_codes(session, limit=ALL_DEMO_LIMIT)
            try:
                stations = await load_stations(session, list(dict.fromkeys(codes)))
            except LookupError as exc:
                raise ValueError(str(exc)) from None
    finally:
        await db.dispose()
    if not stations:
        raise ValueError("no station with nozzles found (run `forecourt seed demo` first)")
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    connect = mqtt_connector(
        url,
        username=settings.mqtt_username,
        password=password,
        keepalive_seconds=settings.mqtt_keepalive_seconds,
    )
    host = SimulatorHost(stations, connect, host_options)
    nozzles = sum(len(fp.nozzles) for s in stations for fp in s.fps)
    console.print(
        f"[green]simulating {len(stations)} station(s), {nozzles} nozzles on {url} "
        f"at {args.speed:g}x; traffic {'on' if args.traffic else 'off'}[/]"
    )
    await host.start()
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await host.stop()
