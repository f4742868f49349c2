"""Process-wide objects built once at start-up: database, secrets, providers, background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.integrations import sms as sms_provider
from forecourt.integrations import wechat as wechat_provider
from forecourt.invoice import setup as invoice_setup
from forecourt.invoice.providers import Invoicing
from forecourt.kit import ratelimit, secrets
from forecourt.notify.speaker import SpeakerSender
from forecourt.payment import setup as payment_setup
from forecourt.payment.gateways import Gateways
from forecourt.pump.link.base import LinkClient, Will
from forecourt.pump.link.inprocess import InProcessBroker
from forecourt.pump.link.server import PumpLink
from forecourt.pump.live import LiveHub
from forecourt.pump.live import from_url as live_hub
from forecourt.search.service import NearbySearch
from forecourt.worker.task_runtime import TaskRuntime

if TYPE_CHECKING:
    from forecourt.pump.simulator import SimulatorHost

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a request or a task needs besides its own unit of work."""

    settings: Settings
    db: Database
    secrets: secrets.Secrets
    background: list[asyncio.Task[None]] = field(default_factory=list)
    tasks: TaskRuntime = field(init=False, repr=False)
    ratelimiter: ratelimit.RateLimiter = field(init=False, repr=False)
    wechat: wechat_provider.WeChatApi = field(init=False, repr=False)
    wechat_sandbox: wechat_provider.WeChatSandbox | None = field(init=False, repr=False)
    sms: sms_provider.SmsGateway = field(init=False, repr=False)
    sms_sandbox: sms_provider.SmsSandbox | None = field(init=False, repr=False)
    nearby: NearbySearch = field(init=False, repr=False)
    live: LiveHub = field(init=False, repr=False)
    broker: InProcessBroker | None = field(init=False, repr=False, default=None)
    pumps: PumpLink = field(init=False, repr=False)
    speaker: SpeakerSender = field(init=False, repr=False)
    simulator: SimulatorHost | None = field(init=False, repr=False, default=None)
    serial_key: bytes = field(init=False, repr=False)
    _gateways: Gateways | None = field(init=False, repr=False, default=None)
    _invoicing: Invoicing | None = field(init=False, repr=False, default=None)

    @property
    def gateways(self) -> Gateways:
        """The payment providers, built on first use (sandboxes generate their keys then)."""
        if self._gateways is None:
            self._gateways = payment_setup.build_gateways(
                self.settings, data_key=self.secrets.data_key
            )
        return self._gateways

    @property
    def invoicing(self) -> Invoicing:
        """The e-invoice provider, built on first use (a sandbox generates its secret then)."""
        if self._invoicing is None:
            self._invoicing = invoice_setup.build(self.settings, data_key=self.secrets.data_key)
        return self._invoicing

    async def start(self) -> None:
        """Start background loops (outbox dispatcher, scheduler, pump link) when enabled."""
        await self.tasks.start(
            dispatcher=self.settings.run_dispatcher, scheduler=self.settings.run_scheduler
        )
        if self.settings.run_pump_link:
            self.pumps.start()
        if self.settings.run_speaker:
            self.speaker.db = self.db  # tests swap the database after build()
            await self.speaker.start()
        if self.settings.run_simulator:
            await self.start_simulator()

    async def start_simulator(self) -> None:
        """Run simulated gateways (with traffic) and speakers for the equipped stations."""
        from forecourt.pump.simulator import HostOptions, SimulatorHost
        from forecourt.pump.simulator.equipment import equipped_station_codes, load_stations
        from forecourt.pump.simulator.links import inprocess_connector, mqtt_connector

        settings = self.settings
        async with self.db.read_only() as session:
            codes = await equipped_station_codes(session, limit=settings.simulator_max_stations)
            stations = await load_stations(session, codes)
        if settings.mqtt_url is None:
            assert self.broker is not None
            connect = inprocess_connector(self.broker)
        else:
            password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            connect = mqtt_connector(
                settings.mqtt_url, username=settings.mqtt_username, password=password
            )
        self.simulator = SimulatorHost(
            stations, connect, HostOptions(speed=settings.simulator_speed, traffic=True)
        )
        await self.simulator.start()

    def link_client(
        self, client_id: str, will: Will | None = None, *, persistent: bool = True
    ) -> LinkClient:
        """An MQTT 5 client for settings.mqtt_url, or one on the in-process broker."""
        settings = self.settings
        if settings.mqtt_url is None:
            assert self.broker is not None
            return self.broker.client(client_id, will=will)
        from forecourt.pump.link.mqtt import make_client

        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        return make_client(
            settings.mqtt_url,
            client_id,
            will=will,
            username=settings.mqtt_username,
            password=password,
            session_expiry_seconds=settings.mqtt_session_expiry_seconds,
            keepalive_seconds=settings.mqtt_keepalive_seconds,
            persistent=persistent,
        )

    async def stop(self, *, close_db: bool = True) -> None:
        """Stop background loops and close connections; every step runs even if one fails."""
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.background.clear()
        steps: list[Callable[[], Awaitable[object]]] = [
            self._stop_simulator,
            self.speaker.stop,
            self.tasks.stop,
            self.pumps.stop,
            self.nearby.close,
            self.wechat.aclose,
            self.sms.aclose,
            self.ratelimiter.close,
            self.live.close,
        ]
        if self._gateways is not None:
            steps.append(self._gateways.aclose)
        if self._invoicing is not None:
            steps.append(self._invoicing.aclose)
        if close_db:
            steps.append(self.db.dispose)
        for step in steps:
            try:
                await step()
            except Exception:
                log.exception("runtime stop step %s failed", getattr(step, "__qualname__", step))

    async def _stop_simulator(self) -> None:
        simulator, self.simulator = self.simulator, None
        if simulator is not None:
            await simulator.stop()


def build(settings: Settings) -> Runtime:
    """Build the runtime from settings (no I/O yet)."""
    db = Database(
        settings.database_url,
        replica_url=settings.database_replica_url,
        pool_size=settings.database_pool_size,
        pre_ping=settings.database_pre_ping,
        recycle_seconds=settings.database_pool_recycle_seconds,
    )
    runtime = Runtime(settings=settings, db=db, secrets=secrets.load(settings))
    runtime.tasks = TaskRuntime(runtime)
    runtime.ratelimiter = ratelimit.from_settings(settings)
    runtime.wechat, runtime.wechat_sandbox = wechat_provider.from_settings(settings)
    runtime.sms, runtime.sms_sandbox = sms_provider.from_settings(settings)
    runtime.nearby = NearbySearch(
        backend=settings.spatial_backend, refresh_seconds=settings.spatial_refresh_seconds
    )
    runtime.live = live_hub(settings.redis_url)
    runtime.broker = InProcessBroker() if settings.mqtt_url is None else None
    runtime.pumps = PumpLink(runtime)
    runtime.speaker = SpeakerSender(db=db, settings=settings, connect=runtime.link_client)
    runtime.serial_key = payment_setup.serial_key(runtime.secrets.data_key)
    payment_setup.install(runtime)
    invoice_setup.install(runtime)
    return runtime
