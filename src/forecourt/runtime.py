"""Process-wide objects built once at start-up: database, secrets, providers, background work."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.integrations import sms as sms_provider
from forecourt.integrations import wechat as wechat_provider
from forecourt.kit import ratelimit, secrets
from forecourt.search.service import NearbySearch
from forecourt.worker.task_runtime import TaskRuntime


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

    async def start(self) -> None:
        """Start background loops (outbox dispatcher, scheduler) when enabled."""
        await self.tasks.start(
            dispatcher=self.settings.run_dispatcher, scheduler=self.settings.run_scheduler
        )

    async def stop(self) -> None:
        """Stop background loops and close connections."""
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.background.clear()
        await self.tasks.stop()
        await self.wechat.aclose()
        await self.sms.aclose()
        await self.ratelimiter.close()
        await self.db.dispose()


def build(settings: Settings) -> Runtime:
    """Build the runtime from settings (no I/O yet)."""
    db = Database(
        settings.database_url,
        replica_url=settings.database_replica_url,
        pool_size=settings.database_pool_size,
    )
    runtime = Runtime(settings=settings, db=db, secrets=secrets.load(settings))
    runtime.tasks = TaskRuntime(runtime)
    runtime.ratelimiter = ratelimit.from_settings(settings)
    runtime.wechat, runtime.wechat_sandbox = wechat_provider.from_settings(settings)
    runtime.sms, runtime.sms_sandbox = sms_provider.from_settings(settings)
    runtime.nearby = NearbySearch(
        backend=settings.spatial_backend, refresh_seconds=settings.spatial_refresh_seconds
    )
    return runtime
