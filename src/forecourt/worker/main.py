"""Entry points of `forecourt worker` and `forecourt scheduler`."""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import start_http_server

from forecourt import logs
from forecourt.config import Settings
from forecourt.runtime import build

log = logging.getLogger("forecourt.worker")


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_worker(
    settings: Settings, *, concurrency: int = 50, metrics_port: int | None = None
) -> None:
    """Run tasks from the broker (and the outbox dispatcher) until SIGINT/SIGTERM."""
    if not settings.task_broker_url:
        raise SystemExit("forecourt worker needs FORECOURT_TASK_BROKER_URL (e.g. redis://…)")
    logs.setup(level=settings.log_level, json=settings.log_json)
    runtime = build(settings.model_copy(update={"run_scheduler": False}))
    if metrics_port is not None:
        start_http_server(metrics_port, addr=settings.host)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    runtime.tasks.broker.is_worker_process = True
    await runtime.start()
    log.info("worker started", extra={"concurrency": concurrency})
    try:
        await runtime.tasks.run_worker(stop, concurrency=concurrency)
    finally:
        await runtime.stop()
        log.info("worker stopped")


async def run_scheduler(settings: Settings) -> None:
    """Send scheduled jobs to the broker until SIGINT/SIGTERM (run exactly one of these)."""
    logs.setup(level=settings.log_level, json=settings.log_json)
    runtime = build(settings)
    if runtime.tasks.in_process:
        raise SystemExit("forecourt scheduler needs FORECOURT_TASK_BROKER_URL (e.g. redis://…)")
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await runtime.tasks.start(dispatcher=False, scheduler=True)
    log.info("scheduler started", extra={"jobs": sorted(runtime.tasks.job_tasks)})
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        log.info("scheduler stopped")
